"""Shape and movement ops: the same numbers in another arrangement; VJPs move G back."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tinygrad_cnn.function import Function, Gradients, unbroadcast

__all__ = ["Reshape", "Pad"]


class Reshape(Function):
    """y = x viewed with a new shape (same elements, row-major).   VJP: dx = G reshaped back."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out.reshape(self.input_shape),)


class Pad(Function):
    """y = x surrounded by zeros, ``widths`` = ((before, after), ...) per axis as in np.pad.

    VJP: dx = G with the padding sliced off (the zeros do not depend on x).
    """

    def __init__(self, widths: tuple[tuple[int, int], ...]):
        self.widths = widths

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
