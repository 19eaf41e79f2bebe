"""Time one training epoch of the lecture's SimpleRNN recipe in minigrad and in PyTorch.

    python bench/rnn_epoch.py [--epochs 3] [--windows 40000] [--torch-threads 1]

The model is SimpleRNN(5, tanh) + Dense(1) on windows of a noisy sine wave, 40 steps
of one feature each, predicting the next value: MSE, Adam at 1e-3, batches of 32, the
samples shuffled every epoch, no validation.  minigrad runs it through
minigrad.keras (`fit(..., verbose=0)`); PyTorch runs the same model eagerly
(torch.nn.RNN with batch_first, then nn.Linear), starting from the same weights and
visiting batches of the same size in its own shuffled order.

The two alternate epoch by epoch in one process, so both see the same machine load,
and the median seconds per epoch are compared.  PyTorch runs on one thread by default
(`--torch-threads 0` keeps its default): with batches this small its threads only
contend, and on a busy two-core machine its default made each epoch many times slower.
Without PyTorch installed the script times minigrad alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np

import minigrad
from minigrad.keras import Sequential
from minigrad.keras.layers import Dense, SimpleRNN


def make_windows(windows: int, look_back: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """X (windows, look_back, 1) of a noisy sine wave and y (windows, 1), the value after each."""
    rng = np.random.default_rng(seed)
    t = np.arange(windows + look_back) * 0.1
    series = (np.sin(t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], look_back)[:windows]
    return np.ascontiguousarray(X[..., None]), series[look_back : look_back + windows, None]


def minigrad_model(look_back: int, units: int) -> Sequential:
    model = Sequential()
    model.add(SimpleRNN(units, activation="tanh", input_shape=(look_back, 1)))
    model.add(Dense(1, activation="linear"))
    model.compile(optimizer="adam", loss="mse")
    return model


def torch_trainer(model: Sequential, batch_size: int, seed: int) -> Any:
    """A function that runs one PyTorch epoch on (X, y) and returns its mean loss."""
    import torch

    kernel, recurrent_kernel, bias, dense_kernel, dense_bias = model.get_weights()
    units = kernel.shape[1]
    rnn = torch.nn.RNN(kernel.shape[0], units, nonlinearity="tanh", batch_first=True)
    head = torch.nn.Linear(units, 1)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(kernel.T))
        rnn.weight_hh_l0.copy_(torch.from_numpy(recurrent_kernel.T))
        rnn.bias_ih_l0.copy_(torch.from_numpy(bias))
        rnn.bias_hh_l0.zero_()
        head.weight.copy_(torch.from_numpy(dense_kernel.T))
        head.bias.copy_(torch.from_numpy(dense_bias))
    parameters = [*rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    rng = np.random.default_rng(seed)

    def epoch(X: np.ndarray, y: np.ndarray) -> float:
        order = rng.permutation(len(X))
        X_shuffled, y_shuffled = torch.from_numpy(X[order]), torch.from_numpy(y[order])
        total = 0.0
        for start in range(0, len(X), batch_size):
            x_batch = X_shuffled[start : start + batch_size]
            y_batch = y_shuffled[start : start + batch_size]
            hidden, _ = rnn(x_batch)  # (batch, look_back, units)
            loss = torch.nn.functional.mse_loss(head(hidden[:, -1]), y_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x_batch)
        return total / len(X)

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per framework")
    parser.add_argument("--windows", type=int, default=40_000)
    parser.add_argument("--look-back", type=int, default=40)
    parser.add_argument("--units", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="PyTorch intra-op threads; 0 keeps PyTorch's default",
    )
    parser.add_argument("--no-torch", action="store_true", help="time minigrad alone")
    args = parser.parse_args()

    X, y = make_windows(args.windows, args.look_back, args.seed)
    minigrad.manual_seed(args.seed)
    model = minigrad_model(args.look_back, args.units)

    torch_epoch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: timing minigrad alone")
        else:
            if args.torch_threads:
                torch.set_num_threads(args.torch_threads)
            torch.manual_seed(args.seed)
            torch_epoch = torch_trainer(model, args.batch_size, args.seed)
            print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(
        f"numpy {np.__version__}; {args.windows} windows of {args.look_back} steps, "
        f"SimpleRNN({args.units}) + Dense(1), batch {args.batch_size}, Adam, MSE"
    )
    print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    times: dict[str, list[float]] = {"minigrad": [], "torch": []}
    for epoch in range(args.epochs):
        started = time.perf_counter()
        history = model.fit(X, y, epochs=1, batch_size=args.batch_size, shuffle=True, verbose=0)
        times["minigrad"].append(time.perf_counter() - started)
        line = (
            f"epoch {epoch + 1}: minigrad {times['minigrad'][-1]:.3f}s, "
            f"loss {history.history['loss'][0]:.5f}"
        )
        if torch_epoch is not None:
            started = time.perf_counter()
            loss = torch_epoch(X, y)
            times["torch"].append(time.perf_counter() - started)
            line += f" | torch {times['torch'][-1]:.3f}s, loss {loss:.5f}"
        print(line)

    mine = statistics.median(times["minigrad"])
    print(f"minigrad: {mine:.3f} s/epoch (median of {args.epochs})")
    if times["torch"]:
        theirs = statistics.median(times["torch"])
        print(f"torch:    {theirs:.3f} s/epoch (median of {args.epochs})")
        print(f"ratio minigrad / torch: {mine / theirs:.2f}")


if __name__ == "__main__":
    main()
