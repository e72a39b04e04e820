"""The fast numpy routines behind the convolution and pooling ops (``ops/neural.py``) and the
optimizers' updates (``optim.py``).

The ops say in one line what they ask of these routines; the math is in the ops'
docstrings and in docs/autograd.md. Everything here is about memory, not about calculus.

The layout: C,H,W,N inside, N,C,H,W outside
-------------------------------------------
Inside these routines an activation is laid out C,H,W,N: the batch is the innermost axis.
Shifting a window by (p, q) pixels then moves whole contiguous runs of W·N numbers, so

* a convolution is one GEMM per group, weight (O/g, C/g·kh·kw) @ columns (C/g·kh·kw, Ho·Wo·N),
  whose result is C,H,W,N again (im2col, with no transposes; the columns' rows run over
  (c, p, q), as the weight's own axes do, so the weight enters the GEMM as it is);
* each of the kh·kw window offsets ("taps") of a pool reads one contiguous slice of a
  stride phase plane ("flat taps", below).

The ops take any N,C,H,W array and return an N,C,H,W-shaped *view* of C,H,W,N memory
(``batch_first``): the next conv or pool reads it back as C,H,W,N for free (``batch_last``
is then a no-copy view), every other op sees an ordinary array of the public shape, and
flattening a conv's output to N,C·H·W stays a view (a pool's output is a view of the real
windows of its window grid, so flattening it copies). Measured on the seed CNN: about 3x
faster per batch-128 step than the N,C,H,W sliding-window version this replaced.

Words used with one meaning each: a *tap* (p, q) is one offset inside the kh×kw window;
``tap index`` is the numpy index that picks tap (p, q) of every window at once. *Columns*
are the im2col matrix; a *phase plane* is the padded input subsampled at one offset
modulo the stride (pooling); a pool's *window grid* has one window per place of a phase
plane, of which the first Ho × Wo (per channel and image) are *real* and the rest *spare*.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import sys
from typing import Any, Iterator, Optional

import numpy as np

Pair = tuple[int, int]

# ---------------------------------------------------------------------------
# Layout and work buffers
# ---------------------------------------------------------------------------

scratch_buffers: dict[tuple, np.ndarray] = {}  # least recently used first
SCRATCH_BYTES = 64 * 2**20  # beyond this, the least recently used buffers are dropped
scratch_total = 0  # bytes held in scratch_buffers


def scratch(purpose: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A zero-initialised work buffer reused across calls with the same purpose and shape.

    Only for temporaries that are dead before the op returns: never save one for backward
    and never hand one out as an output or a gradient. Reusing the padded-input buffer
    saves its allocation and the zeroing of its border on every call (the border is never
    written, so it stays zero); the 64 MB bound keeps varying batch sizes from growing memory.
    """
    global scratch_total
    key = (purpose, shape, np.dtype(dtype))
    buffer = scratch_buffers.pop(key, None)
    if buffer is None:
        buffer = np.zeros(shape, dtype=dtype)
        scratch_total += buffer.nbytes
    scratch_buffers[key] = buffer  # now the most recently used
    while len(scratch_buffers) > 1 and scratch_total > SCRATCH_BYTES:
        scratch_total -= scratch_buffers.pop(next(iter(scratch_buffers))).nbytes
    return buffer


def batch_last(x: np.ndarray) -> np.ndarray:
    """The C,H,W,N view of an N,C,H,W array (no copy)."""
    return x.transpose(1, 2, 3, 0)


def batch_first(x: np.ndarray) -> np.ndarray:
    """The N,C,H,W view of a C,H,W,N array (no copy)."""
    return x.transpose(3, 0, 1, 2)


