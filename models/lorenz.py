"""Forecast a chaotic signal: the Lorenz system's x coordinate, with a small SimpleRNN.

`minigrad-rnn lorenz` or `python -m models.lorenz`.

The Lorenz system (sigma 10, rho 28, beta 8/3) is integrated with a hand-written
fourth-order Runge-Kutta scheme; after a transient the trajectory lies on the
butterfly-shaped attractor.  Its x coordinate, standardised to mean 0 and standard
deviation 1, is cut into windows of `look_back` values, each labelled with the value
that follows.  The first windows in time train the lecture's Keras recipe,
SimpleRNN(5, tanh) then Dense(1) compiled with adam and mse; the later ones test it.

Two questions are answered on the test windows:

- one step ahead: is the network better than the naive forecast "tomorrow equals
  today" (repeat the window's last value)?  The ratio of their errors is printed.
- many steps ahead: fed its own predictions back as input, how fast does the forecast
  part from the truth?  Chaos makes any error grow by about e^0.9 per unit of time (the
  largest Lyapunov exponent), so even a good model loses the trajectory after a few
  time units.  Errors are in standard deviations of x; two unrelated points of the
  signal differ by sqrt(2) = 1.41 on average, the level of no skill.

NOTE: a network trained one step ahead never saw its own errors as input; fed back,
they are off the data it learned from, and its free-running forecast can depart from
the truth much sooner than chaos alone would make it (with the defaults, it does).
Training on multi-step targets or on its own rollouts is the usual remedy, left out
to keep the lecture's recipe.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import minigrad
from minigrad.keras import Sequential
from minigrad.keras.layers import Dense, SimpleRNN
from minigrad.keras.optimizers import Adam
from models import plotting
from models.commands import add_flags, require_positive, run_command

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0


# ---- the signal ----------------------------------------------------------------------


def lorenz_derivative(
    state: np.ndarray, sigma: float = SIGMA, rho: float = RHO, beta: float = BETA
) -> np.ndarray:
    """d(x, y, z)/dt of the Lorenz system, for states of shape (..., 3)."""
    x, y, z = state[..., 0], state[..., 1], state[..., 2]
    return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=-1)


def rk4_step(
    derivative: Callable[[np.ndarray], np.ndarray], state: np.ndarray, dt: float
) -> np.ndarray:
    """One classical Runge-Kutta step: four slopes, weighted 1, 2, 2, 1."""
    k1 = derivative(state)
    k2 = derivative(state + 0.5 * dt * k1)
    k3 = derivative(state + 0.5 * dt * k2)
    k4 = derivative(state + dt * k3)
    return state + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate_lorenz(
    num_steps: int,
    dt: float = 0.01,
    transient_steps: int = 1000,
    initial_state: Sequence[float] | np.ndarray = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """The Lorenz trajectory sampled every `dt`, after `transient_steps` discarded steps.

    Args:
        num_steps: how many states to return.
        dt: the time step of the integration and of the samples.
        transient_steps: steps run first and thrown away, so that the returned
            states lie on the attractor rather than on the way to it.
        initial_state: (x, y, z) to start from, or an array (..., 3) of starts that
            are integrated side by side.

    Returns:
        States of shape (num_steps, 3), or (num_steps, ..., 3) for several starts.
    """
    if num_steps <= 0:
        raise ValueError(f"integrate_lorenz: num_steps must be positive, got {num_steps}")
    if transient_steps < 0:
        raise ValueError(f"integrate_lorenz: transient_steps must be >= 0, got {transient_steps}")
    state = np.array(initial_state, dtype=np.float64)
    if state.shape[-1:] != (3,):
        raise ValueError(
            f"integrate_lorenz: initial_state has shape {state.shape}, expected (..., 3)"
        )
    for _ in range(transient_steps):
        state = rk4_step(lorenz_derivative, state, dt)
    states = np.empty((num_steps, *state.shape))
    for i in range(num_steps):
        state = rk4_step(lorenz_derivative, state, dt)
        states[i] = state
    return states


def standardise(series: np.ndarray) -> np.ndarray:
    """The series shifted and scaled to mean 0 and standard deviation 1."""
    return (series - series.mean()) / series.std()


def make_windows(
    series: np.ndarray, look_back: int, horizon: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a 1-D series into inputs and the values that follow them.

    Window i holds series[i : i + look_back]; its target is the next `horizon` values,
    series[i + look_back : i + look_back + horizon].

    Returns:
        X of shape (num_samples, look_back, 1), one feature per time step as Keras
        expects, and y of shape (num_samples, horizon), float32.
    """
    if series.ndim != 1:
        raise ValueError(f"make_windows: series must be 1-D, got shape {series.shape}")
    if look_back <= 0 or horizon <= 0:
        raise ValueError(
            f"make_windows: look_back and horizon must be positive, got {look_back} and {horizon}"
        )
    num_samples = len(series) - look_back - horizon + 1
    if num_samples <= 0:
        raise ValueError(
            f"make_windows: a series of {len(series)} values is too short for look_back "
            f"{look_back} plus horizon {horizon}"
        )
    views = np.lib.stride_tricks.sliding_window_view(series, look_back + horizon)
    views = views[:num_samples].astype(np.float32)
    return views[:, :look_back, None].copy(), views[:, look_back:].copy()


