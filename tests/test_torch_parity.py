"""minigrad against PyTorch in float64: the GPT, the optimizers, clipping and the layers.

Every test here is skipped when torch is not installed; minigrad never needs it.
"""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import minigrad
from minigrad import nn, optim
from minigrad.nn import functional as F
from models.gpt import GPT, GPTConfig

torch = pytest.importorskip("torch")


def _load_torch_gpt():
    """Import bench/torch_gpt.py by path: bench/ is a folder of scripts, not a package."""
    path = Path(__file__).resolve().parents[1] / "bench" / "torch_gpt.py"
    spec = importlib.util.spec_from_file_location("torch_gpt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


torch_gpt = _load_torch_gpt()

GPT_TOLERANCE = 1e-6  # relative error allowed between the two GPTs, as promised
OP_TOLERANCE = 1e-10  # single layers and optimizer steps round far less in float64


def relative_error(actual, expected) -> float:
    """max |actual - expected| over max |expected|: one number per tensor."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(
        expected.detach().numpy() if torch.is_tensor(expected) else expected, dtype=np.float64
    )
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(initial=0.0), 1e-300)
    return float(np.abs(actual - expected).max(initial=0.0) / scale)


def as_torch(array: np.ndarray, requires_grad: bool = False):
    return torch.tensor(np.array(array, dtype=np.float64), requires_grad=requires_grad)


# ---- the whole GPT -----------------------------------------------------------------------


def gpt_pair(bias: bool):
    """A float64 minigrad GPT with every parameter perturbed, and a torch copy of it."""
    minigrad.manual_seed(0)
    config = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11, bias=bias)
    model = GPT(config).double()
    rng = np.random.default_rng(1)
    for p in model.parameters():
        # Move gains off 1 and biases off 0 so every term of the gradient is exercised.
        p.data += rng.normal(0.0, 0.1, p.shape)
    reference = torch_gpt.copy_minigrad_weights(torch_gpt.TorchGPT(config).double(), model)
    return model, reference


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_gpt_loss_and_every_gradient_match_torch_in_float64(bias):
    model, reference = gpt_pair(bias)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 11, (3, 8))
    y = rng.integers(0, 11, (3, 8))
    y[0, :3] = -1  # ignored targets take part in neither the loss nor its mean

    logits, loss = model(x, y)
    loss.backward()
    torch_logits, torch_loss = reference(torch.from_numpy(x), torch.from_numpy(y))
    torch_loss.backward()

    assert loss.dtype == np.float64
    assert relative_error(loss.data, torch_loss) <= GPT_TOLERANCE
    assert relative_error(logits.data, torch_logits) <= GPT_TOLERANCE
    torch_params = dict(reference.named_parameters(remove_duplicate=False))
    names = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    assert names == list(torch_params)
    for name, p in model.named_parameters(remove_duplicate=False):
        error = relative_error(p.grad, torch_params[name].grad)
        assert error <= GPT_TOLERANCE, f"{name}: relative error {error:.3g}"


def test_gpt_last_position_logits_without_targets_match_torch():
    model, reference = gpt_pair(bias=False)
    x = np.random.default_rng(3).integers(0, 11, (2, 5))
    logits, loss = model(x)
    with torch.no_grad():
        torch_logits, _ = reference(torch.from_numpy(x))
    assert loss is None and logits.shape == (2, 1, 11)
    assert relative_error(logits.data, torch_logits) <= GPT_TOLERANCE


def test_copy_minigrad_weights_keeps_the_torch_head_tied_to_the_embedding():
    _, reference = gpt_pair(bias=False)
    assert reference.lm_head.weight is reference.transformer.wte.weight
    assert reference.lm_head.weight.dtype == torch.float64


# ---- optimizers --------------------------------------------------------------------------

SHAPES = [(4, 3), (3,), (2, 5), (5,)]


def twin_parameters(seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=shape) for shape in SHAPES]
    ours = [nn.Parameter(a.copy()) for a in arrays]
    theirs = [torch.nn.Parameter(as_torch(a)) for a in arrays]
    return ours, theirs


def decay_groups(params, weight_decay):
    """Weight decay for matrices only, the split GPT training uses."""
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def run_trajectories(ours, theirs, optimizer, torch_optimizer, steps=5, schedule=None):
    """Feed both optimizers the same random gradients; check the parameters after each step."""
    rng = np.random.default_rng(42)
    for step in range(steps):
        if schedule is not None:
            for group, torch_group in zip(
                optimizer.param_groups, torch_optimizer.param_groups, strict=True
            ):
                group["lr"] = torch_group["lr"] = schedule(step)
        for p, q in zip(ours, theirs, strict=True):
            g = rng.normal(size=p.shape)
            p.grad = g.copy()
            q.grad = as_torch(g)
        optimizer.step()
        torch_optimizer.step()
        for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            error = relative_error(p.data, q)
            assert error <= OP_TOLERANCE, f"step {step}, parameter {i}: {error:.3g}"


def test_adamw_with_two_groups_follows_torch_adamw():
    ours, theirs = twin_parameters()
    optimizer = optim.AdamW(decay_groups(ours, 0.1), lr=1e-2, betas=(0.9, 0.99), eps=1e-8)
    torch_optimizer = torch.optim.AdamW(
        decay_groups(theirs, 0.1), lr=1e-2, betas=(0.9, 0.99), eps=1e-8
    )
    schedule = lambda step: optim.warmup_cosine(step, 1e-2, 1e-3, 2, 5)  # noqa: E731
    run_trajectories(ours, theirs, optimizer, torch_optimizer, schedule=schedule)


def test_adam_with_l2_weight_decay_follows_torch_adam():
    ours, theirs = twin_parameters(1)
    optimizer = optim.Adam(ours, lr=3e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05)
    torch_optimizer = torch.optim.Adam(
        theirs, lr=3e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05
    )
    run_trajectories(ours, theirs, optimizer, torch_optimizer)


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_sgd_with_momentum_follows_torch_sgd(nesterov):
    ours, theirs = twin_parameters(2)
    optimizer = optim.SGD(ours, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=nesterov)
    torch_optimizer = torch.optim.SGD(
        theirs, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=nesterov
    )
    run_trajectories(ours, theirs, optimizer, torch_optimizer)


# ---- schedule and clipping ---------------------------------------------------------------


def nanogpt_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    """nanoGPT's schedule in closed form: linear warm-up, cosine decay, then a floor."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


@pytest.mark.parametrize("it", [0, 1, 9, 10, 11, 50, 99, 100, 101, 150])
def test_warmup_cosine_equals_the_nanogpt_schedule(it):
    expected = nanogpt_lr(it, 1e-3, 1e-4, 10, 100)
    assert optim.warmup_cosine(it, 1e-3, 1e-4, 10, 100) == pytest.approx(expected, rel=1e-12)


def test_warmup_cosine_hits_its_landmarks():
    assert optim.warmup_cosine(0, 1.0, 0.1, 9, 109) == pytest.approx(0.1)
    assert optim.warmup_cosine(9, 1.0, 0.1, 9, 109) == pytest.approx(1.0)
    assert optim.warmup_cosine(59, 1.0, 0.1, 9, 109) == pytest.approx(0.55)
    assert optim.warmup_cosine(109, 1.0, 0.1, 9, 109) == pytest.approx(0.1)
    assert optim.warmup_cosine(10_000, 1.0, 0.1, 9, 109) == 0.1


@pytest.mark.parametrize("max_norm", [0.5, 1e3], ids=["clips", "leaves-alone"])
def test_clip_grad_norm_matches_torch_norm_and_clipped_gradients(max_norm):
    ours, theirs = twin_parameters(3)
    rng = np.random.default_rng(4)
    for p, q in zip(ours, theirs, strict=True):
        g = rng.normal(size=p.shape)
        p.grad, q.grad = g.copy(), as_torch(g)

    norm = optim.clip_grad_norm_(ours, max_norm)
    torch_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm)

    assert norm == pytest.approx(torch_norm.item(), rel=1e-12)
    for p, q in zip(ours, theirs, strict=True):
        assert relative_error(p.grad, q.grad) <= OP_TOLERANCE
    if max_norm < 1:
        clipped = math.sqrt(sum(float((p.grad**2).sum()) for p in ours))
        assert clipped == pytest.approx(max_norm, rel=1e-5)


