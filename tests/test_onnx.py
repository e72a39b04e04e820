"""ONNX export: the exported SeedCNN and SeedMLP run in onnxruntime on real MNIST test images
and give our logits (float32, within 1e-5) and predictions; every exportable op round-trips
on small random inputs; unsupported ops and untraceable models are clear errors.

onnx and onnxruntime are in the test extra, so CI runs all of this; MNIST comes from
TINYGRAD_CNN_DATA as in test_mnist_example.py (missing data fails in CI, skips on a laptop)."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from tinygrad_cnn import Tensor, no_grad, ops  # noqa: E402
from tinygrad_cnn.datasets import mnist  # noqa: E402
from tinygrad_cnn.function import Function  # noqa: E402
from tinygrad_cnn.models import SeedCNN, SeedMLP  # noqa: E402
from tinygrad_cnn.nn import get_parameters, state_dict  # noqa: E402
from tinygrad_cnn.onnx import CONVERTERS, NOT_EXPORTABLE, OPSET, UnsupportedOpError, export, to_onnx  # noqa: E402
from tinygrad_cnn.optim import Adam  # noqa: E402


def session(path: Path) -> "onnxruntime.InferenceSession":
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_onnx(path: Path, array: np.ndarray, input_name: str = "images") -> np.ndarray:
    return session(path).run(None, {input_name: array})[0]


def forward(model, array: np.ndarray) -> np.ndarray:
    with no_grad():
        return model(array).data


# ----------------------------------------------------------------------------- the seed networks


@pytest.fixture(scope="module")
def mnist_data() -> tuple[np.ndarray, ...]:
    directory = os.environ.get("TINYGRAD_CNN_DATA", "")
    try:
        return mnist(directory or None, download=False)
    except FileNotFoundError:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide MNIST: TINYGRAD_CNN_DATA={directory!r} does not hold the four files")
        pytest.skip("MNIST not available: set TINYGRAD_CNN_DATA to a directory with the four IDX files")


def trained(model, mnist_data, steps: int = 3):
    """``model`` after a few Adam steps on real images, so no bias is still zero."""
    x_train, y_train = mnist_data[0], mnist_data[1]
    optimizer = Adam(get_parameters(model), lr=0.01)
    for step in range(steps):
        images, labels = x_train[step * 32 : (step + 1) * 32], y_train[step * 32 : (step + 1) * 32]
        optimizer.zero_grad()
        model(images).cross_entropy(labels).backward()
        optimizer.step()
    return model


MODELS: dict[str, Callable] = {
    "SeedCNN": lambda: SeedCNN(seed=0),
    "SeedCNN op by op": lambda: SeedCNN(seed=0, fused=False),
    "SeedMLP": lambda: SeedMLP(seed=0),
}


@pytest.mark.parametrize("name", MODELS)
def test_seed_networks_give_our_logits_in_onnxruntime_on_real_test_images(name, mnist_data, tmp_path):
    model = trained(MODELS[name](), mnist_data)
    assert all(np.any(array != 0) for array in state_dict(model).values())
    path = tmp_path / "model.onnx"
    export(model, path, (1, 1, 28, 28))
    images = mnist_data[2][:100]
    theirs = run_onnx(path, images.astype(np.float32))  # raw 0..255 pixels: the /255 is in the file
    ours = forward(model, images)
    assert theirs.dtype == np.float32 and theirs.shape == (100, 10)
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)
    assert np.array_equal(theirs.argmax(axis=1), ours.argmax(axis=1))


def test_exported_seed_cnn_has_a_dynamic_batch_named_parameters_and_the_division_by_255(mnist_data, tmp_path):
    model = trained(SeedCNN(seed=1), mnist_data)
    path = tmp_path / "seed_cnn.onnx"
    export(model, path, (1, 1, 28, 28))
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.opset_import[0].version == OPSET
    (graph_input,), (graph_output,) = loaded.graph.input, loaded.graph.output
    assert (graph_input.name, graph_output.name) == ("images", "logits")
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [dim.dim_value for dim in dims[1:]] == [1, 28, 28]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT

    initializers = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in loaded.graph.initializer}
    for name, array in state_dict(model).items():
        assert np.array_equal(initializers[name], array), name
    first = loaded.graph.node[0]
    assert first.op_type == "Div" and first.input[0] == "images"
    assert initializers[first.input[1]] == 255

    images = mnist_data[2][:7]  # exported with batch 1, run with batch 7
    np.testing.assert_allclose(run_onnx(path, images.astype(np.float32)), forward(model, images), rtol=1e-5, atol=1e-5)


def test_the_trainer_writes_the_trained_model_with_export_onnx(mnist_data, tmp_path):
    repository = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(repository / "examples" / "mnist.py"), "--no-progress", "--epochs", "1",
               "--limit-train", "256", "--limit-test", "200", "--batch-size", "32",
               "--json", str(tmp_path / "result.json"), "--export-onnx", str(tmp_path / "trained.onnx")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(repository)})
    assert result.returncode == 0, result.stdout + result.stderr
    size = (tmp_path / "trained.onnx").stat().st_size
    assert f"ONNX model written to {tmp_path / 'trained.onnx'} ({size:,} bytes)" in result.stdout
    # the file predicts exactly what the trainer measured: the same accuracy on the same images
    images, labels = mnist_data[2][:200], mnist_data[3][:200]
    predictions = run_onnx(tmp_path / "trained.onnx", images.astype(np.float32)).argmax(axis=1)
    accuracy = json.loads((tmp_path / "result.json").read_text())["test_accuracy"]
    assert 100 * np.mean(predictions == labels) == pytest.approx(accuracy)


def test_the_pools_zero_padding_stays_zero_padding(tmp_path):
    """Negative activations: a zero-padded window's maximum is 0 at the border, where ONNX's
    own MaxPool padding (−inf) would give the largest negative value instead."""
    negative = -np.random.default_rng(0).uniform(1, 2, size=(2, 3, 6, 6)).astype(np.float32)
    padding = ((0, 0), (0, 0), (0, 1), (0, 1))
    expressions = {
        "pad then max_pool2d": lambda x: x.pad(padding).max_pool2d(3, stride=2),
        "pad_max_pool2d": lambda x: x.pad_max_pool2d(padding[2:], 3, stride=2, relu=False),
    }
    for name, expression in expressions.items():
        model = Expression(expression)
        export(model, tmp_path / "pool.onnx", images=negative)
        ours = forward(model, negative)
        assert np.any(ours == 0) and np.any(ours < 0), name  # the check below can tell the two paddings apart
        np.testing.assert_array_equal(run_onnx(tmp_path / "pool.onnx", negative), ours, err_msg=name)


# ----------------------------------------------------------------------------- every op


class Expression:
    """A model that applies ``function`` to its input as a Tensor (its parameters: ``weights``)."""

    def __init__(self, function: Callable[[Tensor], Tensor], **weights: np.ndarray):
        self.function = function
        self.weights = {name: Tensor(array) for name, array in weights.items()}

    def __call__(self, array: np.ndarray) -> Tensor:
        return self.function(Tensor(array), **self.weights)


def uniform(seed: int, shape, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def defines(*names: str) -> Callable[[], bool]:
    """The case needs these Tensor methods (some ops land later): defined by Tensor itself."""
    return lambda: all(getattr(Tensor, name, None) not in (None, getattr(object, name, None)) for name in names)


def takes(method: str, *options: str) -> Callable[[], bool]:
    """The case needs these keyword options of a Tensor method."""
    return lambda: hasattr(Tensor, method) and set(options) <= set(inspect.signature(getattr(Tensor, method)).parameters)


def case(name: str, shape, function, needs: Callable[[], bool] = lambda: True,
         low: float = -2.0, high: float = 2.0, **weights: np.ndarray):
    """One op round trip on an input of ``shape`` drawn from [low, high)."""
    return pytest.param(shape, function, (low, high), weights, id=name), needs


OTHER = {"other": uniform(15, (3, 4))}
DENSE = {"weight": uniform(10, (4, 5))}
CONV = {"weight": uniform(11, (4, 2, 3, 3))}
CONV_BIAS = {**CONV, "bias": uniform(12, (4,))}
CONV_POSITION_BIAS = {**CONV, "bias": uniform(13, (4, 5, 5))}
GROUPED = {"weight": uniform(14, (4, 1, 3, 3))}
CHANNELS = {"weight": uniform(16, (3,)), "bias": uniform(17, (3,))}
RUNNING_MEAN, RUNNING_VAR = uniform(18, (3,)), uniform(19, (3,), 0.5, 2.0)
MASK = np.array([True, False, False, True])

CASES = [
    case("add", (2, 3, 4), lambda x, other: x + other + 1.5, **OTHER),
    case("sub", (2, 3, 4), lambda x, other: 1.5 - x - other, **OTHER),
    case("mul", (2, 3, 4), lambda x, other: x * other * 2.0, **OTHER),
    case("div", (2, 3, 4), lambda x, other: x / (other + 3.0) / 4.0, **OTHER),
    case("neg", (2, 3), lambda x: -x),
    case("relu", (2, 3, 4), lambda x: x.relu()),
    case("exp", (2, 3), lambda x: x.exp(), defines("exp")),
    case("log", (2, 3), lambda x: x.log(), defines("log"), low=0.1),
    case("sqrt", (2, 3), lambda x: x.sqrt(), defines("sqrt"), low=0.1),
    case("pow", (2, 3), lambda x: x ** 3 + x ** 0.5, defines("__pow__"), low=0.1),
    case("number ** x", (2, 3), lambda x: 2.0 ** x, defines("__rpow__")),
    case("tanh", (2, 3), lambda x: x.tanh(), defines("tanh")),
    case("embedding", (2, 3), lambda x, table: ops.Embedding.apply(table, (x * 2).astype(np.int64)), low=0.0, high=2.4,
         table=uniform(20, (5, 4))),
    case("sin", (2, 3), lambda x: x.sin(), defines("sin"), low=-8.0, high=8.0),
    case("cos", (2, 3), lambda x: x.cos(), defines("cos"), low=-8.0, high=8.0),
    case("sigmoid", (2, 3), lambda x: x.sigmoid(), defines("sigmoid")),
    case("abs", (2, 3), lambda x: x.abs(), defines("abs")),
    case("clip", (2, 3, 4), lambda x: x.clip(min=-0.5, max=0.5), defines("clip")),
    case("clip below", (2, 3, 4), lambda x: x.clip(min=0.2), defines("clip")),
    case("clip above", (2, 3, 4), lambda x: x.clip(max=-0.1), defines("clip")),
    case("clip to tensors", (2, 3, 4), lambda x, other: x.clip(min=other - 1.0, max=Tensor(np.full((3, 1), 0.5, np.float32))),
         defines("clip"), **OTHER),
    case("clip to a tensor above", (2, 3, 4), lambda x, other: x.clip(max=other), defines("clip"), **OTHER),
    case("maximum", (2, 3, 4), lambda x, other: x.maximum(other), defines("maximum"), **OTHER),
    case("minimum", (2, 3, 4), lambda x, other: x.minimum(other), defines("minimum"), **OTHER),
    case("where", (2, 3, 4), lambda x, other: Tensor.where(Tensor(MASK), x, other * 2.0), defines("where"), **OTHER),
    case("where on a computed mask", (2, 3, 4), lambda x, other: Tensor.where(x > other, x, other * 2.0), **OTHER),
    case("compare <", (2, 3, 4), lambda x: Tensor.where(x < 0.5, x, -1.0)),
    case("compare <=", (2, 3, 4), lambda x: Tensor.where(x <= np.float32(0.25), x, 0.0)),
    case("compare >=", (2, 3, 4), lambda x, other: Tensor.where(x >= other, 1.0, x), **OTHER),
    case("compare ==", (2, 3, 4), lambda x: Tensor.where(x.clip(min=0.0) == 0.0, 3.0, x), defines("clip")),
    case("compare !=", (2, 3, 4), lambda x: Tensor.where(x.relu() != 0.0, x, 5.0)),
    case("compare floats with ints, bools with bools", (2, 3, 4), lambda x, counts: Tensor.where(
        ((x >= counts) < (x > -1.0)) != (x <= 0.5), x, 0.0), counts=np.array([-1, 0, 1, 2])),
    case("cast to int and back (truncation toward zero)", (2, 3, 4),
         lambda x: (x * 3.0).astype(np.int64).astype(np.float32) / 3.0 + x),
    case("cast to bool", (2, 3, 4), lambda x: Tensor.where((x * 2.0).astype(np.int32).astype(np.bool_), x, -x)),
    case("leaky_relu", (2, 3, 4), lambda x: x.leaky_relu(0.2), defines("leaky_relu")),
    case("elu", (2, 3, 4), lambda x: x.elu(0.7), defines("elu")),
    case("gelu", (2, 3, 4), lambda x: x.gelu(), defines("gelu"), low=-4.0, high=4.0),
    case("gelu tanh", (2, 3, 4), lambda x: x.gelu("tanh"), defines("gelu"), low=-4.0, high=4.0),
    case("sum over an axis", (2, 3, 4), lambda x: x.sum(axis=1)),
    case("sum over axes, kept", (2, 3, 4), lambda x: x.sum(axis=(0, -1), keepdims=True)),
    case("sum of all", (2, 3, 4), lambda x: x.sum()),
    case("sum of a bool mask (int64)", (2, 3, 4), lambda x: (x > 0.0).sum(axis=1)),
    case("mean over an axis", (2, 3, 4), lambda x: x.mean(axis=-1)),
    case("mean over axes, kept", (2, 3, 4), lambda x: x.mean(axis=(0, 2), keepdims=True)),
    case("mean of all", (2, 3, 4), lambda x: x.mean()),
    case("max", (2, 3, 4), lambda x: x.max(axis=-1), defines("max")),
    case("max of all", (2, 3, 4), lambda x: x.max(), defines("max")),
    case("min", (2, 3, 4), lambda x: x.min(axis=(0, 1), keepdims=True), defines("min")),
    case("argmax", (2, 3, 4), lambda x: x.argmax(axis=1)),
    case("argmax, kept", (2, 3, 4), lambda x: x.argmax(axis=-1, keepdims=True)),
    case("argmin of all", (2, 3, 4), lambda x: x.argmin()),
    case("argmin of all, kept", (2, 3, 4), lambda x: x.argmin(keepdims=True)),
    case("argmax on ties (the first)", (2, 3, 4), lambda x: x.clip(min=0.5).argmax(axis=0), defines("clip")),
    case("argmax of a bool mask", (2, 3, 4), lambda x: (x > 0.0).argmax(axis=1)),
    case("argmin of a 0-d tensor along axis 0", (2, 3), lambda x: x.sum().argmin(axis=0)),
    case("reshape", (2, 3, 4), lambda x: x.reshape(2, 12)),
    case("reshape to a vector", (2, 3, 4), lambda x: x.reshape(-1)),
    case("flatten", (2, 3, 4), lambda x: x.flatten()),
    case("pad", (2, 3, 4), lambda x: x.pad(((0, 0), (1, 2), (0, 1)))),
    case("permute", (2, 3, 4), lambda x: x.permute(2, 0, 1), defines("permute")),
    case("transpose", (2, 3, 4), lambda x: x.transpose(0, 2), defines("transpose")),
    case("T", (2, 3, 4), lambda x: x.T, defines("T")),
    case("index an int", (3, 4, 5), lambda x: x[0], defines("__getitem__")),
    case("index slices", (3, 4, 5), lambda x: x[1:3, ::-2, -4:], defines("__getitem__")),
    case("index to the start backwards", (3, 4, 5), lambda x: x[::-1, 2:0:-1, -2::-2], defines("__getitem__")),
    case("index ellipsis and None", (3, 4, 5), lambda x: x[..., None, 2], defines("__getitem__")),
    case("index an integer array", (3, 4, 5), lambda x: x[:, [0, 2, 2, 3]], defines("__getitem__")),
    case("index a bool mask", (3, 4, 5), lambda x: x[np.array([True, False, True])], defines("__getitem__")),
    case("index a bool mask given as a list, then summed", (3, 4, 5), lambda x: x[:, [True, False, True, True]].sum(axis=1),
         defines("__getitem__")),
    case("sum of a 0-d tensor along axis 0", (2, 3), lambda x: x.sum().sum(axis=0) + x.mean().max(axis=-1, keepdims=True)),
    case("softmax and log_softmax of a 0-d tensor", (2, 3), lambda x: x.sum().softmax(axis=0) + x.sum().log_softmax(axis=-1)),
    case("where between bool masks", (2, 3, 4), lambda x: Tensor.where(Tensor.where(x > 0.0, x < 1.0, x < -1.0), x, 0.0)),
    case("relu of integers", (2, 3, 4), lambda x: (x * 3.0).astype(np.int64).relu()),
    case("clip of a bool mask to int bounds (int64)", (2, 3, 4), lambda x: (x > 0.0).clip(min=-1, max=0)),
    case("cat", (2, 3), lambda x: Tensor.cat([x, x * 2.0, x + 1.0], axis=1), defines("cat")),
    case("stack", (2, 3), lambda x: Tensor.stack([x, -x], axis=-1), defines("stack")),
    case("astype", (2, 3), lambda x: x.astype(np.float64) * 2.0 + x.double().float(), defines("astype", "double", "float")),
    case("matmul", (3, 4), lambda x, weight: x @ weight, **DENSE),
    case("batched matmul", (3, 2, 4), lambda x, weight: x @ weight, **DENSE),
    case("softmax", (2, 5), lambda x: x.softmax(axis=0)),
    case("log_softmax", (2, 5), lambda x: x.log_softmax(axis=-1)),
    case("conv2d", (2, 2, 5, 5), lambda x, weight: x.conv2d(weight, padding=1), **CONV),
    case("conv2d strided", (2, 2, 6, 5), lambda x, weight: x.conv2d(weight, stride=2), **CONV),
    case("conv2d with a bias per channel", (2, 2, 5, 5), lambda x, weight, bias: x.conv2d(weight, bias, padding=1),
         takes("conv2d", "bias"), **CONV_BIAS),
    case("conv2d with a bias per position", (2, 2, 5, 5), lambda x, weight, bias: x.conv2d(weight, bias, padding=1),
         takes("conv2d", "bias"), **CONV_POSITION_BIAS),
    case("conv2d dilated, grouped", (2, 2, 7, 7), lambda x, weight: x.conv2d(weight, stride=(1, 2), dilation=2, groups=2),
         takes("conv2d", "dilation", "groups"), **GROUPED),
    case("conv2d_bias", (2, 2, 5, 5), lambda x, weight, bias: x.conv2d_bias(weight, bias, padding=1, relu=False),
         defines("conv2d_bias"), **CONV_POSITION_BIAS),
    case("conv2d_bias relu", (2, 2, 5, 5), lambda x, weight, bias: x.conv2d_bias(weight, bias, padding=1, relu=True),
         defines("conv2d_bias"), **CONV_POSITION_BIAS),
    case("max_pool2d", (2, 3, 6, 6), lambda x: x.max_pool2d(2)),
    case("max_pool2d overlapping", (2, 3, 7, 7), lambda x: x.max_pool2d(3, stride=2)),
    case("pad_max_pool2d relu", (2, 3, 6, 6), lambda x: x.pad_max_pool2d(((0, 1), (0, 1)), 3, stride=2, relu=True)),
    case("pad_max_pool2d", (2, 3, 6, 6), lambda x: x.pad_max_pool2d(((1, 0), (2, 0)), 3, stride=2, relu=False)),
    case("avg_pool2d", (2, 3, 6, 6), lambda x: x.avg_pool2d(2), defines("avg_pool2d")),
    case("avg_pool2d overlapping", (2, 3, 7, 7), lambda x: x.avg_pool2d(3, stride=2), defines("avg_pool2d")),
    case("dropout (evaluation: none)", (2, 3), lambda x: x.dropout(0.5) * 2.0, defines("dropout")),
    case("dropout op with p = 0", (2, 3), lambda x: ops.Dropout.apply(x, p=0.0), lambda: hasattr(ops, "Dropout")),
    case("batch_norm, running statistics", (2, 3, 4, 4), lambda x, weight, bias: x.batch_norm(
        weight, bias, RUNNING_MEAN, RUNNING_VAR, training=False, eps=1e-3), defines("batch_norm"), **CHANNELS),
    case("batch_norm, batch statistics", (4, 3, 2, 2), lambda x, weight, bias: x.batch_norm(weight, bias),
         defines("batch_norm"), **CHANNELS),
    case("batch_norm of N,C", (5, 3), lambda x, weight, bias: x.batch_norm(weight, bias, eps=0.1),
         defines("batch_norm"), **CHANNELS),
]
AVAILABLE = [param for param, available in CASES if available()]


@pytest.mark.parametrize("shape, function, bounds, weights", AVAILABLE)
def test_each_op_exports_and_runs_in_onnxruntime_like_our_forward(shape, function, bounds, weights, tmp_path):
    model = Expression(function, **weights)
    path = tmp_path / "op.onnx"
    export(model, path, images=uniform(0, shape, *bounds), dynamic_batch=False)
    fresh = uniform(1, shape, *bounds)  # not the traced input: nothing may be frozen into the file
    theirs, ours = run_onnx(path, fresh), forward(model, fresh)
    exported_dtype = np.float32 if ours.dtype == np.float64 else ours.dtype  # the file computes in float32
    assert theirs.dtype == exported_dtype and theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)


def test_every_op_of_the_package_is_exported_and_round_tripped_or_listed_as_not_exportable():
    op_classes = {name for name, value in vars(ops).items()
                  if isinstance(value, type) and issubclass(value, Function) and value is not Function}
    assert op_classes - set(CONVERTERS) == set(NOT_EXPORTABLE)
    exercised: set[str] = set()
    from tinygrad_cnn.onnx import _trace

    for param in AVAILABLE:
        shape, function, bounds, weights = param.values
        steps, _ = _trace(Expression(function, **weights), uniform(0, shape, *bounds))
        exercised |= {type(step.op).__name__ for step in steps}
    assert op_classes - set(NOT_EXPORTABLE) <= exercised, "an op has a converter but no round-trip case above"


def test_where_on_a_mask_computed_from_the_input_follows_each_new_input(tmp_path):
    """The review's case: a relu written as where(y > 0, y, 0) after a Linear layer. Exported on
    one input, the file must compute the mask of every other input, not the traced one."""
    from tinygrad_cnn import manual_seed, nn

    class Masked:
        def __init__(self) -> None:
            self.fc = nn.Linear(784, 2)

        def __call__(self, images: np.ndarray) -> Tensor:
            y = self.fc(Tensor(np.asarray(images, np.float32)).flatten() / 255)
            return Tensor.where(y > 0, y, 0.0)

    for seed in range(4):
        manual_seed(seed)
        model, path = Masked(), tmp_path / f"masked{seed}.onnx"
        export(model, path, (1, 1, 28, 28))
        assert "Greater" in [node.op_type for node in onnx.load(str(path)).graph.node]
        images = np.random.default_rng(seed).integers(0, 256, (64, 1, 28, 28)).astype(np.float32)
        ours = forward(model, images)
        assert (ours == 0).any() and (ours > 0).any()  # the mask differs between the inputs
        np.testing.assert_allclose(run_onnx(path, images), ours, rtol=1e-5, atol=1e-6)


def test_comparisons_are_ops_that_never_require_grad():
    x = Tensor(np.array([1.0, -2.0, 3.0], np.float32), requires_grad=True)
    mask = x > 0
    assert mask.dtype == np.bool_ and not mask.requires_grad and mask.node is None
    Tensor.where(mask, x * 2.0, 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 2.0])
    from tinygrad_cnn.onnx import _trace

    steps, _ = _trace(lambda array: Tensor.where(Tensor(array) != 0.0, 1.0, 2.0), uniform(0, (2, 3)))
    assert [step.op.name for step in steps] == ["Compare", "Where"] and steps[0].op.symbol == "!="


def test_the_batch_stays_dynamic_through_reshape_and_flatten(tmp_path):
    model = Expression(lambda x, weight: (x.reshape(-1, 4) @ weight).relu().reshape(x.shape[0], -1).sum(axis=1), **DENSE)
    export(model, tmp_path / "batch.onnx", images=uniform(0, (1, 3, 4)))
    batch = uniform(1, (7, 3, 4))
    np.testing.assert_allclose(run_onnx(tmp_path / "batch.onnx", batch), forward(model, batch), rtol=1e-5, atol=1e-6)


def test_a_sequential_network_of_nn_layers_exports_with_its_parameter_names(tmp_path):
    from tinygrad_cnn import manual_seed, nn

    manual_seed(0)  # (the layers' initial weights: the same every run)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(3, 1, padding=1),
                          nn.Flatten(), nn.Dropout(), nn.Linear(4 * 7 * 7, 10), nn.LogSoftmax(dim=1))
    exported = export(model, tmp_path / "sequential.onnx", (1, 1, 14, 14))
    assert {"0.weight", "0.bias", "6.weight", "6.bias"} <= {tensor.name for tensor in exported.graph.initializer}
    batch = uniform(2, (5, 1, 14, 14)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(tmp_path / "sequential.onnx", batch), forward(model, batch), rtol=1e-5, atol=1e-6)
    pixels_first = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(196, 3))  # dropout sees the traced pixels
    export(pixels_first, tmp_path / "flat.onnx", (1, 1, 14, 14))  # (traced on uint8 pixels: the file takes uint8)
    pixels = np.random.default_rng(3).integers(0, 256, (5, 1, 14, 14)).astype(np.uint8)
    # (sums of 196 products of pixels up to 255: an output near 0 is off by float32 roundings, not by rtol)
    np.testing.assert_allclose(run_onnx(tmp_path / "flat.onnx", pixels), forward(pixels_first, pixels), rtol=1e-5, atol=1e-4)


def test_logsumexp_and_std_export_their_shift_and_mask_as_ops_that_follow_each_input(tmp_path):
    """logsumexp's shift (the max) and std's zero-variance mask come from the input: traced on
    zeros (shift 0, every variance 0), the file must compute them again for other inputs."""
    model = Expression(lambda x: x.logsumexp(1) + x.std(dim=1) + x.var(1, unbiased=False))
    export(model, tmp_path / "spread.onnx", images=np.zeros((2, 3), np.float32))
    batch = uniform(3, (5, 3), -300, 300).astype(np.float32)
    batch[0] = 1.0  # one row with no spread
    np.testing.assert_allclose(run_onnx(tmp_path / "spread.onnx", batch), forward(model, batch), rtol=1e-5)
    over_the_batch = Expression(lambda x: x.var(0, unbiased=False))  # (a mean: no constant of the batch's size)
    export(over_the_batch, tmp_path / "batch_variance.onnx", images=np.zeros((2, 3), np.float32))
    np.testing.assert_allclose(run_onnx(tmp_path / "batch_variance.onnx", batch), forward(over_the_batch, batch), rtol=1e-5)


def test_a_model_that_embeds_its_token_input_reads_the_tokens_from_the_file_input(tmp_path):
    from tinygrad_cnn import manual_seed, nn

    class Tokens:
        def __init__(self) -> None:
            self.embed, self.head = nn.Embedding(10, 4), nn.Linear(4, 3)

        def __call__(self, tokens: np.ndarray) -> Tensor:
            return self.head(self.embed(tokens) + self.embed(np.arange(tokens.shape[1])))

    manual_seed(0)
    model = Tokens()
    export(model, tmp_path / "tokens.onnx", images=np.zeros((1, 5), np.int64))  # traced on one sequence of 0s
    for tokens in (np.random.default_rng(1).integers(0, 10, (4, 5)), np.arange(10, dtype=np.uint8).reshape(2, 5)):
        if tokens.dtype != np.int64:
            export(model, tmp_path / "tokens.onnx", images=tokens)  # (the file takes the dtype it was traced with)
        np.testing.assert_allclose(run_onnx(tmp_path / "tokens.onnx", tokens), forward(model, tokens), rtol=1e-5, atol=1e-6)


def test_promotions_between_dtypes_inside_the_model_export_as_casts(tmp_path):
    """x * (x > 0) promotes the bool mask to float32; the cast was a plain array outside the
    graph, so export said the model used .data or numpy. A uint8 input whose only use is a
    cast to float32 (pixels / 255) is taken as float32, as before; one also used as an
    integer (compared) stays uint8, with the Cast node after the comparison."""
    weight = Tensor(uniform(3, (4, 3)))
    models = {
        "mask": lambda array: (lambda x: x * (x > 0))(Tensor(array)),
        "scaled mask": lambda array: (lambda x: x + (x > 0) * 0.5)(Tensor(array)),
        "pixels": lambda array: (Tensor(array) / 255) @ weight,
        "int mean": lambda array: (Tensor(array) > 100).mean(axis=1),
    }
    for name, model in models.items():
        integer = name in ("pixels", "int mean")
        example = np.random.default_rng(1).integers(0, 256, (2, 4)).astype(np.uint8) if integer else uniform(1, (2, 4))
        path = tmp_path / f"{name}.onnx"
        export(model, path, images=example)
        file = onnx.load(str(path))
        uint8_input = name == "int mean"
        assert file.graph.input[0].type.tensor_type.elem_type == (
            onnx.TensorProto.UINT8 if uint8_input else onnx.TensorProto.FLOAT), name
        assert [node.op_type for node in file.graph.node].count("Cast") == (1 if name != "pixels" else 0), name
        batch = np.random.default_rng(2).integers(0, 256, (5, 4)).astype(np.uint8) if integer else uniform(2, (5, 4))
        if integer and not uint8_input:
            np.testing.assert_allclose(run_onnx(path, batch.astype(np.float32)), forward(model, batch), rtol=1e-6,
                                       atol=1e-6, err_msg=name)
            continue
        np.testing.assert_allclose(run_onnx(path, batch), forward(model, batch), rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("model, message", [
    (lambda array: (lambda mask: mask + mask)(Tensor(array) > 0), r"op Add \(op 2 of 2\) on bool tensors"),
    (lambda array: -Tensor(array.astype(np.uint8)), r"op Neg \(op 1 of 1\) on uint8 tensors: .*signed ints, floats"),
    (lambda array: Tensor(array.astype(np.int64)).max_pool2d(2), r"op MaxPool2d \(op 1 of 1\) on int64 tensors"),
    (lambda array: Tensor(array.astype(np.uint64)).max_pool2d(2), r"op MaxPool2d \(op 1 of 1\) on uint64 tensors"),
    (lambda array: (lambda x: (x > 0).maximum(x < 1))(Tensor(array)), r"op Maximum \(op 3 of 3\) on bool tensors"),
    (lambda array: Tensor(array.astype(np.uint8)) ** 2, r"op Pow \(op 1 of 1\) on uint8 tensors: .*int32, int64, floats"),
])
def test_an_op_onnx_defines_for_other_dtypes_only_is_an_error_naming_it(model, message):
    """bool + bool, -uint8 and an int64 max pool run here, but ONNX has no such node: the
    checker's InferenceError named only ONNX's node; the error names ours and the dtype. (A
    64-bit max pool has no exact wider type: float64 holds integers up to 2^53 only.)"""
    with pytest.raises(UnsupportedOpError, match=message):
        to_onnx(model, images=uniform(0, (2, 1, 4, 4)))


@pytest.mark.parametrize("model, operation", [
    (lambda array: (Tensor(array) > 0).relu(), "relu"),
    (lambda array: (Tensor(array) > 0).reshape(2, 1, 4, 4).pad_max_pool2d(((0, 1), (0, 1)), 2, relu=True), "relu"),
    (lambda array: (Tensor(array) > 0).abs(), "abs"),
])
def test_an_op_refused_on_bool_tensors_is_refused_by_the_export_too(model, operation):
    """relu of a mask used to be exported as Max(Cast(x, int64), 0), as numpy gave int64 for
    it; ours now refuses it as PyTorch does, so the export stops at our TypeError."""
    with pytest.raises(TypeError, match=f"{operation} of a bool tensor is refused, as in PyTorch"):
        to_onnx(model, images=uniform(0, (2, 1, 4, 4)))


@pytest.mark.parametrize("model, example_shape, declared", [
    (lambda array: Tensor(array).reshape(-1, 4), (2, 3, 4), ["logits_0", 4]),  # N·3 rows
    (lambda array: Tensor(array).T, (2, 3, 4), [4, 3, "N"]),
    (lambda array: (lambda x: x @ x.T)(Tensor(array)), (2, 3), ["N", "N"]),
    (lambda array: Tensor(array).sum(axis=0), (2, 3), [3]),
])
def test_the_file_declares_every_output_axis_that_grows_with_the_batch(tmp_path, model, example_shape, declared):
    """Only a leading batch axis was symbolic: x.reshape(-1, 4) was declared (6, 4), and
    onnxruntime warned that the model's shape did not match at every other batch size."""
    path = tmp_path / "shapes.onnx"
    export(model, path, images=uniform(0, example_shape))
    dims = onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim
    assert [dim.dim_param or dim.dim_value for dim in dims] == declared
    batch = uniform(1, (5,) + example_shape[1:])
    np.testing.assert_allclose(run_onnx(path, batch), forward(model, batch), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("function", [
    lambda x: x.transpose(0, 2).flatten(),  # the batch last: (4, 3, N) → (4, 3N); the leading 4 was "copy the batch"
    lambda x: x.reshape(2, -1),  # at batch 2 the leading 2 equals the batch by chance; (2, 6N) at any batch
    lambda x: x.permute(1, 0, 2).reshape(3, x.shape[0] * 4),
])
def test_a_reshape_runs_at_every_batch_size(tmp_path, function):
    """The target shape was guessed from the example: a leading axis equal to the input's was
    written as 0 ("copy the batch"), so x.T flattened, exported at batch 2, failed in
    onnxruntime at batch 5, and x.reshape(2, -1) gave (5, 12) where ours is (2, 30)."""
    model = Expression(function)
    path = tmp_path / "reshape.onnx"
    export(model, path, images=uniform(0, (2, 3, 4)))
    for batch in (1, 2, 5):
        array = uniform(batch, (batch, 3, 4))
        theirs, ours = run_onnx(path, array), forward(model, array)
        assert theirs.shape == ours.shape
        np.testing.assert_array_equal(theirs, ours)


def test_the_input_and_output_names_are_checked_not_renamed(tmp_path):
    """An input named like a parameter was silently renamed "fc.bias_1" (a server feeding
    "fc.bias" failed); equal or clashing names gave the checker's SSA error, an empty one its
    'name is required'."""
    from tinygrad_cnn import nn

    class Dense:
        def __init__(self) -> None:
            self.fc = nn.Linear(4, 3)

        def __call__(self, array: np.ndarray) -> Tensor:
            return self.fc(Tensor(array)).relu()

    for names, message in [
        (dict(input_name="fc.bias"), r"input_name 'fc.bias' is the name of one of the model's parameters"),
        (dict(output_name="fc.weight"), r"output_name 'fc.weight' is the name of one of the model's parameters"),
        (dict(input_name="x", output_name="x"), r"input_name and output_name are both 'x'"),
        (dict(input_name=""), r"input_name must be a non-empty string"),
    ]:
        with pytest.raises(ValueError, match=message):
            export(Dense(), tmp_path / "named.onnx", images=uniform(0, (2, 4)), **names)
        assert not (tmp_path / "named.onnx").exists()
    export(Dense(), tmp_path / "named.onnx", images=uniform(0, (2, 4)), input_name="x", output_name="relu")
    loaded = session(tmp_path / "named.onnx")
    assert [value.name for value in loaded.get_inputs()] == ["x"] and [value.name for value in loaded.get_outputs()] == ["relu"]


def test_an_index_onnx_cannot_gather_is_an_error_naming_it():
    """A bool scalar (x[True] adds an axis) and a mask of several axes were written as Gathers
    of the wrong rank: the checker's shape InferenceError, naming no index."""
    for function in (lambda x: x[True], lambda x: x[:, np.ones((3, 4), dtype=bool)]):
        with pytest.raises(UnsupportedOpError, match=r"(?s)GetItem with index .*only 1-D bool masks"):
            to_onnx(Expression(function), images=uniform(0, (2, 3, 4)))


def test_a_constant_that_depends_on_the_batch_size_is_an_error_unless_the_batch_is_fixed(tmp_path):
    """The review's case: y.sum(axis=0) / y.shape[0] traced at batch 1 froze the 1: at batch 5
    onnxruntime gave results off by hundreds, though the file claimed any batch size."""
    weight = Tensor(uniform(10, (4, 3)))

    def centred_by_hand(array):
        y = Tensor(array) @ weight
        return y - y.sum(axis=0) / y.shape[0]

    with pytest.raises(ValueError, match=r"input 1 of op Div \(op 4 of 5\) depends on the batch size.*"
                                         r"it is 1 for batch 1 but 2 for batch 2.*dynamic_batch=False"):
        export(centred_by_hand, tmp_path / "centred.onnx", (1, 4))
    assert not (tmp_path / "centred.onnx").exists()
    export(centred_by_hand, tmp_path / "fixed.onnx", (3, 4), dynamic_batch=False)  # the batch it was traced at
    dims = onnx.load(str(tmp_path / "fixed.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [dim.dim_value for dim in dims] == [3, 4]
    batch = uniform(1, (3, 4))
    np.testing.assert_allclose(run_onnx(tmp_path / "fixed.onnx", batch), centred_by_hand(batch).data, rtol=1e-5, atol=1e-5)

    centred = lambda array: (lambda y: y - y.mean(axis=0))(Tensor(array) @ weight)  # noqa: E731
    export(centred, tmp_path / "mean.onnx", (1, 4))
    batch = uniform(2, (5, 4))
    np.testing.assert_allclose(run_onnx(tmp_path / "mean.onnx", batch), forward(centred, batch), rtol=1e-5, atol=1e-5)


def test_a_model_that_runs_only_at_its_batch_size_needs_dynamic_batch_false(tmp_path):
    one_example = lambda array: Tensor(array).reshape(1, 12).relu()  # noqa: E731
    with pytest.raises(ValueError, match=r"fails on a batch of 2 .*dynamic_batch=False"):
        to_onnx(one_example, images=uniform(0, (1, 3, 4)))
    model = to_onnx(one_example, images=uniform(0, (1, 3, 4)), dynamic_batch=False)
    assert [dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 4]
    summed = to_onnx(lambda array: Tensor(array).sum(axis=0), images=uniform(0, (1, 3)))  # no batch axis out
    assert [dim.dim_value for dim in summed.graph.output[0].type.tensor_type.shape.dim] == [3]
    assert summed.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_float64_models_export_as_float32_files_that_onnxruntime_runs(tmp_path):
    """onnxruntime has no float64 Conv: a float64 SeedCNN used to give a file that failed to load
    ("Could not find an implementation for Conv(11)"). The file computes in float32."""
    model = SeedCNN(seed=0, dtype=np.float64)
    path = tmp_path / "double_cnn.onnx"
    export(model, path, (1, 1, 28, 28))
    loaded = onnx.load(str(path))
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE}
    assert {tensor.data_type for tensor in loaded.graph.initializer} & float_types == {onnx.TensorProto.FLOAT}
    assert loaded.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    images = np.random.default_rng(1).integers(0, 256, (4, 1, 28, 28)).astype(np.float32)
    theirs = run_onnx(path, images)
    assert theirs.dtype == np.float32
    np.testing.assert_allclose(theirs, forward(model, images), rtol=1e-4, atol=1e-5)

    softmax = Expression(lambda x, weight: (x @ weight).softmax(axis=1).astype(np.float64) * 2.0,
                         weight=uniform(10, (4, 5)).astype(np.float64))
    export(softmax, tmp_path / "double.onnx", images=uniform(0, (3, 4)).astype(np.float64))
    fresh = uniform(1, (2, 4))
    theirs = run_onnx(tmp_path / "double.onnx", fresh)
    assert theirs.dtype == np.float32
    np.testing.assert_allclose(theirs, forward(softmax, fresh.astype(np.float64)), rtol=1e-5)


@pytest.mark.skipif(not hasattr(os, "setpgid"), reason="RLIMIT_FSIZE is POSIX")
def test_an_export_that_fails_midway_leaves_the_previous_file_and_no_temporary_file(tmp_path):
    """A full disk while the file is written must not leave a truncated .onnx: the write of a
    second export is cut at half the file's size (RLIMIT_FSIZE, in a child process)."""
    path = tmp_path / "model.onnx"
    export(SeedMLP(seed=0), path, (1, 1, 28, 28))
    before = path.read_bytes()
    script = f"""
import resource, signal, sys
from tinygrad_cnn.models import SeedMLP
from tinygrad_cnn.onnx import export
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) // 2}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    export(SeedMLP(seed=1), {str(path)!r}, (1, 1, 28, 28))
except OSError as error:
    print(error)
    sys.exit(3)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "model.onnx" in result.stdout  # the error names the file
    assert path.read_bytes() == before
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.onnx"]


def test_an_interrupted_export_leaves_the_previous_file_and_no_temporary_file(tmp_path, monkeypatch):
    model = Expression(lambda x, weight: (x @ weight).relu(), **DENSE)
    path = tmp_path / "model.onnx"
    export(model, path, images=uniform(0, (2, 4)))
    before = path.read_bytes()

    def interrupted(descriptor):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)  # Ctrl-C once the data is written, before the rename
    with pytest.raises(KeyboardInterrupt):
        export(Expression(lambda x, weight: (x @ weight).tanh(), **DENSE), path, images=uniform(0, (2, 4)))
    assert path.read_bytes() == before
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.onnx"]


def test_export_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "models" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(b"an old model")
    link = tmp_path / "latest.onnx"
    link.symlink_to(target)
    model = Expression(lambda x, weight: (x @ weight).relu(), **DENSE)
    export(model, link, images=uniform(0, (2, 4)))
    assert link.is_symlink()
    fresh = uniform(1, (3, 4))
    np.testing.assert_allclose(run_onnx(target, fresh), forward(model, fresh), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- errors


class Swish(Function):
    def forward(self, x):
        self.s = 1 / (1 + np.exp(-x))
        return x * self.s


def test_an_op_without_an_onnx_equivalent_is_an_error_naming_it(tmp_path):
    labels = np.array([1, 0])
    with pytest.raises(UnsupportedOpError, match=r"op CrossEntropy .*the loss"):
        export(Expression(lambda x: x.cross_entropy(labels)), tmp_path / "loss.onnx", images=uniform(0, (2, 3)))
    with pytest.raises(UnsupportedOpError, match=r"op Swish .*user-defined Function"):
        export(Expression(lambda x: Swish.apply(x) + 1.0), tmp_path / "swish.onnx", images=uniform(0, (2, 3)))
    assert not (tmp_path / "loss.onnx").exists() and not (tmp_path / "swish.onnx").exists()


def test_a_model_whose_input_cannot_be_found_is_a_clear_error():
    scaled_in_numpy = lambda array: Tensor(np.asarray(array, dtype=np.float32) / 255).relu()  # noqa: E731
    with pytest.raises(ValueError, match=r"cannot tell the model's input: no leaf tensor holds the example input of shape \(2, 3\)"):
        to_onnx(scaled_in_numpy, (2, 3))
    twice = lambda array: Tensor(array).relu() + Tensor(array)  # noqa: E731
    with pytest.raises(ValueError, match=r"2 different leaf tensors hold"):
        to_onnx(twice, (2, 3))


def test_an_index_computed_from_the_input_is_an_error_not_frozen_into_the_file():
    """x.argmax() used as a GetItem index is an option of the op, not an input tensor: the
    second trace must still notice that it changed, or the file would keep the example's."""
    table = np.arange(10, dtype=np.float32) * 10

    def lookup(array: np.ndarray) -> Tensor:
        x = Tensor(array)
        return Tensor(table)[x.argmax(axis=1).data] + x.sum(axis=1)

    with pytest.raises(ValueError, match=r"index of op GetItem .* depends on the model's input"):
        to_onnx(lookup, images=uniform(0, (4, 10)))


def test_a_model_output_not_computed_by_an_op_or_not_a_tensor_is_a_clear_error():
    rebuilt = lambda array: Tensor((Tensor(array) * 2.0).data)  # noqa: E731
    with pytest.raises(ValueError, match=r"output was not computed by a traced op"):
        to_onnx(rebuilt, (2, 3))
    with pytest.raises(TypeError, match=r"must return one Tensor.*tuple"):
        to_onnx(lambda array: (Tensor(array).relu(),), (2, 3))
    with pytest.raises(ValueError, match=r"output is not computed by any op: it returns its input itself"):
        to_onnx(lambda array: Tensor(array), (2, 3))

    def input_beside_its_sum(array: np.ndarray) -> Tensor:
        x = Tensor(array)
        x.sum()  # an op runs, but the output is still the input
        return x

    with pytest.raises(ValueError, match=r"output is not computed by any op"):
        to_onnx(input_beside_its_sum, (2, 3))
    with pytest.raises(ValueError, match=r"output was not computed by a traced op: rebuilding a tensor from numpy"):
        to_onnx(lambda array: Tensor(np.asarray(array) * 2.0), (2, 3))  # numpy work, no op: not the input
    with pytest.raises(ValueError, match=r"input_shape"):
        to_onnx(SeedMLP(), None)


def test_without_the_onnx_package_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install tinygrad_cnn\[onnx\]"):
        to_onnx(SeedMLP(), (1, 1, 28, 28))


def test_values_computed_outside_the_graph_from_the_input_are_an_error_not_frozen():
    def masked_in_numpy(array):
        x = Tensor(array)
        return x * Tensor((x.data > 0).astype(np.float32))  # a mask outside the graph

    with pytest.raises(ValueError, match=r"input 1 of op Mul \(op 1 of 1\) depends on the model's input"):
        to_onnx(masked_in_numpy, images=uniform(0, (2, 3)))

    calls = []

    def branching(array):  # as if it branched on the values: other ops for the second input
        calls.append(array)
        return Tensor(array).relu() if len(calls) == 1 else -Tensor(array)

    with pytest.raises(ValueError, match=r"different ops on different inputs"):
        to_onnx(branching, (2, 3))
    assert len(calls) == 2 and not np.array_equal(calls[0], calls[1])


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_an_integer_relu_exports_as_a_max_that_onnxruntime_runs(tmp_path, dtype):
    """ONNX's Relu takes integers, but onnxruntime has no integer Relu kernel: the file was
    valid and could not be run."""
    model = lambda array: Tensor(array).relu()  # noqa: E731
    example = np.array([[-3, 0, 5], [7, -1, 2]], dtype=dtype)
    export(model, tmp_path / "relu.onnx", images=example)
    batch = np.array([[4, -4, 0], [-9, 9, 1], [0, 0, -2]], dtype=dtype)
    output = run_onnx(tmp_path / "relu.onnx", batch)
    assert output.dtype == dtype and np.array_equal(output, forward(model, batch))


# ----------------------------------------------------------------------------- the model is left as it was


class TrainingBatchNorm:
    """A Linear layer, then a batch norm called with training=True on buffers the model holds."""

    def __init__(self) -> None:
        from tinygrad_cnn import nn

        self.fc = nn.Linear(4, 3)
        self.running_mean = uniform(20, (3,))
        self.running_var = uniform(21, (3,), 0.5, 2.0)

    def __call__(self, array: np.ndarray) -> Tensor:
        return self.fc(Tensor(array)).batch_norm(running_mean=self.running_mean, running_var=self.running_var,
                                                 training=True)


def test_exporting_a_batch_norm_called_with_training_true_leaves_its_running_statistics(tmp_path):
    """Each of export's traces (three with a dynamic batch) updated the running statistics:
    exporting silently changed the model. The file computes the batch's statistics, as ours
    (and torch.onnx, which warns the same way)."""
    model = TrainingBatchNorm()
    before = state_dict(model)
    with pytest.warns(UserWarning, match=r"op BatchNorm \(op 2 of 2\) is called with training=True"):
        export(model, tmp_path / "bn.onnx", images=uniform(0, (5, 4)))
    after = state_dict(model)
    assert list(after) == list(before)
    for name, array in before.items():
        assert after[name].tobytes() == array.tobytes(), f"export changed {name}"
    assert "BatchNormalization" not in [node.op_type for node in onnx.load(str(tmp_path / "bn.onnx")).graph.node]
    for batch in (2, 7):  # the batch's statistics at any batch size
        fresh = uniform(batch, (batch, 4))
        np.testing.assert_allclose(run_onnx(tmp_path / "bn.onnx", fresh), forward(model, fresh), rtol=1e-5, atol=1e-5)


def test_a_model_that_fails_while_traced_leaves_the_training_mode_as_it_was():
    """The trace turns Tensor.training off for the model's call and puts it back even when the
    model raises (with train_mode, as summary does; no more getattr for a Tensor without it)."""
    from tinygrad_cnn import train_mode

    seen: list[bool] = []

    def failing(array: np.ndarray) -> Tensor:
        seen.append(Tensor.training)
        raise RuntimeError("the model failed")

    with train_mode():
        with pytest.raises(RuntimeError, match="the model failed"):
            to_onnx(failing, images=uniform(0, (2, 3)))
        assert Tensor.training
    assert seen == [False] and not Tensor.training


def test_a_batch_norm_layer_is_exported_in_evaluation_mode_from_a_training_block(tmp_path):
    from tinygrad_cnn import nn, train_mode

    class Normalized:
        def __init__(self) -> None:
            self.conv = nn.Conv2d(1, 3, 3)
            self.bn = nn.BatchNorm2d(3)
            self.bn.running_mean[:], self.bn.running_var[:] = uniform(22, (3,)), uniform(23, (3,), 0.5, 2.0)

        def __call__(self, array: np.ndarray) -> Tensor:
            return self.bn(self.conv(Tensor(array)))

    model = Normalized()
    before = state_dict(model)
    with train_mode():
        export(model, tmp_path / "bn.onnx", images=uniform(0, (2, 1, 5, 5)))
        assert Tensor.training
    assert all(state_dict(model)[name].tobytes() == array.tobytes() for name, array in before.items())
    assert "BatchNormalization" in [node.op_type for node in onnx.load(str(tmp_path / "bn.onnx")).graph.node]
    fresh = uniform(1, (3, 1, 5, 5))
    np.testing.assert_allclose(run_onnx(tmp_path / "bn.onnx", fresh), forward(model, fresh), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- dtypes onnxruntime cannot run

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]


def same_dtype(x: Tensor, value) -> Tensor:
    return Tensor(np.asarray(value).astype(x.dtype))


#: every exportable op that takes integers or bools, as a function of one input tensor
OPS_ON_ANY_DTYPE: dict[str, Callable[[Tensor], Tensor]] = {
    "add": lambda x: x + x, "sub": lambda x: x - same_dtype(x, 1), "mul": lambda x: x * x,
    "div": lambda x: x / same_dtype(x, 3), "neg": lambda x: -x, "relu": lambda x: x.relu(), "exp": lambda x: x.exp(),
    "log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(), "pow": lambda x: x ** 2, "tanh": lambda x: x.tanh(),
    "sin": lambda x: x.sin(), "cos": lambda x: x.cos(), "sigmoid": lambda x: x.sigmoid(), "abs": lambda x: x.abs(), "clip": lambda x: x.clip(min=2, max=5),
    "clip to tensors": lambda x: x.clip(min=same_dtype(x, [1, 2, 0, 3]), max=same_dtype(x, [[5], [4], [6]])[:2]),
    "maximum": lambda x: x.maximum(same_dtype(x, 2)), "minimum": lambda x: x.minimum(same_dtype(x, 2)),
    "where": lambda x: Tensor.where(Tensor(np.array([True, False, True, False])), x, same_dtype(x, 1)),
    "where on its own mask": lambda x: Tensor.where(x > same_dtype(x, 1), x, same_dtype(x, 0)),
    "<": lambda x: x < same_dtype(x, 3), "==": lambda x: x == same_dtype(x, 3), "!=": lambda x: x != same_dtype(x, 3),
    "leaky_relu": lambda x: x.leaky_relu(0.2), "elu": lambda x: x.elu(), "gelu": lambda x: x.gelu(),
    "gelu tanh": lambda x: x.gelu("tanh"),
    "sum": lambda x: x.sum(axis=1), "mean": lambda x: x.mean(axis=1), "max": lambda x: x.max(axis=1),
    "min of all": lambda x: x.min(), "argmax": lambda x: x.argmax(axis=1), "argmin of all": lambda x: x.argmin(),
    "reshape": lambda x: x.reshape(-1, 2), "pad": lambda x: x.pad(((0, 0), (1, 1))), "T": lambda x: x.T,
    "index slices": lambda x: x[:, 1:3], "index an int": lambda x: x[:, 1], "index an array": lambda x: x[:, [0, 2, 2]],
    "index None": lambda x: x[:, None], "cat": lambda x: Tensor.cat([x, x], axis=1),
    "stack": lambda x: Tensor.stack([x, x], axis=1),
    **{f"cast to {dtype}": (lambda dtype: lambda x: x[:, 1:].astype(np.dtype(dtype)))(dtype)  # (a cast to x's
       for dtype in ("bool", "int16", "uint16", "int64", "float32")},  # own dtype is no op: sliced first)
    "matmul": lambda x: x @ same_dtype(x, np.ones((4, 3))),
    "conv2d": lambda x: x.reshape(-1, 1, 2, 2).conv2d(same_dtype(x, np.ones((2, 1, 2, 2)))),
    "max_pool2d": lambda x: x.reshape(-1, 1, 2, 2).max_pool2d(2),
    "pad_max_pool2d relu": lambda x: x.reshape(-1, 1, 2, 2).pad_max_pool2d(((0, 1), (0, 1)), 2, stride=1, relu=True),
    "avg_pool2d": lambda x: x.reshape(-1, 1, 2, 2).avg_pool2d(2),
    "softmax": lambda x: x.softmax(axis=1), "log_softmax": lambda x: x.log_softmax(axis=1),
    "batch_norm": lambda x: x.batch_norm(),
}


def small_values(dtype: str, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0 if dtype == "bool" else 1, 2 if dtype == "bool" else 7, (3, 4)).astype(dtype)


@pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")  # the log of a False
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_op_on_every_dtype_is_refused_or_runs_in_onnxruntime_as_ours(dtype):
    """ONNX defines Max, Where, Pad, ArgMax, … for int16, uint16 (and uint32, uint64), but
    onnxruntime has no kernel for them: the export passed onnx.checker and the file failed to
    load ("Could not find an implementation for Max(13)"). Each op ours runs on ``dtype`` is
    now either refused by export, naming the op and the dtype, or runs in onnxruntime and
    gives our result (exactly for integers: the wider dtype a node computes in holds them)."""
    for name, function in OPS_ON_ANY_DTYPE.items():
        model = lambda array, function=function: function(Tensor(array))  # noqa: E731
        try:
            ours = forward(model, small_values(dtype, 1))
        except (TypeError, ValueError):
            continue  # ours refuses this dtype: nothing to export
        try:
            proto = to_onnx(model, images=small_values(dtype, 0))
        except UnsupportedOpError as error:
            assert re.search(r"op \w+ \(op \d+ of \d+\) on \w+ (tensors|values)", str(error)), (name, str(error))
            continue
        loaded = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        array = small_values(dtype, 1)
        if loaded.get_inputs()[0].type == "tensor(float)":  # a float64 model, or an integer input cast to float
            array = array.astype(np.float32)
        theirs = loaded.run(None, {"images": array})[0]
        expected = ours.astype(np.float32) if ours.dtype == np.float64 else ours
        assert theirs.dtype == expected.dtype and theirs.shape == expected.shape, (name, theirs.dtype, expected.dtype)
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(theirs, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(theirs, expected, err_msg=name)


@pytest.mark.parametrize("dtype", ["int16", "uint16", "int32", "uint32"])
def test_the_wider_dtype_onnxruntime_computes_in_keeps_extreme_values_exact(dtype, tmp_path):
    """int16 and uint16 Max, Clip, Where, Pad, ReduceMax and ArgMax compute in int32, uint32
    ReduceMax and ArgMax in int64 (uint32's values above 2^31 do not fit int32), each cast
    back. ONNX's MaxPool takes no int wider than 8 bits: 16-bit ones pool in float32, 32-bit
    ones in float64 (in float32 int32's 2^31 − 2 would become 2^31). Nothing is refused."""
    info = np.iinfo(dtype)
    values = np.array([[info.min, info.max, info.max - 1, 7], [5, info.min + 1, info.max, info.min]], dtype=dtype)
    middle = same_dtype(Tensor(values), info.max // 2 + 3)
    functions = {
        "maximum": lambda x: x.maximum(middle), "relu": lambda x: x.relu(),
        "clip": lambda x: x.clip(min=int(info.min) + 1, max=int(info.max) - 1),
        "clip to tensors": lambda x: x.clip(min=middle - same_dtype(x, 5), max=same_dtype(x, [info.max, info.max - 2, 9, info.max])),
        "where": lambda x: Tensor.where(x > middle, x, middle), "pad": lambda x: x.pad(((1, 0), (0, 2))),
        "max": lambda x: x.max(axis=1), "min": lambda x: x.min(axis=0), "argmax": lambda x: x.argmax(axis=1),
        "argmin of all": lambda x: x.argmin(), "max_pool2d": lambda x: x.reshape(-1, 1, 2, 2).max_pool2d(2),
        "pad_max_pool2d": lambda x: x.reshape(-1, 1, 2, 2).pad_max_pool2d(((0, 1), (0, 1)), 2, stride=1, relu=False),
        "pad_max_pool2d relu": lambda x: x.reshape(-1, 1, 2, 2).pad_max_pool2d(((1, 0), (0, 1)), 2, stride=1, relu=True),
    }
    for name, function in functions.items():
        model = lambda array, function=function: function(Tensor(array))  # noqa: E731
        export(model, tmp_path / "extreme.onnx", images=values[::-1].copy())
        theirs, ours = run_onnx(tmp_path / "extreme.onnx", values), forward(model, values)
        assert theirs.dtype == ours.dtype, name
        np.testing.assert_array_equal(theirs, ours, err_msg=name)


def test_a_max_and_a_max_pool_of_bools_compute_in_uint8(tmp_path):
    """ONNX defines neither ReduceMax nor MaxPool on bools (opset 17): they compute in uint8,
    cast back (a mask's max is True where any element is)."""
    masks = np.array([[True, False, False, False], [False, False, False, False], [True, True, True, True]])
    functions = {
        "max": lambda x: x.max(axis=1), "min of all": lambda x: x.min(), "max_pool2d": lambda x: x.reshape(-1, 1, 2, 2).max_pool2d(2),
        "pad_max_pool2d": lambda x: x.reshape(-1, 1, 2, 2).pad_max_pool2d(((0, 1), (1, 0)), 2, stride=1, relu=False),
    }
    for name, function in functions.items():
        model = lambda array, function=function: function(Tensor(array))  # noqa: E731
        export(model, tmp_path / "mask.onnx", images=masks[::-1].copy())
        theirs, ours = run_onnx(tmp_path / "mask.onnx", masks), forward(model, masks)
        assert theirs.dtype == ours.dtype == np.bool_, name
        np.testing.assert_array_equal(theirs, ours, err_msg=name)


@pytest.mark.parametrize("model, message", [
    (lambda array: (lambda x: Tensor.where(x > 2, x, 0))(Tensor(array)), r"op Where \(op 2 of 2\) on uint64 values"),
    (lambda array: Tensor(array).max(axis=1), r"op Max \(op 1 of 1\) on uint64 values"),
    (lambda array: Tensor(array).argmin(axis=0), r"op ArgMin \(op 1 of 1\) on uint64 values"),
])
def test_a_uint64_op_onnxruntime_cannot_run_is_an_error_naming_it(model, message):
    """No wider integer type holds every uint64, so no cast keeps the result exact."""
    with pytest.raises(UnsupportedOpError, match=message + r": onnxruntime has no uint64 kernel for ONNX's \w+"):
        to_onnx(model, images=small_values("uint64", 0))


def test_an_integer_conv_and_an_integer_pool_relu_are_refused_or_run(tmp_path):
    """An int64 conv2d raised the checker's InferenceError, naming only ONNX's Conv; a fused
    relu on a uint8 max pool was a Relu node, which ONNX does not define for uint8."""
    weight = np.ones((2, 1, 2, 2), dtype=np.int64)
    with pytest.raises(UnsupportedOpError, match=r"op Conv2d \(op 1 of 1\) on int64 tensors: ONNX defines it for floats only"):
        to_onnx(lambda array: Tensor(array).conv2d(weight), images=small_values("int64", 0).reshape(3, 1, 2, 2))
    pooled = lambda array: Tensor(array).pad_max_pool2d(((0, 1), (0, 1)), 2, stride=1, relu=True)  # noqa: E731
    pixels = np.random.default_rng(0).integers(0, 256, (2, 1, 4, 4)).astype(np.uint8)
    export(pooled, tmp_path / "pool.onnx", images=pixels)
    batch = np.random.default_rng(1).integers(0, 256, (3, 1, 4, 4)).astype(np.uint8)
    theirs = run_onnx(tmp_path / "pool.onnx", batch)
    assert theirs.dtype == np.uint8 and np.array_equal(theirs, forward(pooled, batch))


# ----------------------------------------------------------------------------- a documented difference


def test_onnxruntime_skips_some_nans_in_max_min_and_max_pool_as_documented(tmp_path):
    """Ours (as numpy and PyTorch) gives NaN where the values reduced or a pool window hold a
    NaN; onnxruntime's ReduceMax, ReduceMin, MaxPool and ArgMax skip it, depending on where it
    lies (its issue #10514). The module docstring and the README document this and why the file
    keeps the plain nodes; this pins both sides, so a change to either is noticed (then update
    the documentation). Its element-wise Max and Relu propagate NaN, as ours: on the CPU, Max
    with a one-element input (x.maximum(0.0)) does so only since onnxruntime's PR #21492 (2024),
    one reason the test extra asks for the onnxruntime these pins were taken with (1.32)."""
    values = np.array([[1.0, np.nan, 4.0, 3.0], [-2.0, 5.0, np.nan, -1.0]], dtype=np.float32)
    documented = {  # the function: what onnxruntime gives where ours is NaN (or the NaN's index)
        "max": (lambda x: x.max(axis=1), [4.0, 5.0]),
        "min": (lambda x: x.min(axis=1), [1.0, -2.0]),
        "max_pool2d": (lambda x: x.reshape(-1, 1, 2, 2).max_pool2d(2), [np.nan, 5.0]),  # one NaN kept, one skipped
        "argmax": (lambda x: x.argmax(axis=1), [2, 1]),
        "maximum": (lambda x: x.maximum(0.0), [1.0, np.nan, 4.0, 3.0, 0.0, 5.0, np.nan, 0.0]),
        "relu": (lambda x: x.relu(), [1.0, np.nan, 4.0, 3.0, 0.0, 5.0, np.nan, 0.0]),
    }
    for name, (function, expected) in documented.items():
        model = lambda array, function=function: function(Tensor(array))  # noqa: E731
        export(model, tmp_path / "nan.onnx", images=uniform(0, (2, 4)))
        ours, theirs = forward(model, values), run_onnx(tmp_path / "nan.onnx", values)
        if name == "argmax":
            assert ours.tolist() == [1, 2], name  # the first NaN, as numpy and PyTorch
        elif name in ("maximum", "relu"):
            np.testing.assert_array_equal(ours.reshape(-1), expected, err_msg=name)
        else:
            assert np.isnan(ours).all(), name
        np.testing.assert_array_equal(theirs.reshape(-1), expected, err_msg=name)
