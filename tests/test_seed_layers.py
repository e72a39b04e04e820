"""examples/seed_layers.py: the seed's seven hand-written layers, checked by the engine.

Every layer's backward against float64 finite differences (gradcheck) and against the
framework's primitive ops on hypothesis-drawn values and batch sizes; the pool's tie rule
against tests/reference.py; SeedLayersCNN against SeedCNN on real MNIST images (ties in the
pool windows included); the command line's --help and error paths.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import conv2d_loops, max_pool2d_loops
from test_insight_examples import write_tiny_mnist

from tinygrad_cnn import Tensor, gradcheck
from tinygrad_cnn.datasets import mnist
from tinygrad_cnn.models import SeedCNN
from tinygrad_cnn.nn import load_state_dict, named_parameters, state_dict
from tinygrad_cnn.summary import summary, totals

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "seed_layers.py"
_spec = importlib.util.spec_from_file_location("seed_layers", SCRIPT)
seed_layers = importlib.util.module_from_spec(_spec)
sys.path.insert(0, str(SCRIPT.parent))  # the script imports examples/common.py, as when run from there
try:
    _spec.loader.exec_module(seed_layers)
finally:
    sys.path.remove(str(SCRIPT.parent))

TOLERANCE = 1e-10


def values(shape, low=-2.0, high=2.0):
    return arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False, allow_infinity=False, width=64))


def away_from(x: np.ndarray, kinks: float = 0.05) -> np.ndarray:
    """x with every value at least ``kinks`` away from 0 (the ReLU's kink)."""
    return np.where(np.abs(x) < kinks, np.where(x < 0, -kinks, kinks), x)


def distinct(shape, rng) -> np.ndarray:
    """Values with no ties, none 0 (the padding): spacing 0.1, far above gradcheck's step."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2 + 0.5) * 0.1


def assert_matches_primitives(layer, inputs, **options) -> None:
    """Outputs and every gradient equal the framework's primitive-op composition."""
    rng = np.random.default_rng(0)
    seed_output, seed_grads = seed_layers.gradients(lambda *t: layer.apply(*t, **options), inputs,
                                                    rng.standard_normal(layer.apply(*map(Tensor, inputs), **options).shape))
    rng = np.random.default_rng(0)
    framework_output, framework_grads = seed_layers.gradients(lambda *t: layer.as_primitives(*t, *options.values()), inputs,
                                                              rng.standard_normal(seed_output.shape))
    np.testing.assert_allclose(seed_output, framework_output, rtol=0, atol=TOLERANCE)
    for seed_grad, framework_grad in zip(seed_grads, framework_grads):
        np.testing.assert_allclose(seed_grad, framework_grad, rtol=0, atol=TOLERANCE)


# ----------------------------------------------------------------------------- each layer


@st.composite
def convolution_cases(draw):
    batch, channels, filters = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return draw(values((batch, channels, height, width))), draw(values((filters, channels, 3, 3)))


@given(convolution_cases())
def test_convolution_forward_is_the_loop_definition_and_backward_passes_gradcheck(case):
    x, weight = case
    output = seed_layers.SeedConvolution.apply(Tensor(x), Tensor(weight)).data
    np.testing.assert_allclose(output, conv2d_loops(x, weight, padding=(1, 1)), rtol=1e-12, atol=1e-12)
    gradcheck(lambda a, b: seed_layers.SeedConvolution.apply(a, b), [x, weight])
    assert_matches_primitives(seed_layers.SeedConvolution, [x, weight])


def test_convolution_gives_no_gradient_to_an_input_that_needs_none():
    images = Tensor(np.ones((1, 1, 4, 4)))
    weight = Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    seed_layers.SeedConvolution.apply(images, weight).sum().backward()
    assert images.grad is None
    assert weight.grad[0, 0, 1, 1] == 16 and weight.grad[0, 0, 0, 0] == 9  # centre tap sees all 16 pixels


@given(st.integers(1, 3), st.data())
def test_addition_passes_gradcheck_and_sums_the_bias_gradient_over_the_batch(batch, data):
    shape = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)))
    x, bias = data.draw(values((batch,) + shape)), data.draw(values(shape))
    gradcheck(lambda a, b: seed_layers.SeedAddition.apply(a, b), [x, bias])
    assert_matches_primitives(seed_layers.SeedAddition, [x, bias])
    bias_tensor = Tensor(bias, requires_grad=True)
    seed_layers.SeedAddition.apply(Tensor(x), bias_tensor).sum().backward()
    np.testing.assert_array_equal(bias_tensor.grad, np.full(shape, float(batch)))


