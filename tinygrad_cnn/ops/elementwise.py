"""Element-wise ops: numpy broadcasting forward, gradients summed back over broadcast axes."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tinygrad_cnn.function import Function, Gradients, unbroadcast

__all__ = [
    "Add", "Sub", "Mul", "Div", "Neg", "ReLU",
    "Exp", "Log", "Sqrt", "Pow", "Sin", "Cos", "Tanh", "Sigmoid", "Abs", "Clip", "Maximum", "Minimum", "Where",
    "Compare", "LeakyReLU", "ELU", "GELU", "Remainder", "FloorDivide",
]


class Add(Function):
    """y = a + b.   VJP: da = G, db = G (each summed back over broadcast axes)."""

    saves_inputs = False
    saves_output = False

    label = "Addition"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return unbroadcast(grad_out, self.a_shape), unbroadcast(grad_out, self.b_shape)


class Sub(Function):
    """y = a - b.   VJP: da = G, db = -G (summed back over broadcast axes)."""

    saves_inputs = False
    saves_output = False

    label = "Subtraction"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_b = unbroadcast(-grad_out, self.b_shape) if self.needs_input_grad[1] else None
        return unbroadcast(grad_out, self.a_shape), grad_b


class Mul(Function):
    """y = a * b.   VJP: da = G * b, db = G * a (summed back over broadcast axes)."""

    saves_output = False

    label = "Multiplication"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a * b

    def inputs_read_by_backward(self) -> list[int]:
        """da reads b, db reads a: ``a * 3`` keeps a's gradient when a changes afterwards (PyTorch too)."""
        a_needs_grad, b_needs_grad = self.needs_input_grad
        return ([1] if a_needs_grad else []) + ([0] if b_needs_grad else [])

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_a = unbroadcast(grad_out * self.b, self.a.shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad_out * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """y = a / b.   VJP: da = G / b, db = -G a / b² = -G (a/b) / b (summed back over broadcast axes)."""

    saves_output = False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a / b

    def inputs_read_by_backward(self) -> list[int]:
        """da reads b; db reads a and b: ``a / 255`` keeps a's gradient when a changes afterwards."""
        a_needs_grad, b_needs_grad = self.needs_input_grad
        return ([1] if a_needs_grad or b_needs_grad else []) + ([0] if b_needs_grad else [])

    def describe(self) -> str:
        """'Division by 255.0' when the divisor is one number (the seed's first layer)."""
        return f"Division by {self.b.item()!r}" if self.b.size == 1 else "Division"

    def backward(self, grad_out: np.ndarray) -> Gradients:
        # b = 0 gives inf/NaN, as PyTorch (the forward warned); a gradient beyond the float range
        # (1.5 / 1e-30 in float32: −1.5e60) is −inf, as PyTorch, with no warning of its own
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            grad_a = unbroadcast(grad_out / self.b, self.a.shape) if self.needs_input_grad[0] else None
            grad_b = None
            if self.needs_input_grad[1]:
                # −G·(a/b)/b, never b·b: in float32 b² overflows above |b| ≈ 1.8e19 and underflows
                # below 1e-19 where the gradient itself is finite (PyTorch's order too)
                grad_b = unbroadcast(-(grad_out * (self.a / self.b)) / self.b, self.b.shape)
        return grad_a, grad_b


class Neg(Function):
    """y = -x.   VJP: dx = -G."""

    saves_inputs = False
    saves_output = False

    label = "Negation"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (-grad_out,)


class ReLU(Function):
    """y = max(x, 0).   VJP: dx = 0 where y <= 0, else G  (0 at the kink x = 0; G at x = NaN,
    where y is NaN and NaN <= 0 is False: all as PyTorch). At x = −0, y is a zero whose sign
    numpy's maximum leaves open (PyTorch gives −0; README, "Decisions")."""

    saves_inputs = False

    label = "ReLU"

    def forward(self, x: np.ndarray) -> np.ndarray:
        output = np.maximum(x, 0)
        self.output = output
        return output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (np.where(self.output <= 0, 0, grad_out),)


class Exp(Function):
    """y = eˣ.   VJP: dx = G ⊙ y  (eˣ is its own derivative; the saved output is enough)."""

    saves_inputs = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.output = np.exp(x)
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out * self.output,)


