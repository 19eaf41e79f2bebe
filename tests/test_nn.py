"""Modules: registration, state, modes and containers; gradchecks of the layers and the GPT."""

import numpy as np
import pytest

import minigrad
from minigrad import Tensor, nn
from models.gpt import GPT, GPTConfig


class Tied(nn.Module):
    """Two Linear layers sharing one weight, and a parameter of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 3, bias=False)
        self.second = nn.Linear(3, 3)
        self.second.weight = self.first.weight
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))

    def forward(self, x):
        return self.second(self.first(x)) * self.scale


# ---- registration ------------------------------------------------------------------------


def test_assigned_parameters_and_modules_are_registered_in_order():
    model = Tied()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "first.weight", "second.bias"]
    assert [p.shape for p in model.parameters()] == [(3,), (3, 3), (3,)]
    assert list(model.children()) == [model.first, model.second]


def test_named_parameters_lists_a_tied_weight_once_unless_asked_for_duplicates():
    model = Tied()
    unique = dict(model.named_parameters())
    every = dict(model.named_parameters(remove_duplicate=False))
    assert "second.weight" not in unique
    assert every["second.weight"] is every["first.weight"]
    assert model.num_parameters() == 3 + 9 + 3


def test_plain_attributes_are_not_registered_and_reassignment_unregisters():
    model = Tied()
    model.note = np.zeros(4)
    model.scale = 2.0  # no longer a Parameter
    assert [name for name, _ in model.named_parameters()] == ["first.weight", "second.bias"]


def test_assigning_before_module_init_raises_attribute_error():
    class Forgetful(nn.Module):
        def __init__(self) -> None:
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Forgetful()


def test_state_dict_holds_tied_weights_under_each_name():
    model = Tied()
    state = model.state_dict()
    assert sorted(state) == ["first.weight", "scale", "second.bias", "second.weight"]
    assert state["first.weight"] is state["second.weight"]
    assert state["scale"] is model.scale.data


def test_load_state_dict_copies_in_place_and_keeps_ties():
    model = Tied()
    weight_before, data_before = model.first.weight, model.first.weight.data
    new_weight = np.arange(9, dtype=np.float32).reshape(3, 3)
    model.load_state_dict(
        {
            "scale": np.full(3, 2.0),
            "first.weight": new_weight,
            "second.weight": new_weight,
            "second.bias": np.array([1.0, 2.0, 3.0]),
        }
    )
    assert model.first.weight is weight_before and model.first.weight.data is data_before
    assert model.second.weight is model.first.weight
    np.testing.assert_array_equal(model.second.weight.data, new_weight)
    np.testing.assert_array_equal(model.scale.data, [2.0, 2.0, 2.0])
    assert model.scale.dtype == np.float32  # the float64 input was cast, not swapped in
    out = model(Tensor(np.ones((1, 3), dtype=np.float32)))
    # weight @ 1 = [3, 12, 21]; weight @ that = [54, 162, 270]; plus bias, times scale 2
    np.testing.assert_array_equal(out.data, [[110.0, 328.0, 546.0]])


def test_load_state_dict_round_trips_between_two_models():
    minigrad.manual_seed(0)
    source = Tied()
    minigrad.manual_seed(1)
    target = Tied()
    target.load_state_dict(source.state_dict())
    for (name, p), (_, q) in zip(source.named_parameters(), target.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_load_state_dict_strict_names_missing_and_unexpected_keys():
    model = Tied()
    state = dict(model.state_dict())
    del state["scale"]
    state["extra.weight"] = np.zeros(2)
    with pytest.raises(KeyError) as error:
        model.load_state_dict(state)
    assert "scale" in str(error.value) and "extra.weight" in str(error.value)


def test_load_state_dict_not_strict_loads_the_names_it_knows():
    model = Tied()
    model.load_state_dict({"scale": np.full(3, 5.0), "unknown": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(model.scale.data, [5.0, 5.0, 5.0])


def test_load_state_dict_shape_mismatch_names_the_key_and_changes_nothing():
    model = Tied()
    before = model.scale.data.copy()
    state = dict(model.state_dict())
    state = {**state, "scale": np.full(3, 7.0), "second.bias": np.zeros(4)}
    with pytest.raises(ValueError, match=r"'second\.bias'.*\(4,\).*\(3,\)"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.scale.data, before)


# ---- modes and gradients -----------------------------------------------------------------


def test_train_and_eval_reach_every_submodule():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert model.eval() is model
    assert [m.training for m in model.modules()] == [False] * 5
    model.train()
    assert [m.training for m in model.modules()] == [True] * 5


def test_dropout_is_the_identity_in_eval_and_scales_survivors_in_train():
    minigrad.manual_seed(0)
    layer = nn.Dropout(0.5)
    x = Tensor(np.random.default_rng(0).uniform(1.0, 2.0, (100, 100)), requires_grad=True)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    layer.train()
    out = layer(x)
    kept = out.data != 0
    np.testing.assert_allclose(out.data[kept], 2 * x.data[kept], rtol=1e-15)
    assert 0.45 < 1 - kept.mean() < 0.55
    out.sum().backward()  # the gradient flows through the kept elements only, scaled alike
    np.testing.assert_array_equal(x.grad, 2.0 * kept)


def test_zero_grad_clears_every_parameter_gradient():
    model = Tied()
    model(Tensor(np.ones((2, 3), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_double_converts_parameters_and_keeps_ties():
    model = Tied().double()
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float64)}
    assert model.second.weight is model.first.weight


# ---- containers --------------------------------------------------------------------------


def test_sequential_applies_modules_in_order_and_names_them_by_position():
    first, second = nn.Linear(2, 3), nn.Linear(3, 1)
    model = nn.Sequential(first, nn.ReLU(), second)
    x = Tensor(np.array([[1.0, -2.0]], dtype=np.float32))
    expected = second(first(x).relu()).data
    np.testing.assert_allclose(model(x).data, expected)
    assert len(model) == 3 and model[2] is second and list(model)[0] is first
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_module_list_registers_appended_modules():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers.append(nn.Linear(2, 4, bias=False))
    assert len(layers) == 2 and layers[1].out_features == 4
    assert [n for n, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight"]
    assert [m.out_features for m in layers] == [2, 4]


def test_module_dict_registers_modules_by_key():
    heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.LayerNorm(2)})
    assert "a" in heads and "c" not in heads and len(heads) == 2
    assert list(heads.keys()) == ["a", "b"] and isinstance(heads["b"], nn.LayerNorm)
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]


# ---- gradcheck of layers -----------------------------------------------------------------


def float64(rng, *shape):
    return Tensor(rng.normal(size=shape), requires_grad=True)


def test_linear_gradients_pass_gradcheck(rng):
    layer = nn.Linear(4, 3).double()
    x = float64(rng, 2, 5, 4)
    assert minigrad.gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])


def test_embedding_gradients_pass_gradcheck_with_repeated_indices():
    layer = nn.Embedding(5, 3).double()
    idx = np.array([[0, 4, 4], [2, 0, 4]])
    assert minigrad.gradcheck(lambda w: layer(idx), [layer.weight])


def test_layer_norm_gradients_pass_gradcheck(rng):
    layer = nn.LayerNorm(5).double()
    layer.weight.data[...] = rng.normal(size=5)
    layer.bias.data[...] = rng.normal(size=5)
    x = float64(rng, 3, 5)
    assert minigrad.gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradients_pass_gradcheck(rng, approximate):
    layer = nn.GELU(approximate)
    x = Tensor(np.linspace(-4.0, 4.0, 17), requires_grad=True)
    assert minigrad.gradcheck(layer, [x])


# ---- the GPT -----------------------------------------------------------------------------

TINY = dict(n_layer=1, n_head=2, n_embd=8, block_size=4, vocab_size=5)


def tiny_gpt(**overrides) -> GPT:
    minigrad.manual_seed(0)
    return GPT(GPTConfig(**{**TINY, **overrides}))


def test_tiny_gpt_loss_passes_gradcheck_for_a_few_parameters(rng):
    model = tiny_gpt(bias=True).double()
    for p in model.parameters():
        p.data += rng.normal(0.0, 0.1, p.shape)  # gains off 1, biases off 0
    x, y = rng.integers(0, 5, (2, 4)), rng.integers(0, 5, (2, 4))
    y[1, 0] = -1
    params = dict(model.named_parameters())
    checked = [
        params["transformer.wte.weight"],  # tied: both the embedding and the head use it
        params["transformer.wpe.weight"],
        params["transformer.h.0.ln_1.weight"],
        params["transformer.h.0.attn.c_proj.weight"],
        params["transformer.h.0.mlp.c_fc.bias"],
        params["transformer.ln_f.bias"],
    ]
    assert minigrad.gradcheck(lambda *_: model(x, y)[1], checked)


def test_gpt_forward_rejects_context_longer_than_block_size():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="length 5 is longer than block_size 4"):
        model(np.zeros((1, 5), dtype=np.int64))


@pytest.mark.parametrize("shape", [(4,), (1, 2, 3)])
def test_gpt_forward_rejects_idx_that_is_not_batch_by_time(shape):
    with pytest.raises(ValueError, match=r"idx must be \(batch, time\)"):
        tiny_gpt()(np.zeros(shape, dtype=np.int64))


def test_gpt_ties_the_output_head_to_the_token_embedding():
    model = tiny_gpt()
    assert model.lm_head.weight is model.transformer.wte.weight
    names = [name for name, _ in model.named_parameters()]
    assert "transformer.wte.weight" in names and "lm_head.weight" not in names
    assert "lm_head.weight" in model.state_dict()


def test_generate_crops_a_context_longer_than_block_size():
    model = tiny_gpt()
    idx = np.array([[0, 1, 2, 3, 4, 0, 1, 2, 3, 4]])
    out = model.generate(idx, 3, temperature=0)
    assert out.shape == (1, 13)
    np.testing.assert_array_equal(out[:, :10], idx)
    logits, _ = model(idx[:, -4:])  # only the last block_size tokens condition the next one
    assert out[0, 10] == logits.data[0, -1].argmax()


def test_generate_with_temperature_zero_is_greedy_and_deterministic():
    model = tiny_gpt()
    idx = np.array([[1], [3]])
    first = model.generate(idx, 6, temperature=0, rng=np.random.default_rng(1))
    second = model.generate(idx, 6, temperature=0, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(first, second)
    expected = idx
    for _ in range(6):
        logits, _ = model(expected[:, -4:])
        expected = np.concatenate([expected, logits.data[:, -1].argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(first, expected)


def test_generate_with_top_k_larger_than_the_vocabulary_samples_from_all_of_it():
    model = tiny_gpt()
    idx = np.zeros((4, 1), dtype=np.int64)
    wide = model.generate(idx, 8, top_k=50, rng=np.random.default_rng(3))
    plain = model.generate(idx, 8, top_k=None, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(wide, plain)
    assert wide.min() >= 0 and wide.max() < 5


def test_generate_restores_training_mode():
    model = tiny_gpt()
    model.train()
    model.generate(np.zeros((1, 1), dtype=np.int64), 1)
    assert all(m.training for m in model.modules())


def test_to_takes_the_cpu_as_pytorch_code_names_it_and_refuses_other_devices():
    layer = nn.Linear(2, 3)
    weight = layer.weight.numpy()
    assert layer.to("cpu") is layer and layer.to(device="cpu:0") is layer
    assert layer.weight.numpy() is weight
    with pytest.raises(ValueError, match="to: minigrad runs on the CPU only, got device 'cuda'"):
        layer.to("cuda")
    assert layer.to(np.float64).weight.dtype == np.float64
