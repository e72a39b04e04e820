"""Ops and gradients against PyTorch, where it is installed (it never is a dependency).

The finite-difference tests elsewhere are the specification; this module checks that the
semantics are PyTorch's (tie rules, kinks, conv options, batch norm statistics)."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, no_grad

torch = pytest.importorskip("torch")
functional = torch.nn.functional


def compare(ours, theirs, *arrays, grad_seed: int = 0, atol: float = 1e-10):
    """Forward and every input's gradient of ours(*Tensors) and theirs(*torch tensors), float64."""
    mine = [Tensor(array, requires_grad=True) for array in arrays]
    reference = [torch.tensor(array, requires_grad=True) for array in arrays]
    output, expected = ours(*mine), theirs(*reference)
    np.testing.assert_allclose(output.data, expected.detach().numpy(), atol=atol, rtol=1e-9)
    grad_out = np.random.default_rng(grad_seed).standard_normal(output.shape)
    output.backward(grad_out)
    expected.backward(torch.tensor(grad_out))
    for tensor, torch_tensor in zip(mine, reference):
        np.testing.assert_allclose(tensor.grad, torch_tensor.grad.numpy(), atol=atol, rtol=1e-9)


rng = np.random.default_rng(0)
x = rng.standard_normal((3, 4))
positive = rng.uniform(0.5, 2.0, (3, 4))
kinks = np.array([[-1.0, 0.0, 1.0, 0.0], [2.0, -2.0, 0.0, 0.5]])  # exact zeros and bounds
specials = np.array([[np.nan, np.inf, -np.inf, 0.0], [1.0, -1.0, np.nan, 0.5]])  # one NaN a row


@pytest.mark.parametrize("ours, theirs, data", [
    (lambda t: t.exp(), torch.exp, x),
    (lambda t: t.log(), torch.log, positive),
    (lambda t: t.sqrt(), torch.sqrt, positive),
    (lambda t: t.tanh(), torch.tanh, x),
    (lambda t: t.sin(), torch.sin, x * 4),
    (lambda t: t.cos(), torch.cos, x * 4),
    (lambda t: t.sigmoid(), torch.sigmoid, x * 400),
    (lambda t: t.abs(), torch.abs, kinks),
    (lambda t: t.relu(), torch.relu, kinks),
    (lambda t: t.clip(-1.0, 1.0), lambda t: torch.clamp(t, -1.0, 1.0), kinks),
    (lambda t: t ** 3, lambda t: t ** 3, kinks),
    (lambda t: 2.0 ** t, lambda t: 2.0 ** t, x),
    (lambda t: t.leaky_relu(0.1), lambda t: functional.leaky_relu(t, 0.1), kinks),
    (lambda t: t.elu(1.5), lambda t: functional.elu(t, 1.5), kinks),
    (lambda t: t.gelu(), functional.gelu, x * 3),
    (lambda t: t.gelu("tanh"), lambda t: functional.gelu(t, approximate="tanh"), x * 3),
    (lambda t: t.gelu(), functional.gelu, specials),
    (lambda t: t.gelu("tanh"), lambda t: functional.gelu(t, approximate="tanh"), specials),
    (lambda t: t.softmax(axis=0), lambda t: torch.softmax(t, 0), x),
    (lambda t: t.log_softmax(axis=-1), lambda t: torch.log_softmax(t, -1), x),
    (lambda t: t.max(axis=1), lambda t: torch.amax(t, 1), np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])),
    (lambda t: t.min(), torch.amin, np.array([[1.0, 0.0], [0.0, 4.0]])),
    (lambda t: t.sum(axis=(0, 1)), lambda t: t.sum((0, 1)), x),
    (lambda t: t.relu(), torch.relu, specials),
    (lambda t: t.abs(), torch.abs, specials),
    (lambda t: t.elu(1.5), lambda t: functional.elu(t, 1.5), specials),
    (lambda t: t.leaky_relu(0.1), lambda t: functional.leaky_relu(t, 0.1), specials),
    (lambda t: t.clip(-1.0, 1.0), lambda t: torch.clamp(t, -1.0, 1.0), specials),
    (lambda t: t.max(axis=1), lambda t: torch.max(t, 1).values, specials),  # amax would give NaN
    (lambda t: t.min(), torch.min, specials),  # the two NaNs share
    (lambda t: t.transpose(0, 1), lambda t: t.transpose(0, 1), x),
    (lambda t: t.permute(1, 0), lambda t: t.permute(1, 0), x),
    (lambda t: t[np.array([[0, 0, 2]]), 1:], lambda t: t[torch.tensor([[0, 0, 2]]), 1:], x),
    (lambda t: t[::-2, None, ..., 1], lambda t: t.flip(0)[::2, None, ..., 1], x),
])
def test_unary_ops_match_pytorch(ours, theirs, data):
    compare(ours, theirs, data)


