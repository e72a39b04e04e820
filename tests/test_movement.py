"""Movement ops: permute / transpose / .T, indexing, cat / stack and dtype casts.

Each VJP is checked against float64 finite differences on hypothesis-drawn shapes, axes and
indices, and each forward against numpy."""

import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ops import random_array, seeds, small_shapes

from tinygrad_cnn import Tensor, gradcheck, no_grad, ops

# -- permute, transpose, .T ----------------------------------------------------------------


@st.composite
def shape_and_permutation(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3))
    order = draw(st.permutations(range(len(shape))))
    negative = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    dims = tuple(axis - len(shape) if flip else axis for axis, flip in zip(order, negative))
    return shape, tuple(order), dims


@given(case=shape_and_permutation(), seed=seeds, as_tuple=st.booleans())
def test_permute_vjp_and_forward(case, seed, as_tuple):
    shape, order, dims = case
    x = random_array(seed, shape)
    permute = (lambda t: t.permute(dims)) if as_tuple else (lambda t: t.permute(*dims))
    assert gradcheck(permute, [x])
    np.testing.assert_array_equal(permute(Tensor(x)).data, np.transpose(x, order))


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_transpose_swaps_two_axes(shape, seed, data):
    dim0 = data.draw(st.integers(-len(shape), len(shape) - 1))
    dim1 = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = random_array(seed, shape)
    assert gradcheck(lambda t: t.transpose(dim0, dim1), [x])
    np.testing.assert_array_equal(Tensor(x).transpose(dim0, dim1).data, np.swapaxes(x, dim0, dim1))


@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3), seed=seeds)
def test_T_reverses_all_axes_as_numpy(shape, seed):
    x = random_array(seed, shape)
    assert gradcheck(lambda t: t.T, [x])
    np.testing.assert_array_equal(Tensor(x).T.data, x.T)


def test_permute_with_the_identity_order_returns_the_tensor_itself():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    assert x.permute(0, 1) is x and x.transpose(1, 1) is x and Tensor(np.ones(3)).T.shape == (3,)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.permute(0, 1), ValueError, r"dims \(0, 1\) are not a permutation of the 3 axes .* shape \(2, 3, 4\)"),
    (lambda x: x.permute(0, 0, 1), ValueError, r"not a permutation"),
    (lambda x: x.permute(0, 1, 3), ValueError, r"not a permutation"),
    (lambda x: x.permute(0, 1.0, 2), TypeError, r"permute needs ints"),
    (lambda x: x.transpose(0, 3), ValueError, r"transpose: axis 3 is out of range for a tensor with 3 dimensions"),
    (lambda x: x.flatten(5), IndexError, r"flatten: start_dim 5 is out of range for a tensor of shape \(2, 3, 4\) "
                                         r"\(expected it in \[-3, 2\]\)"),
    (lambda x: x.flatten(-5), IndexError, r"start_dim -5 is out of range .* \[-3, 2\]"),
    (lambda x: x.flatten(3), IndexError, r"start_dim 3 is out of range"),
    (lambda x: x.flatten(1.0), TypeError, r"flatten: start_dim must be an int, got 1.0"),
    (lambda x: x.flatten(0, 3), IndexError, r"flatten: end_dim 3 is out of range .* \[-3, 2\]"),
    (lambda x: x.flatten(2, 1), ValueError, r"flatten: start_dim 2 comes after end_dim 1 .* \(2, 3, 4\)"),
    (lambda x: x.flatten(0, None), TypeError, r"flatten: end_dim must be an int, got None"),
    (lambda x: x.reshape(2.9, 12), TypeError, r"reshape: sizes must be ints, got 2.9 in \(2.9, 12\)"),
    (lambda x: x.reshape((6.0, 4)), TypeError, r"reshape: sizes must be ints, got 6.0"),
    # view, PyTorch's name for reshape, names itself in the same errors
    (lambda x: x.view(2.9, 12), TypeError, r"^view: sizes must be ints, got 2.9 in \(2.9, 12\)"),
    (lambda x: x.view(5, 5), ValueError, r"^view: cannot reshape a tensor of shape \(2, 3, 4\) \(24 elements\) into \(5, 5\)"),
    (lambda x: x.reshape(5, 5), ValueError, r"^cannot reshape a tensor of shape \(2, 3, 4\) \(24 elements\) into \(5, 5\)"),
])
def test_movement_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(np.ones((2, 3, 4)), requires_grad=True))


