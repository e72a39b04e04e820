"""Function: the op protocol, and ``apply``, the one way an op enters the graph.

Every primitive op (``tinygrad_cnn.ops``) and every op a user writes is a subclass:

* ``__init__(**options)`` takes the op's options (an axis, a stride, ...);
* ``forward(*arrays)`` computes the output with numpy and keeps in ``self`` what the VJP needs
  (``saves_inputs`` / ``saves_output`` say whether that includes the input or output arrays);
* ``backward(grad_out)`` receives G = dLoss/dOutput and returns dLoss/dInput for every
  input, in order: a tuple with one array (of that input's shape) or ``None`` per input;
  an op with one input may return the bare array.

``MyOp.apply(*inputs, **options)`` builds ``MyOp(**options)``, wraps numbers and arrays
among the inputs as constant Tensors, runs ``forward`` and records the op in the graph when
an input requires a gradient. ``Tensor.backward`` calls ``backward`` exactly once and checks
what it returns (count and shapes), naming the op and the input when something is off.

    class Swish(Function):
        '''y = x · sigmoid(x).   VJP: dx = G · (s + x · s · (1 − s)), s = sigmoid(x).'''
        def forward(self, x):
            self.x, self.s = x, 1 / (1 + np.exp(-x))
            return x * self.s
        def backward(self, grad_out):
            return grad_out * (self.s + self.x * self.s * (1 - self.s))

    y = Swish.apply(x)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

if TYPE_CHECKING:  # tensor.py imports the ops, which import this module: no runtime cycle
    from tinygrad_cnn.tensor import Tensor

Gradients = Union[np.ndarray, Sequence[Optional[np.ndarray]]]

#: the module tinygrad_cnn.tensor, set by it as it loads: it imports this module, so this one
#: does not import it back (imports run one way); ``apply`` reads Tensor from here (an import
#: statement in ``apply`` cost 0.9 µs on every op)
tensor_module: Any = None


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes numpy broadcasting stretched, so it has ``shape``.

    If y = broadcast(x), every element of x fed many elements of y, so dL/dx is the sum
    of dL/dy over the broadcast axes (the leading new ones and the ones where x had 1).
    """
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    stretched = tuple(
        leading + axis
        for axis, size in enumerate(shape)
        if size == 1 and grad.shape[leading + axis] != 1
    )
    summed = grad.sum(axis=tuple(range(leading)) + stretched, keepdims=True)
    return summed.reshape(shape)


