"""Tensor: a numpy array that remembers the primitive op that produced it.

Each op applied to Tensors that need gradients records a ``Node`` (the op object and its
input Tensors). ``loss.backward()`` sorts the recorded graph topologically, without
recursion, and walks it once from the loss to the leaves, calling each op's hand-written
VJP (see ``ops/``) and adding the results into ``grad`` of the leaf tensors.
"""

from __future__ import annotations

import numbers
import time
from typing import Callable, Optional, Sequence, Union

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.function import Function, checked_gradients

ArrayLike = Union["Tensor", np.ndarray, numbers.Number, Sequence]

# ---------------------------------------------------------------------------
# Gradient recording switch
# ---------------------------------------------------------------------------

_recording = True


class no_grad:
    """Context manager (and decorator) under which no graph is recorded.

    >>> with no_grad():
    ...     logits = model(images)      # logits.requires_grad is False, nothing is saved
    """

    def __enter__(self) -> None:
        global _recording
        self.previous, _recording = _recording, False

    def __exit__(self, *exception_info: object) -> None:
        global _recording
        _recording = self.previous

    def __call__(self, function):  # use as a decorator
        def without_grad(*args, **kwargs):
            with no_grad():
                return function(*args, **kwargs)

        return without_grad


def is_grad_enabled() -> bool:
    return _recording


class train_mode:
    """Context manager (and decorator) that sets ``Tensor.training`` for a block, then
    restores the previous value. While it is True, dropout drops and batch norm normalizes
    with the batch's statistics (updating the running ones); ``Tensor.training = True`` sets
    it until changed.

    >>> with train_mode():
    ...     loss = model(images).cross_entropy(labels)
    >>> with train_mode(False):         # evaluate in the middle of a training block
    ...     logits = model(test_images)
    """

    def __init__(self, enabled: bool = True):
        self.enabled = bool(enabled)

    def __enter__(self) -> None:
        self.previous, Tensor.training = Tensor.training, self.enabled

    def __exit__(self, *exception_info: object) -> None:
        Tensor.training = self.previous

    def __call__(self, function):  # use as a decorator
        def in_train_mode(*args, **kwargs):
            with train_mode(self.enabled):
                return function(*args, **kwargs)

        return in_train_mode


# ---------------------------------------------------------------------------
# Observers (used by summary.py and profile.py; empty lists cost nothing)
# ---------------------------------------------------------------------------

#: called as hook(op, inputs, output, seconds) after every op's forward
forward_hooks: list[Callable[[Function, tuple["Tensor", ...], "Tensor", float], None]] = []
#: called as hook(op, seconds) after every op's VJP
backward_hooks: list[Callable[[Function, float], None]] = []


# ---------------------------------------------------------------------------
# Graph nodes
# ---------------------------------------------------------------------------


class GraphFreedError(RuntimeError):
    """A graph already freed by ``backward()`` was asked to be walked again."""


class Node:
    """One recorded op application: the op object (holding its saved arrays) and its inputs."""

    __slots__ = ("op", "inputs", "released")

    def __init__(self, op: Function, inputs: tuple["Tensor", ...]):
        self.op, self.inputs, self.released = op, inputs, False

    def release(self) -> None:
        """Free the saved arrays and the links to the inputs once the VJP has run."""
        self.op.release()
        self.op, self.inputs, self.released = None, (), True


_FLOAT_TYPES = (np.float32, np.float64)


