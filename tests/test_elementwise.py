"""Element-wise math, comparisons and in-place updates: every VJP against float64 finite
differences on hypothesis-drawn cases (away from kinks), forward against numpy, and one
test per kink or tie rule."""

import math
import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ops import away_from_zero, random_array, seeds, small_shapes

from tinygrad_cnn import Tensor, enable_grad, gradcheck, no_grad

broadcastable_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4)


def sigmoid_reference(x):
    return 1 / (1 + np.exp(-x))


def elu_reference(x, alpha):
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


def gelu_reference(x):
    """x · Φ(x), Φ(x) = erfc(−x/√2)/2 with math.erfc, one element at a time (the definition, slowly)."""
    return np.vectorize(lambda value: value * math.erfc(-value / math.sqrt(2)) / 2)(x)


def gelu_tanh_reference(x):
    return x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))) / 2


# name: (Tensor call, numpy reference, input values: away from kinks and poles)
unary_ops = {
    "exp": (lambda t: t.exp(), np.exp, lambda x: x),
    "log": (lambda t: t.log(), np.log, lambda x: np.abs(x) + 0.1),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, lambda x: np.abs(x) + 0.1),
    "tanh": (lambda t: t.tanh(), np.tanh, lambda x: x),
    "sin": (lambda t: t.sin(), np.sin, lambda x: x * 4),
    "cos": (lambda t: t.cos(), np.cos, lambda x: x * 4),
    "sigmoid": (lambda t: t.sigmoid(), sigmoid_reference, lambda x: x * 3),
    "abs": (lambda t: t.abs(), np.abs, away_from_zero),
    "abs()": (lambda t: abs(t), np.abs, away_from_zero),
    "leaky_relu": (lambda t: t.leaky_relu(), lambda x: np.where(x > 0, x, 0.01 * x), away_from_zero),
    "elu": (lambda t: t.elu(), lambda x: elu_reference(x, 1.0), away_from_zero),
    "gelu": (lambda t: t.gelu(), gelu_reference, lambda x: x * 3),
    "gelu tanh": (lambda t: t.gelu(approximate="tanh"), gelu_tanh_reference, lambda x: x * 3),
}


@pytest.mark.parametrize("name", sorted(unary_ops))
@given(shape=small_shapes, seed=seeds)
def test_unary_op_vjp_and_forward(name, shape, seed):
    call, reference, prepare = unary_ops[name]
    x = prepare(random_array(seed, shape))
    assert gradcheck(call, [x])
    np.testing.assert_allclose(call(Tensor(x)).data, reference(x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_and_cos_of_infinity_warn_once_in_forward_as_numpy_and_not_again_in_backward(name):
    x = Tensor(np.array([np.inf, 0.5]), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="invalid value"):
        output = getattr(x, name)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output.backward(np.ones(2))
    assert np.isnan(x.grad[0]) and np.isfinite(x.grad[1])


@given(shape=small_shapes, seed=seeds, slope=st.floats(-2.0, 2.0), alpha=st.floats(0.1, 3.0))
def test_leaky_relu_and_elu_vjp_with_drawn_parameters(shape, seed, slope, alpha):
    x = away_from_zero(random_array(seed, shape))
    assert gradcheck(lambda t: t.leaky_relu(slope), [x])
    assert gradcheck(lambda t: t.elu(alpha=alpha), [x])
    np.testing.assert_allclose(Tensor(x).leaky_relu(slope).data, np.where(x > 0, x, slope * x))
    np.testing.assert_allclose(Tensor(x).elu(alpha).data, elu_reference(x, alpha), rtol=1e-12)


@pytest.mark.parametrize("call, expected_grad", [
    (lambda t: t.abs(), [-1.0, 0.0, 1.0]),            # sign(0) = 0, as PyTorch
    (lambda t: t.leaky_relu(0.2), [0.2, 0.2, 1.0]),   # the negative slope at 0
    (lambda t: t.elu(alpha=0.5), [0.5 * np.exp(-1.0), 0.5, 1.0]),  # alpha at 0
    (lambda t: t ** 2, [-2.0, 0.0, 2.0]),
    (lambda t: t ** 0, [0.0, 0.0, 0.0]),              # x⁰ = 1 is constant, even at 0 (not 0·∞)
])
def test_gradient_at_the_kink_x_equals_zero(call, expected_grad):
    x = Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    call(x).sum().backward()
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-12)



# -- NaN and inf inputs: gradients by PyTorch's rules ------------------------------------------


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("call, expected_grad", [
    (lambda t: t.relu(), [1.0, 1.0, 0.0, 0.0]),           # G passes unless y <= 0; NaN <= 0 is False
    (lambda t: t.abs(), [0.0, 1.0, -1.0, -1.0]),          # sign(NaN) = 0
    (lambda t: t.elu(alpha=0.5), [1.0, 1.0, 0.0, 0.5 * np.exp(-1.0)]),  # the x <= 0 branch only for x <= 0
    (lambda t: t.leaky_relu(0.2), [0.2, 1.0, 0.2, 0.2]),  # the slope unless x > 0; NaN > 0 is False
    (lambda t: t.clip(-1.0, 1.0), [0.0, 0.0, 0.0, 1.0]),  # G only inside the bounds; NaN is not
])
def test_gradient_at_nan_and_inf_inputs_as_pytorch(call, expected_grad):
    x = Tensor(np.array([np.nan, np.inf, -np.inf, -1.0]), requires_grad=True)
    call(x).sum().backward()
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-12)


def assert_identical(actual, expected):
    """Equal values, NaN where NaN is expected, and the sign of every zero and infinity."""
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=actual.dtype)
    np.testing.assert_array_equal(actual, expected)
    numbers = ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(actual[numbers]), np.signbit(expected[numbers]))