@pytest.mark.parametrize("ours, theirs", [
    (lambda a, b: a.maximum(b), torch.maximum),
    (lambda a, b: a.minimum(b), torch.minimum),
    (lambda a, b: Tensor.where(a > b, a, b), lambda a, b: torch.where(a > b, a, b)),
    (lambda a, b: Tensor.cat([a, b], axis=1), lambda a, b: torch.cat([a, b], 1)),
    (lambda a, b: Tensor.stack([a, b], axis=0), lambda a, b: torch.stack([a, b], 0)),
    (lambda a, b: a @ b.T, lambda a, b: a @ b.T),
    (lambda a, b: a % (b - 0.5), lambda a, b: torch.remainder(a, b - 0.5)),
])
def test_binary_ops_match_pytorch_ties_included(ours, theirs):
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    b = np.array([[1.0, 0.0, 4.0], [0.0, 2.0, 5.0]])  # ties at three places
    compare(ours, theirs, a, b)


@pytest.mark.parametrize("ours, theirs", [
    (lambda a, b: a.maximum(b), torch.maximum),
    (lambda a, b: a.minimum(b), torch.minimum),
])
def test_maximum_minimum_match_pytorch_at_nan_and_inf(ours, theirs):
    a = np.array([[np.nan, 1.0, np.nan], [np.inf, -np.inf, 2.0]])
    b = np.array([[0.0, np.nan, np.nan], [np.inf, 0.0, -np.inf]])
    compare(ours, theirs, a, b)


@pytest.mark.parametrize("options", [
    dict(stride=1, padding=1), dict(stride=2, padding=0), dict(stride=(2, 1), padding=(1, 2), dilation=2),
    dict(stride=1, padding=1, groups=2), dict(stride=1, padding=0, groups=4, dilation=(1, 2)),
])
def test_conv2d_with_a_per_channel_bias_matches_pytorch(options):
    data = np.random.default_rng(1)
    x, weight, bias = data.standard_normal((2, 4, 7, 8)), data.standard_normal((8, 4 // options.get("groups", 1), 3, 3)), data.standard_normal(8)
    compare(lambda a, w, b: a.conv2d(w, b, **options), lambda a, w, b: functional.conv2d(a, w, b, **options),
            x, weight, bias)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2), ((3, 2), (1, 2))])
def test_pools_match_pytorch_ties_included(kernel, stride):
    x = np.random.default_rng(2).integers(0, 3, (2, 3, 7, 7)).astype(np.float64)  # many ties
    compare(lambda t: t.max_pool2d(kernel, stride), lambda t: functional.max_pool2d(t, kernel, stride), x)
    compare(lambda t: t.avg_pool2d(kernel, stride), lambda t: functional.avg_pool2d(t, kernel, stride), x)


def test_cross_entropy_matches_pytorch():
    labels = np.array([0, 3, 3])
    compare(lambda t: t.cross_entropy(labels), lambda t: functional.cross_entropy(t, torch.tensor(labels)),
            np.random.default_rng(3).standard_normal((3, 5)))


def test_nll_loss_matches_pytorch():
    labels = np.array([2, 0, 2, 1])
    log_probabilities = np.log(np.random.default_rng(5).dirichlet(np.ones(3), size=4))
    compare(lambda t: t.nll_loss(labels), lambda t: functional.nll_loss(t, torch.tensor(labels)), log_probabilities)


def test_batch_norm_in_training_matches_pytorch():
    x = np.random.default_rng(4).standard_normal((4, 3, 2, 2))
    weight, bias = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 1.0])
    compare(lambda t, w, b: t.batch_norm(w, b, training=True),
            lambda t, w, b: functional.batch_norm(t, None, None, w, b, training=True), x, weight, bias)


