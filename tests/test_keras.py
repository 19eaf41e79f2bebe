"""The Keras-style front end: the lecture recipe, shapes, History, losses, optimizers, errors."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.keras import GRU, LSTM, Dense, Input, Sequential, SimpleRNN, losses, optimizers
from minigrad.keras import layers as keras_layers


def sine_windows(n: int = 2000, look_back: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """X (n, look_back, 1) of a sine wave and y (n,), the value after each window."""
    series = np.sin(np.arange(n + look_back) * 0.1).astype(np.float32)
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], look_back)[:n]
    return np.ascontiguousarray(X[..., None]), series[look_back : look_back + n]


def recipe_model(look_back: int = 20, n_features: int = 1, seed: int = 0) -> Sequential:
    """The lecture's model, line for line."""
    mg.manual_seed(seed)
    model = Sequential()
    model.add(SimpleRNN(5, activation="tanh", input_shape=(look_back, n_features)))
    model.add(Dense(1, activation="linear"))
    model.compile(optimizer="adam", loss="mse")
    return model


def linear_model(features: int = 3, loss: str = "mse", **compile_args) -> Sequential:
    """Dense(1) whose output is x @ [1, 2, 3] + 0.5, for closed-form checks."""
    model = Sequential([Dense(1, input_shape=(features,))])
    model.set_weights(
        [np.arange(1, features + 1, dtype=np.float32)[:, None], np.array([0.5], np.float32)]
    )
    model.compile(loss=loss, **compile_args)
    return model


# ---- the recipe ---------------------------------------------------------------------------


def test_the_lecture_recipe_runs_as_written():
    X, y = sine_windows(400)
    look_back, n_features = X.shape[1], X.shape[2]
    mg.manual_seed(0)
    model = Sequential()
    model.add(SimpleRNN(5, activation="tanh", input_shape=(look_back, n_features)))
    model.add(Dense(1, activation="linear"))
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(X, y, epochs=2, batch_size=32, validation_split=0.1, verbose=0)

    assert set(history.history) == {"loss", "val_loss"}
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == 2
    assert history.epoch == [0, 1]
    assert all(np.isfinite(v) for v in history.history["loss"] + history.history["val_loss"])


def test_the_recipe_learns_the_next_value_of_a_sine_wave():
    X, y = sine_windows(2000)
    model = recipe_model()
    before = model.evaluate(X, y)
    history = model.fit(X, y, epochs=15, batch_size=32, validation_split=0.1, verbose=0)
    assert history.history["loss"][-1] < before / 50
    assert history.history["val_loss"][-1] < before / 50
    assert np.abs(model.predict(X[-100:])[:, 0] - y[-100:]).mean() < 0.15


def test_same_seed_gives_the_same_training_run():
    X, y = sine_windows(300)
    first = recipe_model(seed=3).fit(X, y, epochs=2, verbose=0).history
    second = recipe_model(seed=3).fit(X, y, epochs=2, verbose=0).history
    assert first == second


def test_val_loss_is_the_loss_on_the_last_samples_after_the_epoch():
    X, y = sine_windows(200)
    model = recipe_model()
    history = model.fit(X, y, epochs=1, validation_split=0.25, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(X[150:], y[150:]), rel=1e-5
    )


def test_a_layer_added_after_fit_needs_compile_again_to_be_trained():
    mg.manual_seed(0)
    X = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model = Sequential([Dense(8, input_shape=(4,))])
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, np.zeros((32, 8), np.float32), verbose=0)
    model.add(Dense(1))
    with pytest.raises(ValueError, match=r"2 weight arrays that its optimizer.*call compile\(\)"):
        model.fit(X, np.ones(32, np.float32), verbose=0)
    model.compile(optimizer="adam", loss="mse")
    before = model.layers[1].linear.weight.numpy().copy()
    model.fit(X, np.ones(32, np.float32), verbose=0)
    assert not np.array_equal(model.layers[1].linear.weight.numpy(), before)


# ---- shapes ------------------------------------------------------------------------------


