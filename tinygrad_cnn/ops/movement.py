"""Shape and movement ops: the same numbers in another arrangement; VJPs move G back."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinygrad_cnn.function import Function, Gradients

__all__ = ["Reshape", "Pad", "Permute", "GetItem", "Embedding", "Cat", "Stack", "Cast"]


def sides_text(padding: Sequence[Sequence[int]]) -> str:
    """((top, bottom), (left, right)) as '(bottom 1, right 1)', naming only the padded sides."""
    sides = zip(("top", "bottom", "left", "right"), tuple(padding[0]) + tuple(padding[1]))
    return "(" + ", ".join(f"{side} {size}" for side, size in sides if size) + ")"


class Reshape(Function):
    """y = x viewed with a new shape (same elements, row-major).   VJP: dx = G reshaped back."""

    saves_inputs = False
    saves_output = False

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def describe(self) -> str:
        """Flattening to N × features is the seed's 'Vectorization'."""
        return "Vectorization" if len(self.shape) == 2 else "Reshape"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out.reshape(self.input_shape),)


class Pad(Function):
    """y = x surrounded by zeros, ``widths`` = ((before, after), ...) per axis as in np.pad.

    VJP: dx = G with the padding sliced off (the zeros do not depend on x).
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, widths: tuple[tuple[int, int], ...]):
        self.widths = widths

    def describe(self) -> str:
        """'Zero padding (bottom 1, right 1)' for an N,C,H,W tensor; the widths otherwise."""
        if len(self.widths) == 4 and self.widths[0] == self.widths[1] == (0, 0):
            return f"Zero padding {sides_text(self.widths[2:])}"
        return f"Zero padding {self.widths}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inside = tuple(
            slice(before, before + size) for (before, _), size in zip(self.widths, x.shape)
        )
        output = np.zeros(
            tuple(size + before + after for (before, after), size in zip(self.widths, x.shape)),
            dtype=x.dtype,
        )
        output[self.inside] = x
        return output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out[self.inside],)


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[axes[i]] (``np.transpose(x, axes)``).

    VJP: dx = G with the inverse permutation applied, ``np.transpose(G, argsort(axes))``.
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, axes: tuple[int, ...]):
        self.axes = axes

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.transpose(x, self.axes)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (np.transpose(grad_out, np.argsort(self.axes)),)


class GetItem(Function):
    """y = x[index] with numpy's rules (ints, slices, None, Ellipsis, integer and bool arrays).

    VJP: dx = zeros like x, then ``np.add.at(dx, index, G)``: every element of y adds its
    gradient to the element of x it was read from, so an index repeated k times adds k
    gradients (``dx[index] += G`` would keep only one of them: buffered assignment).
    Basic indices (ints, slices, None, Ellipsis) read each element at most once, so for them
    the plain ``dx[index] = G`` gives the same result, hundreds of times faster.
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, index: object):
        self.index = index
        parts = index if isinstance(index, tuple) else (index,)
        self.basic = all(
            part is None or part is Ellipsis or isinstance(part, slice)
            or (isinstance(part, (int, np.integer)) and not isinstance(part, bool))
            for part in parts
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        return np.asarray(x[self.index])  # asarray: a single element comes back as an array

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad = np.zeros(self.input_shape, dtype=grad_out.dtype)
        if self.basic:
            grad[self.index] = grad_out
        else:
            np.add.at(grad, self.index, grad_out)
        return (grad,)


class Embedding(Function):
    """y = table[indices]: the rows of ``table`` (num, dim) at integer ``indices`` of any shape,
    y of shape indices.shape + (dim,); the indices are an input, so a traced graph (an ONNX
    export) reads them from whatever tensor holds them.

    VJP: d table = zeros, then ``np.add.at(d table, indices, G)``: each row adds the gradient
    of every place that read it (a row read twice gets both); the indices get none.
    """

    label = "Embedding"
    saves_output = False

    def forward(self, table: np.ndarray, indices: np.ndarray) -> np.ndarray:
        if indices.dtype.kind not in "iu":  # (a bool array would select by mask, a float one fail in numpy)
            raise TypeError(f"Embedding: the indices must be integers, got dtype {indices.dtype}")
        self.table_shape, self.indices = table.shape, indices
        return table[indices]

    def inputs_read_by_backward(self) -> tuple[int, ...]:
        """Only the indices: the table may change in place before backward (an optimizer step)."""
        return (1,)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad = np.zeros(self.table_shape, dtype=grad_out.dtype)
        np.add.at(grad, self.indices, grad_out)
        return grad, None


class Cat(Function):
    """y = the inputs joined along ``axis`` (``np.concatenate``); all have the same dtype.

    VJP: dx_i = the slice of G that x_i filled: G split along ``axis`` at the inputs' offsets.
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        self.offsets = np.cumsum([array.shape[self.axis] for array in arrays])[:-1]
        return np.concatenate(arrays, axis=self.axis)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        pieces = np.split(grad_out, self.offsets, axis=self.axis)
        return tuple(piece if needed else None for piece, needed in zip(pieces, self.needs_input_grad))


class Stack(Function):
    """y = the inputs (all of one shape and dtype) stacked along a new axis ``axis``
    (``np.stack``): y[..., i, ...] = x_i.

    VJP: dx_i = G[..., i, ...], the i-th slice of G along the new axis.
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        return np.stack(arrays, axis=self.axis)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return tuple(
            np.take(grad_out, position, axis=self.axis) if needed else None
            for position, needed in enumerate(self.needs_input_grad)
        )


class Cast(Function):
    """y = x converted to ``dtype`` (float32 ↔ float64, ints/bools to a float, or anything to
    an int or bool type, truncating toward zero as numpy and PyTorch do).

    VJP: dx = G converted back to x's dtype (the values pass through unchanged, so the
    Jacobian is the identity; only the precision of G changes). A cast to an int or bool type
    has no gradient and is never recorded for backward (``Tensor.astype``).
    """

    saves_inputs = False
    saves_output = False

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out.astype(self.input_dtype),)