class Log(Function):
    """y = ln x.   VJP: dx = G / x.   (x < 0 gives NaN and x = 0 gives −inf, with the gradient
    inf there, as in PyTorch; the forward's numpy warning is the only one.)"""

    saves_output = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.log(x)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        with np.errstate(divide="ignore", invalid="ignore"):  # G / 0 = ±inf (NaN for G = 0) at x = 0, as PyTorch
            return (grad_out / self.x,)


class Sqrt(Function):
    """y = √x.   VJP: dx = G / (2y).   (At x = 0 the gradient is inf, without a warning, as in PyTorch.)"""

    saves_inputs = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.output = np.sqrt(x)
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        with np.errstate(divide="ignore", invalid="ignore"):  # G / 0 = ±inf (NaN for G = 0) at x = 0, as PyTorch
            return (grad_out / (2 * self.output),)


def _power(base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """base ** exponent as np.power, except for one exponent ½ or −½ (what ``x ** 0.5`` passes):
    √base and 1/√base, as PyTorch computes those number exponents. C's pow, which np.power
    uses, differs at base = −0 (+0 and +inf, where √ gives −0 and −inf) and at base = −inf
    (+inf and +0, where √ gives NaN). (numpy 2.4's np.power takes √ for a single ½ itself,
    but not 1/√ for −½.)"""
    if exponent.ndim == 0 and base.dtype.kind == "f":
        if exponent == 0.5:
            return np.sqrt(base)
        if exponent == -0.5:
            return 1 / np.sqrt(base)
    return np.power(base, exponent)


class Pow(Function):
    """y = aᵇ (numpy broadcasting; ``x ** p`` and ``p ** x`` pass the number as a constant).

    VJP: da = G ⊙ b ⊙ aᵇ⁻¹,  db = G ⊙ y ⊙ ln a  (summed back over broadcast axes).
    As PyTorch: da = 0 where b = 0, even for an infinite or NaN G (x⁰ = 1 is constant, even at
    x = 0, where b·aᵇ⁻¹ = 0·∞); db = G ⊙ 0 where a = 0 and b ≥ 0 (0ᵇ is 0 or 1 there, where
    y·ln a = 0·(−∞)), which is NaN for an infinite or NaN G. A number exponent ½ or −½ is
    computed as √a and 1/√a, as PyTorch does, in y and in aᵇ⁻¹ (``_power``): the gradient of
    x ** 0.5 is −inf at x = −0 and NaN at x = −inf, as PyTorch's.
    """

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        self.output = _power(a, b)
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_a = grad_b = None
        zero = np.zeros((), grad_out.dtype)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf and NaN results are PyTorch's
            if self.needs_input_grad[0]:
                grad = grad_out * (self.b * _power(self.a, self.b - 1))
                grad_a = unbroadcast(np.where(self.b == 0, zero, grad), self.a.shape)
            if self.needs_input_grad[1]:
                slope = np.where((self.a == 0) & (self.b >= 0), zero, self.output * np.log(self.a))
                grad_b = unbroadcast(grad_out * slope, self.b.shape)
        return grad_a, grad_b


class Sin(Function):
    """y = sin x.   VJP: dx = G ⊙ cos x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.sin(x)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        with np.errstate(invalid="ignore"):  # (cos ±inf is NaN, as the forward's sin: no second warning)
            return (grad_out * np.cos(self.x),)


class Cos(Function):
    """y = cos x.   VJP: dx = −G ⊙ sin x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.cos(x)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        with np.errstate(invalid="ignore"):  # (sin ±inf is NaN, as the forward's cos: no second warning)
            return (-(grad_out * np.sin(self.x)),)


class Tanh(Function):
    """y = tanh x.   VJP: dx = G ⊙ (1 − y²)."""

    saves_inputs = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.output = np.tanh(x)
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out * (1 - self.output * self.output),)


class Sigmoid(Function):
    """y = 1 / (1 + e⁻ˣ).   VJP: dx = G ⊙ y ⊙ (1 − y).

    Computed from z = e^−|x| ≤ 1, which cannot overflow: y = 1/(1 + z) for x ≥ 0 and
    z/(1 + z) for x < 0. At x = ±1000 this gives exactly 1 and 0 (and a gradient of 0),
    where 1/(1 + e⁻ˣ) would overflow e⁻ˣ.
    """

    saves_inputs = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        z = np.exp(-np.abs(x))
        self.output = np.where(x >= 0, 1 / (1 + z), z / (1 + z))
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out * self.output * (1 - self.output),)