def test_input_shape_builds_the_model_before_it_sees_data():
    model = recipe_model(look_back=40)
    assert model.built
    assert model.input_shape == (None, 40, 1)
    assert [layer.output_shape for layer in model.layers] == [(None, 5), (None, 1)]
    assert [layer.name for layer in model.layers] == ["simple_rnn", "dense"]


def test_without_input_shape_the_model_builds_from_the_first_data():
    model = Sequential([LSTM(4, return_sequences=True), GRU(3), Dense(2)])
    assert not model.built
    out = model.predict(np.zeros((7, 6, 2), np.float32))
    assert out.shape == (7, 2)
    assert model.input_shape == (None, 6, 2)
    assert [layer.output_shape for layer in model.layers] == [(None, 6, 4), (None, 3), (None, 2)]


def test_an_input_fixes_the_shape_and_dense_applies_to_every_step():
    model = Sequential()
    model.add(Input(shape=(None, 3)))  # any number of steps
    model.add(SimpleRNN(4, return_sequences=True))
    model.add(Dense(2, activation="softmax"))
    assert model.output_shape == (None, None, 2)
    out = model.predict(np.ones((5, 9, 3), np.float32))
    assert out.shape == (5, 9, 2)
    np.testing.assert_allclose(out.sum(axis=-1), 1, rtol=1e-6)


def test_layers_get_distinct_default_names():
    model = Sequential([Dense(3, input_shape=(2,)), Dense(3), Dense(1)])
    assert [layer.name for layer in model.layers] == ["dense", "dense_1", "dense_2"]
    assert {name.split(".")[0] for name, _ in model.named_parameters()} == {
        "dense",
        "dense_1",
        "dense_2",
    }


def test_predict_and_evaluate_return_keras_shapes():
    X, y = sine_windows(70)
    model = recipe_model()
    prediction = model.predict(X, batch_size=16)
    assert prediction.shape == (70, 1) and prediction.dtype == np.float32
    np.testing.assert_allclose(prediction, model(X).data, rtol=1e-6)
    assert isinstance(model.evaluate(X, y), float)

    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    loss, mae = model.evaluate(X, y)
    np.testing.assert_allclose(mae, np.abs(prediction[:, 0] - y).mean(), rtol=1e-5)
    np.testing.assert_allclose(loss, ((prediction[:, 0] - y) ** 2).mean(), rtol=1e-5)
    assert model.evaluate(X, y, return_dict=True) == pytest.approx({"loss": loss, "mae": mae})


# ---- History -----------------------------------------------------------------------------


def test_history_holds_one_value_per_epoch_for_loss_metrics_and_validation():
    X, y = sine_windows(200)
    model = recipe_model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "mse"])
    history = model.fit(X, y, epochs=3, validation_split=0.2, verbose=0)
    assert list(history.history) == ["loss", "mae", "mse", "val_loss", "val_mae", "val_mse"]
    assert all(len(values) == 3 for values in history.history.values())
    # The loss is the mean squared error, so the two columns agree.
    np.testing.assert_allclose(history.history["loss"], history.history["mse"], rtol=1e-5)
    np.testing.assert_allclose(history.history["val_loss"], history.history["val_mse"], rtol=1e-5)
    assert history.params == {"epochs": 3, "steps": 5, "verbose": 0}


def test_validation_data_replaces_the_split():
    X, y = sine_windows(200)
    model = recipe_model()
    history = model.fit(X[:150], y[:150], validation_data=(X[150:], y[150:]), verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(X[150:], y[150:]), rel=1e-5
    )


def test_verbose_controls_what_fit_writes(capsys):
    X, y = sine_windows(100)
    model = recipe_model()
    model.fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")

    model.fit(X, y, epochs=2, verbose=2)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 2
    assert lines[0].startswith("Epoch 1/2") and "loss: " in lines[0]

    model.fit(X, y, epochs=1, validation_split=0.2, verbose=1)
    out, err = capsys.readouterr()
    assert out == "" and "Epoch 1/1" in err and "val_loss: " in err and "3/3" in err