@given(values(st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 4), st.integers(1, 4))))
def test_relu_passes_gradcheck_off_the_kink(x):
    x = away_from(x)
    gradcheck(lambda a: seed_layers.SeedReLU.apply(a), [x])
    assert_matches_primitives(seed_layers.SeedReLU, [x])


def test_relu_at_zero_passes_no_gradient():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    seed_layers.SeedReLU.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@given(st.integers(1, 2), st.integers(1, 2), st.integers(2, 7), st.integers(2, 7), st.integers(0, 2**32 - 1))
def test_max_pooling_passes_gradcheck_away_from_ties(batch, channels, height, width, seed):
    # distinct values, some negative: then the padding zero can win a window, and its gradient is dropped
    x = distinct((batch, channels, height, width), np.random.default_rng(seed))
    gradcheck(lambda a: seed_layers.SeedMaxPooling.apply(a), [x])
    assert_matches_primitives(seed_layers.SeedMaxPooling, [x])


def pool_by_loops(x: np.ndarray, grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tests/reference.py's loop pool on x zero-padded bottom/right by 1, padding gradient cut off."""
    padded = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    output, grad_padded = max_pool2d_loops(padded, (3, 3), (2, 2), grad_out)
    return output, grad_padded[:, :, :-1, :-1]


@given(st.integers(1, 2), st.sampled_from([(14, 14), (7, 7), (5, 6), (2, 3)]), st.integers(2, 3), st.data())
def test_max_pooling_sends_each_gradient_to_the_first_maximum_on_ties(batch, size, levels, data):
    # values on a few levels, zeros among them as after a ReLU: windows with tied maxima are everywhere
    x = data.draw(arrays(np.float64, (batch, 2) + size, elements=st.integers(0, levels - 1).map(float)))
    output = seed_layers.SeedMaxPooling.apply(Tensor(x)).data
    grad_out = np.random.default_rng(batch).standard_normal(output.shape)
    x_tensor = Tensor(x, requires_grad=True)
    seed_layers.SeedMaxPooling.apply(x_tensor).backward(grad_out)
    expected_output, expected_grad = pool_by_loops(x, grad_out)
    np.testing.assert_array_equal(output, expected_output)
    np.testing.assert_allclose(x_tensor.grad, expected_grad, rtol=0, atol=1e-12)
    assert_matches_primitives(seed_layers.SeedMaxPooling, [x])


def test_max_pooling_tie_rule_on_one_window():
    x = np.zeros((1, 1, 2, 2))  # padded to 3x3: one window, every value 0 (the padding ties too)
    x_tensor = Tensor(x, requires_grad=True)
    seed_layers.SeedMaxPooling.apply(x_tensor).backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(x_tensor.grad, [[[[5.0, 0.0], [0.0, 0.0]]]])  # the first in row-major order


@given(values(st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))))
def test_vectorization_keeps_c_h_w_order_and_passes_gradcheck(x):
    output = seed_layers.SeedVectorization.apply(Tensor(x)).data
    np.testing.assert_array_equal(output, x.reshape(len(x), -1))
    gradcheck(lambda a: seed_layers.SeedVectorization.apply(a), [x])
    assert_matches_primitives(seed_layers.SeedVectorization, [x])


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.data())
def test_matrix_multiply_add_passes_gradcheck(batch, inputs, outputs, data):
    x, weight, bias = data.draw(values((batch, inputs))), data.draw(values((inputs, outputs))), data.draw(values((outputs,)))
    np.testing.assert_allclose(seed_layers.SeedMatrixMultiplyAdd.apply(Tensor(x), Tensor(weight), Tensor(bias)).data,
                               x @ weight + bias, rtol=1e-12, atol=1e-12)
    gradcheck(lambda a, b, c: seed_layers.SeedMatrixMultiplyAdd.apply(a, b, c), [x, weight, bias])
    assert_matches_primitives(seed_layers.SeedMatrixMultiplyAdd, [x, weight, bias])


