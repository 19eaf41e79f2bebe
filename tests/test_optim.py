"""Optimizers, the learning-rate schedule and clipping, checked against closed forms."""

import copy
import math

import numpy as np
import pytest

from minigrad import Tensor, nn, optim


def parameter(*values) -> nn.Parameter:
    return nn.Parameter(np.array(values, dtype=np.float64))


# ---- SGD ---------------------------------------------------------------------------------


def test_sgd_step_subtracts_lr_times_the_gradient():
    p = parameter(1.0, -2.0, 3.0)
    p.grad = np.array([0.5, 1.0, -4.0])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.1, 3.4], rtol=1e-15)


def test_sgd_momentum_accumulates_a_velocity():
    p = parameter(1.0)
    optimizer = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.array([1.0])
    optimizer.step()  # velocity 1
    p.grad = np.array([2.0])
    optimizer.step()  # velocity 0.9 * 1 + 2 = 2.9
    np.testing.assert_allclose(p.data, [1.0 - 0.1 - 0.29], rtol=1e-15)


def test_sgd_nesterov_steps_along_gradient_plus_momentum_times_velocity():
    p = parameter(0.0)
    optimizer = optim.SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    p.grad = np.array([1.0])
    optimizer.step()  # velocity 1, step 1 + 0.5 * 1
    p.grad = np.array([1.0])
    optimizer.step()  # velocity 1.5, step 1 + 0.5 * 1.5
    np.testing.assert_allclose(p.data, [-1.5 - 1.75], rtol=1e-15)


def test_sgd_weight_decay_adds_an_l2_term_to_the_gradient():
    p = parameter(2.0)
    p.grad = np.array([0.0])
    optim.SGD([p], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.data, [2.0 - 0.1 * 0.5 * 2.0], rtol=1e-15)


# ---- Adam and AdamW ----------------------------------------------------------------------


def test_adam_first_step_moves_each_parameter_by_lr_against_the_gradient_sign():
    p = parameter(1.0, 1.0, 1.0)
    g = np.array([1e-3, -5.0, 200.0])
    p.grad = g.copy()
    optim.Adam([p], lr=0.01, eps=1e-8).step()
    # Bias correction makes m_hat = g and v_hat = g^2 on the first step.
    np.testing.assert_allclose(p.data, 1.0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-14)
    np.testing.assert_allclose(p.data, 1.0 - 0.01 * np.sign(g), atol=1e-6)


def test_adamw_first_step_decays_then_steps_by_lr_times_sign():
    p = parameter(2.0, -3.0)
    g = np.array([0.3, 0.7])
    p.grad = g.copy()
    optim.AdamW([p], lr=0.1, weight_decay=0.2, eps=1e-8).step()
    decayed = np.array([2.0, -3.0]) * (1 - 0.1 * 0.2)
    np.testing.assert_allclose(p.data, decayed - 0.1 * g / (g + 1e-8), rtol=1e-14)
    np.testing.assert_allclose(p.data, decayed - 0.1 * np.sign(g), atol=1e-6)


def test_adam_second_step_follows_the_bias_corrected_moments():
    p = parameter(0.0)
    optimizer = optim.Adam([p], lr=1.0, betas=(0.5, 0.75), eps=0.0)
    p.grad = np.array([2.0])
    optimizer.step()
    p.grad = np.array([4.0])
    optimizer.step()
    m_hat = (0.5 * 0.5 * 2.0 + 0.5 * 4.0) / (1 - 0.5**2)
    v_hat = (0.75 * 0.25 * 4.0 + 0.25 * 16.0) / (1 - 0.75**2)
    np.testing.assert_allclose(p.data, [-1.0 - m_hat / math.sqrt(v_hat)], rtol=1e-14)


def test_adamw_decays_only_the_group_that_asks_for_it():
    matrix = nn.Parameter(np.full((2, 2), 3.0))
    gain = nn.Parameter(np.full(2, 3.0))
    optimizer = optim.AdamW(
        [{"params": [matrix], "weight_decay": 0.5}, {"params": [gain], "weight_decay": 0.0}],
        lr=0.1,
    )
    for p in (matrix, gain):
        p.grad = np.zeros(p.shape)  # a zero gradient leaves only the decay
    optimizer.step()
    np.testing.assert_allclose(matrix.data, np.full((2, 2), 3.0 * (1 - 0.1 * 0.5)), rtol=1e-15)
    np.testing.assert_array_equal(gain.data, [3.0, 3.0])


