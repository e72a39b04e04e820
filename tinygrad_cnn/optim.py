"""Optimizers and learning-rate schedules.

Every optimizer updates every parameter the same way from its ``grad``; it knows nothing
about layers. ``opt.lr`` may be changed between steps (that is all a schedule does).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional

import numpy as np

from tinygrad_cnn.tensor import Tensor


def check_number(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number >= 0 (Python or numpy; not a bool),
    else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Optimizer:
    """Holds the parameters and the learning rate; subclasses implement ``step``."""

    def __init__(self, params: Iterable[Tensor], lr: float):
        hint = f"pass the model's tensors: {type(self).__name__}(get_parameters(model), ...) (from tinygrad_cnn.nn)"
        if isinstance(params, Tensor):
            raise TypeError(f"optimizer got a single Tensor; pass a list of them, e.g. [tensor], or {hint}")
        try:
            self.params: list[Tensor] = list(params)
        except TypeError:
            raise TypeError(f"optimizer got a {type(params).__name__}, not a list of Tensors; {hint}") from None
        if not self.params:
            raise ValueError("optimizer got an empty parameter list: nothing to optimize")
        for index, param in enumerate(self.params):
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer parameter {index} is a {type(param).__name__}, not a Tensor; {hint}")
        self.lr = check_number("learning rate", lr)
        for param in self.params:
            param.requires_grad = True

    def zero_grad(self) -> None:
        """Forget the accumulated gradients (set every ``grad`` to None)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        raise NotImplementedError

    # the per-parameter buffers (momentum, moments), for checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state:
            raise KeyError(f"{type(self).__name__} has no state, got keys {sorted(state)}")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 decay.

    g = grad + weight_decay · p;  v = momentum · v + g  (v = g on the first step);
    p -= lr · (g + momentum · v if nesterov else v)      — the same update as torch.optim.SGD.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        momentum, weight_decay = check_number("momentum", momentum), check_number("weight_decay", weight_decay)
        if nesterov and momentum == 0:
            raise ValueError("nesterov momentum needs momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.velocities: list[Optional[np.ndarray]] = [None] * len(self.params)

    def step(self) -> None:
        for index, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            if self.weight_decay:
                grad = grad + self.weight_decay * param.data
            if self.momentum:
                velocity = self.velocities[index]
                if velocity is None:
                    velocity = self.velocities[index] = grad.copy()
                else:
                    velocity *= self.momentum
                    velocity += grad
                grad = grad + self.momentum * velocity if self.nesterov else velocity
            param.data -= self.lr * grad
            param.note_in_place_change()  # a graph built before this step raises at backward()

    def state_dict(self) -> dict[str, np.ndarray]:
        return {str(index): velocity.copy() for index, velocity in enumerate(self.velocities) if velocity is not None}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        velocities: list[Optional[np.ndarray]] = [None] * len(self.params)
        for key, value in state.items():
            index = int(key)
            if not 0 <= index < len(self.params) or value.shape != self.params[index].shape:
                raise ValueError(f"SGD state entry {key} with shape {value.shape} does not fit the parameters")
            velocities[index] = np.array(value, dtype=self.params[index].dtype)
        self.velocities = velocities


class Adam(Optimizer):
    """Adam (Kingma & Ba): m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g²,
    p -= lr · m̂ / (√v̂ + ε) with the bias-corrected m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if len(betas) != 2 or not all(isinstance(beta, numbers.Real) and 0 <= beta < 1 for beta in betas):
            raise ValueError(f"Adam betas must be two numbers in [0, 1), got {betas}")
        eps, weight_decay = check_number("eps", eps), check_number("weight_decay", weight_decay)
        self.betas, self.eps, self.weight_decay = (float(betas[0]), float(betas[1])), eps, weight_decay
        self.steps = 0
        self.first_moments = [np.zeros_like(param.data) for param in self.params]
        self.second_moments = [np.zeros_like(param.data) for param in self.params]

    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        for param, m, v in zip(self.params, self.first_moments, self.second_moments):
            if param.grad is None:
                continue
            grad = param.grad + self.weight_decay * param.data if self.weight_decay else param.grad
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param.data -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
            param.note_in_place_change()

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"steps": np.array(self.steps)}
        for index, (m, v) in enumerate(zip(self.first_moments, self.second_moments)):
            state[f"m.{index}"], state[f"v.{index}"] = m.copy(), v.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for index, param in enumerate(self.params):
            for key in (f"m.{index}", f"v.{index}"):
                if key not in state or state[key].shape != param.shape:
                    raise ValueError(f"Adam state is missing {key} or it has the wrong shape")
        self.steps = int(state["steps"])
        self.first_moments = [np.array(state[f"m.{i}"], dtype=p.dtype) for i, p in enumerate(self.params)]
        self.second_moments = [np.array(state[f"v.{i}"], dtype=p.dtype) for i, p in enumerate(self.params)]


# ---------------------------------------------------------------------------
# Learning-rate schedules: callables step -> lr
# ---------------------------------------------------------------------------


class ConstantLR:
    """lr(step) = lr."""

    def __init__(self, lr: float):
        self.lr = lr

    def __call__(self, step: int) -> float:
        return self.lr


class WarmupCosine:
    """Linear warm-up from ``start_lr`` to ``max_lr`` over ``warmup_steps``, then a cosine
    decay to ``min_lr`` at ``total_steps`` (the seed program's schedule):

        lr(s) = start + (max − start) · s / warmup                        for s < warmup
        lr(s) = min + (max − min) · ½ (1 + cos(π · (s − warmup) / (total − warmup)))
    """

    def __init__(self, max_lr: float, total_steps: int, warmup_steps: int,
                 min_lr: float = 0.0, start_lr: float = 0.0):
        if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}) and total_steps > 0")
        self.max_lr, self.total_steps, self.warmup_steps = max_lr, total_steps, warmup_steps
        self.min_lr, self.start_lr = min_lr, start_lr

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start_lr + (self.max_lr - self.start_lr) * step / self.warmup_steps
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / decay_steps, 1.0)
        return self.min_lr + (self.max_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
