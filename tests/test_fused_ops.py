"""The fused options SeedCNN uses (conv2d with bias and relu, zero-padded max pool with relu,
matmul with bias and relu):
hand-written VJPs against float64 finite differences, and values and gradients equal to the
separate primitives they replace (ties included)."""

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import max_pool2d_loops
from test_ops import conv_cases as plain_conv_cases

from tinygrad_cnn import Tensor, gradcheck, kernels, no_grad, ops
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import get_parameters

seeds = st.integers(0, 2**32 - 1)


def conv_bias_relu(x: Tensor, weight: Tensor, bias: Tensor, options: dict, relu: bool = True) -> Tensor:
    return x.conv2d(weight, bias, relu=relu, **options)


def padded_max_pool(x: Tensor, kernel, stride, padding, relu: bool = False) -> Tensor:
    return x.pad_max_pool2d(padding, kernel, stride=stride, relu=relu)


@st.composite
def conv_cases(draw):
    """test_ops' conv cases, plus a bias: per position (O,Ho,Wo) or per channel (O,)."""
    x_shape, weight_shape, options = draw(plain_conv_cases())
    output_shape = Tensor(np.zeros(x_shape)).conv2d(Tensor(np.zeros(weight_shape)), **options).shape
    bias_shape = draw(st.sampled_from([output_shape[1:], output_shape[1:2]]))
    return x_shape, weight_shape, bias_shape, options


def random_case(seed, x_shape, weight_shape, bias_shape):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape), rng.standard_normal(weight_shape), rng.standard_normal(bias_shape)


@pytest.mark.parametrize("relu", [True, False])
@given(case=conv_cases(), seed=seeds)
def test_conv2d_bias_relu_vjp(relu, case, seed):
    x_shape, weight_shape, bias_shape, options = case
    arrays = random_case(seed, x_shape, weight_shape, bias_shape)
    assert gradcheck(lambda x, w, b: conv_bias_relu(x, w, b, options, relu), list(arrays))


