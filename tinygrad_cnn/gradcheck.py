"""Finite-difference gradient checking of the hand-written VJPs.

Two checks, both in float64 with central differences (f(x + εv) − f(x − εv)) / 2ε:

* the full Jacobian, element by element, when the inputs and output are small;
* random projections (as in HIPS autograd): for random unit vectors u (output-shaped)
  and v (input-shaped), the analytic ⟨Jᵀu, v⟩ from one backward pass must equal the
  numeric directional derivative ⟨u, (f(x + εv) − f(x − εv)) / 2ε⟩. This costs two
  forward passes per input, so it scales to conv layers of any size.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from tinygrad_cnn.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """The analytic gradient disagrees with the finite-difference one."""


def _fresh_inputs(arrays: Sequence[np.ndarray], requires: Sequence[bool]) -> list[Tensor]:
    return [Tensor(array.copy(), requires_grad=flag) for array, flag in zip(arrays, requires)]


def _evaluate(fn: Callable[..., Tensor], arrays: Sequence[np.ndarray]) -> np.ndarray:
    with no_grad():
        return np.array(fn(*[Tensor(array) for array in arrays]).data, dtype=np.float64)


def _vector_jacobian(fn: Callable[..., Tensor], arrays: Sequence[np.ndarray],
                     requires: Sequence[bool], cotangent: np.ndarray) -> list[np.ndarray]:
    """Analytic Jᵀ·cotangent for every input, from one backward pass."""
    inputs = _fresh_inputs(arrays, requires)
    output = fn(*inputs)
    if not output.requires_grad:
        raise GradcheckError("gradcheck: the function's output does not depend on any input requiring grad")
    output.backward(cotangent)
    return [
        np.zeros_like(array) if tensor.grad is None else tensor.grad
        for tensor, array in zip(inputs, arrays)
    ]


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor | np.ndarray], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, projections: int = 3,
              full_jacobian_limit: int = 4096, seed: Optional[int] = 0) -> bool:
    """Check ``fn``'s VJPs against float64 central differences.

    ``fn(*tensors) -> Tensor`` is called with float64 copies of ``inputs``; only inputs
    with ``requires_grad=True`` (plain arrays count as requiring grad) are checked. The full
    Jacobian is compared whenever (total input size) × (output size) ≤ ``full_jacobian_limit``;
    ``projections`` random projections are always compared. Returns True, or raises
    GradcheckError naming the input, the worst element, and the analytic and numeric values.
    """
    arrays = [np.array(t.data if isinstance(t, Tensor) else t, dtype=np.float64) for t in inputs]
    requires = [t.requires_grad if isinstance(t, Tensor) else True for t in inputs]
    if not any(requires):
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    output = _evaluate(fn, arrays)
    rng = np.random.default_rng(seed)

    checked = [index for index, flag in enumerate(requires) if flag]
    input_size = sum(arrays[index].size for index in checked)
    if input_size * max(output.size, 1) <= full_jacobian_limit:
        _check_full_jacobian(fn, arrays, requires, checked, output, eps, atol, rtol)
    for _ in range(projections):
        _check_projection(fn, arrays, requires, checked, output, eps, atol, rtol, rng)
    return True


def _check_full_jacobian(fn, arrays, requires, checked, output, eps, atol, rtol) -> None:
    analytic_rows = []  # row i = gradient of output element i with respect to every input
    for flat_index in range(output.size):
        cotangent = np.zeros(output.size)
        cotangent[flat_index] = 1.0
        analytic_rows.append(_vector_jacobian(fn, arrays, requires, cotangent.reshape(output.shape)))
    for index in checked:
        analytic = np.stack([row[index].reshape(-1) for row in analytic_rows])  # (out, in)
        numeric = np.empty_like(analytic)
        for element in range(arrays[index].size):
            step = np.zeros(arrays[index].size)
            step[element] = eps
            numeric[:, element] = _central_difference(fn, arrays, index, step.reshape(arrays[index].shape), eps)
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(error > 0):
            out_element, in_element = np.unravel_index(np.argmax(error), error.shape)
            raise GradcheckError(
                f"gradcheck failed for input {index} (shape {arrays[index].shape}): "
                f"d output{tuple(map(int, np.unravel_index(out_element, output.shape)))} / "
                f"d input{tuple(map(int, np.unravel_index(in_element, arrays[index].shape)))} "
                f"is {analytic[out_element, in_element]:.6g} analytically but "
                f"{numeric[out_element, in_element]:.6g} numerically"
            )


def _central_difference(fn, arrays, index, step, eps) -> np.ndarray:
    """(f(x + step) − f(x − step)) / 2ε, flattened, for a step on input ``index``."""
    plus = [array + step if position == index else array for position, array in enumerate(arrays)]
    minus = [array - step if position == index else array for position, array in enumerate(arrays)]
    return ((_evaluate(fn, plus) - _evaluate(fn, minus)) / (2 * eps)).reshape(-1)


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    vector = rng.standard_normal(shape)
    return vector / max(np.linalg.norm(vector), 1e-300)


def _check_projection(fn, arrays, requires, checked, output, eps, atol, rtol, rng) -> None:
    u = _unit(rng, output.shape)
    analytic_grads = _vector_jacobian(fn, arrays, requires, u)
    for index in checked:
        v = _unit(rng, arrays[index].shape)
        analytic = float(np.sum(analytic_grads[index] * v))
        numeric = float(np.dot(u.reshape(-1), _central_difference(fn, arrays, index, eps * v, eps)))
        if abs(analytic - numeric) > atol + rtol * abs(numeric):
            worst = np.unravel_index(np.argmax(np.abs(analytic_grads[index])), arrays[index].shape)
            raise GradcheckError(
                f"gradcheck failed for input {index} (shape {arrays[index].shape}): along a random "
                f"direction ⟨u, J v⟩ is {analytic:.6g} analytically but {numeric:.6g} numerically "
                f"(largest analytic gradient element {tuple(map(int, worst))})"
            )
