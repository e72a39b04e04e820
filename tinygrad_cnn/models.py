"""The two networks of the seed documents, written as ordinary expressions on Tensors.

SeedCNN (the seed's final network, state_dict keys and shapes as in DESIGN.md):

    x/255 → conv 3x3 pad 1 (1→16) + bias 16x28x28 → relu → pad bottom/right 1 → max pool 3x3/2
          → conv (16→32) + bias 32x14x14 → relu → pad → pool
          → conv (32→64) + bias 64x7x7 → relu → flatten (C,H,W order)
          → @ fc1 (3136x100) + b → relu → @ fc2 (100x10) + b → logits

The biases of the convolutions are per position, as the seed's "Addition" layers. The
seed's initialisation: conv filters standard-normal / 9, dense weights standard-normal /
fan_in, biases zero.

SeedMLP (the seed's earlier fully connected network): 784 → 1000 → 100 → 10 with relus.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.checks import dtype_argument
from tinygrad_cnn.random import checked_seed
from tinygrad_cnn.tensor import Tensor, forward_hooks, is_grad_enabled

IMAGE_SHAPE = (1, 28, 28)


class Conv:
    """The parameters of one convolution layer: ``weight`` (O,C,kh,kw) and a per-position ``bias``."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight = Tensor(weight, requires_grad=True)
        self.bias = Tensor(bias, requires_grad=True)


class Dense:
    """The parameters of one fully connected layer: ``weight`` (in, out) and ``bias`` (out,).
    The seed networks' weights are column-major arrays (``kernels.column_major``)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight = Tensor(weight, requires_grad=True)
        self.bias = Tensor(bias, requires_grad=True)

    def __call__(self, x: Tensor, relu: bool = False, fused: bool = True) -> Tensor:
        """x @ weight + bias (then relu), as one op (``fused``, the seed's "matrix multiply and
        add") or as MatMul, Add (and ReLU): the same numbers and gradients."""
        if fused:
            return x.matmul(self.weight, bias=self.bias, relu=relu)
        x = x @ self.weight + self.bias
        return x.relu() if relu else x


def _dense(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> Dense:
    weight = (rng.standard_normal((fan_in, fan_out)) / fan_in).astype(dtype)
    # (column-major, PyTorch's (out, in) weight in memory: faster, see kernels.column_major)
    return Dense(np.asfortranarray(weight), np.zeros(fan_out, dtype=dtype))


def _conv(rng: np.random.Generator, in_channels: int, out_channels: int, size: int, dtype) -> Conv:
    weight = (rng.standard_normal((out_channels, in_channels, 3, 3)) / 9).astype(dtype)
    return Conv(weight, np.zeros((out_channels, size, size), dtype=dtype))


def pixels_to_tensor(images: Tensor | np.ndarray, dtype) -> Tensor:
    """Check that ``images`` is a batch N,1,28,28 of raw 0..255 pixels; return it as a Tensor
    of ``dtype`` (the model's first op, the division by 255, is in the graph). A Tensor stays
    in the graph (converted by ``astype`` where its dtype differs), so a float input that
    requires grad gets its gradient (a saliency map)."""
    array = images.data if isinstance(images, Tensor) else np.asarray(images)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"images must be numeric, got dtype {array.dtype}")
    if array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE:
        hint = ""
        if array.ndim == 4 and array.shape[1:] == (28, 28, 1):
            hint = " (that is N,H,W,C: transpose it with images.transpose(0, 3, 1, 2))"
        elif array.shape in (IMAGE_SHAPE, (28, 28)):
            hint = " (a single image: add the batch axis with images[None])"
        elif array.ndim == 3 and array.shape[1:] == (28, 28):
            hint = " (add the channel axis with images[:, None])"
        raise ValueError(f"expected images of shape (N, 1, 28, 28), got {array.shape}{hint}")
    if array.dtype.kind == "b":
        raise TypeError("the model takes raw 0..255 pixels, but these images are bool (a thresholded image, "
                        "x > 127?), which would be read as pixels 0 and 1, almost black; pass "
                        "images.astype(np.uint8) * 255")
    if array.size:
        if array.dtype != np.uint8:  # (uint8 is always 0..255)
            _check_pixel_values(array)
        brightest = array.max()
        if 0 < brightest <= 1:  # a raw digit is never that dark: 0/1 images, binarized or scaled
            raise ValueError("the model takes raw 0..255 pixels, but these images lie within 0..1 (binarized, or "
                             "already scaled?), which would be read as almost black; multiply by 255")
    if isinstance(images, Tensor):
        return images.astype(dtype)
    return Tensor(array.astype(dtype, copy=False))


def _check_pixel_values(array: np.ndarray) -> None:
    """A ValueError unless every value of the int or float ``array`` is a whole number 0..255."""
    if array.dtype.kind == "f":
        not_whole = array != np.round(array)  # (NaN too)
        if np.any(not_whole):
            _check_finite(array)
            raise ValueError(
                "the model takes raw 0..255 pixels (its first op divides by 255), but these images hold "
                f"values that are not whole numbers (e.g. {array[not_whole].flat[0]:g}): "
                "they look already scaled; pass the uint8 images, or multiply by 255"
            )
    low, high = array.min(), array.max()
    if low < 0 or high > 255:
        if array.dtype.kind == "f":
            _check_finite(array)
        raise ValueError(f"the model takes raw 0..255 pixels; these range from {low:g} to {high:g}")


def _check_finite(array: np.ndarray) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"the images hold {np.count_nonzero(~finite)} NaN or infinite value(s) "
                         f"(e.g. {array[~finite].flat[0]:g}); the model takes raw 0..255 pixels")


