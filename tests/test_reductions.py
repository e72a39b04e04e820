"""max/min over axes (ties share the gradient), argmax/argmin, and PyTorch's dim=/keepdim=
spellings of axis=/keepdims=."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ops import distinct_values, random_array, seeds, shape_and_axes

from tinygrad_cnn import Tensor, gradcheck


@pytest.mark.parametrize("name", ["max", "min"])
@given(case=shape_and_axes(), keepdims=st.booleans(), seed=seeds)
def test_max_min_vjp_without_ties(name, case, keepdims, seed):
    shape, axis = case
    x = distinct_values(seed, shape, spacing=0.1)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    output = getattr(Tensor(x), name)(axis=axis, keepdims=keepdims)
    assert output.shape == np.shape(expected)
    np.testing.assert_array_equal(output.data, expected)


@pytest.mark.parametrize("name", ["max", "min"])
@given(case=shape_and_axes(), keepdims=st.booleans(), seed=seeds, levels=st.integers(1, 3))
def test_tied_extremes_share_the_gradient_equally(name, case, keepdims, seed, levels):
    """Few distinct levels make many ties: each group's G is split equally among the elements
    equal to its extreme, and the other elements get nothing."""
    shape, axis = case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=shape).astype(np.float64)
    tensor = Tensor(x, requires_grad=True)
    output = getattr(tensor, name)(axis=axis, keepdims=keepdims)
    grad_out = rng.standard_normal(output.shape)
    output.backward(grad_out)
    extreme = getattr(np, name)(x, axis=axis, keepdims=True)
    is_extreme = x == extreme
    ties = is_extreme.sum(axis=axis, keepdims=True)
    expected = np.where(is_extreme, np.reshape(grad_out, extreme.shape) / ties, 0.0)
    np.testing.assert_allclose(tensor.grad, expected, rtol=1e-12)
    np.testing.assert_allclose(tensor.grad.sum(), grad_out.sum(), rtol=1e-9, atol=1e-12)


def test_max_ties_by_hand():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).backward(np.array([1.0, 6.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5], [2.0, 2.0, 2.0]])
    x.grad = None
    x.max().backward()  # the two 3s over the whole tensor
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
    x.grad = None
    x.min(axis=0, keepdims=True).backward(np.array([[4.0, 4.0, 4.0]]))
    np.testing.assert_array_equal(x.grad, [[4.0, 0.0, 0.0], [0.0, 4.0, 4.0]])
    x.grad = None
    x.min(axis=(0, -1)).backward()  # one 1.0: it gets everything
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_max_min_at_nan_give_the_gradient_to_the_nans_shared_equally():
    """As torch.max(x) (and torch.max(x, dim) when one NaN): where the result is NaN the
    NaN elements are the extremes; ±inf ties share as any tie."""
    nan, inf = np.nan, np.inf
    x = Tensor(np.array([[nan, 1.0, 1.0], [1.0, nan, nan], [inf, inf, 1.0], [-inf, -inf, -inf]]),
               requires_grad=True)
    x.max(axis=1).backward(np.array([1.0, 2.0, 4.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [2.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    x.grad = None
    x.min(axis=-1, keepdims=True).backward(np.array([[1.0], [2.0], [4.0], [3.0]]))
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 4.0], [1.0, 1.0, 1.0]])
    x.grad = None
    x.max().backward(np.array(3.0))  # three NaNs over the whole tensor
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    x.grad = None
    x.min(axis=0).backward(np.array([1.0, 2.0, 4.0]))  # a NaN in every column
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 0.0], [0.0, 2.0, 4.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    y = Tensor(np.array([[nan, 1.0]], dtype=np.float32), requires_grad=True)
    y.max(axis=1).sum().backward()
    assert y.grad.dtype == np.float32
    np.testing.assert_array_equal(y.grad, [[1.0, 0.0]])


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_of_a_0d_tensor_and_float32(name):
    scalar = Tensor(np.array(2.5, dtype=np.float32), requires_grad=True)
    output = getattr(scalar, name)()
    output.backward()
    assert output.shape == () and output.item() == 2.5 and scalar.grad == 1.0
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    output = getattr(x, name)(axis=-1)
    assert output.dtype == np.float32
    output.sum().backward()
    assert x.grad.dtype == np.float32


# -- argmax / argmin -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(case=shape_and_axes(), keepdims=st.booleans(), seed=seeds, levels=st.integers(1, 4))
def test_argmax_argmin_match_numpy_first_index_on_ties(name, case, keepdims, seed, levels):
    shape, axis = case
    if isinstance(axis, tuple):  # one axis or all of them, as in PyTorch
        axis = axis[0]
    x = np.random.default_rng(seed).integers(0, levels, size=shape).astype(np.float32)
    indices = getattr(Tensor(x, requires_grad=True), name)(axis=axis, keepdims=keepdims)
    assert indices.dtype == np.int64 and not indices.requires_grad and indices.is_leaf
    np.testing.assert_array_equal(indices.data, getattr(np, name)(x, axis=axis, keepdims=keepdims))


def test_argmax_of_the_whole_tensor_is_a_flat_index():
    x = Tensor([[0.0, 5.0, 5.0], [7.0, 1.0, 7.0]])
    assert x.argmax().item() == 3 and x.argmin().item() == 0
    assert x.argmax(keepdims=True).shape == (1, 1)
    np.testing.assert_array_equal(x.argmax(axis=-1).data, [1, 0])


# -- PyTorch spellings -----------------------------------------------------------------------

spelled = {
    "sum": lambda t, **kw: t.sum(**kw), "mean": lambda t, **kw: t.mean(**kw),
    "max": lambda t, **kw: t.max(**kw), "min": lambda t, **kw: t.min(**kw),
    "argmax": lambda t, **kw: t.argmax(**kw), "argmin": lambda t, **kw: t.argmin(**kw),
}


@pytest.mark.parametrize("name", sorted(spelled))
@pytest.mark.parametrize("axis", [0, -1, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_dim_and_keepdim_spell_axis_and_keepdims(name, axis, keepdims):
    x = Tensor(random_array(0, (2, 3, 4)))
    ours = spelled[name](x, axis=axis, keepdims=keepdims)
    pytorch = spelled[name](x, dim=axis, keepdim=keepdims)
    assert pytorch.shape == ours.shape
    np.testing.assert_array_equal(pytorch.data, ours.data)
    np.testing.assert_array_equal(getattr(x, name)(axis, keepdim=keepdims).data, ours.data)  # positional axis


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_accepts_dim(name):
    x = Tensor(random_array(1, (2, 5)))
    np.testing.assert_array_equal(getattr(x, name)(dim=0).data, getattr(x, name)(axis=0).data)
    with pytest.raises(TypeError, match="keepdim"):
        getattr(x, name)(dim=0, keepdim=True)  # softmax has no keepdims, so no keepdim either


@pytest.mark.parametrize("name", sorted(spelled) + ["softmax", "log_softmax"])
def test_both_spellings_at_once_is_a_type_error(name):
    x = Tensor(random_array(0, (2, 3)))
    method = getattr(x, name)
    with pytest.raises(TypeError, match=rf"{name}\(\) got both axis= and dim= \(its PyTorch spelling\)"):
        method(axis=0, dim=0)
    with pytest.raises(TypeError, match=r"got both axis= and dim="):
        method(1, dim=1)
    if name not in ("softmax", "log_softmax"):
        with pytest.raises(TypeError, match=r"got both keepdims= and keepdim="):
            method(keepdims=False, keepdim=True)


# -- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.max(axis=2), ValueError, r"max: axis 2 is out of range for a tensor with 2 dimensions"),
    (lambda x: x.min(dim=(0, -2)), ValueError, r"min: axis \(0, -2\) names the same axis twice"),
    (lambda x: x.argmax(axis=(0, 1)), TypeError, r"argmax: axis must be an int or None, got \(0, 1\)"),
    (lambda x: x.argmin(axis=-3), ValueError, r"argmin: axis -3 is out of range"),
    (lambda x: Tensor(np.zeros((0, 3))).max(axis=0), ValueError,
     r"max: cannot reduce a tensor of shape \(0, 3\) over axis 0, which has size 0"),
    (lambda x: Tensor(np.zeros((2, 0))).argmin(), ValueError, r"argmin: cannot reduce .* over axis 1"),
])
def test_bad_arguments_are_named(call, error, message):
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        call(x)


def test_max_over_a_nonempty_axis_of_a_tensor_with_an_empty_one_is_empty():
    assert Tensor(np.zeros((0, 3))).max(axis=1).shape == (0,)


def test_sum_of_unsigned_or_bool_values_is_int64_as_pytorch():
    """numpy sums uint8 as uint64, and 253 − 300 then wraps around to 18446744073709551569."""
    pixels = Tensor(np.array([250, 3], dtype=np.uint8))
    assert pixels.sum().dtype == np.int64 and (pixels.sum() - 300).item() == -47
    assert Tensor(np.array([True, True, False])).sum().dtype == np.int64


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min"])
def test_an_empty_axis_tuple_is_an_error_naming_the_ambiguity(method):
    """numpy reduces no axis for axis=(), PyTorch every axis for dim=(): neither silently."""
    x = Tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"axis=\(\) names no axis .* pass axis=None"):
        getattr(x, method)(axis=())
    with pytest.raises(ValueError, match="names no axis"):
        getattr(x, method)(dim=[])


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "argmax", "argmin"])
def test_keepdims_must_be_a_bool(method):
    """numpy takes any int for keepdims: x.sum(0, 1), meant as a sum over axes 0 and 1, gave
    the sum over axis 0 with that axis kept, and keepdims="no" (truthy) kept it too, without
    a word; PyTorch refuses both ("argument 'keepdim' must be bool")."""
    x = Tensor(np.arange(6.0).reshape(2, 3))
    reduce = getattr(x, method)
    with pytest.raises(TypeError, match=rf"{method}: keepdims must be True or False, got 1 .*axis=\(0, 1\)"):
        reduce(0, 1)
    for wrong in ("no", None, 1.0):
        with pytest.raises(TypeError, match=rf"{method}: keepdims must be True or False, got {wrong!r}"):
            reduce(axis=0, keepdims=wrong)
    with pytest.raises(TypeError, match="keepdims must be True or False"):
        reduce(dim=0, keepdim="yes")
    assert reduce(axis=0, keepdims=np.True_).shape == (1, 3)  # a numpy bool is a bool
    assert reduce(axis=0, keepdims=False).shape == (3,)


@pytest.mark.parametrize("shape, axis, keepdims, expected_shape", [
    ((0, 3), 0, False, (3,)), ((0, 3), None, False, ()), ((2, 0), 1, True, (2, 1)), ((0, 3), (0, 1), False, ()),
])
def test_the_mean_over_no_elements_is_nan_without_a_warning_as_pytorch(shape, axis, keepdims, expected_shape):
    """A mean over an empty axis (an empty batch's loss) is NaN, as PyTorch gives it, and the
    empty input's gradient is empty; numpy's own mean warned "Mean of empty slice" and its
    gradient "divide by zero"."""
    x = Tensor(np.zeros(shape, dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean = x.mean(axis=axis, keepdims=keepdims)
        mean.sum().backward()
    assert mean.shape == expected_shape and mean.dtype == np.float32 and np.all(np.isnan(mean.data))
    assert x.grad.shape == shape and x.grad.dtype == np.float32


# -- var, std, logsumexp: compositions of recorded ops, with PyTorch's arguments ----------------


def reduced_count(shape, axis) -> int:
    axes = range(len(shape)) if axis is None else [axis] if isinstance(axis, int) else axis
    return int(np.prod([shape[single] for single in axes]))


@pytest.mark.parametrize("name", ["var", "std"])
@given(case=shape_and_axes(), keepdims=st.booleans(), seed=seeds, data=st.data())
def test_var_and_std_match_numpy_and_finite_differences(name, case, keepdims, seed, data):
    shape, axis = case
    correction = data.draw(st.integers(0, reduced_count(shape, axis) - 1))  # (n > correction: a finite result)
    x = random_array(seed, shape)
    numpy_axis = tuple(axis) if isinstance(axis, tuple) else axis
    expected = getattr(np, name)(x, axis=numpy_axis, ddof=correction, keepdims=keepdims)
    output = getattr(Tensor(x), name)(axis=axis, correction=correction, keepdims=keepdims)
    assert output.shape == np.shape(expected)
    np.testing.assert_allclose(output.data, expected, rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, correction=correction, keepdims=keepdims), [x])


def test_var_and_std_take_pytorchs_spellings_and_edge_cases():
    x = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])
    np.testing.assert_allclose(Tensor(x).var(dim=1, keepdim=True).data, np.var(x, axis=1, ddof=1, keepdims=True))
    np.testing.assert_allclose(Tensor(x).var(1, unbiased=False).data, np.var(x, axis=1))
    np.testing.assert_allclose(Tensor(x).std().data, np.std(x, ddof=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # n ≤ correction divides by 0 quietly, as PyTorch (which warns once)
        assert np.isnan(Tensor(np.array([5.0])).var().item())  # 0 / 0
        pair = Tensor(np.array([1.0, 3.0]), requires_grad=True)
        degenerate = pair.var(correction=2)
        degenerate.backward()  # 2 (x − mean) / 0: ±inf, not NaN from the mean's inf − inf
        assert degenerate.item() == np.inf
        np.testing.assert_array_equal(pair.grad, [-np.inf, np.inf])
        assert np.isnan(Tensor(np.zeros((2, 0))).var(axis=1).data).all()
        assert np.isnan(Tensor(np.ones((1, 1))).std(dim=[0, 1]).item())  # (axes as a list, one element)
    constant = Tensor(np.full((2, 3), 7.0), requires_grad=True)  # variance 0: std's gradient is 0, as PyTorch's
    constant.std(axis=1).sum().backward()
    np.testing.assert_array_equal(constant.grad, np.zeros((2, 3)))
    assert np.isnan(Tensor(np.array([1.0, np.nan])).std().item())
    assert Tensor(np.arange(4, dtype=np.int64)).var().dtype == np.float32  # as mean: float32 from integers


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.var(correction=-1), ValueError, "correction must be an int >= 0"),
    (lambda x: x.var(correction=0.5), ValueError, "correction must be an int >= 0"),
    (lambda x: x.var(correction=0, unbiased=True), TypeError, "both correction= and unbiased="),
    (lambda x: x.var(correction=1, unbiased=False), TypeError, "both correction= and unbiased="),
    (lambda x: x.std(correction=-2), ValueError, "std: correction must be an int >= 0"),
    (lambda x: x.std(unbiased=1), TypeError, "unbiased"),
    (lambda x: x.var(axis=2), ValueError, "var: axis 2 is out of range"),
    (lambda x: x.logsumexp(axis=(0, 0)), ValueError, "names the same axis twice"),
    (lambda x: x.logsumexp(), TypeError, "axis"),
])
def test_bad_var_std_logsumexp_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(np.ones((2, 3))))


@given(case=shape_and_axes(), keepdims=st.booleans(), seed=seeds, scale=st.sampled_from([1.0, 400.0]))
def test_logsumexp_matches_the_direct_formula_and_finite_differences(case, keepdims, seed, scale):
    shape, axis = case
    if axis is None:
        axis = tuple(range(len(shape)))  # (required, as in PyTorch: every axis spelled out)
    x = random_array(seed, shape) * scale  # (at 400, exp overflows float64 past 709: the shift must work)
    shift = np.max(x, axis=axis, keepdims=True)
    expected = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    output = Tensor(x).logsumexp(axis, keepdims=keepdims)
    np.testing.assert_allclose(output.data, expected if keepdims else np.squeeze(expected, axis=axis), rtol=1e-12)
    if scale == 1.0:
        assert gradcheck(lambda t: t.logsumexp(axis, keepdims=keepdims), [x])
    tensor = Tensor(x, requires_grad=True)
    tensor.logsumexp(axis).sum().backward()  # the gradient is the softmax along the axes
    np.testing.assert_allclose(tensor.grad, np.exp(x - expected), rtol=1e-9, atol=1e-300)


def test_logsumexp_of_infinities_and_of_nothing_as_pytorch():
    x = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [np.nan, 1.0], [0.0, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(Tensor(x).logsumexp(1).data, [-np.inf, np.inf, np.nan, 0.0])
        np.testing.assert_array_equal(Tensor(np.zeros((2, 0))).logsumexp(dim=1).data, [-np.inf, -np.inf])
