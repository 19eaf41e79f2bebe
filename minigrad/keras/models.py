"""Sequential: a stack of layers with Keras' compile, fit, evaluate, predict and summary.

The model is a minigrad.nn Module, so `parameters()`, `state_dict()` and
`minigrad.save` work on it as on any other; `fit` is a plain minibatch loop over
minigrad.optim.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from minigrad import random
from minigrad.autograd import no_grad
from minigrad.keras import losses
from minigrad.keras import metrics as metrics_module
from minigrad.keras import optimizers as optimizers_module
from minigrad.keras.layers import Input, Layer, Shape, as_shape
from minigrad.nn import Module
from minigrad.tensor import DEFAULT_DTYPE, Tensor


class History:
    """What fit() recorded: `history` maps 'loss', 'val_loss' and each metric to epoch values."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = {}

    def _record(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


def _format_shape(shape: Shape) -> str:
    """(None, 5) as Keras prints it."""
    inside = ", ".join("None" if n is None else str(n) for n in shape)
    return f"({inside},)" if len(shape) == 1 else f"({inside})"


def _matches(expected: Shape, got: tuple[int, ...]) -> bool:
    """True when `got` has `expected`'s axes, each equal where `expected` knows the size."""
    if len(expected) != len(got):
        return False
    return all(e is None or e == g for e, g in zip(expected, got, strict=True))


def _as_array(data: Any, name: str) -> np.ndarray:
    array = np.asarray(data.data if isinstance(data, Tensor) else data)
    if array.ndim == 0:
        raise ValueError(f"{name} must have a samples axis, got a scalar")
    return array


class Sequential(Module):
    """A model that applies its layers in order, with Keras' training methods.

    Args:
        layers: layers (and optionally an Input first) to add.
        name: shown by summary().
    """

    def __init__(
        self, layers: Sequence[Layer | Input] | None = None, name: str = "sequential"
    ) -> None:
        super().__init__()
        self.name = name
        self.layers: list[Layer] = []
        self._input_shape: Shape | None = None  # (None, ...) once known
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self._metrics: list[tuple[str, metrics_module.Metric]] = []
        self._optimizer_built = False
        for layer in layers or ():
            self.add(layer)

    # ---- building ------------------------------------------------------------------

    def add(self, layer: Layer | Input) -> None:
        """Append a layer; an Input (or `input_shape=` on the first layer) fixes the input shape."""
        if isinstance(layer, Input):
            if self.layers or self._input_shape is not None:
                raise ValueError("add: an Input must come first in a Sequential model")
            self._input_shape = (None, *layer.shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"add: expected a minigrad.keras layer (Dense, SimpleRNN, ...), got "
                f"{type(layer).__name__}"
            )
        if any(layer is existing for existing in self.layers):
            raise ValueError(f"add: layer {layer.name!r} is already in the model")
        if layer.name is None:
            base, k = layer.default_name, 1
            layer.name = base
            while hasattr(self, layer.name):
                layer.name, k = f"{base}_{k}", k + 1
        elif hasattr(self, layer.name):
            raise ValueError(f"add: the name {layer.name!r} is already taken in this model")
        if not self.layers and self._input_shape is None and layer.declared_input_shape:
            self._input_shape = (None, *layer.declared_input_shape)
        setattr(self, layer.name, layer)
        self.layers.append(layer)
        if self._input_shape is not None:
            self._build_layers()

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create every layer's weights for inputs of `input_shape`, batch axis first."""
        if not self.layers:
            raise ValueError("build: the model has no layers; add some first")
        self._input_shape = (None, *as_shape(tuple(input_shape)[1:], "build: input_shape"))
        self._build_layers()

    def _build_layers(self) -> None:
        shape = self._input_shape
        for layer in self.layers:
            declared = layer.declared_input_shape
            if declared is not None and not _matches((None, *declared), shape):
                raise ValueError(
                    f"{layer.name}: input_shape={declared} disagrees with the shape "
                    f"{_format_shape(shape[1:])} that reaches it"
                )
            if not layer.built:
                layer.build(shape)
            elif not _matches(layer.input_shape, shape):
                raise ValueError(
                    f"{layer.name}: was built for inputs {_format_shape(layer.input_shape)}, "
                    f"but gets {_format_shape(shape)}"
                )
            shape = layer.output_shape

    @property
    def built(self) -> bool:
        """True once every layer has its weights."""
        return bool(self.layers) and all(layer.built for layer in self.layers)

    @property
    def input_shape(self) -> Shape | None:
        """The input's shape with the batch axis as None, once known."""
        return self._input_shape

    @property
    def output_shape(self) -> Shape | None:
        """The last layer's output shape, once the model is built."""
        return self.layers[-1].output_shape if self.built else None

    def forward(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            x = Tensor(self._check_x(x, "call"))
        elif not self.built:
            self._check_x(x.data, "call")
        for layer in self.layers:
            x = layer(x)
        return x

    # ---- checking data -------------------------------------------------------------

    def _dtype(self) -> np.dtype:
        for p in self.parameters():
            return p.dtype
        return np.dtype(DEFAULT_DTYPE)

    def _describe_input(self, expected: Shape | None, ndim: int) -> str:
        """'(num_samples, look_back, n_features) = (N, 40, 1)', for error messages."""
        names = self.layers[0].axis_names
        if len(names) != ndim:
            names = (
                ("num_samples", "n_features")
                if ndim == 2
                else (("num_samples",) + tuple(f"axis_{k}" for k in range(1, ndim)))
            )
        text = "(" + ", ".join(names) + ")"
        if expected is not None:
            sizes = ", ".join("any" if n is None else str(n) for n in expected[1:])
            text += f" = (N, {sizes})"
        return text

    def _check_x(self, x: Any, caller: str) -> np.ndarray:
        """x as an array of the model's dtype, checked against (and fixing) the input shape."""
        if not self.layers:
            raise ValueError(f"{caller}: the model has no layers; add some first")
        x = _as_array(x, "X")
        expected = self._input_shape
        first = self.layers[0]
        ndim = len(expected) if expected is not None else len(first.axis_names) or max(x.ndim, 2)
        if x.ndim != ndim or (expected is not None and not _matches(expected[1:], x.shape[1:])):
            message = f"X has shape {x.shape}: expected {self._describe_input(expected, ndim)}"
            if x.ndim == ndim - 1 and (
                expected is None or (expected[-1] == 1 and _matches(expected[1:-1], x.shape[1:]))
            ):
                sizes = ", ".join([*(str(n) for n in x.shape[1:]), "1"])
                message += f"; for one feature per sample use X.reshape(len(X), {sizes})"
            raise ValueError(message)
        if len(x) == 0:
            raise ValueError(f"{caller}: X holds no samples (shape {x.shape})")
        if expected is None:
            self.build((None, *x.shape[1:]))
        dtype = self._dtype()
        return x if x.dtype == dtype else x.astype(dtype)

    def _check_y(self, x: np.ndarray, y: Any, caller: str) -> np.ndarray:
        """y as an array lined up with the model's output: floats, or integer labels."""
        y = _as_array(y, "y")
        if len(y) != len(x):
            raise ValueError(
                f"{caller}: x has {len(x)} samples but y has {len(y)}; they must match along "
                "the first axis (samples)"
            )
        out = self.output_shape
        if self.loss is not None and self.loss.integer_targets:
            if y.ndim == len(out) and y.shape[-1] == 1:
                y = y[..., 0]  # labels given as a column
            if not _matches(out[1:-1], y.shape[1:]):
                raise ValueError(
                    f"{caller}: y has shape {y.shape}, expected one integer label per output "
                    f"row, (N{''.join(f', {n}' for n in out[1:-1])}), for outputs "
                    f"{_format_shape(out)}"
                )
            return y.astype(np.int64)
        if y.ndim == len(out) - 1 and out[-1] == 1:
            y = y[..., None]  # (N,) targets for (N, 1) outputs
        if self.loss is not None and self.loss.strict_shapes and not _matches(out[1:], y.shape[1:]):
            raise ValueError(
                f"{caller}: y has shape {y.shape}, expected (N, "
                f"{', '.join('any' if n is None else str(n) for n in out[1:])}) to match the "
                f"model's output {_format_shape(out)}"
            )
        return y.astype(self._dtype(), copy=False)

    # ---- training ------------------------------------------------------------------

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: str | Callable[[Tensor, Tensor], Tensor] | losses.Loss | None = None,
        metrics: Sequence[str | Callable[..., Any]] | None = None,
    ) -> None:
        """Choose the optimizer, the loss and the metrics that fit() and evaluate() use.

        Args:
            optimizer: 'adam', 'sgd' or 'rmsprop' with Keras' default learning rates
                (0.001, 0.01, 0.001); a minigrad.keras.optimizers object such as
                Adam(learning_rate=0.01); a minigrad.optim optimizer over this model's
                parameters; or a factory params -> minigrad.optim optimizer.
            loss: 'mse', 'mae', 'binary_crossentropy', 'categorical_crossentropy',
                'sparse_categorical_crossentropy' (these take probabilities, as in Keras;
                use losses.SparseCategoricalCrossentropy(from_logits=True) for scores),
                a minigrad.keras.losses.Loss, or a callable (y_true, y_pred) -> Tensor.
            metrics: names ('mae', 'mse', 'accuracy', ...) or callables (y_true, y_pred),
                reported under their names in History and by evaluate().
        """
        if loss is None:
            raise ValueError("compile: loss is required, e.g. loss='mse'")
        if isinstance(metrics, str):
            raise TypeError(
                f"compile: metrics must be a list, got the string {metrics!r}; "
                f"write metrics=[{metrics!r}]"
            )
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses.get(loss)
        self._metrics = [metrics_module.get(m, self.loss) for m in metrics or ()]
        names = [name for name, _ in self._metrics]
        if "loss" in names or len(set(names)) != len(names):
            raise ValueError(f"compile: metric names must be distinct and not 'loss', got {names}")
        self._optimizer_built = False

    def _require_compiled(self, caller: str) -> None:
        if self.loss is None or self.optimizer is None:
            raise RuntimeError(
                f"{caller}: the model is not compiled; call "
                "model.compile(optimizer='adam', loss='mse') first"
            )

    def _loss_value(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        value = self.loss(y_true, y_pred)
        return value if value.ndim == 0 else value.mean()  # per-sample losses -> their mean

    def fit(
        self,
        x: Any,
        y: Any,
        epochs: int = 1,
        batch_size: int | None = 32,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        verbose: int = 1,
    ) -> History:
        """Train for `epochs` passes over (x, y) in minibatches; returns the History.

        Args:
            x: inputs, samples first: (num_samples, look_back, n_features) for a
                recurrent first layer, (num_samples, n_features) for a Dense one.
            y: targets, one per sample.
            epochs: passes over the training data.
            batch_size: samples per gradient step (None means 32).
            validation_split: the fraction of samples, taken from the end of x and y
                before shuffling, held out to report 'val_loss' after every epoch.
            validation_data: (x_val, y_val) to use instead of a split.
            shuffle: visit the training samples in a new random order every epoch
                (drawn from minigrad's generator, so minigrad.manual_seed repeats it).
            verbose: 0 silent, 1 a progress bar with the loss (on stderr), 2 one line
                per epoch (on stderr).

        Returns:
            A History whose `history` maps 'loss', every metric and, with validation,
            'val_loss' and 'val_<metric>' to one value per epoch.
        """
        self._require_compiled("fit")
        batch_size = self._check_batch_size(batch_size, "fit")
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
        if not 0 <= validation_split < 1:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
        x = self._check_x(x, "fit")
        y = self._check_y(x, y, "fit")

        validation = None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            x_val = self._check_x(validation_data[0], "fit")
            validation = (x_val, self._check_y(x_val, validation_data[1], "fit"))
        elif validation_split:
            n_train = int(len(x) * (1 - validation_split))
            if n_train == 0 or n_train == len(x):
                raise ValueError(
                    f"fit: validation_split={validation_split} of {len(x)} samples leaves "
                    f"{n_train} for training and {len(x) - n_train} for validation; both need some"
                )
            x, validation = x[:n_train], (x[n_train:], y[n_train:])
            y = y[:n_train]

        if not self._optimizer_built:
            self.optimizer.build(list(self.parameters()))
            self._optimizer_built = True
        else:  # as Keras, an optimizer updates only the variables it was built with
            known = {id(p) for g in self.optimizer.inner.param_groups for p in g["params"]}
            new = [p for p in self.parameters() if id(p) not in known]
            if new:
                raise ValueError(
                    f"fit: the model has {len(new)} weight arrays that its optimizer, built "
                    "at the first fit, does not update (layers added since?); call compile() "
                    "again to train them all"
                )
        history = History()
        steps = math.ceil(len(x) / batch_size)
        history.params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        for epoch in range(epochs):
            started = time.perf_counter()
            bar = None
            if verbose == 1:
                bar = tqdm(
                    total=steps,
                    desc=f"Epoch {epoch + 1}/{epochs}",
                    unit="batch",
                    file=sys.stderr,
                    leave=True,
                    dynamic_ncols=True,
                )
            logs = self._train_epoch(x, y, batch_size, shuffle, bar)
            if validation is not None:
                scores = self._evaluate_arrays(*validation, batch_size)
                logs.update({f"val_{key}": value for key, value in scores.items()})
            history._record(epoch, logs)
            summary = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
            if bar is not None:
                bar.set_postfix_str(summary)
                bar.close()
            elif verbose == 2:
                seconds = time.perf_counter() - started
                print(f"Epoch {epoch + 1}/{epochs} - {seconds:.1f}s - {summary}", file=sys.stderr)
        return history

    def _train_epoch(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, bar: Any
    ) -> dict[str, float]:
        """One pass over the data; returns the sample-weighted mean loss and metrics."""
        self.train()
        if shuffle:
            order = random.generator().permutation(len(x))
            x, y = x[order], y[order]  # one copy per epoch; every batch is then a view
        params = list(self.parameters())
        step = self.optimizer.inner.step
        total_loss = 0.0
        metric_totals = [0.0] * len(self._metrics)
        last_shown = time.perf_counter()
        for start in range(0, len(x), batch_size):
            x_batch, y_batch = x[start : start + batch_size], y[start : start + batch_size]
            prediction = self.forward(Tensor(x_batch))
            loss = self._loss_value(Tensor(y_batch), prediction)
            for p in params:
                p.grad = None
            loss.backward()
            step()

            count = len(x_batch)
            total_loss += float(loss.data) * count
            for k, (_, metric) in enumerate(self._metrics):
                metric_totals[k] += metric(y_batch, prediction.data) * count
            if bar is not None:
                bar.update(1)
                if time.perf_counter() - last_shown > 0.2:
                    bar.set_postfix_str(f"loss: {total_loss / (start + count):.4f}", refresh=False)
                    last_shown = time.perf_counter()
        logs = {"loss": total_loss / len(x)}
        for (name, _), metric_total in zip(self._metrics, metric_totals, strict=True):
            logs[name] = metric_total / len(x)
        return logs

    # ---- inference -----------------------------------------------------------------

    @staticmethod
    def _check_batch_size(batch_size: int | None, caller: str) -> int:
        if batch_size is None:
            return 32
        if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"{caller}: batch_size must be a positive integer, got {batch_size!r}")
        return int(batch_size)

    def _predict_arrays(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                parts = [
                    self.forward(Tensor(x[start : start + batch_size])).data
                    for start in range(0, len(x), batch_size)
                ]
        finally:
            self.train(was_training)
        return np.concatenate(parts)

    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, float]:
        """The loss and metrics over (x, y), each a mean over samples."""
        prediction = self._predict_arrays(x, batch_size)
        totals = dict.fromkeys(["loss", *(name for name, _ in self._metrics)], 0.0)
        with no_grad():
            for start in range(0, len(x), batch_size):
                p, t = prediction[start : start + batch_size], y[start : start + batch_size]
                totals["loss"] += float(self._loss_value(Tensor(t), Tensor(p)).data) * len(p)
                for name, metric in self._metrics:
                    totals[name] += metric(t, p) * len(p)
        return {key: value / len(x) for key, value in totals.items()}

    def evaluate(
        self,
        x: Any,
        y: Any,
        batch_size: int | None = 32,
        verbose: int = 0,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """The loss (and metrics) on (x, y), without training.

        Returns:
            The loss alone when compiled without metrics, else [loss, *metrics] in the
            order given to compile, or a dict by name with `return_dict`.  `verbose` is
            accepted for Keras compatibility; evaluate prints nothing.
        """
        self._require_compiled("evaluate")
        batch_size = self._check_batch_size(batch_size, "evaluate")
        x = self._check_x(x, "evaluate")
        y = self._check_y(x, y, "evaluate")
        scores = self._evaluate_arrays(x, y, batch_size)
        if return_dict:
            return scores
        return scores["loss"] if not self._metrics else list(scores.values())

    def predict(self, x: Any, batch_size: int | None = 32, verbose: int = 0) -> np.ndarray:
        """The model's outputs for x as a NumPy array, computed in batches without a graph.

        `verbose` is accepted for Keras compatibility; predict prints nothing.
        """
        batch_size = self._check_batch_size(batch_size, "predict")
        return self._predict_arrays(self._check_x(x, "predict"), batch_size)

    # ---- inspection ----------------------------------------------------------------

    def count_params(self) -> int:
        """How many numbers the model's weights hold."""
        return self.num_parameters()

    def get_weights(self) -> list[np.ndarray]:
        """Every layer's weights in Keras' layout, layer by layer."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Overwrite every layer's weights from a list in `get_weights`' order."""
        weights = list(weights)
        expected = sum(len(layer.get_weights()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: got {len(weights)} arrays, expected {expected}")
        for layer in self.layers:
            n = len(layer.get_weights())
            layer.set_weights(weights[:n])
            weights = weights[n:]

    def summary(self, print_fn: Callable[[str], Any] | None = print) -> str:
        """Print (with `print_fn`) and return a table of layers, output shapes and weights."""
        if not self.built:
            raise ValueError(
                "summary: the model is not built yet; give input_shape= to the first layer, "
                "start with an Input, or call build() or fit() first"
            )
        rows = [("Layer (type)", "Output shape", "Params")]
        rows += [
            (
                f"{layer.name} ({type(layer).__name__})",
                _format_shape(layer.output_shape),
                f"{layer.count_params():,}",
            )
            for layer in self.layers
        ]
        widths = [max(len(row[k]) for row in rows) for k in range(3)]
        line = "-" * (sum(widths) + 6)

        def fmt(row: tuple[str, str, str]) -> str:
            return f"{row[0]:<{widths[0]}}   {row[1]:<{widths[1]}}   {row[2]:>{widths[2]}}"

        total = self.count_params()
        trainable = sum(p.size for p in self.parameters() if p.requires_grad)
        text = "\n".join(
            [
                f'Model: "{self.name}"',
                line,
                fmt(rows[0]),
                line,
                *map(fmt, rows[1:]),
                line,
                f"Total params: {total:,}",
                f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}",
            ]
        )
        if print_fn is not None:
            print_fn(text)
        return text
