"""Neural-network ops: matrix product, convolution, pooling, the softmax family and the loss."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tinygrad_cnn import kernels
from tinygrad_cnn.checks import bias_widens_product
from tinygrad_cnn.function import Function, Gradients, unbroadcast
from tinygrad_cnn.ops.movement import sides_text

__all__ = ["MatMul", "Conv2d", "MaxPool2d", "AvgPool2d", "Softmax", "LogSoftmax", "CrossEntropy"]

Pair = tuple[int, int]


def check_bias_dtype(op_name: str, bias: np.ndarray, product_dtype: np.dtype) -> None:
    """A TypeError for a bias that adding in place would round or cut to the product's dtype
    (``bias_widens_product``). ``Tensor.matmul`` and ``Tensor.conv2d`` never pass such a bias
    (they add it after the product, as ``+``); this guards a direct ``apply``."""
    if bias_widens_product(bias.dtype, bias.ndim, product_dtype):
        raise TypeError(f"{op_name}: a {bias.dtype} bias would be rounded or cut to the {product_dtype} product in "
                        "place; use Tensor.matmul / Tensor.conv2d, which add it after the product as + does, "
                        "or give the bias the product's dtype")


class MatMul(Function):
    """Y = A @ B for A (..., n, k) and B (..., k, m), with an optional bias and relu fused in:
    Z = A @ B + bias (bias broadcast to Z's shape, e.g. (m,)), Y = max(Z, 0) with relu, else Z;
    the seed's "matrix multiply and add" layer (``x.matmul(weight, bias=b, relu=True)``).

    VJP: G' = 0 where Y <= 0, else G, with relu (as ReLU's: a NaN passes G on), else G;
    dbias = G' summed over the axes the bias was broadcast along;
    dA = G' Bᵀ, dB = Aᵀ G' (leading batch axes summed back where they were broadcast).
    """

    saves_output = False  # (True with relu: its VJP reads the output; set per op in __init__)

    label = "Matrix multiply"

    def __init__(self, relu: bool = False):
        self.relu = relu
        self.saves_output = relu

    def forward(self, a: np.ndarray, b: np.ndarray, bias: Optional[np.ndarray] = None) -> np.ndarray:
        self.a, self.b, self.bias_shape = a, b, None if bias is None else bias.shape
        output = kernels.matrix_product(a, b)
        if bias is not None:
            check_bias_dtype(self.name, bias, output.dtype)
            output += bias
        if self.relu:
            np.maximum(output, 0, out=output)
            self.output = output
        return output

    def inputs_read_by_backward(self) -> list[int]:
        """dA reads B, dB reads A (and only the other's shape and layout), as PyTorch's saved
        tensors; dbias reads nothing of the bias but its shape."""
        a_needs_grad, b_needs_grad = self.needs_input_grad[:2]
        return ([1] if a_needs_grad else []) + ([0] if b_needs_grad else [])

    def macs(self, input_shapes, output_shape) -> int:
        """One multiply-accumulate per output element and inner index: (…·n·m)·k."""
        return int(np.prod(output_shape, dtype=np.int64)) * input_shapes[0][-1]

    def describe(self) -> str:
        """'Matrix multiply', with ' + Addition' for a bias and ' + ReLU' (the seed's words)."""
        return self.label + (" + Addition" if self.bias_shape is not None else "") + (" + ReLU" if self.relu else "")

    def backward(self, grad_out: np.ndarray) -> Gradients:
        if self.relu:
            grad_out = np.where(self.output <= 0, 0, grad_out)  # (ReLU's VJP)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            if self.a.ndim == 2 and self.b.ndim == 2 and self.a.flags.f_contiguous and not self.a.flags.c_contiguous:
                # a is a transposed view (e.g. a conv's batch-innermost output, flattened):
                # dA = (B Gᵀ)ᵀ gets a's layout, so the reshapes and ops upstream stay views
                grad_a = (self.b @ grad_out.T).T
            else:
                grad_a = unbroadcast(grad_out @ np.swapaxes(self.b, -1, -2), self.a.shape)
        if self.needs_input_grad[1]:
            a_transposed = np.swapaxes(self.a, -1, -2)
            if self.a.ndim == 2 and kernels.column_major(self.b):  # (dB in B's order: kernels.column_major_gradient)
                grad_b = kernels.column_major_gradient(self.a, grad_out)
            elif self.a.shape[-2] == 1 and self.a.ndim == 2 and self.b.ndim == 2:
                # one row (a batch of 1): Aᵀ G is an outer product, the same products whatever
                # computes it (only a zero's sign may differ): kernels.outer_product, np.dot or a
                # broadcast multiply by the row's length; both beat @ (numpy's own loop) by 3x or more
                grad_b = kernels.outer_product(a_transposed, grad_out)
            elif self.a.shape[-2] == 1:  # the same with batch axes: broadcasting beats a K=1 matmul
                grad_b = unbroadcast(a_transposed * grad_out, self.b.shape)
            else:
                grad_b = unbroadcast(a_transposed @ grad_out, self.b.shape)
        if self.bias_shape is None:
            return grad_a, grad_b
        return grad_a, grad_b, unbroadcast(grad_out, self.bias_shape) if self.needs_input_grad[2] else None



class Conv2d(Function):
    """2-D cross-correlation as PyTorch's conv2d, with optional bias and relu fused in:
    x (N,C,H,W), weight (O,C/groups,kh,kw), bias (O,) per channel or (O,Ho,Wo) per position.

    With X the im2col columns of the zero-padded input (rows c,p,q; columns i,j,n; one block
    per group: group g sees only its C/groups channels and makes its O/groups outputs) and
    Wm = weight as (O, C/groups·kh·kw):  Z = Wm X + bias,  Y = max(Z, 0) with relu, else Z.
    Tap (p, q) of window (i, j) reads xp[n, c, i·sh + p·dh, j·sw + q·dw] (dilation d).
    VJP: G' = 0 where Y ≤ 0, else G, with relu (a NaN passes G on, as in PyTorch), else G;  dbias = Σ_n G' (and Σ_ij for a per-channel bias);
         dWm = G' Xᵀ;  dX = Wmᵀ G', added back to each window position (col2im), padding cut off.
    The routines (im2col, col2im, the grouped GEMMs) are in kernels.py.
    """

    label = "Convolution"

    def __init__(self, stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1),
                 groups: int = 1, relu: bool = False):
        self.stride, self.padding, self.dilation, self.groups, self.relu = stride, padding, dilation, groups, relu

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None) -> np.ndarray:
        self.x_shape, self.weight, self.bias_ndim = x.shape, weight, None if bias is None else bias.ndim
        kernel = weight.shape[2:]
        out_hw = tuple(kernels.output_size(size + 2 * pad, k, step, dilate) for size, pad, k, step, dilate
                       in zip(x.shape[2:], self.padding, kernel, self.stride, self.dilation))
        columns = kernels.im2col(x, kernel, self.stride, self.padding, self.dilation, self.groups, out_hw,
                                 keep=self.needs_input_grad[1])
        output = np.matmul(kernels.weight_matrices(weight, self.groups), columns)
        output = output.reshape((weight.shape[0],) + out_hw + (x.shape[0],))  # O,Ho,Wo,N
        if bias is not None:
            check_bias_dtype(self.name, bias, output.dtype)
            output += (bias.reshape(-1, 1, 1) if bias.ndim == 1 else bias)[..., np.newaxis]
        if self.relu:
            np.maximum(output, 0, out=output)
        self.output = output
        if self.needs_input_grad[1]:
            self.columns = columns
        return kernels.batch_first(output)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        output, groups = self.output, self.groups
        if self.relu:
            dead = output <= 0  # (a NaN is not <= 0: it passes G on, as PyTorch's relu)
            with np.errstate(invalid="ignore"):  # G = ±inf or NaN at a dead unit gives NaN here, fixed below
                grad_z = np.multiply(kernels.batch_last(grad_out), ~dead, out=np.empty_like(output))
            if grad_z.size and math.isnan(grad_z.max()):  # (one fast reduction; a masked write is 6x slower than
                grad_z[dead] = 0                           # the multiply, so only where G held an inf or NaN)
        else:
            grad_z = np.ascontiguousarray(kernels.batch_last(grad_out))  # O,Ho,Wo,N
        grad_matrix = grad_z.reshape(groups, output.shape[0] // groups, -1)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            grad_x = kernels.col2im(self.weight, grad_matrix, groups, self.stride, self.padding, self.dilation,
                                    self.x_shape, output.shape[1:3])
        if self.needs_input_grad[1]:
            grad_weight = kernels.weight_gradient(self.columns, grad_matrix, self.weight.shape, output.shape[1])
        if self.bias_ndim is not None and self.needs_input_grad[2]:
            if output.shape[3] == 1:  # one image: Σ_n is the gradient itself (a matrix-vector product
                grad_bias = grad_z.reshape(output.shape[:3])  # would wake OpenBLAS's threads: 40 µs a conv)
            else:  # Σ_n as a matrix-vector product: faster than .sum(axis=3)
                per_position = grad_z.reshape(math.prod(output.shape[:3]), output.shape[3]) @ np.ones(output.shape[3], dtype=output.dtype)
                grad_bias = per_position.reshape(output.shape[:3])
            if self.bias_ndim == 1:  # per channel: also Σ over the positions
                grad_bias = grad_bias.reshape(output.shape[0], -1).sum(axis=1)
        return (grad_x, grad_weight) if self.bias_ndim is None else (grad_x, grad_weight, grad_bias)

    def macs(self, input_shapes, output_shape) -> int:
        """One multiply-accumulate per output element and weight tap: (N·O·Ho·Wo)·(C/groups·kh·kw)."""
        _, group_channels, kernel_h, kernel_w = input_shapes[1]
        return int(np.prod(output_shape, dtype=np.int64)) * group_channels * kernel_h * kernel_w

    def describe(self) -> str:
        """'3x3/1 1 pad Convolution + Addition + ReLU' (dilation and groups when not 1)."""
        kernel_h, kernel_w = self.weight.shape[2:]
        text = f"{kernel_h}x{kernel_w}/{_pair_text(self.stride)}"
        if any(self.padding):
            text += f" {_pair_text(self.padding)} pad"
        if self.dilation != (1, 1):
            text += f" dilation {_pair_text(self.dilation)}"
        if self.groups != 1:
            text += f" {self.groups} groups"
        return text + " Convolution" + (" + Addition" if self.bias_ndim is not None else "") + (" + ReLU" if self.relu else "")