inf, nan = np.inf, np.nan
POWER_INPUTS = [0.0, -0.0, inf, -inf, nan, -1e-300, -0.5, -2.0]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # (backward adds no warning of its own)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("exponent, expected_output, expected_grad", [
    # x =     0.0   −0.0   inf   −inf   NaN  −1e-300  −0.5  −2.0        (PyTorch's values, signs included)
    (0.5, [0.0, -0.0, inf, nan, nan, nan, nan, nan], [inf, -inf, 0.0, nan, nan, nan, nan, nan]),  # as √x
    (-0.5, [inf, -inf, 0.0, nan, nan, nan, nan, nan], [-inf, -inf, -0.0, -0.0, nan, nan, nan, nan]),  # as 1/√x
    (1.5, [0.0, 0.0, inf, inf, nan, nan, nan, nan], [0.0, -0.0, inf, nan, nan, nan, nan, nan]),  # 1.5·√x
    (2, [0.0, 0.0, inf, inf, nan, 0.0, 0.25, 4.0], [0.0, -0.0, inf, -inf, nan, -2e-300, -1.0, -4.0]),
    (-1, [inf, -inf, 0.0, -0.0, nan, 1 / -1e-300, -2.0, -0.5], [-inf, -inf, -0.0, -0.0, nan, -inf, -4.0, -0.25]),
    (0, [1.0] * 8, [0.0] * 8),
])
def test_power_at_signed_zeros_infinities_and_nan_as_pytorch(dtype, exponent, expected_output, expected_grad):
    """x ** 0.5 and x ** -0.5 are √x and 1/√x, as PyTorch computes them (C's pow, which numpy
    uses for −½, gives +inf, not −inf, at x = −0, and 0, not NaN, at x = −inf), in the forward and
    in the gradient's x^(b−1): the gradient of x ** 0.5 at −0 was +inf and at −inf 0 (torch:
    −inf and NaN). In float32, −1e-300 is −0 and 1e300 is inf."""
    x = Tensor(np.array(POWER_INPUTS, dtype=dtype), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # the forward's own
        output = x ** exponent
        expected_output = np.array(expected_output).astype(dtype)
    output.backward(np.ones(output.shape, dtype))  # (a sum of inf and −inf would warn)
    with np.errstate(over="ignore"):
        expected_grad = np.array(expected_grad).astype(dtype)
    if dtype == np.float32:  # (−1e-300 is −0.0 there: the −0 column)
        expected_output[5], expected_grad[5] = expected_output[1], expected_grad[1]
    assert_identical(output.data, expected_output)
    assert_identical(x.grad, expected_grad)


def test_relu_of_negative_zero_is_a_zero_with_pytorch_s_gradient():
    """PyTorch's relu(−0.0) is −0.0; ours is a zero of either sign (README, Decisions: numpy's
    maximum does not say which, and an exact −0.0 costs a slower pass on the seed path). The
    values compare equal, and the gradient at ±0 is 0, even for an infinite G, as PyTorch's."""
    x = Tensor(np.array([-0.0, 0.0, -1.0, 2.0]), requires_grad=True)
    output = x.relu()
    np.testing.assert_array_equal(output.data, [0.0, 0.0, 0.0, 2.0])
    output.backward(np.array([inf, -inf, 1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0, 1.0])


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_sqrt_and_power_one_half_agree_everywhere_and_x_to_the_0_gets_0_even_for_an_infinite_g():
    values = np.array(POWER_INPUTS + [4.0, 1e-300])
    roots, powers = Tensor(values, requires_grad=True), Tensor(values, requires_grad=True)
    with np.errstate(invalid="ignore"):
        root, power = roots.sqrt(), powers ** 0.5
    grad_out = np.linspace(-1.0, 2.0, len(values))
    root.backward(grad_out)
    power.backward(grad_out)
    assert_identical(power.data, root.data)
    assert_identical(powers.grad, roots.grad)
    x = Tensor(np.array([0.0, -0.0, 2.0]), requires_grad=True)
    (x ** 0).backward(np.array([inf, nan, -inf]))  # PyTorch: 0 (it was G · 0 = NaN)
    assert_identical(x.grad, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("name", ["log", "sqrt"])
def test_log_and_sqrt_gradients_at_zero_are_inf_and_backward_does_not_warn(name):
    x = Tensor(np.array([0.0, -1.0, np.nan, np.inf]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # the forward's own log(0), sqrt(-1)
        output = getattr(x, name)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output.sum().backward()
    expected = [np.inf, -1.0, np.nan, 0.0] if name == "log" else [np.inf, np.nan, np.nan, 0.0]
    np.testing.assert_array_equal(x.grad, expected)



def test_backward_with_a_zero_or_infinite_gradient_at_the_edge_does_not_warn():
    """p·log(p) at p = 0 (entropy), elu at inf times 0, abs with an infinite G: the gradients
    are PyTorch's (NaN or 0) and backward adds no numpy warning ("invalid value")."""
    p = Tensor(np.array([0.0, 0.5]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # the forward's own log(0) and 0 · -inf
        entropy = p * p.log()
    x = Tensor(np.array([np.inf, -1.0]), requires_grad=True)
    with np.errstate(invalid="ignore"):  # the forward's own inf · 0
        dead_elu = x.elu() * 0.0
    y = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entropy.sum().backward()
        dead_elu.sum().backward()
        y.abs().backward(np.array([np.inf, 1.0]))
    np.testing.assert_array_equal(p.grad, [np.nan, np.log(0.5) + 1])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    np.testing.assert_array_equal(y.grad, [np.nan, 1.0])


def test_clip_gives_a_clipped_place_zero_gradient_even_when_g_is_infinite():
    """clip(min=0).sqrt() on values a hair below 0 (a squared distance after round-off): sqrt's
    G there is inf, and the clipped place must get 0, as torch.clamp gives (G times the
    inside-mask gave inf · 0 = NaN, and one NaN spoils every parameter's update)."""
    x = Tensor(np.array([-1e-7, 0.25, 4.0, 9.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.clip(min=0.0, max=4.0).sqrt().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.25, 0.0])
    y = Tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    y.clip(0.0, 1.0).backward(np.array([np.nan, np.inf, -np.inf]))
    np.testing.assert_array_equal(y.grad, [0.0, np.inf, 0.0])


def test_division_by_zero_backward_gives_inf_and_does_not_warn():
    a = Tensor(np.array([1.0, np.nan]), requires_grad=True)
    b = Tensor(np.array([0.0, 0.0]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # the forward's own 1/0
        output = a / b
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output.sum().backward()
    np.testing.assert_array_equal(a.grad, [np.inf, np.inf])
    np.testing.assert_array_equal(b.grad, [-np.inf, np.nan])


def test_division_gradient_beyond_the_float_range_is_inf_without_a_warning():
    # -G·(a/b)/b = -1.5e60 does not fit a float32: -inf, as PyTorch, and the forward (1.5e30)
    # was finite, so a warning here would be the backward's own
    divisor = Tensor(np.array([1e-30, 1e-30], np.float32), requires_grad=True)
    quotient = Tensor(np.array([1.5, -2.0], np.float32)) / divisor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quotient.backward(np.array([1.0, 1.0], np.float32))
    np.testing.assert_array_equal(divisor.grad, np.array([-np.inf, np.inf], np.float32))


def test_division_gradient_of_a_huge_or_tiny_float32_divisor_is_finite():
    # -G·a/b² with b² formed first overflows above |b| ≈ 1.8e19 and underflows below 1e-19 in
    # float32, where the gradient itself is a float32 number; PyTorch forms -G·(a/b)/b
    a = np.array([1e20, 1e-30, 1.0], np.float32)
    b = np.array([1e20, 1e-30, 3e19], np.float32)
    divisor = Tensor(b, requires_grad=True)
    (Tensor(a) / divisor).sum().backward()
    exact = (-(a.astype(np.float64) / b) / b).astype(np.float32)  # -1e-20, -1e30, -1.1e-39
    np.testing.assert_allclose(divisor.grad, exact, rtol=1e-6)
    values = Tensor(np.full(4, 1e19, np.float32), requires_grad=True)
    (values / values.sum()).sum().backward()  # scale-invariant: the gradient is 0
    np.testing.assert_array_equal(values.grad, np.zeros(4, np.float32))

# -- powers ----------------------------------------------------------------------------------


@given(shape=small_shapes, seed=seeds, exponent=st.floats(-3.0, 3.0) | st.integers(-3, 4))
def test_power_by_a_number_vjp(shape, seed, exponent):
    x = np.abs(random_array(seed, shape)) + 0.2  # a positive base: any real exponent is defined
    assert gradcheck(lambda t: t ** exponent, [x])
    np.testing.assert_allclose((Tensor(x) ** exponent).data, x ** exponent, rtol=1e-12)
    signed = away_from_zero(random_array(seed, shape), 0.2)
    integer_exponent = int(round(exponent))
    assert gradcheck(lambda t: t.pow(integer_exponent), [signed])


@given(shape=small_shapes, seed=seeds, base=st.floats(0.2, 4.0))
def test_number_to_a_tensor_power_vjp(shape, seed, base):
    x = random_array(seed, shape)
    assert gradcheck(lambda t: base ** t, [x])
    np.testing.assert_allclose((base ** Tensor(x)).data, base ** x, rtol=1e-12)


@given(shapes=broadcastable_pairs, seed=seeds)
def test_tensor_to_a_tensor_power_vjp_with_broadcasting(shapes, seed):
    a_shape, b_shape = shapes.input_shapes
    a, b = np.abs(random_array(seed, a_shape)) + 0.2, random_array(seed + 1, b_shape)
    assert gradcheck(lambda x, y: x ** y, [a, b])
    np.testing.assert_allclose((Tensor(a) ** Tensor(b)).data, a ** b, rtol=1e-12)


def test_power_with_a_zero_base_has_gradient_zero_for_non_negative_exponents():
    exponent = Tensor(np.array([0.0, 1.0, 2.5]), requires_grad=True)
    output = 0.0 ** exponent
    output.sum().backward()
    np.testing.assert_array_equal(output.data, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(exponent.grad, [0.0, 0.0, 0.0])  # not 0·(−∞) = NaN


def test_integer_powers():
    np.testing.assert_array_equal((Tensor([1, 2, 3]) ** 2).data, [1, 4, 9])
    assert (Tensor([1, 2, 3]) ** 2).dtype == np.int64
    assert (Tensor([1, 4]) ** 0.5).dtype == np.float32  # an int mixed with a float takes the float's dtype
    with pytest.raises(ValueError, match="integers to negative integer powers"):
        Tensor([1, 2]) ** -1


# -- sigmoid far out -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_exact_and_warning_free_at_plus_minus_1000(dtype):
    x = Tensor(np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype), requires_grad=True)
    # warnings as errors, and numpy's overflow / invalid / divide too (underflow to 0 is fine)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        output = x.sigmoid()
        output.sum().backward()
    assert output.dtype == dtype and x.grad.dtype == dtype
    assert output.data[0] == 0.0 and output.data[-1] == 1.0 and output.data[2] == 0.5
    assert x.grad[0] == 0.0 and x.grad[-1] == 0.0 and x.grad[2] == 0.25
    assert np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elu_and_exp_of_min_do_not_overflow_for_large_inputs(dtype):
    x = Tensor(np.array([-1000.0, 1000.0], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        output = x.elu()
        output.sum().backward()
    np.testing.assert_array_equal(output.data, [-1.0, 1000.0])
    np.testing.assert_array_equal(x.grad, [0.0, 1.0])


# -- clip ------------------------------------------------------------------------------------


@given(shape=small_shapes, seed=seeds, bounds=st.tuples(st.none() | st.floats(-1.5, 0.0),
                                                       st.none() | st.floats(0.0, 1.5)))
def test_clip_vjp_and_forward(shape, seed, bounds):
    low, high = bounds
    if low is None and high is None:
        low = -0.5
    x = random_array(seed, shape)
    for bound in (low, high):  # keep every value 0.05 away from a bound: no kink straddled
        if bound is not None:
            x = np.where(np.abs(x - bound) < 0.05, bound + 0.1, x)
    assert gradcheck(lambda t: t.clip(low, high), [x])
    expected = np.clip(x, -np.inf if low is None else low, np.inf if high is None else high)
    np.testing.assert_array_equal(Tensor(x).clip(min=low, max=high).data, expected)


def test_clip_passes_the_gradient_on_the_bounds_inclusive():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    output = x.clip(-1.0, 1.0)
    output.sum().backward()
    np.testing.assert_array_equal(output.data, [-1.0, -1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_clip_with_min_above_max_gives_max_everywhere_and_no_gradient():
    x = Tensor(np.array([-3.0, 0.5, 1.0, 3.0]), requires_grad=True)
    output = x.clip(min=2.0, max=1.0)  # as torch.clamp: min(max(x, 2), 1) = 1
    output.sum().backward()
    np.testing.assert_array_equal(output.data, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0, 0.0])


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), seed=seeds,
       bounds=st.sampled_from([("min", "max"), ("min",), ("max",)]))
def test_clip_to_tensor_bounds_vjp_with_broadcasting(shapes, seed, bounds):
    """Tensor bounds broadcast with x (either may be the larger) and get their gradient. x lies
    on the grid 0.1·k + 0.05, min on 0.1·k and max on 0.1·k + 0.02: no two are within 0.02, so
    no kink is straddled, while min > max happens often."""
    x_shape, low_shape, high_shape = shapes.input_shapes
    x = np.round(random_array(seed, x_shape) * 10) / 10 + 0.05
    low = np.round(random_array(seed + 1, low_shape) * 10) / 10
    high = np.round(random_array(seed + 2, high_shape) * 10) / 10 + 0.02
    given_bounds = {"min": low, "max": high}
    arrays = [x] + [given_bounds[name] for name in bounds]

    def clip(tensor, *bound_tensors):
        return tensor.clip(**dict(zip(bounds, bound_tensors)))

    assert gradcheck(clip, arrays)
    expected = np.maximum(x, low) if "min" in bounds else x
    expected = np.minimum(expected, high) if "max" in bounds else expected
    output = clip(*[Tensor(array) for array in arrays])
    assert output.shape == np.broadcast_shapes(*[array.shape for array in arrays])
    np.testing.assert_array_equal(output.data, expected)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_clip_to_tensor_bounds_gives_each_place_s_gradient_to_one_input_as_torch_clamp():
    """Who gets G, place by place (torch.clamp's rule, written out in ops.Clip): x inside the
    bounds, the bounds included; min where x is below it and min < max; max where x is above it
    or where max < min; nobody where x < min = max, nor at NaN. A place that is not its
    input's gets 0 even for an infinite or NaN G."""
    nan = np.nan
    #                 x passes ...    min: x < min    max: x > max   min > max ........   min = max    NaN ...........
    x = np.array([0.0, 0.5, 1.0, -1.0, 2.0, 0.5, 1.0, 0.0, 1.0, 0.0, 2.0, nan, 0.5, 0.5])
    low = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, nan, 0.0])
    high = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, nan])
    grad_out = np.array([1.0, np.inf, 1.0, -np.inf, nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    tensors = [Tensor(array, requires_grad=True) for array in (x, low, high)]
    output = tensors[0].clip(min=tensors[1], max=tensors[2])
    output.backward(grad_out)
    np.testing.assert_array_equal(output.data, [0.0, 0.5, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, nan, nan, nan])
    np.testing.assert_array_equal(tensors[0].grad, [1.0, np.inf, 1.0, 0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(tensors[1].grad, [0, 0, 0, -np.inf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(tensors[2].grad, [0, 0, 0, 0, nan, 1.0, 1.0, 1.0, 0, 0, 1.0, 0, 0, 0])


def test_clip_to_one_tensor_bound_and_a_number():
    """With one bound only, the bound gets G wherever x is beyond it (min: x < min; max:
    x > max); a number beside a Tensor bound is a constant bound (PyTorch refuses the mix)."""
    x = Tensor(np.array([-1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    low = Tensor(np.array([0.0]), requires_grad=True)
    x.clip(min=low).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(low.grad, [1.0])
    x.grad, high = None, Tensor(np.array([1.0]), requires_grad=True)
    output = x.clip(min=-0.5, max=high)
    output.sum().backward()
    np.testing.assert_array_equal(output.data, [-0.5, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(high.grad, [1.0])


def test_clip_to_array_bounds_promotes_dtypes_as_torch_clamp():
    """An array bound is a constant; an int tensor clipped to a float bound becomes float32; a
    float64 array bound makes a float32 tensor float64, unless it is 0-d (then it acts as a number)."""
    assert Tensor([1, 2, 3]).clip(min=np.array([1.5, 1.5, 1.5], np.float32)).data.tolist() == [1.5, 2.0, 3.0]
    assert Tensor([1, 2, 3]).clip(max=Tensor(1.5)).dtype == np.float32
    x = Tensor(np.array([1.0, 2.0, 3.0], np.float32))
    assert x.clip(min=np.array([1.5, 1.5, 1.5])).dtype == np.float64
    assert x.clip(min=np.array(1.5)).dtype == np.float32
    assert x.clip(min=np.array(1.5), max=Tensor(2)).data.tolist() == [1.5, 2.0, 2.0]


def test_clip_of_an_integer_tensor():
    assert Tensor([-2, 0, 5]).clip(0, 3).dtype == np.int64
    clipped = Tensor([-2, 0, 5]).clip(max=0.5)
    assert clipped.dtype == np.float32
    np.testing.assert_array_equal(clipped.data, [-2.0, 0.0, 0.5])



def test_clip_to_an_array_and_an_int_beyond_the_dtype_gives_the_true_answer():
    """An int beside an array bound is taken in the dtype the op computes in, and one beyond
    its range clips as that end of it does, as number bounds alone do (it raised)."""
    values = Tensor(np.array([1, 2], np.uint8))
    assert values.clip(-5, np.array([1, 1], np.uint8)).data.tolist() == [1, 1]  # -5 limits nothing
    assert values.clip(300, np.array([1, 1], np.uint8)).data.tolist() == [1, 1]  # max < min: max
    wider = values.clip(300, np.array([1, 1000]))  # uint8 with int64: 300 fits, and wins below 1000
    assert wider.dtype == np.int64 and wider.data.tolist() == [1, 300]
    assert values.clip(-5, 1).data.tolist() == values.clip(-5, np.array([1, 1], np.uint8)).data.tolist()


def test_clip_takes_lists_as_array_bounds():
    assert Tensor([1.0, 2.0]).clip([0.0, 0.0], [1.0, 1.0]).data.tolist() == [1.0, 1.0]
    assert Tensor([1.0, 2.0, 3.0]).clip(min=(2, 0, 5)).data.tolist() == [2.0, 2.0, 5.0]

# -- maximum, minimum, where -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@given(shapes=broadcastable_pairs, seed=seeds)
def test_maximum_minimum_vjp_with_broadcasting(name, shapes, seed):
    a_shape, b_shape = shapes.input_shapes
    # a on the grid 0.1·k + 0.05, b on 0.1·k: every pair differs by at least 0.05, so no ties
    a = np.round(random_array(seed, a_shape) * 10) / 10 + 0.05
    b = np.round(random_array(seed + 1, b_shape) * 10) / 10
    assert gradcheck(lambda x, y: getattr(x, name)(y), [a, b])
    output = getattr(Tensor(a), name)(Tensor(b))
    assert output.shape == shapes.result_shape
    np.testing.assert_array_equal(output.data, getattr(np, name)(a, b))


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_ties_give_each_side_half(name):
    a = Tensor(np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 0.0]]), requires_grad=True)
    b = Tensor(np.array([2.0]), requires_grad=True)  # broadcast against every element of a
    getattr(a, name)(b).backward(np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]]))
    if name == "maximum":  # a wins where a > 2, b where a < 2, half each where a == 2
        np.testing.assert_array_equal(a.grad, [[0.0, 1.0, 4.0], [4.0, 8.0, 0.0]])
        np.testing.assert_array_equal(b.grad, [1.0 + 1.0 + 4.0 + 8.0 + 32.0])
    else:
        np.testing.assert_array_equal(a.grad, [[1.0, 1.0, 0.0], [4.0, 8.0, 32.0]])
        np.testing.assert_array_equal(b.grad, [1.0 + 4.0 + 4.0 + 8.0])


def test_maximum_with_a_number_is_a_relu_with_a_half_gradient_at_zero():
    x = Tensor(np.array([-1.0, 0.0, 3.0]), requires_grad=True)
    x.maximum(0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 1.0])



@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum_at_nan_give_both_sides_the_gradient(name):
    """As PyTorch: a side gets no gradient only where it is strictly beaten, half on a tie;
    where a or b is NaN neither is beaten nor tied, so both get all of G."""
    a = Tensor(np.array([np.nan, 1.0, np.nan, np.inf, 1.0]), requires_grad=True)
    b = Tensor(np.array([0.0, np.nan, np.nan, np.inf, 3.0]), requires_grad=True)
    getattr(a, name)(b).backward(np.array([1.0, 2.0, 4.0, 8.0, 16.0]))
    if name == "maximum":  # 1 < 3: a loses the last place
        np.testing.assert_array_equal(a.grad, [1.0, 2.0, 4.0, 4.0, 0.0])
        np.testing.assert_array_equal(b.grad, [1.0, 2.0, 4.0, 4.0, 16.0])
    else:
        np.testing.assert_array_equal(a.grad, [1.0, 2.0, 4.0, 4.0, 16.0])
        np.testing.assert_array_equal(b.grad, [1.0, 2.0, 4.0, 4.0, 0.0])
    c = Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    getattr(c, name)(np.nan).sum().backward()  # a NaN number: c is never beaten
    np.testing.assert_array_equal(c.grad, [1.0, 1.0])


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), seed=seeds)
def test_where_vjp_with_broadcasting(shapes, seed):
    condition_shape, a_shape, b_shape = shapes.input_shapes
    condition = np.random.default_rng(seed).integers(0, 2, size=condition_shape).astype(bool)
    a, b = random_array(seed, a_shape), random_array(seed + 1, b_shape)
    assert gradcheck(lambda x, y: Tensor.where(Tensor(condition), x, y), [a, b])
    output = Tensor(condition).where(Tensor(a), Tensor(b))
    np.testing.assert_array_equal(output.data, np.where(condition, a, b))


def test_where_takes_numbers_and_gives_the_mask_no_gradient():
    x = Tensor(np.array([-2.0, 0.5, 3.0]), requires_grad=True)
    mask = x > 0
    output = mask.where(x, 0.0)
    assert output.dtype == np.float64
    output.sum().backward()
    np.testing.assert_array_equal(output.data, [0.0, 0.5, 3.0])
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0])
    assert mask.grad is None
    np.testing.assert_array_equal(Tensor.where(np.array([True, False]), 1.0, 2.0).data, [1.0, 2.0])
    assert Tensor.where(np.array([True, False]), 1.0, 2.0).dtype == np.float32
    assert Tensor([True, False]).where(Tensor([1, 2]), 0.5).dtype == np.float32


# -- comparisons -----------------------------------------------------------------------------

comparisons = {
    "<": (lambda a, b: a < b, np.less),
    "<=": (lambda a, b: a <= b, np.less_equal),
    ">": (lambda a, b: a > b, np.greater),
    ">=": (lambda a, b: a >= b, np.greater_equal),
    "==": (lambda a, b: a == b, np.equal),
    "!=": (lambda a, b: a != b, np.not_equal),
}


@pytest.mark.parametrize("symbol", sorted(comparisons))
@given(shapes=broadcastable_pairs, seed=seeds)
def test_comparisons_are_bool_masks_outside_the_graph(symbol, shapes, seed):
    compare, reference = comparisons[symbol]
    rng = np.random.default_rng(seed)
    a_values = rng.integers(0, 3, size=shapes.input_shapes[0]).astype(np.float64)  # many ties
    b_values = rng.integers(0, 3, size=shapes.input_shapes[1]).astype(np.float64)
    a = Tensor(a_values, requires_grad=True)
    for b in (Tensor(b_values, requires_grad=True), b_values, 1.0, 1):
        mask = compare(a, b)
        assert mask.dtype == np.bool_ and not mask.requires_grad and mask.is_leaf
        np.testing.assert_array_equal(mask.data, reference(a_values, np.asarray(b)))
    np.testing.assert_array_equal(compare(1.0, a).data, reference(1.0, a_values))  # reflected


def test_tensors_stay_hashable_by_identity():
    a, b = Tensor([1.0, 2.0]), Tensor([1.0, 2.0])
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, b, a}) == 2
    assert hash(a) == object.__hash__(a)
    assert (a == None) is False and (a != None) is True  # noqa: E711 (identity fallback, as PyTorch)
    with pytest.raises(TypeError):
        a < None  # noqa: B015


# -- in-place updates ------------------------------------------------------------------------


def test_in_place_under_no_grad_keeps_the_object_its_data_and_its_flags():
    p = Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    data = p.data
    (p * p).sum().backward()
    with no_grad():
        p -= 0.25 * p.grad  # a float32 array
        p += np.array(1.0)  # float64 on the right: p keeps float32
        p *= 2
        p /= Tensor(4.0)
    assert p.data is data and p.is_leaf and p.requires_grad and p.dtype == np.float32
    np.testing.assert_allclose(p.data, ((np.array([1.0, 2.0, 3.0]) * 0.5 + 1) * 2) / 4)
    (p * 3.0).sum().backward()  # p is still a trainable leaf
    np.testing.assert_allclose(p.grad, [2.0 + 3.0, 4.0 + 3.0, 6.0 + 3.0])


def test_in_place_sgd_loop_trains_a_linear_regression():
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((64, 3)).astype(np.float32)
    targets = inputs @ np.array([[2.0], [-1.0], [0.5]], dtype=np.float32) + 0.3
    weight = Tensor(np.zeros((3, 1), dtype=np.float32), requires_grad=True)
    bias = Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
    losses = []
    for _ in range(50):
        loss = ((Tensor(inputs) @ weight + bias - targets) ** 2).mean()
        loss.backward()
        with no_grad():
            weight -= 0.1 * weight.grad
            bias -= 0.1 * bias.grad
        weight.grad = bias.grad = None
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]
    assert weight.is_leaf and weight.requires_grad and weight.dtype == np.float32


def test_in_place_outside_no_grad_on_a_leaf_that_requires_grad_raises():
    p = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf tensor that requires grad is being used in an in-place operation"):
        p -= 1.0
    np.testing.assert_array_equal(p.data, [1.0, 2.0])  # unchanged


def test_in_place_outside_no_grad_on_a_computed_tensor_or_with_a_grad_right_side_raises():
    p = Tensor([1.0, 2.0], requires_grad=True)
    y = p * 2.0
    with pytest.raises(RuntimeError, match=r"in-place \*= on a tensor computed by Mul"):
        y *= 3.0
    constant = Tensor([1.0, 1.0])
    with pytest.raises(RuntimeError, match="right-hand side that requires grad"):
        constant += p


def test_in_place_on_a_constant_outside_no_grad_is_allowed_as_in_pytorch():
    counts = Tensor([0, 0, 0])
    counts += 1
    counts += Tensor([1, 0, 2])
    np.testing.assert_array_equal(counts.data, [2, 1, 3])
    assert counts.dtype == np.int64 and counts.version == 2


@pytest.mark.parametrize("make_view", [lambda t: t[:2], lambda t: t.reshape(2, 2), lambda t: t.reshape(2, 2).T],
                         ids=["slice", "reshape", "transpose"])
def test_a_view_made_under_no_grad_of_a_tensor_that_requires_grad_is_not_changed_outside_as_pytorch(make_view):
    """PyTorch refuses this as ambiguous (should the change be recorded?); it used to change
    the weight silently, behind the graph's back."""
    weight = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    with no_grad():
        view = make_view(weight)
    for change in (lambda v: v.__iadd__(1.0), lambda v: v.__imul__(Tensor(np.ones(v.shape, np.float32), requires_grad=True))):
        with pytest.raises(RuntimeError, match=r"outside no_grad\(\) on a view that was made under no_grad\(\) of a tensor "
                                               r"that requires grad.*both inside one `with no_grad\(\):` block"):
            change(view)
    later = view[:1]  # a view of that view, made outside the block: refused too, as in PyTorch
    with pytest.raises(RuntimeError, match="made under no_grad"):
        later -= 1.0
    computed = weight * 2.0  # the base need not be a leaf
    with no_grad():
        computed_view = make_view(computed)
    with pytest.raises(RuntimeError, match="made under no_grad"):
        computed_view /= 2.0
    np.testing.assert_array_equal(weight.data, np.ones(4))  # nothing changed
    np.testing.assert_array_equal(computed.data, np.full(4, 2.0))
    assert weight.version == 0


def test_a_view_made_under_no_grad_can_be_changed_inside_no_grad_and_a_detach_anywhere_as_pytorch():
    weight = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    with no_grad():
        view = weight[:2]
    with no_grad():  # view and change both inside no_grad (another block is fine)
        view += 1.0
    np.testing.assert_array_equal(weight.data, [2.0, 2.0, 1.0, 1.0])
    with no_grad():
        detached = weight.detach()
    detached += 1.0  # detach() is no view, in or out of no_grad: it shares the memory, as PyTorch's
    part = weight.detach()[2:]  # a view of a detach(): no graph behind it
    part *= 2.0
    copy = Tensor(view)  # Tensor(v) is a detach() of the view
    copy -= 1.0
    first = view.detach()[:1]
    first += 10.0
    np.testing.assert_array_equal(weight.data, [12.0, 2.0, 4.0, 4.0])
    assert weight.requires_grad and weight.is_leaf and weight.version == 5
    constant = Tensor(np.ones(4, dtype=np.float32))  # a view of a constant: no graph to be ambiguous about
    with no_grad():
        constant_view = constant[:2]
    constant_view += 1.0
    np.testing.assert_array_equal(constant.data, [2.0, 2.0, 1.0, 1.0])


def test_a_view_made_under_no_grad_is_refused_where_enable_grad_records_again():
    weight = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    with no_grad():
        view = weight[1:]
        with enable_grad(), pytest.raises(RuntimeError, match="made under no_grad"):
            view += 1.0
    np.testing.assert_array_equal(weight.data, np.ones(4))


def test_changing_a_tensor_the_graph_saved_makes_backward_raise():
    x = Tensor([1.0, 2.0], requires_grad=True)
    scale = Tensor([3.0, 4.0])
    loss = (x * scale).sum()  # Mul saved scale for x's gradient
    scale += 1.0
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(2,\)\) of Mul was modified by an in-place operation"):
        loss.backward()
    y = x.sigmoid()  # Sigmoid saved its output
    with no_grad():
        y *= 2.0
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward(np.ones(2))


@pytest.mark.parametrize("make_view", [lambda t: t[:2], lambda t: t.reshape(2, 2), lambda t: t.reshape(2, 2).T,
                                       lambda t: t.detach(), lambda t: Tensor(t)])
def test_changing_a_saved_tensor_through_a_view_or_its_base_makes_backward_raise(make_view):
    """A view shares its base's versions, as in PyTorch: an in-place change through either
    side reaches the graph's check (the gradient would silently use the new values)."""
    x = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    scale = Tensor(np.ones(4, dtype=np.float32))
    loss = (x * scale).sum()
    view = make_view(scale)
    view += 10.0  # changes scale's memory
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(4,\)\) of Mul was modified"):
        loss.backward()
    scale = Tensor(np.ones(4, dtype=np.float32))
    saved = make_view(scale)
    part = Tensor(np.ones(saved.shape, dtype=np.float32), requires_grad=True)
    loss = (part * saved).sum()  # the graph saved a view
    scale *= 2.0  # the base changes
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_an_in_place_change_of_an_unrelated_tensor_or_of_a_copy_does_not_stop_backward():
    x = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    scale = Tensor(np.full(4, 3.0, dtype=np.float32))
    loss = (x * scale).sum()
    copy = scale * 1.0  # a new array
    copy += 1.0
    other = Tensor(np.zeros(4, dtype=np.float32))
    other += 1.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, np.full(4, 3.0))


# every op whose VJP keeps no input array (saves_inputs = False), applied to positive inputs
OPS_KEEPING_NO_INPUT = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Neg": lambda a, b: -a, "ReLU": lambda a, b: (a - 1.0).relu(),
    "Exp": lambda a, b: a.exp(), "Sqrt": lambda a, b: a.sqrt(), "Tanh": lambda a, b: a.tanh(),
    "Sigmoid": lambda a, b: a.sigmoid(), "Clip": lambda a, b: a.clip(b - 0.2, 1.2),
    "LeakyReLU": lambda a, b: (a - 1.0).leaky_relu(0.1), "ELU": lambda a, b: (a - 1.0).elu(),
    "Reshape": lambda a, b: a.reshape(3, 2, 2, 2), "Pad": lambda a, b: a.pad(((1, 0), (0, 2), (0, 0), (0, 0))),
    "Permute": lambda a, b: a.transpose(0, 3), "GetItem": lambda a, b: a[[0, 0, 1], 1:],
    "Cat": lambda a, b: Tensor.cat([a, b], axis=1), "Stack": lambda a, b: Tensor.stack([a, b], axis=0),
    "Cast": lambda a, b: a.astype(np.float32), "Sum": lambda a, b: a.sum(axis=(0, 2)),
    "Mean": lambda a, b: a.mean(axis=1), "Max": lambda a, b: a.max(axis=3),
    "MaxPool2d": lambda a, b: a.max_pool2d(2, 1), "AvgPool2d": lambda a, b: a.avg_pool2d(2),
    "Softmax": lambda a, b: a.softmax(axis=1), "LogSoftmax": lambda a, b: a.log_softmax(axis=1),
    "CrossEntropy": lambda a, b: a.reshape(6, 4).cross_entropy([0, 1, 2, 3, 0, 1]),
    "Remainder": lambda a, b: a % (b * 0.3),
}
# and every op whose VJP keeps no output array (saves_output = False)
OPS_KEEPING_NO_OUTPUT = {
    **{name: OPS_KEEPING_NO_INPUT[name] for name in ("Add", "Sub", "Neg", "Clip", "LeakyReLU", "Reshape", "Pad",
                                                      "Permute", "GetItem", "Cat", "Stack", "Cast", "Sum", "Mean",
                                                      "Max", "AvgPool2d", "CrossEntropy", "Remainder")},
    "Mul": lambda a, b: a * b, "Div": lambda a, b: a / b, "Log": lambda a, b: a.log(), "Abs": lambda a, b: (a - 1.0).abs(),
    "Maximum": lambda a, b: a.maximum(b), "Minimum": lambda a, b: a.minimum(b),
    "Where": lambda a, b: Tensor.where(a > 1.0, a, b), "MatMul": lambda a, b: a @ b.transpose(2, 3),
}


