#!/usr/bin/env python3
"""The seed's own seven layers, each with its hand-derived backward, checked by the engine.

The program this project grew from trained its CNN with seven layer classes, each with a
forward and a backward worked out by hand (dLoss/dIn = dLoss/dOut · dOut/dIn, and
dLoss/dParam for the layers with parameters). tinygrad_cnn replaced those backward methods
by primitive ops and one ``loss.backward()``. Here the seven layers come back, written as
``Function`` subclasses, so a learner can read both side by side and watch the engine check
the hand-written ones:

    SeedConvolution         3x3, pad 1, stride 1         (x, weight)        → y
    SeedAddition            the "3D addition": a bias per position C,H,W
    SeedReLU                max(x, 0)
    SeedMaxPooling          zero pad bottom/right 1, then 3x3 windows, stride 2
    SeedVectorization       C,H,W → one vector of C·H·W
    SeedMatrixMultiplyAdd   x @ weight + bias (a dense layer)
    SeedSoftmaxCrossEntropy softmax, then the mean cross-entropy error

``SeedLayersCNN`` builds the seed network from them, with exactly SeedCNN's parameters.

    python examples/seed_layers.py               # per-layer table, then 200 side-by-side training steps
    python examples/seed_layers.py --steps 50 --dtype float32

For a batch of real MNIST test images it prints, layer by layer, the hand-written backward
checked by ``gradcheck`` (float64 finite differences) and compared with the framework's own
primitive ops (largest absolute difference of the outputs and of every gradient); then it
trains SeedLayersCNN and SeedCNN side by side from the same weights and shows that the
weights stay equal (in float64; in float32 up to rounding, which SGD slowly amplifies). The data comes from --data-dir, else $TINYGRAD_CNN_DATA, else a per-user
cache directory (add --download to fetch missing files there).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, NoReturn, Optional, Sequence

import numpy as np
from common import (  # examples/common.py
    LEARNING_RATE_RULE,
    refuse_negative,
    refuse_negative_integers,
    refuse_non_positive,
)
from numpy.lib.stride_tricks import sliding_window_view

from tinygrad_cnn import Function, GradcheckError, Tensor, gradcheck, no_grad
from tinygrad_cnn.datasets import mnist
from tinygrad_cnn.function import Gradients
from tinygrad_cnn.models import SeedCNN, pixels_to_tensor
from tinygrad_cnn.nn import load_state_dict, named_parameters, state_dict
from tinygrad_cnn.optim import SGD
from tinygrad_cnn.tensor import check_labels

# ---------------------------------------------------------------------------
# The seven layers. Shapes: N images, C channels, H x W pixels, O filters.
# ---------------------------------------------------------------------------


def correlate3x3(x: np.ndarray, filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y[n,o,h,w] = Σ_{c,p,q} xp[n, c, h+p, w+q] · filters[o,c,p,q], xp = x zero-padded by 1.

    x (N,C,H,W), filters (O,C,3,3) → y (N,O,H,W), and the windows view
    windows[n,c,h,w,p,q] = xp[n, c, h+p, w+q] (no pixel loop: numpy slides the 3x3 window).
    """
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(padded, (3, 3), axis=(2, 3))  # N,C,H,W,3,3
    output = np.tensordot(windows, filters, axes=((1, 4, 5), (1, 2, 3)))  # N,H,W,O
    return np.ascontiguousarray(output.transpose(0, 3, 1, 2)), windows