class MaxPool2d(Function):
    """y[n,c,i,j] = max over the window xp[n, c, i·sh : i·sh+kh, j·sw : j·sw+kw] (windows may
    overlap), xp = x zero-padded by ((top, bottom), (left, right)) — the seed's padding, not
    PyTorch's −∞ — then relu(y) with ``relu`` (= pooling relu(x): relu is monotonic, relu(0) = 0,
    but on the smaller output).

    VJP: G' = G · [not y ≤ 0] with relu, else G. Each G'[n,c,i,j] goes to the first tap (p, q)
    in row-major order with xp[…] = y[n,c,i,j] (PyTorch's tie rule); overlapping windows add
    up; what a padding zero wins is dropped. (With relu, where y > 0 that is the first maximum
    of the relu'd window too; where y = 0, G' = 0.) A window holding a NaN has y = NaN and sends
    G to its last NaN tap, as PyTorch's max pool does (relu passes NaN on). The winners are
    found in forward, right after the maxima, and kept as one small count per window (kernels.py).
    """

    saves_inputs = False

    label = "Max pooling"

    def __init__(self, kernel_size: Pair, stride: Pair, padding: tuple[Pair, Pair] = ((0, 0), (0, 0)),
                 relu: bool = False):
        self.kernel_size, self.stride, self.padding, self.relu = kernel_size, stride, padding, relu

    def forward(self, x: np.ndarray) -> np.ndarray:
        windows = kernels.pool_windows(x.shape, self.kernel_size, self.stride, self.padding)
        counts, grid = kernels.max_pool(windows, x, self.relu, keep=self.needs_input_grad[0])
        if self.needs_input_grad[0]:
            self.windows, self.counts = windows, counts
        return kernels.batch_first(windows.real(grid))

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (kernels.route_to_first_maximum(self.windows, self.counts, grad_out),)

    def describe(self) -> str:
        """'Zero padding (bottom 1, right 1) + 3x3/2 Max pooling + ReLU'."""
        text = f"{self.kernel_size[0]}x{self.kernel_size[1]}/{_pair_text(self.stride)} Max pooling"
        if any(any(pair) for pair in self.padding):
            text = f"Zero padding {sides_text(self.padding)} + {text}"
        return text + (" + ReLU" if self.relu else "")