def _gradients_after(call, change: str | None, seed: int = 0) -> list[np.ndarray]:
    """Gradients of the inputs of ``call``'s op, for a random G, after changing the op's inputs
    or its output in place (under no_grad) between forward and backward, or after no change."""
    rng = np.random.default_rng(seed)
    a, b = (Tensor(rng.uniform(0.5, 1.5, (2, 3, 2, 2)), requires_grad=True) for _ in range(2))
    y = call(a, b)
    with no_grad():
        for tensor in ((a, b) if change == "inputs" else (y,) if change == "output" else ()):
            tensor += 0.25
    y.backward(rng.standard_normal(y.shape))
    return [tensor.grad if tensor.grad is not None else np.zeros(tensor.shape) for tensor in (a, b)]


@pytest.mark.parametrize("name, change", [(name, "inputs") for name in OPS_KEEPING_NO_INPUT]
                         + [(name, "output") for name in OPS_KEEPING_NO_OUTPUT])
def test_an_in_place_change_the_vjp_cannot_see_does_not_stop_backward_as_pytorch(name, change):
    """The check runs on the arrays an op keeps, as PyTorch's on its saved tensors: (a + a).sum()
    with a changed before backward used to raise, and torch gives the gradient. Each op that
    says it keeps no input (or no output) array must give the same gradients whether or not
    that changed: a wrong declaration would let a wrong gradient through, and fails here."""
    call = (OPS_KEEPING_NO_INPUT if change == "inputs" else OPS_KEEPING_NO_OUTPUT)[name]
    y = call(Tensor(np.ones((2, 3, 2, 2)), requires_grad=True), Tensor(np.ones((2, 3, 2, 2)), requires_grad=True))
    assert type(y.node.op).__name__ == name  # the op under test made the output
    assert getattr(type(y.node.op), "saves_" + ("inputs" if change == "inputs" else "output")) is False
    for unchanged, changed in zip(_gradients_after(call, None), _gradients_after(call, change)):
        np.testing.assert_array_equal(changed, unchanged)


