"""The menu of the day: a recurrent network small enough to set by hand, then learn.

`minigrad-rnn menu` or `python -m models.menu`.

A cook serves one of three dishes a day, in the rotation pie -> sushi -> waffles ->
pie.  On a sunny day the cook moves on to the next dish; on a rainy day, yesterday's
dish is served again.  Today's dish therefore depends on today's weather and on
yesterday's dish: a recurrent network whose input is the weather and whose state is
the dish.

The network (rows are examples, as in Keras):

    weather x_t   (batch, 2)  one-hot: sunny, rainy
    dish h_{t-1}  (batch, 3)  one-hot: pie, sushi, waffles (a distribution once learned)

    detectors z_t = sigmoid(h_{t-1} food + x_t weather + bias)     (batch, 6)
    dish logits   = z_t merge + merge_bias                         (batch, 3)
    dish h_t      = softmax(logits)

Set by hand, the six detectors come in two blocks of three, one per dish:

- food (3, 6) = gain * [identity | rotate].  The identity block copies yesterday's
  dish ("keep" detectors); the rotate block moves it one place along the rotation
  ("advance" detectors: advance detector k sees dish k - 1).
- weather (2, 6) sends rain to the keep block and sun to the advance block.
- bias = -1.5 * gain: a detector gets gain * (1 + 1 - 1.5) > 0 when its dish and its
  weather are both on, and at most gain * (1 - 1.5) < 0 otherwise.  The sigmoid
  makes this sum an AND: about 1 or about 0.
- merge (6, 3) = sharpness * [identity; identity] adds, for each dish, its keep and
  its advance detector, and the softmax turns those scores back into a one-hot dish.

The gate is needed: no single layer sigmoid(h A + x B + b) can follow the rule,
because "dish k tomorrow" must fire for (k, rain) and (k - 1, sun) but not for
(k, sun) or (k - 1, rain), an exclusive-or of dish and weather.

The same architecture, started from random weights, learns the rule by
backpropagation through time: its own softmax output is fed back as the next state,
and the loss is the cross-entropy of every day's dish.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import minigrad
from minigrad import nn, optim
from minigrad.nn import functional as F
from minigrad.tensor import Tensor
from models import plotting
from models.commands import add_flags, require_positive, run_command

DISHES = ("pie", "sushi", "waffles")
WEATHER = ("sunny", "rainy")
SUNNY, RAINY = 0, 1
# What each hand-set detector fires on: (yesterday's dish, today's weather).  The
# keep detectors see dish k and rain; advance detector k sees dish k - 1 and sun.
DETECTS = [(k, RAINY) for k in range(3)] + [((k - 1) % 3, SUNNY) for k in range(3)]
SITUATIONS = [f"{DISHES[dish]}+{('sun', 'rain')[weather]}" for dish, weather in DETECTS]


def generate_days(
    num_days: int, rng: np.random.Generator, rain_probability: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Random weather and the dishes the cook serves.

    Returns:
        weather (num_days,) of SUNNY or RAINY, and dishes (num_days + 1,): dishes[0]
        is the dish served the day before the first, dishes[t + 1] the dish of day t.
    """
    if num_days <= 0:
        raise ValueError(f"generate_days: num_days must be positive, got {num_days}")
    weather = (rng.random(num_days) < rain_probability).astype(np.int64)
    dishes = np.empty(num_days + 1, np.int64)
    dishes[0] = rng.integers(len(DISHES))
    for t, today in enumerate(weather):
        dishes[t + 1] = dishes[t] if today == RAINY else (dishes[t] + 1) % len(DISHES)
    return weather, dishes


def one_hot(indices: np.ndarray, size: int) -> np.ndarray:
    """Integer indices (...) -> float32 one-hot vectors (..., size)."""
    return np.eye(size, dtype=np.float32)[indices]


