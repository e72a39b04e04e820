"""The fast numpy routines behind the conv and pool ops."""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------
# Fused ops used by SeedCNN (batch-innermost inside, N,C,H,W at the interface)
# ---------------------------------------------------------------------------
#
# Inside, activations are laid out C,H,W,N: the batch is the innermost axis, so shifting a
# window tap by (p, q) pixels moves whole contiguous runs of W·N numbers, and the conv is
# one GEMM  weight (O, kh·kw·C) @ columns (kh·kw·C, Ho·Wo·N)  whose result is C,H,W,N again.
# Both ops accept any N,C,H,W array and return an N,C,H,W-shaped view of C,H,W,N memory;
# the next fused op reads it back as C,H,W,N for free, every other op sees an ordinary
# array of the public shape (and flatten to N,C·H·W stays a view).

scratch_buffers: dict[tuple, np.ndarray] = {}  # least recently used first
SCRATCH_BYTES = 64 * 2**20  # beyond this, the least recently used buffers are dropped


def scratch(purpose: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A zero-initialised work buffer reused across calls with the same purpose and shape.

    Only for temporaries that are dead before the op returns: never save one for backward
    and never hand one out as an output or a gradient.
    """
    key = (purpose, shape, np.dtype(dtype))
    buffer = scratch_buffers.pop(key, None)
    if buffer is None:
        buffer = np.zeros(shape, dtype=dtype)
    scratch_buffers[key] = buffer  # now the most recently used
    while len(scratch_buffers) > 1 and sum(b.nbytes for b in scratch_buffers.values()) > SCRATCH_BYTES:
        del scratch_buffers[next(iter(scratch_buffers))]
    return buffer


def batch_last(x: np.ndarray) -> np.ndarray:
    """The C,H,W,N view of an N,C,H,W array (no copy)."""
    return x.transpose(1, 2, 3, 0)


def batch_first(x: np.ndarray) -> np.ndarray:
    """The N,C,H,W view of a C,H,W,N array (no copy)."""
    return x.transpose(3, 0, 1, 2)


def window_taps(kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]):
    """(p, q, index) for every window tap; ``index`` picks tap (p, q) of every window from
    a C,H,W,N array, i.e. the elements [:, i·sh + p, j·sw + q, :] for all outputs i, j."""
    (kernel_h, kernel_w), (stride_h, stride_w), (out_h, out_w) = kernel, stride, out_hw
    for p in range(kernel_h):
        for q in range(kernel_w):
            rows = slice(p, p + stride_h * (out_h - 1) + 1, stride_h)
            columns = slice(q, q + stride_w * (out_w - 1) + 1, stride_w)
            yield p, q, (slice(None), rows, columns)


def phases(size: int, before: int, stride: int) -> list[tuple[int, slice, slice]]:
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