def test_group_settings_override_defaults_and_the_rest_are_filled_in():
    a, b = parameter(1.0), parameter(1.0)
    optimizer = optim.AdamW([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, betas=(0.8, 0.9))
    first, second = optimizer.param_groups
    assert first["lr"] == 0.1 and second["lr"] == 0.5
    assert first["betas"] == second["betas"] == (0.8, 0.9)
    assert first["weight_decay"] == second["weight_decay"] == 0.01


def test_a_parameter_without_gradient_is_left_alone():
    p, idle = parameter(1.0), parameter(5.0)
    p.grad = np.array([1.0])
    optimizer = optim.AdamW([p, idle], lr=0.1)
    optimizer.step()
    np.testing.assert_array_equal(idle.data, [5.0])
    assert idle not in optimizer.state and optimizer.state[p]["step"] == 1


def test_optimizer_zero_grad_clears_the_gradients():
    p = parameter(1.0)
    p.grad = np.array([1.0])
    optimizer = optim.SGD([p], lr=0.1)
    optimizer.zero_grad()
    assert p.grad is None


# ---- saving and restoring ----------------------------------------------------------------


def run_steps(optimizer, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.copy()
        optimizer.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.AdamW(
            [{"params": ps[:1], "weight_decay": 0.1}, {"params": ps[1:], "weight_decay": 0.0}],
            lr=0.01,
        ),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    ],
    ids=["adamw", "sgd"],
)
def test_state_dict_round_trip_continues_exactly_like_the_original(make):
    rng = np.random.default_rng(0)
    shapes = [(3, 2), (2,)]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(6)]
    original = [nn.Parameter(rng.normal(size=s)) for s in shapes]
    optimizer = make(original)
    run_steps(optimizer, original, grads[:3])

    saved = copy.deepcopy(optimizer.state_dict())
    restored = [nn.Parameter(p.data.copy()) for p in original]
    fresh = make(restored)
    fresh.param_groups[0]["lr"] = 123.0  # overwritten by the saved hyperparameters
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]

    run_steps(optimizer, original, grads[3:])
    run_steps(fresh, restored, grads[3:])
    for p, q in zip(original, restored, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_rejects_a_different_grouping():
    a, b = parameter(1.0), parameter(2.0)
    saved = optim.SGD([a, b], lr=0.1).state_dict()
    other = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="parameter groups do not match"):
        other.load_state_dict(saved)


@pytest.mark.parametrize("step", [-1, 2.5, float("nan"), "3"])
def test_load_state_dict_refuses_a_step_count_that_is_no_count_and_changes_nothing(step):
    p = parameter(1.0)
    p.grad = np.array([0.5])
    source = optim.Adam([p], lr=0.1)
    source.step()
    saved = copy.deepcopy(source.state_dict())
    saved["state"][0]["step"] = step
    saved["param_groups"][0]["lr"] = 0.5
    target = optim.Adam([parameter(1.0)], lr=0.1)
    with pytest.raises(ValueError, match=r"'step' of parameter 0 is .*a whole number at least 0"):
        target.load_state_dict(saved)
    assert target.param_groups[0]["lr"] == 0.1 and target.state == {}


@pytest.mark.parametrize(
    "setting, message",
    [
        (dict(betas=[2.0, 3.0]), r"group 0 are unusable: Adam: betas\[0\]"),
        (dict(lr="fast"), "group 0 are unusable"),
        (dict(eps=-1.0), "group 0 are unusable: Adam: eps"),
    ],
)
def test_load_state_dict_checks_saved_hyperparameters_as_the_constructor_does(setting, message):
    saved = optim.Adam([parameter(1.0)], lr=0.1).state_dict()
    saved["param_groups"][0].update(setting)
    target = optim.Adam([parameter(1.0)], lr=0.1)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(saved)
    assert target.param_groups[0]["lr"] == 0.1 and target.param_groups[0]["betas"] == (0.9, 0.999)


