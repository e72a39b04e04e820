"""Finite-difference gradient checking of the hand-written VJPs.

Two checks, both in float64 with central differences (f(x + εv) − f(x − εv)) / 2ε:

* the full Jacobian, element by element, when the inputs and output are small;
* random projections (as in HIPS autograd): for random vectors u (output-shaped) and v
  (input-shaped) with standard-normal entries, the analytic ⟨Jᵀu, v⟩ from one backward
  pass must equal the numeric directional derivative ⟨u, (f(x + εv) − f(x − εv)) / 2ε⟩.
  This costs two forward passes per input and projection (up to eight when a projection is
  measured again with smaller steps), so it scales to conv layers of any size.

The projections' vectors are not normalised to length 1, so that atol keeps its
per-entry meaning: with standard-normal u and v, an error e in k Jacobian entries moves
⟨u, J v⟩ by about e·√k, and each element of x is stepped by about ε, as in the full check.
(Unit vectors shrink ⟨u, J v⟩ by √(input size · output size): a 10,000-element input with
gradients near 1e-4 then passed a VJP that was wrong by a factor of 2, as the whole
projection fell under atol.) rtol is relative to ⟨u, J v⟩ as a whole, so a projection can
miss an error confined to a few entries that is below rtol·‖J‖: only the full check sees
every entry. Two allowances keep correct VJPs passing: the rounding of f's values, which the
division by 2ε magnifies, is added to atol (it grows with the output's size and magnitude);
and a projection that disagrees is measured again with steps 10, 100 and 1000 times smaller
(where their rounding stays under rtol of the value), as a step of ε·vᵢ may cross a kink (relu at 0)
or a tie (max, pools) where a smaller one does not.

A NaN or infinite gradient is a failure, analytic or numeric, unless both are the same
infinity: a VJP that returns NaN never passes (NaN compares unequal to everything, so a
plain tolerance test would let it through).
"""

from __future__ import annotations

import math
import numbers
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
    """Analytic Jᵀ·cotangent for every input, from one backward pass.

    backward() gets a copy of ``cotangent``: a VJP that changed its G in place (``grad_out *=
    2; return grad_out``) would otherwise change u too, and the numeric side ⟨u, J v⟩, computed
    afterwards with the changed u, would then agree with the wrong analytic side."""
    inputs = _fresh_inputs(arrays, requires)
    output = fn(*inputs)
    if not output.requires_grad:
        raise GradcheckError("gradcheck: the function's output does not depend on any input requiring grad")
    output.backward(cotangent.copy())
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
    ``projections`` random projections are always compared (``projections=0`` is refused
    when the full Jacobian is too big to compare: nothing would be checked). Returns True, or raises
    GradcheckError naming the input, the worst element, and the analytic and numeric values.

    A gradient element that is NaN or ±inf fails the check (analytic or numeric) unless
    both are the same infinity; the message names the input and the element. Inputs
    holding NaN or inf are refused with ValueError.
    """
    _check_tolerance("eps", eps, positive=True)
    _check_tolerance("atol", atol)
    _check_tolerance("rtol", rtol)
    for name, count in (("projections", projections), ("full_jacobian_limit", full_jacobian_limit)):
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise ValueError(f"gradcheck: {name} must be an int >= 0, got {count!r}")
    arrays = [np.array(t.data if isinstance(t, Tensor) else t, dtype=np.float64) for t in inputs]
    requires = [t.requires_grad if isinstance(t, Tensor) else True for t in inputs]
    if not any(requires):
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for index, array in enumerate(arrays):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"gradcheck: input {index} (shape {array.shape}) holds NaN or inf; "
                             "finite differences need finite inputs")
    output = _evaluate(fn, arrays)
    rng = np.random.default_rng(seed)

    checked = [index for index, flag in enumerate(requires) if flag]
    input_size = sum(arrays[index].size for index in checked)
    full = input_size * max(output.size, 1) <= full_jacobian_limit
    if not full and projections == 0:
        raise ValueError(
            f"gradcheck: projections=0 and the full Jacobian ({input_size} inputs × {output.size} outputs) is over "
            f"full_jacobian_limit={full_jacobian_limit}, so nothing would be checked; ask for projections >= 1")
    if full:
        _check_full_jacobian(fn, arrays, requires, checked, output, eps, atol, rtol)
    for _ in range(projections):
        _check_projection(fn, arrays, requires, checked, output, eps, atol, rtol, rng)
    return True


def _check_tolerance(name: str, value: float, positive: bool = False) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value < 0 or (positive and value == 0)):
        raise ValueError(f"gradcheck: {name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def _agree(analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Elementwise: finite and within tolerance, or the same infinity. NaN never agrees."""
    finite = np.isfinite(analytic) & np.isfinite(numeric)
    with np.errstate(invalid="ignore"):
        close = np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric)
        same_infinity = np.isinf(analytic) & (analytic == numeric)
    return (finite & close) | same_infinity


