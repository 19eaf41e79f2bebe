"""The hidden space: does a recurrent network's state rebuild the Lorenz attractor?

`minigrad-rnn hidden-space` or `python -m models.hidden_space`.

The network sees only the x coordinate of the Lorenz system, `look_back` values at a
time.  To forecast x well it must know where on the attractor the system is, which x
alone does not say: the state (x, y, z) has to be inferred from the recent past.  If
it is, the final hidden states of the test windows should form a copy of the
attractor, distorted perhaps, but keeping which points are near which.

A SimpleRNN(40) is trained (Keras recipe, as in `models.lorenz`) to forecast the next
`horizon` values of x.  NOTE: with horizon 1 the task can be solved from the last
value and its slope alone, and the hidden state then keeps little of the attractor's
shape; asking for the next 20 values (0.2 time units) makes the network track the
state, which is what this example is about.

The hidden states are projected to 3-D by principal component analysis (a NumPy SVD)
and compared with the true (x, y, z) at the same times by neighbourhood
preservation: for each of `points` test windows, the share of its k = 10 nearest
neighbours in the true state space that are also among its 10 nearest in the other
space.  1 keeps every neighbourhood; random points score about k / (points - 1).
For scale, the same score is printed for two maps of the raw input windows to 3-D:
random linear projections (the floor) and their own principal components (a linear
delay embedding, Takens' classical reconstruction).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import minigrad
from minigrad.tensor import Tensor
from models import plotting
from models.commands import add_flags, require_positive, run_command
from models.lorenz import build_model, lorenz_dataset, rmse


def pca(points: np.ndarray, dims: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Project points (n, d) on their first `dims` principal components.

    Returns:
        The projections (n, dims) and the share of the variance each component holds.
    """
    if points.ndim != 2 or not 0 < dims <= min(points.shape):
        raise ValueError(
            f"pca: points has shape {points.shape}, expected (n, d) with n and d >= dims={dims}"
        )
    centred = points - points.mean(axis=0)
    # The right singular vectors are the principal axes, ordered by singular value.
    _, singular, axes = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    variance = singular**2
    return centred @ axes[:dims].T, variance[:dims] / variance.sum()


