"""Reductions over axes (int, tuple or None; negative axes allowed; keepdims)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tinygrad_cnn.function import Function, Gradients

__all__ = ["Sum", "Mean", "Max", "Min", "ArgMax", "ArgMin"]


def _normalize_axes(axis: Optional[int | Sequence[int]], ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes)) if ndim else ()


class Sum(Function):
    """y = Σ x over ``axis`` (integers and bools summed as int64, as PyTorch: numpy would give
    uint64 for unsigned ones, which wraps around below 0).   VJP: dx = G broadcast back."""

    saves_inputs = False
    saves_output = False

    label = "Sum"

    def __init__(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        self.axes = _normalize_axes(self.axis, x.ndim)
        dtype = np.int64 if x.dtype.kind in "biu" else None
        return np.asarray(x.sum(axis=self.axes, keepdims=self.keepdims, dtype=dtype))

    def backward(self, grad_out: np.ndarray) -> Gradients:
        if not self.keepdims:
            grad_out = np.expand_dims(grad_out, self.axes)
        return (np.broadcast_to(grad_out, self.input_shape),)


class Mean(Function):
    """y = (1/n) Σ x over ``axis`` (n elements per output).   VJP: dx = G / n, broadcast back.
    A mean over no elements (n = 0) is NaN, as in PyTorch, and its input's gradient is empty."""

    saves_inputs = False
    saves_output = False

    label = "Mean"

    def __init__(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        self.axes = _normalize_axes(self.axis, x.ndim)
        self.count = int(np.prod([x.shape[a] for a in self.axes], dtype=np.int64))
        if self.count == 0:  # (numpy would warn "Mean of empty slice")
            return np.full(x.sum(axis=self.axes, keepdims=self.keepdims).shape, np.nan, dtype=x.dtype)
        return np.asarray(x.mean(axis=self.axes, keepdims=self.keepdims))

    def backward(self, grad_out: np.ndarray) -> Gradients:
        if self.count == 0:  # the input is empty (numpy would warn dividing G by 0)
            return (np.zeros(self.input_shape, dtype=grad_out.dtype),)
        if not self.keepdims:
            grad_out = np.expand_dims(grad_out, self.axes)
        return (np.broadcast_to(grad_out / self.count, self.input_shape),)


class Max(Function):
    """y = max x over ``axis``.

    VJP: dx = G ⊙ [x = y] / (number of maxima), broadcast back: tied maxima share G equally,
    as torch.amax. Any split of G among the ties that adds up to G is a valid subgradient;
    the equal one favours no position (max pooling instead picks the first, see MaxPool2d).
    Where y is NaN the NaN elements are the maxima (sharing G equally), as torch.max(x) (the
    full reduction; torch.max(x, dim) gives all of G to the one index it returns, and
    torch.amax gives NaN there: 0/0, as no element equals NaN).
    """

    saves_inputs = False
    saves_output = False

    reduce = staticmethod(np.max)

    def __init__(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.axes = _normalize_axes(self.axis, x.ndim)
        extreme = np.asarray(self.reduce(x, axis=self.axes, keepdims=True))
        self.chosen = x == extreme
        if extreme.dtype.kind == "f" and np.isnan(extreme).any():  # checked on the small result
            self.chosen |= np.isnan(x) & np.isnan(extreme)  # NaN == NaN is False
        return extreme if self.keepdims else np.squeeze(extreme, axis=self.axes)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        if not self.keepdims:
            grad_out = np.expand_dims(grad_out, self.axes)
        ties = self.chosen.sum(axis=self.axes, keepdims=True, dtype=grad_out.dtype)
        return (self.chosen * (grad_out / ties),)


class Min(Max):
    """y = min x over ``axis``.   VJP: dx = G ⊙ [x = y] / (number of minima), as Max."""

    reduce = staticmethod(np.min)


class ArgMax(Function):
    """y = the int64 index of the largest x along ``axis`` (the first on ties; the first NaN
    where there is one, as numpy and PyTorch); axis None: the index into the flattened x.

    VJP: none: an index is piecewise constant in x, so (as Compare) the op is applied without
    being recorded and ``argmax`` never requires grad. It is an op so that tracers see it:
    the ONNX exporter writes it as ArgMax.
    """

    find = staticmethod(np.argmax)

    def __init__(self, axis: Optional[int] = None, keepdims: bool = False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.find(x, axis=self.axis, keepdims=self.keepdims)).astype(np.int64, copy=False)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (None,)


class ArgMin(ArgMax):
    """y = the int64 index of the smallest x along ``axis``, as ArgMax."""

    find = staticmethod(np.argmin)