@given(st.integers(1, 4), st.integers(2, 10), st.data())
def test_softmax_cross_entropy_passes_gradcheck(batch, classes, data):
    logits = data.draw(values((batch, classes), -5.0, 5.0))
    labels = np.asarray(data.draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)))
    loss = seed_layers.SeedSoftmaxCrossEntropy.apply(Tensor(logits), labels=labels).item()
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(probabilities[np.arange(batch), labels]).mean(), rel=1e-12)
    gradcheck(lambda z: seed_layers.SeedSoftmaxCrossEntropy.apply(z, labels=labels), [logits])
    assert_matches_primitives(seed_layers.SeedSoftmaxCrossEntropy, [logits], labels=labels)


# ----------------------------------------------------------------------------- the network


def test_seed_layers_cnn_has_seed_cnns_parameters_and_initial_values():
    ours, theirs = state_dict(seed_layers.SeedLayersCNN(seed=3)), state_dict(SeedCNN(seed=3))
    assert list(ours) == list(theirs)
    assert list(ours) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias",
                          "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    for name in ours:
        assert ours[name].dtype == np.float32
        np.testing.assert_array_equal(ours[name], theirs[name])
    assert state_dict(seed_layers.SeedLayersCNN(seed=4))["conv1.weight"][0, 0, 0, 0] != ours["conv1.weight"][0, 0, 0, 0]


def test_the_layer_table_counts_seed_cnns_parameters_and_multiply_accumulates():
    ours = totals(summary(seed_layers.SeedLayersCNN(), (1, 1, 28, 28), print_table=False))
    theirs = totals(summary(SeedCNN(), (1, 1, 28, 28), print_table=False))
    assert (ours["params"], ours["macs"]) == (theirs["params"], theirs["macs"]) == (359_846, 2_233_832)


def test_seed_layers_cnn_checks_its_inputs():
    model = seed_layers.SeedLayersCNN()
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="out of range"):
        model.loss(np.zeros((2, 1, 28, 28)), np.array([0, 10]))