class AvgPool2d(Function):
    """y[n,c,i,j] = (1 / (kh·kw)) Σ_{p,q} x[n, c, i·sh + p, j·sw + q] (windows may overlap).

    VJP: dx[n, c, i·sh + p, j·sw + q] += G[n,c,i,j] / (kh·kw) for every tap (p, q): each
    window hands an equal share of its G to each element it averaged.
    """

    saves_inputs = False
    saves_output = False

    label = "Average pooling"

    def __init__(self, kernel_size: Pair, stride: Pair):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, ((0, 0), (0, 0))

    def forward(self, x: np.ndarray) -> np.ndarray:
        windows = kernels.pool_windows(x.shape, self.kernel_size, self.stride, self.padding)
        planes = windows.to_phase_planes(x)
        grid, output = windows.new_grid(x.dtype)
        taps = windows.tap_slices(planes)
        np.copyto(output, next(taps))
        for tap in taps:
            output += tap
        output *= output.dtype.type(1 / (self.kernel_size[0] * self.kernel_size[1]))
        self.windows = windows
        return kernels.batch_first(windows.real(grid))

    def backward(self, grad_out: np.ndarray) -> Gradients:
        windows = self.windows
        share_grid, share = windows.work_grid("average pool gradient", grad_out.dtype)
        np.multiply(kernels.batch_last(grad_out), 1 / (self.kernel_size[0] * self.kernel_size[1]),
                    out=windows.real(share_grid))
        grad_planes = np.zeros(windows.stride + (windows.plane_size,), dtype=grad_out.dtype)
        for grad_tap in windows.tap_slices(grad_planes):
            grad_tap += share
        return (windows.from_phase_planes(grad_planes),)

    def describe(self) -> str:
        return f"{self.kernel_size[0]}x{self.kernel_size[1]}/{_pair_text(self.stride)} Average pooling"


