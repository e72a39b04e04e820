"""Training-time ops (dropout, batch norm), the training switch, and the nn layers
(Linear, Conv2d, BatchNorm2d): VJPs against finite differences, forwards against numpy,
running statistics against PyTorch's update rule, parameters and buffers, errors."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, gradcheck, no_grad, train_mode
from tinygrad_cnn.nn import (
    BatchNorm2d,
    Conv2d,
    Embedding,
    LayerNorm,
    Linear,
    get_parameters,
    load_state_dict,
    named_buffers,
    named_parameters,
    state_dict,
)
from tinygrad_cnn.optim import SGD
from tinygrad_cnn.random import manual_seed

seeds = st.integers(0, 2**32 - 1)
small_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)
# (N,C) or (N,C,H,W) with at least two values per channel
batch_norm_shapes = st.one_of(
    st.tuples(st.integers(2, 5), st.integers(1, 4)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(2, 3)),
)


def random_array(seed: int, shape, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape)


@pytest.fixture(autouse=True)
def evaluation_mode():
    """Every test starts (and leaves the package) outside training mode."""
    Tensor.training = False
    yield
    Tensor.training = False


# -- the training switch ------------------------------------------------------------------


def test_training_is_off_by_default_and_train_mode_restores_the_previous_value():
    assert Tensor.training is False
    with train_mode():
        assert Tensor.training is True
        with train_mode(False):
            assert Tensor.training is False
        assert Tensor.training is True
    assert Tensor.training is False


def test_train_mode_restores_the_value_after_an_exception():
    with pytest.raises(RuntimeError), train_mode():
        raise RuntimeError("inside the block")
    assert Tensor.training is False


def test_train_mode_as_a_decorator():
    @train_mode()
    def step() -> bool:
        return Tensor.training

    assert step() is True and Tensor.training is False


def test_decorators_keep_the_name_and_docstring_of_the_function():
    def evaluate(model):
        """Evaluate the model."""

    for decorator in (train_mode(), train_mode(False), no_grad()):
        wrapped = decorator(evaluate)
        assert wrapped.__name__ == "evaluate" and wrapped.__doc__ == "Evaluate the model."
        assert wrapped.__wrapped__ is evaluate


# -- dropout ------------------------------------------------------------------------------


def dropout_with_fixed_mask(seed: int, p: float):
    """x.dropout(p) with the generator re-seeded at every call: the same mask each time."""
    def function(x: Tensor) -> Tensor:
        manual_seed(seed)
        return x.dropout(p)

    return function


@given(shape=small_shapes, seed=seeds, p=st.floats(0.05, 0.9))
def test_dropout_vjp_with_a_fixed_mask(shape, seed, p):
    x = random_array(seed, shape)
    with train_mode():
        assert gradcheck(dropout_with_fixed_mask(seed, p), [x])
        output = dropout_with_fixed_mask(seed, p)(Tensor(x)).data
    kept = output != 0
    np.testing.assert_allclose(output[kept], x[kept] / (1 - p))


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_keeps_a_fraction_1_minus_p_and_preserves_the_expectation(p):
    manual_seed(0)
    with train_mode():
        output = Tensor(np.ones(200_000)).dropout(p).data
    assert abs((output != 0).mean() - (1 - p)) < 0.005
    assert abs(output.mean() - 1) < 0.02  # E[y] = x: each kept value is 1/(1-p)


def test_dropout_outside_training_is_the_identity_and_records_nothing():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    assert x.dropout(0.5) is x
    with train_mode():
        assert x.dropout(0.0) is x
        dropped = x.dropout(0.5)
    assert dropped is not x and dropped.node is not None


def test_dropout_with_p_1_drops_everything_without_dividing_by_zero():
    x = Tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    with train_mode(), np.errstate(all="raise"):
        y = x.dropout(1.0)
        (y * 3).sum().backward()
    np.testing.assert_array_equal(y.data, np.zeros((2, 3)))
    np.testing.assert_array_equal(x.grad, np.zeros((2, 3)))


def test_dropout_is_reproducible_under_manual_seed():
    x = Tensor(np.ones((8, 8), dtype=np.float32))
    with train_mode():
        manual_seed(7)
        first, second = x.dropout(0.5).data, x.dropout(0.5).data
        manual_seed(7)
        again = x.dropout(0.5).data
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)  # the generator moves on between calls
    assert first.dtype == np.float32


@pytest.mark.parametrize("p, error, message", [
    (-0.1, ValueError, r"p must be a number in \[0, 1\], got -0.1"),
    (1.5, ValueError, r"got 1.5"),
    ("half", ValueError, r"got 'half'"),
])
def test_dropout_rejects_probabilities_outside_0_1(p, error, message):
    with pytest.raises(error, match=message):
        Tensor(np.ones(3)).dropout(p)  # checked in evaluation mode too


def test_dropout_needs_a_float_tensor_to_drop_from_and_passes_any_other_through_outside_training():
    integers = Tensor([1, 2, 3])
    assert integers.dropout(0.5) is integers  # (as PyTorch's: summary and export trace uint8 images)
    with train_mode(), pytest.raises(TypeError, match="dropout needs a float tensor, got dtype int64"):
        integers.dropout(0.5)


# -- batch norm ---------------------------------------------------------------------------


def batch_norm_reference(x, weight, bias, mean=None, variance=None, eps=1e-5):
    """y = (x − mean)/sqrt(var + eps) · weight + bias, channel by channel, written out with
    numpy (batch mean and biased variance when no statistics are given)."""
    output = np.empty_like(x)
    for channel in range(x.shape[1]):
        values = x[:, channel]
        mu = values.mean() if mean is None else mean[channel]
        var = values.var() if variance is None else variance[channel]
        output[:, channel] = (values - mu) / np.sqrt(var + eps) * weight[channel] + bias[channel]
    return output


@given(shape=batch_norm_shapes, seed=seeds)
def test_batch_norm_vjp_with_batch_statistics(shape, seed):
    x = random_array(seed, shape)
    weight, bias = random_array(seed + 1, shape[1]), random_array(seed + 2, shape[1])
    assert gradcheck(lambda t, w, b: t.batch_norm(w, b, training=True), [x, weight, bias])
    output = Tensor(x).batch_norm(weight, bias, training=True).data
    np.testing.assert_allclose(output, batch_norm_reference(x, weight, bias), rtol=1e-10, atol=1e-12)


@given(shape=batch_norm_shapes, seed=seeds)
def test_batch_norm_vjp_with_running_statistics(shape, seed):
    x = random_array(seed, shape)
    weight, bias = random_array(seed + 1, shape[1]), random_array(seed + 2, shape[1])
    mean, variance = random_array(seed + 3, shape[1]), random_array(seed + 4, shape[1], 0.5, 2.0)

    def evaluate(t, w, b):
        return t.batch_norm(w, b, mean.copy(), variance.copy(), training=False)

    assert gradcheck(evaluate, [x, weight, bias])
    np.testing.assert_allclose(evaluate(Tensor(x), weight, bias).data,
                               batch_norm_reference(x, weight, bias, mean, variance), rtol=1e-10, atol=1e-12)


# (N,C,…) of any rank from 2 to 5, at least two values per channel
any_rank_batch_norm_shapes = hnp.array_shapes(min_dims=2, max_dims=5, min_side=1, max_side=3).filter(
    lambda shape: np.prod(shape) // shape[1] >= 2)


@given(shape=any_rank_batch_norm_shapes, seed=seeds, eps=st.floats(1e-5, 1.0), training=st.booleans())
def test_batch_norm_vjp_for_any_rank_and_eps(shape, seed, eps, training):
    """(N,C,L) and (N,C,D,H,W) as well as (N,C) and (N,C,H,W), with eps drawn, in both modes."""
    x = random_array(seed, shape)
    weight, bias = random_array(seed + 1, shape[1]), random_array(seed + 2, shape[1])
    mean, variance = random_array(seed + 3, shape[1]), random_array(seed + 4, shape[1], 0.5, 2.0)
    statistics = (None, None) if training else (mean, variance)

    def normalize(t, w, b):
        running = [None if value is None else value.copy() for value in statistics]
        return t.batch_norm(w, b, *running, training=training, eps=eps)

    assert gradcheck(normalize, [x, weight, bias])
    np.testing.assert_allclose(normalize(Tensor(x), weight, bias).data,
                               batch_norm_reference(x, weight, bias, *statistics, eps=eps), rtol=1e-10, atol=1e-12)


def test_batch_norm_running_statistics_follow_pytorchs_update_rule():
    rng = np.random.default_rng(0)
    running_mean, running_var = np.zeros(3), np.ones(3)
    expected_mean, expected_var = np.zeros(3), np.ones(3)
    momentum = 0.3
    for _ in range(4):
        x = rng.normal(2.0, 3.0, size=(5, 3, 2, 2))
        Tensor(x).batch_norm(running_mean=running_mean, running_var=running_var, training=True, momentum=momentum)
        values = x.transpose(1, 0, 2, 3).reshape(3, -1)  # per channel: the m = 20 values
        expected_mean = (1 - momentum) * expected_mean + momentum * values.mean(axis=1)
        expected_var = (1 - momentum) * expected_var + momentum * values.var(axis=1, ddof=1)  # unbiased
    np.testing.assert_allclose(running_mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, expected_var, rtol=1e-12)


def test_batch_norm_outside_training_uses_and_keeps_the_running_statistics():
    x = np.random.default_rng(1).normal(size=(4, 2))
    running_mean, running_var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    output = Tensor(x).batch_norm(running_mean=running_mean, running_var=running_var).data
    np.testing.assert_allclose(output, (x - running_mean) / np.sqrt(running_var + 1e-5))
    np.testing.assert_array_equal(running_mean, [0.5, -1.0])
    np.testing.assert_array_equal(running_var, [2.0, 0.25])


def test_batch_norm_follows_tensor_training_and_uses_the_batch_without_running_statistics():
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(6, 2))
    batch_normalized = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    np.testing.assert_allclose(Tensor(x).batch_norm().data, batch_normalized)  # nothing else to use
    running_mean, running_var = np.zeros(2), np.ones(2)
    with train_mode():
        output = Tensor(x).batch_norm(running_mean=running_mean, running_var=running_var).data
    np.testing.assert_allclose(output, batch_normalized)
    assert not np.array_equal(running_mean, np.zeros(2))


def test_batch_norm_keeps_float32():
    x = Tensor(np.ones((4, 3), dtype=np.float32), requires_grad=True)
    weight = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = x.batch_norm(weight, training=True)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and weight.grad.dtype == np.float32


def batch_norm_call(*shape, **options):
    return lambda: Tensor(np.ones(shape)).batch_norm(**options)


@pytest.mark.parametrize("call, message", [
    (batch_norm_call(5), r"batch and a channel axis \(N,C,…\), got shape \(5,\)"),
    (batch_norm_call(4, 3, weight=np.ones(2)), r"weight must have shape \(3,\) for input \(4, 3\), got \(2,\)"),
    (batch_norm_call(4, 3, bias=np.ones((3, 1))), r"bias must have shape \(3,\) for input \(4, 3\), got \(3, 1\)"),
    (batch_norm_call(4, 3, running_mean=np.zeros(3)), r"both running_mean and running_var, or neither"),
    (batch_norm_call(4, 3, running_mean=np.zeros(2), running_var=np.ones(2)),
     r"running_mean must be a float numpy array of shape \(3,\).*got ndarray of shape \(2,\)"),
    (batch_norm_call(4, 3, running_mean=[0, 0, 0], running_var=np.ones(3)), r"updated in place.*got list"),
    (batch_norm_call(4, 3, momentum=1.5), r"momentum must lie in \[0, 1\], got 1.5"),
    (batch_norm_call(4, 3, eps=0), r"batch_norm: eps must be a finite number > 0, got 0"),
    (batch_norm_call(1, 3, training=True), r"more than one value per channel, got input shape \(1, 3\)"),
    # evaluation without running statistics uses the batch's too: one value would become 0
    # and the output the bias, whatever the input
    (batch_norm_call(1, 3, training=False), r"without running statistics.*more than one value per channel"),
    (batch_norm_call(1, 3, 1, 1, training=False), r"more than one value per channel, got input shape \(1, 3, 1, 1\)"),
])
def test_batch_norm_errors_name_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_batch_norm_refuses_read_only_running_statistics_in_training_before_updating_either():
    """Training updates the running statistics in place. A read-only running_var (a broadcast
    or memory-mapped array) used to fail in numpy ("output array is read-only") after
    running_mean had already moved; now both are checked first and the error names the array.
    Evaluation only reads them, so there a read-only array is fine."""
    layer = BatchNorm2d(2)
    layer.running_var = np.broadcast_to(np.ones(1, dtype=np.float32), (2,))
    images = np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2)
    with train_mode(), pytest.raises(ValueError, match=r"batch_norm running_var is a read-only array.*np.array"):
        layer(images)
    assert np.array_equal(layer.running_mean, np.zeros(2))  # not moved
    assert layer(images).shape == (2, 2, 2, 2)  # evaluation reads it


@pytest.mark.parametrize("momentum", [None, "0.1", True])
def test_batch_norm_momentum_must_be_a_number_and_none_is_not_supported(momentum):
    message = r"batch_norm: momentum must be a number in \[0, 1\], got .*momentum=None, PyTorch's cumulative"
    with pytest.raises(TypeError, match=message):
        Tensor(np.ones((4, 3))).batch_norm(momentum=momentum, training=True)
    with pytest.raises(TypeError, match=r"BatchNorm2d: momentum must be a number in \[0, 1\], got .*momentum=None, PyTorch's"):
        BatchNorm2d(3, momentum=momentum)  # refused when the layer is built


def test_batch_norm_eps_must_be_a_number():
    with pytest.raises(TypeError, match=r"batch_norm: eps must be a finite number > 0, got None"):
        Tensor(np.ones((4, 3))).batch_norm(eps=None)


# -- layers -------------------------------------------------------------------------------


def test_linear_shapes_parameters_and_initialisation():
    manual_seed(0)
    layer = Linear(400, 120)
    assert list(named_parameters(layer)) == ["weight", "bias"]
    assert layer.weight.shape == (400, 120) and layer.bias.shape == (120,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    bound = 1 / np.sqrt(400)  # PyTorch's U(−1/√fan_in, 1/√fan_in)
    for parameter in (layer.weight, layer.bias):
        assert np.abs(parameter.data).max() <= bound and np.abs(parameter.data).max() > 0.9 * bound
    x = np.random.default_rng(0).normal(size=(3, 400)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data + layer.bias.data, rtol=1e-5)
    assert list(named_parameters(Linear(4, 2, bias=False))) == ["weight"]
    # column-major, as PyTorch's (out, in) weight lies in memory: the faster layout (kernels.column_major)
    assert layer.weight.data.flags.f_contiguous and not layer.weight.data.flags.c_contiguous


def test_linear_gradients_reach_weight_and_bias():
    layer = Linear(3, 2, dtype=np.float64)
    x = np.random.default_rng(3).normal(size=(4, 3))
    layer(Tensor(x)).sum().backward()
    np.testing.assert_allclose(layer.bias.grad, [4.0, 4.0])
    np.testing.assert_allclose(layer.weight.grad, np.repeat(x.sum(axis=0)[:, None], 2, axis=1))


def test_layers_initialise_reproducibly_under_manual_seed():
    manual_seed(11)
    first = state_dict([Linear(5, 3), Conv2d(2, 4, 3)])
    manual_seed(11)
    again = state_dict([Linear(5, 3), Conv2d(2, 4, 3)])
    assert list(first) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])


def test_conv2d_shapes_parameters_and_initialisation():
    layer = Conv2d(6, 16, 5, groups=2)
    assert list(named_parameters(layer)) == ["weight", "bias"]
    assert layer.weight.shape == (16, 3, 5, 5) and layer.bias.shape == (16,)
    bound = 1 / np.sqrt(3 * 5 * 5)  # fan_in = in_channels/groups · kh · kw
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert list(named_parameters(Conv2d(1, 2, (3, 1), bias=False))) == ["weight"]
    assert Conv2d(1, 2, (3, 1)).weight.shape == (2, 1, 3, 1)


def test_conv2d_calls_conv2d_with_a_per_channel_bias():
    layer = Conv2d(2, 3, 3, stride=2, padding=1, dtype=np.float64)
    x = Tensor(np.random.default_rng(4).normal(size=(2, 2, 7, 7)))
    output = layer(x)
    assert output.shape == (2, 3, 4, 4)
    without_bias = x.conv2d(layer.weight, stride=2, padding=1).data
    np.testing.assert_allclose(output.data, without_bias + layer.bias.data.reshape(1, 3, 1, 1))


def test_batch_norm_2d_parameters_buffers_and_state_dict():
    layer = BatchNorm2d(4)
    assert list(named_parameters(layer)) == ["weight", "bias"]
    assert list(named_buffers(layer)) == ["running_mean", "running_var"]
    assert list(state_dict(layer)) == ["weight", "bias", "running_mean", "running_var"]
    np.testing.assert_array_equal(layer.weight.data, np.ones(4))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(4))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(4))
    np.testing.assert_array_equal(layer.running_var, np.ones(4))
    assert get_parameters(layer) == [layer.weight, layer.bias]  # the optimizer never sees the buffers


def test_batch_norm_2d_trains_with_batch_statistics_and_evaluates_with_running_ones():
    layer = BatchNorm2d(2, momentum=0.5, dtype=np.float64)
    layer.weight.data[:] = [2.0, 0.5]
    layer.bias.data[:] = [1.0, -1.0]
    x = np.random.default_rng(5).normal(1.0, 2.0, size=(3, 2, 4, 4))
    with train_mode():
        training_output = layer(Tensor(x)).data
    np.testing.assert_allclose(training_output, batch_norm_reference(x, [2.0, 0.5], [1.0, -1.0]))
    values = x.transpose(1, 0, 2, 3).reshape(2, -1)
    np.testing.assert_allclose(layer.running_mean, 0.5 * values.mean(axis=1))
    np.testing.assert_allclose(layer.running_var, 0.5 + 0.5 * values.var(axis=1, ddof=1))
    evaluation_output = layer(Tensor(x)).data
    np.testing.assert_allclose(evaluation_output, batch_norm_reference(
        x, [2.0, 0.5], [1.0, -1.0], layer.running_mean, layer.running_var))


def test_batch_norm_2d_state_dict_round_trip_restores_the_running_statistics():
    source, target = BatchNorm2d(3), BatchNorm2d(3)
    with train_mode():
        source(Tensor(np.random.default_rng(6).normal(size=(4, 3, 2, 2)).astype(np.float32)))
    buffer = target.running_mean
    load_state_dict(target, state_dict(source))
    np.testing.assert_array_equal(target.running_mean, source.running_mean)
    np.testing.assert_array_equal(target.running_var, source.running_var)
    assert target.running_mean is buffer  # loaded in place


def test_an_optimizer_step_leaves_the_running_statistics_alone():
    layer = BatchNorm2d(2, dtype=np.float64)
    optimizer = SGD(get_parameters(layer), lr=0.1)
    x = Tensor(np.random.default_rng(7).normal(size=(4, 2, 3, 3)))
    with train_mode():
        (layer(x) * Tensor(np.arange(72.0).reshape(4, 2, 3, 3))).sum().backward()
    running_mean, running_var = layer.running_mean.copy(), layer.running_var.copy()
    optimizer.step()
    np.testing.assert_array_equal(layer.running_mean, running_mean)
    np.testing.assert_array_equal(layer.running_var, running_var)
    assert not np.array_equal(layer.weight.data, np.ones(2))


@pytest.mark.parametrize("layer, shape, message", [
    (Linear(4, 2), (3, 5), r"Linear\(4, 2\) expects inputs of shape \(…, 4\), got \(3, 5\)"),
    (Conv2d(3, 8, 3), (2, 1, 8, 8), r"Conv2d\(3, 8, …\) expects inputs of shape \(N, 3, H, W\), or \(3, H, W\) for one image, got \(2, 1, 8, 8\)"),
    (Conv2d(3, 8, 3), (8, 8), r"or \(3, H, W\) for one image, got \(8, 8\)"),
    (Conv2d(3, 8, 3), (8, 8, 8), r"got \(8, 8, 8\)"),
    (BatchNorm2d(4), (2, 4), r"BatchNorm2d\(4\) expects inputs of shape \(N, 4, H, W\), got \(2, 4\)"),
    (BatchNorm2d(4), (2, 3, 5, 5), r"got \(2, 3, 5, 5\)"),
])
def test_layers_name_the_expected_and_the_given_input_shape(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(Tensor(np.ones(shape, dtype=np.float32)))


def test_conv2d_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match=r"in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)"):
        Conv2d(3, 4, 3, groups=2)


@pytest.mark.parametrize("build, error, message", [
    (lambda: Linear(0, 3), ValueError, r"Linear: in_features must be a positive int, got 0"),
    (lambda: Linear(-1, 3), ValueError, r"Linear: in_features must be a positive int, got -1"),
    (lambda: Linear(2, 0), ValueError, r"Linear: out_features must be a positive int, got 0"),
    (lambda: Linear(2.0, 3), TypeError, r"Linear: in_features must be a positive int, got 2.0 \(float\)"),
    (lambda: Linear(True, 3), TypeError, r"Linear: in_features must be a positive int, got True \(bool\)"),
    (lambda: Linear(2, 3, dtype=np.int64), TypeError, r"Linear: dtype must be float32 or float64"),
    (lambda: Conv2d(2, 2, 3, groups=0), ValueError, r"Conv2d: groups must be a positive int, got 0"),
    (lambda: Conv2d(2, 2, (3, 3, 3)), TypeError, r"Conv2d: kernel_size must be an int or a pair of ints, got \(3, 3, 3\)"),
    (lambda: Conv2d(2, 2, "3"), TypeError, r"Conv2d: kernel_size must be an int or a pair of ints, got '3'"),
    (lambda: Conv2d(2, 2, 0), ValueError, r"Conv2d: kernel_size must be positive, got 0"),
    (lambda: Conv2d(0, 2, 3), ValueError, r"Conv2d: in_channels must be a positive int, got 0"),
    (lambda: Conv2d(2, -2, 3), ValueError, r"Conv2d: out_channels must be a positive int, got -2"),
    (lambda: Conv2d(2, 2, 3, stride=0), ValueError, r"Conv2d: stride must be positive, got 0"),
    (lambda: Conv2d(2, 2, 3, padding=-1), ValueError, r"Conv2d: padding must be non-negative, got -1"),
    (lambda: Conv2d(2, 2, 3, dilation=(1, 0)), ValueError, r"Conv2d: dilation must be positive, got \(1, 0\)"),
    (lambda: Conv2d(2, 2, 3, stride=1.5), TypeError, r"Conv2d: stride must be an int or a pair of ints, got 1.5"),
    (lambda: BatchNorm2d(-1), ValueError, r"BatchNorm2d: num_features must be a positive int, got -1"),
    (lambda: BatchNorm2d(2, eps=0), ValueError, r"BatchNorm2d: eps must be a finite number > 0, got 0"),
    (lambda: BatchNorm2d(2, momentum=None), TypeError, r"BatchNorm2d: momentum must be a number in \[0, 1\], got None"),
    (lambda: BatchNorm2d(2, momentum=1.5), ValueError, r"BatchNorm2d: momentum must lie in \[0, 1\], got 1.5"),
])
def test_layer_constructors_name_the_bad_argument(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_layer_constructors_accept_numpy_integers():
    linear = Linear(np.int64(4), np.int32(2))
    assert linear.weight.shape == (4, 2) and type(linear.in_features) is int
    conv = Conv2d(np.int64(1), np.int64(2), np.int64(3), stride=(np.int64(1), 1), groups=np.int64(1))
    assert conv.weight.shape == (2, 1, 3, 3)
    assert conv(Tensor(np.ones((1, 1, 5, 5), dtype=np.float32))).shape == (1, 2, 3, 3)
    norm = BatchNorm2d(np.int64(3), eps=np.float32(1e-3))
    assert norm.weight.shape == (3,) and norm.running_mean.shape == (3,)


def test_layers_in_a_network_evaluate_without_a_graph():
    layers = [Conv2d(1, 2, 3, padding=1), BatchNorm2d(2)]
    x = Tensor(np.ones((2, 1, 4, 4), dtype=np.float32))
    with no_grad():
        output = layers[1](layers[0](x))
    assert output.shape == (2, 2, 4, 4) and not output.requires_grad


def test_the_functional_and_layer_forms_share_one_check_of_their_numbers():
    """Tensor.batch_norm and BatchNorm2d refuse the same eps (inf normalized everything to 0
    in the functional form); conv2d and Conv2d refuse the same bool stride."""
    x = Tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"batch_norm: eps must be a finite number > 0, got inf"):
        x.batch_norm(eps=float("inf"), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm2d: eps must be a finite number > 0, got inf"):
        BatchNorm2d(3, eps=float("inf"))
    image, weight = Tensor(np.ones((1, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match=r"stride must be an int or a pair of ints, got True"):
        image.conv2d(weight, stride=True)
    with pytest.raises(TypeError, match=r"Conv2d: stride must be an int or a pair of ints, got True"):
        Conv2d(1, 1, 3, stride=True)


@pytest.mark.parametrize("layer, shape, dtype", [
    (layer, shape, dtype)
    for layer, shape, dtypes in [
        (Linear(4, 2), (3, 4), (np.float32, np.float64, np.uint8)),
        (Conv2d(3, 8, 3, padding=1), (2, 3, 5, 5), (np.float32, np.float64, np.uint8)),
        (BatchNorm2d(3), (2, 3, 4, 4), (np.float32, np.float64)),  # (batch_norm needs float input)
    ]
    for dtype in dtypes
])
def test_layers_take_a_numpy_array_as_a_constant_tensor(layer, shape, dtype):
    """Linear accepted a numpy array (numpy hands `x @ weight` to the Tensor); Conv2d and
    BatchNorm2d raised "'numpy.ndarray' object has no attribute 'conv2d'"."""
    x = (np.arange(np.prod(shape)).reshape(shape) % 7).astype(dtype)
    expected = layer(Tensor(x))
    result = layer(x)
    assert isinstance(result, Tensor) and result.dtype == expected.dtype
    np.testing.assert_array_equal(result.data, expected.data)


@pytest.mark.parametrize("layer, name", [(Linear(4, 2), "Linear"), (Conv2d(3, 8, 3), "Conv2d"),
                                         (BatchNorm2d(3), "BatchNorm2d")])
def test_layers_name_an_input_that_is_not_a_tensor_or_array(layer, name):
    with pytest.raises(TypeError, match=rf"{name}\(.*\) expects a Tensor or a numpy array, got a list"):
        layer([[1.0, 2.0, 3.0, 4.0]])


# -- layer norm, and the LayerNorm and Embedding layers --------------------------------------


@st.composite
def layer_norm_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    normalized = shape[len(shape) - draw(st.integers(1, len(shape))):]
    return shape, normalized


@given(case=layer_norm_case(), affine=st.booleans(), seed=seeds)
def test_layer_norm_matches_its_formula_and_finite_differences(case, affine, seed):
    shape, normalized = case
    x = random_array(seed, shape)
    weight, bias = random_array(seed + 1, normalized), random_array(seed + 2, normalized)
    axes = tuple(range(-len(normalized), 0))
    expected = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    if affine:
        expected = expected * weight + bias
        output = Tensor(x).layer_norm(normalized, weight, bias)
        assert gradcheck(lambda t, w, b: t.layer_norm(normalized, w, b), [x, weight, bias])
    else:
        output = Tensor(x).layer_norm(normalized)
        assert gradcheck(lambda t: t.layer_norm(normalized, eps=0.1), [x])
    np.testing.assert_allclose(output.data, expected, rtol=1e-9, atol=1e-12)
    roomy = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 0.1)
    np.testing.assert_allclose(Tensor(x).layer_norm(normalized, eps=0.1).data, roomy, rtol=1e-9, atol=1e-12)


def test_the_layer_norm_layer_starts_as_the_plain_normalization_and_trains_its_affine_part():
    x = random_array(0, (3, 2, 5))
    layer = LayerNorm(5, dtype=np.float64)
    assert list(state_dict(layer)) == ["weight", "bias"]
    np.testing.assert_array_equal(layer(x).data, Tensor(x).layer_norm(5).data * 1.0 + 0.0)
    layer(x).sum().backward()
    assert layer.weight.grad.shape == (5,) and np.allclose(layer.bias.grad, 6.0)
    assert get_parameters(LayerNorm((2, 5), elementwise_affine=False)) == []
    assert list(named_parameters(LayerNorm(5, bias=False))) == ["weight"]
    assert LayerNorm(5)(x.astype(np.float32)).dtype == np.float32
    assert LayerNorm(5, dtype=np.float64).weight.dtype == np.float64 and LayerNorm(5).bias.dtype == np.float32
    wide = LayerNorm(5, eps=0.5, dtype=np.float64)  # the layer's eps reaches the normalization
    np.testing.assert_allclose(wide(x).data, (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 0.5),
                               rtol=1e-12)


def test_an_embedding_looks_rows_up_and_adds_the_gradients_of_a_repeated_index():
    manual_seed(0)
    table = Embedding(5, 3, dtype=np.float64)
    indices = np.array([[1, 4], [1, 0]])
    looked_up = table(indices)
    np.testing.assert_array_equal(looked_up.data, table.weight.data[indices])
    looked_up.backward(np.ones((2, 2, 3)))
    np.testing.assert_array_equal(table.weight.grad[:, 0], [1, 2, 0, 0, 1])  # row 1 read twice
    assert table(Tensor(np.array([2]))).shape == (1, 3) and table([3, 3]).shape == (2, 3)
    assert abs(Embedding(1000, 100).weight.data.std() - 1) < 0.02  # N(0, 1), as PyTorch's
    assert Embedding(4, 2).weight.dtype == np.float32 and Embedding(4, 2, dtype=np.float64).weight.dtype == np.float64
    assert table([]).shape == (0, 3) and table(np.zeros((2, 0), np.int64)).shape == (2, 0, 3)


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor(np.ones((2, 3))).layer_norm(4), ValueError,
     r"layer_norm: normalized_shape \(4,\) must be the last axes of the input, whose shape is \(2, 3\)"),
    (lambda: Tensor(np.ones((2, 3))).layer_norm(3, weight=np.ones(2)), ValueError,
     r"layer_norm: weight must have the shape normalized_shape \(3,\), got \(2,\)"),
    (lambda: Tensor(np.ones((2, 3))).layer_norm(3, eps=0), ValueError, "layer_norm: eps must be a finite number > 0"),
    (lambda: LayerNorm([]), TypeError, "LayerNorm: normalized_shape must be a positive int or a non-empty sequence"),
    (lambda: LayerNorm(0), TypeError, "LayerNorm: normalized_shape must be a positive int"),
    (lambda: Embedding(0, 3), ValueError, "Embedding: num_embeddings must be a positive int"),
    (lambda: Embedding(4, 2)([4]), IndexError, r"Embedding: index 4 is out of range for 4 embeddings \(0..3\)"),
    (lambda: Embedding(4, 2)(np.array([-1, 2])), IndexError, "Embedding: index -1 is out of range"),
    (lambda: Embedding(4, 2)([0.0, 1.0]), TypeError, "Embedding expects integer indices, got dtype float64"),
])
def test_bad_layer_norm_and_embedding_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