@pytest.mark.parametrize("bounds", [("min", "max"), ("min",), ("max",)])
def test_clip_to_tensor_bounds_matches_torch_clamp_at_ties_and_crossed_bounds(bounds):
    """x on the bounds, bounds crossed (min > max) and equal, NaN in each input, bounds that
    broadcast (a column, a row): forward and every input's gradient."""
    x = np.array([[0.0, 1.0, -1.0, 2.0, 0.5, np.nan], [1.0, 0.0, 2.0, -2.0, 0.5, 0.25]])
    low = np.array([[0.0], [1.0]])  # row 0: min 0 < max; row 1: min 1, max crossed or equal
    high = np.array([1.0, 1.0, 0.5, 1.0, np.nan, 1.0])
    given = {"min": low, "max": high}
    compare(lambda t, *b: t.clip(**dict(zip(bounds, b))), lambda t, *b: torch.clamp(t, **dict(zip(bounds, b))),
            x, *[given[name] for name in bounds])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("exponent", [0.5, -0.5, 2, -1, 0, 1.5, 3, -2, 1])
def test_power_matches_pytorch_at_signed_zeros_infinities_and_nan(exponent, dtype):
    """x ** p and its gradient for G = 1, inf, NaN, −inf: exactly (signs of zeros included)
    wherever either side is 0, inf or NaN; to rounding elsewhere (libm's pow differs in the last bit)."""
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1e-300, -5e-324, 5e-324, -0.5, -2.0, 0.5, 3.0], dtype)
    for grad_value in (1.0, np.inf, np.nan, -np.inf):
        x, torch_x = Tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
        with np.errstate(all="ignore"):
            output = x ** exponent
        expected = torch_x ** exponent
        output.backward(np.full(values.shape, grad_value, dtype))
        expected.backward(torch.full(values.shape, grad_value, dtype=expected.dtype))
        for ours, theirs in ((output.data, expected.detach().numpy()), (x.grad, torch_x.grad.numpy())):
            special = ~np.isfinite(theirs) | (theirs == 0) | ~np.isfinite(ours) | (ours == 0)
            np.testing.assert_array_equal(ours[special], theirs[special])
            numbers = special & ~np.isnan(theirs)
            np.testing.assert_array_equal(np.signbit(ours[numbers]), np.signbit(theirs[numbers]))
            np.testing.assert_allclose(ours[~special], theirs[~special], rtol=1e-6)


def in_place_outcome(framework, no_grad_block, make, change_inside: bool, change_view_of_view: bool = False):
    """Make a view (or a detach) of a leaf that requires grad under no_grad, change it in place
    inside or after the block; the leaf's values then, or "refused"."""
    leaf = framework(np.arange(4.0), requires_grad=True)
    with no_grad_block():
        made = make(leaf)
        if change_inside:
            made += 1.0
    target = made[:1] if change_view_of_view else made
    try:
        if not change_inside:
            target += 1.0
    except RuntimeError:
        return "refused"
    return leaf.detach().numpy().tolist()


@pytest.mark.parametrize("make", [lambda t: t[1:3], lambda t: t.reshape(2, 2).T, lambda t: t.detach(),
                                  lambda t: t.detach()[1:]], ids=["slice", "transpose", "detach", "slice of detach"])
@pytest.mark.parametrize("change_inside, change_view_of_view", [(True, False), (False, False), (False, True)])
def test_in_place_changes_of_views_made_under_no_grad_are_refused_where_pytorch_refuses_them(make, change_inside, change_view_of_view):
    ours = in_place_outcome(Tensor, no_grad, make, change_inside, change_view_of_view)
    theirs = in_place_outcome(torch.tensor, torch.no_grad, make, change_inside, change_view_of_view)
    assert ours == theirs