def _pair_text(pair: Pair) -> str:
    """(1, 1) → '1', (1, 2) → '1,2'."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


class Softmax(Function):
    """s = exp(x − max x) / Σ exp(x − max x) along ``axis``.   VJP: dx = s ⊙ (G − Σ G ⊙ s)."""

    saves_inputs = False

    label = "Softmax"

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:  # nothing to normalize (and numpy has no max of an empty axis)
            self.output = np.empty_like(x)
            return self.output
        exponentials = np.exp(x - x.max(axis=self.axis, keepdims=True))
        self.output = exponentials / exponentials.sum(axis=self.axis, keepdims=True)
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        s = self.output
        return (s * (grad_out - (grad_out * s).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """y = x − max x − log Σ exp(x − max x) along ``axis``.   VJP: dx = G − softmax(x) · Σ G."""

    saves_inputs = False

    label = "Log-softmax"

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:  # nothing to normalize (and numpy has no max of an empty axis)
            self.output = np.empty_like(x)
            return self.output
        shifted = x - x.max(axis=self.axis, keepdims=True)
        output = shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))
        self.output = output
        return output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        softmax = np.exp(self.output)
        return (grad_out - softmax * grad_out.sum(axis=self.axis, keepdims=True),)


class CrossEntropy(Function):
    """Mean cross-entropy of logits z (N,K) against integer labels t (N), fused with softmax.

    L = (1/N) Σ_n [log Σ_k exp z[n,k] − z[n, t_n]], computed max-shifted so it is finite for
    huge logits.   VJP: dz = G · (softmax(z) − onehot(t)) / N.
    """

    saves_inputs = False
    saves_output = False

    label = "Softmax + cross-entropy"

    def __init__(self, labels: np.ndarray):
        self.labels = labels

    def forward(self, logits: np.ndarray) -> np.ndarray:
        if logits.shape[0] == 0:  # an empty batch: the mean of nothing is NaN, as in PyTorch (numpy would warn)
            self.softmax = np.empty_like(logits)  # (even with no classes, where the max below has nothing to reduce)
            return np.asarray(np.nan, dtype=logits.dtype)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exponentials = np.exp(shifted)
        sums = exponentials.sum(axis=1, keepdims=True)
        rows = np.arange(logits.shape[0])
        log_probabilities = shifted[rows, self.labels] - np.log(sums[:, 0])
        if self.needs_input_grad[0]:
            self.softmax = exponentials / sums
        return np.asarray(0.0 - log_probabilities.mean(), dtype=logits.dtype)  # (0 − x: a zero loss is +0, as PyTorch's)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad = self.softmax  # reused in place: the saved softmax is not needed afterwards
        if grad.shape[0]:  # (an empty batch has an empty gradient)
            grad[np.arange(grad.shape[0]), self.labels] -= 1
            grad *= grad_out / grad.shape[0]
        return (grad,)


# -- training-time ops: dropout and batch normalization ----------------------------------

from tinygrad_cnn.random import generator  # noqa: E402  (the package generator, seeded by manual_seed)

__all__ += ["Dropout", "BatchNorm"]


class Dropout(Function):
    """Inverted dropout: y = x · mask / (1 − p), each mask element 1 with probability 1 − p,
    drawn from ``tinygrad_cnn.random.generator()``.   VJP: dx = G · mask / (1 − p).

    Scaling the kept values by 1/(1 − p) keeps E[y] = x, so evaluation (no dropout) needs no
    rescaling. p = 1 drops everything: y = 0 (the scale is 0, not 1/0).
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, p: float = 0.5):
        self.p = p

    def forward(self, x: np.ndarray) -> np.ndarray:
        kept = generator().random(x.shape) >= self.p  # True with probability 1 − p
        self.scaled_mask = kept.astype(x.dtype)
        self.scaled_mask *= 1 / (1 - self.p) if self.p < 1 else 0.0
        return x * self.scaled_mask

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out * self.scaled_mask,)