# ---- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda p: optim.SGD([p], lr=-0.1), "lr"),
        (lambda p: optim.SGD([p], lr=0.1, momentum=-0.5), "momentum"),
        (lambda p: optim.SGD([p], lr=0.1, weight_decay=-1.0), "weight_decay"),
        (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "nesterov"),
        (lambda p: optim.Adam([p], lr=-1.0), "lr"),
        (lambda p: optim.Adam([p], betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda p: optim.Adam([p], betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda p: optim.Adam([p], eps=-1e-8), "eps"),
        (lambda p: optim.AdamW([p], weight_decay=-0.1), "weight_decay"),
        (lambda p: optim.AdamW([{"params": [p], "lr": -2.0}]), "lr"),
        (lambda p: optim.Adam([{"params": [p], "betas": (0.9, 1.5)}]), r"betas\[1\]"),
        (lambda p: optim.SGD([{"params": [p], "momentum": -1.0}], lr=0.1), "momentum"),
        (lambda p: optim.RMSprop([{"params": [p], "alpha": 2.0}]), "alpha"),
        (lambda p: optim.AdamW([]), "params"),
        (lambda p: optim.AdamW([{"params": [p]}, {"params": [p]}]), "more than one group"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_the_argument(make, argument):
    with pytest.raises(ValueError, match=argument):
        make(parameter(1.0))


def test_parameters_that_are_not_tensors_raise_type_error():
    with pytest.raises(TypeError, match="Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)


# ---- schedule and clipping ---------------------------------------------------------------


def test_warmup_cosine_warms_up_linearly_then_decays_to_min_lr():
    rates = [optim.warmup_cosine(i, 1.0, 0.1, 4, 14) for i in range(20)]
    np.testing.assert_allclose(rates[:4], [0.2, 0.4, 0.6, 0.8])
    assert rates[4] == pytest.approx(1.0)
    assert rates[9] == pytest.approx(0.55)  # halfway through the cosine
    assert rates[14] == pytest.approx(0.1) and rates[19] == 0.1
    assert np.all(np.diff(rates[4:]) <= 0)


def test_warmup_cosine_lr_scales_every_group_from_its_own_base():
    a, b = parameter(1.0), parameter(1.0)
    optimizer = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.5}])
    scheduler = optim.WarmupCosineLR(optimizer, warmup_iters=1, decay_iters=3, min_lr=0.1)
    assert scheduler.step() == pytest.approx(0.5)  # iteration 0 of warm-up: 1 * 1/2
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.25)
    for _ in range(5):
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.05)


def test_clip_grad_norm_scales_to_max_norm_and_returns_the_norm_before():
    a, b = parameter(0.0, 0.0), parameter(0.0)
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    norm = optim.clip_grad_norm_([a, b], 1.0)
    assert norm == pytest.approx(5.0)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [3 * scale, 0.0, 4 * scale])


def test_clip_grad_norm_leaves_small_gradients_and_skips_missing_ones():
    a, b = parameter(0.0, 0.0), parameter(0.0)
    a.grad = np.array([0.3, 0.4])
    assert optim.clip_grad_norm_([a, b], 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(a.grad, [0.3, 0.4])
    assert b.grad is None
    assert optim.clip_grad_norm_([b], 1.0) == 0.0


def test_clip_grad_norm_rejects_a_non_positive_max_norm():
    p = parameter(1.0)
    p.grad = np.array([1.0])
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm_([p], 0.0)


def test_clip_grad_norm_keeps_float32_gradients_float32():
    p = nn.Parameter(np.ones(4, dtype=np.float32))
    p.grad = np.full(4, 10.0, dtype=np.float32)
    optim.clip_grad_norm_([p], 1.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, np.full(4, 0.5), rtol=1e-5)


def test_an_optimizer_trains_a_linear_fit_to_its_closed_form_answer():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.25
    layer = nn.Linear(3, 1).double()
    optimizer = optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(400):
        loss = ((layer(Tensor(x))[:, 0] - Tensor(y)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    np.testing.assert_allclose(layer.weight.data[0], [1.5, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(layer.bias.data, [0.25], atol=1e-3)