MASK = np.array([[True, False, True], [False, False, True]])
MASK_OPS = {  # ours, PyTorch's, on a 2x3 bool mask
    "relu": (lambda m: m.relu(), torch.relu), "abs": (lambda m: m.abs(), torch.abs), "neg": (lambda m: -m, lambda m: -m),
    "mask - mask": (lambda m: m - m, lambda m: m - m), "mask ** mask": (lambda m: m ** m, lambda m: m ** m),
    "mask % mask": (lambda m: m % m, lambda m: m % m), "mask // mask": (lambda m: m // m, lambda m: m // m),
    "mask @ mask.T": (lambda m: m @ m.T, lambda m: m @ m.T),
    "conv2d": (lambda m: m.reshape(1, 1, 2, 3).conv2d(m.reshape(1, 1, 2, 3)[:, :, :, :2]),
               lambda m: functional.conv2d(m.reshape(1, 1, 2, 3), m.reshape(1, 1, 2, 3)[:, :, :, :2])),
    "sum": (lambda m: m.sum(axis=1), lambda m: m.sum(1)), "max": (lambda m: m.max(axis=0), lambda m: m.amax(0)),
    "min": (lambda m: m.min(), lambda m: m.amin()), "mask + mask": (lambda m: m + m, lambda m: m + m),
    "mask * 3": (lambda m: m * 3, lambda m: m * 3), "mask ** 2": (lambda m: m ** 2, lambda m: m ** 2),
    "2 ** mask": (lambda m: 2 ** m, lambda m: 2 ** m), "mask % 2": (lambda m: m % 2, lambda m: m % 2),
    "mask / mask": (lambda m: m / m, lambda m: m / m), "clip to ints": (lambda m: m.clip(min=2), lambda m: m.clamp(min=2)),
    "clip to floats": (lambda m: m.clip(0.5, 1.0), lambda m: m.clamp(0.5, 1.0)),
    "exp": (lambda m: m.exp(), torch.exp), "maximum": (lambda m: m.maximum(m.T.T), lambda m: torch.maximum(m, m)),
}
#: where ours answers and PyTorch refuses, deliberately (README, "Decisions"): the answers a mask has
MASK_ANSWERS_PYTORCH_REFUSES = {
    "mean": lambda m: m.mean(), "argmax": lambda m: m.argmax(1), "argmin": lambda m: m.argmin(),
    "max_pool2d": lambda m: m.reshape(1, 1, 2, 3).max_pool2d((1, 2)),
    "avg_pool2d": lambda m: m.reshape(1, 1, 2, 3).avg_pool2d((1, 2)),
    "softmax": lambda m: m.softmax(1), "leaky_relu": lambda m: m.leaky_relu(0.1),
    "mask - 1": lambda m: m - 1,
}


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")  # False / False
@pytest.mark.parametrize("name", MASK_OPS)
def test_ops_on_bool_masks_are_refused_where_pytorch_refuses_them_or_give_its_values_and_dtype(name):
    ours, theirs = MASK_OPS[name]
    try:
        expected = theirs(torch.tensor(MASK)).numpy()
    except (RuntimeError, NotImplementedError):
        with pytest.raises(TypeError, match="is refused, as in PyTorch"):
            ours(Tensor(MASK))
        return
    result = ours(Tensor(MASK))
    assert result.dtype == expected.dtype
    np.testing.assert_allclose(result.data, expected, rtol=1e-6)  # (exp: another libm's last bit)


@pytest.mark.parametrize("name", MASK_ANSWERS_PYTORCH_REFUSES)
def test_the_answers_a_mask_has_are_kept_where_pytorch_refuses_them(name):
    """Pinned so that a change on either side is seen: PyTorch refuses these on bool tensors,
    ours answers (the fraction of Trues, the first True, any in a window, as float32 …)."""
    mask_op = MASK_ANSWERS_PYTORCH_REFUSES[name]
    as_torch = {"mean": lambda m: m.mean(), "argmax": lambda m: m.argmax(1), "argmin": lambda m: m.argmin(),
                "max_pool2d": lambda m: functional.max_pool2d(m.reshape(1, 1, 2, 3), (1, 2)),
                "avg_pool2d": lambda m: functional.avg_pool2d(m.reshape(1, 1, 2, 3), (1, 2)),
                "softmax": lambda m: m.softmax(1), "leaky_relu": lambda m: functional.leaky_relu(m, 0.1),
                "mask - 1": lambda m: m - 1}[name]
    with pytest.raises((RuntimeError, NotImplementedError)):
        as_torch(torch.tensor(MASK))
    expected = as_torch(torch.tensor(MASK.astype(np.int64)).float() if name not in ("argmax", "argmin", "mask - 1", "max_pool2d")
                        else torch.tensor(MASK.astype(np.int64)))
    np.testing.assert_allclose(mask_op(Tensor(MASK)).data.astype(np.float64), expected.numpy().astype(np.float64), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
def test_comparisons_with_an_int_beyond_the_dtype_answer_where_pytorch_raises_or_wraps(dtype):
    """A deliberate difference (README, "Decisions"): PyTorch raises OverflowError for ints
    beyond int64 and wraps smaller ones around to an int32 tensor's dtype (2**40 is 0 there);
    ours gives the true answer. Pinned on both sides, so a change in either is seen."""
    with pytest.raises(OverflowError):
        torch.tensor(np.array([1], dtype)) < 2**70
    if dtype == np.int32:
        assert (torch.tensor(np.array([1], dtype)) < 2**40).tolist() == [False]  # wrapped to 0
    for big in (2**40, 2**70):
        assert (Tensor(np.array([1], dtype)) < big).data.tolist() == [True]


@pytest.mark.parametrize("shape", [(), (1,), (2, 1, 3), (1, 1, 4, 1)])
def test_unsqueeze_and_squeeze_shapes_match_pytorch(shape):
    array = np.zeros(shape)
    ours, theirs = Tensor(array), torch.from_numpy(array)
    for axis in range(-len(shape) - 1, len(shape) + 1):
        assert ours.unsqueeze(axis).shape == tuple(theirs.unsqueeze(axis).shape)
    assert ours.squeeze().shape == tuple(theirs.squeeze().shape)
    for axis in range(-max(len(shape), 1), max(len(shape), 1)):
        assert ours.squeeze(axis).shape == tuple(theirs.squeeze(axis).shape)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adamw_steps_match_pytorch(weight_decay):
    from tinygrad_cnn.optim import AdamW

    rng = np.random.default_rng(6)
    start, grads = rng.standard_normal((2, 3)), rng.standard_normal((5, 2, 3))
    ours = Tensor(start.copy(), requires_grad=True)
    theirs = torch.tensor(start.copy(), requires_grad=True)
    our_optimizer = AdamW([ours], lr=0.03, betas=(0.8, 0.95), weight_decay=weight_decay)
    their_optimizer = torch.optim.AdamW([theirs], lr=0.03, betas=(0.8, 0.95), weight_decay=weight_decay)
    for grad in grads:
        ours.grad, theirs.grad = grad.copy(), torch.tensor(grad)
        our_optimizer.step()
        their_optimizer.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_a_sequential_network_matches_pytorchs_in_names_values_and_gradients():
    """The same layers in nn.Sequential on both sides, PyTorch's weights copied into ours
    (a Linear weight transposed: ours is (in, out)): the same state-dict names, logits, and
    every parameter's gradient of the cross-entropy; dropout and batch norm in eval mode."""
    from tinygrad_cnn import nn

    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.LeakyReLU(0.1),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 6, 3), torch.nn.Tanh(), torch.nn.AvgPool2d(3, stride=1, padding=1),
        torch.nn.Flatten(), torch.nn.Dropout(0.3), torch.nn.Linear(6 * 2 * 2, 5), torch.nn.Sigmoid(),
        torch.nn.Linear(5, 3), torch.nn.LogSoftmax(dim=1),
    ).double().eval()
    ours = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, dtype=np.float64), nn.BatchNorm2d(4, dtype=np.float64), nn.LeakyReLU(0.1),
        nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, dtype=np.float64), nn.Tanh(), nn.AvgPool2d(3, stride=1, padding=1),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(6 * 2 * 2, 5, dtype=np.float64), nn.Sigmoid(),
        nn.Linear(5, 3, dtype=np.float64), nn.LogSoftmax(dim=1),
    )
    their_state = {key: value.detach().numpy() for key, value in theirs.state_dict().items()
                   if not key.endswith("num_batches_tracked")}
    assert list(nn.state_dict(ours)) == list(their_state)
    nn.load_state_dict(ours, {key: value.T if key in ("9.weight", "11.weight") else value
                              for key, value in their_state.items()})
    images = np.random.default_rng(1).standard_normal((3, 1, 8, 8))
    labels = np.array([0, 2, 1])
    our_logits = ours(images)
    their_logits = theirs(torch.tensor(images))
    np.testing.assert_allclose(our_logits.data, their_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    our_logits.nll_loss(labels).backward()
    functional.nll_loss(their_logits, torch.tensor(labels)).backward()
    their_grads = {name: param.grad.numpy() for name, param in theirs.named_parameters()}
    for name, param in nn.named_parameters(ours).items():
        expected = their_grads[name].T if name in ("9.weight", "11.weight") else their_grads[name]
        np.testing.assert_allclose(param.grad, expected, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("ours, theirs, data", [
    (lambda t: t.var(dim=1), lambda t: torch.var(t, dim=1), x),
    (lambda t: t.var(unbiased=False), lambda t: torch.var(t, unbiased=False), x),
    (lambda t: t.var((0, 1), correction=2, keepdim=True), lambda t: torch.var(t, (0, 1), correction=2, keepdim=True), x),
    (lambda t: t.std(dim=0), lambda t: torch.std(t, dim=0), x),
    (lambda t: t.std(dim=1), lambda t: torch.std(t, dim=1), np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])),  # a 0 std
    (lambda t: t.logsumexp(1), lambda t: torch.logsumexp(t, 1), x * 400),
    (lambda t: t.logsumexp((0, 1), keepdim=True), lambda t: torch.logsumexp(t, (0, 1), keepdim=True), x),
    (lambda t: t.mse_loss(positive), lambda t: functional.mse_loss(t, torch.tensor(positive)), x),
    (lambda t: t.l1_loss(kinks * 0, reduction="sum"), lambda t: functional.l1_loss(t, torch.zeros(2, 4, dtype=torch.float64),
                                                                                  reduction="sum"), kinks),
    (lambda t: t.mse_loss(positive, reduction="none"), lambda t: functional.mse_loss(t, torch.tensor(positive), reduction="none"), x),
    (lambda t: t.binary_cross_entropy_with_logits(positive / 2), lambda t: functional.binary_cross_entropy_with_logits(
        t, torch.tensor(positive / 2)), np.concatenate([kinks * 300, x[:1]])),  # 0s, ±600
])
def test_var_std_logsumexp_and_the_regression_losses_match_pytorch(ours, theirs, data):
    compare(ours, theirs, data)


