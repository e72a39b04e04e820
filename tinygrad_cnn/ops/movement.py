"""Shape and movement ops: the same numbers in another arrangement; VJPs move G back."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tinygrad_cnn.function import Function, Gradients, unbroadcast

__all__ = ["Reshape", "Pad"]


def sides_text(padding: Sequence[Sequence[int]]) -> str:
    """((top, bottom), (left, right)) as '(bottom 1, right 1)', naming only the padded sides."""
    sides = zip(("top", "bottom", "left", "right"), tuple(padding[0]) + tuple(padding[1]))
    return "(" + ", ".join(f"{side} {size}" for side, size in sides if size) + ")"


class Reshape(Function):
    """y = x viewed with a new shape (same elements, row-major).   VJP: dx = G reshaped back."""

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