def test_a_change_an_op_s_vjp_would_read_still_stops_backward():
    """Ops that keep an input (Mul, MatMul, ...) or their output (Exp, ReLU, ...) still raise."""
    for call, change in [(lambda a, b: a * b, "inputs"), (lambda a, b: a @ b.transpose(2, 3), "inputs"),
                         (lambda a, b: a.exp(), "output"), (lambda a, b: a.relu(), "output"),
                         (lambda a, b: a.max_pool2d(2, 1), "output")]:
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            _gradients_after(call, change)


# ops whose VJP reads an input only for the other input's gradient: (call, inputs that need a
# gradient, the inputs the VJP then reads)
NARROW_READS = [
    ("Mul", lambda a, b: a * b, (0,), (1,)), ("Mul", lambda a, b: a * b, (1,), (0,)),
    ("Div", lambda a, b: a / b, (0,), (1,)), ("Div", lambda a, b: a / b, (1,), (0, 1)),
    ("MatMul", lambda a, b: a @ b.transpose(2, 3), (0,), (1,)),
    ("MatMul", lambda a, b: a @ b.transpose(2, 3), (1,), (0,)),
]


@pytest.mark.parametrize("name, call, needing, read", NARROW_READS)
def test_an_in_place_change_to_an_input_the_vjp_will_not_read_is_harmless_as_pytorch(name, call, needing, read):
    """Mul's da reads only b: (a * 3).sum() after a changed gets its gradient, as in PyTorch
    (which saves b only when a needs a gradient). Changing an input the VJP will not read must
    leave the gradients bit-identical (a wrong declaration fails here); changing one it reads
    must still raise."""
    def gradients_after(changed: tuple[int, ...]) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        inputs = [Tensor(rng.uniform(0.5, 1.5, (2, 3, 2, 2)), requires_grad=position in needing) for position in (0, 1)]
        y = call(*inputs)
        assert type(y.node.op).__name__ == name
        with no_grad():
            for position in changed:
                inputs[position] += 0.25
        y.backward(rng.standard_normal(y.shape))
        return [inputs[position].grad for position in needing]

    unread = tuple(position for position in (0, 1) if position not in read)
    for unchanged, changed in zip(gradients_after(()), gradients_after(unread)):
        np.testing.assert_array_equal(changed, unchanged)
    for position in read:
        with pytest.raises(RuntimeError, match=f"input {position} .* of {name} was modified by an in-place operation"):
            gradients_after((position,))