@dataclass
class LorenzData:
    """Windows of the standardised x coordinate, split in time.

    `train_index` and `test_index` give, for each window, where it starts in `series`;
    `states[i]` is the true (x, y, z) at series[i], so the state at the last input of
    window w is states[start + look_back - 1].
    """

    series: np.ndarray  # (length,) standardised x
    states: np.ndarray  # (length, 3) the Lorenz states, in their own units
    look_back: int
    horizon: int
    X_train: np.ndarray  # (num_train, look_back, 1)
    y_train: np.ndarray  # (num_train, horizon)
    X_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray


def fewest_windows(gap: int, train_fraction: float) -> int:
    """The smallest number of windows that leaves one training and one test window."""
    n = gap + 2
    while int(n * train_fraction) < 1 or int(n * train_fraction) + gap >= n:
        n += 1
    return n


def lorenz_dataset(
    num_samples: int,
    look_back: int,
    horizon: int = 1,
    train_fraction: float = 0.8,
    dt: float = 0.01,
    transient_steps: int = 1000,
) -> LorenzData:
    """About `num_samples` windows of the Lorenz x coordinate, split chronologically.

    The first `train_fraction` of the windows train; the test windows start
    `look_back + horizon` steps after the last training window, so no value a test
    window reads or predicts was ever a training target.
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    length = num_samples + look_back + horizon - 1
    states = integrate_lorenz(length, dt, transient_steps)
    series = standardise(states[:, 0])
    X, y = make_windows(series, look_back, horizon)
    num_train = int(len(X) * train_fraction)
    gap = look_back + horizon - 1  # windows that would overlap the training targets
    test_start = num_train + gap
    if num_train == 0 or test_start >= len(X):
        raise ValueError(
            f"--num_samples: {num_samples} windows are too few; a gap of {gap} windows "
            f"separates the test windows from the training ones (look_back {look_back}, "
            f"horizon {horizon}), so at least {fewest_windows(gap, train_fraction)} are needed"
        )
    index = np.arange(len(X))
    return LorenzData(
        series=series,
        states=states,
        look_back=look_back,
        horizon=horizon,
        X_train=X[:num_train],
        y_train=y[:num_train],
        X_test=X[test_start:],
        y_test=y[test_start:],
        train_index=index[:num_train],
        test_index=index[test_start:],
    )


# ---- the model and its forecasts ----------------------------------------------------


def build_model(
    look_back: int, units: int = 5, outputs: int = 1, learning_rate: float = 1e-3
) -> Sequential:
    """The lecture's recipe: SimpleRNN(units, tanh) then a linear Dense, adam and mse."""
    model = Sequential()
    model.add(SimpleRNN(units, activation="tanh", input_shape=(look_back, 1)))
    model.add(Dense(outputs))
    model.compile(optimizer=Adam(learning_rate), loss="mse")
    return model


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Root of the mean squared difference."""
    return float(np.sqrt(np.mean((np.asarray(prediction) - np.asarray(target)) ** 2)))


def naive_forecast(X: np.ndarray) -> np.ndarray:
    """Repeat each window's last value: (num_samples, look_back, 1) -> (num_samples, 1)."""
    return X[:, -1, :]


