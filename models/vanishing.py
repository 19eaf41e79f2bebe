"""The vanishing gradient: how much of a late loss reaches the early hidden states.

`minigrad-rnn vanishing` or `python -m models.vanishing`.

Backpropagation through time multiplies the gradient, once per step back, by the
step's Jacobian: for a SimpleRNN, dh_t/dh_{t-1} = diag(1 - h_t^2) recurrent_kernel^T.
When that product shrinks the gradient by a roughly constant factor per step, the
gradient t steps back falls geometrically, and the network cannot learn from what it
saw long ago; when it grows the gradient by a constant factor, it explodes.

Here a loss is put on the last step only, L = v . h_T for a random unit vector v per
sequence, and one backward pass fills the gradient of every hidden state (each step
is run with the layer's `step` and its output kept with `retain_grad()`).  The norm of
dL/dh_{T-t}, averaged over random input sequences, is printed by t, for recurrent
kernels scaled to several spectral norms, with the per-step factor of a geometric fit,
exp(slope of log norm against t).

An LSTM carries its cell state c forward by c_t = f * c_{t-1} + ..., so on that path
the gradient is scaled by the forget gate f, not by the recurrent kernel.  With
Keras' initial forget-gate bias 1, f is about sigmoid(1) = 0.73; a bias of 3 (f about
0.95, a forget gate that has learned to hold on) lets the gradient travel back almost
undamped.  Both are measured.  The layers run `warmup` steps before the measured ones,
so that the states are typical rather than the zeros a sequence starts from.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import minigrad
from minigrad import nn
from minigrad.tensor import Tensor
from models import plotting
from models.commands import add_flags, parse_floats, require_positive, run_command

SHOWN_STEPS = (0, 1, 2, 5, 10, 20, 40, 60, 80, 100)


def scale_recurrent_kernel(layer: nn.Module, spectral_norm: float) -> None:
    """Rescale each gate's (units, units) block of `layer.recurrent_kernel` in place so
    its largest singular value is `spectral_norm`."""
    if spectral_norm <= 0:
        raise ValueError(
            f"scale_recurrent_kernel: spectral_norm must be positive, got {spectral_norm}"
        )
    kernel, units = layer.recurrent_kernel.data, layer.units
    for start in range(0, kernel.shape[1], units):
        block = kernel[:, start : start + units]
        block *= spectral_norm / np.linalg.norm(block, ord=2)


def gradient_norms(
    layer: nn.Module, steps: int, sequences: int, warmup: int, rng: np.random.Generator
) -> np.ndarray:
    """The mean norm of dL/dh_{T-t} for t = 0 .. steps, with L = v . h_T.

    Args:
        layer: an nn.SimpleRNN, nn.LSTM or nn.GRU; its `step` is run in a loop.
        steps: how many steps back to measure.
        sequences: random input sequences (N(0, 1) inputs) averaged over; they run
            as one batch, and each row's loss reaches only its own states.
        warmup: unmeasured steps run first, from the zero state.

    Returns:
        norms (steps + 1,); norms[t] is the mean over sequences t steps back from the
        end, so norms[0] = |v| = 1.  A kernel so large that its products overflow
        saturates the units, and the gradient through them is 0.
    """
    x = Tensor(rng.standard_normal((sequences, warmup + steps + 1, layer.input_size)))
    v = rng.standard_normal((sequences, layer.units))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    state = None
    kept: list[Tensor] = []  # h_{T-steps} .. h_T
    with np.errstate(over="ignore"):
        for t in range(warmup + steps + 1):
            state = layer.step(x[:, t], state)
            h = state[0] if isinstance(state, tuple) else state
            if t >= warmup:
                h.retain_grad()
                kept.append(h)
        loss = (kept[-1] * Tensor(v)).sum()
        loss.backward()
    return np.array([np.linalg.norm(h.grad, axis=1).mean() for h in reversed(kept)])


def decay_factor(norms: np.ndarray) -> float:
    """exp(slope) of a least-squares line through log(norms[t]) for t >= 1.

    Below 1 the gradient vanishes by that factor per step; above 1 it explodes.
    Step 0 is left out: it is |v| itself, before any Jacobian.  Norms that
    underflowed to 0 are left out too.  When fewer than two norms are left,
    the gradient died within a step or two (a saturated tanh passes none):
    the factor is 0, or inf if it overflowed instead.
    """
    t = np.arange(len(norms))
    usable = (t >= 1) & (norms > 0) & np.isfinite(norms)
    if usable.sum() < 2:
        return 0.0 if np.isfinite(norms[1:]).all() else math.inf
    slope = np.polyfit(t[usable], np.log(norms[usable]), 1)[0]
    return float(np.exp(slope))


def make_layer(
    kind: str, features: int, units: int, spectral_norm: float, forget_bias: float = 1.0
) -> nn.Module:
    """A float64 SimpleRNN or LSTM with Keras' initialisation, its recurrent kernel rescaled."""
    if kind == "SimpleRNN":
        layer = nn.SimpleRNN(features, units)
    elif kind == "LSTM":
        layer = nn.LSTM(features, units)
    else:
        raise ValueError(f"make_layer: kind must be 'SimpleRNN' or 'LSTM', got {kind!r}")
    layer.double()  # so a gradient of 1e-40 is a number, not an underflow to 0
    scale_recurrent_kernel(layer, spectral_norm)
    if kind == "LSTM":
        layer.bias.data[units : 2 * units] = forget_bias  # gates i, f, c, o side by side
    return layer