def _as_array(data: object, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """Convert user data to the array a Tensor holds, or say why not.

    As in PyTorch: Python floats (and lists of them) become float32, Python ints int64 and
    bools bool; numpy arrays keep their dtype (no copy), except float16, which becomes
    float32. ``dtype`` converts explicitly. A Tensor that requires grad cannot hide inside
    a list: that would silently cut it out of the graph.
    """
    if isinstance(data, Tensor):
        data = data.data
    elif isinstance(data, (list, tuple)) and _holds_grad_tensor(data):
        raise TypeError(
            "Tensor(...) of a list holding tensors that require grad would detach them from the "
            "graph; use Tensor.stack(tensors) to keep the gradient"
        )
    from_python = not isinstance(data, (np.ndarray, np.generic))
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Tensor needs numeric data (bool, int or float); got an array of dtype {array.dtype}")
    if dtype is not None:
        return array.astype(np.dtype(dtype), copy=False)
    if from_python and array.dtype.kind == "f":
        return array.astype(np.float32)
    if from_python and array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def _holds_grad_tensor(items: Sequence) -> bool:
    return any(
        (isinstance(item, Tensor) and item.requires_grad)
        or (isinstance(item, (list, tuple)) and _holds_grad_tensor(item))
        for item in items
    )


def constant_like(value: object, reference: Optional["Tensor"]) -> "Tensor":
    """``value`` (a number or an array) as a constant Tensor; a Python number takes the
    dtype of ``reference`` (a tensor it is combined with), as in PyTorch."""
    if isinstance(value, Tensor):
        return value
    if reference is not None and isinstance(value, numbers.Number) and not isinstance(value, bool):
        if reference.dtype.kind == "f" or isinstance(value, numbers.Integral):
            return Tensor(value, dtype=reference.dtype)
    return Tensor(value)


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python floats become float32, Python
    ints int64, bools bool; numpy arrays keep their dtype (float16 becomes float32); ``dtype``
    converts. Only float32 and float64 tensors can require grad.
    """

    __slots__ = ("data", "grad", "requires_grad", "node", "__weakref__")
    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray + Tensor → Tensor

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype=None):
        self.data: np.ndarray = _as_array(data, dtype)
        self.grad: Optional[np.ndarray] = None
        if requires_grad and self.data.dtype.type not in _FLOAT_TYPES:
            raise TypeError(
                f"only float32 and float64 tensors can require grad; this one is {self.data.dtype} "
                "(integer and bool tensors hold labels, indices and masks)"
            )
        self.requires_grad: bool = bool(requires_grad)
        self.node: Optional[Node] = None

    @classmethod
    def _from_op(cls, op: Function, inputs: tuple["Tensor", ...]) -> "Tensor":
        """Run ``op`` forward on the inputs' data and record it if a gradient is needed."""
        needs = tuple(tensor.requires_grad for tensor in inputs) if _recording else ()
        op.needs_input_grad = needs if needs else (False,) * len(inputs)
        output = cls.__new__(cls)
        start = time.perf_counter() if forward_hooks else 0.0
        output.data = op.forward(*(tensor.data for tensor in inputs))
        output.grad = None
        output.requires_grad = any(needs)
        output.node = Node(op, inputs) if output.requires_grad else None
        if forward_hooks:
            seconds = time.perf_counter() - start
            for hook in forward_hooks:
                hook(op, inputs, output, seconds)
        return output

    # -- plain properties -------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self.node is None

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element; this one has shape {self.shape}")
        return self.data.item()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """np.asarray(tensor) shares the data; np.array(tensor) (copy=True) gets its own copy."""
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return array.copy() if copy and array is self.data else array

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def _one_element(self, conversion: str) -> np.ndarray:
        if self.data.size != 1:
            raise ValueError(f"{conversion} needs a tensor with one element; this one has shape {self.shape}")
        return self.data.reshape(())

    def __float__(self) -> float:
        return float(self._one_element("float(tensor)"))

    def __int__(self) -> int:
        return int(self._one_element("int(tensor)"))

    def __bool__(self) -> bool:
        return bool(self._one_element("bool(tensor) (e.g. `if tensor:`)"))

    def __format__(self, spec: str) -> str:
        """f"{loss:.3f}" formats a one-element tensor's value; other tensors need an empty spec."""
        if not spec:
            return repr(self)
        return format(self._one_element(f"format(tensor, {spec!r})").item(), spec)

    def __repr__(self) -> str:
        made_by = f", op={self.node.op.name}" if self.node is not None and not self.node.released else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}, dtype={self.dtype}{grad}{made_by})"

    def detach(self) -> "Tensor":
        """A new leaf sharing this tensor's data, outside any graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    # -- backward -----------------------------------------------------------------

    def backward(self, gradient: Optional[ArrayLike] = None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``self`` must be a scalar unless ``gradient`` (dLoss/dself, same shape) is given.
        The graph is freed as it is walked; calling backward through it again raises.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input had "
                "requires_grad=True, or it was computed under no_grad()"
            )
        if gradient is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() needs a scalar (one-element) tensor, got shape {self.shape}; "
                    "reduce it first (e.g. .sum() or .mean()) or pass gradient="
                )
            gradient = np.ones_like(self.data)
        else:
            gradient = _as_array(gradient, self.dtype)
            if gradient.shape != self.shape:
                raise ValueError(
                    f"backward() gradient has shape {gradient.shape}, but the tensor has shape {self.shape}"
                )

        grads: dict[int, np.ndarray] = {id(self): gradient}
        for tensor in reversed(self._topological_order()):
            grad = grads.pop(id(tensor), None)
            if grad is None:
                continue
            node = tensor.node
            if node is None:
                tensor._accumulate(grad)
                continue
            start = time.perf_counter() if backward_hooks else 0.0
            input_grads = checked_gradients(node.op, node.op.backward(grad), [parent.shape for parent in node.inputs])
            if backward_hooks:
                seconds = time.perf_counter() - start
                for hook in backward_hooks:
                    hook(node.op, seconds)
            for parent, parent_grad in zip(node.inputs, input_grads):
                if parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
            node.release()

    def _accumulate(self, grad: np.ndarray) -> None:
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.dtype)  # a private copy of the right shape
        else:
            self.grad += grad

    def _topological_order(self, all_inputs: bool = False) -> list["Tensor"]:
        """Tensors of the graph behind this one, every input before the tensors made from it:
        only those that need grad (for backward), or ``all_inputs`` (constants too, for drawing).

        Iterative depth-first post-order, so chains of any length work.
        """
        order: list[Tensor] = []
        expanded: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            tensor, inputs_done = stack.pop()
            if inputs_done:
                order.append(tensor)
                continue
            if id(tensor) in expanded:  # reached again through another path
                continue
            expanded.add(id(tensor))
            stack.append((tensor, True))
            node = tensor.node
            if node is None:
                continue
            if node.released:
                raise GraphFreedError(
                    "this graph was freed by backward(), which releases each op's saved arrays and "
                    "input links once its VJP has run: it cannot be walked a second time. "
                    "Recompute the forward pass first."
                )
            for parent in reversed(node.inputs):  # reversed: the first input is visited first
                if (all_inputs or parent.requires_grad) and id(parent) not in expanded:
                    stack.append((parent, False))
        return order

    # -- arithmetic -------------------------------------------------------------------

    def _operand(self, other: ArrayLike) -> "Tensor":
        """Wrap a number or array as a constant Tensor of this tensor's dtype."""
        return constant_like(other, self)

    def __add__(self, other: ArrayLike) -> "Tensor":
        left, right = _promoted(self, self._operand(other))
        _check_broadcast("+", left, right)
        return ops.Add.apply(left, right)

    def __radd__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__add__(self)

    def __sub__(self, other: ArrayLike) -> "Tensor":
        left, right = _promoted(self, self._operand(other))
        _check_broadcast("-", left, right)
        return ops.Sub.apply(left, right)

    def __rsub__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__sub__(self)

    def __mul__(self, other: ArrayLike) -> "Tensor":
        left, right = _promoted(self, self._operand(other))
        _check_broadcast("*", left, right)
        return ops.Mul.apply(left, right)

    def __rmul__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__mul__(self)

    def __truediv__(self, other: ArrayLike) -> "Tensor":
        left, right = _promoted(self, self._operand(other), true_division=True)
        _check_broadcast("/", left, right)
        return ops.Div.apply(left, right)

    def __rtruediv__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__truediv__(self)

    def __neg__(self) -> "Tensor":
        return ops.Neg.apply(self)

    def __matmul__(self, other: ArrayLike) -> "Tensor":
        return self.matmul(other)

    def __rmatmul__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).matmul(self)

    def matmul(self, other: ArrayLike) -> "Tensor":
        """Matrix product as ``np.matmul``; 1-D operands are treated as a row / a column."""
        other = self._operand(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul needs at least 1-D operands, got shapes {self.shape} and {other.shape}")
        if self.ndim == 1 and other.ndim == 1:  # the dot product: a scalar, as np.matmul gives
            return self.reshape(1, -1).matmul(other.reshape(-1, 1)).reshape(())
        if self.ndim == 1:
            return self.reshape(1, -1).matmul(other).reshape(*other.shape[:-2], other.shape[-1])
        if other.ndim == 1:
            return self.matmul(other.reshape(-1, 1)).reshape(*self.shape[:-1])
        if self.shape[-1] != other.shape[-2]:
            raise ValueError(
                f"matmul shape mismatch: {self.shape} @ {other.shape} "
                f"(inner sizes {self.shape[-1]} and {other.shape[-2]} differ)"
            )
        _check_broadcast("@", Tensor(np.empty(self.shape[:-2])), Tensor(np.empty(other.shape[:-2])))
        return ops.MatMul.apply(self, other)

    # -- reductions and shape -------------------------------------------------------

    def sum(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False) -> "Tensor":
        _check_axes("sum", axis, self.ndim)
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False) -> "Tensor":
        _check_axes("mean", axis, self.ndim)
        return ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: int | Sequence[int]) -> "Tensor":
        """Same elements in a new shape; one axis may be -1 (inferred)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        resolved = _resolve_shape(tuple(int(size) for size in shape), self.shape)
        if resolved == self.shape:
            return self
        return ops.Reshape.apply(self, shape=resolved)

    def flatten(self, start_dim: int = 1) -> "Tensor":
        """Merge the axes from ``start_dim`` on into one (default keeps the batch axis)."""
        start = start_dim % self.ndim if self.ndim else 0
        return self.reshape(*self.shape[:start], -1)

    def pad(self, pad_width: int | Sequence) -> "Tensor":
        """Zero padding, numpy-style: ((before, after), ...) per axis, or one int for all sides."""
        return ops.Pad.apply(self, widths=_normalize_pad_width(pad_width, self.shape))

    # -- neural-network ops -----------------------------------------------------------

    def relu(self) -> "Tensor":
        return ops.ReLU.apply(self)

    def softmax(self, axis: int = -1) -> "Tensor":
        _check_axes("softmax", axis, self.ndim)
        return ops.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> "Tensor":
        _check_axes("log_softmax", axis, self.ndim)
        return ops.LogSoftmax.apply(self, axis=axis)

    def conv2d(self, weight: "Tensor", stride: int | tuple[int, int] = 1,
               padding: int | tuple[int, int] = 0) -> "Tensor":
        """2-D cross-correlation: self (N,C,H,W), weight (O,C,kh,kw) → (N,O,Ho,Wo)."""
        weight = self._operand(weight)
        stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
        _check_conv2d(self.shape, weight.shape, stride, padding)
        return ops.Conv2d.apply(self, weight, stride=stride, padding=padding)

    def conv2d_bias(self, weight: "Tensor", bias: "Tensor", stride: int | tuple[int, int] = 1,
                    padding: int | tuple[int, int] = 0, relu: bool = False) -> "Tensor":
        """``self.conv2d(weight, stride, padding) + bias`` (then ``.relu()`` if ``relu``) as one
        fused op; ``bias`` broadcasts against (O,Ho,Wo), e.g. the seed's per-position bias."""
        weight, bias = self._operand(weight), self._operand(bias)
        stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
        _check_conv2d(self.shape, weight.shape, stride, padding)
        out_shape = (weight.shape[0],) + tuple(
            (size + 2 * pad - kernel) // step + 1
            for size, pad, kernel, step in zip(self.shape[2:], padding, weight.shape[2:], stride)
        )
        try:
            fits = np.broadcast_shapes(bias.shape, out_shape) == out_shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"conv2d_bias: bias of shape {bias.shape} does not broadcast to the output's (O,Ho,Wo) = {out_shape}")
        return ops.Conv2dBias.apply(self, weight, bias, stride=stride, padding=padding, relu=relu)

    def pad_max_pool2d(self, padding: Sequence[Sequence[int]], kernel_size: int | tuple[int, int],
                       stride: Optional[int | tuple[int, int]] = None, relu: bool = False) -> "Tensor":
        """``self.pad(((0, 0), (0, 0), top_bottom, left_right)).max_pool2d(kernel_size, stride)``
        (then ``.relu()`` if ``relu``) as one fused op; ``padding`` = ((top, bottom), (left, right))."""
        if self.ndim != 4:
            raise ValueError(f"pad_max_pool2d input must be 4-D (N,C,H,W), got shape {self.shape}")
        widths = _normalize_pad_width(((0, 0), (0, 0)) + tuple(tuple(pair) for pair in padding), self.shape)
        kernel = _pair("kernel_size", kernel_size, 1)
        stride = kernel if stride is None else _pair("stride", stride, 1)
        padded_shape = tuple(size + before + after for size, (before, after) in zip(self.shape, widths))
        _check_pool2d(padded_shape, kernel, stride)
        return ops.PaddedMaxPool2d.apply(self, kernel_size=kernel, stride=stride, padding=widths[2:], relu=relu)

    def max_pool2d(self, kernel_size: int | tuple[int, int],
                   stride: Optional[int | tuple[int, int]] = None) -> "Tensor":
        """Max over kh×kw windows of (N,C,H,W), moved by ``stride`` (default: the kernel size)."""
        kernel = _pair("kernel_size", kernel_size, 1)
        stride = kernel if stride is None else _pair("stride", stride, 1)
        _check_pool2d(self.shape, kernel, stride)
        return ops.MaxPool2d.apply(self, kernel_size=kernel, stride=stride)

    def cross_entropy(self, labels: ArrayLike) -> "Tensor":
        """Mean softmax cross-entropy of logits (N,K) against integer class labels (N,)."""
        labels = _check_labels(self.shape, labels)
        return ops.CrossEntropy.apply(self, labels=labels)

    # -- training-time ops ------------------------------------------------------------

    #: True while training (see ``train_mode``): dropout drops, batch norm uses batch statistics
    training: bool = False

    def dropout(self, p: float = 0.5) -> "Tensor":
        """Inverted dropout while ``Tensor.training``: each element is zeroed with probability
        ``p`` and the kept ones are scaled by 1/(1 − p), so the expectation is unchanged. The
        mask comes from ``tinygrad_cnn.random.generator()`` (``manual_seed`` repeats it).
        Outside training, and for p = 0, it returns ``self`` (no op is recorded)."""
        _check_dropout(p, self.dtype)
        if not Tensor.training or p == 0:
            return self
        return ops.Dropout.apply(self, p=float(p))

    def batch_norm(self, weight: Optional[ArrayLike] = None, bias: Optional[ArrayLike] = None,
                   running_mean: Optional[np.ndarray] = None, running_var: Optional[np.ndarray] = None,
                   training: Optional[bool] = None, momentum: float = 0.1, eps: float = 1e-5) -> "Tensor":
        """Batch normalization per channel (axis 1) of an (N,C), (N,C,H,W) or (N,C,…) input:
        y = (x − mean) / sqrt(var + eps) · weight + bias, weight and bias of shape (C,)
        (None: ones and zeros).

        ``training`` (None: ``Tensor.training``) normalizes with the batch's mean and biased
        variance, and updates ``running_mean`` and ``running_var`` (float numpy arrays of
        shape (C,), if given) in place: running ← (1 − momentum) · running + momentum · batch
        statistic, with the unbiased variance, as PyTorch does. Otherwise the running
        statistics normalize; without them the batch statistics are always used.
        """
        training = Tensor.training if training is None else bool(training)
        _check_batch_norm(self.shape, self.dtype, weight, bias, running_mean, running_var, training, momentum, eps)
        channels = self.shape[1]
        weight = Tensor(np.ones(channels, dtype=self.dtype)) if weight is None else self._operand(weight)
        bias = Tensor(np.zeros(channels, dtype=self.dtype)) if bias is None else self._operand(bias)
        return ops.BatchNorm.apply(self, weight, bias, eps=float(eps), momentum=float(momentum),
                                   batch_statistics=training or running_mean is None,
                                   running_mean=running_mean, running_var=running_var)