@given(case=plain_conv_cases(), seed=seeds)
def test_conv2d_relu_without_bias_vjp(case, seed):
    """relu fused in with no bias input: the op's backward returns two gradients, not three."""
    x_shape, weight_shape, options = case
    rng = np.random.default_rng(seed)
    x, weight = rng.standard_normal(x_shape), rng.standard_normal(weight_shape)
    assert gradcheck(lambda t, w: t.conv2d(w, relu=True, **options), [x, weight])
    np.testing.assert_allclose(Tensor(x).conv2d(Tensor(weight), relu=True, **options).data,
                               np.maximum(Tensor(x).conv2d(Tensor(weight), **options).data, 0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("relu", [True, False])
@given(case=conv_cases(), seed=seeds)
def test_conv2d_bias_relu_equals_the_unfused_ops(relu, case, seed):
    x_shape, weight_shape, bias_shape, options = case
    arrays = random_case(seed, x_shape, weight_shape, bias_shape)
    results = []
    for fused in (True, False):
        x, weight, bias = (Tensor(array, requires_grad=True) for array in arrays)
        if fused:
            output = conv_bias_relu(x, weight, bias, options, relu)
        else:
            output = x.conv2d(weight, **options) + (bias if bias.ndim == 3 else bias.reshape(-1, 1, 1))
            output = output.relu() if relu else output
        grad_out = np.random.default_rng(seed + 1).standard_normal(output.shape)
        output.backward(grad_out)
        results.append((output.data, x.grad, weight.grad, bias.grad))
    for fused_array, plain_array in zip(*results):
        assert fused_array.shape == plain_array.shape
        np.testing.assert_allclose(fused_array, plain_array, rtol=1e-10, atol=1e-10)


@st.composite
def pool_cases(draw):
    """Kernel, stride and each of the four paddings drawn; a padding may reach the kernel's
    size, so whole windows (and whole phase-plane rows) can lie in the padding."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    height = draw(st.integers(max(1, kernel[0] - sum(padding[0])), kernel[0] + 5))
    width = draw(st.integers(max(1, kernel[1] - sum(padding[1])), kernel[1] + 5))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width), kernel, stride, padding


@pytest.mark.parametrize("relu", [False, True])
@given(case=pool_cases(), seed=seeds)
def test_padded_max_pool_vjp_without_ties(relu, case, seed):
    shape, kernel, stride, padding = case
    size = int(np.prod(shape))
    # distinct values, all away from the padding's 0, some negative so the padding can win
    x = (np.random.default_rng(seed).permutation(size) + 1.0) * 0.01 * np.where(np.arange(size) % 3, 1, -1)
    assert gradcheck(lambda t: padded_max_pool(t, kernel, stride, padding, relu), [x.reshape(shape)])


@pytest.mark.parametrize("relu", [False, True])
@given(case=pool_cases(), seed=seeds, levels=st.integers(1, 4), nans=st.integers(0, 3))
def test_padded_max_pool_equals_pad_then_pool_ties_included(relu, case, seed, levels, nans):
    """Few levels (from -1 up, so 0 = the padding value is one of them) make many ties, and
    a few NaNs go to their window's last NaN (PyTorch's rule; relu passes NaN on, as PyTorch's);
    the loop specification runs on the relu'd input when the op applies relu."""
    shape, kernel, stride, padding = case
    rng = np.random.default_rng(seed)
    values = rng.integers(-1, levels - 1, size=shape).astype(np.float64)
    values.reshape(-1)[rng.integers(0, values.size, size=nans)] = np.nan
    x = Tensor(values, requires_grad=True)
    output = padded_max_pool(x, kernel, stride, padding, relu)
    grad_out = rng.standard_normal(output.shape)
    output.backward(grad_out)
    widths = ((0, 0), (0, 0)) + padding
    pool_input = np.maximum(x.data, 0) if relu else x.data
    expected_output, expected_grad = max_pool2d_loops(np.pad(pool_input, widths), kernel, stride, grad_out)
    np.testing.assert_array_equal(output.data, expected_output)
    height, width = shape[2:]
    expected_grad = expected_grad[:, :, padding[0][0] : padding[0][0] + height, padding[1][0] : padding[1][0] + width]
    if relu:  # PyTorch's relu passes the gradient on unless its output is <= 0 (a NaN passes)
        expected_grad = expected_grad * ~(x.data <= 0)
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-12, atol=1e-12)


@contextlib.contextmanager
def pool_blocks_of(block_bytes: int):
    """kernels.POOL_BLOCK_BYTES set to ``block_bytes`` inside; the cached pool geometries,
    which hold their blocks, are dropped on the way in and out."""
    saved = kernels.POOL_BLOCK_BYTES
    kernels.POOL_BLOCK_BYTES = block_bytes
    kernels.pool_windows.cache_clear()
    try:
        yield
    finally:
        kernels.POOL_BLOCK_BYTES = saved
        kernels.pool_windows.cache_clear()


@pytest.mark.parametrize("relu", [False, True])
@given(case=pool_cases(), seed=seeds, levels=st.integers(1, 4), nans=st.integers(0, 3),
       block_channels=st.integers(1, 2))
def test_padded_max_pool_by_channel_blocks_equals_the_loop_specification(relu, case, seed, levels, nans,
                                                                          block_channels):
    """The pool's passes run a block of channels at a time (kernels.max_pool); with blocks
    of one or two channels, the output and the gradient (ties and NaNs included) are still
    the loop specification's, and so is a pool without grad whose reused planes hold another
    input's values (a block's spare windows read the next block's planes before they are
    filled)."""
    shape, kernel, stride, padding = case
    shape = (shape[0], shape[1] + 2) + shape[2:]  # 3 to 5 channels: several blocks
    windows = kernels.PoolWindows(shape, kernel, stride, padding)
    with pool_blocks_of(block_channels * windows.stride[0] * windows.stride[1] * (windows.plane_size // shape[1]) * 8):
        assert len(kernels.pool_windows(shape, kernel, stride, padding).channel_blocks(8)) == -(-shape[1] // block_channels)
        check_padded_max_pool(shape, kernel, stride, padding, relu, seed, levels, nans)
    assert len(kernels.pool_windows(shape, kernel, stride, padding).channel_blocks(8)) == 1


def check_padded_max_pool(shape, kernel, stride, padding, relu, seed, levels, nans):
    """A pool without grad (after one that leaves NaNs in its reused planes) and one with
    grad against the loop specification, ties and NaNs included."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-1, levels - 1, size=shape).astype(np.float64)
    values.reshape(-1)[rng.integers(0, values.size, size=nans)] = np.nan
    widths = ((0, 0), (0, 0)) + padding
    pool_input = np.maximum(values, 0) if relu else values
    grad_out = rng.standard_normal(max_pool2d_loops(np.pad(pool_input, widths), kernel, stride).shape)
    expected_output, expected_grad = max_pool2d_loops(np.pad(pool_input, widths), kernel, stride, grad_out)
    height, width = shape[2:]
    expected_grad = expected_grad[:, :, padding[0][0] : padding[0][0] + height, padding[1][0] : padding[1][0] + width]
    if relu:
        expected_grad = expected_grad * ~(values <= 0)
    with no_grad():  # leave NaNs in the reused planes of this geometry
        padded_max_pool(Tensor(np.full(shape, np.nan)), kernel, stride, padding, relu)
        np.testing.assert_array_equal(padded_max_pool(Tensor(values), kernel, stride, padding, relu).data,
                                      expected_output)
    x = Tensor(values, requires_grad=True)
    output = padded_max_pool(x, kernel, stride, padding, relu)
    output.backward(grad_out)
    np.testing.assert_array_equal(output.data, expected_output)
    np.testing.assert_allclose(x.grad, expected_grad, rtol=1e-12, atol=1e-12)


def test_fused_ops_keep_float32_and_return_the_public_layout():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    weight = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    bias = Tensor(np.zeros((4, 6, 6), dtype=np.float32), requires_grad=True)
    pooled = padded_max_pool(conv_bias_relu(x, weight, bias, dict(padding=(1, 1))), (3, 3), (2, 2), ((0, 1), (0, 1)))
    assert pooled.shape == (2, 4, 3, 3) and pooled.dtype == np.float32
    pooled.sum().backward()
    for tensor in (x, weight, bias):
        assert tensor.grad.dtype == np.float32 and tensor.grad.shape == tensor.shape
    # parameters' gradients are plain C-order arrays (an optimizer's passes over a strided
    # view were several times slower), for every orientation of the weight-gradient GEMM
    for out_channels, in_channels in ((4, 3), (16, 1), (1, 1)):
        weight = Tensor(rng.standard_normal((out_channels, in_channels, 3, 3)), requires_grad=True)
        Tensor(rng.standard_normal((2, in_channels, 5, 5))).conv2d(weight, padding=1).sum().backward()
        assert weight.grad.flags.c_contiguous


def test_conv2d_relu_passes_the_gradient_of_a_nan_output_on_as_pytorch():
    """PyTorch's relu backward zeroes the gradient where its output is <= 0, and NaN <= 0 is
    false: a NaN output passes G on (it used to be dropped, as if the unit were off)."""
    x = Tensor(np.ones((1, 1, 2, 2), dtype=np.float32), requires_grad=True)
    weight = Tensor(np.full((1, 1, 1, 1), 2.0, dtype=np.float32), requires_grad=True)
    bias = Tensor(np.array([[[np.nan, -5.0], [1.0, 1.0]]], dtype=np.float32), requires_grad=True)
    x.conv2d(weight, bias, relu=True).backward(np.ones((1, 1, 2, 2), dtype=np.float32))
    np.testing.assert_array_equal(bias.grad, [[[1.0, 0.0], [1.0, 1.0]]])
    np.testing.assert_array_equal(x.grad, [[[[2.0, 0.0], [2.0, 2.0]]]])
    np.testing.assert_array_equal(weight.grad, [[[[3.0]]]])


def test_conv2d_relu_gives_a_dead_unit_zero_gradient_even_when_g_is_infinite():
    """sqrt after the relu: at a dead unit (output 0) G is inf, and the relu must give 0 there,
    as the unfused relu and PyTorch do (G times the mask gave inf · 0 = NaN)."""
    x = Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    weight = Tensor(np.ones((1, 1, 1, 1)), requires_grad=True)
    bias = Tensor(np.array([[[-5.0, 3.0], [-5.0, -1.0]]]), requires_grad=True)
    with np.errstate(divide="ignore"):
        x.conv2d(weight, bias, relu=True).sqrt().sum().backward()
        fused = [tensor.grad.copy() for tensor in (x, weight, bias)]
        for tensor in (x, weight, bias):
            tensor.grad = None
        (x.conv2d(weight) + bias).relu().sqrt().sum().backward()
    for fused_grad, tensor in zip(fused, (x, weight, bias)):
        np.testing.assert_array_equal(fused_grad, tensor.grad)
    np.testing.assert_array_equal(bias.grad, [[[0.0, 0.5 / np.sqrt(4.0)], [0.0, 0.0]]])


def test_max_pool_relu_drops_infinite_gradients_of_dead_windows_without_a_warning():
    """Windows whose output is 0 (relu) route nothing; their G may be inf and -inf (a sqrt or a
    log after the pool), and they used to meet in the scatter's discarded element with numpy's
    'invalid value' warning, though no gradient held a NaN."""
    x = Tensor(np.array([[[[-1.0, -2.0, 3.0, -1.0]] * 4]], dtype=np.float32), requires_grad=True)
    pooled = x.pad_max_pool2d(((0, 1), (0, 1)), 3, 2, relu=True)
    np.testing.assert_array_equal(pooled.data, [[[[3.0, 3.0], [3.0, 3.0]]]])
    dead = Tensor(-np.ones((1, 1, 4, 4), dtype=np.float32), requires_grad=True)
    dead_pooled = dead.pad_max_pool2d(((0, 1), (0, 1)), 3, 2, relu=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dead_pooled.backward(np.array([[[[np.inf, -np.inf], [-np.inf, np.inf]]]], dtype=np.float32))
        pooled.backward(np.array([[[[1.0, 2.0], [4.0, 8.0]]]], dtype=np.float32))
    np.testing.assert_array_equal(dead.grad, np.zeros((1, 1, 4, 4)))
    np.testing.assert_array_equal(x.grad[0, 0, :, 2], [1.0 + 2.0, 0.0, 4.0 + 8.0, 0.0])


@pytest.mark.parametrize("padding, relu", [(0, False), (1, True)])
def test_conv2d_on_an_empty_batch_gives_empty_outputs_and_zero_gradients(padding, relu):
    """N = 0 works as in PyTorch: an empty output, and parameter gradients of zeros."""
    x = Tensor(np.zeros((0, 2, 5, 5), dtype=np.float32), requires_grad=True)
    weight = Tensor(np.ones((3, 2, 3, 3), dtype=np.float32), requires_grad=True)
    size = 5 - 2 + 2 * padding
    bias = Tensor(np.ones((3, size, size), dtype=np.float32), requires_grad=True)
    y = x.conv2d(weight, bias, padding=padding, relu=relu)
    assert y.shape == (0, 3, size, size)
    y.sum().backward()
    assert x.grad.shape == (0, 2, 5, 5)
    np.testing.assert_array_equal(weight.grad, np.zeros((3, 2, 3, 3)))
    np.testing.assert_array_equal(bias.grad, np.zeros((3, size, size)))



@pytest.mark.parametrize("batch", [2, 30])  # 30: M = 30·28·28 ≥ 16,384, the weight gradient's per-row path
def test_conv2d_with_no_input_channels_gives_zeros_and_empty_gradients(batch):
    """C = 0 (weight O,0,kh,kw): every output is the bias alone (an empty sum), dx is empty and
    dweight empty. The backward once reshaped the empty weight and columns with a -1 axis,
    which numpy cannot infer for an empty array (ValueError: cannot reshape array of size 0)."""
    x = Tensor(np.zeros((batch, 0, 28, 28)), requires_grad=True)
    weight = Tensor(np.zeros((4, 0, 3, 3)), requires_grad=True)
    bias = Tensor(np.arange(4.0), requires_grad=True)
    y = x.conv2d(weight, bias, padding=1)
    np.testing.assert_array_equal(y.data, np.broadcast_to(np.arange(4.0)[:, None, None], (batch, 4, 28, 28)))
    y.sum().backward()
    assert x.grad.shape == (batch, 0, 28, 28) and weight.grad.shape == (4, 0, 3, 3)
    np.testing.assert_array_equal(bias.grad, np.full(4, batch * 28 * 28.0))


@pytest.mark.parametrize("relu", [False, True])
def test_max_pool_with_no_channels_has_an_empty_output_and_gradient(relu):
    """C = 0 with taps past the first plane place (kernel 3 > stride 1): the flat window count
    (planes' size minus the farthest tap's offset) came out negative and backward failed
    allocating a work buffer of negative length."""
    x = Tensor(np.zeros((2, 0, 5, 5)), requires_grad=True)
    y = padded_max_pool(x, (3, 3), (1, 1), ((1, 1), (0, 1)), relu)
    assert y.shape == (2, 0, 5, 4)
    y.sum().backward()
    assert x.grad.shape == (2, 0, 5, 5)

def test_two_forward_passes_before_backward_do_not_share_buffers():
    """Work buffers are reused between calls; nothing saved for backward may be one of them."""
    rng = np.random.default_rng(1)
    weight_array = rng.standard_normal((4, 2, 3, 3))
    inputs = [rng.standard_normal((2, 2, 5, 5)) for _ in range(2)]

    def run(x_array, weight):
        x = Tensor(x_array, requires_grad=True)
        bias = Tensor(np.zeros((4, 5, 5)), requires_grad=True)
        output = padded_max_pool(conv_bias_relu(x, weight, bias, dict(padding=(1, 1))), (3, 3), (2, 2), ((0, 1), (0, 1)))
        return x, output

    separate = []
    for x_array in inputs:
        weight = Tensor(weight_array, requires_grad=True)
        x, output = run(x_array, weight)
        output.sum().backward()
        separate.append((x.grad.copy(), weight.grad.copy()))
    weight = Tensor(weight_array, requires_grad=True)
    first, second = run(inputs[0], weight), run(inputs[1], weight)
    second[1].sum().backward()
    second_weight_grad = weight.grad.copy()
    first[1].sum().backward()
    np.testing.assert_allclose(second[0].grad, separate[1][0])
    np.testing.assert_allclose(second_weight_grad, separate[1][1])
    np.testing.assert_allclose(first[0].grad, separate[0][0])
    np.testing.assert_allclose(weight.grad, separate[0][1] + separate[1][1])


def fused_and_unfused_results(model_class, seed: int, dtype, images, labels, layers, biases) -> list[list]:
    """[loss, every parameter's gradient] of one step of ``model_class(fused=True)`` and of
    ``fused=False``, both with the given ``biases`` set on the named ``layers`` (not zeros: the
    bias gradients count)."""
    results = []
    for fused in (True, False):
        model = model_class(seed=seed, dtype=dtype, fused=fused)
        for name, bias in zip(layers, biases):
            getattr(model, name).bias.data[...] = bias
        loss = model(images).cross_entropy(labels)
        loss.backward()
        results.append([loss.data] + [param.grad for param in get_parameters(model)])
    return results


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seed_cnn_fused_forward_and_gradients_equal_the_unfused_network(dtype):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(3, 1, 28, 28)).astype(np.uint8)
    images[:, :, :10] = 0  # zero rows make ties in the pools, as in MNIST
    labels = np.array([1, 7, 3])
    biases = [rng.standard_normal(shape) * 0.1 for shape in ((16, 28, 28), (32, 14, 14), (64, 7, 7))]
    results = fused_and_unfused_results(SeedCNN, 3, dtype, images, labels, ("conv1", "conv2", "conv3"), biases)
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    for fused, plain in zip(*results):
        np.testing.assert_allclose(fused, plain, rtol=tolerance, atol=tolerance)
    with no_grad():
        assert SeedCNN(seed=3, dtype=dtype)(images).shape == (3, 10)


def test_work_buffers_of_the_same_shape_but_other_padding_are_not_mixed_up():
    """A 5x5 input unpadded and a 1x5 input padded by 2 rows share the padded shape 5x5."""
    rng = np.random.default_rng(4)
    weight, bias = rng.standard_normal((1, 1, 1, 1)), np.zeros(1)
    for x_shape, padding in (((1, 1, 5, 5), (0, 0)), ((1, 1, 1, 5), (2, 0))):
        x = rng.standard_normal(x_shape)
        fused = conv_bias_relu(Tensor(x), Tensor(weight), Tensor(bias), dict(padding=padding)).data
        plain = (Tensor(x).conv2d(Tensor(weight), padding=padding) + Tensor(bias)).relu().data
        np.testing.assert_array_equal(fused, plain)


def test_seed_cnn_inference_in_chunks_equals_one_batch():
    model = SeedCNN(seed=5)
    images = np.random.default_rng(5).integers(0, 256, size=(7, 1, 28, 28)).astype(np.uint8)
    with no_grad():
        whole = model(images).data
        model.inference_chunk = 3
        chunked = model(images).data
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)


def test_work_buffer_cache_stays_bounded():
    for size in range(1, 40):
        conv_bias_relu(Tensor(np.ones((size, 2, 30, 30))), Tensor(np.ones((3, 2, 3, 3))), Tensor(np.zeros(3)),
                       dict(padding=(1, 1)))
    assert sum(buffer.nbytes for buffer in kernels.scratch_buffers.values()) <= kernels.SCRATCH_BYTES


def test_padded_max_pool_without_grad_reuses_buffers_correctly():
    """The phase planes are a reused work buffer (with or without grad); results must not change."""
    rng = np.random.default_rng(6)
    for _ in range(3):
        x = rng.standard_normal((2, 3, 7, 7)) - 1.0  # mostly negative: the padding zeros win often
        with no_grad():
            fast = padded_max_pool(Tensor(x), (3, 3), (2, 2), ((0, 1), (1, 0))).data
        expected = Tensor(x).pad(((0, 0), (0, 0), (0, 1), (1, 0))).max_pool2d(3, 2).data
        np.testing.assert_array_equal(fast, expected)


def test_pool_work_buffers_of_the_same_shape_but_other_input_size_are_not_mixed_up():
    """Widths 2 and 1, padded by 1 on both sides, both make phase planes 2 wide."""
    for width, value in ((2, 1.0), (1, -1.0)):  # a stale 1 left in the planes would win over the padding
        x = np.full((1, 1, 1, width), value)
        with no_grad():
            fast = padded_max_pool(Tensor(x), (1, 3), (1, 2), ((0, 0), (1, 1))).data
        expected = Tensor(x).pad(((0, 0), (0, 0), (0, 0), (1, 1))).max_pool2d((1, 3), (1, 2)).data
        np.testing.assert_array_equal(fast, expected)


def test_pool_gradient_grids_of_the_same_shape_but_other_windows_are_not_mixed_up():
    """3x3/2 and 2x2/2 pools of a 28-wide input both work on a 14x14 window grid, with 13x13
    and 14x14 real windows. The 2x2 pool's work grids hold its counts (a NaN window's too)
    at row 13, a spare row for the 3x3 pool: they must not reach the 3x3 pool's gradient."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 28, 28))
    with_nan = x.copy()
    with_nan[0, 0, 27, 27] = np.nan
    Tensor(with_nan, requires_grad=True).max_pool2d(2, 2).backward(np.ones((2, 2, 14, 14)))
    grad_out = rng.standard_normal((2, 2, 13, 13))
    tensor = Tensor(x, requires_grad=True)
    tensor.max_pool2d(3, 2).backward(grad_out)
    _, expected = max_pool2d_loops(x, (3, 3), (2, 2), grad_out)
    # equal up to the order in which overlapping windows' shares are added
    np.testing.assert_allclose(tensor.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
def test_padded_max_pool_routes_ties_to_the_first_tap_and_relu_zeros_nowhere(relu):
    """Ties and relu in the pool VJP: in a constant window the first tap (row-major) gets all of G;
    with relu, windows whose maximum is relu'd to 0 pass no gradient at all."""
    value = 2.0 if relu else -3.0  # without relu a negative constant loses to nothing: no padding here
    x = Tensor(np.full((1, 1, 4, 4), value), requires_grad=True)
    padded_max_pool(x, (2, 2), (1, 1), ((0, 0), (0, 0)), relu).sum().backward()
    expected = np.zeros((4, 4))
    expected[:3, :3] = 1.0  # the top-left tap of each of the 3x3 windows
    np.testing.assert_array_equal(x.grad[0, 0], expected)
    if relu:
        zeros = Tensor(np.full((1, 1, 4, 4), -1.0), requires_grad=True)
        padded_max_pool(zeros, (2, 2), (1, 1), ((0, 0), (1, 1)), relu).sum().backward()
        np.testing.assert_array_equal(zeros.grad, np.zeros((1, 1, 4, 4)))


@pytest.mark.parametrize("relu", [False, True])
def test_max_pool_with_more_than_255_taps_routes_to_the_first_maximum(relu):
    """A window's count of taps from its first maximum on outgrows a byte at 256 taps: a 16x17
    kernel (272 taps) over few levels (many ties) must still route every G to the first tap
    that equals the window's maximum, as the loop specification does."""
    rng = np.random.default_rng(8)
    x = rng.integers(-1, 2, size=(2, 3, 18, 19)).astype(np.float64)
    padding = ((1, 0), (0, 1))
    tensor = Tensor(x, requires_grad=True)
    output = padded_max_pool(tensor, (16, 17), (1, 2), padding, relu)
    grad_out = rng.standard_normal(output.shape)
    output.backward(grad_out)
    pool_input = np.maximum(x, 0) if relu else x
    expected_output, expected_grad = max_pool2d_loops(np.pad(pool_input, ((0, 0), (0, 0)) + padding), (16, 17),
                                                      (1, 2), grad_out)
    np.testing.assert_array_equal(output.data, expected_output)
    expected_grad = expected_grad[:, :, 1:, :19] * ((x > 0) if relu else 1)
    np.testing.assert_allclose(tensor.grad, expected_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call, name", [
    (lambda x, w: x.conv2d(w, relu="no"), "conv2d"),
    (lambda x, w: x.conv2d(w, relu=None), "conv2d"),
    (lambda x, w: x.pad_max_pool2d(((0, 0), (0, 0)), 2, relu=1), "max_pool2d"),
    (lambda x, w: x.reshape(4, 4).matmul(w.reshape(3, 3), relu=0), "matmul"),
])
def test_a_relu_switch_must_be_a_bool(call, name):
    """relu="no" was read as a truth value: the relu ran."""
    x, weight = Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match=f"{name}: relu must be True or False, got"):
        call(x, weight)


# -- matmul with bias and relu: the seed's "matrix multiply and add" ------------------------


@st.composite
def matmul_bias_cases(draw):
    """(a shape, b shape, bias shape): 2-D or batched operands (batch axes broadcast), and a
    bias of any shape that broadcasts to the product's without growing it ((m,), (n, m), (1, m),
    with or without the batch axes, or a 0-d one)."""
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3))
    rows, inner, columns = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    product_shape = np.broadcast_shapes(*batch.input_shapes) + (rows, columns)
    bias_shape = draw(hnp.broadcastable_shapes(product_shape, max_dims=len(product_shape))
                      .filter(lambda shape: np.broadcast_shapes(shape, product_shape) == product_shape))
    return batch.input_shapes[0] + (rows, inner), batch.input_shapes[1] + (inner, columns), bias_shape


@pytest.mark.parametrize("relu", [True, False])
@given(case=matmul_bias_cases(), seed=seeds)
def test_matmul_bias_relu_vjp(relu, case, seed):
    arrays = [np.random.default_rng(seed + offset).standard_normal(shape) for offset, shape in enumerate(case)]
    assert gradcheck(lambda a, b, bias: a.matmul(b, bias=bias, relu=relu), arrays)


@given(case=matmul_bias_cases(), seed=seeds)
def test_matmul_relu_without_bias_vjp(case, seed):
    a, b = (np.random.default_rng(seed + offset).standard_normal(shape) for offset, shape in enumerate(case[:2]))
    assert gradcheck(lambda x, y: x.matmul(y, relu=True), [a, b])


@pytest.mark.parametrize("relu", [True, False])
@given(case=matmul_bias_cases(), seed=seeds, dtype=st.sampled_from([np.float32, np.float64]),
       rounded=st.booleans())
def test_matmul_bias_relu_equals_the_unfused_ops_to_the_bit(relu, case, seed, dtype, rounded):
    """Values and every gradient equal to ``(a @ b + bias).relu()``, bit for bit (rounded
    values make exact zeros, where relu's gradient switches off)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for shape in case]
    if rounded:
        arrays = [np.round(array) for array in arrays]
    results = []
    for fused in (True, False):
        a, b, bias = (Tensor(array.astype(dtype), requires_grad=True) for array in arrays)
        if fused:
            output = a.matmul(b, bias=bias, relu=relu)
        else:
            output = a @ b + bias
            output = output.relu() if relu else output
        output.backward(np.random.default_rng(seed + 1).standard_normal(output.shape).astype(dtype))
        results.append((output.data, a.grad, b.grad, bias.grad))
    for fused_array, plain_array in zip(*results):
        assert fused_array.dtype == plain_array.dtype
        np.testing.assert_array_equal(fused_array, plain_array)


@given(inner=st.integers(1, 4), columns=st.integers(1, 4), seed=seeds)
def test_matmul_bias_relu_of_a_vector_equals_the_unfused_ops(inner, columns, seed):
    """A 1-D operand (a row on the left, a column on the right) takes a bias and relu too."""
    rng = np.random.default_rng(seed)
    vector, matrix = rng.standard_normal(inner), rng.standard_normal((inner, columns))
    bias = rng.standard_normal(columns)
    assert gradcheck(lambda v, m, b: v.matmul(m, bias=b, relu=True), [vector, matrix, bias])
    fused = Tensor(vector).matmul(Tensor(matrix), bias=Tensor(bias), relu=True)
    assert fused.shape == (columns,)
    np.testing.assert_array_equal(fused.data, np.maximum(vector @ matrix + bias, 0))
    column = Tensor(matrix.T).matmul(Tensor(vector), bias=1.5)
    np.testing.assert_array_equal(column.data, matrix.T @ vector + 1.5)


def test_matmul_relu_passes_the_gradient_of_a_nan_output_on_and_zeroes_dead_units_even_for_infinite_g():
    """As ReLU's VJP (and PyTorch's): a NaN output passes G on; a dead unit (output 0) gets 0,
    even where G is inf (a sqrt after the relu)."""
    x = Tensor(np.ones((1, 2), dtype=np.float32), requires_grad=True)
    weight = Tensor(np.eye(2, dtype=np.float32), requires_grad=True)
    bias = Tensor(np.array([np.nan, -5.0], dtype=np.float32), requires_grad=True)
    x.matmul(weight, bias=bias, relu=True).backward(np.ones((1, 2), dtype=np.float32))
    np.testing.assert_array_equal(bias.grad, [1.0, 0.0])
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0]])
    bias = Tensor(np.array([-5.0, 3.0]), requires_grad=True)
    with np.errstate(divide="ignore"):
        Tensor(np.ones((1, 2))).matmul(Tensor(np.eye(2)), bias=bias, relu=True).sqrt().sum().backward()
    np.testing.assert_array_equal(bias.grad, [0.0, 0.5 / np.sqrt(4.0)])


@pytest.mark.parametrize("bias_shape", [(4,), (1, 2, 3), (2, 2, 3), (3, 1, 1)])
def test_a_matmul_bias_that_would_grow_the_product_is_refused_naming_both_shapes(bias_shape):
    a, b = Tensor(np.ones((2, 5))), Tensor(np.ones((5, 3)))
    with pytest.raises(ValueError, match=rf"bias of shape \({bias_shape[0]},.*product's shape \(2, 3\)"):
        a.matmul(b, bias=Tensor(np.ones(bias_shape)))


def test_the_output_of_a_matmul_with_relu_changed_in_place_is_refused_at_backward():
    """Its VJP reads the output (as ReLU's); without relu it reads only the inputs."""
    a, b = Tensor(np.ones((2, 3)), requires_grad=True), Tensor(np.ones((3, 2)), requires_grad=True)
    output = a.matmul(b, bias=Tensor(np.zeros(2)), relu=True)
    with no_grad():
        output += 1
    with pytest.raises(RuntimeError, match="the output of MatMul was modified by an in-place operation"):
        output.sum().backward()
    output = a.matmul(b, bias=Tensor(np.zeros(2)))
    with no_grad():
        output += 1
    output.sum().backward()
    np.testing.assert_array_equal(a.grad, np.full((2, 3), 2.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seed_mlp_fused_forward_and_gradients_equal_the_unfused_network_to_the_bit(dtype):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, size=(3, 1, 28, 28)).astype(np.uint8)
    biases = [rng.standard_normal(size) * 0.1 for size in (1000, 100, 10)]
    results = fused_and_unfused_results(SeedMLP, 4, dtype, images, np.array([2, 0, 9]), ("fc1", "fc2", "fc3"), biases)
    for fused_array, plain_array in zip(*results):
        np.testing.assert_array_equal(fused_array, plain_array)


def test_max_pool_keeps_one_small_count_per_window_for_backward_not_the_input():
    """The winners are found in forward (kernels.count_first_maximum): what the op keeps for
    its VJP is one uint8 per window of its grid, not the input's phase planes (16 times that
    in float32 for a 3x3/2 pool), so a big batch holds much less between forward and backward."""
    x = Tensor(np.random.default_rng(0).standard_normal((8, 4, 28, 28)).astype(np.float32), requires_grad=True)
    y = x.pad_max_pool2d(((0, 1), (0, 1)), 3, stride=2, relu=True)
    kept = [value for value in vars(y.node.op).values() if isinstance(value, np.ndarray)]
    assert [array.dtype for array in kept] == [np.uint8]
    assert kept[0].nbytes == 4 * 15 * 15 * 8  # C · Hq · Wq · N windows of the grid, one byte each
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("a_dtype, b_dtype, bias", [
    (np.float32, np.float32, np.array([0.1, -0.2, 0.3])),          # a wider bias: float64 result, as +
    (np.float32, np.float64, 0.1),                                   # a number takes the product's dtype
    (np.int64, np.float64, 0.1),
    (np.float64, np.float64, np.array(0.25, dtype=np.float32)),     # a 0-d bias takes the product's dtype
    (np.int8, np.int8, np.array([1, -2, 3])),                       # int8 product (it wraps), then int64
    (np.int8, np.int8, np.array([0.5, 1.0, -1.0], dtype=np.float32)),
    (np.int64, np.int64, 16777217.0),                               # summed in int64, then float32
    (np.uint8, np.uint8, np.array(-1)),                             # does not fit uint8: int64
    (np.int64, np.int64, np.array([True, False, True])),
])
def test_matmul_bias_of_another_dtype_gives_the_dtype_values_and_gradients_of_the_unfused_ops(a_dtype, b_dtype, bias, relu):
    """The bias is promoted against the product as ``+`` promotes it: the product is not
    computed in a wider dtype because of the bias, and the bias is not cut to the product's."""
    rng = np.random.default_rng(7)
    a_values, b_values = rng.integers(-60, 60, size=(2, 4)), rng.integers(-60, 60, size=(4, 3))
    if np.dtype(a_dtype).kind == "u":
        a_values, b_values = np.abs(a_values), np.abs(b_values)
    results = []
    for fused in (True, False):
        grads = np.dtype(a_dtype).kind == "f"
        a = Tensor(a_values.astype(a_dtype), requires_grad=grads)
        b = Tensor(b_values.astype(b_dtype), requires_grad=np.dtype(b_dtype).kind == "f")
        c = Tensor(bias, requires_grad=True) if isinstance(bias, np.ndarray) and bias.dtype.kind == "f" else bias
        if fused:
            output = a.matmul(b, bias=c, relu=relu)
        else:
            output = a @ b + c
            output = output.relu() if relu else output
        if output.requires_grad:
            output.sum().backward()
        results.append((output, [t.grad for t in (a, b, c) if isinstance(t, Tensor) and t.requires_grad]))
    (fused_output, fused_grads), (plain_output, plain_grads) = results
    assert fused_output.dtype == plain_output.dtype
    np.testing.assert_array_equal(fused_output.data, plain_output.data)
    for fused_grad, plain_grad in zip(fused_grads, plain_grads, strict=True):
        assert fused_grad.dtype == plain_grad.dtype
        np.testing.assert_array_equal(fused_grad, plain_grad)


def test_matmul_of_two_bool_tensors_is_refused_with_a_float_bias_too():
    """The bias does not make the operands float (``a @ b + bias`` refuses them)."""
    a, b = Tensor(np.array([[True, False]])), Tensor(np.array([[True], [True]]))
    with pytest.raises(TypeError, match="a @ b of two bool tensors is refused"):
        a.matmul(b, bias=Tensor(np.array([0.5])))


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("bias_shape", [(3,), (3, 5, 5)])
@pytest.mark.parametrize("x_dtype, bias_dtype", [
    (np.float32, np.float64),   # a wider bias: the sum is float64, as conv2d(w) + bias (it was rounded to float32)
    (np.int8, np.int64),        # int8 product (it wraps), then int64 (the bias was cut to int8)
    (np.float64, np.float32),   # a narrower bias: added in place, as before
    (np.int64, np.float32),     # an integer input with a float bias: computed in float32, as before
])
def test_conv2d_bias_of_another_dtype_gives_the_dtype_values_and_gradients_of_the_unfused_ops(x_dtype, bias_dtype,
                                                                                              bias_shape, relu):
    """As matmul's: the bias is promoted against the product as ``+`` promotes it, so
    ``x.conv2d(w, bias)`` has the dtype, values and gradients of ``x.conv2d(w) + bias``
    (a per-channel bias's gradient is summed in another order there: equal to float32's
    precision)."""
    rng = np.random.default_rng(11)
    x_values, weight_values = rng.integers(-60, 60, (2, 2, 5, 5)), rng.integers(-60, 60, (3, 2, 3, 3))
    bias_values = rng.standard_normal(bias_shape) * 1000 + 0.123456789
    results = []
    for fused in (True, False):
        floats = np.dtype(x_dtype).kind == "f"
        x = Tensor(x_values.astype(x_dtype), requires_grad=floats)
        weight = Tensor(weight_values.astype(x_dtype), requires_grad=floats)
        bias = Tensor(bias_values.astype(bias_dtype), requires_grad=np.dtype(bias_dtype).kind == "f")
        if fused:
            output = x.conv2d(weight, bias, padding=1, relu=relu)
        else:
            output = x.conv2d(weight, padding=1) + (bias.reshape(-1, 1, 1) if bias.ndim == 1 else bias)
            output = output.relu() if relu else output
        if output.requires_grad:
            output.backward(np.random.default_rng(12).standard_normal(output.shape))
        results.append((output, [t.grad for t in (x, weight, bias) if t.requires_grad]))
    (fused_output, fused_grads), (plain_output, plain_grads) = results
    assert fused_output.dtype == plain_output.dtype
    np.testing.assert_array_equal(fused_output.data, plain_output.data)
    for fused_grad, plain_grad in zip(fused_grads, plain_grads, strict=True):
        assert fused_grad.dtype == plain_grad.dtype
        np.testing.assert_allclose(fused_grad, plain_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op, arrays", [
    ("MatMul", (np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones(4, np.float64))),
    ("MatMul", (np.ones((2, 3), np.int8), np.ones((3, 4), np.int8), np.ones(4, np.int64))),
    ("MatMul", (np.ones((2, 3), np.int64), np.ones((3, 4), np.int64), np.ones(4, np.float32))),
    ("MatMul", (np.ones((2, 3), np.int8), np.ones((3, 4), np.int8), np.full(4, 200, np.uint8))),  # wrapped to -53
    ("MatMul", (np.ones((2, 3), np.uint8), np.ones((3, 4), np.uint8), np.full(4, -100, np.int8))),
    ("MatMul", (np.ones((2, 3), np.int64), np.ones((3, 4), np.int64), np.full(4, 2**63, np.uint64))),
    ("Conv2d", (np.ones((1, 2, 4, 4), np.float32), np.ones((3, 2, 3, 3), np.float32), np.ones(3, np.float64))),
    ("Conv2d", (np.ones((1, 2, 4, 4), np.int8), np.ones((3, 2, 3, 3), np.int8), np.full(3, 200, np.uint8))),
])
def test_a_direct_apply_with_a_bias_the_product_would_round_is_refused(op, arrays):
    """``Tensor.matmul`` and ``Tensor.conv2d`` add such a bias after the product; ``apply`` on
    the op itself would have added it in place, rounded (float64 on float32) or cut (int64 or
    uint8 on int8) to the product's dtype without a word, or failed with numpy's own error."""
    with pytest.raises(TypeError, match=f"{op}: a {arrays[2].dtype} bias would be rounded or cut to the"):
        getattr(ops, op).apply(*(Tensor(array) for array in arrays))


@pytest.mark.parametrize("product_dtype, bias", [
    (np.float64, np.full(4, 0.5, np.float32)),
    (np.float64, np.full(4, 0.5, np.float64)),
    (np.float64, np.full(4, 2, np.int64)),      # an integer bias takes a float product's dtype, as with +
    (np.float32, np.array(0.1)),                # a 0-d float64 one too
    (np.int64, np.full(4, 2, np.int8)),
    (np.int8, np.array([True, False, True, True])),
])
def test_a_direct_apply_with_a_bias_that_keeps_the_products_dtype_is_added_as_plus_adds_it(product_dtype, bias):
    a, b = Tensor(np.ones((2, 3), product_dtype)), Tensor(np.ones((3, 4), product_dtype))
    fused = ops.MatMul.apply(a, b, Tensor(bias))
    plain = a @ b + Tensor(bias)
    assert fused.dtype == plain.dtype == product_dtype
    np.testing.assert_array_equal(fused.data, plain.data)
