"""RMSprop: its update rule in closed form, its state, and PyTorch's RMSprop step for step."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim


def test_first_step_divides_by_the_root_of_the_running_square(rng):
    w0, g = rng.standard_normal(5), rng.standard_normal(5)
    p = mg.Tensor(w0.copy(), requires_grad=True)
    opt = optim.RMSprop([p], lr=0.1, alpha=0.9, eps=1e-8)
    p.grad = g.copy()
    opt.step()
    # v = (1 - alpha) g^2, so the step is lr * g / (sqrt(0.1) |g| + eps)
    np.testing.assert_allclose(p.data, w0 - 0.1 * g / (np.sqrt(0.1) * np.abs(g) + 1e-8))
    np.testing.assert_allclose(opt.state[p]["square_avg"], 0.1 * g * g)


def test_state_survives_a_state_dict_round_trip(rng):
    p = mg.Tensor(rng.standard_normal(4), requires_grad=True)
    opt = optim.RMSprop([p], lr=0.01, momentum=0.9, centered=True)
    for _ in range(3):
        p.grad = rng.standard_normal(4)
        opt.step()
    copy = mg.Tensor(p.data.copy(), requires_grad=True)
    restored = optim.RMSprop([copy], lr=0.5)
    restored.load_state_dict(opt.state_dict())
    g = rng.standard_normal(4)
    p.grad, copy.grad = g.copy(), g.copy()
    opt.step()
    restored.step()
    np.testing.assert_allclose(copy.data, p.data)


def test_bad_hyperparameters_are_rejected():
    p = mg.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        optim.RMSprop([p], alpha=1.5)
    with pytest.raises(ValueError, match="momentum must be >= 0, got -0.1"):
        optim.RMSprop([p], momentum=-0.1)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9},
        {"centered": True, "weight_decay": 0.1},
        {"centered": True, "momentum": 0.5, "alpha": 0.9, "eps": 1e-6},
    ],
)
def test_rmsprop_matches_pytorch_step_for_step(options, rng):
    torch = pytest.importorskip("torch")
    w0 = rng.standard_normal((3, 4))
    p = mg.Tensor(w0.copy(), requires_grad=True)
    p_torch = torch.tensor(w0.copy(), requires_grad=True)
    ours = optim.RMSprop([p], lr=0.01, **options)
    theirs = torch.optim.RMSprop([p_torch], lr=0.01, **options)
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        p.grad, p_torch.grad = g.copy(), torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.data, p_torch.detach().numpy(), rtol=1e-12, atol=1e-14)
