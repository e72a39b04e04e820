"""Element-wise ops: numpy broadcasting forward, gradients summed back over broadcast axes."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tinygrad_cnn.function import Function, Gradients, unbroadcast

__all__ = ["Add", "Sub", "Mul", "Div", "Neg", "ReLU"]


class Add(Function):
    """y = a + b.   VJP: da = G, db = G (each summed back over broadcast axes)."""

    label = "Addition"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return unbroadcast(grad_out, self.a_shape), unbroadcast(grad_out, self.b_shape)


class Sub(Function):
    """y = a - b.   VJP: da = G, db = -G (summed back over broadcast axes)."""

    label = "Subtraction"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_b = unbroadcast(-grad_out, self.b_shape) if self.needs_input_grad[1] else None
        return unbroadcast(grad_out, self.a_shape), grad_b


class Mul(Function):
    """y = a * b.   VJP: da = G * b, db = G * a (summed back over broadcast axes)."""

    label = "Multiplication"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a * b

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_a = unbroadcast(grad_out * self.b, self.a.shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad_out * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """y = a / b.   VJP: da = G / b, db = -G a / b² (summed back over broadcast axes)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return a / b

    def describe(self) -> str:
        """'Division by 255.0' when the divisor is one number (the seed's first layer)."""
        return f"Division by {self.b.item()!r}" if self.b.size == 1 else "Division"

    def backward(self, grad_out: np.ndarray) -> Gradients:
        grad_a = unbroadcast(grad_out / self.b, self.a.shape) if self.needs_input_grad[0] else None
        grad_b = None
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(-grad_out * self.a / (self.b * self.b), self.b.shape)
        return grad_a, grad_b


class Neg(Function):
    """y = -x.   VJP: dx = -G."""

    label = "Negation"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (-grad_out,)


class ReLU(Function):
    """y = max(x, 0).   VJP: dx = G · [x > 0]  (0 at the kink x = 0, as in PyTorch)."""

    label = "ReLU"

    def forward(self, x: np.ndarray) -> np.ndarray:
        output = np.maximum(x, 0)
        self.output = output
        return output

    def backward(self, grad_out: np.ndarray) -> Gradients:
        return (grad_out * (self.output > 0),)