def free_run(model: Sequential, windows: np.ndarray, steps: int) -> np.ndarray:
    """Forecast `steps` values ahead by feeding each prediction back as the newest input.

    Args:
        windows: (num_starts, look_back, 1) true values to start from.

    Returns:
        (num_starts, steps) predictions; column k is k + 1 steps ahead.
    """
    window = windows.astype(np.float32, copy=True)
    predictions = np.empty((len(window), steps), np.float32)
    for k in range(steps):
        next_value = model.predict(window, batch_size=len(window))[:, 0]
        predictions[:, k] = next_value
        window = np.concatenate([window[:, 1:], next_value[:, None, None]], axis=1)
    return predictions


def horizon_errors(
    predictions: np.ndarray, truth: np.ndarray, horizons: Sequence[int]
) -> dict[int, float]:
    """RMSE over the starts at each horizon (in steps, 1 = the first prediction)."""
    return {h: rmse(predictions[:, h - 1], truth[:, h - 1]) for h in horizons}


# ---- the command ---------------------------------------------------------------------


@dataclass
class LorenzConfig:
    """The settings of `minigrad-rnn lorenz`; each is also a command-line flag."""

    out_dir: str = "out-rnn"
    seed: int = 1337
    num_samples: int = 40000
    look_back: int = 40
    units: int = 5
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    forecast_steps: int = 300
    forecast_starts: int = 50


HELP = {
    "out_dir": "folder for the plot (lorenz.png)",
    "seed": "seed for the weights and the order of the training windows",
    "num_samples": "windows cut from the signal (80%% train, the rest, after a gap, test)",
    "look_back": "values of x each window holds",
    "units": "SimpleRNN units",
    "epochs": "passes over the training windows",
    "batch_size": "windows per gradient step",
    "learning_rate": "Adam learning rate",
    "forecast_steps": "steps of the free-running forecast (dt = 0.01 each)",
    "forecast_starts": "test windows the free-running forecast starts from",
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of `minigrad-rnn lorenz`, defaults shown in --help."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-rnn lorenz", description="Forecast the Lorenz system with a SimpleRNN."
    )
    return add_flags(parser, LorenzConfig, HELP)


def validate(config: LorenzConfig) -> None:
    """Raise ValueError naming the first flag whose value makes no sense."""
    require_positive(
        config,
        ("num_samples", "look_back", "units", "batch_size", "forecast_steps", "forecast_starts"),
    )
    if config.epochs < 0:
        raise ValueError(f"--epochs must be >= 0, got {config.epochs}")
    require_positive(config, ("learning_rate",))