# ---------------------------------------------------------------------------
# Argument checks: clear errors at the public API instead of deep numpy tracebacks
# ---------------------------------------------------------------------------


def _resolve_shape(shape: tuple[int, ...], original: tuple[int, ...]) -> tuple[int, ...]:
    """Replace a single -1 in ``shape`` by the size that keeps the element count."""
    size = int(np.prod(original, dtype=np.int64))
    unknown = [axis for axis, length in enumerate(shape) if length == -1]
    known = int(np.prod([length for length in shape if length != -1], dtype=np.int64))
    problem = len(unknown) > 1 or any(length < -1 for length in shape)
    if not problem and unknown:
        problem = known == 0 or size % known != 0
        if not problem:
            shape = shape[: unknown[0]] + (size // known,) + shape[unknown[0] + 1 :]
    if problem or int(np.prod(shape, dtype=np.int64)) != size:
        raise ValueError(f"cannot reshape a tensor of shape {original} ({size} elements) into {shape}")
    return shape


def _promoted(a: Tensor, b: Tensor, true_division: bool = False) -> tuple[Tensor, Tensor]:
    """PyTorch's promotion for a binary op: an integer or bool operand mixed with a float
    one takes the float's dtype (numpy would make int64 + float32 float64); two integer
    operands stay integer, except under true division, which gives float32. Float32 mixed
    with float64 is left to numpy (float64; the VJP casts back when it accumulates)."""
    a_float, b_float = a.dtype.kind == "f", b.dtype.kind == "f"
    if a_float and not b_float:
        return a, Tensor(b.data.astype(a.dtype))
    if b_float and not a_float:
        return Tensor(a.data.astype(b.dtype)), b
    if true_division and not a_float:
        return Tensor(a.data.astype(np.float32)), Tensor(b.data.astype(np.float32))
    return a, b


def _check_broadcast(symbol: str, a: Tensor, b: Tensor) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"shapes {a.shape} and {b.shape} cannot be broadcast together for '{symbol}'"
        ) from None