# ---- layers and functions ----------------------------------------------------------------


def backward_both(out, torch_out, seed=5):
    """Backpropagate one random upstream gradient through both outputs."""
    g = np.random.default_rng(seed).normal(size=out.shape)
    out.backward(g)
    torch_out.backward(as_torch(g))


def test_linear_matches_torch_forward_and_backward():
    minigrad.manual_seed(0)
    layer = nn.Linear(5, 3).double()
    x = np.random.default_rng(0).normal(size=(2, 4, 5))
    xs = minigrad.Tensor(x, requires_grad=True)
    xt = as_torch(x, requires_grad=True)
    w, b = as_torch(layer.weight.data, True), as_torch(layer.bias.data, True)

    out, torch_out = layer(xs), torch.nn.functional.linear(xt, w, b)
    backward_both(out, torch_out)

    assert relative_error(out.data, torch_out) <= OP_TOLERANCE
    assert relative_error(xs.grad, xt.grad) <= OP_TOLERANCE
    assert relative_error(layer.weight.grad, w.grad) <= OP_TOLERANCE
    assert relative_error(layer.bias.grad, b.grad) <= OP_TOLERANCE


def test_embedding_accumulates_repeated_rows_like_torch():
    minigrad.manual_seed(0)
    layer = nn.Embedding(6, 4).double()
    idx = np.array([[0, 3, 3], [5, 0, 3]])
    w = as_torch(layer.weight.data, True)

    out, torch_out = layer(idx), torch.nn.functional.embedding(torch.from_numpy(idx), w)
    backward_both(out, torch_out)

    assert relative_error(out.data, torch_out) <= OP_TOLERANCE
    assert relative_error(layer.weight.grad, w.grad) <= OP_TOLERANCE
    assert np.all(layer.weight.grad[[1, 2, 4]] == 0)


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_matches_torch_forward_and_backward(bias):
    layer = nn.LayerNorm(6, bias=bias).double()
    rng = np.random.default_rng(6)
    layer.weight.data[...] = rng.normal(size=6)
    if bias:
        layer.bias.data[...] = rng.normal(size=6)
    x = rng.normal(3.0, 2.0, size=(3, 4, 6))
    xs, xt = minigrad.Tensor(x, requires_grad=True), as_torch(x, True)
    w = as_torch(layer.weight.data, True)
    b = as_torch(layer.bias.data, True) if bias else None

    out = layer(xs)
    torch_out = torch.nn.functional.layer_norm(xt, (6,), w, b, 1e-5)
    backward_both(out, torch_out)

    assert relative_error(out.data, torch_out) <= OP_TOLERANCE
    assert relative_error(xs.grad, xt.grad) <= OP_TOLERANCE
    assert relative_error(layer.weight.grad, w.grad) <= OP_TOLERANCE
    if bias:
        assert relative_error(layer.bias.grad, b.grad) <= OP_TOLERANCE


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_ignore_index_matches_torch(reduction):
    rng = np.random.default_rng(7)
    logits = rng.normal(0.0, 3.0, size=(6, 5))
    target = np.array([1, -1, 4, 0, -1, 4])
    xs, xt = minigrad.Tensor(logits, requires_grad=True), as_torch(logits, True)

    loss = F.cross_entropy(xs, target, ignore_index=-1, reduction=reduction)
    torch_loss = torch.nn.functional.cross_entropy(
        xt, torch.from_numpy(target), ignore_index=-1, reduction=reduction
    )
    backward_both(loss, torch_loss)

    assert relative_error(loss.data, torch_loss) <= OP_TOLERANCE
    assert relative_error(xs.grad, xt.grad) <= OP_TOLERANCE
    assert np.all(xs.grad[[1, 4]] == 0)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch_in_both_forms(approximate):
    x = np.linspace(-6.0, 6.0, 61)
    xs, xt = minigrad.Tensor(x, requires_grad=True), as_torch(x, True)

    out = F.gelu(xs, approximate)
    torch_out = torch.nn.functional.gelu(xt, approximate=approximate)
    backward_both(out, torch_out)

    assert relative_error(out.data, torch_out) <= OP_TOLERANCE
    assert relative_error(xs.grad, xt.grad) <= OP_TOLERANCE


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax_match_torch(name, axis):
    x = np.random.default_rng(8).normal(0.0, 4.0, size=(3, 4, 5))
    xs, xt = minigrad.Tensor(x, requires_grad=True), as_torch(x, True)

    out = getattr(F, name)(xs, axis)
    torch_out = getattr(torch.nn.functional, name)(xt, dim=axis)
    backward_both(out, torch_out)

    assert relative_error(out.data, torch_out) <= OP_TOLERANCE
    assert relative_error(xs.grad, xt.grad) <= OP_TOLERANCE
