"""The public extension point: a user's op as a Function subclass, used through apply()."""

import numpy as np
import pytest
from hypothesis import given
from test_ops import random_array, seeds, small_shapes

from tinygrad_cnn import Function, Tensor, gradcheck


class Swish(Function):
    """y = x · s with s = sigmoid(x).   VJP: dx = G · (s + x · s · (1 − s))."""

    def forward(self, x):
        self.x, self.s = x, 1 / (1 + np.exp(-x))
        return x * self.s

    def backward(self, grad_out):
        return grad_out * (self.s + self.x * self.s * (1 - self.s))  # a bare array: one input


class ScaledAdd(Function):
    """y = a + scale · b (``scale`` an option).   VJP: da = G, db = scale · G."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def forward(self, a, b):
        return a + self.scale * b

    def backward(self, grad_out):
        return grad_out, self.scale * grad_out


@given(shape=small_shapes, seed=seeds)
def test_a_user_op_passes_gradcheck(shape, seed):
    assert gradcheck(lambda t: Swish.apply(t), [random_array(seed, shape)])
    assert gradcheck(lambda a, b: ScaledAdd.apply(a, b, scale=-2.5), [random_array(seed, shape)] * 2)


def test_apply_wraps_numbers_and_arrays_as_constants_of_the_tensor_dtype():
    a = Tensor(np.ones(3), requires_grad=True)  # float64
    y = ScaledAdd.apply(a, 2, scale=3.0)
    assert y.dtype == np.float64 and y.requires_grad
    np.testing.assert_array_equal(y.data, [7.0, 7.0, 7.0])
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, np.ones(3))
    z = ScaledAdd.apply(np.zeros(2, dtype=np.float32), np.ones(2, dtype=np.float32))
    assert not z.requires_grad and z.dtype == np.float32


class WrongCount(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, grad_out):
        return (grad_out,)


class WrongShape(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, grad_out):
        return grad_out, grad_out  # b was broadcast: its gradient must be summed back


class ReturnsAFloat(Function):
    def forward(self, x):
        return float(x.sum())


class ReturnsATensor(Function):
    def forward(self, x):
        return Tensor(x * 2)


class ReturnsANumpyScalar(Function):
    def forward(self, x):
        return x.sum()  # a numpy scalar, as numpy gives: accepted

    def backward(self, grad_out):
        return np.ones(3) * grad_out


def test_forward_must_return_a_numpy_array_and_the_error_names_the_op():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match=r"ReturnsAFloat.forward must return a numpy array, got float 3.0 "
                                        r"\(wrap a scalar result in np.asarray\)"):
        ReturnsAFloat.apply(x)
    with pytest.raises(TypeError, match=r"ReturnsATensor.forward must return a numpy array, got Tensor "
                                        r"Tensor\(\[2. 2. 2.\].*\(return its .data"):
        ReturnsATensor.apply(x)
    total = ReturnsANumpyScalar.apply(x)
    assert total.item() == 3.0
    total.backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))


def test_backward_returning_the_wrong_count_names_the_op():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"WrongCount.backward must return one gradient \(or None\) per input: 2 input\(s\), got 1"):
        WrongCount.apply(a, b).sum().backward()


def test_backward_returning_the_wrong_shape_names_the_op_input_and_shapes():
    a, b = Tensor(np.ones((2, 3)), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"WrongShape.backward returned a gradient of shape \(2, 3\) for input 1, which has shape \(3,\)"):
        WrongShape.apply(a, b).sum().backward()


def test_matmul_gradient_of_a_fortran_ordered_matrix_times_a_batch():
    """Regression: dA's layout shortcut for a transposed-view A assumed a 2-D B."""
    rng = np.random.default_rng(0)
    a, b = np.asfortranarray(rng.standard_normal((3, 4))), rng.standard_normal((2, 4, 5))
    left, right = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    (left @ right).sum().backward()
    np.testing.assert_allclose(left.grad, (np.ones((2, 3, 5)) @ b.transpose(0, 2, 1)).sum(axis=0))
    assert gradcheck(lambda x, y: x @ y, [a, b])


class DoubleWithListGradient(Function):
    """y = 2x, whose backward returns a Python list (converted to an array when checked)."""

    def forward(self, x):
        return 2 * x

    def backward(self, grad_out):
        return ((grad_out * 2).tolist(),)


