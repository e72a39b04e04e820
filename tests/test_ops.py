"""Every primitive op: its VJP against float64 finite differences on hypothesis-drawn cases,
and the fast conv2d / max_pool2d against the loop specification in reference.py."""

import warnings

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import avg_pool2d_loops, conv2d_loops, max_pool2d_loops

from tinygrad_cnn import Tensor, gradcheck, kernels
from tinygrad_cnn.function import unbroadcast

seeds = st.integers(0, 2**32 - 1)
small_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


def random_array(seed: int, shape, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def away_from_zero(array: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """Move values out of (-margin, margin), so kinks and poles are never straddled."""
    return np.where(array >= 0, array + margin, array - margin)


def distinct_values(seed: int, shape, spacing: float = 0.01) -> np.ndarray:
    """Values that differ pairwise by at least ``spacing``: no ties inside any pool window."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size) * spacing - size * spacing / 2).reshape(shape)


# -- element-wise arithmetic with broadcasting ---------------------------------------------

binary_ops = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("name", sorted(binary_ops))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4), seed=seeds)
def test_binary_op_vjp_with_broadcasting(name, shapes, seed):
    a_shape, b_shape = shapes.input_shapes
    a = random_array(seed, a_shape)
    b = away_from_zero(random_array(seed + 1, b_shape), 0.5)
    assert gradcheck(binary_ops[name], [a, b])
    output = binary_ops[name](Tensor(a), Tensor(b))
    assert output.shape == shapes.result_shape
    np.testing.assert_allclose(output.data, binary_ops[name](a, b))


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4), seed=seeds)
def test_remainder_vjp_with_broadcasting_away_from_its_jumps(shapes, seed):
    """a % b = a − b·⌊a/b⌋, b broadcast against a (its gradient summed back): a is drawn as
    b·(k + f) with f in [0.1, 0.9], so that no finite-difference step crosses a jump of
    ⌊a/b⌋; b of either sign."""
    rng = np.random.default_rng(seed)
    b_shape, shape = shapes.input_shapes[1], shapes.result_shape
    b = rng.uniform(0.5, 2.0, b_shape) * rng.choice([-1.0, 1.0], b_shape)
    a = np.broadcast_to(b, shape) * (rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.9, shape))
    assert gradcheck(lambda t, d: t % d, [a, b])
    np.testing.assert_allclose((Tensor(a) % Tensor(b)).data, np.remainder(a, b))


@pytest.mark.parametrize("a, b", [
    ([7, -7, 7, -7, 0], [2, 2, -2, -2, 3]),  # int: the sign of the divisor, as Python's %
    ([3.5, -1.25, 4.0, -0.5], [2.0, 0.5, -3.0, 0.25]),
])
def test_remainder_and_floor_division_as_python(a, b):
    for left, right in zip(a, b):
        assert (Tensor([left]) % right).item() == left % right
        assert (Tensor([left]) // right).item() == left // right
        assert (left % Tensor([right])).item() == left % right and (left // Tensor([right])).item() == left // right
    ints = Tensor([7, -7]) // 2
    assert ints.dtype == np.int64 and ints.data.tolist() == [3, -4]
    assert (Tensor([7]) // 2.5).dtype == np.float32 and (Tensor([7]) % Tensor([2.5])).dtype == np.float32


def test_floor_division_has_no_gradient_and_an_integer_zero_divisor_is_an_error():
    x = Tensor([3.5, -1.0], requires_grad=True)
    quotient = x // 2.0
    assert not quotient.requires_grad and quotient.data.tolist() == [1.0, -1.0]
    (quotient * x).sum().backward()  # a constant in the graph, as a comparison
    np.testing.assert_array_equal(x.grad, [1.0, -1.0])
    assert np.isnan((Tensor([1.0]) % 0.0).item())  # a float divisor 0: NaN, as PyTorch
    for call in (lambda: Tensor([1, 2]) // Tensor([1, 0]), lambda: Tensor([5]) % 0, lambda: 5 % Tensor([0])):
        with pytest.raises(ZeroDivisionError, match="integer (//|%) by zero"):
            call()


@given(shape=small_shapes, seed=seeds, scalar=st.floats(0.5, 3.0))
def test_python_numbers_mix_in(shape, seed, scalar):
    x = random_array(seed, shape)
    assert gradcheck(lambda t: 2.0 - t * scalar + 1 / (t * t + 1) - (-t) / scalar, [x])


@given(shape=small_shapes, seed=seeds)
def test_neg_vjp(shape, seed):
    assert gradcheck(lambda t: -t, [random_array(seed, shape)])


@given(shape=small_shapes, seed=seeds)
def test_relu_vjp_away_from_the_kink(shape, seed):
    x = away_from_zero(random_array(seed, shape), 0.01)
    assert gradcheck(lambda t: t.relu(), [x])
    np.testing.assert_array_equal(Tensor(x).relu().data, np.maximum(x, 0))


def test_relu_gradient_is_zero_at_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5), seed=seeds)
def test_unbroadcast_sums_to_the_original_shape(shape, seed):
    target = tuple(1 if flag else size for flag, size in zip(np.random.default_rng(seed).integers(0, 2, len(shape)), shape))
    grad = random_array(seed, (2,) + shape)
    result = unbroadcast(grad, target)
    assert result.shape == target
    np.testing.assert_allclose(result.sum(), grad.sum())


# -- linear algebra and reductions -----------------------------------------------------------


@given(
    batch=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
    sizes=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    seed=seeds,
)
def test_matmul_vjp(batch, sizes, seed):
    rows, inner, columns = sizes
    a = random_array(seed, batch.input_shapes[0] + (rows, inner))
    b = random_array(seed + 1, batch.input_shapes[1] + (inner, columns))
    assert gradcheck(lambda x, y: x @ y, [a, b])
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b)


@given(inner=st.integers(1, 5), columns=st.integers(1, 4), seed=seeds)
def test_matmul_with_vectors(inner, columns, seed):
    vector, matrix = random_array(seed, (inner,)), random_array(seed + 1, (inner, columns))
    assert gradcheck(lambda v, m: v @ m, [vector, matrix])
    assert gradcheck(lambda m, v: m.reshape(columns, inner) @ v, [matrix, vector])
    other = random_array(seed + 2, (inner,))
    assert gradcheck(lambda v, w: v @ w, [vector, other])
    np.testing.assert_allclose((Tensor(vector) @ Tensor(other)).data, vector @ other)


@given(batch=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3),
       sizes=st.tuples(st.integers(1, 4), st.integers(1, 4)), seed=seeds)
def test_matmul_of_a_vector_and_a_batch_of_matrices_vjp(batch, sizes, seed):
    """A 1-D operand against a batched one: the vector is a row (left) or a column (right)
    broadcast over the batch axes, and its gradient is summed back over them."""
    inner, columns = sizes
    vector = random_array(seed, (inner,))
    on_the_right, on_the_left = random_array(seed + 1, batch + (inner, columns)), random_array(seed + 2, batch + (columns, inner))
    assert gradcheck(lambda v, m: v @ m, [vector, on_the_right])
    assert gradcheck(lambda m, v: m @ v, [on_the_left, vector])
    np.testing.assert_allclose((Tensor(vector) @ Tensor(on_the_right)).data, vector @ on_the_right)
    np.testing.assert_allclose((Tensor(on_the_left) @ Tensor(vector)).data, on_the_left @ vector)


@pytest.mark.parametrize("order", ["C", "F"])
@given(inner=st.integers(1, 40), columns=st.integers(1, 12), seed=seeds)
def test_matmul_weight_gradient_of_one_row_is_exactly_the_outer_product(order, inner, columns, seed):
    """A batch of one: dB = aᵀ G has one rounded product per entry, whichever routine computes
    it, in the weight's memory order (a column-major weight: kernels.column_major_gradient)."""
    a = np.maximum(random_array(seed, (1, inner)), 0).astype(np.float32)  # relu-like: zeros too
    weight = Tensor(random_array(seed + 1, (inner, columns)).astype(np.float32, order=order), requires_grad=True)
    grad_out = random_array(seed + 2, (1, columns)).astype(np.float32)
    (Tensor(a) @ weight).backward(grad_out)
    assert weight.grad.dtype == np.float32
    assert weight.grad.flags.c_contiguous if order == "C" else weight.grad.flags.f_contiguous
    np.testing.assert_array_equal(weight.grad, a.T * grad_out)


@given(rows=st.integers(1, 6), inner=st.integers(2, 6), columns=st.integers(2, 5), relu=st.booleans(),
       bias=st.booleans(), seed=seeds)
def test_matmul_by_a_column_major_weight_equals_the_row_major_one(rows, inner, columns, relu, bias, seed):
    """A column-major weight (the layout of nn.Linear's and the seed networks': PyTorch's (out,
    in) in memory) runs the product as (Wᵀ Aᵀ)ᵀ and its gradient as (Gᵀ A)ᵀ (kernels.matrix_product,
    kernels.column_major_gradient): the same values as for the row-major copy, the gradient
    checked against finite differences, and the weight's gradient a column-major array of its
    own (kept by backward without a copy, and matching the weight for the optimizers' passes)."""
    a, weight = random_array(seed, (rows, inner)), random_array(seed + 1, (inner, columns))
    bias_array = random_array(seed + 2, (columns,)) if bias else None
    results = []
    for order in ("C", "F"):
        x, w = Tensor(a, requires_grad=True), Tensor(np.array(weight, order=order), requires_grad=True)
        b = None if bias_array is None else Tensor(bias_array, requires_grad=True)
        output = x.matmul(w, bias=b, relu=relu)
        (output * Tensor(random_array(seed + 3, output.shape))).sum().backward()
        results.append((output.data, x.grad, w.grad))
    (row_output, row_x_grad, row_w_grad), (column_output, column_x_grad, column_w_grad) = results
    np.testing.assert_allclose(column_output, row_output, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(column_x_grad, row_x_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(column_w_grad, row_w_grad, rtol=1e-12, atol=1e-15)
    assert kernels.column_major(column_w_grad) and column_w_grad.base is None
    inputs = [a, np.asfortranarray(weight)] + ([bias_array] if bias else [])
    assert gradcheck(lambda x, w, *b: x.matmul(w, bias=b[0] if b else None, relu=relu), inputs)


@st.composite
def shape_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    axis = draw(
        st.none()
        | st.integers(-len(shape), len(shape) - 1)
        | st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).flatmap(
            lambda axes: st.tuples(*[st.sampled_from([axis, axis - len(shape)]) for axis in axes]))
    )  # a tuple's axes spelled non-negative or negative, each drawn
    return shape, axis


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@given(case=shape_and_axes(), keepdims=st.booleans(), seed=seeds)
def test_reduction_vjp(reduction, case, keepdims, seed):
    shape, axis = case
    x = random_array(seed, shape)
    assert gradcheck(lambda t: getattr(t, reduction)(axis=axis, keepdims=keepdims), [x])
    expected = getattr(x, reduction)(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(getattr(Tensor(x), reduction)(axis=axis, keepdims=keepdims).data, expected)


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_reshape_and_flatten_vjp(shape, seed, data):
    x = random_array(seed, shape)
    order = data.draw(st.permutations(list(shape)))
    assert gradcheck(lambda t: t.reshape(*order[:-1], -1) * t.reshape(order), [x])
    start = data.draw(st.integers(0, len(shape) - 1))
    flat = Tensor(x).flatten(start_dim=start)
    assert flat.shape == shape[:start] + (int(np.prod(shape[start:])),)
    assert gradcheck(lambda t: t.flatten(start) * 3.0, [x])


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_pad_vjp(shape, seed, data):
    widths = tuple(data.draw(st.tuples(st.integers(0, 2), st.integers(0, 2))) for _ in shape)
    x = random_array(seed, shape)
    padded = Tensor(x).pad(widths)
    np.testing.assert_array_equal(padded.data, np.pad(x, widths))
    assert gradcheck(lambda t: t.pad(widths), [x])
    for numpy_style in (1, (1, 2), ((2, 0),)):  # broadcast to every axis, as np.pad does
        np.testing.assert_array_equal(Tensor(x).pad(numpy_style).data, np.pad(x, numpy_style))


# -- convolution and pooling ----------------------------------------------------------------


@st.composite
def conv_cases(draw):
    """Shapes and options of a conv2d: stride, padding, dilation and groups all drawn."""
    groups = draw(st.integers(1, 3))
    batch, channels, out_channels = draw(st.integers(1, 3)), groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    reach = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    height = draw(st.integers(max(1, reach[0] - 2 * padding[0]), reach[0] + 5))
    width = draw(st.integers(max(1, reach[1] - 2 * padding[1]), reach[1] + 5))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (batch, channels, height, width), (out_channels, channels // groups) + kernel, options


@given(case=conv_cases(), seed=seeds)
def test_conv2d_vjp(case, seed):
    x_shape, weight_shape, options = case
    x, weight = random_array(seed, x_shape), random_array(seed + 1, weight_shape)
    assert gradcheck(lambda t, w: t.conv2d(w, **options), [x, weight])


@given(case=conv_cases(), seed=seeds)
def test_conv2d_and_its_gradients_match_the_loop_specification(case, seed):
    """The output and both gradients (col2im's input gradient, the weight gradient's GEMMs)
    equal the definition summed term by term, for every drawn geometry."""
    x_shape, weight_shape, options = case
    x, weight = Tensor(random_array(seed, x_shape), requires_grad=True), Tensor(random_array(seed + 1, weight_shape), requires_grad=True)
    output = x.conv2d(weight, **options)
    grad_out = random_array(seed + 2, output.shape)
    output.backward(grad_out)
    expected_output, expected_grad_x, expected_grad_weight = conv2d_loops(x.data, weight.data, **options, grad_out=grad_out)
    np.testing.assert_allclose(output.data, expected_output, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(x.grad, expected_grad_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(weight.grad, expected_grad_weight, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("short_row_windows", [0, 10**9])
@given(case=conv_cases(), seed=seeds)
def test_conv2d_input_gradient_by_either_col2im_path_matches_the_loop_specification(short_row_windows, case, seed):
    """kernels.col2im adds each kernel row's gradient as strided blocks, or, for output rows
    of fewer than SHORT_ROW_WINDOWS windows, scatters all of Wmᵀ G' at cached places with
    np.add.at: forced each way here (0: never scatter; 10**9: always), the input gradient
    equals the definition for every drawn geometry (strides, dilations, groups)."""
    x_shape, weight_shape, options = case
    x, weight = Tensor(random_array(seed, x_shape), requires_grad=True), Tensor(random_array(seed + 1, weight_shape))
    output = x.conv2d(weight, **options)
    grad_out = random_array(seed + 2, output.shape)
    saved = kernels.SHORT_ROW_WINDOWS
    kernels.SHORT_ROW_WINDOWS = short_row_windows
    try:
        output.backward(grad_out)
    finally:
        kernels.SHORT_ROW_WINDOWS = saved
    _, expected_grad_x, _ = conv2d_loops(x.data, weight.data, **options, grad_out=grad_out)
    np.testing.assert_allclose(x.grad, expected_grad_x, rtol=1e-10, atol=1e-10)


def test_col2im_scatters_only_columns_small_enough_to_cache_their_places():
    """A conv with short output rows (here 8 windows a row) but more than SCATTER_ENTRIES
    column entries keeps the strided adds: no index of its columns' places is built and
    cached (kernels.column_places), so the cache stays bounded; a small one is scattered."""
    rng = np.random.default_rng(0)
    misses = kernels.column_places.cache_info().misses
    x = Tensor(rng.standard_normal((1, 64, 64, 8)), requires_grad=True)
    x.conv2d(Tensor(rng.standard_normal((4, 64, 3, 3))), padding=1).sum().backward()
    assert 9 * 64 * 64 * 8 > kernels.SCATTER_ENTRIES
    assert kernels.column_places.cache_info().misses == misses
    small = Tensor(rng.standard_normal((1, 7, 5, 7)), requires_grad=True)  # (7 channels: no drawn case has them cached)
    small.conv2d(Tensor(rng.standard_normal((2, 7, 3, 3))), padding=(1, 2)).sum().backward()
    assert kernels.column_places.cache_info().misses == misses + 1


def test_conv2d_backward_leaves_numpys_ufunc_buffer_size_as_it_found_it():
    """col2im runs its adds with small ufunc buffers (kernels.ufunc_buffer_of): the caller's
    own setting is back afterwards, also when the backward fails inside that block."""
    rng = np.random.default_rng(0)
    x, weight = Tensor(rng.standard_normal((4, 3, 8, 8)), requires_grad=True), Tensor(rng.standard_normal((5, 3, 3, 3)))
    saved = np.setbufsize(4096)
    try:
        x.conv2d(weight, padding=1).sum().backward()
        assert np.getbufsize() == 4096
        with pytest.raises(ZeroDivisionError), kernels.ufunc_buffer_of(kernels.STRIDED_ADD_BUFFER_ELEMENTS):
            assert np.getbufsize() == kernels.STRIDED_ADD_BUFFER_ELEMENTS
            raise ZeroDivisionError
        assert np.getbufsize() == 4096
    finally:
        np.setbufsize(saved)


@pytest.mark.parametrize("outer_product_row", [1, 10**9])
@pytest.mark.parametrize("order", ["C", "F"])
@given(rows=st.integers(1, 40), columns=st.integers(1, 40), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_batch_of_one_weight_gradient_by_either_outer_product_path_is_every_product(outer_product_row, rows, columns,
                                                                                    dtype, seed, order):
    """At batch 1, matmul's weight gradient Aᵀ G is the outer product of a column and a row,
    made by np.dot or, for rows of OUTER_PRODUCT_ROW numbers or more, a broadcast multiply with
    small ufunc buffers (kernels.outer_product): forced each way (1: always the multiply; 10**9:
    always np.dot), it holds exactly a[0, i] · g[0, j] in the weight's dtype and memory order
    (strided operands too), and the caller's ufunc buffer size is back afterwards."""
    a = Tensor(random_array(seed, (1, 2 * rows)).astype(dtype)[:, ::2])  # (strided views: the result has the weight's order anyway)
    weight = Tensor(random_array(seed + 1, (rows, columns)).astype(dtype, order=order), requires_grad=True)
    grad_out = random_array(seed + 2, (1, 3 * columns)).astype(dtype)[:, ::3]
    saved_row, saved_buffer = kernels.OUTER_PRODUCT_ROW, np.setbufsize(4096)
    kernels.OUTER_PRODUCT_ROW = outer_product_row
    try:
        a.matmul(weight).backward(grad_out)
        assert np.getbufsize() == 4096
    finally:
        kernels.OUTER_PRODUCT_ROW = saved_row
        np.setbufsize(saved_buffer)
    assert weight.grad.dtype == dtype
    assert weight.grad.flags.c_contiguous if order == "C" else weight.grad.flags.f_contiguous
    np.testing.assert_array_equal(weight.grad, a.data[0][:, None] * grad_out[0][None, :])


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_weight_gradient_over_a_long_batch_equals_the_definition(groups):
    """A small filter bank over many windows (here 21·28·28 ≥ 16,384) takes the weight gradient's
    per-output-row path in kernels.weight_gradient: dw[o,c,p,q] = Σ_{n,i,j} G[n,o,i,j] xp[n,c,i+p,j+q]."""
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((21, 2, 28, 28)), rng.standard_normal((4, 2 // groups, 3, 3))
    grad_out = rng.standard_normal((21, 4, 28, 28))
    weight_tensor = Tensor(weight, requires_grad=True)
    Tensor(x).conv2d(weight_tensor, padding=1, groups=groups).backward(grad_out)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
    per_group = 4 // groups
    expected = np.concatenate([
        np.einsum("noij,ncijpq->ocpq", grad_out[:, g * per_group : (g + 1) * per_group],
                  windows[:, g * (2 // groups) : (g + 1) * (2 // groups)])
        for g in range(groups)])
    np.testing.assert_allclose(weight_tensor.grad, expected, rtol=1e-10, atol=1e-9)


def test_depthwise_conv2d_mixes_no_channels():
    """groups = C: each output channel sees only its own input channel."""
    x = np.zeros((1, 3, 4, 4))
    x[0, 1] = 1.0
    weight = np.ones((3, 1, 3, 3))
    output = Tensor(x).conv2d(Tensor(weight), padding=1, groups=3).data
    assert not output[0, 0].any() and not output[0, 2].any()
    assert output[0, 1, 1, 1] == 9.0


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    height = draw(st.integers(kernel[0], kernel[0] + 6))
    width = draw(st.integers(kernel[1], kernel[1] + 6))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width), kernel, stride


@given(case=pool_cases(), seed=seeds)
def test_max_pool2d_vjp_without_ties(case, seed):
    shape, kernel, stride = case
    assert gradcheck(lambda t: t.max_pool2d(kernel, stride), [distinct_values(seed, shape)])


@given(case=pool_cases(), seed=seeds, levels=st.integers(1, 4), nans=st.integers(0, 3))
def test_max_pool2d_matches_the_loop_specification_ties_included(case, seed, levels, nans):
    """Few distinct levels make many exact ties, as the zeros of a ReLU'd MNIST image do; a
    few NaNs (as a diverged training makes) are routed as PyTorch does, to a window's last NaN."""
    shape, kernel, stride = case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=shape).astype(np.float64)
    x.reshape(-1)[rng.integers(0, x.size, size=nans)] = np.nan
    x = Tensor(x, requires_grad=True)
    output = x.max_pool2d(kernel, stride)
    grad_out = rng.standard_normal(output.shape)
    output.backward(grad_out)
    expected_output, expected_grad = max_pool2d_loops(x.data, kernel, stride, grad_out)
    np.testing.assert_array_equal(output.data, expected_output)
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-12, atol=1e-12)


@given(case=pool_cases(), seed=seeds)
def test_avg_pool2d_vjp_and_the_loop_specification(case, seed):
    shape, kernel, stride = case
    x = random_array(seed, shape)
    assert gradcheck(lambda t: t.avg_pool2d(kernel, stride), [x])
    tensor = Tensor(x, requires_grad=True)
    output = tensor.avg_pool2d(kernel, stride)
    grad_out = random_array(seed + 1, output.shape)
    output.backward(grad_out)
    expected_output, expected_grad = avg_pool2d_loops(x, kernel, stride, grad_out)
    np.testing.assert_allclose(output.data, expected_output, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tensor.grad, expected_grad, rtol=1e-12, atol=1e-12)


@given(conv=conv_cases(), pool=pool_cases(), seed=seeds)
def test_conv2d_and_pools_of_one_image_c_h_w_match_the_loop_specification_as_pytorch(conv, pool, seed):
    """One image (C,H,W), as PyTorch's conv2d, max_pool2d and avg_pool2d take it: the result of
    the batch of one, without its batch axis (O,Ho,Wo), with the gradients of that batch's image."""
    x_shape, weight_shape, options = conv
    image, weight = Tensor(random_array(seed, x_shape[1:]), requires_grad=True), Tensor(random_array(seed + 1, weight_shape), requires_grad=True)
    output = image.conv2d(weight, **options)
    grad_out = random_array(seed + 2, output.shape)
    output.backward(grad_out)
    expected_output, expected_grad_x, expected_grad_weight = conv2d_loops(image.data[None], weight.data, **options,
                                                                          grad_out=grad_out[None])
    assert output.shape == expected_output.shape[1:]
    np.testing.assert_allclose(output.data, expected_output[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(image.grad, expected_grad_x[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(weight.grad, expected_grad_weight, rtol=1e-10, atol=1e-10)
    shape, kernel, stride = pool
    for pool_name, loops in (("max_pool2d", max_pool2d_loops), ("avg_pool2d", avg_pool2d_loops)):
        image = Tensor(distinct_values(seed, shape[1:]), requires_grad=True)
        output = getattr(image, pool_name)(kernel, stride)
        grad_out = random_array(seed + 3, output.shape)
        output.backward(grad_out)
        expected_output, expected_grad = loops(image.data[None], kernel, stride, grad_out[None])
        assert output.shape == expected_output.shape[1:]
        np.testing.assert_allclose(output.data, expected_output[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(image.grad, expected_grad[0], rtol=1e-12, atol=1e-12)


def test_fused_conv2d_and_pad_max_pool2d_of_one_image_equal_the_batch_of_one():
    """The fused options (a per-position or per-channel bias, relu; the pool's zero padding and
    relu) and nn.Conv2d work on one C,H,W image as on a batch of one: the same numbers and gradients."""
    from tinygrad_cnn.nn import Conv2d as Conv2dLayer
    rng = np.random.default_rng(5)
    image = rng.standard_normal((2, 9, 9)) * 3
    weight, position_bias = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((4, 9, 9))

    def run(x: np.ndarray, bias: np.ndarray) -> tuple:
        x_tensor, bias_tensor = Tensor(x, requires_grad=True), Tensor(bias, requires_grad=True)
        y = x_tensor.conv2d(Tensor(weight), bias_tensor, padding=1, relu=True)
        y = y.pad_max_pool2d(((0, 1), (0, 1)), 3, stride=2, relu=True)
        y.backward(np.arange(y.data.size, dtype=float).reshape(y.shape) - 7)
        return y.data, x_tensor.grad, bias_tensor.grad

    for bias in (position_bias, position_bias[:, 0, 0]):
        one, batch = run(image, bias), run(image[None], bias)
        np.testing.assert_array_equal(one[0], batch[0][0])
        np.testing.assert_array_equal(one[1], batch[1][0])
        np.testing.assert_array_equal(one[2], batch[2])
    layer = Conv2dLayer(2, 3, 3, stride=2, dtype=np.float64)
    np.testing.assert_array_equal(layer(image).data, layer(image[None]).data[0])


def test_one_int_in_a_tuple_counts_for_both_axes_as_in_pytorch():
    """stride=(2,), padding=(1,), dilation=(2,) and kernel_size=(3,) are the ints repeated, as
    PyTorch's conv2d and max_pool2d take them (they were a TypeError); an empty tuple is not."""
    from tinygrad_cnn.nn import Conv2d as Conv2dLayer
    from tinygrad_cnn.nn import MaxPool2d as MaxPoolLayer
    rng = np.random.default_rng(7)
    x, weight = Tensor(rng.standard_normal((2, 3, 9, 9))), Tensor(rng.standard_normal((4, 3, 3, 3)))
    np.testing.assert_array_equal(x.conv2d(weight, stride=(2,), padding=[1], dilation=(2,)).data,
                                  x.conv2d(weight, stride=2, padding=1, dilation=2).data)
    np.testing.assert_array_equal(x.max_pool2d((3,), stride=[2]).data, x.max_pool2d(3, stride=2).data)
    assert Conv2dLayer(3, 4, (3,), stride=(2,), padding=(1,), dtype=np.float64)(x).shape == (2, 4, 5, 5)
    assert MaxPoolLayer((2,))(x).shape == (2, 3, 4, 4)
    with pytest.raises(TypeError, match=r"stride must be an int or a pair of ints, got \(\)"):
        x.conv2d(weight, stride=())
    with pytest.raises(ValueError, match=r"padding must be non-negative, got \(-1,\)"):
        x.conv2d(weight, padding=(-1,))


def test_max_pool2d_3x3_stride_2_overlapping_windows_add_up():
    x = Tensor(np.arange(25.0).reshape(1, 1, 5, 5), requires_grad=True)
    x.max_pool2d(3, 2).sum().backward()
    expected = np.zeros((5, 5))
    expected[2, 2] = expected[2, 4] = expected[4, 2] = expected[4, 4] = 1
    np.testing.assert_array_equal(x.grad[0, 0], expected)


# -- softmax family --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), seed=seeds, data=st.data())
def test_softmax_family_vjp(name, shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = random_array(seed, shape, -5, 5)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis), [x])
    exponentials = np.exp(x - x.max(axis=axis, keepdims=True))
    softmax = exponentials / exponentials.sum(axis=axis, keepdims=True)
    expected = softmax if name == "softmax" else np.log(softmax)
    np.testing.assert_allclose(getattr(Tensor(x), name)(axis=axis).data, expected, rtol=1e-10, atol=1e-12)


@given(batch=st.integers(1, 6), classes=st.integers(1, 6), seed=seeds)
def test_cross_entropy_vjp_and_value(batch, classes, seed):
    logits = random_array(seed, (batch, classes), -5, 5)
    labels = np.random.default_rng(seed).integers(0, classes, size=batch)
    assert gradcheck(lambda t: t.cross_entropy(labels), [logits])
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_probabilities[np.arange(batch), labels].mean()
    np.testing.assert_allclose(Tensor(logits).cross_entropy(labels).item(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy"])
def test_softmax_family_is_finite_for_huge_float32_logits(name):
    logits = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5e3, 5e3, -1e4]], dtype=np.float32),
                    requires_grad=True)
    output = logits.cross_entropy(np.array([1, 2, 0])) if name == "cross_entropy" else getattr(logits, name)()
    (output.sum() if output.ndim else output).backward()
    assert output.dtype == np.float32 and logits.grad.dtype == np.float32
    assert np.all(np.isfinite(output.data)) and np.all(np.isfinite(logits.grad))


@given(batch=st.integers(1, 4), classes=st.integers(1, 5), seed=seeds)
def test_nll_loss_vjp_and_log_softmax_then_nll_loss_is_cross_entropy(batch, classes, seed):
    """nll_loss(x, t) = −(1/N) Σₙ x[n, tₙ], as PyTorch's F.nll_loss; on log_softmax it is the
    (fused) cross_entropy, in value and gradient."""
    rng = np.random.default_rng(seed)
    x, labels = random_array(seed, (batch, classes)), rng.integers(0, classes, batch)
    assert gradcheck(lambda t: t.nll_loss(labels), [x])
    np.testing.assert_allclose(Tensor(x).nll_loss(labels).data, -x[np.arange(batch), labels].mean(), rtol=1e-12)
    composed, fused = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    composed_loss, fused_loss = composed.log_softmax(axis=1).nll_loss(labels), fused.cross_entropy(labels)
    composed_loss.backward()
    fused_loss.backward()
    np.testing.assert_allclose(composed_loss.data, fused_loss.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(composed.grad, fused.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor(np.zeros((2, 3))).nll_loss([0, 3]), ValueError, r"nll_loss label 3 is out of range for 3 classes \(0..2\)"),
    (lambda: Tensor(np.zeros(3)).nll_loss([0]), ValueError, r"nll_loss needs 2-D log-probabilities \(N,K\), got shape \(3,\)"),
    (lambda: Tensor(np.zeros((2, 3))).nll_loss([0]), ValueError, r"nll_loss needs one label per row of log-probabilities \(2, 3\)"),
    (lambda: Tensor(np.zeros((2, 3))).nll_loss([0.5, 1]), TypeError, r"nll_loss labels must be integers"),
    (lambda: Tensor(np.zeros((2, 3), dtype=np.int64)).nll_loss([0, 1]), TypeError, r"nll_loss needs float log-probabilities"),
])
def test_nll_loss_names_what_is_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()


def binary_cross_entropy_of_logits(x, target):
    """−t log σ(x) − (1 − t) log(1 − σ(x)), written out directly (fine for moderate x)."""
    probability = 1 / (1 + np.exp(-x))
    return -target * np.log(probability) - (1 - target) * np.log(1 - probability)


@pytest.mark.parametrize("name, per_element", [
    ("mse_loss", lambda x, t: (x - t) ** 2), ("l1_loss", lambda x, t: np.abs(x - t)),
    ("binary_cross_entropy_with_logits", binary_cross_entropy_of_logits),
])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(shape=small_shapes, seed=seeds)
def test_elementwise_losses_match_their_formula_and_finite_differences_for_both_inputs(
        name, per_element, reduction, shape, seed):
    x, target = random_array(seed, shape), random_array(seed + 1, shape)
    if name == "binary_cross_entropy_with_logits":
        target = (target + 2) / 4  # (probabilities)
    losses = per_element(x, target)
    expected = {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]
    np.testing.assert_allclose(getattr(Tensor(x), name)(target, reduction=reduction).data, expected, rtol=1e-12)
    assert gradcheck(lambda t, u: getattr(t, name)(u, reduction=reduction), [x, target])


def test_l1_loss_gradient_at_equal_values_is_zero_and_targets_promote_as_in_pytorch():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    x.l1_loss(np.array([1.0, 0.0, 5.0]), reduction="sum").backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, -1.0])  # sign(0) = 0, as PyTorch's
    assert Tensor(np.float32(2.0)).mse_loss(3).item() == 1.0  # a 0-d input takes a number
    assert Tensor(np.float32(2.0)).mse_loss(3).dtype == np.float32  # a number takes the input's dtype
    assert Tensor(np.ones(3, np.float32)).mse_loss(np.zeros(3)).dtype == np.float64  # float32 with float64 arrays
    small = Tensor(np.array([1, 2], np.uint8))  # integers are computed in float32: a uint8 1 − 3 would wrap to 254
    assert small.l1_loss(np.array([3, 0], np.uint8)).item() == 2.0 and small.mse_loss(np.array([3, 0])).dtype == np.float32


def test_binary_cross_entropy_with_logits_takes_any_logit_without_overflow_and_its_gradient_is_sigmoid_minus_target():
    logits = Tensor(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]), requires_grad=True)
    targets = np.array([0.0, 1.0, 0.25, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses = logits.binary_cross_entropy_with_logits(targets, reduction="none")
        losses.sum().backward()
    np.testing.assert_allclose(losses.data, [0.0, 30.0, np.log(2), 30.0, 0.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(logits.grad, (1 + np.tanh(logits.data / 2)) / 2 - targets, rtol=1e-12, atol=1e-12)  # σ − t


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor(np.zeros((4, 1))).mse_loss(np.zeros(4)), ValueError,
     r"mse_loss: the target has shape \(4,\), the input \(4, 1\); they must be equal"),
    (lambda: Tensor(np.zeros(3)).l1_loss(0.0), ValueError, r"l1_loss: the target has shape \(\), the input \(3,\)"),
    (lambda: Tensor(np.zeros(3)).mse_loss(np.zeros(3), reduction="avg"), ValueError,
     r"mse_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
])
def test_regression_losses_name_what_is_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_pytorchs_other_names_view_clamp_numel_and_dim():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.view(3, 2).shape == (3, 2) and x.view(-1).shape == (6,) and x.view((1, 6)).shape == (1, 6)
    np.testing.assert_array_equal(x.clamp(1.0, 4.0).data, np.clip(x.data, 1.0, 4.0))
    np.testing.assert_array_equal(x.clamp(min=2.5).data, np.maximum(x.data, 2.5))
    x.view(6).clamp(max=3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 1, 1], [1, 0, 0]])  # clip's gradient: the bound itself passes
    assert x.numel() == 6 and x.dim() == 2 and Tensor(1.0).dim() == 0


def test_nll_loss_of_an_empty_batch_is_nan_and_of_a_certain_prediction_positive_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(Tensor(np.zeros((0, 3), dtype=np.float32)).nll_loss(np.zeros(0, dtype=int)).data)
        loss = Tensor(np.zeros((2, 3), dtype=np.float32)).nll_loss([0, 2])
    assert loss.data == 0 and not np.signbit(loss.data) and loss.dtype == np.float32


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    logits = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, -1.0]])
    tensor = Tensor(logits, requires_grad=True)
    tensor.cross_entropy([2, 0]).backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(tensor.grad, (softmax - np.eye(3)[[2, 0]]) / 2)


@pytest.mark.parametrize("logits", [[[3.0]], [[0.0, -np.inf, -np.inf]], [[5.0, -np.inf], [-np.inf, 1.0]]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_of_a_certain_prediction_is_positive_zero_as_pytorch(logits, dtype):
    """A loss of exactly 0 (one class, or every other logit −inf) is +0, not −0 (the negated
    mean of zeros), as PyTorch gives it: a printed or logged loss reads 0.0, not -0.0."""
    loss = Tensor(np.array(logits, dtype=dtype)).cross_entropy(np.zeros(len(logits), dtype=int) if len(logits) == 1 else [0, 1])
    assert loss.data == 0 and not np.signbit(loss.data) and loss.dtype == dtype

# -- dtypes ----------------------------------------------------------------------------------


float32_cases = {
    "add": lambda x: x + 1.5,
    "div": lambda x: 2 / (x * x + 1),
    "matmul": lambda x: x.reshape(2, -1) @ Tensor(np.ones((8, 3), dtype=np.float32)),
    "sum": lambda x: x.sum(axis=1),
    "mean": lambda x: x.mean(),
    "pad": lambda x: x.pad(((0, 0), (0, 0), (1, 1), (0, 1))),
    "conv2d": lambda x: x.conv2d(Tensor(np.ones((3, 2, 2, 2), dtype=np.float32)), padding=1),
    "max_pool2d": lambda x: x.max_pool2d(2, 1),
    "relu": lambda x: x.relu(),
    "softmax": lambda x: x.softmax(axis=1),
    "log_softmax": lambda x: x.log_softmax(axis=1),
    "cross_entropy": lambda x: x.reshape(2, 8).cross_entropy([1, 7]),
}


@pytest.mark.parametrize("name", sorted(float32_cases))
def test_float32_stays_float32_forward_and_backward(name):
    x = Tensor(np.random.default_rng(0).standard_normal((2, 2, 2, 2)).astype(np.float32), requires_grad=True)
    output = float32_cases[name](x)
    assert output.dtype == np.float32
    output.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


@given(sizes=st.tuples(st.integers(2, 5), st.integers(2, 5), st.integers(1, 4)), seed=seeds)
def test_matmul_gradient_of_a_transposed_view_equals_the_contiguous_one(sizes, seed):
    rows, inner, columns = sizes
    a, b = random_array(seed, (rows, inner)), random_array(seed + 1, (inner, columns))
    grads = []
    for layout in (np.ascontiguousarray, np.asfortranarray):
        x = Tensor(layout(a), requires_grad=True)
        (x @ Tensor(b)).sum().backward()
        grads.append(x.grad)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)
    assert gradcheck(lambda x, y: x @ y, [np.asfortranarray(a), b])


def test_integer_inputs_give_float32_for_float_valued_ops():
    """avg_pool2d, cross_entropy, softmax, log_softmax and mean of an integer or bool tensor
    are float32, as exp or log (integer arithmetic used to truncate them, to 0 for the pool)."""
    pooled = Tensor(np.arange(16).reshape(1, 1, 4, 4)).avg_pool2d(2)
    assert pooled.dtype == np.float32
    np.testing.assert_array_equal(pooled.data, [[[[2.5, 4.5], [10.5, 12.5]]]])
    loss = Tensor([[1, 2], [3, 4]]).cross_entropy([0, 1])
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), np.log1p(np.e) - 0.5, rtol=1e-6)  # (1.3133 + 0.3133) / 2
    logits = Tensor([1, 2, 3])
    expected = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    assert logits.softmax().dtype == np.float32 and logits.log_softmax().dtype == np.float32
    np.testing.assert_allclose(logits.softmax().data, expected, rtol=1e-6)
    np.testing.assert_allclose(logits.log_softmax().data, np.log(expected), rtol=1e-6)
    assert logits.mean().dtype == np.float32 and logits.mean().item() == 2.0
    assert Tensor([True, False, False, False]).mean(axis=0).dtype == np.float32
    assert Tensor([True, False, False, False]).mean().item() == 0.25


def test_matmul_and_conv2d_give_an_integer_operand_the_floats_dtype():
    assert (Tensor([[1, 2]]) @ Tensor([[1.0], [2.0]])).dtype == np.float32
    assert (Tensor([[1.0, 2.0]]) @ Tensor([[1], [2]])).dtype == np.float32
    assert (Tensor([1, 2]) @ Tensor([1.0, 2.0])).dtype == np.float32
    assert (Tensor([[1, 2]]) @ Tensor([[1], [2]])).dtype == np.int64  # int @ int stays int, as numpy and torch
    integers = np.ones((1, 1, 4, 4), dtype=np.int64)
    assert Tensor(integers).conv2d(Tensor.ones(2, 1, 3, 3)).dtype == np.float32
    assert Tensor.zeros(1, 1, 4, 4).conv2d(Tensor(np.ones((1, 1, 3, 3), dtype=np.int64))).dtype == np.float32
    assert Tensor.zeros(1, 1, 4, 4).conv2d(Tensor.ones(2, 1, 3, 3), bias=np.array([1, 2])).dtype == np.float32
    only_the_bias_float = Tensor(integers).conv2d(Tensor(np.ones((2, 1, 3, 3), dtype=np.int64)), bias=Tensor([0.5, 1.0]))
    assert only_the_bias_float.dtype == np.float32
    np.testing.assert_array_equal(only_the_bias_float.data[0, :, 0, 0], [9.5, 10.0])
    weight = Tensor.ones(2, 1, 3, 3, requires_grad=True)
    Tensor(integers).conv2d(weight).sum().backward()
    assert weight.grad.dtype == np.float32 and np.all(weight.grad == 4)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((2, 0), -1), ((0, 3), -1), ((0, 3), 0)])
def test_softmax_family_of_an_empty_tensor_is_empty(name, shape, axis):
    for dtype in (np.float32, np.float64):
        x = Tensor(np.zeros(shape, dtype=dtype), requires_grad=True)
        output = getattr(x, name)(axis=axis)
        assert output.shape == shape and output.dtype == dtype
        output.sum().backward()
        assert x.grad.shape == shape


def test_cross_entropy_of_an_empty_batch_is_nan_without_warnings_as_pytorch():
    """The mean over no examples is NaN (PyTorch's answer too); numpy's mean and the
    backward's G / 0 used to add RuntimeWarnings."""
    logits = Tensor(np.zeros((0, 10), dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = logits.cross_entropy(np.zeros(0, dtype=np.int64))
        loss.backward()
    assert np.isnan(loss.item()) and loss.dtype == np.float32
    assert logits.grad.shape == (0, 10)
    no_classes = Tensor(np.zeros((0, 0), dtype=np.float32), requires_grad=True)  # not numpy's max error
    loss = no_classes.cross_entropy(np.zeros(0, dtype=np.int64))
    loss.backward()
    assert np.isnan(loss.item()) and no_classes.grad.shape == (0, 0)