def test_a_causal_self_attention_block_matches_pytorchs_values_and_gradients():
    """A transformer block as a PyTorch user writes one (embedding, layer norm, a q/k/v projection
    cut by chunk, a causal mask by masked_fill, softmax attention, a residual, a head), built
    from the same weights on both sides (Linear weights transposed: ours are (in, out))."""
    from tinygrad_cnn import nn

    vocabulary, width, length = 11, 8, 5
    rng = np.random.default_rng(3)
    weights = {"embed": rng.standard_normal((vocabulary, width)), "norm_w": rng.uniform(0.5, 1.5, width),
               "norm_b": rng.standard_normal(width), "qkv": rng.standard_normal((width, 3 * width)) / 3,
               "head": rng.standard_normal((width, vocabulary)) / 3}
    tokens = rng.integers(0, vocabulary, (2, length))
    future = np.triu(np.ones((length, length), dtype=bool), k=1)

    def block(embed, norm_w, norm_b, qkv, head, framework):
        if framework == "ours":
            x = embed[tokens]
            x = x.layer_norm(width, norm_w, norm_b)
            query, key, value = (x @ qkv).chunk(3, dim=-1)
            scores = (query @ key.transpose(-2, -1)) / np.sqrt(width)
            attended = scores.masked_fill(future, -np.inf).softmax(-1) @ value
            return ((x + attended) @ head).log_softmax(-1)
        x = embed[torch.tensor(tokens)]
        x = functional.layer_norm(x, (width,), norm_w, norm_b)
        query, key, value = (x @ qkv).chunk(3, dim=-1)
        scores = (query @ key.transpose(-2, -1)) / np.sqrt(width)
        attended = scores.masked_fill(torch.tensor(future), -np.inf).softmax(-1) @ value
        return ((x + attended) @ head).log_softmax(-1)

    ours = {name: Tensor(array, requires_grad=True) for name, array in weights.items()}
    theirs = {name: torch.tensor(array, requires_grad=True) for name, array in weights.items()}
    our_output, their_output = block(**ours, framework="ours"), block(**theirs, framework="torch")
    np.testing.assert_allclose(our_output.data, their_output.detach().numpy(), rtol=1e-10, atol=1e-12)
    grad_out = rng.standard_normal(our_output.shape)
    our_output.backward(grad_out)
    their_output.backward(torch.tensor(grad_out))
    for name in weights:
        np.testing.assert_allclose(ours[name].grad, theirs[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    assert nn.Embedding(vocabulary, width)(tokens).shape == tuple(torch.nn.Embedding(vocabulary, width)(
        torch.tensor(tokens)).shape)


@pytest.mark.parametrize("step_size, gamma", [(1, 0.5), (3, 0.1), (4, 1.5)])
def test_step_lr_gives_the_rates_of_pytorchs_step_lr(step_size, gamma):
    """Our step s against PyTorch's StepLR after s calls of scheduler.step()."""
    from tinygrad_cnn.optim import StepLR

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    schedule, expected = StepLR(0.2, step_size=step_size, gamma=gamma), []
    for _ in range(13):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose([schedule(step) for step in range(13)], expected, rtol=1e-12)
