"""Optimizers and learning-rate schedules.

Every optimizer updates every parameter the same way from its ``grad``; it knows nothing
about layers. ``opt.lr`` may be changed between steps (that is all a schedule does).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from tinygrad_cnn import kernels
from tinygrad_cnn.tensor import Tensor


def check_number(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number >= 0 (Python or numpy; not a bool),
    else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Optimizer:
    """Holds the parameters and the learning rate; subclasses implement ``step``.

    Every parameter must be a leaf float32/float64 Tensor, given once: an integer tensor
    can't hold a gradient (TypeError); a computed (non-leaf) tensor never gets a ``grad``, so
    it would silently never train (ValueError, as PyTorch); the same tensor twice would be
    updated twice per step (ValueError; PyTorch only warns); a read-only array could not be
    updated (ValueError, before any step). As in PyTorch, a parameter with
    ``requires_grad=False`` is frozen: it gets no gradient, and ``step`` leaves it alone, so
    a layer is frozen by ``layer.weight.requires_grad = False`` while the optimizer holds all
    of the model's tensors. (If none requires grad, ``loss.backward()`` says so.)
    """

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
        first_index: dict[int, int] = {}  # id(param) -> where it first appears
        for index, param in enumerate(self.params):
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer parameter {index} is a {type(param).__name__}, not a Tensor; {hint}")
            if param.dtype.type not in (np.float32, np.float64):
                raise TypeError(f"optimizer parameter {index} has dtype {param.dtype}; only float32 and float64 "
                                "tensors can be optimized")
            if param.node is not None:
                raise ValueError(f"can't optimize a non-leaf Tensor: parameter {index} (shape {param.shape}) was "
                                 "computed from other tensors and never gets a grad; pass the leaf it came from")
            if id(param) in first_index:
                raise ValueError(f"optimizer parameter {index} is the same Tensor as parameter "
                                 f"{first_index[id(param)]}: it would be updated twice per step")
            if not param.data.flags.writeable:
                raise ValueError(f"optimizer parameter {index} (shape {param.shape}) is backed by a read-only array "
                                 "(as np.frombuffer, np.load with mmap_mode='r' or np.broadcast_to give), which a "
                                 "step cannot update; give the model a writable copy (np.array(...)) first")
            first_index[id(param)] = index
        self.lr = check_number("learning rate", lr)
        #: steps taken, for the buffer flush every kernels.flush_steps(...) steps; not in ``state_dict``
        #: (a resumed run sets it, as examples/mnist.py does, to flush on the same steps)
        self.steps_taken = 0

    def zero_grad(self) -> None:
        """Forget the accumulated gradients (set every ``grad`` to None)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def _gradients(self) -> list[Optional[np.ndarray]]:
        """Every parameter's ``grad`` (None: no gradient, the step skips it) as an array of the
        parameter's dtype, all checked before a step changes anything.

        ``backward()`` always leaves an array of the parameter's shape and dtype, and a ``grad``
        assigned by hand is checked when it is set (``Tensor.grad``), but ``param.data`` may be
        replaced after that by one of another shape or dtype. A grad of another shape would be
        broadcast by the update without a word (a (3,) grad moves every row of a (2, 3)
        weight alike; PyTorch refuses it when it is assigned): a ValueError naming the
        parameter, before any parameter has moved. One of another number dtype (``np.array([1.0])``
        for a float32 parameter) is converted, as the update would convert it anyway; kept, it
        would make SGD's momentum buffer float64, which a checkpoint then restores rounded.
        Anything else (a list, complex or object data) is a TypeError naming the parameter.
        """
        grads: list[Optional[np.ndarray]] = []
        for index, param in enumerate(self.params):
            grad, data = param.grad, param.data
            if grad is not None and (type(grad) is not np.ndarray or grad.shape != data.shape or grad.dtype is not data.dtype):
                grad = self._fitted_gradient(index, param, grad)  # (the usual grad, from backward, never gets here)
            grads.append(grad)
        return grads

    def _fitted_gradient(self, index: int, param: Tensor, grad: object) -> np.ndarray:
        """``_gradients``' check of a grad that is not an array of its parameter's shape and dtype."""
        if not isinstance(grad, np.ndarray) or grad.dtype.kind not in "iuf":
            kind = f"an array of dtype {grad.dtype}" if isinstance(grad, np.ndarray) else f"a {type(grad).__name__}"
            raise TypeError(f"{type(self).__name__}.step: parameter {index} has a grad that is {kind}; "
                            f"a grad must be None or a real-number numpy array of its parameter's shape "
                            f"{param.shape}")
        if grad.shape != param.shape:
            raise ValueError(f"{type(self).__name__}.step: parameter {index} has shape {param.shape}, but "
                             f"its grad has shape {grad.shape} (was its .data replaced after the grad was set?); the update would "
                             "broadcast it instead of failing")
        return grad.astype(param.dtype, copy=False)

    # the per-parameter buffers (momentum, moments), for checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        _check_mapping(self, state)
        if state:
            raise ValueError(f"{type(self).__name__} has no state, got unexpected keys {sorted(state, key=str)}")


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
        grads = self._gradients()  # (checked before anything changes)
        self.steps_taken += 1
        # (every kernels.flush_steps(momentum) steps, each buffer right after its update: kernels.py)
        flush = self.steps_taken % kernels.flush_steps(self.momentum) == 0
        for index, (param, grad) in enumerate(zip(self.params, grads)):
            if grad is None:
                if flush and self.velocities[index] is not None:
                    kernels.flush_subnormals(self.velocities[index])
                continue
            first_step = self.momentum != 0 and self.velocities[index] is None
            if first_step:
                self.velocities[index] = np.empty_like(param.data)
            # (by cache-sized blocks, or whole through BLAS: kernels.update_blocks)
            for data, block_grad, velocity in kernels.update_blocks(param.data, grad, self.velocities[index], blas=True):
                self._update(data, block_grad, velocity, first_step)
                if flush and velocity is not None:
                    kernels.flush_subnormals(velocity)
            param.note_in_place_change()  # a graph built before this step raises at backward()

    def _update(self, data: np.ndarray, grad: np.ndarray, velocity: Optional[np.ndarray], first_step: bool) -> None:
        """The update of one parameter (or one block of it) in place."""
        if self.weight_decay:
            grad = grad + self.weight_decay * data
        if velocity is not None:
            if first_step:
                velocity[...] = grad
            else:  # v = momentum · v + g (BLAS passes for big arrays: kernels.momentum_step)
                kernels.momentum_step(velocity, self.momentum, grad)
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        kernels.add_scaled(data, -self.lr, grad)  # p -= lr · g

    def state_dict(self) -> dict[str, np.ndarray]:
        return {str(index): velocity.copy() for index, velocity in enumerate(self.velocities) if velocity is not None}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore the momentum buffers saved by ``state_dict``: {"<parameter index>": buffer},
        entries only for parameters that have one. Checked before anything changes.

        A state with buffers is refused by an SGD without momentum (ValueError): it would
        never use them, and the resumed run would silently differ from the saved one. (PyTorch
        restores the saved momentum setting with the buffers; here it is an argument.)
        """
        _check_mapping(self, state)
        keys = [str(index) for index in range(len(self.params))]
        unexpected = [key for key in state if key not in keys]
        if unexpected:
            raise ValueError(
                f"SGD.load_state_dict: unexpected keys {sorted(unexpected, key=str)}; SGD's state has one "
                f"momentum buffer per parameter, keyed by the parameter's index ('0', '1', …; it has {len(self.params)}) "
                "(is this another optimizer's state?)"
            )
        if state and not self.momentum:
            raise ValueError(
                f"SGD.load_state_dict: the state holds momentum buffers for parameters {sorted(state, key=int)}, "
                "but this SGD has momentum=0 and would never use them; create it with the momentum the state "
                "was saved with"
            )
        velocities: list[Optional[np.ndarray]] = [None] * len(self.params)
        for key, value in state.items():
            param = self.params[int(key)]
            velocities[int(key)] = _buffer(f"SGD state entry '{key}'", value, param)
        self.velocities = velocities


class Adam(Optimizer):
    """Adam (Kingma & Ba): m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g²,
    p -= lr · m̂ / (√v̂ + ε) with the bias-corrected m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).

    t counts the steps in which that parameter had a gradient (``steps[i]``), as PyTorch
    keeps one count per parameter: a parameter first used late is corrected as a new one.
    ``weight_decay`` adds weight_decay · p to g (L2, as PyTorch's Adam); ``AdamW`` decays the
    weights instead."""

    #: False: weight decay as an L2 term in the gradient (Adam); True: on the weights (AdamW)
    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if len(betas) != 2 or not all(isinstance(beta, numbers.Real) and 0 <= beta < 1 for beta in betas):
            raise ValueError(f"{type(self).__name__} betas must be two numbers in [0, 1), got {betas}")
        eps, weight_decay = check_number("eps", eps), check_number("weight_decay", weight_decay)
        self.betas, self.eps, self.weight_decay = (float(betas[0]), float(betas[1])), eps, weight_decay
        self.steps = [0] * len(self.params)  # per parameter: the steps it had a gradient in
        self.first_moments = [np.zeros_like(param.data) for param in self.params]
        self.second_moments = [np.zeros_like(param.data) for param in self.params]

    def step(self) -> None:
        beta1, beta2 = self.betas
        grads = self._gradients()  # (checked before anything changes)
        self.steps_taken += 1
        limits: dict[np.dtype, tuple[float, float]] = {}  # per dtype, this step's (a limit of 0 flushes nothing)
        for index, (param, grad, m, v) in enumerate(zip(self.params, grads, self.first_moments,
                                                        self.second_moments)):
            if m.dtype not in limits:
                limits[m.dtype] = self._flush_limits_now(m.dtype)
            m_limit, v_limit = limits[m.dtype]
            if grad is None:
                kernels.flush_subnormals(m, m_limit)
                kernels.flush_subnormals(v, v_limit)
                continue
            self.steps[index] += 1
            correction1, correction2 = 1 - beta1 ** self.steps[index], 1 - beta2 ** self.steps[index]
            for data, block_grad, block_m, block_v in kernels.update_blocks(param.data, grad, m, v):  # (cache-sized)
                if self.weight_decay and self.decoupled_weight_decay:  # (AdamW: the weights decay, not through g)
                    data *= 1 - self.lr * self.weight_decay
                elif self.weight_decay:
                    block_grad = block_grad + self.weight_decay * data
                block_m *= beta1
                block_m += (1 - beta1) * block_grad
                block_v *= beta2
                block_v += (1 - beta2) * block_grad * block_grad
                data -= self.lr * (block_m / correction1) / (np.sqrt(block_v / correction2) + self.eps)
                kernels.flush_subnormals(block_m, m_limit)
                kernels.flush_subnormals(block_v, v_limit)
            param.note_in_place_change()

    def _flush_limits_now(self, dtype: np.dtype) -> tuple[float, float]:
        """This step's flush limits for m and v: ``_flush_limits`` on a step when the moment is
        due (every kernels.flush_steps(β, limit / smallest normal float) steps: with the
        defaults, m every 144 steps and v every 11,004 in float32), else 0 (no flush). Each
        buffer is flushed right after its update (kernels.py)."""
        (beta1, beta2), (m_limit, v_limit) = self.betas, self._flush_limits(dtype)
        tiny = float(np.finfo(dtype).tiny)
        m_due = self.steps_taken % kernels.flush_steps(beta1, m_limit / tiny) == 0
        v_due = self.steps_taken % kernels.flush_steps(beta2, v_limit / tiny) == 0
        return (m_limit if m_due else 0.0), (v_limit if v_due else 0.0)

    def _flush_limits(self, dtype: np.dtype) -> tuple[float, float]:
        """The limits below which the flush sets entries of m and of v to 0: the optimizers'
        ``kernels.flush_limit``, lowered where eps is too small to hide them. A step is
        lr·m̂/(√v̂ + eps), with m̂ = m/(1−β₁ᵗ) and v̂ = v/(1−β₂ᵗ), so m̂ ≤ m/(1−β₁) and
        v̂ ≤ v/(1−β₂). Entries of v below (1−β₂)(eps·ε)² (ε: the dtype's machine epsilon) move
        √v̂ by less than eps·ε, now and in every later step, so a step by a factor of less than
        1 ± ε; entries of m below (1−β₁)²·eps·ε take less than lr·ε from all the steps to come
        together (m decays by β₁ a step). With eps = 0 nothing is flushed: m̂/√v̂ depends on v
        however small it is (a flushed v made a step m/0 = −inf), and v can then turn subnormal.
        With the default eps both limits are ``flush_limit`` in float64; in float32 m's is, and
        v's is 1.4e-33, still far above the subnormals (v decays by β₂ = 0.999 a step)."""
        limit, precision = kernels.flush_limit(dtype), float(np.finfo(dtype).eps)
        beta1, beta2 = self.betas
        return (min(limit, (1 - beta1) ** 2 * self.eps * precision),
                min(limit, (1 - beta2) * (self.eps * precision) ** 2))

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"steps": np.array(self.steps, dtype=np.int64)}
        for index, (m, v) in enumerate(zip(self.first_moments, self.second_moments)):
            state[f"m.{index}"], state[f"v.{index}"] = m.copy(), v.copy()
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore the state saved by ``state_dict``: "steps" (one count per parameter; a single
        count, as older versions saved, applies to all) and the moments "m.<index>" and
        "v.<index>" of every parameter. Every key and shape is checked before anything changes."""
        _check_mapping(self, state)
        keys = ["steps"] + [f"{moment}.{index}" for index in range(len(self.params)) for moment in ("m", "v")]
        missing = [key for key in keys if key not in state]
        unexpected = [key for key in state if key not in keys]
        if missing or unexpected:
            problems = ([f"missing keys {missing}"] if missing else []) + \
                       ([f"unexpected keys {sorted(unexpected, key=str)}"] if unexpected else [])
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: {'; '.join(problems)}; {type(self).__name__}'s state is 'steps' and the moments "
                f"'m.<index>', 'v.<index>' of each of its {len(self.params)} parameters (is this another "
                "optimizer's state?)"
            )
        steps = np.asarray(state["steps"])
        if steps.shape not in ((), (len(self.params),)) or steps.dtype.kind not in "iu" or np.any(steps < 0):
            raise ValueError(f"{type(self).__name__}.load_state_dict: 'steps' must be one integer >= 0 per parameter ({len(self.params)}) "
                             f"or a single one, got {state['steps']!r}")
        first_moments = [_buffer(f"{type(self).__name__} state entry 'm.{i}'", state[f"m.{i}"], p) for i, p in enumerate(self.params)]
        second_moments = [_buffer(f"{type(self).__name__} state entry 'v.{i}'", state[f"v.{i}"], p) for i, p in enumerate(self.params)]
        counts = [int(count) for count in np.broadcast_to(steps, (len(self.params),))]
        self.steps, self.first_moments, self.second_moments = counts, first_moments, second_moments


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's AdamW:
    p -= lr · weight_decay · p, then Adam's update without any decay in g (m, v and the bias
    correction as Adam's). The decay shrinks every weight in proportion, however large its
    gradient's second moment, where Adam's L2 term is divided by √v̂ with the rest of g.
    PyTorch's default weight_decay, 0.01; the state (``state_dict``) is Adam's."""

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def _check_mapping(optimizer: Optimizer, state: Any) -> None:
    if not isinstance(state, Mapping):
        raise TypeError(f"{type(optimizer).__name__}.load_state_dict needs a dict of arrays (from state_dict()), "
                        f"got a {type(state).__name__}")


def _buffer(name: str, value: Any, param: Tensor) -> np.ndarray:
    """``value`` as a new array of ``param``'s dtype, if it is numeric and of ``param``'s shape."""
    array = np.asarray(value)
    if array.shape != param.shape:
        raise ValueError(f"{name} has shape {array.shape}, but its parameter has shape {param.shape}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} holds non-numeric data of dtype {array.dtype}")
    buffer = np.empty_like(param.data)  # (in the parameter's memory order, as the update's passes need: kernels.update_blocks)
    np.copyto(buffer, array, casting="unsafe")
    return buffer


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

    ``s`` counts optimizer steps from 0; training runs steps 0 … total − 1, and from step
    ``total`` on the rate stays at ``min_lr``. As in PyTorch (transformers'
    ``get_cosine_schedule_with_warmup``, ``LinearLR`` followed by ``CosineAnnealingLR``), the
    warm-up reaches ``max_lr`` at step ``warmup_steps``, the first step after it: step 0 trains
    at ``start_lr``. ``warmup_steps == total_steps`` is a run that is all warm-up (it never
    trains at ``max_lr``, and ends at ``min_lr``); it is refused for a one-step run with
    ``start_lr`` 0, whose only step would train at lr 0 (use ``warmup_steps=0`` to train that
    step at ``max_lr``).

    The rates must be finite and >= 0, ``start_lr`` at most ``max_lr`` (as PyTorch's
    ``LinearLR`` factor, at most 1); ``min_lr`` above ``max_lr`` makes the "decay" rise, as
    ``CosineAnnealingLR`` allows. The step counts must be whole numbers (an int, or a float such
    as 2814.0 from ``math.ceil``-style arithmetic) with 0 <= warmup_steps <= total_steps and
    total_steps >= 1. Each problem is a ValueError naming the argument and its value.
    """

    def __init__(self, max_lr: float, total_steps: int, warmup_steps: int,
                 min_lr: float = 0.0, start_lr: float = 0.0):
        self.max_lr = check_number("WarmupCosine max_lr", max_lr)
        self.min_lr = check_number("WarmupCosine min_lr", min_lr)
        self.start_lr = check_number("WarmupCosine start_lr", start_lr)
        if self.start_lr > self.max_lr:
            raise ValueError(f"WarmupCosine start_lr ({self.start_lr}) must not exceed max_lr ({self.max_lr})")
        self.total_steps = _check_step_count("WarmupCosine total_steps", total_steps, least=1)
        self.warmup_steps = _check_step_count("WarmupCosine warmup_steps", warmup_steps)
        if self.warmup_steps > self.total_steps:
            raise ValueError(f"WarmupCosine warmup_steps ({warmup_steps}) must not exceed total_steps ({total_steps})")
        if self.warmup_steps == self.total_steps == 1 and self.start_lr == 0:
            raise ValueError(f"WarmupCosine warmup_steps ({warmup_steps}) == total_steps ({total_steps}): the warm-up "
                             f"reaches max_lr at step warmup_steps, so the only step (0) would train at start_lr "
                             f"0; use warmup_steps=0 to train it at max_lr")

    def __call__(self, step: int) -> float:
        _check_step_count("WarmupCosine step", step)
        if step < self.warmup_steps:
            return self.start_lr + (self.max_lr - self.start_lr) * step / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        progress = 1.0 if decay_steps == 0 else min((step - self.warmup_steps) / decay_steps, 1.0)  # (all warm-up: min at the end)
        return self.min_lr + (self.max_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


class StepLR:
    """The rate multiplied by ``gamma`` every ``step_size`` steps, as PyTorch's ``StepLR``:

        lr(s) = lr · gamma^⌊s / step_size⌋

    ``s`` counts optimizer steps from 0, as for ``WarmupCosine`` (PyTorch's counts the calls of
    its ``scheduler.step()``, usually one an epoch: give ``step_size`` in optimizer steps, e.g.
    ``epochs_per_decay * steps_per_epoch``). ``lr`` and ``gamma`` must be finite and >= 0 (a
    ``gamma`` above 1 makes the rate grow, as PyTorch allows), ``step_size`` a whole number
    >= 1; each problem is a ValueError naming the argument and its value.
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1):
        self.lr = check_number("StepLR lr", lr)
        self.step_size = _check_step_count("StepLR step_size", step_size, least=1)
        self.gamma = check_number("StepLR gamma", gamma)

    def __call__(self, step: int) -> float:
        decays = _check_step_count("StepLR step", step) // self.step_size
        try:
            return self.lr * self.gamma**decays
        except OverflowError:  # (a gamma above 1, decayed thousands of times: inf, as PyTorch's rate becomes)
            return math.inf if self.lr else 0.0


def _check_step_count(name: str, value: Any, least: int = 0) -> int:
    """``value`` as an int if it is a whole number >= ``least`` (a Python or numpy int, or a
    float such as 50.0; not a bool), else ValueError naming it."""
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    if isinstance(value, bool) or not whole or value < least:
        raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)