class Function:
    """Base class of every op; see the module docstring for the protocol."""

    #: which inputs want a gradient; set by the tensor core before ``forward``.
    needs_input_grad: tuple[bool, ...] = ()
    #: the op's name in the words of the seed documents (summary table, graph picture)
    label: str = ""
    #: whether ``backward`` reads input arrays that ``forward`` kept (by reference, as numpy
    #: passes them) or ``forward``'s output array: an in-place change to such an input or to the
    #: output between forward and backward makes ``backward()`` raise, as PyTorch's check of
    #: its saved tensors. An op that keeps only shapes, masks or fresh copies says False, and
    #: such a change is then harmless; an op of your own keeps the safe default, True.
    saves_inputs: bool = True
    saves_output: bool = True

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> "Tensor":
        """Run ``cls(**options)`` forward on ``inputs`` and record it in the graph.

        Tensors are used as they are; numbers and arrays become constants (a Python number
        takes the dtype of the first floating-point Tensor input, as in arithmetic). A keyword
        option is a constant: a Tensor that requires grad is refused there (TypeError), as it
        would silently get no gradient.
        """
        Tensor, constant_like = tensor_module.Tensor, tensor_module.constant_like

        if options:
            for option, value in options.items():
                if isinstance(value, Tensor) and value.requires_grad:
                    raise TypeError(
                        f"{cls.__name__}.apply got the Tensor option {option}= that requires grad: an option is "
                        "a constant, so it would get no gradient; pass tensors positionally, as inputs"
                    )
        for x in inputs:  # (all Tensors, the usual case: nothing to wrap, no new tuple)
            if not isinstance(x, Tensor):
                reference = next((x for x in inputs if isinstance(x, Tensor) and x.dtype.kind == "f"), None)
                inputs = tuple(x if isinstance(x, Tensor) else constant_like(x, reference) for x in inputs)
                break
        return Tensor._from_op(cls(**options), inputs)

    def forward(self, *inputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no forward()")

    def backward(self, grad_out: np.ndarray) -> Gradients:
        raise NotImplementedError(f"{self.name} has no backward()")

    def inputs_read_by_backward(self) -> Sequence[int]:
        """The positions of the inputs whose arrays ``backward`` will read: every input if
        ``saves_inputs``, else none. An op whose VJP reads only some of them, depending on
        which inputs need a gradient, narrows this (Mul: a's gradient reads only b), so an
        in-place change to an input it will not read is harmless, as in PyTorch."""
        return range(len(self.needs_input_grad)) if self.saves_inputs else ()

    def macs(self, input_shapes: Sequence[tuple[int, ...]], output_shape: tuple[int, ...]) -> int:
        """Multiply-accumulates done by this op's forward (0 for ops that do none)."""
        return 0

    def describe(self) -> str:
        """What the layer table and the graph picture call this op, with its geometry."""
        return self.label or self.name

    def release(self) -> None:
        """Drop every array saved for backward (called once the VJP has run)."""
        self.__dict__.clear()

    @property
    def name(self) -> str:
        return type(self).__name__


def checked_gradients(op: Function, gradients: Gradients,
                      input_shapes: Sequence[Optional[tuple[int, ...]]]) -> Sequence[Optional[np.ndarray]]:
    """``op.backward``'s result as one entry per input, each a numpy array (a list or a number
    is converted), or a ValueError (count, shape) or TypeError (dtype) naming what is off.

    ``input_shapes`` holds None for an input that needs no gradient: whatever is returned
    for it is ignored, so it is not checked. (An integer or bool gradient is accepted here;
    the engine converts it to its input's dtype before adding it: see ``_run_vjp``.)"""
    if isinstance(gradients, (np.ndarray, np.generic)) and len(input_shapes) == 1:
        gradients = (gradients,)
    if not isinstance(gradients, (tuple, list)) or len(gradients) != len(input_shapes):
        from tinygrad_cnn.tensor import Tensor  # (here, not at the top: tensor.py imports this module)

        if isinstance(gradients, Tensor):
            raise TypeError(f"{op.name}.backward returned a Tensor; a VJP works on numpy arrays: "
                            "return its .data (or compute the gradient with numpy)")
        count = len(gradients) if isinstance(gradients, (tuple, list)) else type(gradients).__name__
        raise ValueError(
            f"{op.name}.backward must return one gradient (or None) per input: "
            f"{len(input_shapes)} input(s), got {count}"
        )
    for position, (gradient, shape) in enumerate(zip(gradients, input_shapes)):
        if gradient is None or shape is None:
            continue
        if not isinstance(gradient, np.ndarray):  # a list or a number: as an array, so that + adds
            from tinygrad_cnn.tensor import Tensor

            if isinstance(gradient, Tensor):  # (np.asarray would take it: refused as a bare one is)
                raise TypeError(f"{op.name}.backward returned a Tensor as the gradient for input {position}; "
                                "a VJP works on numpy arrays: return its .data (or compute the gradient with numpy)")
            try:
                gradient = np.asarray(gradient)
            except ValueError as error:  # a ragged list
                raise ValueError(f"{op.name}.backward returned a gradient for input {position} "
                                 f"that is not an array: {error}") from None
            gradients = list(gradients)
            gradients[position] = gradient
        if gradient.dtype.kind not in "biuf":
            raise TypeError(
                f"{op.name}.backward returned a gradient of dtype {gradient.dtype} for input {position}: "
                "a gradient must be a real number array (int or float)"
            )
        if gradient.shape != shape:
            raise ValueError(
                f"{op.name}.backward returned a gradient of shape {gradient.shape} for input "
                f"{position}, which has shape {shape}"
            )
    return gradients