class MenuCell(nn.Module):
    """The menu network: six sigmoid detectors merged into a softmax over dishes.

    Starts from random weights (normal, standard deviation `init_scale`);
    `hand_set_cell` overwrites them with the designed ones.
    """

    def __init__(self, hidden: int = 6, init_scale: float = 0.5) -> None:
        super().__init__()
        rng = minigrad.random.generator()

        def draw(*shape: int) -> nn.Parameter:
            return nn.Parameter((init_scale * rng.standard_normal(shape)).astype(np.float32))

        self.food = draw(len(DISHES), hidden)  # (3, 6)
        self.weather = draw(len(WEATHER), hidden)  # (2, 6)
        self.bias = draw(hidden)
        self.merge = draw(hidden, len(DISHES))  # (6, 3)
        self.merge_bias = draw(len(DISHES))

    def step(self, weather_t: Tensor, dish: Tensor) -> tuple[Tensor, Tensor]:
        """One day: weather (batch, 2) and yesterday's dish (batch, 3) -> (dish, logits)."""
        detectors = F.sigmoid(dish @ self.food + weather_t @ self.weather + self.bias)
        logits = detectors @ self.merge + self.merge_bias  # (batch, 3)
        return F.softmax(logits, axis=-1), logits

    def forward(self, weather: Tensor, first_dish: Tensor) -> Tensor:
        """Run over days, feeding each day's dish back as the next state.

        Args:
            weather: (batch, days, 2) one-hot.
            first_dish: (batch, 3), the dish of the day before the first.

        Returns:
            The dish logits of every day, (batch, days, 3).
        """
        dish, logits = first_dish, []
        for t in range(weather.shape[1]):
            dish, day_logits = self.step(weather[:, t], dish)
            logits.append(day_logits)
        return minigrad.stack(logits, axis=1)


def hand_set_cell(gain: float = 10.0, sharpness: float = 10.0) -> MenuCell:
    """The designed network described in the module docstring."""
    cell = MenuCell()
    identity = np.eye(3, dtype=np.float32)
    rotate = np.roll(identity, 1, axis=1)  # rotate[j, (j + 1) % 3] = 1: dish j -> next
    cell.food.data[...] = gain * np.concatenate([identity, rotate], axis=1)
    cell.weather.data[...] = 0.0
    cell.weather.data[RAINY, :3] = gain  # rain feeds the keep detectors
    cell.weather.data[SUNNY, 3:] = gain  # sun feeds the advance detectors
    cell.bias.data[...] = -1.5 * gain
    cell.merge.data[...] = sharpness * np.concatenate([identity, identity], axis=0)
    cell.merge_bias.data[...] = 0.0
    return cell


@minigrad.no_grad()
def predict_dishes(cell: MenuCell, weather: np.ndarray, first_dish: int) -> np.ndarray:
    """The dish the network serves each day, running freely from `first_dish`."""
    logits = cell(Tensor(one_hot(weather, 2)[None]), Tensor(one_hot(np.array([first_dish]), 3)))
    return logits.data[0].argmax(axis=-1)


def accuracy(cell: MenuCell, weather: np.ndarray, dishes: np.ndarray) -> float:
    """The share of days whose dish the network gets right, over one free run."""
    return float(np.mean(predict_dishes(cell, weather, int(dishes[0])) == dishes[1:]))