def test_flatten_of_an_empty_batch_and_of_negative_and_0d_dims():
    assert Tensor.zeros(0, 1, 28, 28).flatten().shape == (0, 784)
    assert Tensor.zeros(0, 1, 28, 28).flatten(0).shape == (0,)
    assert Tensor.zeros(2, 3, 4).flatten(-2).shape == (2, 12)
    assert Tensor(5.0).flatten(0).shape == (1,) and Tensor(5.0).flatten(-1).shape == (1,)
    assert Tensor.zeros(2, 3).reshape(np.int64(3), np.int64(2)).shape == (3, 2)


@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3), seed=seeds, data=st.data())
def test_unsqueeze_and_squeeze_vjp_and_forward_as_numpy(shape, seed, data):
    """unsqueeze(axis) is np.expand_dims (axis in [-ndim - 1, ndim]); squeeze() drops every
    size-1 axis, squeeze(axes) those of the named axes that have size 1 (the others stay, as in
    PyTorch); both pass the gradient back through the reshape."""
    x = random_array(seed, shape)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    np.testing.assert_array_equal(Tensor(x).unsqueeze(axis).data, np.expand_dims(x, axis))
    assert gradcheck(lambda t: t.unsqueeze(axis), [x])
    named = data.draw(st.lists(st.integers(0, max(len(shape), 1) - 1), unique=True, max_size=len(shape)))
    kept_named = [axis for axis in named if axis < len(shape) and shape[axis] == 1]
    np.testing.assert_array_equal(Tensor(x).squeeze().data, np.squeeze(x))
    np.testing.assert_array_equal(Tensor(x).squeeze(tuple(named)).data, np.squeeze(x, axis=tuple(kept_named)))
    assert gradcheck(lambda t: t.squeeze(tuple(named)).unsqueeze(0).squeeze(), [x])


def test_unsqueeze_and_squeeze_take_pytorch_spellings_and_name_bad_axes():
    x = Tensor(np.zeros((1, 2, 1)))
    assert x.unsqueeze(dim=-1).shape == (1, 2, 1, 1) and x.squeeze(dim=0).shape == (2, 1)
    assert x.squeeze(1) is x and x.squeeze(()) is x and Tensor(5.0).squeeze(-1).shape == ()
    for call, error, message in [
        (lambda: x.unsqueeze(4), IndexError, r"unsqueeze: axis 4 is out of range for a tensor of shape \(1, 2, 1\) \(expected it in \[-4, 3\]\)"),
        (lambda: x.unsqueeze(True), TypeError, r"unsqueeze: axis must be an int, got True"),
        (lambda: x.squeeze(-4), IndexError, r"squeeze: axis -4 is out of range .* \[-3, 2\]"),
        (lambda: x.squeeze((0, -3)), ValueError, r"names the same axis twice"),
        (lambda: x.squeeze(1.0), TypeError, r"squeeze: axis must be None, an int or a tuple of ints, got 1.0"),
    ]:
        with pytest.raises(error, match=message):
            call()


def test_flatten_end_dim_as_pytorch():
    """PyTorch's x.flatten(0, 1) (merge the first two axes) was a TypeError "takes from 1 to 2
    positional arguments": end_dim did not exist."""
    x = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    merged = x.flatten(0, 1)
    assert merged.shape == (6, 4)
    np.testing.assert_array_equal(merged.data, x.data.reshape(6, 4))
    assert x.flatten(1, -1).shape == (2, 12) and x.flatten(-2, -2).shape == (2, 3, 4)
    assert x.flatten(end_dim=-2).shape == (2, 3, 4) and x.flatten(0, -2).shape == (6, 4)
    assert Tensor(5.0).flatten(0, -1).shape == (1,)
    merged.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((2, 3, 4)))


# -- indexing ------------------------------------------------------------------------------

index_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@given(shape=index_shapes, seed=seeds, data=st.data())
def test_basic_indexing_vjp_and_forward(shape, seed, data):
    """ints, slices with any step, negative indices, None and Ellipsis, as hypothesis draws them."""
    index = data.draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    x = random_array(seed, shape)
    np.testing.assert_array_equal(Tensor(x)[index].data, x[index])
    if x[index].size:
        assert gradcheck(lambda t: t[index], [x])


