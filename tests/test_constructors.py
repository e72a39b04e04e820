"""Constructors (zeros, ones, *_like, randn, rand, arange, eye) and manual_seed."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ops import seeds

import tinygrad_cnn
from tinygrad_cnn import Tensor, manual_seed
from tinygrad_cnn.random import generator

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
dtypes = st.sampled_from([None, np.float32, np.float64, np.int64, np.bool_])


@pytest.mark.parametrize("name, fill", [("zeros", 0), ("ones", 1)])
@given(shape=shapes, dtype=dtypes, as_sequence=st.booleans())
def test_zeros_and_ones(name, fill, shape, dtype, as_sequence):
    constructor = getattr(Tensor, name)
    tensor = constructor(shape, dtype=dtype) if as_sequence else constructor(*shape, dtype=dtype)
    assert tensor.shape == shape and tensor.dtype == (np.float32 if dtype is None else dtype)
    assert np.all(tensor.data == fill) and not tensor.requires_grad and tensor.is_leaf


def test_constructors_can_make_parameters():
    weight = Tensor.zeros(2, 3, requires_grad=True)
    (weight * 2).sum().backward()
    np.testing.assert_array_equal(weight.grad, np.full((2, 3), 2.0, dtype=np.float32))
    with pytest.raises(TypeError, match="only float32 and float64 tensors can require grad"):
        Tensor.ones(2, dtype=np.int64, requires_grad=True)


def test_like_constructors_take_the_shape_and_dtype_of_their_argument():
    labels = Tensor(np.array([[1, 2, 3]]))
    assert Tensor.zeros_like(labels).dtype == np.int64 and Tensor.zeros_like(labels).shape == (1, 3)
    halves = Tensor.ones_like(np.zeros((2, 2), dtype=np.float64), requires_grad=True)
    assert halves.dtype == np.float64 and halves.requires_grad and np.all(halves.data == 1)
    assert Tensor.ones_like(labels, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("name", ["randn", "rand"])
@given(shape=shapes, dtype=st.sampled_from([None, np.float32, np.float64]), seed=seeds)
def test_random_constructors_repeat_under_the_same_seed(name, shape, dtype, seed):
    constructor = getattr(Tensor, name)
    manual_seed(seed)
    first = constructor(*shape, dtype=dtype)
    manual_seed(seed)
    second = constructor(shape, dtype=dtype)
    assert first.shape == shape and first.dtype == (np.float32 if dtype is None else dtype)
    np.testing.assert_array_equal(first.data, second.data)


def test_different_seeds_give_different_numbers_and_draws_continue_the_stream():
    manual_seed(1)
    first, following = Tensor.randn(8), Tensor.randn(8)
    manual_seed(2)
    other = Tensor.randn(8)
    assert not np.array_equal(first.data, other.data)
    assert not np.array_equal(first.data, following.data)
    manual_seed(1)
    np.testing.assert_array_equal(Tensor.randn(16).data, np.concatenate([first.data, following.data]))


def test_randn_is_standard_normal_and_rand_uniform_on_0_1():
    manual_seed(0)
    normal, uniform = Tensor.randn(20000).data, Tensor.rand(20000).data
    assert abs(normal.mean()) < 0.03 and abs(normal.std() - 1) < 0.03
    assert uniform.min() >= 0 and uniform.max() < 1 and abs(uniform.mean() - 0.5) < 0.01
    assert abs(uniform.std() - np.sqrt(1 / 12)) < 0.01


def test_manual_seed_is_exported_and_replaces_the_package_generator():
    assert tinygrad_cnn.manual_seed is manual_seed
    returned = manual_seed(5)
    assert isinstance(returned, np.random.Generator) and generator() is returned
    np.testing.assert_array_equal(generator().random(3), np.random.default_rng(5).random(3))


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("7", TypeError), (True, TypeError)])
def test_manual_seed_needs_a_non_negative_integer(seed, error):
    with pytest.raises(error, match="manual_seed: seed must be a non-negative integer"):
        manual_seed(seed)


@given(start=st.integers(-10, 10), stop=st.integers(-10, 10),
       step=st.integers(-4, 4).filter(lambda step: step != 0))
def test_arange_of_integers_is_int64_as_numpy(start, stop, step):
    if (stop - start) * step < 0:  # a step away from stop: an error, as PyTorch (numpy: empty)
        with pytest.raises(ValueError, match="moves away from stop"):
            Tensor.arange(start, stop, step)
        return
    values = Tensor.arange(start, stop, step)
    assert values.dtype == np.int64
    np.testing.assert_array_equal(values.data, np.arange(start, stop, step))


@given(start=st.floats(-5, 5), stop=st.floats(-5, 5),
       step=st.floats(0.1, 2).flatmap(lambda size: st.sampled_from([size, -size])))
def test_arange_with_a_float_argument_is_float32(start, stop, step):
    if (stop - start) * step < 0:
        with pytest.raises(ValueError, match="moves away from stop"):
            Tensor.arange(start, stop, step)
        return
    values = Tensor.arange(start, stop, step)
    assert values.dtype == np.float32
    np.testing.assert_allclose(values.data, np.arange(start, stop, step), rtol=1e-6, atol=1e-6)


def test_arange_one_argument_dtype_and_grad():
    np.testing.assert_array_equal(Tensor.arange(4).data, [0, 1, 2, 3])
    assert Tensor.arange(0).shape == (0,) and Tensor.arange(3, 3, -1).shape == (0,)  # start == stop: empty
    assert Tensor.arange(2**70, 2**70 + 2, 1, dtype=np.float64).shape == (2,)  # (a huge int is finite)
    scaled = Tensor.arange(3, dtype=np.float64, requires_grad=True)
    assert scaled.dtype == np.float64 and scaled.requires_grad
    # computed in float64, then rounded: each value is the float32 nearest to start + i·step
    np.testing.assert_array_equal(Tensor.arange(0, 100, 0.1).data, (np.arange(1000) * 0.1).astype(np.float32))


@given(rows=st.integers(0, 4), columns=st.none() | st.integers(0, 4), dtype=dtypes)
def test_eye(rows, columns, dtype):
    identity = Tensor.eye(rows, columns, dtype=dtype)
    assert identity.dtype == (np.float32 if dtype is None else dtype)
    np.testing.assert_array_equal(identity.data, np.eye(rows, columns))


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor.zeros(2, -1), ValueError, r"zeros: sizes must be non-negative, got shape \(2, -1\)"),
    (lambda: Tensor.ones((2, 1.5)), TypeError, r"ones needs ints, got \(2, 1.5\)"),
    (lambda: Tensor.zeros(2, dtype="complex64"), TypeError, r"zeros: dtype must be .*got complex64"),
    (lambda: Tensor.zeros(2, dtype="nonsense"), TypeError, r"'nonsense' is not a dtype"),
    (lambda: Tensor.randn(2, dtype=np.int64), TypeError, r"randn: dtype must be float32 or float64, got int64"),
    (lambda: Tensor.rand(2, dtype=np.float16), TypeError, r"rand: dtype must be float32 or float64"),
    (lambda: Tensor.arange(0, 5, 0), ValueError, r"arange: step must not be zero"),
    (lambda: Tensor.arange("5"), TypeError, r"arange: stop must be a number, got '5'"),
    # numpy gives an empty tensor for these (PyTorch refuses them): a swapped start and stop,
    # or arange(n) of a negative n, surfaced only as a shape error far from the cause
    (lambda: Tensor.arange(5, 0), ValueError, r"arange: step 1 moves away from stop 0 \(start 5\)"),
    (lambda: Tensor.arange(-3), ValueError, r"arange: step 1 moves away from stop -3"),
    (lambda: Tensor.arange(0, 5, -0.5), ValueError, r"arange: step -0.5 moves away from stop 5"),
    (lambda: Tensor.arange(0, float("inf")), ValueError, r"arange: start, stop and step must be finite"),
    (lambda: Tensor.arange(0, 1, float("nan")), ValueError, r"arange: start, stop and step must be finite"),
    (lambda: Tensor.arange(5, dtype=np.int64, requires_grad=True), TypeError, r"can require grad"),
    (lambda: Tensor.eye(-2), ValueError, r"eye: sizes must be non-negative"),
])
def test_constructor_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("fill, dtype", [(1.5, np.float32), (7, np.int64), (True, np.bool_), (np.float64(0.25), np.float32)])
def test_full_takes_its_dtype_from_the_value_as_pytorch(fill, dtype):
    tensor = Tensor.full((2, 3), fill)
    assert tensor.shape == (2, 3) and tensor.dtype == dtype and (tensor.data == fill).all()
    assert Tensor.full(4, fill).shape == (4,) and Tensor.full([1, 2], fill).shape == (1, 2)
    assert Tensor.full(2, 1, dtype=np.float64).dtype == np.float64
    assert Tensor.full(2, 0.5, requires_grad=True).requires_grad


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor.full((2,), "x"), TypeError, "full: fill_value must be a number, got 'x'"),
    (lambda: Tensor.full((-1,), 1.0), ValueError, r"full: sizes must be non-negative"),
    (lambda: Tensor.full((2,), 1.0, dtype=np.float16), TypeError, "full"),
])
def test_full_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_int_and_bool_casts_as_pytorch():
    assert Tensor([1.7, -2.2]).int().data.tolist() == [1, -2] and Tensor([1.7]).int().dtype == np.int32
    assert Tensor([0, 2]).bool().data.tolist() == [False, True] and Tensor([0.0]).bool().dtype == np.bool_