class Abs(Function):
    """y = |x|.   VJP: dx = G ⊙ sign(x), with sign(0) = 0 (gradient 0 at the kink) and
    sign(NaN) = 0 (numpy's is NaN), as PyTorch."""

    saves_output = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.abs(x)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        sign = np.zeros(self.x.shape, dtype=grad_out.dtype)
        np.sign(self.x, out=sign, where=self.x == self.x)  # x == x is False only at NaN: sign stays 0
        with np.errstate(invalid="ignore"):  # G = ±inf times sign 0 is NaN, as PyTorch
            return (grad_out * sign,)


class Clip(Function):
    """y = min(max(x, low), high) (broadcasting); a bound of None is absent; where low > high, y is high.

    A bound is a number (the option ``low`` or ``high``) or an array: an input after x, in the
    order ``bound_inputs`` names them (("low",), ("high",) or ("low", "high")).

    VJP, as torch.clamp's (summed back over broadcast axes):
        dx    = G where low ≤ x ≤ high (the bounds themselves included), else 0;
        dlow  = G where x < low and low < high (without high: where x < low), else 0;
        dhigh = G where x > high or high < low (without low: where x > high), else 0.
    Each place's G goes to at most one input: to high wherever low > high (y is high there), and
    to none where x < low = high, nor where x or a bound is NaN (y is NaN). A place whose mask is
    0 gets 0 even when G is inf or NaN (a mask multiply would give inf · 0 = NaN: clip(min=0).sqrt()).
    """

    saves_inputs = False  # (the masks are made by forward)
    saves_output = False

    def __init__(self, low: Optional[float] = None, high: Optional[float] = None,
                 bound_inputs: tuple[str, ...] = ()):
        self.low, self.high, self.bound_inputs = low, high, bound_inputs

    def forward(self, x: np.ndarray, *bound_arrays: np.ndarray) -> np.ndarray:
        given = dict(zip(self.bound_inputs, bound_arrays))
        # a number bound in x's dtype, for the masks as for the values
        low = given.get("low", None if self.low is None else np.asarray(self.low, dtype=x.dtype))
        high = given.get("high", None if self.high is None else np.asarray(self.high, dtype=x.dtype))
        # where each input gets G (made only for the inputs that need a gradient), and its shape
        rules = {"x": self.x_passes, "low": self.low_wins, "high": self.high_wins}
        self.masks = [rules[name](x, low, high) if needs_grad else None
                      for name, needs_grad in zip(("x",) + self.bound_inputs, self.needs_input_grad)]
        self.shapes = [x.shape] + [array.shape for array in bound_arrays]
        output = x if low is None else np.maximum(x, low)
        return output if high is None else np.minimum(output, high)

    @staticmethod
    def x_passes(x: np.ndarray, low: Optional[np.ndarray], high: Optional[np.ndarray]) -> np.ndarray:
        if low is None:
            return x <= high
        return x >= low if high is None else (x >= low) & (x <= high)

    @staticmethod
    def low_wins(x: np.ndarray, low: np.ndarray, high: Optional[np.ndarray]) -> np.ndarray:
        return x < low if high is None else (x < low) & (low < high)

    @staticmethod
    def high_wins(x: np.ndarray, low: Optional[np.ndarray], high: np.ndarray) -> np.ndarray:
        return x > high if low is None else (x > high) | (high < low)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        zero = np.zeros((), grad_out.dtype)
        return tuple(None if mask is None else unbroadcast(np.where(mask, grad_out, zero), shape)
                     for mask, shape in zip(self.masks, self.shapes))


