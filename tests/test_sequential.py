"""nn.Sequential and the layers that hold no parameters (ReLU, LeakyReLU, Sigmoid, Tanh,
Softmax, LogSoftmax, Flatten, MaxPool2d, AvgPool2d, Dropout): composition, PyTorch's parameter
names, indexing, state dicts, each layer against the Tensor method it stands for (values and
gradients), training a small Sequential network, and the errors a wrong argument gets."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from test_nn_layers import evaluation_mode, random_array, seeds  # noqa: F401  (the fixture: outside training mode)

from tinygrad_cnn import Tensor, train_mode
from tinygrad_cnn.nn import (
    GELU,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    get_parameters,
    load,
    load_state_dict,
    named_parameters,
    save,
    state_dict,
)
from tinygrad_cnn.optim import SGD
from tinygrad_cnn.random import manual_seed

# -- Sequential -----------------------------------------------------------------------------


def test_sequential_applies_its_layers_in_order_and_names_parameters_as_pytorch():
    manual_seed(0)
    first, second = Linear(3, 4), Linear(4, 2)
    model = Sequential(first, ReLU(), second)
    x = random_array(1, (5, 3)).astype(np.float32)
    np.testing.assert_array_equal(model(x).data, second(first(x).relu()).data)
    assert list(named_parameters(model)) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert get_parameters(model) == [first.weight, first.bias, second.weight, second.bias]


def test_named_layers_nested_sequentials_and_a_model_holding_one():
    manual_seed(0)
    named = Sequential({"conv": Conv2d(1, 2, 3), "act": ReLU(), "norm": BatchNorm2d(2)})
    assert named.conv is named[0] and named.norm is named[-1]
    assert list(state_dict(named)) == ["conv.weight", "conv.bias", "norm.weight", "norm.bias",
                                       "norm.running_mean", "norm.running_var"]
    assert list(named_parameters(Sequential(ReLU(), Sequential(Linear(2, 2))))) == ["1.0.weight", "1.0.bias"]

    class Model:
        def __init__(self):
            self.features = Sequential(Conv2d(1, 2, 3), ReLU())
            self.classifier = Linear(2, 3)

    assert list(named_parameters(Model())) == ["features.0.weight", "features.0.bias",
                                               "classifier.weight", "classifier.bias"]


def test_indexing_slicing_length_iteration_and_append_as_pytorch():
    layers = [Linear(2, 3), ReLU(), Linear(3, 4), Tanh()]
    model = Sequential(*layers)
    assert len(model) == 4 and list(model) == layers
    assert model[2] is layers[2] and model[-1] is layers[3] and model[np.int64(1)] is layers[1]
    assert model[-4] is layers[0]
    tail = model[1:3]  # the same layer objects, under their names in the whole
    assert isinstance(tail, Sequential) and list(tail) == layers[1:3]
    assert list(state_dict(tail)) == ["2.weight", "2.bias"]
    x = random_array(0, (2, 2)).astype(np.float32)
    np.testing.assert_array_equal(model(x).data, model[2:](model[:2](x)).data)
    extra = Linear(4, 1)
    assert model.append(extra) is model and model[4] is extra and "4.weight" in state_dict(model)
    assert len(Sequential()) == 0 and Sequential()(x) is x  # no layers: the input, as PyTorch's
    np.testing.assert_array_equal(Sequential(Tensor.relu)(x).data, np.maximum(x, 0))  # a function, on an array


def test_a_state_dict_saved_from_one_sequential_loads_into_another(tmp_path):
    def network():
        return Sequential(Conv2d(1, 3, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(3 * 4 * 4, 5))

    manual_seed(0)
    trained = network()
    manual_seed(1)
    fresh = network()
    images = random_array(2, (2, 1, 8, 8)).astype(np.float32)
    assert not np.array_equal(trained(images).data, fresh(images).data)
    save(state_dict(trained), tmp_path / "model.npz")
    load_state_dict(fresh, load(tmp_path / "model.npz"))
    np.testing.assert_array_equal(trained(images).data, fresh(images).data)


def test_a_small_sequential_cnn_learns_to_tell_two_patterns_apart():
    # class 0: a bright left half, class 1: a bright right half, under noise
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64)
    images = rng.normal(0, 0.3, (64, 1, 8, 8)).astype(np.float32)
    images[labels == 0, :, :, :4] += 1
    images[labels == 1, :, :, 4:] += 1
    manual_seed(0)
    model = Sequential(Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Dropout(0.1), Linear(4 * 4 * 4, 2))
    optimizer = SGD(get_parameters(model), lr=0.1, momentum=0.9)
    losses = []
    with train_mode():
        for _ in range(30):
            optimizer.zero_grad()
            loss = model(images).cross_entropy(labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert losses[-1] < losses[0] / 4
    assert (model(images).data.argmax(axis=1) == labels).mean() == 1.0


@pytest.mark.parametrize("make, error, words", [
    (lambda: Sequential(Linear(2, 2), 3), TypeError, "layer '1' must be callable"),
    (lambda: Sequential({"": ReLU()}), ValueError, "got ''"),
    (lambda: Sequential({"a.b": ReLU()}), ValueError, "without a dot"),
    (lambda: Sequential({"_hidden": ReLU()}), ValueError, "not start with '_'"),
    (lambda: Sequential({3: ReLU()}), TypeError, "a layer's name must be a string, got 3"),
    (lambda: Sequential({"append": ReLU()}), ValueError, "'append' is already the name of a method"),
    (lambda: Sequential({"1": ReLU()}).append(ReLU()), ValueError, "'1' is already another layer's name"),
    (lambda: Sequential(ReLU), TypeError, "layer '0' is the class ReLU, not a layer; make one: ReLU"),
    (lambda: Sequential(Sequential(Linear(2, 2)).__call__), TypeError,
     "layer '0' is a method of an object that holds parameters"),
    (lambda: Sequential(Linear(3, 2), lambda t: t.data)(np.ones((1, 3))), TypeError,
     "layer '1' returned a ndarray, not a Tensor"),
    (lambda: Sequential(ReLU(), lambda t: None)(np.ones(2)), TypeError, "layer '1' returned a NoneType"),
    (lambda: Sequential(ReLU())([1.0]), TypeError, "Sequential expects a Tensor or a numpy array, got a list"),
    (lambda: Sequential(ReLU())[1], IndexError, "index 1 is out of range for 1 layers"),
    (lambda: Sequential(ReLU())["0"], TypeError, "ints or slices"),
    (lambda: Sequential(ReLU())[True], TypeError, "ints or slices"),
])
def test_a_wrong_layer_name_or_index_is_an_error_naming_it(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_summary_tabulates_a_sequential_with_its_parameter_names():
    from tinygrad_cnn.summary import summary

    model = Sequential(Flatten(), Dropout(0.2), Linear(4 * 4, 3), ReLU())
    rows = summary(model, (2, 1, 4, 4), print_table=False)
    assert [name for row in rows for name in row["param_names"]] == ["2.weight", "2.bias"]
    assert rows[-1]["output_shape"] == (2, 3)


def test_the_repr_lists_the_layers_in_pytorchs_layout():
    model = Sequential(Conv2d(1, 16, 3, padding=1), ReLU(), Sequential(MaxPool2d(2), Flatten()),
                       Linear(16 * 14 * 14, 10, bias=False), Dropout(0.25))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): MaxPool2d(kernel_size=(2, 2), stride=(2, 2))\n"
        "    (1): Flatten(start_dim=1, end_dim=-1)\n"
        "  )\n"
        "  (3): Linear(in_features=3136, out_features=10, bias=False)\n"
        "  (4): Dropout(p=0.25)\n"
        ")"
    )
    assert repr(Sequential()) == "Sequential()"
    assert repr(Conv2d(4, 8, (3, 5), stride=2, dilation=2, groups=4, bias=False)) == \
        "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), dilation=(2, 2), groups=4, bias=False)"


# -- the parameterless layers ---------------------------------------------------------------

LAYERS = [
    (ReLU(), lambda x: x.relu()),
    (LeakyReLU(0.2), lambda x: x.leaky_relu(0.2)),
    (Sigmoid(), lambda x: x.sigmoid()),
    (Tanh(), lambda x: x.tanh()),
    (GELU(), lambda x: x.gelu()),
    (GELU("tanh"), lambda x: x.gelu("tanh")),
    (Softmax(dim=1), lambda x: x.softmax(1)),
    (LogSoftmax(dim=-1), lambda x: x.log_softmax(-1)),
    (LogSoftmax(dim=1), lambda x: x.log_softmax(1)),
    (Flatten(), lambda x: x.flatten(1)),
    (Flatten(0, 2), lambda x: x.flatten(0, 2)),
    (MaxPool2d(2), lambda x: x.max_pool2d(2)),
    (MaxPool2d((2, 1), stride=1), lambda x: x.max_pool2d((2, 1), 1)),
    (AvgPool2d(2, stride=1), lambda x: x.avg_pool2d(2, 1)),
    (AvgPool2d(3, stride=2, padding=1), lambda x: x.pad(((0, 0), (0, 0), (1, 1), (1, 1))).avg_pool2d(3, 2)),
    (AvgPool2d((2, 3), stride=1, padding=(1, 0)), lambda x: x.pad(((0, 0), (0, 0), (1, 1), (0, 0))).avg_pool2d((2, 3), 1)),
]


@pytest.mark.parametrize("layer, method", LAYERS, ids=[repr(layer) for layer, _ in LAYERS])
@given(shape=hnp.array_shapes(min_dims=4, max_dims=4, min_side=3, max_side=5), seed=seeds)
def test_each_layer_gives_the_values_and_gradients_of_its_tensor_method(layer, method, shape, seed):
    data = np.round(random_array(seed, shape))  # whole numbers -2..2: ties in the pools, zeros at relu's kink
    grad_out = None
    for make_output in (layer, method):
        x = Tensor(data, requires_grad=True)
        output = make_output(x)
        if grad_out is None:
            grad_out, expected_output = random_array(seed + 1, output.shape), output.data
        else:
            np.testing.assert_array_equal(output.data, expected_output)
        output.backward(grad_out)
        if make_output is layer:
            layer_grad = x.grad
    np.testing.assert_array_equal(layer_grad, x.grad)


def test_the_layers_take_numpy_arrays_and_unbatched_images():
    image = random_array(0, (3, 6, 6)).astype(np.float32)  # one C,H,W image, as PyTorch's pools take
    assert MaxPool2d(2)(image).shape == (3, 3, 3)
    np.testing.assert_allclose(AvgPool2d(3, 1, padding=1)(image).data,
                               AvgPool2d(3, 1, padding=1)(image[None]).data[0], rtol=1e-6)
    np.testing.assert_array_equal(ReLU()(image).data, np.maximum(image, 0))


def test_avg_pool_padding_counts_the_zeros_in_each_mean_as_pytorchs_default():
    ones = np.ones((1, 1, 3, 3), dtype=np.float32)
    pooled = AvgPool2d(3, stride=1, padding=1)(ones).data[0, 0]
    np.testing.assert_allclose(pooled, [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]], rtol=1e-6)
    rows_only = AvgPool2d((3, 1), stride=1, padding=(1, 0))(np.ones((1, 1, 2, 2), dtype=np.float32)).data[0, 0]
    np.testing.assert_allclose(rows_only, [[2 / 3, 2 / 3], [2 / 3, 2 / 3]], rtol=1e-6)  # rows padded, columns not


def test_dropout_layer_is_the_identity_outside_training_and_tensor_dropout_inside():
    x = Tensor(random_array(0, (4, 50)))
    layer = Dropout(0.2)
    assert layer(x) is x
    pixels = np.zeros((1, 784), dtype=np.uint8)  # what summary and ONNX export trace with
    assert Dropout(0.2)(pixels).dtype == np.uint8
    with train_mode():
        manual_seed(3)
        dropped = layer(x).data
        manual_seed(3)
        np.testing.assert_array_equal(dropped, x.dropout(0.2).data)
    assert 0 < (dropped == 0).mean() < 0.5
    np.testing.assert_allclose(dropped[dropped != 0], 1.25 * x.data[dropped != 0])  # kept ones scaled by 1/(1 − p)


@pytest.mark.parametrize("make, error, words", [
    (lambda: MaxPool2d(0), ValueError, "MaxPool2d: kernel_size must be positive"),
    (lambda: MaxPool2d(2, stride=(1, 2, 3)), TypeError, "MaxPool2d: stride must be an int or a pair"),
    (lambda: MaxPool2d(2, padding=1), ValueError, "MaxPool2d: padding must be 0, got 1: PyTorch pads a max pool with -inf"),
    (lambda: AvgPool2d(2.0), TypeError, "AvgPool2d: kernel_size must be an int or a pair"),
    (lambda: AvgPool2d(2, padding=-1), ValueError, "AvgPool2d: padding must be non-negative"),
    (lambda: AvgPool2d(2, 1, padding=2), ValueError, r"AvgPool2d: padding 2 must be at most half the kernel size 2"),
    (lambda: AvgPool2d(2, padding=1)(np.zeros((6, 6))), ValueError,
     r"AvgPool2d input must be 4-D \(N,C,H,W\), or 3-D \(C,H,W\) for one image, got shape \(6, 6\)"),
    (lambda: AvgPool2d(9, padding=(1, 2))(np.zeros((1, 6, 6))), ValueError,
     r"AvgPool2d kernel 9x9 is larger than the input 6x6 padded by \(1, 2\)"),
    (lambda: LeakyReLU("0.1"), TypeError, "LeakyReLU: negative_slope must be a number"),
    (lambda: GELU("exact"), ValueError, "GELU: approximate must be 'none' or 'tanh', got 'exact'"),
    (lambda: Softmax(dim=1.0), TypeError, "Softmax: dim must be an int"),
    (lambda: LogSoftmax(dim=None), TypeError, "LogSoftmax: dim must be an int"),
    (lambda: Flatten(True), TypeError, "Flatten: start_dim must be an int"),
    (lambda: Dropout(1.5), ValueError, "dropout probability p must be a number in \\[0, 1\\]"),
    (lambda: ReLU()([1.0, 2.0]), TypeError, "ReLU expects a Tensor or a numpy array, got a list"),
    (lambda: Flatten(1, 5)(np.zeros((2, 3))), IndexError, "flatten: end_dim 5 is out of range"),
])
def test_a_wrong_layer_argument_is_an_error_naming_the_layer_and_the_argument(make, error, words):
    with pytest.raises(error, match=words):
        make()