def model_dtype(name: str, dtype) -> type:
    """The scalar type of a model's parameters, float32 or float64 (None: float32), else a
    TypeError naming the model. Another float would pass silently: float16 weights were drawn,
    rounded to half precision, then held as float32 (a Tensor holds no float16) by a model
    whose ``dtype`` said float16; an integer one failed later, on requires_grad."""
    return dtype_argument(name, dtype, floats_only=True).type


class SeedCNN:
    """The seed's convolutional network; ``model(images)`` returns logits N,10.

    ``fused=True`` (default) runs each block as two fused ops (conv + bias (+ relu), and
    pad + pool + relu) and each dense layer as one (matrix multiply + bias (+ relu)) for speed;
    ``fused=False`` runs the same network op by op, exactly as the seed documents list the
    layers. Both give the same numbers and gradients.
    """

    def __init__(self, seed: int = 0, dtype=np.float32, fused: bool = True):
        self.dtype = model_dtype("SeedCNN", dtype)
        self.fused = fused
        rng = np.random.default_rng(checked_seed("seed", seed))
        self.conv1 = _conv(rng, 1, 16, 28, self.dtype)
        self.conv2 = _conv(rng, 16, 32, 14, self.dtype)
        self.conv3 = _conv(rng, 32, 64, 7, self.dtype)
        self.fc1 = _dense(rng, 3136, 100, self.dtype)
        self.fc2 = _dense(rng, 100, 10, self.dtype)

    def block(self, x: Tensor, conv: Conv, pool: bool) -> Tensor:
        """conv 3x3 (pad 1) + per-position bias → relu [→ pad bottom/right 1 → max pool 3x3/2].

        The same as ``(x.conv2d(conv.weight, padding=1) + conv.bias).relu()`` and
        ``.pad(((0, 0), (0, 0), (0, 1), (0, 1))).max_pool2d(3, stride=2)``, in two ops with
        their fused options; before a pool the relu moves behind it (relu then max = max then
        relu), onto the 4x smaller pooled output.
        """
        if not self.fused:
            x = (x.conv2d(conv.weight, padding=1) + conv.bias).relu()
            return x.pad(((0, 0), (0, 0), (0, 1), (0, 1))).max_pool2d(3, stride=2) if pool else x
        x = x.conv2d(conv.weight, conv.bias, padding=1, relu=not pool)
        if pool:
            x = x.pad_max_pool2d(((0, 1), (0, 1)), 3, stride=2, relu=True)
        return x

    #: without a graph, big batches are run in chunks of this many images (same numbers):
    #: the chunk's activations stay in the CPU caches instead of streaming through memory.
    #: Not while a tracer watches the ops (summary, ONNX export): it would see each op once per chunk.
    inference_chunk = 128

    def __call__(self, images: Tensor | np.ndarray) -> Tensor:
        pixels = pixels_to_tensor(images, self.dtype)
        if not is_grad_enabled() and not forward_hooks and len(pixels) > self.inference_chunk:
            chunks = [self.logits(Tensor(pixels.data[start : start + self.inference_chunk]))
                      for start in range(0, len(pixels), self.inference_chunk)]
            return Tensor(np.concatenate([chunk.data for chunk in chunks]))
        return self.logits(pixels)

    def logits(self, pixels: Tensor) -> Tensor:
        """The network on raw 0..255 pixels (N,1,28,28), already checked."""
        x = pixels / 255.0  # the seed's first layer
        x = self.block(x, self.conv1, pool=True)  # 16 x 14 x 14
        x = self.block(x, self.conv2, pool=True)  # 32 x 7 x 7
        x = self.block(x, self.conv3, pool=False).flatten()  # 3136
        return self.fc2(self.fc1(x, relu=True, fused=self.fused), fused=self.fused)


class SeedMLP:
    """The seed's fully connected network 784 → 1000 → 100 → 10; ``model(images)`` gives logits.

    ``fused=True`` (default) runs each layer as one op (matrix multiply + bias (+ relu));
    ``fused=False`` as MatMul, Add (and ReLU). Both give the same numbers and gradients.
    """

    def __init__(self, seed: int = 0, dtype=np.float32, fused: bool = True):
        self.dtype = model_dtype("SeedMLP", dtype)
        self.fused = fused
        rng = np.random.default_rng(checked_seed("seed", seed))
        self.fc1 = _dense(rng, 784, 1000, self.dtype)
        self.fc2 = _dense(rng, 1000, 100, self.dtype)
        self.fc3 = _dense(rng, 100, 10, self.dtype)

    def __call__(self, images: Tensor | np.ndarray) -> Tensor:
        x = (pixels_to_tensor(images, self.dtype) / 255.0).flatten()
        x = self.fc2(self.fc1(x, relu=True, fused=self.fused), relu=True, fused=self.fused)
        return self.fc3(x, fused=self.fused)
