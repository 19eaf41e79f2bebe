"""The graph frees itself: deep graphs, and no growth over training iterations."""

import gc

import numpy as np

import minigrad
from minigrad import Tensor, optim
from models.gpt import GPT, GPTConfig


def test_backward_through_a_100000_node_chain_gives_the_closed_form_gradient():
    x = Tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.sum().backward()
    assert np.allclose(x.grad, [1.00001**100_000], rtol=1e-9)


def test_dropping_an_unused_100000_node_graph_does_not_overflow_the_stack():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    del y
    gc.collect()
    assert x.grad is None


def _live_tensors() -> int:
    gc.collect()
    return sum(Tensor in type(o).__mro__ for o in gc.get_objects())


def test_live_tensors_do_not_grow_over_training_iterations():
    minigrad.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))
    optimizer = optim.AdamW(model.optimizer_groups(0.1), lr=1e-3)
    rng = np.random.default_rng(0)
    counts = []
    for step in range(300):
        x = rng.integers(0, 11, (2, 8))
        _, loss = model(x, np.roll(x, -1, axis=1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step in (50, 299):
            counts.append(_live_tensors())
    assert counts[1] == counts[0]