def test_a_scaled_tensor_changed_after_the_product_keeps_its_gradient():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    loss = (x * 3.0).sum() + (x / 2.0).sum()
    with no_grad():
        x += 1.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, np.full(3, 3.5, dtype=np.float32))


def test_an_optimizer_step_before_backward_makes_backward_raise():
    from tinygrad_cnn.optim import SGD

    weight = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    optimizer = SGD([weight], lr=0.1)
    first = (weight * weight).sum()
    first.backward()
    second = (weight * weight).sum()  # built with the old weights
    optimizer.step()  # changes them in place
    with pytest.raises(RuntimeError, match="of Mul was modified by an in-place operation"):
        second.backward()


def test_in_place_keeps_the_dtype_or_says_why_it_cannot():
    x = Tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"in-place \+= keeps the tensor's dtype int64"):
        x += 0.5
    with pytest.raises(TypeError, match=r"in-place /= keeps the tensor's dtype int64"):
        x /= 2
    with pytest.raises(ValueError, match=r"in-place \+=: the result would have shape \(2, 3\), but the tensor has shape"):
        x += np.ones((2, 3), dtype=np.int64)
    np.testing.assert_array_equal(x.data, [1, 2, 3])
    assert x.version == 0


# -- dtypes and bad arguments ----------------------------------------------------------------