def chunks(
    weather: np.ndarray, dishes: np.ndarray, days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a series into sequences of `days` days for a batch of BPTT.

    Returns:
        weather (batch, days, 2) one-hot, the dish before each sequence (batch, 3)
        one-hot, and the dishes to predict (batch, days) as class indices.
    """
    count = len(weather) // days
    if count == 0:
        raise ValueError(f"--sequence_days: {days} is longer than the {len(weather)} training days")
    w = weather[: count * days].reshape(count, days)
    targets = dishes[1 : count * days + 1].reshape(count, days)
    before = dishes[0 : count * days : days]
    return one_hot(w, 2), one_hot(before, 3), targets


def train(
    cell: MenuCell,
    weather: np.ndarray,
    dishes: np.ndarray,
    sequence_days: int,
    learning_rate: float,
    max_epochs: int,
    log_every: int,
    target_loss: float,
    log: Callable[[str], Any] = print,
) -> list[tuple[int, float, float]]:
    """Full-batch Adam on every sequence until the loss is below `target_loss`
    and every training day is right, or `max_epochs` passes.

    Returns:
        (epoch, loss, training accuracy) at every logged epoch and at the last one.
    """
    inputs, before, targets = chunks(weather, dishes, sequence_days)
    x, h0 = Tensor(inputs), Tensor(before)
    optimizer = optim.Adam(cell.parameters(), lr=learning_rate)
    curve: list[tuple[int, float, float]] = []
    for epoch in range(1, max_epochs + 1):
        logits = cell(x, h0)  # (batch, days, 3)
        loss = F.cross_entropy(logits.reshape(-1, len(DISHES)), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done = loss.item() < target_loss and accuracy(cell, weather, dishes) == 1.0
        if epoch % log_every == 0 or done or epoch == max_epochs:
            right = accuracy(cell, weather, dishes)
            curve.append((epoch, loss.item(), right))
            log(f"epoch {epoch}: loss {loss.item():.4f}, days right {right:.1%}")
        if done:
            break
    return curve


def show_days(
    cell: MenuCell, weather: np.ndarray, dishes: np.ndarray, days: int, log: Callable[[str], Any]
) -> None:
    """Print the first `days` days: weather, what the network serves, what the cook serves."""
    served = predict_dishes(cell, weather[:days], int(dishes[0]))
    log(f"  day 0: {DISHES[dishes[0]]} (given)")
    for t in range(min(days, len(weather))):
        mark = "right" if served[t] == dishes[t + 1] else "WRONG"
        log(
            f"  day {t + 1}: {WEATHER[weather[t]]:5s} -> network {DISHES[served[t]]:7s} "
            f"cook {DISHES[dishes[t + 1]]:7s} {mark}"
        )


def situation_order(cell: MenuCell) -> list[int]:
    """The detectors sorted by the situation (yesterday's dish, weather) that excites
    each most, situations in the hand-set detectors' order, DETECTS."""
    dish = one_hot(np.array([d for d, _ in DETECTS]), 3)
    weather = one_hot(np.array([w for _, w in DETECTS]), 2)
    with minigrad.no_grad():
        detectors = F.sigmoid(
            Tensor(dish) @ cell.food + Tensor(weather) @ cell.weather + cell.bias
        ).data  # (6 situations, hidden)
    return sorted(range(detectors.shape[1]), key=lambda k: int(detectors[:, k].argmax()))


def format_matrices(hand: MenuCell, learned: MenuCell) -> list[str]:
    """The hand-set and learned weights side by side, learned detectors in situation order."""
    order = situation_order(learned)
    lines = []
    for name, rows in (
        ("food", DISHES),
        ("weather", WEATHER),
        ("bias", ("",)),
        ("merge", SITUATIONS),
        ("merge_bias", ("",)),
    ):
        a, b = getattr(hand, name).data, getattr(learned, name).data
        if name in ("food", "weather", "bias"):
            b = b[..., order]
        if name == "merge":
            b = b[order]
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        lines.append(f"{name}: hand-set | learned")
        for label, row_a, row_b in zip(rows, a, b, strict=True):
            left = " ".join(f"{v:6.1f}" for v in row_a)
            right = " ".join(f"{v:6.1f}" for v in row_b)
            lines.append(f"  {label:>12s}  {left}  |  {right}")
    return lines


# ---- the command ---------------------------------------------------------------------


@dataclass
class MenuConfig:
    """The settings of `minigrad-rnn menu`; each is also a command-line flag."""

    out_dir: str = "out-rnn"
    seed: int = 1337
    train_days: int = 600
    sequence_days: int = 20
    test_days: int = 1000
    learning_rate: float = 0.05
    max_epochs: int = 2000
    log_every: int = 100
    target_loss: float = 0.01


HELP = {
    "out_dir": "folder for the plot (menu.png)",
    "seed": "seed for the weather and the starting weights",
    "train_days": "days of generated weather to train on",
    "sequence_days": "days per sequence that backpropagation runs through",
    "test_days": "days of fresh weather the trained network is tested on",
    "learning_rate": "Adam learning rate",
    "max_epochs": "give up training after this many full-batch steps",
    "log_every": "print the loss every this many epochs",
    "target_loss": "stop once the loss is below this and every training day is right",
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of `minigrad-rnn menu`, defaults shown in --help."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-rnn menu",
        description="The menu of the day: a recurrent network set by hand, then trained.",
    )
    return add_flags(parser, MenuConfig, HELP)


def validate(config: MenuConfig) -> None:
    """Raise ValueError naming the first flag whose value makes no sense."""
    require_positive(
        config,
        (
            "train_days",
            "sequence_days",
            "test_days",
            "max_epochs",
            "log_every",
            "learning_rate",
            "target_loss",
        ),
    )
    if config.sequence_days > config.train_days:
        raise ValueError(
            f"--sequence_days ({config.sequence_days}) must not exceed --train_days "
            f"({config.train_days})"
        )


def run(config: MenuConfig, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Check the hand-set network, train one from scratch, test it; returns the numbers.

    Returns:
        {"hand_accuracy", "trained_accuracy" (on the fresh test series),
        "train_accuracy", "epochs", "curve" [(epoch, loss, accuracy)], "plot"}.
    """
    validate(config)
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    minigrad.manual_seed(config.seed)
    test_weather, test_dishes = generate_days(config.test_days, rng)

    hand = hand_set_cell()
    hand_accuracy = accuracy(hand, test_weather, test_dishes)
    log(f"hand-set network on {config.test_days} random days: {hand_accuracy:.1%} right")
    show_days(hand, test_weather, test_dishes, 7, log)

    learned = MenuCell()
    train_weather, train_dishes = generate_days(config.train_days, rng)
    log(
        f"training the same network from random weights on {config.train_days} days, "
        f"{config.sequence_days} days per sequence (BPTT, Adam lr {config.learning_rate})"
    )
    curve = train(
        learned,
        train_weather,
        train_dishes,
        config.sequence_days,
        config.learning_rate,
        config.max_epochs,
        config.log_every,
        config.target_loss,
        log,
    )
    trained_accuracy = accuracy(learned, test_weather, test_dishes)
    log(
        f"trained network after {curve[-1][0]} epochs: {curve[-1][2]:.1%} of training days "
        f"right, {trained_accuracy:.1%} of {config.test_days} fresh test days right"
    )
    show_days(learned, test_weather, test_dishes, 7, log)
    log(
        "weights; detectors (columns of food, weather, bias; rows of merge) listed by the "
        f"(yesterday's dish + weather) they fire on: {', '.join(SITUATIONS)}"
    )
    for line in format_matrices(hand, learned):
        log(line)

    plot = _plot(config, curve, hand, learned, log)
    log(f"time: total {time.perf_counter() - started:.1f}s")
    if plot is not None:
        log(f"wrote {plot}")
    return {
        "hand_accuracy": hand_accuracy,
        "trained_accuracy": trained_accuracy,
        "train_accuracy": curve[-1][2],
        "epochs": curve[-1][0],
        "curve": curve,
        "plot": plot,
    }


def _plot(
    config: MenuConfig,
    curve: list[tuple[int, float, float]],
    hand: MenuCell,
    learned: MenuCell,
    log: Callable[[str], Any],
) -> Any:
    """The loss curve, and the food weights hand-set and learned."""
    plt = plotting.pyplot()
    if plt is None:
        log(plotting.missing_message("the loss curve and weights"))
        return None
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 3.8))
    epochs = [epoch for epoch, _, _ in curve]
    losses = [loss for _, loss, _ in curve]
    left.plot(epochs, losses, "o-", color="tab:blue")
    left.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="Training loss")
    order = situation_order(learned)
    for axis, matrix, title in (
        (middle, hand.food.data, "food, hand-set"),
        (right, learned.food.data[:, order], "food, learned"),
    ):
        limit = np.abs(matrix).max()
        axis.imshow(matrix, cmap="coolwarm", vmin=-limit, vmax=limit)
        axis.set_xticks(range(6), SITUATIONS, rotation=45, ha="right")
        axis.set_yticks(range(3), DISHES)
        axis.set_title(title)
    figure.tight_layout()
    return plotting.save_figure(figure, config.out_dir, "menu.png")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(run, MenuConfig, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