def run(config: LorenzConfig, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train, evaluate and plot as configured; returns the numbers it printed.

    Returns:
        {"rnn_rmse", "naive_rmse", "ratio", "forecast_rmse" (horizon -> RMSE),
        "persistence_rmse" (horizon -> RMSE), "train_seconds", "plot" (a path or None)}.
    """
    validate(config)
    started = time.perf_counter()
    minigrad.manual_seed(config.seed)
    data = lorenz_dataset(config.num_samples, config.look_back)
    last_start = len(data.X_test) - config.forecast_steps - 1
    if last_start < 0:
        raise ValueError(
            f"--forecast_steps: {config.forecast_steps} steps need "
            f"{config.forecast_steps + 1} test windows, and there are {len(data.X_test)}; "
            "lower it or raise --num_samples"
        )
    if config.forecast_starts > last_start + 1:
        raise ValueError(
            f"--forecast_starts: {config.forecast_starts} forecasts of "
            f"{config.forecast_steps} steps need that many distinct starting windows, and "
            f"the {len(data.X_test)} test windows have {last_start + 1}; lower it or raise "
            "--num_samples"
        )
    starts = np.linspace(0, last_start, config.forecast_starts).astype(int)
    log(
        f"Lorenz x: {len(data.series):,} values (RK4, dt 0.01); windows of "
        f"{config.look_back}: {len(data.X_train):,} train, {len(data.X_test):,} test"
    )

    model = build_model(config.look_back, config.units, learning_rate=config.learning_rate)
    log(f"SimpleRNN({config.units}, tanh) -> Dense(1): {model.count_params()} parameters")
    train_started = time.perf_counter()
    for epoch in range(config.epochs):
        epoch_started = time.perf_counter()
        history = model.fit(
            data.X_train, data.y_train, epochs=1, batch_size=config.batch_size, verbose=0
        )
        test_loss = model.evaluate(data.X_test, data.y_test, batch_size=1024)
        log(
            f"epoch {epoch + 1}/{config.epochs}: train loss {history.history['loss'][0]:.5f}, "
            f"test loss {test_loss:.5f}, time {time.perf_counter() - epoch_started:.1f}s"
        )
    train_seconds = time.perf_counter() - train_started

    prediction = model.predict(data.X_test, batch_size=1024)
    rnn_error = rmse(prediction, data.y_test)
    naive_error = rmse(naive_forecast(data.X_test), data.y_test)
    log(
        f"one step ahead, test RMSE: rnn {rnn_error:.4f}, naive (repeat the last value) "
        f"{naive_error:.4f}, ratio rnn/naive {rnn_error / naive_error:.3f}"
    )

    first = data.test_index[starts] + config.look_back  # where each forecast's truth starts
    truth = data.series[first[:, None] + np.arange(config.forecast_steps)]
    forecast = free_run(model, data.X_test[starts], config.forecast_steps)
    persistence = np.repeat(data.X_test[starts, -1, :], config.forecast_steps, axis=1)
    horizons = [h for h in (1, 10, 25, 50, 100, 200, 300, 500) if h <= config.forecast_steps]
    forecast_errors = horizon_errors(forecast, truth, horizons)
    persistence_errors = horizon_errors(persistence, truth, horizons)
    log(
        f"free-running forecast from {config.forecast_starts} test windows, RMSE by horizon "
        "(no skill: 1.41):"
    )
    log("  steps  time   rnn     repeat-last")
    for h in horizons:
        log(f"  {h:5d}  {h * 0.01:4.2f}  {forecast_errors[h]:.4f}  {persistence_errors[h]:.4f}")

    plot = _plot(
        config, data, prediction, truth, forecast, forecast_errors, persistence_errors, log
    )
    log(f"time: training {train_seconds:.1f}s, total {time.perf_counter() - started:.1f}s")
    if plot is not None:
        log(f"wrote {plot}")
    return {
        "rnn_rmse": rnn_error,
        "naive_rmse": naive_error,
        "ratio": rnn_error / naive_error,
        "forecast_rmse": forecast_errors,
        "persistence_rmse": persistence_errors,
        "train_seconds": train_seconds,
        "plot": plot,
    }


def _plot(
    config: LorenzConfig,
    data: LorenzData,
    prediction: np.ndarray,
    truth: np.ndarray,
    forecast: np.ndarray,
    forecast_errors: dict[int, float],
    persistence_errors: dict[int, float],
    log: Callable[[str], Any],
) -> Any:
    """One-step predictions, one free-running forecast, and error by horizon."""
    plt = plotting.pyplot()
    if plt is None:
        log(plotting.missing_message("the forecasts"))
        return None
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 9))
    shown = min(600, len(data.y_test))
    time_axis = np.arange(shown) * 0.01
    top.plot(time_axis, data.y_test[:shown, 0], color="black", lw=1, label="truth")
    top.plot(
        time_axis,
        prediction[:shown, 0],
        color="tab:red",
        lw=1,
        ls="--",
        label="rnn, one step ahead",
    )
    top.set(xlabel="time", ylabel="x (standardised)", title="One step ahead on the test series")
    top.legend(loc="upper right")
    steps = np.arange(1, forecast.shape[1] + 1) * 0.01
    middle.plot(steps, truth[0], color="black", lw=1, label="truth")
    middle.plot(steps, forecast[0], color="tab:red", lw=1, label="rnn, fed its own output")
    middle.set(xlabel="time ahead", ylabel="x (standardised)", title="Free-running forecast")
    middle.legend(loc="upper right")
    horizons = list(forecast_errors)
    bottom.plot(
        np.array(horizons) * 0.01,
        list(forecast_errors.values()),
        "o-",
        color="tab:red",
        label="rnn, free-running",
    )
    bottom.plot(
        np.array(horizons) * 0.01,
        list(persistence_errors.values()),
        "s-",
        color="tab:gray",
        label="repeat the last value",
    )
    bottom.axhline(np.sqrt(2), color="black", lw=0.8, ls=":", label="no skill")
    bottom.set(
        xlabel="time ahead",
        ylabel="RMSE",
        yscale="log",
        title=f"Forecast error over {config.forecast_starts} starts",
    )
    bottom.legend(loc="lower right")
    figure.tight_layout()
    return plotting.save_figure(figure, config.out_dir, "lorenz.png")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(run, LorenzConfig, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