float32_cases = {
    "exp": lambda x: x.exp(), "log": lambda x: (x * x + 1).log(), "sqrt": lambda x: (x * x + 1).sqrt(),
    "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(), "abs": lambda x: x.abs(),
    "sin": lambda x: x.sin(), "cos": lambda x: x.cos(),
    "pow": lambda x: x ** 3, "rpow": lambda x: 2 ** x, "pow_tensor": lambda x: (x * x + 1) ** x,
    "clip": lambda x: x.clip(-0.5, 0.5), "clip to tensors": lambda x: x.clip(-x.abs() * 0.5, Tensor(np.float32(0.5))),
    "maximum": lambda x: x.maximum(0.1), "minimum": lambda x: x.minimum(x * 2),
    "where": lambda x: (x > 0).where(x, 1.5), "leaky_relu": lambda x: x.leaky_relu(0.1), "elu": lambda x: x.elu(0.5),
    "gelu": lambda x: x.gelu(), "gelu tanh": lambda x: x.gelu("tanh"),
}


@pytest.mark.parametrize("name", sorted(float32_cases))
def test_float32_stays_float32_forward_and_backward(name):
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    output = float32_cases[name](x)
    assert output.dtype == np.float32
    output.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_tensors_give_float32_for_transcendental_functions():
    for call in (lambda t: t.exp(), lambda t: t.log(), lambda t: t.sqrt(), lambda t: t.tanh(), lambda t: t.sin(),
                 lambda t: t.sigmoid(), lambda t: t.elu(), lambda t: t.leaky_relu(), lambda t: t.gelu()):
        assert call(Tensor([1, 2])).dtype == np.float32
    assert Tensor([-1, 2]).abs().dtype == np.int64


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.clip(), ValueError, r"clip needs at least one of min= and max="),
    (lambda x: x.clip(min="0"), TypeError, r"clip: min must be a number, a Tensor, an array or a list, got '0'"),
    (lambda x: x.clip(max={"top": 1.0}), TypeError, r"clip: max must be a number, a Tensor, an array or a list, got \{'top': 1.0\}"),
    (lambda x: x.clip(min=np.ones(2), max="1"), TypeError, r"clip: max must be a number, a Tensor, an array or a list, got '1'"),
    (lambda x: x.clip(max=np.ones(2)), ValueError, r"clip: shapes \(2, 3\) \(the tensor\) and \(2,\) \(max\) cannot be broadcast"),
    # clamp, PyTorch's name for clip, names itself in the same errors
    (lambda x: x.clamp(), ValueError, r"^clamp needs at least one of min= and max="),
    (lambda x: x.clamp(min="0"), TypeError, r"^clamp: min must be a number"),
    (lambda x: x.clamp(min=np.ones(2), max="1"), TypeError, r"^clamp: max must be a number"),
    (lambda x: x.clamp(max=np.ones(2)), ValueError, r"^clamp: shapes \(2, 3\) \(the tensor\) and \(2,\) \(max\) cannot be broadcast"),
    (lambda x: x.astype(np.uint8).clamp(min=300), OverflowError, r"^clamp: every element would become 300"),
    (lambda x: x.astype(np.uint8).clip(min=300), OverflowError, r"^clip: every element would become 300"),
    (lambda x: x.leaky_relu(None), TypeError, r"leaky_relu: negative_slope must be a number, got None"),
    (lambda x: x.elu(alpha=True), TypeError, r"elu: alpha must be a number"),
    (lambda x: x.maximum(np.ones(4)), ValueError, r"shapes \(2, 3\) and \(4,\) cannot be broadcast together for 'maximum'"),
    (lambda x: x.minimum(np.ones((3, 2))), ValueError, r"for 'minimum'"),
    (lambda x: x ** np.ones(2), ValueError, r"for '\*\*'"),
    (lambda x: (x > 0).where(x, np.ones(4)), ValueError, r"where: shapes \(2, 3\) \(condition\), \(2, 3\) and \(4,\)"),
    (lambda x: x.where(x, 0.0), TypeError, r"where: the condition must be a bool tensor.*float32"),
    (lambda x: x < np.ones(5), ValueError, r"for '<'"),
])
def test_bad_arguments_are_named(call, error, message):
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    with pytest.raises(error, match=message):
        call(x)


def test_python_numbers_with_bool_tensors_promote_as_pytorch():
    """A bool mask combined with a Python int gives int64 and with a float float32 (the int
    used to become a bool: mask * 3 was True, mask / 2 was 1.0)."""
    mask = Tensor(np.array([True, False]))
    assert (mask * 3).dtype == np.int64 and (mask * 3).data.tolist() == [3, 0]
    assert (mask + 1).data.tolist() == [2, 1]
    assert (mask / 2).dtype == np.float32 and (mask / 2).data.tolist() == [0.5, 0.0]
    assert (mask * 1.5).data.tolist() == [1.5, 0.0]
    assert (mask == 2).data.tolist() == [False, False] and (mask < 2).data.tolist() == [True, True]
    assert (mask ** 2).dtype == np.int64