def _check_axes(name: str, axis: Optional[int | Sequence[int]], ndim: int) -> None:
    if axis is None:
        return
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len({int(a) % max(ndim, 1) for a in axes if isinstance(a, (int, np.integer))}) != len(axes):
        raise ValueError(f"{name}: axis {axis} names the same axis twice")
    for single in axes:
        if not isinstance(single, (int, np.integer)) or not -ndim <= single < max(ndim, 1):
            raise ValueError(f"{name}: axis {single} is out of range for a tensor with {ndim} dimensions")


def _pair(name: str, value: int | Sequence[int], minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        pair: tuple = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _normalize_pad_width(pad_width: int | Sequence, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """np.pad's rules: one int for every side, one (before, after) pair for every axis, or a
    pair per axis; returned as a pair per axis."""
    try:
        array = np.asarray(pad_width)
        widths = np.broadcast_to(array, (len(shape), 2)) if array.dtype.kind in "iu" else None
    except ValueError:
        raise ValueError(
            f"pad widths {pad_width!r} must be an int, a (before, after) pair, or one pair per axis "
            f"of the tensor's {len(shape)} axes (shape {shape})"
        ) from None
    if widths is None or np.any(widths < 0):
        raise ValueError(f"pad widths must be non-negative integers, got {pad_width!r}")
    return tuple((int(before), int(after)) for before, after in widths)


def _check_conv2d(x_shape: tuple[int, ...], weight_shape: tuple[int, ...],
                  stride: tuple[int, int], padding: tuple[int, int]) -> None:
    if len(x_shape) != 4:
        raise ValueError(f"conv2d input must be 4-D (N,C,H,W), got shape {x_shape}")
    if len(weight_shape) != 4:
        raise ValueError(f"conv2d weight must be 4-D (O,C,kh,kw), got shape {weight_shape}")
    if x_shape[1] != weight_shape[1]:
        raise ValueError(
            f"conv2d channel mismatch: input {x_shape} has {x_shape[1]} channels, "
            f"weight {weight_shape} expects {weight_shape[1]}"
        )
    padded = (x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])
    if weight_shape[2] > padded[0] or weight_shape[3] > padded[1] or min(weight_shape[2:]) < 1:
        raise ValueError(
            f"conv2d kernel {weight_shape[2]}x{weight_shape[3]} does not fit the padded input "
            f"{padded[0]}x{padded[1]} (input {x_shape}, padding {padding})"
        )


def _check_pool2d(x_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int]) -> None:
    if len(x_shape) != 4:
        raise ValueError(f"max_pool2d input must be 4-D (N,C,H,W), got shape {x_shape}")
    if kernel[0] > x_shape[2] or kernel[1] > x_shape[3]:
        raise ValueError(
            f"max_pool2d kernel {kernel[0]}x{kernel[1]} is larger than the input {x_shape[2]}x{x_shape[3]}"
        )