# ---- losses -------------------------------------------------------------------------------


def probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


@pytest.mark.parametrize(
    "name",
    [
        "mse",
        "mean_squared_error",
        "mae",
        "mean_absolute_error",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
    ],
)
def test_each_loss_string_equals_its_closed_form(name, rng):
    y_pred = probabilities(rng, (6, 3))
    y_true = rng.integers(0, 2, (6, 3)).astype(np.float64)
    labels = rng.integers(0, 3, 6)
    if name in ("mse", "mean_squared_error"):
        expected = np.mean((y_pred - y_true) ** 2)
    elif name in ("mae", "mean_absolute_error"):
        expected = np.mean(np.abs(y_pred - y_true))
    elif name == "binary_crossentropy":
        expected = -np.mean(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))
    else:
        normalised = y_pred / y_pred.sum(axis=1, keepdims=True)  # probabilities of 3 classes
        if name == "categorical_crossentropy":
            y_true = np.eye(3)[labels]
            expected = -np.mean(np.log(normalised[np.arange(6), labels]))
        else:
            y_true = labels
            expected = -np.mean(np.log(normalised[np.arange(6), labels]))
    got = losses.get(name)(mg.Tensor(y_true), mg.Tensor(y_pred))
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_from_logits_losses_equal_the_probability_forms_of_their_softmax(rng):
    logits = rng.standard_normal((5, 4))
    labels = rng.integers(0, 4, 5)
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sparse = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert sparse(mg.Tensor(labels), mg.Tensor(logits)).item() == pytest.approx(
        -np.mean(np.log(soft[np.arange(5), labels])), rel=1e-12
    )
    targets = rng.integers(0, 2, (5, 4)).astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    binary = losses.BinaryCrossentropy(from_logits=True)
    assert binary(mg.Tensor(targets), mg.Tensor(logits)).item() == pytest.approx(
        -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p)), rel=1e-12
    )


def test_binary_crossentropy_from_logits_is_finite_for_huge_scores_and_passes_gradcheck(rng):
    targets = mg.Tensor(np.array([[1.0], [0.0]]))
    huge = mg.Tensor(np.array([[-800.0], [800.0]]))
    assert losses.binary_crossentropy(targets, huge, from_logits=True).item() == pytest.approx(800)
    logits = mg.Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    soft_targets = mg.Tensor(rng.uniform(0, 1, (4, 2)))
    assert mg.gradcheck(
        lambda z: losses.binary_crossentropy(soft_targets, z, from_logits=True), [logits]
    )


def test_a_loss_given_as_a_callable_is_used_as_is():
    def half_squared_error(y_true, y_pred):
        return ((y_pred - y_true) ** 2 / 2).mean()

    model = linear_model(loss=half_squared_error)
    x = np.array([[1, 0, 0], [0, 1, 1]], np.float32)
    y = np.array([[1.0], [0.0]], np.float32)
    # predictions 1.5 and 5.5: errors 0.5 and 5.5
    assert model.evaluate(x, y) == pytest.approx((0.25 + 30.25) / 4)


@pytest.mark.parametrize(("loss", "expected"), [("mse", (0.25 + 30.25) / 2), ("mae", 3.0)])
def test_evaluate_uses_the_compiled_loss_on_the_model_output(loss, expected):
    model = linear_model(loss=loss)
    x = np.array([[1, 0, 0], [0, 1, 1]], np.float32)
    assert model.evaluate(x, np.array([1.0, 0.0])) == pytest.approx(expected)


def test_accuracy_follows_the_loss_and_a_classifier_learns():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 2)).astype(np.float32)
    labels = np.where(x[:, 0] > 1.0, 2, (x[:, 0] + x[:, 1] > 0).astype(np.int64))
    mg.manual_seed(0)
    model = Sequential(
        [Dense(16, activation="relu", input_shape=(2,)), Dense(3, activation="softmax")]
    )
    model.compile(
        optimizer=optimizers.Adam(learning_rate=0.02),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x, labels, epochs=30, batch_size=32, verbose=0)
    predicted = model.predict(x).argmax(axis=1)
    assert history.history["accuracy"][-1] > 0.9
    assert model.evaluate(x, labels)[1] == pytest.approx(np.mean(predicted == labels))