MASK = np.array([[True, False, True], [False, False, True]])


@pytest.mark.parametrize("call, refused", [
    (lambda mask: mask.relu(), "relu of a bool tensor"),
    (lambda mask: mask.abs(), "abs of a bool tensor"),
    (lambda mask: -mask, "-x of a bool tensor"),
    (lambda mask: mask - mask, "a - b of two bool tensors"),
    (lambda mask: mask - True, "a - b of two bool tensors"),
    (lambda mask: mask ** mask, r"a \*\* b of two bool tensors"),
    (lambda mask: mask ** True, r"a \*\* b of two bool tensors"),
    (lambda mask: mask % mask, "a % b of two bool tensors"),
    (lambda mask: mask // Tensor([[True]]), "a // b of two bool tensors"),
    (lambda mask: mask @ mask.T, "a @ b of two bool tensors"),
    (lambda mask: mask.reshape(1, 1, 2, 3).conv2d(Tensor(np.ones((1, 1, 1, 2), bool))), "conv2d of a bool input with a bool weight"),
    (lambda mask: mask.reshape(1, 1, 2, 3).pad_max_pool2d(((0, 1), (0, 1)), 2, relu=True), "relu of a bool tensor"),
])
def test_ops_pytorch_refuses_on_masks_are_a_type_error_naming_what_to_write(call, refused):
    """numpy computed them silently: relu of a mask was int64 0/1, abs a copy, mask ** mask,
    % and // int8, mask @ mask and the conv an or of ands (True, not a count); -mask and
    mask - mask gave numpy's error, which advised ~ and ^, which Tensor does not have."""
    with pytest.raises(TypeError, match=rf"^{refused} is refused, as in PyTorch: .*(mask|astype)"):
        call(Tensor(MASK))


def test_what_a_mask_does_have_is_kept_sum_counts_mean_fraction_max_any_argmax_first_true():
    """The answers a mask has are kept (PyTorch refuses mean, argmax, argmin and the pools of a
    bool tensor; README, "Decisions")."""
    mask = Tensor(MASK)
    assert mask.sum().dtype == np.int64 and mask.sum(axis=1).data.tolist() == [2, 1]  # counts, as PyTorch
    assert mask.mean().dtype == np.float32 and mask.mean().item() == 0.5  # the fraction of Trues
    assert mask.max(axis=1).data.tolist() == [True, True] and mask.min(axis=0).data.tolist() == [False, False, True]
    assert mask.argmax(axis=1).data.tolist() == [0, 2] and mask.argmin().item() == 1  # the first True / False
    pooled = mask.reshape(1, 1, 2, 3).max_pool2d((2, 2), stride=1)  # any in each window
    assert pooled.dtype == np.bool_ and pooled.data.ravel().tolist() == [True, True]
    assert mask.reshape(1, 1, 2, 3).avg_pool2d((1, 3)).data.ravel().tolist() == pytest.approx([2 / 3, 1 / 3])
    # one side not bool: the other is promoted, and the op is the integer or float one
    assert (mask @ Tensor(np.ones((3, 1), np.int64))).data.ravel().tolist() == [2, 1]  # counts
    assert (mask - 1).data.tolist() == [[0, -1, 0], [-1, -1, 0]] and (mask ** 2).dtype == np.int64
    assert (mask % 2).data.tolist() == MASK.astype(int).tolist() and (mask // 2).dtype == np.int64
    convolved = mask.reshape(1, 1, 2, 3).conv2d(Tensor(np.ones((1, 1, 1, 2), bool)), bias=Tensor([0.5]))
    assert convolved.dtype == np.float32 and convolved.data.ravel().tolist() == [1.5, 1.5, 0.5, 1.5]


def test_a_mask_clipped_to_int_bounds_is_int64_as_pytorch():
    """clip(min=2) of a mask gave True everywhere (2 as a bool), and max=-1 left it unchanged."""
    mask = Tensor(MASK)
    assert mask.clip(min=2).dtype == np.int64 and mask.clip(min=2).data.tolist() == [[2, 2, 2], [2, 2, 2]]
    assert mask.clip(max=-1).data.tolist() == [[-1, -1, -1], [-1, -1, -1]]
    assert mask.clip(0, 5).data.tolist() == MASK.astype(int).tolist()
    assert mask.clip(0.5).dtype == np.float32


def test_an_int_that_does_not_fit_an_integer_tensor_is_an_error_not_a_wrap_around():
    pixels = Tensor(np.array([250, 3], dtype=np.uint8))
    with pytest.raises(OverflowError, match=r"the number 300 does not fit the tensor's dtype uint8 \(0..255\)"):
        pixels + 300
    assert (pixels + 3).dtype == np.uint8


@pytest.mark.parametrize("data", [[2**63], 2**63, [1, 2**63], [[1], [-(2**63) - 1]], [2**64]])
def test_python_ints_beyond_int64_are_an_error_not_a_wrap_around(data):
    """A Tensor of Python ints is int64, as in PyTorch (which raises here too); numpy made
    [2**63] uint64 and wrapped it to -2**63, and [1, 2**63] float32."""
    with pytest.raises(OverflowError, match=r"the Python int -?\d+ does not fit in int64"):
        Tensor(data)
    assert Tensor([2**63 - 1, -(2**63)]).data.tolist() == [2**63 - 1, -(2**63)]
    assert Tensor([1.5, 2**63]).dtype == np.float32  # with a float among them: a float tensor
    assert Tensor([2**63], dtype=np.uint64).data.tolist() == [2**63]
    with pytest.raises(OverflowError, match=r"does not fit the tensor's dtype int64 .*astype\(np.float64\)"):
        Tensor([1]) + 2**63
    np.testing.assert_array_equal((Tensor.zeros(2) + 2**70).data, np.float32(2.0**70))  # a float tensor takes it


def test_clip_of_an_integer_tensor_with_a_bound_beyond_its_dtype_gives_the_true_answer():
    """numpy raised its own OverflowError from inside the op for uint8 clipped to max=300 (a
    bound that limits nothing); PyTorch refuses that and wraps min=-5 to 251."""
    x = Tensor(np.array([0, 1, 2, 250], dtype=np.uint8))
    for bounds, expected in [({"max": 300}, [0, 1, 2, 250]), ({"min": -5}, [0, 1, 2, 250]),
                             ({"min": -5, "max": 2}, [0, 1, 2, 2]), ({"min": 300, "max": 1}, [1, 1, 1, 1])]:
        clipped = x.clip(**bounds)
        assert clipped.dtype == np.uint8 and clipped.data.tolist() == expected, bounds
    for bounds in ({"min": 300}, {"max": -5}, {"min": 256, "max": 300}):
        with pytest.raises(OverflowError, match=r"clip: every element would become -?\d+, which does not fit .* uint8"):
            x.clip(**bounds)


def test_clip_with_numpy_float64_bounds_on_float32_passes_the_gradient_at_the_bound():
    """The bound is compared in x's dtype, as it is applied: x = float32(0.1) equals the bound
    float64(0.1) once that is rounded to float32, so the gradient passes (torch.clamp)."""
    x = Tensor(np.array([0.1, 0.7], dtype=np.float32), requires_grad=True)
    x.clip(max=np.float64(0.1)).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0])
    y = Tensor(np.array([0.7], dtype=np.float32), requires_grad=True)
    y.clip(min=np.float64(0.7)).sum().backward()
    np.testing.assert_array_equal(y.grad, [1.0])


def test_an_op_whose_output_shares_memory_with_two_inputs_joins_one_family():
    """Joining a family must not compare tensors with == (an op on tensors): an output that is
    a view of two inputs, or of an input given twice, used to crash inside the WeakSet."""
    from tinygrad_cnn import Function

    class PassFirst(Function):
        def forward(self, a, b):
            return a[:]

        def backward(self, grad_out):
            return grad_out, None

    x = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    same = PassFirst.apply(x, x)
    row_view = PassFirst.apply(x, x[0])
    assert same.shape == row_view.shape == (2, 2)
    constant = Tensor(np.ones((2, 2), dtype=np.float32))
    loss = (x * PassFirst.apply(constant, constant[0])).sum()
    constant += 1.0  # reaches the view the graph saved
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_comparing_an_integer_tensor_with_an_int_beyond_its_dtype_gives_the_true_answer():
    """uint8 < 256 is True everywhere (numpy 2 too); only arithmetic that would wrap is refused."""
    pixels = Tensor(np.array([0, 250], dtype=np.uint8))
    assert (pixels < 256).data.tolist() == [True, True]
    assert (pixels > -1).data.tolist() == [True, True]
    assert (pixels == 300).data.tolist() == [False, False]


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint64, np.bool_])
def test_comparing_an_integer_or_bool_tensor_with_an_int_beyond_int64_gives_the_true_answer_too(dtype):
    """It gave the OverflowError of Tensor(2**70) ("the dtype of a Tensor of Python ints"),
    where uint8 < 256 and float32 < 2**70 answered: every element lies on one side of such
    an int, so it compares as ±inf would (PyTorch raises, or wraps 2**40 around for int32)."""
    x = Tensor(np.array([0, 1], dtype=dtype))
    for big in (2**63, 2**64, 2**70, 10**400):
        assert (x < big).data.tolist() == [True, True] and (x >= -big).data.tolist() == [True, True]
        assert (x == big).data.tolist() == [False, False] and (x != -big).data.tolist() == [True, True]
        assert (x > big).data.tolist() == [False, False] and (x <= -big).data.tolist() == [False, False]