def nearest_neighbours(points: np.ndarray, k: int) -> np.ndarray:
    """The indices (n, k) of each point's k nearest other points, in any order."""
    if not 0 < k < len(points):
        raise ValueError(f"nearest_neighbours: k must be in [1, {len(points) - 1}], got {k}")
    p = points.astype(np.float64)
    squared = (p * p).sum(axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * p @ p.T  # (n, n)
    np.fill_diagonal(distances, np.inf)  # a point is not its own neighbour
    return np.argpartition(distances, k - 1, axis=1)[:, :k]


def neighbourhood_preservation(reference: np.ndarray, embedded: np.ndarray, k: int = 10) -> float:
    """The mean share of each point's k nearest neighbours in `reference` that stay
    among its k nearest in `embedded` (1.0 for any similarity transform)."""
    if len(reference) != len(embedded):
        raise ValueError(
            f"neighbourhood_preservation: reference has {len(reference)} points and embedded "
            f"{len(embedded)}; they must be the same points"
        )
    a, b = nearest_neighbours(reference, k), nearest_neighbours(embedded, k)
    shared = (a[:, :, None] == b[:, None, :]).sum(axis=(1, 2))  # (n,)
    return float(shared.mean() / k)


# ---- the command ---------------------------------------------------------------------


@dataclass
class HiddenSpaceConfig:
    """The settings of `minigrad-rnn hidden-space`; each is also a command-line flag."""

    out_dir: str = "out-rnn"
    seed: int = 1337
    num_samples: int = 40000
    look_back: int = 40
    horizon: int = 20
    units: int = 40
    epochs: int = 6
    batch_size: int = 32
    learning_rate: float = 1e-3
    points: int = 2000
    k: int = 10
    projections: int = 5


HELP = {
    "out_dir": "folder for the plot (hidden_space.png)",
    "seed": "seed for the weights, the training order, the points and the projections",
    "num_samples": "windows cut from the signal (80%% train, the rest, after a gap, test)",
    "look_back": "values of x each window holds",
    "horizon": "values ahead the network forecasts",
    "units": "SimpleRNN units (the hidden space's dimension)",
    "epochs": "passes over the training windows",
    "batch_size": "windows per gradient step",
    "learning_rate": "Adam learning rate",
    "points": "test windows the neighbourhoods are measured on",
    "k": "neighbours per point",
    "projections": "random projections averaged for the floor",
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of `minigrad-rnn hidden-space`, defaults shown in --help."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-rnn hidden-space",
        description="Compare a SimpleRNN's hidden states with the Lorenz attractor.",
    )
    return add_flags(parser, HiddenSpaceConfig, HELP)


def validate(config: HiddenSpaceConfig) -> None:
    """Raise ValueError naming the first flag whose value makes no sense."""
    require_positive(
        config,
        (
            "num_samples",
            "look_back",
            "horizon",
            "units",
            "batch_size",
            "points",
            "k",
            "projections",
        ),
    )
    if config.epochs < 0:
        raise ValueError(f"--epochs must be >= 0, got {config.epochs}")
    require_positive(config, ("learning_rate",))
    if config.units < 3 or config.look_back < 3:
        raise ValueError(
            f"--units ({config.units}) and --look_back ({config.look_back}) must be at least "
            "3 to project to 3-D"
        )
    if config.k >= config.points:
        raise ValueError(f"--k ({config.k}) must be smaller than --points ({config.points})")


def run(config: HiddenSpaceConfig, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train, collect hidden states, measure neighbourhoods; returns the numbers printed.

    Returns:
        {"hidden_pca", "hidden_full", "random_projection", "window_pca", "chance",
        "explained" (variance shares of the hidden PCA), "test_rmse", "plot"}.
    """
    validate(config)
    started = time.perf_counter()
    minigrad.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, 1])
    data = lorenz_dataset(config.num_samples, config.look_back, config.horizon)
    if config.points > len(data.X_test):
        raise ValueError(
            f"--points: {config.points} is more than the {len(data.X_test)} test windows; "
            "lower it or raise --num_samples"
        )
    ahead = f"{config.horizon} value{'s' if config.horizon > 1 else ''}"
    log(
        f"Lorenz x: windows of {config.look_back}, forecasting the next {ahead}; "
        f"{len(data.X_train):,} train, {len(data.X_test):,} test"
    )

    model = build_model(config.look_back, config.units, config.horizon, config.learning_rate)
    log(
        f"SimpleRNN({config.units}, tanh) -> Dense({config.horizon}): "
        f"{model.count_params():,} parameters"
    )
    for epoch in range(config.epochs):
        epoch_started = time.perf_counter()
        history = model.fit(
            data.X_train, data.y_train, epochs=1, batch_size=config.batch_size, verbose=0
        )
        log(
            f"epoch {epoch + 1}/{config.epochs}: train loss {history.history['loss'][0]:.5f}, "
            f"time {time.perf_counter() - epoch_started:.1f}s"
        )
    test_rmse = rmse(model.predict(data.X_test, batch_size=1024), data.y_test)
    log(f"test RMSE over the {config.horizon} values ahead: {test_rmse:.4f}")

    chosen = np.sort(rng.choice(len(data.X_test), config.points, replace=False))
    windows = data.X_test[chosen]  # (points, look_back, 1)
    truth = data.states[data.test_index[chosen] + config.look_back - 1]  # (points, 3)
    with minigrad.no_grad():
        hidden = model.layers[0](Tensor(windows)).data  # (points, units), the final state
    hidden_3d, explained = pca(hidden)
    raw = windows[:, :, 0]
    k = config.k
    scores = {
        "hidden_pca": neighbourhood_preservation(truth, hidden_3d, k),
        "hidden_full": neighbourhood_preservation(truth, hidden, k),
        "random_projection": float(
            np.mean(
                [
                    neighbourhood_preservation(
                        truth, raw @ rng.standard_normal((config.look_back, 3)), k
                    )
                    for _ in range(config.projections)
                ]
            )
        ),
        "window_pca": neighbourhood_preservation(truth, pca(raw)[0], k),
        "chance": k / (config.points - 1),
    }
    log(
        f"neighbourhoods kept: share of each point's {k} nearest neighbours in the true "
        f"(x, y, z) kept, over {config.points} test windows"
    )
    rows = [
        (f"hidden state, PCA to 3-D ({explained.sum():.1%} of its variance)", "hidden_pca"),
        (f"hidden state, all {config.units} units", "hidden_full"),
        (
            f"raw windows, random projection to 3-D (floor, mean of {config.projections})",
            "random_projection",
        ),
        ("raw windows, PCA to 3-D (a linear delay embedding)", "window_pca"),
        ("random points (chance, k / (points - 1))", "chance"),
    ]
    for label, key in rows:
        log(f"  {label:<62s} {scores[key]:.3f}")

    plot = _plot(config, truth, hidden_3d, chosen, scores, log)
    log(f"time: total {time.perf_counter() - started:.1f}s")
    if plot is not None:
        log(f"wrote {plot}")
    return {**scores, "explained": explained, "test_rmse": test_rmse, "plot": plot}


def _plot(
    config: HiddenSpaceConfig,
    truth: np.ndarray,
    hidden_3d: np.ndarray,
    times: np.ndarray,
    scores: dict[str, float],
    log: Callable[[str], Any],
) -> Any:
    """The true attractor and the hidden states' PCA, side by side, coloured by time."""
    plt = plotting.pyplot()
    if plt is None:
        log(plotting.missing_message("the two spaces"))
        return None
    figure = plt.figure(figsize=(12, 5.5))
    panels = (
        (truth, "Lorenz state (x, y, z)", ("x", "y", "z")),
        (
            hidden_3d,
            f"Hidden state, first 3 principal components\n"
            f"neighbourhoods kept: {scores['hidden_pca']:.2f}",
            ("PC 1", "PC 2", "PC 3"),
        ),
    )
    for k, (points, title, labels) in enumerate(panels):
        axis = figure.add_subplot(1, 2, k + 1, projection="3d")
        axis.scatter(*points.T, c=times, cmap="viridis", s=3)
        axis.set_title(title)
        axis.set(xlabel=labels[0], ylabel=labels[1], zlabel=labels[2])
    figure.tight_layout()
    return plotting.save_figure(figure, config.out_dir, "hidden_space.png")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(run, HiddenSpaceConfig, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
