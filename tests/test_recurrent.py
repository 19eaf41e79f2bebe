"""SimpleRNN, LSTM and GRU: fused ops against NumPy loops, step(), gradcheck and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from strategies import recurrent_sizes

import minigrad as mg
from minigrad import nn

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
LAYERS = (nn.SimpleRNN, nn.LSTM, nn.GRU)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


ACT = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": sigmoid,
    "linear": lambda z: z,
}
SLOPE = {
    "tanh": lambda z: 1 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0).astype(z.dtype),
    "sigmoid": lambda z: sigmoid(z) * (1 - sigmoid(z)),
    "linear": lambda z: np.ones_like(z),
}


# ---- plain NumPy references, one time step per loop iteration ---------------------------


def reference_simple_rnn(x, h0, W, U, b, act):
    """Every h_t and pre-activation z_t, each (batch, timesteps, units)."""
    h, hs, zs = h0, [], []
    for t in range(x.shape[1]):
        z = x[:, t] @ W + h @ U + b
        h = ACT[act](z)
        hs.append(h)
        zs.append(z)
    return np.stack(hs, axis=1), np.stack(zs, axis=1)


def reference_simple_rnn_backward(x, h0, W, U, b, act, g):
    """Backpropagation through time by hand, for upstream gradients g = dL/dh_t (B, T, units).

    Returns dx, dh0, dW, dU, db and the total dL/dh_t at every step.
    """
    H, Z = reference_simple_rnn(x, h0, W, U, b, act)
    dx, dW, dU, db = np.zeros_like(x), np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    dh_steps = np.zeros_like(H)
    carry = np.zeros_like(h0)  # dL/dh_t arriving from step t + 1
    for t in reversed(range(x.shape[1])):
        dh = g[:, t] + carry
        dh_steps[:, t] = dh
        dz = dh * SLOPE[act](Z[:, t])
        h_prev = H[:, t - 1] if t else h0
        dW += x[:, t].T @ dz
        dU += h_prev.T @ dz
        db += dz.sum(axis=0)
        dx[:, t] = dz @ W.T
        carry = dz @ U.T
    return dx, carry, dW, dU, db, dh_steps


def reference_lstm(x, h0, c0, W, U, b, act):
    """Every h_t and c_t, gates in the order i, f, c, o."""
    u = U.shape[0]
    h, c, hs, cs = h0, c0, [], []
    for t in range(x.shape[1]):
        z = x[:, t] @ W + h @ U + b
        i, f = sigmoid(z[:, :u]), sigmoid(z[:, u : 2 * u])
        candidate, o = ACT[act](z[:, 2 * u : 3 * u]), sigmoid(z[:, 3 * u :])
        c = f * c + i * candidate
        h = o * ACT[act](c)
        hs.append(h)
        cs.append(c)
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


def reference_gru(x, h0, W, U, b, act):
    """Every h_t, gates in the order z, r, h, the reset gate applied after the product."""
    u = U.shape[0]
    h, hs = h0, []
    for t in range(x.shape[1]):
        a = x[:, t] @ W + b[0]
        m = h @ U + b[1]
        z, r = sigmoid(a[:, :u] + m[:, :u]), sigmoid(a[:, u : 2 * u] + m[:, u : 2 * u])
        candidate = ACT[act](a[:, 2 * u :] + r * m[:, 2 * u :])
        h = z * h + (1 - z) * candidate
        hs.append(h)
    return np.stack(hs, axis=1)


# ---- helpers ------------------------------------------------------------------------------


def make_layer(cls, input_size=2, units=3, seed=0, **kwargs):
    """A float64 layer with a random, nonzero bias so every term is exercised."""
    mg.manual_seed(seed)
    layer = cls(input_size, units, **kwargs).double()
    rng = np.random.default_rng(seed)
    layer.bias.data[...] = 0.3 * rng.standard_normal(layer.bias.shape)
    return layer


def make_inputs(layer, batch=2, steps=4, seed=1):
    """x and an initial state (tuple) in float64, all requiring grad."""
    rng = np.random.default_rng(seed)
    x = mg.Tensor(rng.standard_normal((batch, steps, layer.input_size)), requires_grad=True)
    states = tuple(
        mg.Tensor(0.5 * rng.standard_normal((batch, layer.units)), requires_grad=True)
        for _ in layer.state_names
    )
    return x, states


def weights(layer):
    return [p.data for p in (layer.kernel, layer.recurrent_kernel, layer.bias)]


# ---- gradients through time ------------------------------------------------------------


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("cls", LAYERS)
def test_fused_layer_passes_gradcheck_through_time(cls, activation, return_sequences):
    layer = make_layer(cls, activation=activation, return_sequences=return_sequences)
    x, states = make_inputs(layer)
    n = len(states)
    inputs = [x, *states, *layer.parameters()]
    assert mg.gradcheck(lambda x, *rest: layer(x, initial_state=rest[:n]), inputs)


@pytest.mark.parametrize("cls", LAYERS)
def test_fused_layer_passes_gradcheck_from_the_default_zero_state(cls):
    layer = make_layer(cls, return_sequences=True)
    x, _ = make_inputs(layer, steps=3)
    assert mg.gradcheck(lambda x, *params: layer(x), [x, *layer.parameters()])


def test_lstm_final_cell_state_passes_gradcheck():
    layer = make_layer(nn.LSTM, return_sequences=True, return_state=True)
    x, states = make_inputs(layer)
    inputs = [x, *states, *layer.parameters()]
    assert mg.gradcheck(lambda x, h0, c0, *params: layer(x, initial_state=(h0, c0))[2], inputs)


# ---- against plain NumPy loops ----------------------------------------------------------


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_simple_rnn_forward_and_backward_equal_a_numpy_loop(activation, return_sequences):
    layer = make_layer(nn.SimpleRNN, activation=activation, return_sequences=return_sequences)
    x, (h0,) = make_inputs(layer, batch=3, steps=5)
    expected_h, _ = reference_simple_rnn(x.data, h0.data, *weights(layer), activation)

    out = layer(x, initial_state=h0)
    expected = expected_h if return_sequences else expected_h[:, -1]
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)

    g = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(g)
    g_steps = np.zeros_like(expected_h)
    if return_sequences:
        g_steps[...] = g
    else:
        g_steps[:, -1] = g
    dx, dh0, dW, dU, db, _ = reference_simple_rnn_backward(
        x.data, h0.data, *weights(layer), activation, g_steps
    )
    for got, want in [
        (x.grad, dx),
        (h0.grad, dh0),
        (layer.kernel.grad, dW),
        (layer.recurrent_kernel.grad, dU),
        (layer.bias.grad, db),
    ]:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@given(sizes=recurrent_sizes())
def test_simple_rnn_equals_a_numpy_loop_for_any_sizes(sizes):
    batch, steps, features, units = sizes
    layer = make_layer(nn.SimpleRNN, features, units, return_sequences=True)
    x, (h0,) = make_inputs(layer, batch, steps)
    out = layer(x, initial_state=h0)
    g = np.random.default_rng(3).standard_normal(out.shape)
    out.backward(g)
    expected_h, _ = reference_simple_rnn(x.data, h0.data, *weights(layer), "tanh")
    dx, dh0, dW, dU, db, _ = reference_simple_rnn_backward(
        x.data, h0.data, *weights(layer), "tanh", g
    )
    np.testing.assert_allclose(out.data, expected_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad, dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.recurrent_kernel.grad, dU, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_lstm_forward_equals_a_numpy_loop(activation, return_sequences):
    layer = make_layer(
        nn.LSTM, activation=activation, return_sequences=return_sequences, return_state=True
    )
    x, (h0, c0) = make_inputs(layer, batch=3, steps=5)
    expected_h, expected_c = reference_lstm(x.data, h0.data, c0.data, *weights(layer), activation)

    out, h, c = layer(x, initial_state=(h0, c0))
    np.testing.assert_allclose(
        out.data, expected_h if return_sequences else expected_h[:, -1], rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(h.data, expected_h[:, -1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c.data, expected_c[:, -1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gru_forward_equals_a_numpy_loop(activation, return_sequences):
    layer = make_layer(nn.GRU, activation=activation, return_sequences=return_sequences)
    x, (h0,) = make_inputs(layer, batch=3, steps=5)
    expected_h = reference_gru(x.data, h0.data, *weights(layer), activation)
    out = layer(x, initial_state=h0)
    np.testing.assert_allclose(
        out.data, expected_h if return_sequences else expected_h[:, -1], rtol=1e-12, atol=1e-12
    )


@given(sizes=recurrent_sizes())
def test_lstm_and_gru_equal_numpy_loops_for_any_sizes(sizes):
    batch, steps, features, units = sizes
    lstm = make_layer(nn.LSTM, features, units, return_sequences=True)
    x, (h0, c0) = make_inputs(lstm, batch, steps)
    expected_h, _ = reference_lstm(x.data, h0.data, c0.data, *weights(lstm), "tanh")
    np.testing.assert_allclose(lstm(x, (h0, c0)).data, expected_h, rtol=1e-12, atol=1e-12)

    gru = make_layer(nn.GRU, features, units, return_sequences=True)
    expected_h = reference_gru(x.data, h0.data, *weights(gru), "tanh")
    np.testing.assert_allclose(gru(x, h0).data, expected_h, rtol=1e-12, atol=1e-12)


# ---- the fused op against step() --------------------------------------------------------


def run_steps(layer, x, states):
    """The layer's output built from step() calls, as a user would write the loop."""
    state = states if len(states) > 1 else states[0]
    hidden = []
    for t in range(x.shape[1]):
        state = layer.step(x[:, t], state)
        hidden.append(state[0] if isinstance(state, tuple) else state)
    return mg.stack(hidden, axis=1) if layer.return_sequences else hidden[-1]


