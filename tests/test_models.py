"""SeedCNN and SeedMLP: shapes, the seed's initialisation, input checks, end-to-end gradients."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import get_parameters, named_parameters, state_dict


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 1, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_logits_shape_and_dtype(model_class):
    logits = model_class(seed=0)(images(3))
    assert logits.shape == (3, 10) and logits.dtype == np.float32
    assert model_class(seed=0, dtype=np.float64)(images(2)).dtype == np.float64


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_initialisation_is_seeded_and_follows_the_seed_documents(model_class):
    first, again, other = state_dict(model_class(seed=5)), state_dict(model_class(seed=5)), state_dict(model_class(seed=6))
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert any(not np.array_equal(first[name], other[name]) for name in first if name.endswith("weight"))
    for name, value in state_dict(model_class(seed=0)).items():
        if name.endswith("bias"):
            assert np.all(value == 0), name
        elif value.ndim == 4:  # conv filters: standard normal / 9
            assert abs(value.std() * 9 - 1) < 0.2, name
        else:  # dense: standard normal / fan_in, column-major (PyTorch's (out, in) in memory: kernels.column_major)
            assert abs(value.std() * value.shape[0] - 1) < 0.1, name
            assert value.flags.f_contiguous and not value.flags.c_contiguous, name


def test_seed_mlp_layers():
    assert {name: value.shape for name, value in named_parameters(SeedMLP()).items()} == {
        "fc1.weight": (784, 1000), "fc1.bias": (1000,), "fc2.weight": (1000, 100), "fc2.bias": (100,),
        "fc3.weight": (100, 10), "fc3.bias": (10,),
    }


@pytest.mark.parametrize("shape, hint", [
    ((2, 28, 28), "channel axis"),
    ((2, 28, 28, 1), "N,H,W,C"),
    ((1, 28, 28), "single image: add the batch axis"),
    ((28, 28), "single image"),
    ((2, 1, 32, 32), r"\(2, 1, 32, 32\)"),
    ((2, 3, 28, 28), r"\(2, 3, 28, 28\)"),
])
@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_bad_image_shapes_get_a_clear_error(model_class, shape, hint):
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 28, 28\).*" + hint):
        model_class()(np.zeros(shape, dtype=np.uint8))


def test_non_numeric_images_are_refused():
    with pytest.raises(TypeError, match="numeric"):
        SeedCNN()(np.full((1, 1, 28, 28), "x"))


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_images_already_scaled_to_0_1_are_refused(model_class):
    scaled = images(2).astype(np.float32) / 255
    with pytest.raises(ValueError, match=r"raw 0..255 pixels.*already scaled"):
        model_class()(scaled)
    with pytest.raises(ValueError, match=r"raw 0..255 pixels; these range from -1 to 3"):
        model_class()(np.full((1, 1, 28, 28), 3.0) - np.eye(28)[None, None] * 4)
    model_class()(np.zeros((2, 1, 28, 28), dtype=np.float32))  # an all-zero batch passes
    model_class()(images(2).astype(np.float64))  # and so do whole-number pixels in floats


def test_images_are_scaled_from_raw_pixels():
    """x/255: a uint8 batch and the same batch as float 0..255 give the same logits."""
    model, batch = SeedCNN(seed=0), images(2)
    np.testing.assert_allclose(model(batch).data, model(batch.astype(np.float32)).data, rtol=1e-6)
    np.testing.assert_allclose(model(Tensor(batch)).data, model(batch).data, rtol=1e-6)


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_whole_model_gradient_matches_a_directional_finite_difference(model_class):
    """All parameters at once, float64: ⟨∇L, v⟩ against (L(p + εv) − L(p − εv)) / 2ε."""
    model = model_class(seed=0, dtype=np.float64)
    for tensor in get_parameters(model):  # non-zero biases, so their gradients matter too
        tensor.data += np.random.default_rng(1).standard_normal(tensor.shape) * 0.01
    batch, labels = images(3, seed=2), np.array([1, 7, 3])
    loss = model(batch).cross_entropy(labels)
    loss.backward()
    parameters = get_parameters(model)
    rng = np.random.default_rng(3)
    directions = [rng.standard_normal(p.shape) for p in parameters]
    analytic = sum(float(np.sum(p.grad * v)) for p, v in zip(parameters, directions))
    epsilon = 1e-6

    def loss_at(sign: float) -> float:
        for p, v in zip(parameters, directions):
            p.data += sign * epsilon * v
        value = model(batch).cross_entropy(labels).item()
        for p, v in zip(parameters, directions):
            p.data -= sign * epsilon * v
        return value

    numeric = (loss_at(1.0) - loss_at(-1.0)) / (2 * epsilon)
    assert abs(analytic - numeric) <= 1e-6 + 1e-5 * abs(numeric), (analytic, numeric)


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_an_input_tensor_that_requires_grad_gets_its_gradient(model_class):
    """A saliency map: d(sum of logits)/d(pixels), the same for a float32 and a float64 input."""
    model = model_class(seed=0)
    pixels = Tensor(images(2).astype(np.float32), requires_grad=True)
    model(pixels).sum().backward()
    assert pixels.grad is not None and pixels.grad.shape == (2, 1, 28, 28) and np.any(pixels.grad != 0)
    wide = Tensor(images(2).astype(np.float64), requires_grad=True)  # converted in the graph
    model(wide).sum().backward()
    assert wide.grad is not None and wide.grad.dtype == np.float64
    np.testing.assert_allclose(wide.grad, pixels.grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("array, message", [
    (np.full((1, 1, 28, 28), 1000, np.int64), "these range from 0 to 1000"),
    (np.full((1, 1, 28, 28), -5, np.int32), "these range from -5 to -5"),
    (np.full((1, 1, 28, 28), 60000, np.uint16), "these range from 60000 to 60000"),
    (np.full((1, 1, 28, 28), -1, np.int8), "these range from -1 to -1"),
])
@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_integer_images_outside_0_255_are_refused(model_class, array, message):
    if "1000" in message:
        array[0, 0, 0, 0] = 0
    with pytest.raises(ValueError, match="raw 0..255 pixels; " + message):
        model_class()(array)
    model_class()(np.full((1, 1, 28, 28), 255, np.int64))  # whole range in a wide int passes


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_binarized_or_scaled_0_1_images_are_refused_not_read_as_almost_black(model_class):
    # thresholded MNIST (x > 127), as bool or as 0/1 numbers, passed as raw pixels, gave 11.7 %
    # accuracy on a model that scores 94.8 % on the same images as 0..255
    pixels = images(2)
    with pytest.raises(TypeError, match=r"these images are bool .*pass images.astype\(np.uint8\) \* 255"):
        model_class()(pixels > 127)
    for binarized in ((pixels > 127).astype(np.float32), (pixels > 127).astype(np.uint8)):
        with pytest.raises(ValueError, match=r"these images lie within 0..1 .*multiply by 255"):
            model_class()(binarized)
    model_class()((pixels > 127).astype(np.uint8) * 255)
    model_class()(np.zeros((1, 1, 28, 28), np.float32))  # a blank image is not refused


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_images_get_their_own_message(bad):
    array = images(1).astype(np.float32)
    array[0, 0, 3, 4] = bad
    with pytest.raises(ValueError, match=r"the images hold 1 NaN or infinite value\(s\) \(e.g. -?(nan|inf)\)"):
        SeedCNN()(array)


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
def test_a_bad_seed_is_refused_naming_the_argument(model_class):
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got -1"):
        model_class(seed=-1)
    with pytest.raises(TypeError, match=r"seed must be a non-negative integer, got float 1.5"):
        model_class(seed=1.5)
    model_class(seed=np.int64(3))


@pytest.mark.parametrize("model_class", [SeedCNN, SeedMLP])
@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.longdouble])
def test_a_dtype_other_than_float32_or_float64_is_refused_naming_the_model(model_class, dtype):
    """float16 was accepted: the weights were drawn, rounded to half precision and held as
    float32 (a Tensor holds no float16), and the model's dtype said float16; int64 failed
    later with a message about requires_grad."""
    with pytest.raises(TypeError, match=rf"{model_class.__name__}: dtype must be float32 or float64, got"):
        model_class(dtype=dtype)
    assert model_class(dtype="float64").dtype is np.float64