class BatchNorm(Function):
    """Batch normalization of x (N,C), (N,C,H,W) or (N,C,…) per channel (axis 1), over the
    m = N·H·W values of each channel; weight and bias have shape (C,):

        x̂ = (x − μ) / σ,   σ = sqrt(var + eps),   y = x̂ · weight + bias

    ``batch_statistics=True`` (training): μ and var are the batch's mean and biased variance,
    and ``running_mean``/``running_var`` (numpy arrays, if given) are updated in place as
    PyTorch does: running ← (1 − momentum) · running + momentum · statistic, with the
    unbiased variance var · m/(m − 1). ``batch_statistics=False`` (evaluation): μ and var are
    the running statistics, constants.

    VJP (sums over every axis but 1):  dbias = Σ G,  dweight = Σ G · x̂;
        evaluation:  dx = G · weight/σ;
        training (μ and σ depend on x):  dx = (weight/σ)/m · (m·G − Σ G − x̂ · Σ G · x̂).
    """

    saves_output = False

    def __init__(self, eps: float = 1e-5, batch_statistics: bool = True, momentum: float = 0.1,
                 running_mean: Optional[np.ndarray] = None, running_var: Optional[np.ndarray] = None):
        self.eps, self.batch_statistics, self.momentum = eps, batch_statistics, momentum
        self.running_mean, self.running_var = running_mean, running_var

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)  # (C,) broadcast against x
        if self.batch_statistics:
            mean = x.mean(axis=self.axes, keepdims=True)
            centered = x - mean
            variance = (centered * centered).mean(axis=self.axes)
            self._update_running_statistics(mean.reshape(-1), variance, x.size // x.shape[1])
        else:
            centered = x - self.running_mean.astype(x.dtype).reshape(self.channel_shape)
            variance = self.running_var.astype(x.dtype)
        self.inverse_std = (1 / np.sqrt(variance + self.eps)).astype(x.dtype).reshape(self.channel_shape)
        self.normalized = centered * self.inverse_std
        self.weight = weight.reshape(self.channel_shape)
        return self.normalized * self.weight + bias.reshape(self.channel_shape)

    def _update_running_statistics(self, mean: np.ndarray, variance: np.ndarray, count: int) -> None:
        if self.running_mean is None:
            return
        self.running_mean *= 1 - self.momentum
        self.running_mean += self.momentum * mean
        self.running_var *= 1 - self.momentum
        self.running_var += self.momentum * variance * (count / (count - 1))

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_bias = grad_out.sum(axis=self.axes)
        grad_weight = (grad_out * self.normalized).sum(axis=self.axes)
        scale = self.weight * self.inverse_std  # weight/σ
        if not self.batch_statistics:
            return grad_out * scale, grad_weight, grad_bias
        count = grad_out.size // grad_out.shape[1]  # m
        grad_x = scale * (grad_out - (grad_bias.reshape(self.channel_shape)
                                      + self.normalized * grad_weight.reshape(self.channel_shape)) / count)
        return grad_x, grad_weight, grad_bias