def test_arithmetic_with_an_int_a_tensor_cannot_hold_is_an_overflow_error_naming_the_dtype():
    """The other side of the rule above: x + 2**70 has no answer in x's dtype. A bool tensor
    takes int64 with an int (mask + 1), so it names int64 (it gave Tensor(2**70)'s message)."""
    with pytest.raises(OverflowError, match=r"the number 1180591620717411303424 does not fit the tensor's dtype int32"):
        Tensor(np.array([1], dtype=np.int32)) + 2**70
    with pytest.raises(OverflowError, match=r"the number 1099511627776 does not fit the tensor's dtype int32"):
        Tensor(np.array([1], dtype=np.int32)) + 2**40
    with pytest.raises(OverflowError, match=r"does not fit int64, the dtype a bool tensor takes with an int .*astype\(np.float64\)"):
        Tensor([True]) + 2**70
    assert (Tensor([True]) + 2**40).data.tolist() == [2**40 + 1]


def test_a_float_tensor_takes_an_int_beyond_int64_rounded_to_its_dtype_in_comparisons_and_arithmetic():
    """Decision (README): Tensor([1.]) < 2**70 answers True where PyTorch raises: the int is
    rounded to the tensor's dtype, as any int is (x + 2**70 too), and one beyond float64's
    range is ±inf, as a float literal that large is (x + 10**400 raised Python's "int too
    large to convert to float", and x < 10**400 Tensor(10**400)'s OverflowError)."""
    x = Tensor([1.0, 2.0**70])
    assert (x < 2**70).data.tolist() == [True, False] and (x == 2**70).data.tolist() == [False, True]
    assert (x > -(2**70)).data.tolist() == [True, True]
    assert (x == 2**70 + 1).data.tolist() == [False, True]  # rounded to float32, as x == 16777217 is
    np.testing.assert_array_equal((x + 2**70).data, np.float32([2.0**70, 2.0**71]))
    for huge in (10**400, -(10**400)):
        assert (x < huge).data.tolist() == [huge > 0] * 2
        float64 = Tensor(np.array([1.0]))
        assert (float64 + huge).item() == (math.inf if huge > 0 else -math.inf)
        assert (float64 * 0 + huge).dtype == np.float64


@pytest.mark.parametrize("scalar", [np.float64(0.5), np.float32(0.5)])
def test_a_numpy_float_scalar_acts_as_a_python_float(scalar):
    """As in PyTorch, a numpy scalar (what np.sqrt(2) or an array's .sum() gives) is a number:
    an int or bool tensor with it is float32, as with 0.5 (np.float64 made it float64, so the
    next op with a float32 model became float64 too), on either side and in where/maximum."""
    counts, mask = Tensor([1, 2]), Tensor([True, False])
    for result in (counts * scalar, scalar * counts, counts / scalar, counts + scalar, mask * scalar,
                   counts ** scalar, counts.maximum(scalar), mask.where(counts, scalar)):
        assert result.dtype == np.float32
    np.testing.assert_array_equal((counts * scalar).data, [0.5, 1.0])
    assert (Tensor([1.0], dtype=np.float64) * scalar).dtype == np.float64  # a float tensor keeps its dtype


def test_a_numpy_integer_scalar_acts_as_a_python_int():
    """bool tensor + np.int32(5) is int64 as with 5 (PyTorch), not numpy's int32; one that does
    not fit an integer tensor's dtype is an OverflowError, as a Python int's."""
    assert (Tensor([True]) + np.int32(5)).dtype == np.int64
    assert (Tensor(np.array([1], np.int8)) + np.int64(5)).dtype == np.int8
    with pytest.raises(OverflowError, match="300 does not fit the tensor's dtype uint8"):
        Tensor(np.array([1], np.uint8)) + np.uint16(300)


def test_a_number_beyond_a_float_tensor_s_range_is_inf_without_a_warning():
    """Rounded to the tensor's dtype it is ±inf, as in PyTorch; numpy's cast warned "overflow
    encountered in cast" on the way (float32 < 2**200 answered right, with a warning)."""
    x = Tensor(np.array([1.0, -3.0], np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (x < 2**200).data.tolist() == [True, True]
        assert (x > -1e60).data.tolist() == [True, True]
        assert (x + 1e60).data.tolist() == [np.inf, np.inf]
        assert (x * -(10**400)).data.tolist() == [-np.inf, np.inf]
        assert (x + 3.4e38).data.tolist() == [np.float32(3.4e38), np.float32(3.4e38)]  # within range: no inf


def test_maximum_and_minimum_with_an_int_beyond_an_integer_tensor_s_range():
    """An int that loses to every element gives the tensor itself (minimum(int64, 2**70) raised,
    where clip(max=2**70) answered); one whose answer does not fit stays an OverflowError."""
    values = Tensor(np.array([1, -2]))
    assert values.minimum(2**70).data.tolist() == [1, -2] and values.minimum(2**70).dtype == np.int64
    assert values.maximum(-(2**70)).data.tolist() == [1, -2]
    small = Tensor(np.array([1, 2], np.uint8))
    assert small.maximum(-5).data.tolist() == [1, 2] and small.minimum(300).dtype == np.uint8
    for result in (lambda: values.maximum(2**70), lambda: values.minimum(-(2**70)), lambda: small.maximum(300)):
        with pytest.raises(OverflowError, match="does not fit the tensor's dtype"):
            result()


def test_gelu_at_its_extremes_and_its_approximate_argument():
    """Far out GELU is x (x ≫ 0) or −0 (x ≪ 0), with gradients 1 and 0, and in the negative tail it
    keeps its relative accuracy (Φ from erfc: (1 + erf)/2 would cancel to 0 near x = −8); float32
    is the float64 value rounded; approximate is 'none' or 'tanh' (ValueError otherwise)."""
    for approximate in ("none", "tanh"):
        x = Tensor(np.array([-60.0, -40.0, 10.0, 40.0]), requires_grad=True)
        output = x.gelu(approximate)
        output.backward(np.ones(4))
        np.testing.assert_array_equal(output.data, [-0.0, -0.0, 10.0, 40.0])
        assert np.signbit(output.data[:2]).all()
        np.testing.assert_allclose(x.grad, [0.0, 0.0, 1.0, 1.0], atol=1e-20)
    tail = np.array([-10.0, -6.0, -5.0, -1.0])
    normal_cdf = np.array([7.619853024160527e-24, 9.865876450376982e-10, 2.866515718791939e-07, 0.15865525393145707])
    np.testing.assert_allclose(Tensor(tail).gelu().data, tail * normal_cdf, rtol=1e-13)
    np.testing.assert_array_equal(Tensor(tail.astype(np.float32)).gelu().data, (tail * normal_cdf).astype(np.float32))
    values = np.linspace(-14, 8, 221)
    single = values.astype(np.float32)  # (computed in float64, then rounded to float32)
    np.testing.assert_array_equal(Tensor(single).gelu().data, gelu_reference(single.astype(np.float64)).astype(np.float32))
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        Tensor([1.0]).gelu("erf")
    with pytest.raises(TypeError, match="gelu: approximate must be a string"):
        Tensor([1.0]).gelu(1)


def test_gelu_tanh_gradient_where_x_cubed_overflows_is_its_limit_and_nan_only_at_infinity():
    x = Tensor(np.array([6e19, -6e19, 3e38, np.inf], dtype=np.float32), requires_grad=True)
    x.gelu("tanh").backward(np.ones(4, np.float32))
    np.testing.assert_array_equal(x.grad[:3], [1.0, 0.0, 1.0])
    assert np.isnan(x.grad[3])