@st.composite
def advanced_indices(draw, shape):
    """A tuple indexing every axis of ``shape`` with an integer array (repeats and negative
    entries likely), a plain int or a full slice; the arrays broadcast against each other and
    come as numpy arrays, lists or int Tensors."""
    kinds = draw(st.lists(st.sampled_from(["array", "int", "slice"]), min_size=len(shape), max_size=len(shape))
                 .filter(lambda kinds: "array" in kinds))
    arrays = [axis for axis, kind in enumerate(kinds) if kind == "array"]
    array_shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=len(arrays), max_dims=2, max_side=3)).input_shapes
    index = [draw(st.integers(-size, size - 1)) if kind == "int" else slice(None)
             for size, kind in zip(shape, kinds)]
    for axis, array_shape in zip(arrays, array_shapes):
        array = draw(hnp.arrays(np.int64, array_shape, elements=st.integers(-shape[axis], shape[axis] - 1)))
        form = draw(st.sampled_from(["numpy", "list", "tensor"]))
        index[axis] = array.tolist() if form == "list" and array.ndim else Tensor(array) if form == "tensor" else array
    return tuple(index)


def plain(index):
    return tuple(part.data if isinstance(part, Tensor) else part for part in index)


@given(shape=index_shapes, seed=seeds, data=st.data())
def test_advanced_indexing_vjp_and_forward(shape, seed, data):
    index = data.draw(advanced_indices(shape))
    x = random_array(seed, shape)
    np.testing.assert_array_equal(Tensor(x)[index].data, x[plain(index)])
    if x[plain(index)].size:
        assert gradcheck(lambda t: t[index], [x])


@given(shape=st.integers(1, 5), seed=seeds, data=st.data())
def test_repeated_indices_accumulate_their_gradients(shape, seed, data):
    """dx[i] = Σ of G over every position that read row i (np.add.at, not dx[index] = G)."""
    index = data.draw(hnp.arrays(np.int64, st.integers(1, 8), elements=st.integers(0, shape - 1)))
    x = Tensor(random_array(seed, (shape, 2)), requires_grad=True)
    x[index].sum().backward()
    counts = np.bincount(index, minlength=shape)
    np.testing.assert_array_equal(x.grad, np.repeat(counts[:, None], 2, axis=1))


def test_embedding_lookup_sums_the_gradients_of_a_repeated_row():
    table = Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    vectors = table[Tensor([[1, 1, 2]])]                                   # (1, 3, 3)
    np.testing.assert_array_equal(vectors.data[0], [[3, 4, 5], [3, 4, 5], [6, 7, 8]])
    weights = np.array([[[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [100.0, 200.0, 300.0]]])
    (vectors * weights).sum().backward()
    np.testing.assert_array_equal(table.grad, [[0, 0, 0],
                                               [11, 22, 33],               # row 1 read twice: 1+10, 2+20, 3+30
                                               [100, 200, 300],
                                               [0, 0, 0]])


@given(shape=index_shapes, seed=seeds, data=st.data())
def test_bool_mask_indexing(shape, seed, data):
    leading = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape[:leading]))
    x = random_array(seed, shape)
    np.testing.assert_array_equal(Tensor(x)[Tensor(mask)].data, x[mask])
    if mask.any():
        assert gradcheck(lambda t: t[mask], [x])


def test_a_comparison_mask_selects_and_routes_the_gradient():
    x = Tensor(np.array([[-1.0, 2.0], [3.0, -4.0]]), requires_grad=True)
    positive = x[Tensor(x.data > 0)]
    np.testing.assert_array_equal(positive.data, [2.0, 3.0])
    positive.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1], [1, 0]])


def test_indexing_a_single_element_and_iterating():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    element = x[1, -1]
    assert element.shape == () and element.item() == 5.0
    rows = list(x)
    assert len(rows) == 2 and rows[1].shape == (3,)
    (rows[0].sum() + element * 2).backward()
    np.testing.assert_array_equal(x.grad, [[1, 1, 1], [0, 0, 2]])
    with pytest.raises(TypeError, match="0-d"):
        iter(Tensor(1.0))