# ---- optimizers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls", "lr"),
    [("adam", optim.Adam, 0.001), ("sgd", optim.SGD, 0.01), ("rmsprop", optim.RMSprop, 0.001)],
)
def test_each_optimizer_string_builds_its_optimizer_with_the_keras_learning_rate(name, cls, lr):
    X, y = sine_windows(64)
    model = recipe_model()
    model.compile(optimizer=name, loss="mse")
    before = model.get_weights()
    model.fit(X, y, epochs=1, verbose=0)
    assert type(model.optimizer.inner) is cls
    assert model.optimizer.learning_rate == pytest.approx(lr)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_sgd_takes_one_plain_gradient_step():
    model = linear_model(optimizer="sgd")
    x = np.array([[1.0, 0.0, 2.0]], np.float32)
    y = np.array([[1.0]], np.float32)
    error = (1 + 6 + 0.5) - 1.0  # prediction minus target
    model.fit(x, y, epochs=1, batch_size=1, shuffle=False, verbose=0)
    kernel, bias = model.get_weights()
    # d (p - y)^2 / d kernel = 2 (p - y) x
    np.testing.assert_allclose(kernel[:, 0], [1, 2, 3] - 0.01 * 2 * error * x[0], rtol=1e-6)
    np.testing.assert_allclose(bias, [0.5 - 0.01 * 2 * error], rtol=1e-6)


def test_optimizer_objects_factories_and_built_optimizers_are_accepted():
    X, y = sine_windows(64)
    model = recipe_model()
    model.compile(optimizer=optimizers.RMSprop(learning_rate=0.05, rho=0.8), loss="mse")
    model.fit(X, y, verbose=0)
    inner = model.optimizer.inner
    assert isinstance(inner, optim.RMSprop)
    assert inner.param_groups[0]["lr"] == 0.05 and inner.param_groups[0]["alpha"] == 0.8
    model.optimizer.learning_rate = 0.01
    assert inner.param_groups[0]["lr"] == 0.01

    model.compile(optimizer=lambda params: optim.AdamW(params, lr=3e-3), loss="mse")
    model.fit(X, y, verbose=0)
    assert isinstance(model.optimizer.inner, optim.AdamW)

    built = optim.SGD(model.parameters(), lr=0.1)
    model.compile(optimizer=built, loss="mse")
    model.fit(X, y, verbose=0)
    assert model.optimizer.inner is built

    other = recipe_model()
    other.compile(optimizer=built, loss="mse")
    with pytest.raises(ValueError, match="does not hold 5 of the model's 5 parameter tensors"):
        other.fit(X, y, verbose=0)


# ---- summary and weights ----------------------------------------------------------------


def test_summary_counts_keras_parameters():
    model = recipe_model(look_back=40)
    text = model.summary(print_fn=None)
    assert [layer.count_params() for layer in model.layers] == [5 * 1 + 5 * 5 + 5, 5 + 1]
    assert model.count_params() == 41
    rows = text.splitlines()
    assert any(
        "simple_rnn (SimpleRNN)" in row and "(None, 5)" in row and row.endswith(" 35")
        for row in rows
    )
    assert any("dense (Dense)" in row and "(None, 1)" in row and row.endswith(" 6") for row in rows)
    assert "Total params: 41" in rows


def test_summary_prints_when_asked(capsys):
    recipe_model().summary()
    assert "Total params: 41" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("layer", "params"), [(LSTM(5), 4 * (5 + 25 + 5)), (GRU(5), 3 * 5 + 3 * 25 + 2 * 3 * 5)]
)
def test_gated_layers_count_keras_parameters(layer, params):
    model = Sequential([Input((40, 1)), layer])
    assert model.count_params() == params


