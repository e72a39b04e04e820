"""Neural-network ops: matrix product, convolution, pooling, the softmax family and the loss."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinygrad_cnn.function import Function, Gradients, unbroadcast

__all__ = ["MatMul", "Conv2d", "MaxPool2d", "Conv2dBias", "PaddedMaxPool2d", "Softmax", "LogSoftmax", "CrossEntropy"]
from tinygrad_cnn.kernels import batch_first, batch_last, phases, scratch, window_taps


class MatMul(Function):
    """Y = A @ B for A (..., n, k) and B (..., k, m).

    VJP: dA = G Bᵀ, dB = Aᵀ G (leading batch axes summed back where they were broadcast).
    """

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a @ b

    def macs(self, input_shapes, output_shape) -> int:
        """One multiply-accumulate per output element and inner index: (…·n·m)·k."""
        return int(np.prod(output_shape, dtype=np.int64)) * input_shapes[0][-1]

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            if self.a.ndim == 2 and self.a.flags.f_contiguous and not self.a.flags.c_contiguous:
                # a is a transposed view (SeedCNN's batch-innermost activations flattened):
                # dA = (B Gᵀ)ᵀ has a's layout, so the reshapes and ops upstream stay views
                grad_a = (self.b @ grad_out.T).T
            else:
                grad_a = unbroadcast(grad_out @ np.swapaxes(self.b, -1, -2), self.a.shape)
        if self.needs_input_grad[1]:
            a_transposed = np.swapaxes(self.a, -1, -2)
            if self.a.shape[-2] == 1:  # one row (a batch of 1): Aᵀ G is an outer product, and
                grad_b = unbroadcast(a_transposed * grad_out, self.b.shape)  # broadcasting beats a K=1 GEMM
            else:
                grad_b = unbroadcast(a_transposed @ grad_out, self.b.shape)
        return grad_a, grad_b



def _output_size(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


class Conv2d(Function):
    """Cross-correlation, as PyTorch's conv2d: x (N,C,H,W), weight (O,C,kh,kw) → y (N,O,Ho,Wo).

    y[n,o,i,j] = Σ_{c,p,q} xp[n, c, i·sh + p, j·sw + q] · weight[o,c,p,q], xp = x zero-padded.
    VJP: dweight[o,c,p,q] = Σ_{n,i,j} G[n,o,i,j] · xp[n,c,i·sh+p,j·sw+q]   (one tensordot);
         dxp[n,c,i·sh+p,j·sw+q] += Σ_o G[n,o,i,j] · weight[o,c,p,q]   (one GEMM, then kh·kw
         strided slice-adds), and dx = dxp with the padding cut off.
    """

    def __init__(self, stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0)):
        self.stride, self.padding = stride, padding

    def forward(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        (stride_h, stride_w), (pad_h, pad_w) = self.stride, self.padding
        if pad_h or pad_w:
            x = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
        kernel_h, kernel_w = weight.shape[2:]
        # windows[n, c, i, j, p, q] = xp[n, c, i*sh + p, j*sw + q]: a view, no copy.
        windows = sliding_window_view(x, (kernel_h, kernel_w), axis=(2, 3))[
            :, :, ::stride_h, ::stride_w
        ]
        output = np.tensordot(windows, weight, axes=((1, 4, 5), (1, 2, 3)))  # N,Ho,Wo,O
        self.padded_shape, self.weight = x.shape, weight
        if self.needs_input_grad[1]:
            self.windows = windows
        return np.ascontiguousarray(output.transpose(0, 3, 1, 2))

    def macs(self, input_shapes, output_shape) -> int:
        """One multiply-accumulate per output element and weight tap: (N·O·Ho·Wo)·(C·kh·kw)."""
        _, channels, kernel_h, kernel_w = input_shapes[1]
        return int(np.prod(output_shape, dtype=np.int64)) * channels * kernel_h * kernel_w

    def backward(self, grad_out: np.ndarray) -> Gradients:
        (stride_h, stride_w), (pad_h, pad_w) = self.stride, self.padding
        grad_x = grad_weight = None
        if self.needs_input_grad[1]:
            grad_weight = np.tensordot(grad_out, self.windows, axes=((0, 2, 3), (0, 2, 3)))
        if self.needs_input_grad[0]:
            out_channels, channels, kernel_h, kernel_w = self.weight.shape
            batch, _, out_h, out_w = grad_out.shape
            # taps[n, i, j, c, p, q] = Σ_o G[n, o, i, j] · weight[o, c, p, q]
            taps = np.tensordot(grad_out, self.weight, axes=((1,), (0,))).transpose(0, 3, 4, 5, 1, 2)
            grad_padded = np.zeros(self.padded_shape, dtype=grad_out.dtype)
            for p in range(kernel_h):
                for q in range(kernel_w):
                    grad_padded[
                        :, :,
                        p : p + stride_h * (out_h - 1) + 1 : stride_h,
                        q : q + stride_w * (out_w - 1) + 1 : stride_w,
                    ] += taps[:, :, p, q]
            height, width = self.padded_shape[2:]
            grad_x = grad_padded[:, :, pad_h : height - pad_h, pad_w : width - pad_w]
        return grad_x, grad_weight


class MaxPool2d(Function):
    """y[n,c,i,j] = max over the window x[n, c, i·sh : i·sh+kh, j·sw : j·sw+kw] (may overlap).

    VJP: each G[n,c,i,j] goes to the first maximum of its window in row-major order (as in
    PyTorch); overlapping windows add up. Both directions loop over the kh·kw window
    offsets with strided slices, never over pixels.
    """

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int]):
        self.kernel_size, self.stride = kernel_size, stride

    def _tap(self, p: int, q: int) -> tuple[slice, ...]:
        (stride_h, stride_w), (out_h, out_w) = self.stride, self.output_hw
        return (
            slice(None),
            slice(None),
            slice(p, p + stride_h * (out_h - 1) + 1, stride_h),
            slice(q, q + stride_w * (out_w - 1) + 1, stride_w),
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        (kernel_h, kernel_w), (stride_h, stride_w) = self.kernel_size, self.stride
        self.input_shape = x.shape
        self.output_hw = (
            _output_size(x.shape[2], kernel_h, stride_h),
            _output_size(x.shape[3], kernel_w, stride_w),
        )
        output = x[self._tap(0, 0)].copy()
        # winner = index p*kw + q of the window's first maximum
        index_type = np.uint8 if kernel_h * kernel_w <= 256 else np.int64
        winner = np.zeros(output.shape, dtype=index_type)
        for p in range(kernel_h):
            for q in range(kernel_w):
                if p == q == 0:
                    continue
                candidate = x[self._tap(p, q)]
                greater = candidate > output  # strict: an equal later value does not win
                np.maximum(output, candidate, out=output)
                winner = np.where(greater, index_type(p * kernel_w + q), winner)
        self.winner = winner
        return output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        kernel_h, kernel_w = self.kernel_size
        grad_x = np.zeros(self.input_shape, dtype=grad_out.dtype)
        for p in range(kernel_h):
            for q in range(kernel_w):
                grad_x[self._tap(p, q)] += grad_out * (self.winner == p * kernel_w + q)
        return (grad_x,)



class Conv2dBias(Function):
    """y = conv2d(x, weight, stride, padding) + bias, then relu if ``relu``: x (N,C,H,W),
    weight (O,C,kh,kw), bias broadcastable to (O,Ho,Wo) (e.g. the seed's per-position
    O,Ho,Wo) → y (N,O,Ho,Wo).

    With X the transposed im2col matrix (rows p,q,c; columns i,j,n) of the zero-padded input
    and Wm = weight as (O, kh·kw·C):  Z = Wm X + bias,  Y = max(Z, 0) (relu) or Y = Z.
    VJP: G' = G · [Y > 0] (relu) or G' = G;  dbias = Σ_n G' (summed back to bias's shape);  dWm = G' Xᵀ;
         dX = Wmᵀ G', computed one kernel row p at a time (weight[:, :, p, :]ᵀ G') and added
         back to the padded input with kh·kw shifted slice-adds (col2im); dx = that without
         the padding.
    """

    def __init__(self, stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0), relu: bool = True):
        self.stride, self.padding, self.relu = stride, padding, relu

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        (stride_h, stride_w), (pad_h, pad_w) = self.stride, self.padding
        out_channels, channels, kernel_h, kernel_w = weight.shape
        batch, _, height, width = x.shape
        padded_shape = (channels, height + 2 * pad_h, width + 2 * pad_w, batch)
        # only the inside is ever written, so the borders stay zero (the key holds the padding)
        padded = scratch(f"conv input padded by {self.padding}", padded_shape, x.dtype)
        padded[:, pad_h : pad_h + height, pad_w : pad_w + width] = batch_last(x)
        out_hw = (_output_size(padded_shape[1], kernel_h, stride_h), _output_size(padded_shape[2], kernel_w, stride_w))
        columns_shape = (kernel_h, kernel_w, channels) + out_hw + (batch,)
        if self.needs_input_grad[1]:  # saved for dweight: a fresh array
            columns = np.empty(columns_shape, dtype=x.dtype)
        else:
            columns = scratch("conv columns", columns_shape, x.dtype)
        for p, q, tap in window_taps((kernel_h, kernel_w), self.stride, out_hw):
            columns[p, q] = padded[tap]  # im2col, transposed
        columns = columns.reshape(kernel_h * kernel_w * channels, -1)
        weight_matrix = weight.transpose(0, 2, 3, 1).reshape(out_channels, -1)
        output = (weight_matrix @ columns).reshape((out_channels,) + out_hw + (batch,))
        output += np.broadcast_to(bias, (out_channels,) + out_hw)[..., np.newaxis]
        if self.relu:
            np.maximum(output, 0, out=output)
        self.x_shape, self.padded_shape, self.bias_shape = x.shape, padded_shape, bias.shape
        self.weight, self.output = weight, output
        if self.needs_input_grad[1]:
            self.columns = columns
        return batch_first(output)

    def macs(self, input_shapes, output_shape) -> int:
        _, channels, kernel_h, kernel_w = input_shapes[1]
        return int(np.prod(output_shape, dtype=np.int64)) * channels * kernel_h * kernel_w

    def backward(self, grad_out: np.ndarray) -> Gradients:
        (pad_h, pad_w), output = self.padding, self.output
        out_channels, channels, kernel_h, kernel_w = self.weight.shape
        if self.relu:
            grad_z = np.multiply(batch_last(grad_out), output > 0, out=np.empty_like(output))  # O,Ho,Wo,N
        else:
            grad_z = np.ascontiguousarray(batch_last(grad_out))
        grad_rows = grad_z.reshape(out_channels, -1)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[2]:  # Σ_n as a matrix-vector product: faster than .sum(axis=3)
            batch_ones = np.ones(output.shape[3], dtype=output.dtype)
            grad_bias = unbroadcast((grad_z.reshape(-1, output.shape[3]) @ batch_ones).reshape(output.shape[:3]), self.bias_shape)
        if self.needs_input_grad[1]:  # dWmᵀ (kh·kw·C, O); OpenBLAS is faster with the taller operand first
            if self.columns.shape[0] >= out_channels:
                grad_matrix = self.columns @ grad_rows.T
            else:
                grad_matrix = (grad_rows @ self.columns.T).T
            grad_weight = grad_matrix.reshape(kernel_h, kernel_w, channels, out_channels).transpose(3, 2, 0, 1)
        if self.needs_input_grad[0]:  # one GEMM per kernel row p, added while it is still in cache
            weight_rows = self.weight.transpose(2, 3, 1, 0).reshape(kernel_h, kernel_w * channels, out_channels)
            grad_row = scratch("conv grad of one kernel row", (kernel_w * channels, grad_rows.shape[1]), output.dtype)
            grad_taps = grad_row.reshape((kernel_w, channels) + output.shape[1:])
            grad_padded = np.zeros(self.padded_shape, dtype=output.dtype)
            for p, q, tap in window_taps((kernel_h, kernel_w), self.stride, output.shape[1:3]):
                if q == 0:
                    np.matmul(weight_rows[p], grad_rows, out=grad_row)  # the rows p,·,· of Wmᵀ G'
                grad_padded[tap] += grad_taps[q]
            height, width = self.x_shape[2:]
            grad_x = batch_first(grad_padded[:, pad_h : pad_h + height, pad_w : pad_w + width])
        return grad_x, grad_weight, grad_bias



class PaddedMaxPool2d(Function):
    """y = max_pool2d(x zero-padded by ((top, bottom), (left, right)), kernel, stride), the
    same as x.pad(...).max_pool2d(...) in one op, batch-innermost inside; with ``relu``,
    y = relu(that), which equals x.relu().pad(...).max_pool2d(...) (relu is monotonic and
    relu(0) = 0) but takes the relu of the 4x smaller output instead of the input.

    y[n,c,i,j] = max_{p,q} xp[n, c, i·sh + p, j·sw + q]   (then max(·, 0) with relu).
    VJP: G' = G · [y > 0] with relu, else G' = G. G'[n,c,i,j] goes to the first (p,q) in
    row-major order with xp[…] = y[n,c,i,j]; overlapping windows add up; what a padding
    zero wins is dropped. (With relu, where y > 0 that is the first maximum of the relu'd
    window too; where y = 0 the relu'd input is 0 at the winner, so its gradient is 0 as
    G' is.) The winners are found again in backward from the saved planes and output.

    Inside, the padded input is split into stride phases, planes[c, r, s, a, b, n] =
    xp[n, c, a·sh + r, b·sw + s]: then tap (p, q) of every window is the contiguous block
    planes[:, p mod sh, q mod sw, p//sh : p//sh + Ho, q//sw : q//sw + Wo].
    """

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[tuple[int, int], tuple[int, int]], relu: bool = False):
        self.kernel_size, self.stride, self.padding, self.relu = kernel_size, stride, padding, relu

    def _taps(self):
        (kernel_h, kernel_w), (stride_h, stride_w), (out_h, out_w) = self.kernel_size, self.stride, self.out_hw
        for p in range(kernel_h):
            for q in range(kernel_w):
                rows, columns = slice(p // stride_h, p // stride_h + out_h), slice(q // stride_w, q // stride_w + out_w)
                yield (slice(None), p % stride_h, q % stride_w, rows, columns)

    def _phase_pairs(self):
        """(plane index, input index) for every pair of row and column phases."""
        (top, _), (left, _), (height, width) = self.padding[0], self.padding[1], self.hw
        for row_phase, in_rows, plane_rows in phases(height, top, self.stride[0]):
            for column_phase, in_columns, plane_columns in phases(width, left, self.stride[1]):
                yield (slice(None), row_phase, column_phase, plane_rows, plane_columns), (slice(None), in_rows, in_columns)

    def forward(self, x: np.ndarray) -> np.ndarray:
        (kernel_h, kernel_w), (stride_h, stride_w), (vertical, horizontal) = self.kernel_size, self.stride, self.padding
        batch, channels, height, width = x.shape
        self.hw = (height, width)
        padded_h, padded_w = height + sum(vertical), width + sum(horizontal)
        self.out_hw = (_output_size(padded_h, kernel_h, stride_h), _output_size(padded_w, kernel_w, stride_w))
        planes_shape = (channels, stride_h, stride_w, -(-padded_h // stride_h), -(-padded_w // stride_w), batch)
        if self.needs_input_grad[0]:  # saved for backward: a fresh array
            planes = np.zeros(planes_shape, dtype=x.dtype)
        else:  # the key fixes which places are written, so the padding stays 0
            planes = scratch(f"pool planes of an input {x.shape} padded by {self.padding}", planes_shape, x.dtype)
        x = batch_last(x)
        for plane_index, in_index in self._phase_pairs():
            planes[plane_index] = x[in_index]
        taps = self._taps()
        output = planes[next(taps)].copy()
        for tap in taps:
            np.maximum(output, planes[tap], out=output)
        if self.relu:
            np.maximum(output, 0, out=output)
        if self.needs_input_grad[0]:
            self.planes, self.output = planes, output
        return batch_first(output)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        # the gradient not yet routed to a winner (a fresh array)
        remaining = batch_last(grad_out) * (self.output > 0) if self.relu else np.array(batch_last(grad_out))
        routed = np.empty_like(remaining)
        grad_planes = np.zeros(self.planes.shape, dtype=remaining.dtype)
        for tap in self._taps():
            np.multiply(remaining, self.planes[tap] == self.output, out=routed)
            grad_planes[tap] += routed
            remaining -= routed  # exactly 0 where this tap won: later ties get nothing
        channels, batch = self.planes.shape[0], self.planes.shape[-1]
        grad_x = np.empty((channels,) + self.hw + (batch,), dtype=remaining.dtype)
        for plane_index, in_index in self._phase_pairs():  # every input element once; padding dropped
            grad_x[in_index] = grad_planes[plane_index]
        return (batch_first(grad_x),)



class Softmax(Function):
    """s = exp(x − max x) / Σ exp(x − max x) along ``axis``.   VJP: dx = s ⊙ (G − Σ G ⊙ s)."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        exponentials = np.exp(x - x.max(axis=self.axis, keepdims=True))
        self.output = exponentials / exponentials.sum(axis=self.axis, keepdims=True)
        return self.output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        s = self.output
        return (s * (grad_out - (grad_out * s).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """y = x − max x − log Σ exp(x − max x) along ``axis``.   VJP: dx = G − softmax(x) · Σ G."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
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

    def __init__(self, labels: np.ndarray):
        self.labels = labels

    def forward(self, logits: np.ndarray) -> np.ndarray:
        shifted = logits - logits.max(axis=1, keepdims=True)
        exponentials = np.exp(shifted)
        sums = exponentials.sum(axis=1, keepdims=True)
        rows = np.arange(logits.shape[0])
        log_probabilities = shifted[rows, self.labels] - np.log(sums[:, 0])
        if self.needs_input_grad[0]:
            self.softmax = exponentials / sums
        return np.asarray(-log_probabilities.mean(), dtype=logits.dtype)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad = self.softmax  # reused in place: the saved softmax is not needed afterwards
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