@pytest.mark.parametrize("index, message", [
    (3, r"index 3 is invalid for a tensor of shape \(3, 4\).*out of bounds for axis 0 with size 3"),
    ((0, -5), r"shape \(3, 4\).*index -5 is out of bounds for axis 1 with size 4"),
    ((0, 0, 0), r"shape \(3, 4\).*too many indices"),
    (1.5, r"shape \(3, 4\).*only integers, slices"),
    (Tensor(np.array([0.0, 1.0])), r"shape \(3, 4\).*arrays used as indices must be of integer"),
    (np.array([True, False]), r"shape \(3, 4\).*boolean index did not match"),
    ([0, 7], r"shape \(3, 4\).*index 7 is out of bounds"),
])
def test_bad_indices_name_the_index_and_the_shape(index, message):
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(IndexError, match=message):
        x[index]


# -- cat and stack -------------------------------------------------------------------------


@st.composite
def joinable_arrays(draw, same_shape: bool):
    """2–3 arrays that cat (or, if ``same_shape``, stack) along a drawn axis, with flags saying
    which require grad (at least one does) and which are given as plain numpy arrays."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = draw(st.integers(-len(shape) - same_shape, len(shape) - 1))
    count = draw(st.integers(2, 3))
    shapes = []
    for _ in range(count):
        size = shape if same_shape else shape[:axis % len(shape)] + (draw(st.integers(1, 3)),) + shape[axis % len(shape) + 1:]
        shapes.append(size)
    requires = draw(st.lists(st.booleans(), min_size=count, max_size=count).filter(any))
    as_numpy = [not flag and draw(st.booleans()) for flag in requires]
    return shapes, axis, requires, as_numpy


def join(function, requires, as_numpy, axis, keyword):
    """f(*tensors) = Tensor.cat/stack of them, passing no-grad inputs as arrays where asked."""
    def joined(*tensors):
        inputs = [tensor.data if numpy else tensor for tensor, numpy in zip(tensors, as_numpy)]
        return function(inputs, **{keyword: axis})
    return joined


@pytest.mark.parametrize("name, numpy_join", [("cat", np.concatenate), ("stack", np.stack)])
@given(seed=seeds, data=st.data(), keyword=st.sampled_from(["axis", "dim"]))
def test_cat_and_stack_vjp_with_mixed_inputs(name, numpy_join, seed, data, keyword):
    shapes, axis, requires, as_numpy = data.draw(joinable_arrays(same_shape=name == "stack"))
    arrays = [random_array(seed + position, shape) for position, shape in enumerate(shapes)]
    function = join(getattr(Tensor, name), requires, as_numpy, axis, keyword)
    inputs = [Tensor(array, requires_grad=flag) for array, flag in zip(arrays, requires)]
    assert gradcheck(function, inputs)
    np.testing.assert_array_equal(function(*[Tensor(array) for array in arrays]).data, numpy_join(arrays, axis=axis))


def test_cat_gives_each_input_its_slice_of_the_gradient_and_none_to_constants():
    a = Tensor(np.ones((2, 2)), requires_grad=True)
    constant = Tensor(np.zeros((1, 2)))
    b = Tensor(np.ones((3, 2)), requires_grad=True)
    weights = np.arange(12.0).reshape(6, 2)
    (Tensor.cat([a, constant, np.full((0, 2), 5.0), b]) * weights).sum().backward()
    np.testing.assert_array_equal(a.grad, weights[:2])
    np.testing.assert_array_equal(b.grad, weights[3:])
    assert constant.grad is None


def test_stack_gives_each_input_its_slice_of_the_gradient():
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    weights = np.arange(6.0).reshape(3, 2)
    (Tensor.stack([a, b], axis=-1) * weights).sum().backward()
    np.testing.assert_array_equal(a.grad, [0, 2, 4])
    np.testing.assert_array_equal(b.grad, [1, 3, 5])


def test_cat_and_stack_promote_dtypes_as_pytorch():
    single = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    assert Tensor.cat([single, np.arange(2)]).dtype == np.float32          # int + float32 → float32
    assert Tensor.stack([np.arange(2), np.array([True, False])]).dtype == np.int64
    mixed = Tensor.cat([single, Tensor(np.ones(2, dtype=np.float64))])
    assert mixed.dtype == np.float64 and mixed.requires_grad
    mixed.sum().backward()
    assert single.grad.dtype == np.float32
    np.testing.assert_array_equal(single.grad, [1, 1])
    integers = Tensor.cat([Tensor([1, 2]), [3]])
    assert integers.dtype == np.int64 and not integers.requires_grad
    np.testing.assert_array_equal(integers.data, [1, 2, 3])


def matrix(*shape):
    return Tensor(np.ones(shape), requires_grad=True)


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor.cat([]), ValueError, r"cat needs at least one tensor"),
    (lambda: Tensor.stack(()), ValueError, r"stack needs at least one tensor"),
    (lambda: Tensor.cat([matrix(2, 3), matrix(2, 4)]), ValueError, r"cat along axis 0: shapes \(2, 3\) and \(2, 4\) differ"),
    (lambda: Tensor.cat([matrix(2, 3), matrix(3)]), ValueError, r"same number of axes.*\(2, 3\) and \(3,\)"),
    (lambda: Tensor.cat([matrix(2), matrix(2)], axis=1), ValueError, r"cat: axis 1 is out of range"),
    (lambda: Tensor.cat([Tensor(1.0), Tensor(2.0)]), ValueError, r"zero-dimensional.*Tensor.stack"),
    (lambda: Tensor.stack([matrix(2, 3), matrix(3, 2)]), ValueError, r"one shape.*\(2, 3\) and \(3, 2\)"),
    (lambda: Tensor.stack([matrix(2), matrix(2)], axis=2), ValueError, r"stack: axis 2 is out of range"),
    (lambda: Tensor.cat([matrix(2)], axis=0, dim=0), TypeError, r"axis or dim .* not both"),
    (lambda: Tensor.cat(matrix(2, 2)), TypeError, r"list or tuple of tensors, got Tensor"),
    (lambda: Tensor.stack([matrix(2)], axis=0.5), TypeError, r"axis must be an int"),
])
def test_cat_and_stack_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- dtype casts ---------------------------------------------------------------------------


@given(shape=small_shapes, seed=seeds)
def test_cast_vjp(shape, seed):
    """float64 → float32 → float64 is the identity up to float32 rounding; a large step keeps
    that rounding small next to the difference quotient (the op is linear, so it is exact)."""
    assert gradcheck(lambda t: t.float(), [random_array(seed, shape)], eps=1e-2)


def test_cast_converts_the_gradient_back_to_the_input_dtype():
    x = Tensor(np.array([1.5, -2.5], dtype=np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and y.requires_grad
    (y * np.array([2.0, 3.0])).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])


def test_integer_casts_leave_the_graph_and_same_dtype_casts_return_the_tensor():
    x = Tensor(np.array([1.7, -2.7]), requires_grad=True)
    index = x.long()
    assert index.dtype == np.int64 and not index.requires_grad
    np.testing.assert_array_equal(index.data, [1, -2])                     # truncation, as numpy and PyTorch
    assert x.double() is x and x.astype("float64") is x
    assert Tensor([1, 2]).float().dtype == np.float32
    assert x.astype(bool).dtype == np.bool_


@pytest.mark.parametrize("dtype, message", [
    (np.float16, r"astype: dtype must be bool, an integer type, float32 or float64, got float16"),
    ("complex64", r"got complex64"),
    ("nonsense", r"astype: 'nonsense' is not a dtype"),
    (None, r"astype needs a dtype"),
])
def test_astype_errors(dtype, message):
    with pytest.raises(TypeError, match=message):
        Tensor(np.ones(2)).astype(dtype)


# -- split, chunk ---------------------------------------------------------------------------


@st.composite
def shape_and_dim(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, dim


@given(case=shape_and_dim(), size=st.integers(1, 7), chunks=st.integers(1, 7), seed=seeds)
def test_split_and_chunk_cut_as_numpy_and_pass_gradients_back(case, size, chunks, seed):
    shape, dim = case
    x = random_array(seed, shape)
    length = shape[dim]
    pieces = Tensor(x).split(size, dim)
    np.testing.assert_array_equal(np.concatenate([piece.data for piece in pieces], axis=dim), x)
    assert [piece.shape[dim] for piece in pieces] == ([min(size, length - start) for start in range(0, length, size)]
                                                       or [0])
    chunked = Tensor(x).chunk(chunks, dim)  # pieces of ⌈length / chunks⌉
    expected_sizes = [0] * chunks if length == 0 else \
        [min(-(-length // chunks), length - start) for start in range(0, length, -(-length // chunks))]
    assert [piece.shape[dim] for piece in chunked] == expected_sizes
    weights = random_array(seed + 1, shape)  # each piece weighted differently: a wrong slice gets a wrong gradient
    assert gradcheck(lambda t: sum(((piece * (index + 1)) * Tensor(weight)).sum()
                                   for index, (piece, weight) in enumerate(zip(t.split(size, dim),
                                                                               np.split(weights, range(size, length, size), axis=dim)))),
                     [x])


@pytest.mark.parametrize("length, size, chunks, split_sizes, chunk_sizes", [
    (7, 3, 3, [3, 3, 1], [3, 3, 1]),
    (6, 4, 4, [4, 2], [2, 2, 2]),  # chunk: pieces of ⌈6/4⌉ = 2, so three, not four (as PyTorch)
    (5, 5, 2, [5], [3, 2]),
    (1, 2, 3, [1], [1]),
    (0, 2, 3, [0], [0, 0, 0]),
])
def test_split_and_chunk_sizes_by_hand(length, size, chunks, split_sizes, chunk_sizes):
    x = Tensor(np.zeros((2, length)))
    assert [piece.shape[1] for piece in x.split(size, dim=1)] == split_sizes
    assert [piece.shape[1] for piece in x.chunk(chunks, dim=-1)] == chunk_sizes


def test_split_by_sizes_and_its_errors():
    x = Tensor(np.arange(10.0).reshape(2, 5), requires_grad=True)
    first, second, third = x.split([1, 0, 4], dim=1)
    assert (first.shape, second.shape, third.shape) == ((2, 1), (2, 0), (2, 4))
    (third * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 2, 2, 2, 2], [0, 2, 2, 2, 2]])
    with pytest.raises(ValueError, match=r"split: the sizes must be non-negative ints adding up to the length 5"):
        x.split([2, 2], dim=1)
    with pytest.raises(ValueError, match="split: split_size must be a positive int, got 0"):
        x.split(0)
    with pytest.raises(IndexError, match="split: dim 2 is out of range"):
        x.split(1, dim=2)
    with pytest.raises(ValueError, match="chunk: chunks must be a positive int, got 0"):
        x.chunk(0)
    with pytest.raises(ValueError, match="split: a 0-d tensor has no axis to split"):
        Tensor(1.0).split(1)
    with pytest.raises(ValueError, match="^chunk: a 0-d tensor has no axis to chunk"):
        Tensor(1.0).chunk(2)


# -- masked_fill ----------------------------------------------------------------------------


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=seeds, data=st.data())
def test_masked_fill_puts_the_value_where_the_mask_is_and_the_gradient_elsewhere(shape, seed, data):
    mask_shape = tuple(data.draw(st.sampled_from([1, side])) for side in shape)  # broadcasting axes of 1
    mask = np.random.default_rng(seed).random(mask_shape) < 0.5
    x = random_array(seed, shape)
    np.testing.assert_array_equal(Tensor(x).masked_fill(mask, -7.0).data, np.where(mask, -7.0, x))
    assert gradcheck(lambda t: t.masked_fill(Tensor(mask), 3.0), [x])


def test_a_causal_attention_mask_gives_finite_weights_and_gradients_without_warnings():
    scores = Tensor(random_array(0, (2, 4, 4)), requires_grad=True)
    future = np.triu(np.ones((4, 4), dtype=bool), k=1)  # position i may not look at j > i
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights = scores.masked_fill(future, -np.inf).softmax(-1)
        (weights * Tensor(random_array(1, (2, 4, 4)))).sum().backward()
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-12)
    assert (weights.data[:, future] == 0).all() and (scores.grad[:, future] == 0).all()
    assert np.isfinite(scores.grad).all()


def test_masked_fill_keeps_the_tensors_dtype_as_pytorch():
    mask = np.array([True, False, True])
    filled = Tensor(np.array([1, 2, 3])).masked_fill(mask, 7)
    assert filled.dtype == np.int64 and filled.data.tolist() == [7, 2, 7]
    assert Tensor(np.float32([1, 2, 3])).masked_fill(mask, 0.1).dtype == np.float32
    assert Tensor(np.array([False, False, True])).masked_fill(mask, True).data.tolist() == [True, False, True]
    assert Tensor(np.float32([1, 2, 3])).masked_fill(mask, Tensor(5.0)).data.tolist() == [5, 2, 5]


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.astype(np.int64).masked_fill(np.ones(3, bool), 2.5), TypeError,
     "masked_fill: the value 2.5 does not fit the tensor's dtype int64"),
    (lambda x: x.astype(np.int64).masked_fill(np.ones(3, bool), -np.inf), TypeError, "does not fit the tensor's dtype"),
    (lambda x: x.astype(bool).masked_fill(np.ones(3, bool), 5), TypeError, "the value 5 does not fit the tensor's dtype bool"),
    (lambda x: x.masked_fill(np.ones(3, bool), Tensor([1.0, 2.0])), TypeError, "a Tensor value must be 0-d"),
    (lambda x: x.astype(bool).masked_fill(np.ones(3, bool), 2**63), TypeError, "does not fit the tensor's dtype bool"),
    (lambda x: x.astype(np.float32).masked_fill(np.ones(3, bool), 1e40), TypeError,
     "the value 1e\\+40 does not fit the tensor's dtype float32"),
    (lambda x: x.masked_fill(np.ones(3, bool), Tensor(1.0, requires_grad=True)), TypeError, "that requires grad"),
    (lambda x: x.masked_fill(np.ones((2, 3)), 0.0), TypeError, "masked_fill: the mask must be bool, got dtype float64"),
    (lambda x: x.masked_fill(np.ones((3, 3), bool), 0.0), ValueError,
     r"masked_fill: a mask of shape \(3, 3\) does not broadcast to the tensor's shape \(2, 3\)"),
    (lambda x: x.masked_fill(np.ones((1, 2, 3), bool), 0.0), ValueError, r"does not broadcast to the tensor's shape"),
    (lambda x: x.masked_fill(np.ones(3, bool), "zero"), TypeError, "masked_fill: value must be a number or a bool"),
])
def test_masked_fill_names_what_is_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(np.zeros((2, 3))))


# -- the Embedding op: rows of a table at indices that are an input -------------------------


@given(indices_shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), rows=st.integers(1, 5),
       width=st.integers(1, 3), seed=seeds)
def test_embedding_op_reads_rows_and_adds_the_gradients_of_repeated_indices(indices_shape, rows, width, seed):
    table = random_array(seed, (rows, width))
    indices = np.random.default_rng(seed).integers(0, rows, indices_shape)
    output = ops.Embedding.apply(Tensor(table), Tensor(indices))
    np.testing.assert_array_equal(output.data, table[indices])
    if indices.size:  # (gradcheck needs an output element to perturb the loss with)
        assert gradcheck(lambda t: ops.Embedding.apply(t, Tensor(indices)), [table])
    tensor = Tensor(table, requires_grad=True)
    ops.Embedding.apply(tensor, Tensor(indices)).sum().backward()  # each row: once per place that reads it
    np.testing.assert_array_equal(tensor.grad[:, 0], np.bincount(indices.reshape(-1), minlength=rows))


def test_embedding_op_refuses_indices_that_are_not_integers_and_lets_the_table_change_before_backward():
    table = Tensor(np.ones((3, 2)), requires_grad=True)
    for indices, dtype in ((Tensor(np.array([True, False, True])), "bool"), (Tensor(np.array([1.0])), "float64")):
        with pytest.raises(TypeError, match=f"Embedding: the indices must be integers, got dtype {dtype}"):
            ops.Embedding.apply(table, indices)  # (a bool array would select rows by mask, unlike ONNX's Gather)
    rows = ops.Embedding.apply(table, Tensor(np.array([2, 2])))
    with no_grad():
        table -= 1.0  # an optimizer step between forward and backward: the VJP reads only the indices
    rows.sum().backward()
    np.testing.assert_array_equal(table.grad[:, 0], [0, 0, 2])