def _share_between(grad_out: np.ndarray, a_loses: np.ndarray, b_loses: np.ndarray, tie: np.ndarray,
                   a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> Gradients:
    """Each side gets G unless it lost, G/2 on a tie. As PyTorch, where a or b is NaN neither
    lost nor tied (every comparison with NaN is False), so both sides get all of G."""
    shared = np.where(tie, grad_out * 0.5, grad_out)
    return (unbroadcast(np.where(a_loses, 0, shared), a_shape),
            unbroadcast(np.where(b_loses, 0, shared), b_shape))


class Maximum(Function):
    """y = max(a, b) element-wise (broadcasting).

    VJP: da = G ⊙ [a > b], db = G ⊙ [b > a]; where a = b each side gets G/2, as torch.maximum
    (the average of the two one-sided derivatives, so the gradient is symmetric in a and b).
    Where a or b is NaN (so is y) both get G, as torch.maximum: a side gets 0 only if smaller.
    """

    saves_output = False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return _share_between(grad_out, self.a < self.b, self.b < self.a, self.a == self.b,
                              self.a.shape, self.b.shape)


class Minimum(Function):
    """y = min(a, b) element-wise (broadcasting).

    VJP: da = G ⊙ [a < b], db = G ⊙ [b < a]; where a = b each side gets G/2, as torch.minimum;
    where a or b is NaN both get G (a side gets 0 only if larger).
    """

    saves_output = False

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return _share_between(grad_out, self.a > self.b, self.b > self.a, self.a == self.b,
                              self.a.shape, self.b.shape)


class Where(Function):
    """y = a where cond else b (cond a bool array; all three broadcast together).

    VJP: d cond = None (a mask has no gradient), da = G ⊙ cond, db = G ⊙ ¬cond
    (summed back over broadcast axes).
    """

    saves_output = False

    def forward(self, condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.condition, self.a_shape, self.b_shape = condition, a.shape, b.shape
        return np.where(condition, a, b)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_a = unbroadcast(np.where(self.condition, grad_out, 0), self.a_shape) if self.needs_input_grad[1] else None
        grad_b = unbroadcast(np.where(self.condition, 0, grad_out), self.b_shape) if self.needs_input_grad[2] else None
        return None, grad_a, grad_b


class Compare(Function):
    """y = a ∘ b element-wise as a bool mask (broadcasting), ∘ one of ``< <= > >= == !=``.

    VJP: none: y is piecewise constant in a and b (its derivative is 0 wherever it exists),
    so a comparison never requires grad (``Tensor._compare`` applies it without recording)
    and backward returns None for both inputs. It is an op, rather than plain numpy, so that
    tracers (``forward_hooks``: the ONNX exporter, the summary) see the mask being computed.
    """

    COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater,
                   ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal}

    def __init__(self, symbol: str = ">"):
        if symbol not in self.COMPARISONS:
            raise ValueError(f"Compare: symbol must be one of {list(self.COMPARISONS)}, got {symbol!r}")
        self.symbol = symbol

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.COMPARISONS[self.symbol](a, b)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return None, None

    def describe(self) -> str:
        return f"Compare {self.symbol}"


class LeakyReLU(Function):
    """y = x for x > 0, slope · x otherwise.   VJP: dx = G ⊙ (1 if x > 0 else slope).

    At the kink x = 0 the gradient is slope, as PyTorch.
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.positive = x > 0
        return np.where(self.positive, x, x * np.asarray(self.negative_slope, dtype=x.dtype))

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (np.where(self.positive, grad_out, grad_out * np.asarray(self.negative_slope, dtype=grad_out.dtype)),)


class ELU(Function):
    """y = α(eˣ − 1) for x ≤ 0, x otherwise.   VJP: dx = G ⊙ (y + α if x ≤ 0 else 1).

    For x ≤ 0, dy/dx = α eˣ = y + α, so the saved output is enough; at x = 0 the gradient is
    α and at x = NaN (not ≤ 0) it is 1, as PyTorch. eˣ is only evaluated on min(x, 0), so
    large x cannot overflow.
    """

    saves_inputs = False

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def forward(self, x: np.ndarray) -> np.ndarray:
        alpha = np.asarray(self.alpha, dtype=x.dtype)
        self.not_positive = x <= 0
        self.output = np.where(self.not_positive, alpha * np.expm1(np.minimum(x, 0)), x)
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        alpha = np.asarray(self.alpha, dtype=grad_out.dtype)
        with np.errstate(invalid="ignore"):  # (the unused branch may hold 0 · inf)
            return (np.where(self.not_positive, grad_out * (self.output + alpha), grad_out),)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = erfc(−x/√2) / 2, the standard normal CDF, element by element in float64 with
    ``math.erfc`` (numpy has no erf; a vectorized one accurate to the last bit would be a port of
    a libm's rational approximations): about 0.14 µs an element, 0.14 s for a million. erfc keeps
    the relative accuracy of the far negative tail (Φ(−10) = 7.6e-24), where (1 + erf(x/√2)) / 2
    cancels to 0. Converted in chunks, so the Python floats never hold more than 64K elements."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    cdf = np.empty(flat.size)
    for start in range(0, flat.size, 65536):
        chunk = flat[start : start + 65536] * -math.sqrt(0.5)
        cdf[start : start + 65536] = np.fromiter(map(math.erfc, chunk.tolist()), dtype=np.float64, count=chunk.size)
    return (0.5 * cdf).reshape(np.shape(x))


#: GELU's tanh approximation: u = √(2/π) · (x + 0.044715 x³)
GELU_TANH_SCALE, GELU_TANH_CUBIC = math.sqrt(2 / math.pi), 0.044715


class GELU(Function):
    """y = x · Φ(x), Φ the standard normal CDF (``approximate="none"``, PyTorch's default); or
    y = x · (1 + tanh u) / 2 = x · σ(2u), u = √(2/π)(x + 0.044715 x³) (``"tanh"``, GPT-2's).

    VJP: exact: dx = G ⊙ (Φ(x) + x φ(x)), φ(x) = e^(−x²/2) / √(2π) the normal density;
         tanh: dx = G ⊙ (s + 2x s(1 − s) · √(2/π)(1 + 3 · 0.044715 x²)), s = σ(2u).
    The exact form is computed in float64 (``normal_cdf``) and rounded to x's dtype; the tanh
    form in x's dtype, as σ(2u): (1 + tanh u)/2 cancels for u ≪ 0, σ does not. As PyTorch's
    float64 GELU: y(−inf) = NaN (−inf · 0), y(+inf) = +inf, the gradients at ±inf NaN (inf · 0);
    PyTorch's float32 exact GELU gives NaN at +inf too, ours +inf; where x³ overflows at a
    finite x, the tanh form's gradient is its limit (1 or 0), where PyTorch's is NaN.
    """

    saves_output = False

    def __init__(self, approximate: str = "none"):
        self.approximate = approximate

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        with np.errstate(over="ignore", invalid="ignore"):  # (x³ or e^(−2u) may overflow: σ is then 0 or 1; −inf · 0)
            if self.approximate == "tanh":
                self.sigmoid = 1 / (1 + np.exp(-2 * GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x * x * x)))
                return x * self.sigmoid
            x64 = x.astype(np.float64, copy=False)
            self.cdf = normal_cdf(x64)
            return (x64 * self.cdf).astype(x.dtype, copy=False)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        x = self.x
        with np.errstate(over="ignore", invalid="ignore"):
            if self.approximate == "tanh":
                s = self.sigmoid
                slope = 2 * x * s * (1 - s) * GELU_TANH_SCALE * (1 + 3 * GELU_TANH_CUBIC * x * x)
                overflowed = np.isnan(slope) & np.isfinite(x)  # s(1 − s) = 0 times an overflowed x³: the limit, 0
                if overflowed.any():
                    slope[overflowed] = 0
                return (grad_out * (s + slope).astype(grad_out.dtype, copy=False),)
            x64 = x.astype(np.float64, copy=False)
            density = np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
            return (grad_out * (self.cdf + x64 * density).astype(grad_out.dtype, copy=False),)


class Remainder(Function):
    """y = a mod b = a − b·⌊a/b⌋, with the sign of b (Python's ``%``, numpy's ``remainder``,
    PyTorch's ``remainder``); a float b = 0 gives NaN, as in PyTorch.

    VJP: da = G,  db = −G·⌊a/b⌋ (summed back over broadcast axes). ⌊a/b⌋ is piecewise constant:
    its derivative is 0 wherever it exists, and at a jump (a/b a whole number) this takes the
    value on the side the forward's ⌊a/b⌋ is on, as PyTorch does.
    """

    saves_inputs = False
    saves_output = False

    label = "Remainder"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a_shape, self.b_shape = a.shape, b.shape
        with np.errstate(divide="ignore", invalid="ignore"):  # float b = 0: NaN, as PyTorch
            if self.needs_input_grad[1]:
                self.quotient = np.floor_divide(a, b)  # (a fresh array: an in-place change of a or b is harmless)
            return np.remainder(a, b)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_a = unbroadcast(grad_out, self.a_shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad_out * self.quotient, self.b_shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class FloorDivide(Function):
    """y = ⌊a/b⌋ (Python's ``//``, numpy's ``floor_divide``, PyTorch's ``floor_divide``); a float
    b = 0 gives ±inf or NaN, as in PyTorch.

    VJP: none: y is piecewise constant in a and b, so, as a comparison, it is applied without
    recording (``Tensor.__floordiv__``) and never requires grad. (PyTorch records it and raises
    at backward, "derivative for floor_divide is not implemented"; here a graph through it
    treats it as the constant it is almost everywhere.)
    """

    label = "Floor division"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.floor_divide(a, b)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return None, None