def _check_full_jacobian(fn, arrays, requires, checked, output, eps, atol, rtol) -> None:
    analytic_rows = []  # row i = gradient of output element i with respect to every input
    for flat_index in range(output.size):
        cotangent = np.zeros(output.size)
        cotangent[flat_index] = 1.0
        analytic_rows.append(_vector_jacobian(fn, arrays, requires, cotangent.reshape(output.shape)))
    for index in checked:
        analytic = np.stack([row[index].reshape(-1) for row in analytic_rows])  # (out, in)
        numeric = np.empty_like(analytic)
        rounding = np.empty_like(analytic)  # what rounding of f's values alone can explain, per entry
        for element in range(arrays[index].size):
            step = np.zeros(arrays[index].size)
            step[element] = eps
            numeric[:, element], rounding[:, element] = _central_difference(
                fn, arrays, index, step.reshape(arrays[index].shape), eps)
        disagree = ~_agree(analytic, numeric, atol + rounding, rtol)
        if np.any(disagree):
            non_finite = disagree & ~(np.isfinite(analytic) & np.isfinite(numeric))
            if np.any(non_finite):  # name a NaN/inf element first: it is the clearer bug
                worst = int(np.argmax(non_finite))
            else:
                worst = int(np.argmax(np.abs(analytic - numeric) - rtol * np.abs(numeric)))
            out_element, in_element = np.unravel_index(worst, analytic.shape)
            raise GradcheckError(
                f"gradcheck failed for input {index} (shape {arrays[index].shape}): "
                f"d output{tuple(map(int, np.unravel_index(out_element, output.shape)))} / "
                f"d input{tuple(map(int, np.unravel_index(in_element, arrays[index].shape)))} "
                f"is {analytic[out_element, in_element]:.6g} analytically but "
                f"{numeric[out_element, in_element]:.6g} numerically"
                + (" (a non-finite gradient)" if np.any(non_finite) else "")
            )


def _values_around(fn, arrays, index, step) -> tuple[np.ndarray, np.ndarray]:
    """(f(x + step), f(x − step)) for a step on input ``index``."""
    plus = [array + step if position == index else array for position, array in enumerate(arrays)]
    minus = [array - step if position == index else array for position, array in enumerate(arrays)]
    return _evaluate(fn, plus), _evaluate(fn, minus)


def _central_difference(fn, arrays, index, step, eps) -> tuple[np.ndarray, np.ndarray]:
    """(f(x + step) − f(x − step)) / 2ε, flattened, for a step on input ``index``, and per
    element the part of it that rounding alone can explain: each f value is off by about one
    ulp, magnified by the division by 2ε, three times over (as ``_directional_derivative``).
    Without it f = x + 1e8, whose derivative is exactly 1, came out as 0.998 and failed."""
    f_plus, f_minus = _values_around(fn, arrays, index, step)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite values are reported by the caller
        numeric = ((f_plus - f_minus) / (2 * eps)).reshape(-1)
        rounding = 3 * np.finfo(np.float64).eps * (np.abs(f_plus) + np.abs(f_minus)) / (2 * eps)
    return numeric, np.where(np.isfinite(rounding), rounding, 0.0).reshape(-1)


def _check_projection(fn, arrays, requires, checked, output, eps, atol, rtol, rng) -> None:
    u = rng.standard_normal(output.shape)
    analytic_grads = _vector_jacobian(fn, arrays, requires, u)
    for index in checked:
        v = rng.standard_normal(arrays[index].shape)
        with np.errstate(invalid="ignore", over="ignore"):  # a NaN/inf gradient is reported below
            analytic = float(np.sum(analytic_grads[index] * v))
        # A step across a kink or tie changes the difference quotient however small the step, but
        # the smaller the step, the fewer elements sit within it: a projection that disagrees is
        # measured again with steps 10, 100 and 1000 times smaller (the 200,704 normal values of
        # seed 797005838 put two values of one max-pool window 2.4e-8 apart, which steps of 1e-8
        # still cross: with two retries the correct op failed). A wrong VJP disagrees at every step;
        # a smaller step counts only while its rounding is small next to the value (else it can't tell).
        for step in (eps, eps / 10, eps / 100, eps / 1000):
            numeric, noise = _directional_derivative(fn, arrays, index, u, v, step)
            if step != eps and noise > rtol * abs(numeric):
                continue
            if _agree(np.array(analytic), np.array(numeric), atol + noise, rtol):
                break
        else:
            gradient = analytic_grads[index]
            finite = np.isfinite(gradient)
            if not np.all(finite):
                first = np.unravel_index(int(np.argmin(finite)), arrays[index].shape)
                where = (f"analytic gradient element {tuple(map(int, first))} is "
                         f"{gradient[first]:.6g}")
            elif not math.isfinite(numeric):
                where = "the function gives non-finite values next to the input"
            else:
                where = (f"the same with steps {eps / 10:g}, {eps / 100:g} and {eps / 1000:g}; an input "
                         f"within about {5 * eps:g} of a kink or a tie can also cause this")
            raise GradcheckError(
                f"gradcheck failed for input {index} (shape {arrays[index].shape}): along a random "
                f"direction ⟨u, J v⟩ is {analytic:.6g} analytically but {numeric:.6g} numerically "
                f"({where})"
            )


def _directional_derivative(fn, arrays, index, u, v, step) -> tuple[float, float]:
    """(⟨u, (f(x + step·v) − f(x − step·v)) / 2·step⟩ for input ``index``, and the part of it that
    rounding alone can explain: each f value is off by about one ulp, and the 2·step division
    magnifies that; summed over the outputs with weights u, as a random walk (√ of Σ squares),
    three times over.)"""
    f_plus, f_minus = _values_around(fn, arrays, index, step * v)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite values are reported by the caller
        numeric = float(np.dot(u.reshape(-1), ((f_plus - f_minus) / (2 * step)).reshape(-1)))
        rounding = np.finfo(np.float64).eps * (np.abs(f_plus) + np.abs(f_minus)) / (2 * step)
        noise = 3 * float(np.sqrt(np.sum((u * rounding) ** 2)))
    return numeric, noise if math.isfinite(noise) else 0.0