@pytest.fixture(scope="module")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    """The first 6 MNIST test images and labels. Without the data: fail in CI, skip on a laptop."""
    directory = os.environ.get("TINYGRAD_CNN_DATA", "")
    try:
        _, _, images, labels = mnist(directory or None, download=False)
    except (OSError, ValueError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide MNIST in TINYGRAD_CNN_DATA={directory!r}: {error}")
        pytest.skip("MNIST not available: set TINYGRAD_CNN_DATA to a directory with the four IDX files")
    return images[:6], labels[:6]


def trained_weights() -> dict[str, np.ndarray]:
    """SeedCNN's weights with nonzero biases, so the ReLUs and pools see varied values."""
    weights = state_dict(SeedCNN(seed=1, dtype=np.float64))
    rng = np.random.default_rng(1)
    return {name: value + 0.01 * rng.standard_normal(value.shape) if name.endswith("bias") else value
            for name, value in weights.items()}


@pytest.mark.parametrize("weights, positive_ties", [(state_dict(SeedCNN(seed=0, dtype=np.float64)), True),
                                                   (trained_weights(), False)], ids=["initial", "nonzero biases"])
def test_losses_and_every_gradient_equal_seed_cnns_on_real_digits_with_tied_pool_windows(test_images, weights,
                                                                                          positive_ties):
    images, labels = test_images
    models = [seed_layers.SeedLayersCNN(dtype=np.float64), SeedCNN(dtype=np.float64)]
    for model in models:
        load_state_dict(model, weights)
    ours, theirs = models[0].loss(images, labels), models[1](images).cross_entropy(labels)
    ours.backward()
    theirs.backward()
    assert abs(ours.item() - theirs.item()) < TOLERANCE
    framework_grads = {name: p.grad for name, p in named_parameters(models[1]).items()}
    for name, parameter in named_parameters(models[0]).items():
        assert parameter.grad is not None and np.any(parameter.grad != 0), name
        np.testing.assert_allclose(parameter.grad, framework_grads[name], rtol=0, atol=TOLERANCE, err_msg=name)
    # the comparison covered tied maxima: zeros everywhere, and with the initial zero biases
    # also positive ties (equal pixel patches), whose routing reaches the parameter gradients
    pool1_input = next(x for _, layer, x, _ in seed_layers.layer_inputs(models[0], images)
                       if layer is seed_layers.SeedMaxPooling)
    tied, positive, _ = seed_layers.pool_ties(pool1_input)
    assert tied > 100 and (positive > 0) == positive_ties, (tied, positive)


def test_float32_stays_float32_and_agrees_with_seed_cnn_to_rounding(test_images):
    images, labels = test_images
    models = [seed_layers.SeedLayersCNN(seed=2), SeedCNN(seed=2)]
    ours, theirs = models[0].loss(images, labels), models[1](images).cross_entropy(labels)
    ours.backward()
    theirs.backward()
    assert ours.dtype == np.float32 and ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    framework_grads = {name: p.grad for name, p in named_parameters(models[1]).items()}
    for name, parameter in named_parameters(models[0]).items():
        assert parameter.grad.dtype == np.float32, name
        scale = np.max(np.abs(framework_grads[name]))
        np.testing.assert_allclose(parameter.grad, framework_grads[name], rtol=0, atol=1e-4 * scale, err_msg=name)


def test_the_printed_checks_pass_on_a_slice(test_images):
    images, labels = test_images[0][:2], test_images[1][:2]
    weights = trained_weights()
    rows = seed_layers.check_layers(weights, images, labels)
    assert [row["layer"] for row in rows] == ["SeedConvolution", "SeedAddition", "SeedReLU", "SeedMaxPooling"] * 2 + [
        "SeedConvolution", "SeedAddition", "SeedReLU", "SeedVectorization", "SeedMatrixMultiplyAdd", "SeedReLU",
        "SeedMatrixMultiplyAdd", "SeedSoftmaxCrossEntropy"]
    for row in rows:
        assert row["gradcheck"] == "pass", row
        assert max(row["output"], row["input_grad"], row["param_grads"] or 0.0) < TOLERANCE, row
    assert rows[3]["ties"][0] > 0  # pool1 saw tied windows
    table = "\n".join(seed_layers.format_layer_table(rows, len(images)))
    assert "SeedMaxPooling" in table and "FAIL" not in table
    network = seed_layers.whole_network(weights, images, labels)
    assert abs(network["loss"][0] - network["loss"][1]) < TOLERANCE and network["gradient"] < TOLERANCE


def test_a_failing_backward_shows_in_the_table():
    class WrongReLU(seed_layers.SeedReLU):
        def backward(self, grad_out):
            return 2 * grad_out * self.positive  # off by a factor 2

    rows = [{"name": "relu", "layer": "WrongReLU",
             **seed_layers.compare_layer(WrongReLU, [np.array([[1.0, -2.0, 3.0]])], np.random.default_rng(0))}]
    assert rows[0]["gradcheck"].startswith("gradcheck failed")
    assert rows[0]["input_grad"] > 0.1
    assert "FAIL" in "\n".join(seed_layers.format_layer_table(rows, 1))


def test_side_by_side_training_keeps_the_weights_equal_in_float64(test_images):
    images, labels = test_images
    lines = []
    difference = seed_layers.train_side_by_side(state_dict(SeedCNN(dtype=np.float64)), images, labels, steps=3,
                                                batch_size=3, lr=0.05, dtype=np.float64, report_every=1, log=lines.append)
    assert len(lines) == 4 and difference < 1e-12


# ----------------------------------------------------------------------------- command line


def run_script(*flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(SCRIPT), *flags], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_help_explains_the_program():
    result = run_script("--help")
    assert result.returncode == 0
    assert "gradcheck" in result.stdout and "--steps" in result.stdout and "--data-dir" in result.stdout


@pytest.mark.parametrize("flags, problem", [(["--no-such-flag"], "unrecognized arguments"),
                                            (["--steps", "-1"], "--steps"),
                                            (["--images", "0"], "--images"),
                                            (["--dtype", "float16"], "invalid choice"),
                                            (["--seed", "-1"], "--seed must be >= 0, got -1")])
def test_bad_flags_give_a_one_line_error(flags, problem):
    result = run_script(*flags)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and problem in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("flags, message", [(["--lr", "-0.5"], "--lr must be a finite number >= 0, got -0.5"),
                                            (["--lr", "nan"], "--lr must be a finite number >= 0, got nan"),
                                            (["--lr", "inf"], "--lr must be a finite number >= 0, got inf"),
                                            (["--images", "0"], "--images must be positive, got 0"),
                                            (["--batch-size", "-3"], "--batch-size must be positive, got -3")])
def test_numbers_are_refused_by_the_examples_shared_checks_with_their_messages(flags, message, capsys):
    """seed_layers.py had its own copy of the learning-rate check (and one line for --images and
    --batch-size together); it now uses examples/common.py's, so each message reads as in
    mnist.py, lenet.py and visualize.py."""
    import common

    assert (seed_layers.refuse_negative, seed_layers.refuse_non_positive) == (common.refuse_negative,
                                                                              common.refuse_non_positive)
    with pytest.raises(SystemExit) as stop:
        seed_layers.parse_args(flags)
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {message} (see --help)\n"
    assert seed_layers.parse_args(["--lr", "0"]).lr == 0  # a dry run, as PyTorch's optimizers allow


def test_missing_data_gives_a_one_line_error(tmp_path):
    result = run_script("--data-dir", str(tmp_path / "nowhere"))  # a directory that does not exist
    assert result.returncode == 2
    assert result.stderr.startswith("error: could not load MNIST") and "nowhere does not exist" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    (tmp_path / "empty").mkdir()  # a directory without the files
    result = run_script("--data-dir", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: could not load MNIST") and "t10k-images" in result.stderr
    assert "--download" in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    (tmp_path / "partial").mkdir()  # some of the files: what is there is listed, and --download fetches the rest
    (tmp_path / "partial" / "train-labels-idx1-ubyte.gz").write_bytes(b"")
    result = run_script("--data-dir", str(tmp_path / "partial"))
    assert "Found there: train-labels-idx1-ubyte.gz." in result.stderr and "download=True" not in result.stderr
    assert "(Or add --download: it downloads only the missing files" in result.stderr and result.stderr.count("\n") == 1


def test_more_images_than_the_test_set_holds_are_refused_before_any_work(tmp_path, capsys):
    """--images was silently cut to the test set's size (10,000 for MNIST)."""
    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=3)
    assert seed_layers.main(["--data-dir", str(data), "--images", "4", "--steps", "0"]) == 2
    output = capsys.readouterr()
    assert output.err == "error: --images 4: the MNIST test set has only 3 images\n"
    assert output.out == ""


def test_the_program_runs_on_real_data(test_images):
    result = run_script("--images", "2", "--steps", "2", "--batch-size", "2",
                        env={"OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" pass ") == 16 and "FAIL" not in result.stdout
    assert "Whole network" in result.stdout and "max |Δ weight|" in result.stdout


def test_docs_section_3_links_every_seed_layer_to_the_example():
    docs = (ROOT / "docs" / "autograd.md").read_text(encoding="utf-8")
    section = docs[docs.index("## 3."):docs.index("## 4.")]
    layers = {name for name, value in vars(seed_layers).items()
              if isinstance(value, type) and issubclass(value, seed_layers.Function) and value is not seed_layers.Function}
    assert len(layers) == 7
    for name in layers:
        assert f"[`{name}`](../examples/seed_layers.py)" in section, name


def test_a_batch_larger_than_the_training_set_is_refused_before_any_work(tmp_path, capsys):
    """--batch-size 10**12 was a MemoryError traceback (7 TiB of batch indices)."""
    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=3)
    assert seed_layers.main(["--data-dir", str(data), "--images", "2", "--steps", "1",
                             "--batch-size", str(10**12)]) == 2
    output = capsys.readouterr()
    assert output.err == f"error: --batch-size {10**12}: the MNIST training set has only 4 images\n"
    assert output.out == ""