def _check_labels(logits_shape: tuple[int, ...], labels: ArrayLike) -> np.ndarray:
    if len(logits_shape) != 2:
        raise ValueError(f"cross_entropy needs 2-D logits (N,K), got shape {logits_shape}")
    if isinstance(labels, Tensor):
        labels = labels.data
    labels = np.asarray(labels)
    if labels.dtype.kind == "f" and np.all(np.mod(labels, 1) == 0):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (logits_shape[0],):
        raise ValueError(
            f"cross_entropy needs one label per row of logits {logits_shape}: "
            f"expected labels of shape ({logits_shape[0]},), got {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= logits_shape[1]):
        bad = labels[(labels < 0) | (labels >= logits_shape[1])][0]
        raise ValueError(
            f"cross_entropy label {bad} is out of range for {logits_shape[1]} classes (0..{logits_shape[1] - 1})"
        )
    return labels.astype(np.intp, copy=False)


def _check_dropout(p: float, dtype: np.dtype) -> None:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability p must be a number in [0, 1], got {p!r}")
    if dtype.kind != "f":
        raise TypeError(f"dropout needs a float tensor, got dtype {dtype}")


def _check_batch_norm(shape: tuple[int, ...], dtype: np.dtype, weight, bias, running_mean, running_var,
                      training: bool, momentum: float, eps: float) -> None:
    if len(shape) < 2:
        raise ValueError(f"batch_norm input must have a batch and a channel axis (N,C,…), got shape {shape}")
    if dtype.kind != "f":
        raise TypeError(f"batch_norm needs a float tensor, got dtype {dtype}")
    channels = shape[1]
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and np.shape(value) != (channels,):
            raise ValueError(f"batch_norm {name} must have shape ({channels},) for input {shape}, got {np.shape(value)}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm needs both running_mean and running_var, or neither")
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        if value is not None and (not isinstance(value, np.ndarray) or value.dtype.kind != "f"
                                  or value.shape != (channels,)):
            raise ValueError(
                f"batch_norm {name} must be a float numpy array of shape ({channels},) (it is updated "
                f"in place), got {type(value).__name__} of shape {np.shape(value)}"
            )
    if not 0 <= momentum <= 1:
        raise ValueError(f"batch_norm momentum must lie in [0, 1], got {momentum}")
    if not eps > 0:
        raise ValueError(f"batch_norm eps must be positive, got {eps}")
    if training and int(np.prod(shape[:1] + shape[2:])) <= 1:
        raise ValueError(f"batch_norm in training needs more than one value per channel, got input shape {shape}")