def output_size(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Windows of ``kernel`` taps spaced ``dilation`` apart, moved by ``stride``, that fit in ``size``."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


@functools.lru_cache(maxsize=256)
def window_taps(kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> tuple[tuple[int, int, tuple], ...]:
    """(p, q, tap index) for every tap; the tap index picks tap (p, q) of every window from
    a (…, H, W, N) array: the elements […, i·sh + p·dh, j·sw + q·dw, :] for all outputs i, j.

    Cached per geometry, like ``pool_windows``: at batch 1 the Python that works out the
    geometry costs as much as the arithmetic. With those two caches, the running scratch
    total and a batch-of-one conv bias gradient without a GEMV, the SeedCNN batch-1 step went
    from 1.32–1.41 to 1.13–1.20 ms (measured side by side).
    """
    taps = []
    for p in range(kernel[0]):
        for q in range(kernel[1]):
            rows = slice(p * dilation[0], p * dilation[0] + stride[0] * (out_hw[0] - 1) + 1, stride[0])
            columns = slice(q * dilation[1], q * dilation[1] + stride[1] * (out_hw[1] - 1) + 1, stride[1])
            taps.append((p, q, (Ellipsis, rows, columns, slice(None))))
    return tuple(taps)


# ---------------------------------------------------------------------------
# Convolution: im2col, the grouped GEMMs, col2im
# ---------------------------------------------------------------------------


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: int,
           out_hw: Pair, keep: bool) -> np.ndarray:
    """The columns (groups, C/groups·kh·kw, Ho·Wo·N) of the zero-padded N,C,H,W input ``x``:
    row (c, p, q) of a group holds tap (p, q) of channel c of that group for every window.

    ``keep``: the columns are saved for the weight's gradient, so they get a fresh array;
    otherwise a reused work buffer.
    """
    batch, channels, height, width = x.shape
    padded_shape = (channels, height + 2 * padding[0], width + 2 * padding[1], batch)
    # only the inside is ever written, so the border stays zero (the key holds the padding)
    padded = scratch(f"conv input padded by {padding}", padded_shape, x.dtype)
    padded[:, padding[0] : padding[0] + height, padding[1] : padding[1] + width] = batch_last(x)
    grouped = padded.reshape((groups, channels // groups) + padded_shape[1:])
    shape = (groups, channels // groups) + kernel + out_hw + (batch,)
    columns = np.empty(shape, dtype=x.dtype) if keep else scratch("conv columns", shape, x.dtype)
    for p, q, tap in window_taps(kernel, stride, dilation, out_hw):
        columns[:, :, p, q] = grouped[tap]
    return columns.reshape(groups, (channels // groups) * kernel[0] * kernel[1], out_hw[0] * out_hw[1] * batch)


def weight_matrices(weight: np.ndarray, groups: int) -> np.ndarray:
    """weight (O, C/groups, kh, kw) as (groups, O/groups, C/groups·kh·kw): its rows run over
    (c, p, q), as the columns' do, so this is a view of the weight (no copy).

    (With the columns' rows ordered (p, q, c), as they once were, this was a reordering copy
    of the weight in every forward and batch-1 backward, and the weight gradient a 5-D
    reordering copy: together 33–36 µs of the SeedCNN batch-1 step, conv2 and conv3.)"""
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    return weight.reshape(groups, out_channels // groups, group_channels * kernel_h * kernel_w)


def weight_gradient(columns: np.ndarray, grad_matrix: np.ndarray, weight_shape: tuple[int, ...],
                    out_rows: int) -> np.ndarray:
    """dweight (O, C/groups, kh, kw) from dWm = G' Xᵀ per group; grad_matrix is (groups, O/groups, M).

    OpenBLAS is faster with the taller operand first, so the product is formed as X G'ᵀ
    (and transposed) when the columns have at least as many rows as there are output channels.

    Tiny products over long sums: when dWm is tiny (C/g·kh·kw · O/g ≤ 512) and M long (≥ 16,384
    windows), one GEMM runs far below speed, so the sum over M is split by output row: Ho
    GEMMs (batched) whose results are added. Measured on the seed's conv1 (9 × 16, M = 784·N):
    1.46 → 0.53 ms at batch 128 and 0.30 → 0.09 ms at batch 32 (slower at batch 1, hence M).

    The result is copied to a contiguous array: the transposed product is a strided view,
    and every element-wise pass of an optimizer over a strided gradient is several times
    slower (SGD's update of the seed's conv3 weight 42 → 11 µs, conv2 14 → 6 µs; the batch-1 step -2 to -3 %).
    """
    groups, group_out, length = grad_matrix.shape
    if columns.shape[1] * group_out <= 512 and length >= 16384:
        # (sizes spelled out, not -1: with no input channels the columns have no rows, and
        # numpy cannot infer an axis of an empty array)
        row_length = length // out_rows
        row_columns = columns.reshape(groups, columns.shape[1], out_rows, row_length).transpose(0, 2, 1, 3)
        row_grads = grad_matrix.reshape(groups, group_out, out_rows, row_length).transpose(0, 2, 3, 1)
        product = (row_columns @ row_grads).sum(axis=1).transpose(0, 2, 1)  # (groups, O/g, C/g·kh·kw)
    elif columns.shape[1] >= group_out:
        product = (columns @ grad_matrix.transpose(0, 2, 1)).transpose(0, 2, 1)
    else:
        product = grad_matrix @ columns.transpose(0, 2, 1)  # (already contiguous)
    return np.ascontiguousarray(product).reshape(weight_shape)


# Small ufunc buffers for strided adds: numpy (2.3 and later) runs a ufunc over operands
# that are not contiguous in two or more dimensions through its buffered iterator, which
# copies them chunk by chunk into buffers of np.getbufsize() elements (8192 by default) and
# the result back out. col2im's adds into the padded gradient are such operands (C × Ho runs
# of Wo·N numbers), and with 8192-element buffers each add took 2-4x as long as copying the
# same block (the seed's conv2 at batch 32 66 µs against 17; at batch 128 303 against 139).
# With buffers of STRIDED_ADD_BUFFER_ELEMENTS, set around col2im's adds only, the chunks
# stay in the L1 cache and the adds take 1.0-1.7x a copy (conv2: 28 and 144 µs; runs of 56
# to 1,792 numbers all gain; buffers of 64 to 512 elements did no better, and for runs of
# 56 they did worse than 1,024). Measured inside real SeedCNN steps on the Intel Xeon of
# this round: col2im 2.29 → 2.00 ms at batch 32 and 9.23 → 7.48 ms at batch 128, 2 % and
# 4 % of the step (medians of 12 rounds alternating in one process). Setting and restoring
# the size costs 4 µs. The size is per thread (numpy 2 keeps it in a context variable,
# numpy 1 in a per-thread object), so other threads and the caller's own numpy calls are
# untouched.
STRIDED_ADD_BUFFER_ELEMENTS = 1024


@contextlib.contextmanager
def ufunc_buffer_of(elements: int) -> Iterator[None]:
    """numpy's ufunc buffer size set to ``elements`` inside, restored on the way out."""
    saved = np.setbufsize(elements)
    try:
        yield
    finally:
        np.setbufsize(saved)


# Long-row outer products: a dense layer's weight gradient at batch 1 is the outer product
# Aᵀ G of a column (in, 1) and a row (1, out). np.dot hands it to OpenBLAS, which writes the
# result twice (it zeroes C before adding the rank-1 product); a broadcast multiply writes it
# once, but numpy (2.3 and later) runs it through its buffered iterator (the column is broadcast
# along the rows), and with the default 8192-element buffers that costs 2-3x a fill. With
# 1,024-element buffers (``ufunc_buffer_of``) it beats np.dot from rows of 512 numbers on:
# measured warm on the Intel Xeon of this round, 1568 x 512 381 → 244 µs, SeedMLP's fc1
# (784 x 1000) 438 → 232, 1000 x 4096 2,677 → 1,086; below that np.dot wins (SeedCNN's fc1,
# 3136 x 100: 108 against 273). The products are the same single multiplies either way.
OUTER_PRODUCT_ROW = 512


def outer_product(column: np.ndarray, row: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """column (n, 1) times row (1, m): the (n, m) array of every product, C-ordered (into
    ``out``, a C-contiguous (n, m) array of their dtype, if given)."""
    if row.shape[1] < OUTER_PRODUCT_ROW:
        return np.dot(column, row, out=out)
    with ufunc_buffer_of(STRIDED_ADD_BUFFER_ELEMENTS):  # (1,024 elements: see OUTER_PRODUCT_ROW)
        return np.multiply(column, row, out=out, order="C")  # (C order whatever the operands' strides: the optimizers' blocks need it)


# Column-major dense weights: the seed networks and ``nn.Linear`` keep a dense weight (in, out)
# in column-major (Fortran) order, which is PyTorch's (out, in) weight in memory. At batch 1
# its gradient Aᵀ G is an outer product, and in that order each of its rows in memory is one
# number of G times the whole input row: rows of 3,136 numbers for the seed's fc1 instead of
# 100. kernels.outer_product writes those in one pass, where the row-major (3136, 100) took
# np.dot's two (OpenBLAS zeroes C first): measured warm on the Intel Xeon of this round,
# 108-115 → 41-54 µs (SeedMLP's 784 x 1000: 181 → 141-160). The forward product, with such a
# weight, runs as (Wᵀ Aᵀ)ᵀ, the orientation OpenBLAS runs fastest here (the seed's fc1 at
# batch 32 with its batch-innermost input: 334 µs as A W, 127-147 as (Wᵀ Aᵀ)ᵀ; at batch 128
# 581 → 549). The gradient gets the weight's order, so the optimizers' passes (update_blocks)
# run over matching memory. Measured in the train step (rounds alternating in one process,
# 30-60 pairs): SeedCNN batch 1 0.975-0.979 of before, SeedMLP 0.952-0.991; batch 32 1.000
# and batch 128 0.987 and 1.028, within their noise (the MatMul op there: +50 µs of 42 ms).


def column_major(array: np.ndarray) -> bool:
    """Whether ``array`` is a matrix in column-major order only (a transposed C matrix)."""
    return array.ndim == 2 and array.flags.f_contiguous and not array.flags.c_contiguous


def matrix_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b; for matrices with a column-major b, as (bᵀ aᵀ)ᵀ (the same products, the orientation
    OpenBLAS runs fastest here: see above)."""
    return (b.T @ a.T).T if a.ndim == 2 and column_major(b) else a @ b


def column_major_gradient(a: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Aᵀ G for a (n, k) and G (n, m), as a new column-major (k, m) array: (Gᵀ A)ᵀ, and for
    one row of A (n = 1) the outer product (see above)."""
    result = np.empty((a.shape[1], grad.shape[1]), dtype=np.result_type(a, grad), order="F")
    if a.shape[0] == 1:
        outer_product(grad.T, a, out=result.T)
    else:
        np.matmul(grad.T, a, out=result.T)
    return result


# Short rows: col2im below adds each tap's gradient into the padded gradient as a strided
# block whose contiguous runs are one output row of windows, Wo·N numbers long. At batch 1
# those runs are 7 or 14 numbers, and numpy's per-run cost outweighs the arithmetic (one such
# add of the seed's conv3 took 6-7 µs for 1,568 numbers). Below SHORT_ROW_WINDOWS windows a
# row, col2im instead forms all of Wmᵀ G' in one GEMM and adds it into the padded gradient
# with one np.add.at, at places cached per geometry (``column_places``). Measured on the
# Intel Xeon of this round: col2im of the seed's conv2 83 → 56 µs and of conv3 90 → 38 µs
# at batch 1; the SeedCNN batch-1 step 3.6 % faster and batch 2 (conv3 only) 3 % (medians
# of 16 pairs of rounds alternating in one process). From 28 windows a row (conv2 at batch 2)
# np.add.at is slower than the strided adds. The sums are the same terms in another order,
# so they may differ in the last bits. Only for columns of at most SCATTER_ENTRIES entries
# (the seed's conv2 at batch 1 has 28,224): the cached places take 8 bytes an entry, so the
# 64 cached geometries hold 64 MB at most.
SHORT_ROW_WINDOWS = 16
SCATTER_ENTRIES = 2**17


def col2im(weight: np.ndarray, grad_matrix: np.ndarray, groups: int, stride: Pair, padding: Pair,
           dilation: Pair, input_shape: tuple[int, ...], out_hw: Pair) -> np.ndarray:
    """dx (N,C,H,W view of C,H,W,N memory) = Wmᵀ G' added back to every window position.

    One GEMM per kernel row p (its kw taps at once), added into the padded gradient while it
    is still in cache, instead of a full im2col-sized gradient followed by slice-adds:
    about 12 % faster for the seed's conv2 and kh times less memory. Output rows of fewer
    than SHORT_ROW_WINDOWS windows: one GEMM and one scatter-add (see above).
    """
    batch, channels, height, width = input_shape
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    padded_hw = (height + 2 * padding[0], width + 2 * padding[1])
    if out_hw[1] * batch < SHORT_ROW_WINDOWS and channels * kernel_h * kernel_w * grad_matrix.shape[2] <= SCATTER_ENTRIES:
        grad_columns = weight_matrices(weight, groups).transpose(0, 2, 1) @ grad_matrix  # Wmᵀ G', rows as im2col's
        grad_padded = np.zeros(channels * padded_hw[0] * padded_hw[1] * batch, dtype=grad_matrix.dtype)
        places = column_places(channels, groups, (kernel_h, kernel_w), stride, dilation, padded_hw, out_hw, batch)
        np.add.at(grad_padded, places, grad_columns.reshape(-1))
        grad_padded = grad_padded.reshape((channels,) + padded_hw + (batch,))
    else:
        # (O/g spelled out, not -1: a weight with no input channels is empty, and numpy cannot infer an axis of it)
        weight_rows = weight.transpose(2, 3, 1, 0).reshape(kernel_h, kernel_w * group_channels, groups, out_channels // groups)
        weight_rows = weight_rows.transpose(0, 2, 1, 3)  # (kh, groups, kw·C/g, O/g)
        row_shape = (groups, kernel_w * group_channels, grad_matrix.shape[2])
        kernel_row_grad = scratch("conv gradient of one kernel row", row_shape, grad_matrix.dtype)
        row_taps = kernel_row_grad.reshape((groups, kernel_w, group_channels) + out_hw + (batch,))
        grouped_padded = np.zeros((groups, group_channels) + padded_hw + (batch,), dtype=grad_matrix.dtype)
        with ufunc_buffer_of(STRIDED_ADD_BUFFER_ELEMENTS):  # (why: at STRIDED_ADD_BUFFER_ELEMENTS)
            for p, q, tap in window_taps((kernel_h, kernel_w), stride, dilation, out_hw):
                if q == 0:
                    np.matmul(weight_rows[p], grad_matrix, out=kernel_row_grad)  # rows (p, ·, ·) of Wmᵀ G'
                grouped_padded[tap] += row_taps[:, q]
        grad_padded = grouped_padded.reshape((channels,) + padded_hw + (batch,))
    return batch_first(grad_padded[:, padding[0] : padding[0] + height, padding[1] : padding[1] + width])


@functools.lru_cache(maxsize=64)
def column_places(channels: int, groups: int, kernel: Pair, stride: Pair, dilation: Pair, padded_hw: Pair,
                  out_hw: Pair, batch: int) -> np.ndarray:
    """For every entry of im2col's columns, flattened (group, c, p, q, i, j, n), its element's
    place in the flat zero-padded C,H,W,N input: channel g·C/g + c, row i·sh + p·dh, column
    j·sw + q·dw, image n (read-only, cached)."""
    group_channels = channels // groups
    group, channel, p, q, row, column, image = np.ix_(
        range(groups), range(group_channels), range(kernel[0]), range(kernel[1]), range(out_hw[0]),
        range(out_hw[1]), range(batch))
    rows = row * stride[0] + p * dilation[0]
    columns = column * stride[1] + q * dilation[1]
    places = (((group * group_channels + channel) * padded_hw[0] + rows) * padded_hw[1] + columns) * batch + image
    places = places.reshape(-1)
    places.flags.writeable = False
    return places


# ---------------------------------------------------------------------------
# Pooling: stride phase planes and flat taps
# ---------------------------------------------------------------------------
#
# The zero-padded input is split by stride phase: plane (r, s) holds the padded positions
# (a·sh + r, b·sw + s) at place (a, b): planes[r, s, c, a, b, n] = xp[n, c, a·sh + r, b·sw + s].
# Tap (p, q) of window (i, j) is then place (i + p//sh, j + q//sw) of plane (p mod sh, q mod sw).
#
# Flat taps: the output is computed on the planes' own grid, C × Hq × Wq × N, one "window"
# per place; the windows (i, j) with i < Ho and j < Wo are the real ones, the rest are spare
# (they reach past a plane's edge; their values mean nothing and their gradient is 0). On
# that grid, tap (p, q) of every window at once is ONE contiguous slice of its flattened
# plane, shifted by (p//sh)·Wq·N + (q//sw)·N: every pass of the pool is a plain 1-D numpy
# loop. Measured on the seed's pools (pool 1 and 2, batch 128): forward + backward about
# 18 % faster than with 4-D strided tap blocks, though the grid holds (15·15)/(14·14) and
# (8·8)/(7·7) times as many windows.


# Channel blocks: a max pool runs its passes block by block, a few channels at a time, so
# that a block's phase planes (POOL_BLOCK_BYTES at most) are copied and then read by all
# kh·kw taps while they are still in the L2 cache, instead of every pass streaming the
# whole planes through memory. Measured on an Intel Xeon with 2 MB of L2 per core: the
# SeedCNN batch-128 step 6.5-7 % faster (medians of 24 pairs of rounds alternating in one
# process, two runs; pool 1 gets 4 blocks, pool 2 two); batch 32 and 1 have one block, as
# before. (256 KB to 2 MB blocks all gained. On the AMD EPYC of earlier rounds, 512 KB of
# L2, blocking the pool passes gained nothing.)
POOL_BLOCK_BYTES = 2 * 2**20


@functools.lru_cache(maxsize=256)
def pool_windows(input_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: tuple[Pair, Pair]) -> "PoolWindows":
    """The (cached, read-only) PoolWindows of this geometry."""
    return PoolWindows(input_shape, kernel, stride, padding)


class PoolWindows:
    """The geometry of a pool over an N,C,H,W input zero-padded by ((top, bottom), (left, right))."""

    def __init__(self, input_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: tuple[Pair, Pair]):
        batch, channels, height, width = input_shape
        self.input_hw, self.kernel, self.stride, self.padding = (height, width), kernel, stride, padding
        padded_hw = (height + sum(padding[0]), width + sum(padding[1]))
        self.out_hw = (output_size(padded_hw[0], kernel[0], stride[0]), output_size(padded_hw[1], kernel[1], stride[1]))
        # each plane is big enough for every real window's farthest tap
        self.plane_hw = tuple(max(-(-size // step), out + (k - 1) // step)
                              for size, step, out, k in zip(padded_hw, stride, self.out_hw, kernel))
        self.grid_shape = (channels,) + self.plane_hw + (batch,)  # C, Hq, Wq, N
        plane_size = channels * self.plane_hw[0] * self.plane_hw[1] * batch
        row, column = self.plane_hw[1] * batch, batch  # flat steps of one place down, one place right
        self.taps = [(p % stride[0], q % stride[1], (p // stride[0]) * row + (q // stride[1]) * column)
                     for p in range(kernel[0]) for q in range(kernel[1])]
        self.plane_size = plane_size
        #: windows 0 .. length-1 of the flat grid: every real one, and every tap's slice stays inside its plane
        #: (0 for an empty grid: with no channels the planes are empty but a tap's offset is not)
        self.length = max(plane_size - max(offset for _, _, offset in self.taps), 0)
        self.phase_pairs = list(self._phase_pairs())
        self._blocks: dict[int, list[tuple[int, int, int, int]]] = {}

    def channel_blocks(self, itemsize: int) -> list[tuple[int, int, int, int]]:
        """(first channel, stop channel, first window, stop window) of each block of channels
        whose phase planes take at most POOL_BLOCK_BYTES (at least one channel a block); the
        windows of a block are its channels' windows below ``length``."""
        if itemsize not in self._blocks:
            channels = self.grid_shape[0]
            channel_windows = self.plane_size // channels if channels else 0
            step = max(1, POOL_BLOCK_BYTES // max(1, self.stride[0] * self.stride[1] * channel_windows * itemsize))
            self._blocks[itemsize] = [(first, min(first + step, channels), first * channel_windows,
                                       min((first + step) * channel_windows, self.length))
                                      for first in range(0, channels, step)]
        return self._blocks[itemsize]

    def tap_slices(self, planes: np.ndarray, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Tap (p, q) of windows start .. stop-1 (default: 0 .. length-1), in row-major tap
        order, from flat planes (sh, sw, C·Hq·Wq·N)."""
        stop = self.length if stop is None else stop
        for row_phase, column_phase, offset in self.taps:
            yield planes[row_phase, column_phase, start + offset : stop + offset]

    def new_grid(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """A fresh C,Hq,Wq,N array with its windows past ``length`` set to 0, and its first ``length`` windows (flat)."""
        grid = np.empty(self.grid_shape, dtype=dtype)
        flat = grid.reshape(-1)
        flat[self.length :] = 0
        return grid, flat[: self.length]

    def real(self, grid: np.ndarray) -> np.ndarray:
        """The real windows (C, Ho, Wo, N view) of a C,Hq,Wq,N grid."""
        return grid[:, : self.out_hw[0], : self.out_hw[1]]

    def work_grid(self, purpose: str, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """A reused C,Hq,Wq,N work buffer for the real windows only (so the spare ones stay 0),
        and its first ``length`` windows (flat)."""
        grid = scratch(f"{purpose} for {self.out_hw} real windows", self.grid_shape, dtype)
        return grid, grid.reshape(-1)[: self.length]

    def _phase_pairs(self) -> Iterator[tuple[tuple, tuple]]:
        """(plane index, input index) for every pair of row and column phases."""
        for row_phase, in_rows, plane_rows in _phases(self.input_hw[0], self.padding[0][0], self.stride[0]):
            for column_phase, in_columns, plane_columns in _phases(self.input_hw[1], self.padding[1][0], self.stride[1]):
                yield ((row_phase, column_phase, slice(None), plane_rows, plane_columns),
                       (slice(None), in_rows, in_columns))

    def new_planes(self, x: np.ndarray) -> np.ndarray:
        """Phase planes (sh, sw, C, Hq, Wq, N) for N,C,H,W ``x``, zero where the padding is, to
        be filled by ``fill_phase_planes``: a reused work buffer (the key fixes which places are
        written, so the padding stays 0)."""
        shape = self.stride + self.grid_shape
        return scratch(f"pool planes of an input {x.shape} padded by {self.padding}", shape, x.dtype)

    def fill_phase_planes(self, planes: np.ndarray, x: np.ndarray, first: int, stop: int) -> None:
        """Copy channels first .. stop-1 of N,C,H,W ``x`` into ``new_planes``' planes."""
        x, channels = batch_last(x), slice(first, stop)
        for plane_index, in_index in self.phase_pairs:
            planes[plane_index[:2] + (channels,) + plane_index[3:]] = x[(channels,) + in_index[1:]]

    def to_phase_planes(self, x: np.ndarray) -> np.ndarray:
        """The flat phase planes (sh, sw, C·Hq·Wq·N) of N,C,H,W ``x``, all channels at once (a
        work buffer: dead once the caller returns)."""
        planes = self.new_planes(x)
        self.fill_phase_planes(planes, x, 0, self.grid_shape[0])
        return planes.reshape(self.stride + (-1,))

    def from_phase_planes(self, grad_planes: np.ndarray) -> np.ndarray:
        """dx (N,C,H,W view of C,H,W,N memory): every input element's gradient taken once from
        the flat gradient planes; what landed on the padding is dropped."""
        grad_planes = grad_planes.reshape(self.stride + self.grid_shape)
        channels, batch = self.grid_shape[0], self.grid_shape[-1]
        grad_x = np.empty((channels,) + self.input_hw + (batch,), dtype=grad_planes.dtype)
        for plane_index, in_index in self.phase_pairs:
            grad_x[in_index] = grad_planes[plane_index]
        return batch_first(grad_x)


def _phases(size: int, before: int, stride: int) -> list[tuple[int, slice, slice]]:
    """Along one axis, split the padded positions h + before by their phase r = (h + before)
    mod stride: for each phase, (r, the input rows h of that phase, their places a = (h +
    before) // stride in the phase plane)."""
    phases = []
    for phase in range(stride):
        first = (phase - before) % stride  # the first input row of this phase
        count = len(range(first, size, stride))
        start = (first + before) // stride
        phases.append((phase, slice(first, size, stride), slice(start, start + count)))
    return phases


def max_pool(windows: PoolWindows, x: np.ndarray, relu: bool, keep: bool) -> tuple[Optional[np.ndarray], np.ndarray]:
    """(first-maximum counts or None, output grid C,Hq,Wq,N) of the max pool of N,C,H,W ``x``:
    every window's largest tap (and 0, with ``relu``), channel block by channel block.
    ``keep`` (backward will run): also each window's count (``count_first_maximum``), a fresh
    C,Hq,Wq,N array of small ints, found while the block's planes are still in the cache.

    A block's spare windows may read the next block's planes before they are filled: their
    values (and counts) mean nothing either way.
    """
    planes = windows.new_planes(x)
    flat_planes = planes.reshape(windows.stride + (-1,))
    grid, _ = windows.new_grid(x.dtype)
    flat_grid = grid.reshape(-1)
    # (np.empty: only the real windows' counts are ever read, and every real window is counted)
    count_grid = np.empty(windows.grid_shape, dtype=np.min_scalar_type(len(windows.taps))) if keep else None
    for first_channel, stop_channel, start, stop in windows.channel_blocks(x.dtype.itemsize):
        windows.fill_phase_planes(planes, x, first_channel, stop_channel)
        output = flat_grid[start:stop]
        taps = windows.tap_slices(flat_planes, start, stop)
        if relu:  # max(0, t₀, t₁, …) = relu(max(t₀, t₁, …)): the relu costs no pass of its own
            np.maximum(next(taps), 0, out=output)
        else:
            np.copyto(output, next(taps))
        for tap in taps:
            np.maximum(output, tap, out=output)
        if count_grid is not None:
            count_first_maximum(windows, flat_planes, output, count_grid.reshape(-1)[start:stop], start, stop, relu)
    return count_grid, grid


# Winners found in forward: each window's first maximum is found in the forward pass, block by
# block, right after the block's maximum, while its phase planes are still in the L2 cache, and
# kept as one small count per window; backward then only scatters. Before, backward found the
# winners again from phase planes saved for it (a fresh zeroed array each step: 7.4 MB for the
# seed's pool 1 at batch 128, read back from memory). Measured on the Intel Xeon of this round
# (SeedCNN steps, rounds alternating in one process): batch 128 0.976, 0.964 and 0.963 of
# before in three runs, batch 32 and 1 within the noise (0.95–1.04); the planes are no longer
# kept (peak RSS of 20 batch-128 steps 173 → 171 MB). An earlier try, before the channel blocks (on an
# AMD machine with 512 KB of L2), had found it as costly as finding them again.


def count_first_maximum(windows: PoolWindows, flat_planes: np.ndarray, output: np.ndarray, count: np.ndarray,
                        start: int, stop: int, relu: bool) -> None:
    """Each window's count (windows start .. stop-1, ``output`` their maxima): the number of
    taps from its first tap, in row-major order, that equals its output (PyTorch's tie rule) on;
    0 for no winner. Per tap, in order: ``hit = tap == output``, ``found |= hit``, ``count +=
    found``. A window holding a NaN (its output is NaN) counts from its last NaN tap (PyTorch's
    rule there); with ``relu``, a window whose output is 0 gets 0 (relu'(0) = 0: it routes nothing)."""
    found = scratch("taps found", count.shape, np.dtype(np.bool_))
    hit = scratch("taps hit", count.shape, np.dtype(np.bool_))
    count.fill(0)
    found.fill(False)
    for tap in windows.tap_slices(flat_planes, start, stop):
        np.equal(tap, output, out=hit)
        np.logical_or(found, hit, out=found)
        np.add(count, found.view(np.uint8), out=count)
    if relu:
        np.greater(output, 0, out=hit)
        np.multiply(count, hit.view(np.uint8), out=count)
    if stop > start and math.isnan(output.max()):  # (one fast reduction: the loop runs only where some window holds a NaN)
        nan_windows = np.isnan(output)  # no tap equals NaN: PyTorch routes such a window to its LAST NaN tap
        for position, tap in enumerate(windows.tap_slices(flat_planes, start, stop)):  # (relu passes NaN on, as PyTorch's)
            np.copyto(count, len(windows.taps) - position, where=nan_windows & np.isnan(tap))


def route_to_first_maximum(windows: PoolWindows, count_grid: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
    """dx (N,C,H,W view of C,H,W,N memory): each real window's G goes to the tap its count
    names (``count_first_maximum``); overlapping windows add up; what lands on the padding is
    dropped, and so is the G of a window with no winner (count 0).

    One table lookup (``winner_places``) turns a count into the winner's place in the input, and
    one ``np.add.at`` adds every window's G at its winner's place in a C,H,W,N gradient (the
    no-winner windows and the padding winners at one extra, discarded element). It replaced a
    masked multiply, add and subtract per tap on float grids and the copy back out of the phase
    planes: the SeedCNN step went 29.1 → 27.7 ms at batch 128 and 7.8 → 7.6 ms at batch 32,
    batch 1 unchanged (medians of 20 rounds alternating in one process). By channel blocks,
    as the forward pass.
    """
    channels, batch = windows.grid_shape[0], windows.grid_shape[-1]
    height, width = windows.input_hw
    size = channels * height * width * batch
    place_table, window_rows = winner_places(windows.input_hw, windows.out_hw, windows.kernel, windows.stride,
                                             windows.padding, batch)
    grad_x = np.zeros(size + 1, dtype=grad_out.dtype)  # element `size` is discarded
    grad_out = batch_last(grad_out)
    for first_channel, stop_channel, _, _ in windows.channel_blocks(grad_out.dtype.itemsize):
        block = slice(first_channel, stop_channel)
        places = np.add(windows.real(count_grid[block]), window_rows)  # C,Ho,Wo,N: the row of place_table to read
        places = np.take(place_table, places)  # the winner's place in its channel and image: (row·W + col)·N
        places += (np.arange(first_channel, stop_channel) * (height * width * batch))[:, None, None, None] + np.arange(batch)
        np.minimum(places, size, out=places)  # every window with no winner, or a padding one, at element `size`
        with np.errstate(invalid="ignore"):  # (G = inf and -inf of dead windows meet in the discarded element)
            np.add.at(grad_x, places.reshape(-1), np.ascontiguousarray(grad_out[block]).reshape(-1))
    return batch_first(grad_x[:size].reshape(channels, height, width, batch))


@functools.lru_cache(maxsize=64)
def winner_places(input_hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: tuple[Pair, Pair],
                  batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(place table, window rows) for ``route_to_first_maximum`` (read-only, cached).

    A window (i, j) whose count is k (k ≥ 1) won at tap kh·kw − k, row-major: at row
    i·sh + p − top and column j·sw + q − left of the input. Row (i·Wo + j)·(kh·kw + 1) + k of
    the place table holds that element's flat place (row·W + column)·N within its channel and
    image, or a number beyond every place if it is padding (or k = 0: no winner);
    window rows (Ho, Wo, 1) holds (i·Wo + j)·(kh·kw + 1).
    """
    (height, width), (top, _), (left, _), taps = input_hw, padding[0], padding[1], kernel[0] * kernel[1]
    winning_tap = taps - np.arange(1, taps + 1)  # for counts 1 .. kh·kw
    rows = (np.arange(out_hw[0]) * stride[0])[:, None, None] + winning_tap // kernel[1] - top  # (Ho, 1, kh·kw)
    columns = (np.arange(out_hw[1]) * stride[1])[None, :, None] + winning_tap % kernel[1] - left  # (1, Wo, kh·kw)
    inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
    place_table = np.full(out_hw + (taps + 1,), np.iinfo(np.intp).max // 2, dtype=np.intp)  # beyond every place
    place_table[:, :, 1:] = np.where(inside, (rows * width + columns) * batch, place_table[:, :, 1:])
    window_rows = (np.arange(out_hw[0] * out_hw[1]) * (taps + 1)).reshape(out_hw + (1,))
    place_table.flags.writeable = window_rows.flags.writeable = False
    return place_table.reshape(-1), window_rows


# ---------------------------------------------------------------------------
# Optimizer updates by cache-sized blocks
# ---------------------------------------------------------------------------

# An optimizer's update makes several numpy passes over each parameter and its buffers (SGD
# with momentum 4, Adam about 12). Over a parameter bigger than the L2 cache (the seed's fc1:
# 3136 x 100 floats, 1.25 MB, 3.75 MB with its gradient and momentum) every pass streams it
# from memory again; running all the passes on one block of UPDATE_BLOCK_ELEMENTS at a time
# keeps the block in cache. Each element gets the same operations in the same order, so the
# result is the same to the bit. Measured on the Intel Xeon of this round (2 MB of L2 per
# core): SGD's update of fc1 500 → 365-380 µs; the batch-1 step of SeedCNN 6 % and of
# SeedMLP 13 % faster, batch 32 1 % (medians of 30 pairs of rounds alternating in one
# process; blocks of 64K and 128K elements gained a little less).
UPDATE_BLOCK_ELEMENTS = 32768


def update_blocks(*arrays: Optional[np.ndarray], blas: bool = False) -> Iterator[tuple[Optional[np.ndarray], ...]]:
    """``arrays`` (a parameter, its gradient, then its buffers: one shape; None for a buffer
    that does not exist) as matching flat blocks of UPDATE_BLOCK_ELEMENTS, to be updated in
    place; arrays that are small, or not all C-contiguous, come whole, as one tuple. Column-major
    matrices, all of them, count as their row-major transposes (which are what come). A
    gradient in the other order than a contiguous parameter's (one assigned by hand, a batched
    product's for a column-major weight) comes as a copy in the parameter's order. With
    ``blas`` (an update made of ``momentum_step`` and ``add_scaled``), arrays that those run
    through BLAS come whole too: BLAS passes over whole arrays beat cached blocks (below)."""
    present = [array for array in arrays if array is not None]
    if present[0].size <= UPDATE_BLOCK_ELEMENTS:
        yield arrays
        return
    data, grad = arrays[0], arrays[1]
    if data is not None and grad is not None and data.flags.c_contiguous != grad.flags.c_contiguous and (
            data.flags.c_contiguous or column_major(data)):
        # (numpy's passes over two memory orders at once take several times one pass: the
        # seed's fc1 with a row-major gradient for its column-major weight 777 µs against 127)
        arrays = (data, np.array(grad, order="C" if data.flags.c_contiguous else "F")) + arrays[2:]
        present = [array for array in arrays if array is not None]
    if column_major(present[0]) and all(array.flags.f_contiguous for array in present):
        # (a column-major weight and its buffers: their transposes are row-major, and an
        # element-wise update gives the same numbers whichever way the memory is walked)
        arrays = tuple(None if array is None else array.T for array in arrays)
        present = [array.T for array in present]
    if not all(array.flags.c_contiguous for array in present) or (blas and blas_takes(present[0], present[1])):
        yield arrays
        return
    flat = [None if array is None else array.reshape(-1) for array in arrays]  # views: C-contiguous
    for start in range(0, present[0].size, UPDATE_BLOCK_ELEMENTS):
        yield tuple(None if array is None else array[start : start + UPDATE_BLOCK_ELEMENTS] for array in flat)


# BLAS passes: numpy runs every element-wise pass on one core and has no fused multiply-add,
# so SGD's momentum update v *= m, v += g, p -= lr·v is four passes (lr·v is a temporary). The
# OpenBLAS that numpy's wheels bundle has axpy (y += a·x), which splits a long array over all
# its threads: the update becomes three axpy passes on both cores, v += (m − 1)·v, v += g,
# p += (−lr)·v, each thread keeping its part of the arrays in its own cache from pass to pass.
# Measured on the Intel Xeon of this round, SeedCNN's fc1 (313,600 floats) after an 8 MB sweep
# of memory: 287-313 µs by numpy blocks (``update_blocks``), 123-135 by the three axpys (v *= m
# by numpy or by BLAS's scal, both on one thread, instead of the first axpy: 174-209, as the
# other core then fetches its half of v). In the train step, SGD's step 362-422 → 267-289 µs at
# batch 1; the step 0.954-0.965 of before at batch 1, 0.940 at 32, 0.973 at 128, and SeedMLP's
# 0.634-0.700 at batch 1 (medians of 8-30 pairs of rounds alternating in one process).
# v += (m − 1)·v is numpy's v *= m to the bit only where OpenBLAS's axpy rounds every element
# once (a fused multiply-add: its AVX-512 kernels, this Xeon's); its AVX2 kernels round the
# ragged ends of each thread's part twice, and older CPUs' kernels every element, so
# ``scales_exactly`` checks once per dtype, and elsewhere v *= m is numpy's pass (the update
# then gains about half as much). Below BLAS_PASS_ELEMENTS the ctypes call costs more than it
# saves (18,432 floats: 14 µs by numpy, 23 by BLAS). Where numpy has no such library (another
# BLAS, or none), or for arrays it cannot take (another dtype, not contiguous, read-only,
# overlapping), the same functions make the numpy passes.
BLAS_PASS_ELEMENTS = 65536


@functools.lru_cache(maxsize=1)
def level1_blas() -> Optional[dict[np.dtype, Any]]:
    """numpy's own OpenBLAS axpy, {float32 | float64: ctypes function (n, a, x, incx, y, incy)},
    or None where numpy was built without it. Only the 64-bit-integer ("64_") builds that
    numpy's wheels bundle (``scipy_cblas_saxpy64_`` from numpy 2, ``cblas_saxpy64_`` before),
    found through numpy's own extension module, which links them."""
    module = sys.modules.get("numpy._core._multiarray_umath") or sys.modules.get("numpy.core._multiarray_umath")
    try:
        library = ctypes.CDLL(module.__file__)  # type: ignore[union-attr]
    except (AttributeError, OSError, TypeError):
        return None
    routines = {}
    for dtype, letter, scalar in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
        for prefix in ("scipy_cblas_", "cblas_"):
            axpy = getattr(library, f"{prefix}{letter}axpy64_", None)
            if axpy is not None:
                axpy.argtypes = [ctypes.c_int64, scalar, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
                axpy.restype = None
                routines[np.dtype(dtype)] = axpy
                break
    return routines or None


def blas_takes(target: np.ndarray, source: np.ndarray) -> bool:
    """Whether ``momentum_step``/``add_scaled`` update ``target`` from ``source`` through BLAS."""
    if target.size < BLAS_PASS_ELEMENTS or not (target.flags.c_contiguous and target.flags.aligned and target.flags.writeable):
        return False
    routines = level1_blas()
    return (routines is not None and target.dtype in routines and source.dtype == target.dtype
            and source.shape == target.shape and source.flags.c_contiguous and source.flags.aligned
            and not np.may_share_memory(source, target))


@functools.lru_cache(maxsize=None)
def scales_exactly(dtype: np.dtype) -> bool:
    """Whether x += (m − 1)·x through numpy's OpenBLAS gives numpy's x *= m to the bit, for
    0.5 ≤ m ≤ 2: true where its axpy kernel rounds every element once. Checked once per dtype,
    with the BLAS thread count of that moment, on BLAS_PASS_ELEMENTS + 37 numbers (a ragged end
    to every thread's part) and m = 0.9."""
    values = np.random.default_rng(0).standard_normal(BLAS_PASS_ELEMENTS + 37).astype(dtype)
    expected = values * dtype.type(0.9)
    axpy = level1_blas()[dtype]  # type: ignore[index]
    axpy(values.size, float(dtype.type(0.9) - 1), values.ctypes.data, 1, values.ctypes.data, 1)
    return bool(np.array_equal(values, expected))


def momentum_step(velocity: np.ndarray, momentum: float, grad: np.ndarray) -> None:
    """velocity = momentum · velocity + grad, in place, with numpy's bits for every finite v:
    numpy's v *= m, v += g; through BLAS (BLAS_PASS_ELEMENTS), v += g as an axpy (v + g rounded
    once either way) and, where ``scales_exactly`` and 0.5 ≤ m ≤ 2 (m − 1 is exact), v *= m as
    v += (m − 1)·v, a fused multiply-add rounding (m − 1)·v + v = m·v once. Two differences
    there, both in runs that have already diverged or stopped: for m < 1 an entry of v that is
    ±inf (its parameter is already ∓inf) becomes NaN instead of staying ±inf, and −0 becomes +0."""
    if not blas_takes(velocity, grad):
        velocity *= momentum
        velocity += grad
        return
    axpy = level1_blas()[velocity.dtype]  # type: ignore[index]
    if 0.5 <= momentum <= 2 and scales_exactly(velocity.dtype):
        if momentum != 1:
            axpy(velocity.size, float(velocity.dtype.type(momentum) - 1), velocity.ctypes.data, 1, velocity.ctypes.data, 1)
    else:
        velocity *= momentum
    axpy(velocity.size, 1.0, grad.ctypes.data, 1, velocity.ctypes.data, 1)


def add_scaled(target: np.ndarray, factor: float, source: np.ndarray) -> None:
    """target += factor · source, in place; through BLAS (BLAS_PASS_ELEMENTS) one fused
    multiply-add an entry where the CPU has one, which may differ from numpy's two roundings in
    the last bit. A factor that is 0 in the target's dtype takes numpy's passes: OpenBLAS skips
    the pass, so 0 · inf would not give NaN."""
    if blas_takes(target, source) and target.dtype.type(factor) != 0:
        level1_blas()[target.dtype](target.size, factor, source.ctypes.data, 1, target.ctypes.data, 1)  # type: ignore[index]
    else:
        target += factor * source


# Subnormal buffers: a parameter whose gradient stays 0 (the weights of a dead relu) has its
# momentum shrink by the momentum factor every step, into the subnormal floats (below
# 1.2e-38 in float32), where it stays: 0.9 times the smallest subnormal rounds back to it.
# Intel CPUs compute on subnormals many times slower. Measured in the default recipe (batch
# 64) on this round's Intel Xeon: after about 800 steps fc1's momentum held 160,000
# subnormal entries, and SGD's step went 0.6 → 4.6 ms, the train step 20 → 26 ms (PyTorch's
# SGD slows the same way unless torch.set_flush_denormal(True)). So every
# SUBNORMAL_FLUSH_STEPS steps the optimizers set their buffers' entries below
# FLUSH_MARGIN times the smallest normal float (1e-31 in float32) to 0: a buffer that decays
# by a factor of 0.21 or more a step (momentum, β ≥ 0.21: 0.2¹⁰ is just below 2⁻²³) cannot
# cross from above that into the subnormals in between. No parameter that is not itself tiny can tell: lr times 1e-31,
# subtracted from a float32 above about 1e-24, leaves it unchanged. (That is SGD's step:
# Adam divides m̂ by √v̂ + eps, which hides nothing when eps is 0 or tiny, so it lowers its
# limits with eps, down to none at eps = 0: Adam._flush_limits.) In the same run,
# steps 800-1,200: SGD's step 0.8-1.1 ms (the flush included) against 3.2-4.9 without it.
# The optimizers flush each block of a buffer right after its update, while it is in the
# cache (``update_blocks``; a buffer whose parameter has no gradient that step, whole), and
# ``flush_subnormals`` zeroes by multiplying with the mask of entries to keep: numpy's masked
# copy (``np.copyto(..., where=)``) took 2.3 ns an element even in the cache, the multiply
# and the add that turns -0 into +0 together about 1. Measured on the Intel Xeon: SGD's flush
# steps of SeedCNN at batch 1 1.77 → 0.81 ms (once in 10 steps), the batch-1 step 4.5 % and
# SeedMLP's 10 % faster (medians of 20 pairs of rounds alternating in one process).
# SGD flushes its momentum only as often as its factor needs (``flush_steps``): 0.9¹⁴⁴ is
# still above 2⁻²², so a buffer decaying by 0.9 a step is flushed every 144 steps instead of
# every 10, and the flush, about 0.7 ms for SeedCNN's buffers and 1.7 for SeedMLP's, costs 5
# and 12 µs a step instead of 72 and 170. Measured on the Intel Xeon (20 pairs of rounds
# alternating in one process): the batch-1 step 0.975 of before (quartiles 0.948-0.991),
# SeedMLP's 0.957 (0.913-0.973). Adam does the same for each moment with its own factor and
# limit: with the defaults, m every 144 steps and v (β₂ = 0.999) every 11,004 in float32.
SUBNORMAL_FLUSH_STEPS = 10
FLUSH_MARGIN = 2.0**23


def flush_steps(decay: float, headroom: float = FLUSH_MARGIN) -> int:
    """The steps between two flushes of a buffer that shrinks by ``decay`` a step once its
    gradients stop (SGD's momentum, Adam's moments), flushed below ``headroom`` times the
    smallest normal float (``flush_limit``: FLUSH_MARGIN; Adam's limits may be lower): the
    most k with decay^k ≥ 2 / headroom, so that an entry just above the limit after one flush
    is still a normal float at the next (one bit to spare for the rounding of k products), and
    at least SUBNORMAL_FLUSH_STEPS (a factor below 0.21 empties an entry fast; a factor whose
    size is not below 1 does not decay; a headroom of 2 or less leaves no room to wait)."""
    decay = abs(decay)
    if not 0 < decay < 1 or headroom <= 2:
        return SUBNORMAL_FLUSH_STEPS
    margin = 2 / headroom
    steps = math.floor(math.log(margin) / math.log(decay))
    if decay ** (steps + 1) >= margin:  # (the logarithms' rounding, where decay^k meets the margin)
        steps += 1
    elif decay**steps < margin:
        steps -= 1
    return max(SUBNORMAL_FLUSH_STEPS, steps)


def flush_limit(dtype: np.dtype) -> float:
    """FLUSH_MARGIN times the smallest normal float of ``dtype`` (1e-31 in float32)."""
    return float(np.finfo(dtype).tiny) * FLUSH_MARGIN


def flush_subnormals(array: np.ndarray, limit: Optional[float] = None) -> None:
    """Set the entries of a float array smaller in magnitude than ``limit`` (default:
    ``flush_limit``) to 0, in place (bigger ones, infinities and NaN stay; a limit of 0 flushes
    nothing)."""
    limit = flush_limit(array.dtype) if limit is None else limit
    if limit > 0:
        keep = np.abs(array) >= limit  # (False for NaN, and NaN · 0 is NaN: it stays)
        np.multiply(array, keep, out=array)  # below the limit: ±0
        np.add(array, 0, out=array)  # -0 + 0 is +0; every other value is unchanged