def test_weights_round_trip_in_keras_layout():
    model = recipe_model(look_back=40)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(1, 5), (5, 5), (5,), (5, 1), (1,)]
    new = [np.full(shape, k, np.float32) for k, shape in enumerate(shapes)]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"weight 0 has shape \(2, 5\), expected \(1, 5\)"):
        model.set_weights([np.zeros((2, 5))] + new[1:])


# ---- errors ---------------------------------------------------------------------------------


def test_a_transposed_x_names_samples_look_back_and_features():
    model = recipe_model(look_back=40)
    message = "X has shape (40, 1000): expected (num_samples, look_back, n_features) = (N, 40, 1)"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.fit(np.zeros((40, 1000), np.float32), np.zeros(40), verbose=0)


def test_x_without_a_features_axis_gets_a_reshape_hint():
    model = recipe_model(look_back=40)
    with pytest.raises(ValueError, match=r"use X.reshape\(len\(X\), 40, 1\)"):
        model.fit(np.zeros((1000, 40), np.float32), np.zeros(1000), verbose=0)
    unbuilt = Sequential([SimpleRNN(5), Dense(1)])
    unbuilt.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"\(1000, 40\): expected \(num_samples, look_back, n_f"):
        unbuilt.fit(np.zeros((1000, 40), np.float32), np.zeros(1000), verbose=0)
    with pytest.raises(ValueError, match=r"expected \(num_samples, n_features\) = \(N, 3\)"):
        linear_model().predict(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"X has shape \(4,\): .* use X.reshape\(len\(X\), 1\)"):
        Sequential([Dense(1)]).predict(np.zeros(4))


def test_mismatched_lengths_and_target_shapes_are_reported():
    model = recipe_model()
    X = np.zeros((10, 20, 1), np.float32)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        model.fit(X, np.zeros(9), verbose=0)
    with pytest.raises(ValueError, match=r"y has shape \(10, 3\), expected \(N, 1\)"):
        model.fit(X, np.zeros((10, 3)), verbose=0)
    classifier = Sequential([Dense(3, activation="softmax", input_shape=(2,))])
    classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\) for 3 output classes, got 3"):
        classifier.fit(np.zeros((4, 2)), np.array([0, 1, 2, 3]), verbose=0)


def test_compile_rejects_unknown_names_and_fit_needs_compile():
    model = Sequential([Dense(1, input_shape=(3,))])
    with pytest.raises(RuntimeError, match="not compiled; call model.compile"):
        model.fit(np.zeros((4, 3)), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="optimizer 'adamm' is unknown"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="loss 'msee' is unknown"):
        model.compile(optimizer="adam", loss="msee")
    with pytest.raises(ValueError, match="metric 'accuracyy' is unknown"):
        model.compile(optimizer="adam", loss="mse", metrics=["accuracyy"])
    with pytest.raises(ValueError, match="loss is required"):
        model.compile(optimizer="adam")


def test_fit_arguments_are_validated():
    model = linear_model()
    x, y = np.zeros((10, 3)), np.zeros(10)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\), got 1.5"):
        model.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="leaves 0 for training and 1 for validation"):
        model.fit(x[:1], y[:1], validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2, got 3"):
        model.fit(x, y, verbose=3)


def test_layer_arguments_are_validated():
    with pytest.raises(ValueError, match=r"input_shape must be \(look_back, n_features\)"):
        SimpleRNN(5, input_shape=(40,))
    with pytest.raises(ValueError, match="activation 'swishy' is unknown"):
        Dense(1, activation="swishy")
    with pytest.raises(TypeError, match="expected a minigrad.keras layer"):
        Sequential().add(mg.nn.Linear(2, 3))
    with pytest.raises(ValueError, match="an Input must come first"):
        Sequential([Dense(2), Input((3,))])
    assert keras_layers.get_activation(None)(mg.tensor([-1.0])).item() == -1.0


def test_a_recurrent_layer_without_activation_is_linear_as_in_keras():
    layer = SimpleRNN(3, activation=None, input_shape=(4, 2))
    assert layer.activation == "linear"