def gradients(tensors):
    grads = [t.grad.copy() for t in tensors]
    for t in tensors:
        t.grad = None
    return grads


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("cls", LAYERS)
def test_fused_path_equals_the_step_path_in_value_and_gradient(cls, activation, return_sequences):
    layer = make_layer(cls, activation=activation, return_sequences=return_sequences)
    x, states = make_inputs(layer, batch=3, steps=6)
    leaves = [x, *states, *layer.parameters()]
    g = np.random.default_rng(4).standard_normal(layer(x, states).shape)

    fused = layer(x, states)
    fused.backward(g)
    fused_grads = gradients(leaves)
    stepped = run_steps(layer, x, states)
    stepped.backward(g)

    np.testing.assert_allclose(fused.data, stepped.data, rtol=1e-12, atol=1e-12)
    for got, want in zip(fused_grads, gradients(leaves), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", LAYERS)
def test_a_callable_activation_runs_step_by_step_and_matches_the_named_one(cls):
    named = make_layer(cls, activation="tanh", return_sequences=True)
    custom = make_layer(cls, activation=lambda z: z.tanh(), return_sequences=True)
    x, states = make_inputs(named)
    out = custom(x, states)
    assert out._op == "stack"  # the loop of step() calls, not a fused op
    np.testing.assert_allclose(out.data, named(x, states).data, rtol=1e-12, atol=1e-12)


def test_retained_step_gradients_equal_backpropagation_through_time():
    layer = make_layer(nn.SimpleRNN, activation="tanh")
    x, _ = make_inputs(layer, batch=2, steps=6)
    h, hidden = None, []
    for t in range(x.shape[1]):
        h = layer.step(x[:, t], h)
        h.retain_grad()
        hidden.append(h)
    (h * h).sum().backward()

    g = np.zeros((2, 6, layer.units))
    g[:, -1] = 2 * h.data  # d sum(h^2) / dh at the last step
    *_, dh_steps = reference_simple_rnn_backward(
        x.data, np.zeros((2, layer.units)), *weights(layer), "tanh", g
    )
    for t, h_t in enumerate(hidden):
        np.testing.assert_allclose(h_t.grad, dh_steps[:, t], rtol=1e-10, atol=1e-14)


# ---- layer behaviour -----------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "gates"), [(nn.SimpleRNN, 1), (nn.LSTM, 4), (nn.GRU, 3)])
def test_weights_have_keras_names_shapes_and_initialisation(cls, gates):
    mg.manual_seed(0)
    layer = cls(3, 4)
    shapes = {name: p.shape for name, p in layer.named_parameters()}
    bias_shape = (2, 12) if cls is nn.GRU else (4 * gates,)
    assert shapes == {
        "kernel": (3, 4 * gates),
        "recurrent_kernel": (4, 4 * gates),
        "bias": bias_shape,
    }
    assert layer.kernel.dtype == np.float32
    bound = np.sqrt(6 / (3 + 4 * gates))  # Glorot uniform over (features, gates * units)
    assert np.abs(layer.kernel.data).max() <= bound
    assert np.abs(layer.kernel.data).max() > bound / 2
    U = layer.recurrent_kernel.data.astype(np.float64)
    np.testing.assert_allclose(U @ U.T, np.eye(4), atol=1e-6)  # orthonormal rows
    expected_bias = np.zeros(bias_shape)
    if cls is nn.LSTM:
        expected_bias[4:8] = 1  # the forget gate starts open
    np.testing.assert_array_equal(layer.bias.data, expected_bias)


def test_return_state_gives_the_final_states():
    x = mg.Tensor(np.random.default_rng(0).standard_normal((2, 5, 3)))
    rnn = nn.SimpleRNN(3, 4, return_sequences=True, return_state=True)
    out, h = rnn(x)
    assert out.shape == (2, 5, 4)
    np.testing.assert_array_equal(h.data, out.data[:, -1])

    lstm = nn.LSTM(3, 4, return_state=True)
    out, h, c = lstm(x)
    assert out.shape == h.shape == c.shape == (2, 4)
    np.testing.assert_array_equal(out.data, h.data)
    assert not np.allclose(h.data, c.data)


def test_output_keeps_float32_and_step_starts_from_zeros():
    mg.manual_seed(0)
    rnn = nn.SimpleRNN(1, 5)
    x = np.random.default_rng(0).standard_normal((4, 7, 1)).astype(np.float32)
    out = rnn(x)
    assert out.dtype == np.float32 and out.shape == (4, 5)
    first = rnn.step(mg.Tensor(x[:, 0]))
    expected = np.tanh(x[:, 0] @ rnn.kernel.data + rnn.bias.data)
    np.testing.assert_allclose(first.data, expected, rtol=1e-6)


def test_bad_inputs_raise_errors_naming_what_was_expected():
    rnn = nn.SimpleRNN(2, 3)
    with pytest.raises(ValueError, match=r"x has shape \(4, 5\), expected \(batch, timesteps"):
        rnn(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="features = 2"):
        rnn(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"initial state h has shape \(4, 2\), expected"):
        rnn(np.zeros((4, 5, 2), np.float32), initial_state=np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"initial_state must hold 2 tensor\(s\)"):
        nn.LSTM(2, 3)(np.zeros((4, 5, 2), np.float32), initial_state=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="activation must be one of"):
        nn.GRU(2, 3, activation="softsign")
    with pytest.raises(ValueError, match="units must be a positive integer, got 0"):
        nn.LSTM(2, 0)


# ---- PyTorch parity --------------------------------------------------------------------------

# Column order of each layer's gates in PyTorch: its GRU has r, z, n where Keras has z, r, h.
TORCH_GATE_ORDER = {
    nn.SimpleRNN: lambda u: np.arange(u),
    nn.LSTM: lambda u: np.arange(4 * u),
    nn.GRU: lambda u: np.r_[u : 2 * u, 0:u, 2 * u : 3 * u],
}


def torch_twin(layer, activation):
    """The same layer in PyTorch, float64, with minigrad's weights copied in."""
    torch = pytest.importorskip("torch")
    if isinstance(layer, nn.LSTM):
        twin = torch.nn.LSTM(layer.input_size, layer.units, batch_first=True)
    elif isinstance(layer, nn.GRU):
        twin = torch.nn.GRU(layer.input_size, layer.units, batch_first=True)
    else:
        twin = torch.nn.RNN(
            layer.input_size, layer.units, nonlinearity=activation, batch_first=True
        )
    twin = twin.double()
    order = TORCH_GATE_ORDER[type(layer)](layer.units)
    bias = layer.bias.data.reshape(-1, order.size)
    with torch.no_grad():
        twin.weight_ih_l0.copy_(torch.from_numpy(layer.kernel.data[:, order].T))
        twin.weight_hh_l0.copy_(torch.from_numpy(layer.recurrent_kernel.data[:, order].T))
        twin.bias_ih_l0.copy_(torch.from_numpy(bias[0][order]))
        twin.bias_hh_l0.copy_(torch.from_numpy(bias[-1][order] if len(bias) > 1 else 0 * bias[0]))
    return torch, twin, order


@pytest.mark.parametrize(
    ("cls", "activation"),
    [(nn.SimpleRNN, "tanh"), (nn.SimpleRNN, "relu"), (nn.LSTM, "tanh"), (nn.GRU, "tanh")],
)
def test_layers_match_pytorch_in_float64(cls, activation):
    layer = make_layer(cls, 3, 4, activation=activation, return_sequences=True, return_state=True)
    torch, twin, order = torch_twin(layer, activation)
    x, states = make_inputs(layer, batch=3, steps=6)
    g = np.random.default_rng(5).standard_normal((3, 6, 4))

    out, *final = layer(x, states)
    out.backward(g)
    x_t = torch.tensor(x.data, requires_grad=True)
    states_t = [torch.tensor(s.data[None], requires_grad=True) for s in states]
    out_t, final_t = twin(x_t, tuple(states_t) if len(states_t) > 1 else states_t[0])
    out_t.backward(torch.from_numpy(g))

    final_t = final_t if isinstance(final_t, tuple) else (final_t,)
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(final, final_t, strict=True):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy()[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad, x_t.grad.numpy(), rtol=1e-9, atol=1e-12)
    for state, state_t in zip(states, states_t, strict=True):
        np.testing.assert_allclose(state.grad, state_t.grad.numpy()[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        layer.kernel.grad[:, order], twin.weight_ih_l0.grad.numpy().T, rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        layer.recurrent_kernel.grad[:, order],
        twin.weight_hh_l0.grad.numpy().T,
        rtol=1e-9,
        atol=1e-12,
    )
    bias_grad = layer.bias.grad.reshape(-1, order.size)
    np.testing.assert_allclose(
        bias_grad[0][order], twin.bias_ih_l0.grad.numpy(), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        bias_grad[-1][order], twin.bias_hh_l0.grad.numpy(), rtol=1e-9, atol=1e-12
    )