class ComplexGradient(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        return grad_out + 1j


class TextGradient(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        return (["a", "b"],)


def test_a_list_gradient_is_an_array_so_two_uses_add_rather_than_join():
    x = Tensor(np.ones(2), requires_grad=True)
    (DoubleWithListGradient.apply(x) + DoubleWithListGradient.apply(x)).sum().backward()
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == (2,)
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


def test_a_complex_or_text_gradient_is_refused_naming_the_op_and_input():
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"ComplexGradient.backward returned a gradient of dtype complex128 for input 0"):
        ComplexGradient.apply(x).sum().backward()
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"TextGradient.backward returned a gradient of dtype <U1 for input 0"):
        TextGradient.apply(x).sum().backward()


class ScaleByOption(Function):
    """y = x · w with w given as an option: a constant, whatever it is."""

    def __init__(self, w):
        self.w = w.data if isinstance(w, Tensor) else w

    def forward(self, x):
        return x * self.w

    def backward(self, grad_out):
        return grad_out * self.w


def test_a_tensor_option_that_requires_grad_is_refused_naming_the_option():
    x, w = Tensor(np.ones(2), requires_grad=True), Tensor(np.full(2, 3.0), requires_grad=True)
    with pytest.raises(TypeError, match=r"ScaleByOption.apply got the Tensor option w= that requires grad.*"
                                        r"pass tensors positionally"):
        ScaleByOption.apply(x, w=w)
    y = ScaleByOption.apply(x, w=Tensor(np.full(2, 3.0)))  # a constant Tensor is a fine option
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


class SumOfAll(Function):
    """y = Σ x, returned as numpy gives it: a numpy scalar, not an array.   VJP: dx = G everywhere."""

    def forward(self, x):
        self.shape = x.shape
        return x.sum()

    def backward(self, grad_out):
        return np.broadcast_to(grad_out, self.shape)


def test_a_numpy_scalar_result_is_held_as_a_0d_array_so_in_place_updates_work():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    total = SumOfAll.apply(x)
    product = Tensor(np.float32(2.0)) * Tensor(np.float32(3.0))  # numpy multiplies 0-d arrays into a scalar
    for tensor in (total, product):
        assert type(tensor.data) is np.ndarray and tensor.shape == ()
    total.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    product += 1  # a TypeError ("cannot hold the result") when data was a numpy scalar
    assert product.item() == 7.0


class Rounding(Function):
    """y = round(x) as int64: a result without a gradient (PyTorch marks it non-differentiable)."""

    def forward(self, x):
        return np.round(x).astype(np.int64)

    def backward(self, grad_out):
        return grad_out.astype(np.float32)


def test_an_integer_result_of_a_user_op_never_requires_grad():
    x = Tensor(np.array([1.2, 2.6], dtype=np.float32), requires_grad=True)
    y = Rounding.apply(x)
    np.testing.assert_array_equal(y.data, [1, 3])
    assert y.dtype == np.int64 and not y.requires_grad and y.is_leaf  # it was int64 requiring grad


class ConstantBoolGradient(Function):
    """y = x; a VJP (wrongly typed, but meaning 1 everywhere) that returns a bool array."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        return np.ones(grad_out.shape, dtype=bool)


class ConstantInt8Gradient(Function):
    """y = x; a VJP that returns 100 everywhere as int8."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        return np.full(grad_out.shape, 100, dtype=np.int8)


@pytest.mark.parametrize("op, expected", [(ConstantBoolGradient, 2.0), (ConstantInt8Gradient, 200.0)])
def test_integer_or_bool_gradients_take_the_input_s_dtype_before_they_are_added(op, expected):
    # two paths into one non-leaf: its gradient is the sum of both. Added as they came, two bool
    # gradients gave True (a logical or: 1, not 2) and two int8 gradients of 100 wrapped to -56
    x = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    hidden = x * 1
    (op.apply(hidden) + op.apply(hidden)).sum().backward()
    np.testing.assert_array_equal(x.grad, [expected, expected])


class TensorGradient(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        return Tensor(grad_out)


def test_a_tensor_returned_by_backward_is_refused_saying_to_return_its_data():
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"TensorGradient.backward returned a Tensor.*return its .data"):
        TensorGradient.apply(x).sum().backward()  # it said "1 input(s), got Tensor": a wrong count


class TensorInATuple(Function):
    def forward(self, x, y):
        return x * y

    def backward(self, grad_out):
        return grad_out, Tensor(grad_out)


def test_a_tensor_inside_the_returned_gradients_is_refused_too():
    """A Tensor in the tuple went through np.asarray and was taken, while a bare one was refused."""
    x, y = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"TensorInATuple.backward returned a Tensor as the gradient for input 1.*\.data"):
        TensorInATuple.apply(x, y).sum().backward()