# ---- the command ---------------------------------------------------------------------


@dataclass
class VanishingConfig:
    """The settings of `minigrad-rnn vanishing`; each is also a command-line flag."""

    out_dir: str = "out-rnn"
    seed: int = 1337
    units: int = 32
    features: int = 4
    steps: int = 60
    warmup: int = 50
    sequences: int = 32
    scales: tuple[float, ...] = (0.5, 1.0, 1.5, 3.0)
    forget_biases: tuple[float, ...] = (1.0, 3.0)


HELP = {
    "out_dir": "folder for the plot (vanishing.png)",
    "seed": "seed for the weights, the inputs and the loss directions",
    "units": "hidden units of each layer",
    "features": "inputs per time step",
    "steps": "steps back the gradient is measured",
    "warmup": "steps run before the measured ones",
    "sequences": "random sequences averaged over",
    "scales": "spectral norms of the recurrent kernel, comma-separated",
    "forget_biases": "LSTM forget-gate biases, comma-separated (Keras starts at 1)",
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of `minigrad-rnn vanishing`, defaults shown in --help."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-rnn vanishing",
        description="Measure how the gradient fades through time in a SimpleRNN and an LSTM.",
    )
    return add_flags(parser, VanishingConfig, HELP)


def validate(config: VanishingConfig) -> None:
    """Raise ValueError naming the first flag whose value makes no sense."""
    require_positive(config, ("units", "features", "steps", "sequences"))
    if config.steps < 2:
        raise ValueError(f"--steps must be at least 2 to fit a decay, got {config.steps}")
    if config.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {config.warmup}")
    if not config.scales or any(not 0 < s < math.inf for s in config.scales):
        raise ValueError(f"--scales must be positive numbers, got {config.scales}")
    if not config.forget_biases:
        raise ValueError("--forget_biases needs at least one number")


def run(config: VanishingConfig, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Measure every layer and scale; returns the numbers printed.

    Returns:
        {"curves": {label: norms (steps + 1,)}, "factors": {label: per-step factor},
        "plot"}, where a label is "SimpleRNN 0.5" or "LSTM 0.5 f3".
    """
    if isinstance(config.scales, str):
        config.scales = parse_floats(config.scales)
    if isinstance(config.forget_biases, str):
        config.forget_biases = parse_floats(config.forget_biases)
    validate(config)
    started = time.perf_counter()
    minigrad.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, 1])
    shown = [t for t in SHOWN_STEPS if t <= config.steps]
    log(
        f"|dL/dh_(T-t)| with L = v . h_T, mean over {config.sequences} random sequences "
        f"({config.units} units, {config.features} inputs, {config.warmup} warm-up steps)"
    )
    header = f"{'layer':>12s} {'norm':>5s}  " + " ".join(f"{f't={t}':>8s}" for t in shown)
    log(f"{header}  per-step factor")
    curves: dict[str, np.ndarray] = {}
    factors: dict[str, float] = {}
    runs = [("SimpleRNN", scale, None) for scale in config.scales]
    runs += [("LSTM", scale, bias) for bias in config.forget_biases for scale in config.scales]
    for kind, scale, bias in runs:
        layer = make_layer(
            kind, config.features, config.units, scale, bias if bias is not None else 1.0
        )
        norms = gradient_norms(layer, config.steps, config.sequences, config.warmup, rng)
        label = f"{kind} {scale:g}" + (f" f{bias:g}" if bias is not None else "")
        curves[label], factors[label] = norms, decay_factor(norms)
        name = kind if bias is None else f"LSTM f{bias:g}"
        cells = " ".join(f"{norms[t]:8.1e}" for t in shown)
        log(f"{name:>12s} {scale:5.3g}  {cells}  {factors[label]:.3f}")
    log(
        "(norm: the recurrent kernel's spectral norm, per gate for the LSTM; f: the LSTM's "
        "forget-gate bias)"
    )

    plot = _plot(config, curves, log)
    log(f"time: total {time.perf_counter() - started:.1f}s")
    if plot is not None:
        log(f"wrote {plot}")
    return {"curves": curves, "factors": factors, "plot": plot}


def _plot(config: VanishingConfig, curves: dict[str, np.ndarray], log: Callable[[str], Any]) -> Any:
    """Gradient norm against steps back, log scale: SimpleRNN left, LSTM right."""
    plt = plotting.pyplot()
    if plt is None:
        log(plotting.missing_message("the gradient norms"))
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    shades = plt.cm.viridis(np.linspace(0, 0.9, len(config.scales)))
    colours = dict(zip(config.scales, shades, strict=True))
    styles = ["-", "--", ":", "-."]
    for label, norms in curves.items():
        parts = label.split()
        scale = float(parts[1])
        axis = left if parts[0] == "SimpleRNN" else right
        style = (
            "-"
            if len(parts) == 2
            else styles[config.forget_biases.index(float(parts[2][1:])) % len(styles)]
        )
        name = f"norm {scale:g}" + (f", forget bias {parts[2][1:]}" if len(parts) == 3 else "")
        axis.plot(np.arange(len(norms)), norms, style, color=colours[scale], label=name)
    for axis, title in ((left, "SimpleRNN (tanh)"), (right, "LSTM")):
        axis.set(yscale="log", xlabel="steps back t", title=title)
        axis.legend(fontsize=8)
    left.set_ylabel("|dL / dh_(T-t)|")
    figure.tight_layout()
    return plotting.save_figure(figure, config.out_dir, "vanishing.png")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(run, VanishingConfig, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