class SeedConvolution(Function):
    """The seed's "3x3/1 1 pad Convolution": x (N,C,H,W), weight (O,C,3,3) → y (N,O,H,W).

    y[n,o,h,w] = Σ_{c,p,q} xp[n, c, h+p, w+q] · weight[o,c,p,q]   (xp: x zero-padded by 1).
    Backward, with G = dLoss/dy:
      dLoss/dweight[o,c,p,q] = Σ_{n,h,w} G[n,o,h,w] · xp[n,c,h+p,w+q]    (G against the input windows)
      dLoss/dx[n,c,h,w] = Σ_{o,p,q} G[n,o,h+1−p,w+1−q] · weight[o,c,p,q]   (G = 0 outside the image)
                        = the same 3x3 "same" convolution, of G with the filters rotated by
                          180° and their in/out channels swapped: weight[o,c,2−p,2−q] as (C,O,3,3).
    """

    label = "3x3/1 1 pad Convolution"

    def forward(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        output, self.windows = correlate3x3(x, weight)
        self.weight = weight
        return output

    def macs(self, input_shapes, output_shape) -> int:
        """One multiply-accumulate per output element and filter tap: (N·O·H·W)·(C·3·3)."""
        return int(np.prod(output_shape)) * input_shapes[1][1] * 9

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_weight = np.tensordot(grad_out, self.windows, axes=((0, 2, 3), (0, 2, 3)))  # O,C,3,3
        grad_x = None
        if self.needs_input_grad[0]:  # the images need none
            rotated = self.weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # C,O,3,3
            grad_x, _ = correlate3x3(grad_out, rotated)
        return grad_x, grad_weight

    @staticmethod
    def as_primitives(x: Tensor, weight: Tensor) -> Tensor:
        """The same layer as the framework writes it."""
        return x.conv2d(weight, padding=1)


class SeedAddition(Function):
    """The seed's "3D addition": y[n,c,h,w] = x[n,c,h,w] + bias[c,h,w], one bias per position.

    Backward: dLoss/dx = G (the derivative of x + b by x is 1);
              dLoss/dbias[c,h,w] = Σ_n G[n,c,h,w] (every image added the same bias).
    """

    label = "Addition"

    def forward(self, x: np.ndarray, bias: np.ndarray) -> np.ndarray:
        return x + bias

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return grad_out, grad_out.sum(axis=0)

    @staticmethod
    def as_primitives(x: Tensor, bias: Tensor) -> Tensor:
        return x + bias


class SeedReLU(Function):
    """y = max(x, 0), element by element.

    Backward: dLoss/dx = G where x > 0, 0 elsewhere (at the kink x = 0: 0, as PyTorch and the framework).
    """

    label = "ReLU"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.positive = x > 0
        return x * self.positive

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return grad_out * self.positive

    @staticmethod
    def as_primitives(x: Tensor) -> Tensor:
        return x.relu()


class SeedMaxPooling(Function):
    """The seed's "3x3/2 Max pooling" after a zero row and column at the bottom and right:
    x (N,C,H,W) → xp (N,C,H+1,W+1) → y (N,C,Ho,Wo), Ho = (H+1−3)//2 + 1 (28 → 14, 14 → 7).

    y[n,c,i,j] = max_{p,q} xp[n, c, 2i+p, 2j+q]; the winner is the window's FIRST maximum
    in row-major order (p, then q), as the framework and PyTorch choose on ties.
    Backward: dLoss/dx[n,c,2i+p*,2j+q*] += G[n,c,i,j] at each window's winner (p*, q*), 0
    elsewhere; where windows overlap (stride 2 < 3) the contributions add up; what the
    padding zero wins is dropped with the padding.
    """

    label = "Zero padding (bottom 1, right 1) + 3x3/2 Max pooling"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if min(x.shape[2:]) < 2:
            raise ValueError(f"SeedMaxPooling needs images of at least 2x2 pixels (one 3x3 window after "
                             f"the padding), got shape {x.shape}")
        padded = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
        windows = sliding_window_view(padded, (3, 3), axis=(2, 3))[:, :, ::2, ::2]  # N,C,Ho,Wo,3,3
        windows = windows.reshape(windows.shape[:4] + (9,))  # tap k = 3p + q, row-major
        self.winner = windows.argmax(axis=-1)  # argmax returns the first maximum: the tie rule
        self.padded_shape = padded.shape
        return np.take_along_axis(windows, self.winner[..., np.newaxis], axis=-1)[..., 0]

    def backward(self, grad_out: np.ndarray) -> Gradients:
        batch, channels, out_h, out_w = grad_out.shape
        p, q = np.divmod(self.winner, 3)
        n, c, i, j = np.indices(grad_out.shape, sparse=True)
        grad_padded = np.zeros(self.padded_shape, dtype=grad_out.dtype)
        np.add.at(grad_padded, (n, c, 2 * i + p, 2 * j + q), grad_out)  # adds where windows overlap
        return grad_padded[:, :, :-1, :-1]

    @staticmethod
    def as_primitives(x: Tensor) -> Tensor:
        return x.pad(((0, 0), (0, 0), (0, 1), (0, 1))).max_pool2d(3, stride=2)


class SeedVectorization(Function):
    """The seed's "Vectorization": x (N,C,H,W) → y (N, C·H·W), element (c,h,w) at c·H·W + h·W + w.

    Backward: dLoss/dx = G reshaped back to (N,C,H,W) (each number only moved).
    """

    label = "Vectorization"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return grad_out.reshape(self.input_shape)

    @staticmethod
    def as_primitives(x: Tensor) -> Tensor:
        return x.flatten()


class SeedMatrixMultiplyAdd(Function):
    """The seed's dense layer: y = x @ weight + bias for x (N,I), weight (I,O), bias (O,).

    y[n,o] = Σ_i x[n,i] · weight[i,o] + bias[o].
    Backward: dLoss/dx = G weightᵀ;  dLoss/dweight = xᵀ G;  dLoss/dbias[o] = Σ_n G[n,o].
    """

    label = "Matrix multiply and add"

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        self.x, self.weight = x, weight
        return x @ weight + bias

    def macs(self, input_shapes, output_shape) -> int:
        """One multiply-accumulate per output element and input: (N·O)·I."""
        return int(np.prod(output_shape)) * input_shapes[1][0]

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return grad_out @ self.weight.T, self.x.T @ grad_out, grad_out.sum(axis=0)

    @staticmethod
    def as_primitives(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return x @ weight + bias


class SeedSoftmaxCrossEntropy(Function):
    """The seed's last two rows: softmax, then the mean cross-entropy error against labels t.

    s[n,k] = exp(z[n,k] − m_n) / Σ_k' exp(z[n,k'] − m_n)   (m_n = max_k z[n,k], for safety)
    L = −(1/N) Σ_n log s[n, t_n].
    Backward: dLoss/dz[n,k] = G · (s[n,k] − [k = t_n]) / N — the softmax's Jacobian
    (diag(s) − s sᵀ) times the error's gradient (−[k = t_n]/(N s[n,k])) collapses to this.
    """

    label = "Softmax + cross-entropy error"

    def __init__(self, labels: np.ndarray):
        self.labels = labels

    def forward(self, logits: np.ndarray) -> np.ndarray:
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        self.softmax = exponentials / exponentials.sum(axis=1, keepdims=True)
        rows = np.arange(len(logits))
        return np.asarray(-np.log(self.softmax[rows, self.labels]).mean(), dtype=logits.dtype)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        onehot = np.zeros_like(self.softmax)
        onehot[np.arange(len(onehot)), self.labels] = 1
        return grad_out * (self.softmax - onehot) / len(onehot)

    @staticmethod
    def as_primitives(logits: Tensor, labels: np.ndarray) -> Tensor:
        return logits.cross_entropy(labels)


# ---------------------------------------------------------------------------
# The seed network, built from those seven layers
# ---------------------------------------------------------------------------


class SeedLayersCNN:
    """SeedCNN built from the seed's own layers: the same parameters (names, shapes, and
    initial values for the same ``seed``), the same logits, the same gradients.

    images/255 → [Convolution → Addition → ReLU → Max pooling] x 2 → Convolution → Addition
    → ReLU → Vectorization → Matrix multiply and add → ReLU → Matrix multiply and add → logits.
    """

    def __init__(self, seed: int = 0, dtype=np.float32):
        self.dtype = np.dtype(dtype).type
        initial = SeedCNN(seed=seed, dtype=self.dtype)  # SeedCNN's own initialisation, not a copy of it
        self.conv1, self.conv2, self.conv3 = initial.conv1, initial.conv2, initial.conv3
        self.fc1, self.fc2 = initial.fc1, initial.fc2

    def layers(self) -> list[tuple[str, type[Function], tuple[Tensor, ...]]]:
        """The network in order: (row name, layer, its parameters)."""
        rows: list[tuple[str, type[Function], tuple[Tensor, ...]]] = []
        for number, conv, pool in ((1, self.conv1, True), (2, self.conv2, True), (3, self.conv3, False)):
            rows += [(f"conv{number}", SeedConvolution, (conv.weight,)),
                     (f"conv{number} bias", SeedAddition, (conv.bias,)),
                     (f"relu{number}", SeedReLU, ())]
            if pool:
                rows.append((f"pool{number}", SeedMaxPooling, ()))
        return rows + [("flatten", SeedVectorization, ()),
                       ("fc1", SeedMatrixMultiplyAdd, (self.fc1.weight, self.fc1.bias)),
                       ("relu4", SeedReLU, ()),
                       ("fc2", SeedMatrixMultiplyAdd, (self.fc2.weight, self.fc2.bias))]

    def __call__(self, images: Tensor | np.ndarray) -> Tensor:
        """Logits (N,10) of raw 0..255 images (N,1,28,28), divided by 255 first as SeedCNN does."""
        return self.logits(pixels_to_tensor(images, self.dtype))

    def logits(self, pixels: Tensor) -> Tensor:
        """The network on raw 0..255 pixels (N,1,28,28), already checked."""
        x = pixels / 255.0  # the seed's first layer, as in SeedCNN
        for _, layer, parameters in self.layers():
            x = layer.apply(x, *parameters)
        return x

    def loss(self, images: Tensor | np.ndarray, labels: Tensor | np.ndarray) -> Tensor:
        """The mean cross-entropy error of the batch, through the seed's own softmax layer."""
        logits = self(images)
        return SeedSoftmaxCrossEntropy.apply(logits, labels=check_labels(logits.shape, labels))


# ---------------------------------------------------------------------------
# The checks the program prints
# ---------------------------------------------------------------------------


def layer_inputs(model: SeedLayersCNN, images: np.ndarray) -> list[tuple[str, type[Function], np.ndarray, tuple[np.ndarray, ...]]]:
    """(row name, layer, the array that reaches it, its parameter arrays) for each layer."""
    rows = []
    with no_grad():
        x = pixels_to_tensor(images, model.dtype) / 255.0
        for name, layer, parameters in model.layers():
            rows.append((name, layer, x.data, tuple(parameter.data for parameter in parameters)))
            x = layer.apply(x, *parameters)
    return rows


def gradients(function: Callable[..., Tensor], arrays: Sequence[np.ndarray],
              grad_out: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """function's output and the gradients of ⟨grad_out, output⟩ by each input."""
    inputs = [Tensor(array, requires_grad=True) for array in arrays]
    output = function(*inputs)
    output.backward(grad_out)
    return output.data, [tensor.grad for tensor in inputs]


def compare_layer(layer: Any, arrays: Sequence[np.ndarray], rng: np.random.Generator,
                  **options) -> dict:
    """Run the hand-written ``layer`` (one of the Seed… Function classes above: ``apply`` and
    ``as_primitives``) and the framework's primitives on the same float64 inputs and the same
    random dLoss/dOut; gradcheck the hand-written one off its kinks and ties.

    Returns {"output_shape", "gradcheck": "pass" or the GradcheckError's message, and the
    largest absolute differences "output", "input_grad", "param_grads" (None: no parameters)}.
    """
    arrays = [np.asarray(array, dtype=np.float64) for array in arrays]

    def seed(*inputs: Tensor) -> Tensor:
        return layer.apply(*inputs, **options)

    def primitives(*inputs: Tensor) -> Tensor:
        return layer.as_primitives(*inputs, *options.values())

    with no_grad():
        grad_out = rng.standard_normal(seed(*[Tensor(array) for array in arrays]).shape)
    seed_output, seed_grads = gradients(seed, arrays, grad_out)
    framework_output, framework_grads = gradients(primitives, arrays, grad_out)
    # Finite differences are undefined at a ReLU kink or a pool tie (real images have many),
    # and a step across one fails the check. So gradcheck gets the input spread off them:
    # element i moves up by (k_i + ½)·gap, k a random permutation of 0 .. size−1 and gap =
    # 1e-2/size, so two elements that were equal end at least one gap apart and one that was
    # 0 at least half a gap above 0; gradcheck's ε is a 40th of the gap (at most 1e-8), so
    # its steps (ε times a standard-normal entry each, below 5ε) cannot close that. The ties
    # themselves are checked by the exact comparison with the framework.
    size = arrays[0].size
    gap = 1e-2 / size
    spread = (rng.permutation(size) + 0.5) * gap
    jittered = [arrays[0] + spread.reshape(arrays[0].shape)] + arrays[1:]
    try:
        verdict = "pass" if gradcheck(seed, jittered, eps=min(1e-8, gap / 40)) else "FAIL"
    except GradcheckError as error:
        verdict = str(error)
    differences = [float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(seed_grads, framework_grads)]
    return {"output_shape": seed_output.shape, "gradcheck": verdict,
            "output": float(np.max(np.abs(seed_output - framework_output))),
            "input_grad": differences[0], "param_grads": max(differences[1:], default=None)}


def pool_ties(x: np.ndarray) -> tuple[int, int, int]:
    """For SeedMaxPooling's input x: (windows whose maximum occurs more than once, those
    among them whose maximum is positive, all windows)."""
    padded = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    windows = sliding_window_view(padded, (3, 3), axis=(2, 3))[:, :, ::2, ::2].reshape(-1, 9)
    maxima = windows.max(axis=1, keepdims=True)
    tied = (windows == maxima).sum(axis=1) > 1
    return int(tied.sum()), int((tied & (maxima[:, 0] > 0)).sum()), len(tied)


def check_layers(weights: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray, seed: int = 0) -> list[dict]:
    """``compare_layer`` for every layer of SeedLayersCNN (float64, these weights), each on
    the activations the images give it, then for the loss layer on the logits; pool rows
    also get "ties" = ``pool_ties`` of their input."""
    model = SeedLayersCNN(dtype=np.float64)
    load_state_dict(model, weights)
    rng = np.random.default_rng(seed)
    with no_grad():
        logits = model(images).data
    rows = []
    for name, layer, x, parameters in layer_inputs(model, images) + [("loss", SeedSoftmaxCrossEntropy, logits, ())]:
        options = {"labels": labels} if layer is SeedSoftmaxCrossEntropy else {}
        row = {"name": name, "layer": layer.__name__, **compare_layer(layer, (x,) + parameters, rng, **options)}
        if layer is SeedMaxPooling:
            row["ties"] = pool_ties(x)
        rows.append(row)
    return rows


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(size) for size in shape)


def format_layer_table(rows: Sequence[dict], image_count: int) -> list[str]:
    """``check_layers``' result as the printed table."""
    lines = [f"Each layer on the activations of {image_count} MNIST test images, float64, "
             "with a random normal dLoss/dOut.",
             "gradcheck: the hand-written backward against finite differences (input spread off kinks and ties, by at most 1e-2).",
             "|Δ ...|: largest absolute difference from the framework's primitive ops (ties included).",
             f"{'layer':<11} {'Function':<24} {'output':<11} {'gradcheck':<9} "
             f"{'|Δ out|':>8} {'|Δ dIn|':>8} {'|Δ dParam|':>10}"]
    failures = []
    for row in rows:
        verdict = row["gradcheck"] if row["gradcheck"] == "pass" else "FAIL"
        if verdict == "FAIL":
            failures.append(f"{row['name']}: {row['gradcheck']}")
        parameters = "-" if row["param_grads"] is None else f"{row['param_grads']:.1e}"
        lines.append(f"{row['name']:<11} {row['layer']:<24} {shape_text(row['output_shape']) or 'scalar':<11} "
                     f"{verdict:<9} {row['output']:>8.1e} {row['input_grad']:>8.1e} {parameters:>10}")
    lines.append("Pool windows with a tied maximum (the first in row-major order wins): " + ", ".join(
        f"{row['name']} {tied} of {total} ({positive} tied above 0)"
        for row in rows if "ties" in row for tied, positive, total in [row["ties"]]))
    return lines + failures


def largest_weight_difference(first, second) -> float:
    """The largest |Δ| between the two models' parameters, over all of them."""
    a, b = state_dict(first), state_dict(second)
    return max(float(np.max(np.abs(a[name].astype(np.float64) - b[name]))) for name in a)


def training_loss(model, images: np.ndarray, labels: np.ndarray) -> Tensor:
    """SeedLayersCNN's own loss layer, or the framework's fused cross-entropy for SeedCNN."""
    if isinstance(model, SeedLayersCNN):
        return model.loss(images, labels)
    return model(images).cross_entropy(labels)


def whole_network(weights: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray) -> dict:
    """Loss and every parameter gradient of SeedLayersCNN and SeedCNN (float64, same weights):
    {"loss": (seed layers, SeedCNN), "gradient": largest |Δ| over all parameters}."""
    results = []
    for model in (SeedLayersCNN(dtype=np.float64), SeedCNN(dtype=np.float64)):
        load_state_dict(model, weights)
        loss = training_loss(model, images, labels)
        loss.backward()
        results.append((float(loss), {name: p.grad for name, p in named_parameters(model).items()}))
    (seed_loss, seed_grads), (framework_loss, framework_grads) = results
    return {"loss": (seed_loss, framework_loss),
            "gradient": max(float(np.max(np.abs(seed_grads[name] - framework_grads[name]))) for name in seed_grads)}


def train_side_by_side(weights: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray,
                       steps: int, batch_size: int, lr: float, dtype, report_every: int,
                       log: Callable[[str], None]) -> float:
    """SGD (momentum 0.9) on SeedLayersCNN and SeedCNN from the same weights on the same
    batches; returns the largest weight difference at the end.

    Below float64 a third model, SeedCNN in float64, shows what rounding alone does. The two
    float32 models add their numbers in different orders, so they differ by float32 rounding
    at first, and SGD amplifies any difference over many steps (a near-tie in a pool window
    or a ReLU input near 0 decided differently). Before that amplification sets in, the
    float32 pair stays far closer than float32 SeedCNN stays to float64 SeedCNN (seed 0,
    50 steps: 2e-6 against 1.5e-4): the difference is rounding, not the layers. Over
    hundreds of steps both gaps grow to the 1e-2 scale (SGD is chaotic: which of the two
    is larger then depends even on the BLAS library's thread count), so read the early rows.
    """
    models = [SeedLayersCNN(dtype=dtype), SeedCNN(dtype=dtype)]
    with_reference = np.dtype(dtype) != np.float64
    if with_reference:
        models.append(SeedCNN(dtype=np.float64))
    for model in models:
        load_state_dict(model, weights)
    optimizers = [SGD(named_parameters(model).values(), lr=lr, momentum=0.9) for model in models]
    rng = np.random.default_rng(0)
    header = f"{'step':>5} {'loss (seed layers)':>19} {'loss (SeedCNN)':>15} {'max |Δ weight|':>15}"
    log(header + (f" {'SeedCNN float32 vs float64':>27}" if with_reference else ""))
    difference = 0.0
    for step in range(1, steps + 1):
        batch = rng.integers(0, len(images), batch_size)
        losses = []
        for model, optimizer in zip(models, optimizers):
            optimizer.zero_grad()
            loss = training_loss(model, images[batch], labels[batch])
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        if step % report_every == 0 or step == steps:
            difference = largest_weight_difference(models[0], models[1])
            line = f"{step:>5} {losses[0]:>19.6f} {losses[1]:>15.6f} {difference:>15.2e}"
            if with_reference:
                line += f" {largest_weight_difference(models[1], models[2]):>27.2e}"
            log(line)
    return difference


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line: 'error: …' (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="directory with the four MNIST IDX files "
                                           "(default: $TINYGRAD_CNN_DATA or ~/.cache/tinygrad_cnn/mnist)")
    parser.add_argument("--download", action="store_true", help="download missing MNIST files (checksum-verified)")
    parser.add_argument("--images", type=int, default=8, metavar="N",
                        help="test images for the per-layer table and the whole-network check (default 8; "
                             "at most the test set's 10,000)")
    parser.add_argument("--steps", type=int, default=200, help="side-by-side training steps (default 200; 0 skips)")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="images per training step (default 16; at most the training set's 60,000)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate, momentum 0.9 (default 0.01): "
                        + LEARNING_RATE_RULE)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="training precision: float64 (default; the weights stay equal to ~1e-15) or float32 "
                             "(which also trains SeedCNN in float64, to show what float32 rounding alone does)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    args = parser.parse_args(argv)
    refuse_non_positive(parser, args, ("images", "batch_size"))
    refuse_negative_integers(parser, args, ("steps", "seed"))
    refuse_negative(parser, args, ("lr",))
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    try:
        x_train, y_train, x_test, y_test = mnist(args.data_dir, download=args.download)
    except (OSError, ValueError, RuntimeError) as error:
        message = " ".join(str(error).split()).replace("(Or call mnist(download=True)", "(Or add --download")
        print(f"error: could not load MNIST: {message}", file=sys.stderr)
        return 2
    if args.images > len(x_test):
        print(f"error: --images {args.images}: the MNIST test set has only {len(x_test)} images", file=sys.stderr)
        return 2
    if args.steps and args.batch_size > len(x_train):  # (a batch is drawn with replacement: larger only costs memory)
        print(f"error: --batch-size {args.batch_size}: the MNIST training set has only {len(x_train)} images",
              file=sys.stderr)
        return 2
    images, labels = x_test[: args.images], y_test[: args.images]
    weights = state_dict(SeedCNN(seed=args.seed, dtype=np.float64))
    start = time.perf_counter()

    rows = check_layers(weights, images, labels, seed=args.seed)
    print("\n".join(format_layer_table(rows, len(images))))
    network = whole_network(weights, images, labels)
    print(f"\nWhole network, float64: loss {network['loss'][0]:.12f} (seed layers) vs "
          f"{network['loss'][1]:.12f} (SeedCNN); largest |Δ gradient| over all parameters "
          f"{network['gradient']:.1e}")
    if args.steps:
        dtype = np.dtype(args.dtype).type
        print(f"\nTraining both from the same weights on the same batches: {args.steps} steps, batch "
              f"{args.batch_size}, SGD lr {args.lr} momentum 0.9, {args.dtype}")
        train_side_by_side(weights, x_train, y_train, args.steps, args.batch_size, args.lr, dtype,
                           max(1, args.steps // 4), print)
    print(f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
