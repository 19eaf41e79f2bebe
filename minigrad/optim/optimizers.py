"""Optimizers that update parameters in place from their `.grad`."""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from minigrad.ops import CACHE_CHUNK
from minigrad.tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: parameter groups, each with its own hyperparameters, and per-parameter state.

    Args:
        params: an iterable of Tensors, or of dicts with a "params" list and
            any hyperparameters that should differ from `defaults` for that group.
        defaults: the hyperparameters of groups that do not set their own.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):  # list(tensor) would be its rows, each a new tensor
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, "
                "got a Tensor; pass [tensor]"
            )
        items = list(params)
        if not items:
            raise ValueError(f"{type(self).__name__}: params is empty; pass model.parameters()")
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Tensor):
                    raise TypeError(
                        f"{type(self).__name__}: params must be Tensors, got {type(p).__name__}"
                    )
                if id(p) in seen:
                    raise ValueError(
                        f"{type(self).__name__}: a parameter appears in more than one group"
                    )
                seen.add(id(p))
            self._check(group)
            self.param_groups.append(group)
        self.state: dict[Tensor, dict[str, Any]] = {}

    def _check(self, group: dict[str, Any]) -> None:
        if not 0 <= group["lr"] < math.inf:  # also refuses nan
            raise ValueError(
                f"{type(self).__name__}: lr must be a finite number >= 0, got {group['lr']}"
            )
        if not group.get("weight_decay", 0) >= 0:
            raise ValueError(
                f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}"
            )

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (the next backward starts from zero)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        # Every gradient is checked before any parameter changes.
        work = [
            (p, self._gradient(p), group)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        for p, grad, group in work:
            self._update(p, grad, self.state.setdefault(p, {}), group)
            p._mark_changed()  # a graph built before this step can no longer run backward

    def _gradient(self, p: Tensor) -> np.ndarray:
        """p's gradient as an array (it is a Tensor after backward(create_graph=True)),
        checked to have p's shape."""
        grad = p.grad.data if isinstance(p.grad, Tensor) else np.asarray(p.grad)
        if grad.shape != p.shape:
            index = next(i for i, q in enumerate(self._all_params()) if q is p)
            raise ValueError(
                f"{type(self).__name__}: parameter {index} has shape {p.shape} but its .grad "
                f"has shape {grad.shape}; expected a gradient of the parameter's shape"
            )
        return grad

    def _update(
        self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and per-parameter state, parameters named by their position."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        groups = [
            {
                **{k: v for k, v in g.items() if k != "params"},
                "params": [index[id(p)] for p in g["params"]],
            }
            for g in self.param_groups
        ]
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned, for the same parameters in the same order."""
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            shown = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict)
            raise ValueError(
                "load_state_dict: expected what state_dict() returns, a dict with 'state' "
                f"and 'param_groups', got {shown}"
            )
        params = self._all_params()
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(own["params"])
            for g, own in zip(groups, self.param_groups, strict=True)
        ):
            saved_sizes = [len(g["params"]) for g in groups]
            own_sizes = [len(g["params"]) for g in self.param_groups]
            raise ValueError(
                "load_state_dict: the saved parameter groups do not match this optimizer's "
                f"({saved_sizes} vs {own_sizes})"
            )
        for saved, own in zip(groups, self.param_groups, strict=True):
            foreign = sorted(set(saved) - set(own))
            if foreign:
                raise ValueError(
                    f"load_state_dict: the saved groups have settings {foreign} that "
                    f"{type(self).__name__} does not take; is it another optimizer's state?"
                )
        for number, (saved, own) in enumerate(zip(groups, self.param_groups, strict=True)):
            merged = {**own, **{k: v for k, v in saved.items() if k != "params"}}
            try:
                self._check(merged)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"load_state_dict: the saved settings of group {number} are unusable: {error}"
                ) from None
        state = {}  # checked in full before anything of this optimizer changes
        for i, s in state_dict["state"].items():
            if not (_is_count(i) and int(i) < len(params)):
                raise ValueError(
                    f"load_state_dict: state for parameter {i!r}, expected indices 0 to "
                    f"{len(params) - 1}, one per parameter of this optimizer"
                )
            p = params[int(i)]
            restored = {}
            for key, value in s.items():
                if isinstance(value, np.ndarray) and value.ndim > 0:
                    if value.shape != p.shape:
                        raise ValueError(
                            f"load_state_dict: state {key!r} of parameter {i} has shape "
                            f"{value.shape}, expected {p.shape}"
                        )
                    value = value.astype(p.dtype, copy=True)
                elif key == "step" and not _is_count(value):
                    raise ValueError(
                        f"load_state_dict: state 'step' of parameter {i} is {value!r}, "
                        "expected the count of steps taken, a whole number at least 0"
                    )
                restored[key] = value
            state[p] = restored
        for saved, own in zip(groups, self.param_groups, strict=True):
            own.update({k: v for k, v in saved.items() if k != "params"})
        self.state = state

    def _all_params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        )

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        momentum = group["momentum"]
        if not momentum >= 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if group["nesterov"] and momentum <= 0:
            raise ValueError(f"SGD: nesterov=True needs momentum > 0, got momentum={momentum}")

    def _update(
        self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if group["momentum"]:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= group["momentum"]
                buffer += grad
            grad = grad + group["momentum"] * buffer if group["nesterov"] else buffer
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba); `weight_decay` adds an L2 term to the gradient.

    For decoupled weight decay use AdamW.
    """

    decoupled = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        )
        # Per group: flat exp_avg and exp_avg_sq, offsets, and each parameter's views.
        self._flat: dict[int, Any] = {}

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        name, betas = type(self).__name__, group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be two numbers, got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0 <= beta < 1:
                raise ValueError(f"{name}: betas[{i}] must be in [0, 1), got {beta}")
        if not group["eps"] >= 0:
            raise ValueError(f"{name}: eps must be >= 0, got {group['eps']}")

    def step(self) -> None:
        """Update every parameter that has a gradient, each group's in one flat pass.

        The moments of a group live in two flat arrays (each parameter's state
        holds views into them), so the arithmetic runs over all parameters at
        once.  Groups whose parameters differ in dtype or in
        step count fall back to one parameter at a time.
        """
        work = []  # every gradient is checked before any parameter changes
        for index, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            work.append((index, group, params, [self._gradient(p) for p in params]))
        for index, group, params, grads in work:
            if not params:
                continue
            if not self._flat_step(index, group, params, grads):
                for p, grad in zip(params, grads, strict=True):
                    self._update(p, grad, self.state.setdefault(p, {}), group)
            for p in params:
                p._mark_changed()

    def _flat_moments(
        self, index: int, params: list[Tensor]
    ) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
        """The group's flat (exp_avg, exp_avg_sq) and offsets, built anew if the states moved."""
        flat = self._flat.get(index)
        dtype = params[0].dtype
        if flat is not None:
            m, v, offsets, views = flat
            if (
                len(views) == len(params)
                and all(
                    self.state.get(p, {}).get("exp_avg") is views[i][0]
                    and self.state[p].get("exp_avg_sq") is views[i][1]
                    for i, p in enumerate(params)
                )
                # a step of another set of parameters may have moved some of these on
                and len({self.state[p]["step"] for p in params}) == 1
            ):
                return m, v, offsets
        if any(p.dtype != dtype for p in params):
            return None
        steps = {self.state.get(p, {}).get("step", 0) for p in params}
        if len(steps) != 1:
            return None
        offsets = [0]
        for p in params:
            offsets.append(offsets[-1] + p.size)
        m = np.zeros(offsets[-1], dtype=dtype)
        v = np.zeros(offsets[-1], dtype=dtype)
        views = []
        for i, p in enumerate(params):
            state = self.state.setdefault(p, {})
            m_view = m[offsets[i] : offsets[i + 1]].reshape(p.shape)
            v_view = v[offsets[i] : offsets[i + 1]].reshape(p.shape)
            if state:
                m_view[...] = state["exp_avg"]
                v_view[...] = state["exp_avg_sq"]
            else:
                state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = m_view, v_view
            views.append((m_view, v_view))
        self._flat[index] = (m, v, offsets, views)
        return m, v, offsets

    def _flat_step(
        self, index: int, group: dict[str, Any], params: list[Tensor], grads: list[np.ndarray]
    ) -> bool:
        """One step of the group's params over flat arrays; False if they cannot be flattened."""
        moments = self._flat_moments(index, params)
        if moments is None:
            return False
        m, v, offsets = moments
        lr, (beta1, beta2), eps, decay = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        g = np.concatenate([grad.reshape(-1) for grad in grads]).astype(m.dtype, copy=False)
        if decay and not self.decoupled:
            for i, p in enumerate(params):
                g[offsets[i] : offsets[i + 1]] += decay * p.data.reshape(-1)
        t = self.state[params[0]]["step"] + 1
        for p in params:
            self.state[p]["step"] = t
        kind = m.dtype.type
        # lr * m_hat / (sqrt(v_hat) + eps) = (lr / c1 * c2) * m / (sqrt(v) + eps * c2),
        # with c1 = 1 - beta1^t and c2 = sqrt(1 - beta2^t): one pass fewer.
        correction = math.sqrt(1 - beta2**t)
        step_size = kind(lr / (1 - beta1**t) * correction)
        scratch = np.empty_like(g)
        for start in range(0, g.size, CACHE_CHUNK):  # slices that stay in cache for all passes
            part = slice(start, start + CACHE_CHUNK)
            g_part, m_part, v_part, s_part = g[part], m[part], v[part], scratch[part]
            np.multiply(g_part, kind(1 - beta1), out=s_part)
            m_part *= kind(beta1)
            m_part += s_part
            np.multiply(g_part, g_part, out=s_part)
            s_part *= kind(1 - beta2)
            v_part *= kind(beta2)
            v_part += s_part
            # The bias-corrected step, written over g.
            np.sqrt(v_part, out=s_part)
            s_part += kind(eps * correction)
            np.divide(m_part, s_part, out=g_part)
            g_part *= step_size
        shrink = 1 - lr * decay if decay and self.decoupled else None
        for i, p in enumerate(params):
            if shrink is not None:
                p.data *= shrink
            p.data -= g[offsets[i] : offsets[i + 1]].reshape(p.shape)
        return True

    def _update(
        self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, (beta1, beta2), eps, decay = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        if decay:
            if self.decoupled:
                p.data *= 1 - lr * decay
            else:
                grad = grad + decay * p.data
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        # Bias-corrected step: lr * m_hat / (sqrt(v_hat) + eps)
        step_size = lr / (1 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + eps
        p.data -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p -= lr * wd * p each step.

    To decay only matrices, as GPT training does, pass two parameter groups:
    `[{"params": matrices, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}]`.
    """

    decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """RMSprop (Hinton): divide each step by a running root mean square of the gradient.

    With PyTorch's arguments and defaults; Keras' `rho` is `alpha` here.  Each step,
    v = alpha * v + (1 - alpha) * g^2 and p -= lr * g / (sqrt(v) + eps).  `centered`
    subtracts the squared running mean of g from v (an estimate of the variance);
    `momentum` keeps a velocity buf = momentum * buf + g / (sqrt(v) + eps), p -= lr * buf.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
            ),
        )

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        if not 0 <= group["alpha"] <= 1:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {group['alpha']}")
        if not group["momentum"] >= 0:
            raise ValueError(f"RMSprop: momentum must be >= 0, got {group['momentum']}")
        if not group["eps"] >= 0:
            raise ValueError(f"RMSprop: eps must be >= 0, got {group['eps']}")

    def _update(
        self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        alpha, eps, momentum = group["alpha"], group["eps"], group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", np.zeros_like(p.data))
            grad_avg *= alpha
            grad_avg += (1 - alpha) * grad
            denom = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            denom = np.sqrt(square_avg) + eps
        if momentum:
            buffer = state.setdefault("momentum_buffer", np.zeros_like(p.data))
            buffer *= momentum
            buffer += grad / denom
            p.data -= group["lr"] * buffer
        else:
            p.data -= group["lr"] * grad / denom


def _is_count(value: Any) -> bool:
    """True for a whole number at least 0, as a Python or NumPy int or float."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(value >= 0 and value % 1 == 0)
