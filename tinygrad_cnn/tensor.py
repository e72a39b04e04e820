"""Tensor: a numpy array that remembers the primitive op that produced it.

Each op applied to Tensors that need gradients records a ``Node`` (the op object and its
input Tensors). ``loss.backward()`` sorts the recorded graph topologically, without
recursion, and walks it once from the loss to the leaves, calling each op's hand-written
VJP (see ``ops/``) and adding the results into ``grad`` of the leaf tensors.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys
import threading
import time
import weakref
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from tinygrad_cnn import function as function_module
from tinygrad_cnn import ops, random
from tinygrad_cnn.checks import (  # argument checks: clear errors before any work
    FLOAT_TYPES,
    bias_widens_product,
    check_assigned_grad,
    check_axes,
    check_batch_norm,
    check_broadcast,
    check_conv2d,
    check_dropout,
    check_eps,
    check_flag,
    check_index_axis,
    check_is_number,
    check_keepdims,
    check_not_bool,
    check_pool2d,
    check_reducible,
    dimension_argument,
    dtype_argument,
    in_place_refusal,
    int_pair,
    integer_clip_bounds,
    integers_argument,
    is_int,
    normalize_pad_width,
    normalized_shape_argument,
    pool_geometry,
    pool_padding,
    resolve_shape,
    shape_argument,
)
from tinygrad_cnn.function import Function, checked_gradients

ArrayLike = Union["Tensor", np.ndarray, numbers.Number, Sequence]

# ---------------------------------------------------------------------------
# Gradient recording switch
# ---------------------------------------------------------------------------


class _GradMode(threading.local):
    """Whether ops are recorded, one switch per thread, as PyTorch's grad mode: a ``no_grad``
    block in one thread does not stop recording in another. ``recording`` is a class attribute,
    so every thread starts with recording on (as in PyTorch) until it sets its own. (Read for
    every op: an attribute of a ``threading.local`` costs about 20 ns more than a module global.)"""

    recording: bool = True


_grad_mode = _GradMode()


class no_grad:
    """Context manager (and decorator) under which no graph is recorded, in this thread.

    >>> with no_grad():
    ...     logits = model(images)      # logits.requires_grad is False, nothing is saved
    """

    recording = False  # what the block sets

    def __enter__(self) -> None:
        self.previous, _grad_mode.recording = _grad_mode.recording, self.recording

    def __exit__(self, *exception_info: object) -> None:
        _grad_mode.recording = self.previous

    def __call__(self, function):  # use as a decorator: a fresh block for each call
        @functools.wraps(function)
        def in_block(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)

        return in_block


class enable_grad(no_grad):
    """Context manager (and decorator) that records the graph again inside a ``no_grad``
    block (PyTorch's ``torch.enable_grad``), then restores the previous mode.

    >>> with no_grad():
    ...     with enable_grad():
    ...         loss = model(images).cross_entropy(labels)   # recorded: loss.backward() works
    """

    recording = True


class set_grad_enabled:
    """Turn recording on or off in this thread, as PyTorch's ``torch.set_grad_enabled(mode)``:
    called on its own it sets the mode from then on; used as a context manager it sets the mode
    for the block and restores the previous one after it (one loop for training and evaluation).

    >>> with set_grad_enabled(training):
    ...     loss = model(images).cross_entropy(labels)
    >>> set_grad_enabled(False)          # from here on, nothing is recorded (in this thread)
    """

    def __init__(self, mode: bool):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled(mode): mode must be True or False, got {mode!r}")
        self.previous, _grad_mode.recording = _grad_mode.recording, bool(mode)

    def __enter__(self) -> None:
        pass  # (the mode was set when the object was made)

    def __exit__(self, *exception_info: object) -> None:
        _grad_mode.recording = self.previous


def is_grad_enabled() -> bool:
    """Whether operations are recorded now in this thread (False inside ``no_grad``, as PyTorch's)."""
    return _grad_mode.recording


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
        @functools.wraps(function)
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
    """One recorded op application: the op object (holding its saved arrays), its inputs, and
    the inputs' versions then (each in-place update of a tensor adds 1 to its ``version``)."""

    __slots__ = ("op", "inputs", "versions", "released")

    def __init__(self, op: Function, inputs: tuple["Tensor", ...]):
        self.op, self.inputs, self.released = op, inputs, False
        self.versions = [tensor.version for tensor in inputs]

    def check_unmodified(self, output: "Tensor") -> None:
        """Raise if the output or an input whose array the op's VJP will read
        (``Function.saves_output``, ``inputs_read_by_backward``) was changed in place after
        the op ran: the VJP would silently use the new values (PyTorch raises here too; a
        change the VJP cannot see is harmless)."""
        op = self.op
        if ((not output.version or not op.saves_output)
                and (not op.saves_inputs or [tensor.version for tensor in self.inputs] == self.versions)):
            return
        changed = [position for position in op.inputs_read_by_backward()
                   if self.inputs[position].version != self.versions[position]]
        if changed or (output.version and op.saves_output):
            what = f"input {changed[0]} (shape {self.inputs[changed[0]].shape})" if changed else "the output"
            raise RuntimeError(
                f"{what} of {self.op.name} was modified by an in-place operation after {self.op.name} "
                "used it, and its VJP needs the old values. Update tensors in place only after "
                "backward(), or write x = x + y to make a new tensor."
            )

    def release(self) -> None:
        """Free the saved arrays and the links to the inputs once the VJP has run."""
        self.op.release()
        self.op, self.inputs, self.versions, self.released = None, (), [], True


def _as_array(data: object, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """Convert user data to the array a Tensor holds, or say why not.

    As in PyTorch: Python floats (and lists of them) become float32, Python ints int64 and
    bools bool; numpy arrays keep their dtype (no copy), except float16, which becomes
    float32; a list of numpy scalars or tensors takes their dtype (``_inferred_dtype``).
    ``dtype`` converts explicitly, to a dtype a Tensor can hold (bool, an integer type,
    float32 or float64, as ``Tensor.zeros`` and ``astype`` take): any other, float16
    included, is a TypeError rather than silently another dtype. A Tensor that requires grad
    cannot hide inside a list: that would silently cut it out of the graph.
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
    if from_python and dtype is None and array.dtype.kind in "biufO":
        array = array.astype(_inferred_dtype(data, array), copy=False)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Tensor needs numeric data (bool, int or float); got an array of dtype {array.dtype}")
    if dtype is not None:
        return array.astype(dtype_argument("Tensor", dtype), copy=False)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return array


def _inferred_dtype(data: object, array: np.ndarray) -> np.dtype:
    """The dtype PyTorch gives a Tensor of Python data (numbers, nested lists of them and of
    numpy scalars, arrays or tensors) that numpy read as ``array``: floats float32 unless a
    float64 (a numpy scalar or array, or a tensor) is among them; ints int64 unless all are
    typed (numpy ints, arrays, tensors: numpy's promotion, as PyTorch's). A Python int beyond
    int64 among ints only is an OverflowError (numpy would wrap it, or make the data uint64).
    (The element types are collected a whole list at a time: a loop per element was 20x
    slower than numpy's own reading.)"""
    typed: set[np.dtype] = set()
    python_floats = python_ints = False
    sequences = [data]
    while sequences:
        sequence = sequences.pop()
        if not isinstance(sequence, (list, tuple)):
            sequence = (sequence,)
        types = set(map(type, sequence))
        python_floats |= float in types
        python_ints |= int in types
        for kind in types:
            if issubclass(kind, (list, tuple)):
                sequences.extend(item for item in sequence if type(item) is kind)
            elif issubclass(kind, (Tensor, np.ndarray, np.generic)):
                typed.update(item.dtype for item in sequence if type(item) is kind)
    if array.dtype.kind in "uO" or (array.dtype.kind == "f" and array.size and np.abs(array).max() >= 2.0**63):
        too_big = next((item for item in _python_ints(data) if not -(2**63) <= item < 2**63), None)
        if too_big is not None and not python_floats and all(kind.kind != "f" for kind in typed):
            raise OverflowError(
                f"Tensor: the Python int {too_big} does not fit in int64, the dtype of a Tensor of Python ints "
                "(as in PyTorch); pass it as a float, or give dtype="
            )
    if array.dtype.kind == "f":
        return np.dtype(np.float64) if np.dtype(np.float64) in typed else np.dtype(np.float32)
    if array.dtype.kind in "iu" and (python_ints or not typed):
        return np.dtype(np.int64)
    return array.dtype


def _python_ints(data: object) -> Iterator[int]:
    """The Python ints in ``data`` (nested lists and tuples)."""
    items = [data]
    while items:
        item = items.pop()
        if isinstance(item, (list, tuple)):
            items.extend(item)
        elif type(item) is int:
            yield item


def _not_an_array(op: Function, returned: object) -> str:
    """Why the output of ``op.forward`` cannot become a Tensor (the TypeError's message)."""
    hint = " (return its .data, or compute with numpy)" if isinstance(returned, Tensor) else \
        " (wrap a scalar result in np.asarray)" if isinstance(returned, numbers.Number) else ""
    return (f"{op.name}.forward must return a numpy array, got {type(returned).__name__} "
            f"{returned!r:.80}{hint}")


def _holds_grad_tensor(items: Sequence) -> bool:
    if not any(issubclass(kind, (Tensor, list, tuple)) for kind in set(map(type, items))):
        return False  # (numbers only: a look at each element's type is 10x faster than a generator)
    return any(
        (isinstance(item, Tensor) and item.requires_grad)
        or (isinstance(item, (list, tuple)) and _holds_grad_tensor(item))
        for item in items
    )


def _run_vjp(tensor: "Tensor", grad: np.ndarray, grads: dict[int, np.ndarray]) -> None:
    """One step of ``backward``: the VJP of the op that made ``tensor``, given dLoss/d``tensor``
    = ``grad``; each input's gradient is added into ``grads`` (keyed by id), the node freed.
    (A function of its own so that no variable of the loop still holds a gradient when a
    leaf takes it over: see Tensor._accumulate.)"""
    node = tensor.node
    node.check_unmodified(tensor)
    op, inputs = node.op, node.inputs
    if backward_hooks:
        start = time.perf_counter()
    input_grads = op.backward(grad)
    if backward_hooks:
        seconds = time.perf_counter() - start
        for hook in backward_hooks:
            hook(op, seconds)
    if type(input_grads) is np.ndarray and len(inputs) == 1:
        input_grads = (input_grads,)
    if not _usual_gradients(input_grads, inputs):  # anything else is checked (and converted, or refused) at length
        input_grads = checked_gradients(op, input_grads, [parent.shape if parent.requires_grad else None
                                                          for parent in inputs])
    for parent, parent_grad in zip(inputs, input_grads):
        if parent_grad is None or not parent.requires_grad:
            continue
        if parent_grad.dtype.kind != "f":
            # an int or bool gradient (from a Function of your own) takes its input's dtype, as
            # PyTorch converts a gradient: gradients arriving along two paths are added with +,
            # which for bool is a logical or (True + True is True) and for int8 wraps around
            parent_grad = parent_grad.astype(parent.dtype)
        key = id(parent)
        grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
    node.release()


def _usual_gradients(gradients: object, inputs: tuple["Tensor", ...]) -> bool:
    """Whether ``gradients`` is what a VJP usually returns: a tuple with one float array of its
    input's shape (or None) per input that requires grad. (The quick test before the full
    check, ``checked_gradients``, which runs only for anything else: on a chain of relu and mul
    ops 16.1 → 14.9 µs an op, forward and backward.)"""
    if type(gradients) is not tuple or len(gradients) != len(inputs):
        return False
    for gradient, parent in zip(gradients, inputs):
        if gradient is not None and parent.requires_grad and (
                type(gradient) is not np.ndarray or gradient.dtype.kind != "f" or gradient.shape != parent.data.shape):
            return False
    return True


def _join_memory_family(tensor: "Tensor", relative: "Tensor") -> None:
    """Record that ``tensor``'s array shares memory with ``relative``'s (a view, detach()):
    both, and every tensor already sharing with ``relative``, then count in-place updates
    together, as a PyTorch view shares its base's version counter."""
    family = relative.memory_family
    if family is None:
        family = relative.memory_family = weakref.WeakSet((relative,))
    for member in list(tensor.memory_family or (tensor,)):  # (one in another family brings it along)
        if member.memory_family is not family:  # never add a member twice: the WeakSet would
            family.add(member)                  # compare the two with ==, which for tensors is an op
            member.memory_family = family


#: The views made under no_grad() of a tensor that requires grad, and the views made later of
#: those, by id (an entry goes with its tensor). Changing one in place outside no_grad() is
#: refused, as in PyTorch: should the change be recorded? (``Tensor._update_in_place``). A
#: ``detach()`` of such a tensor is not a view: changing it is allowed, as in PyTorch.
_views_made_under_no_grad: weakref.WeakValueDictionary[int, "Tensor"] = weakref.WeakValueDictionary()


def _note_view(view: "Tensor", base: "Tensor") -> None:
    """Record that the op's output ``view`` shares the memory of its input ``base``: they join
    one memory family (shared versions), and a view made under no_grad() of a tensor that
    requires grad (or a view of such a view) is noted in ``_views_made_under_no_grad``.
    (Runs only for ops whose output is a view, not on every op.)"""
    _join_memory_family(view, base)
    if base.requires_grad:  # (such a view itself never requires grad: only then look it up)
        made_under_no_grad = not _grad_mode.recording
    else:
        made_under_no_grad = _is_view_made_under_no_grad(base)
    if made_under_no_grad:
        _views_made_under_no_grad[id(view)] = view


def _is_view_made_under_no_grad(tensor: "Tensor") -> bool:
    return _views_made_under_no_grad.get(id(tensor)) is tensor


def _count_of_a_lone_argument(array: np.ndarray) -> int:
    return sys.getrefcount(array)


#: sys.getrefcount(x) inside a function whose argument x, passed straight from a call or a
#: container, is the only reference to the array (measured: the count differs between versions);
#: None where the interpreter counts no references (PyPy has no sys.getrefcount): gradients
#: are then always copied
_LONE_ARGUMENT = _count_of_a_lone_argument(np.empty(0)) if hasattr(sys, "getrefcount") else None


def constant_like(value: object, reference: Optional["Tensor"]) -> "Tensor":
    """``value`` (a number or an array) as a constant Tensor; a Python number takes the
    dtype of ``reference`` (a tensor it is combined with), as in PyTorch: any number with a
    float tensor (rounded to it: an int beyond its range is ±inf, as a float that large is),
    an int with an integer tensor (an OverflowError if it does not fit, as numpy 2; PyTorch
    would wrap around); with a bool tensor an int is int64 (an OverflowError beyond it) and
    a float float32 (``mask * 3`` is 3, not True). A numpy scalar (``np.float64(0.5)``, what
    ``np.sqrt`` or an array's ``.sum()`` gives) counts as a Python number here, as PyTorch
    treats it: int tensor · ``np.float64(0.5)`` is float32, as it is for 0.5, not float64.
    (Comparisons catch the OverflowError: see ``Tensor._compare``.)"""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.generic) and reference is not None:
        value = value.item()  # (its Python number: bool, int or float)
    if reference is not None and isinstance(value, numbers.Number) and not isinstance(value, bool):
        kind = reference.dtype.kind
        if kind == "f":  # (an int beyond int64 through float: numpy would hold it as an object)
            big = isinstance(value, numbers.Integral) and not -(2**63) <= value < 2**63
            number = _as_float(value) if big else value
            if abs(number) > _LARGEST_FLOAT[reference.dtype]:  # it rounds to ±inf (or to the largest float)
                with np.errstate(over="ignore"):  # (as intended: no "overflow encountered in cast")
                    return Tensor(number, dtype=reference.dtype)
            return Tensor(number, dtype=reference.dtype)
        if kind in "iub" and isinstance(value, numbers.Integral):
            dtype = reference.dtype if kind != "b" else np.dtype(np.int64)  # (mask + 1 is int64)
            limits = np.iinfo(dtype)
            if not limits.min <= value <= limits.max:
                whose = f"the tensor's dtype {dtype}" if kind != "b" else "int64, the dtype a bool tensor takes with an int"
                raise OverflowError(f"the number {value} does not fit {whose} "
                                    f"({limits.min}..{limits.max}); convert the tensor first, e.g. "
                                    f".astype(np.{'float64' if dtype == np.int64 else 'int64'})")
            return Tensor(value, dtype=dtype)
    return Tensor(value)


#: the largest finite value of each float dtype a Tensor holds
_LARGEST_FLOAT = {np.dtype(np.float32): float(np.finfo(np.float32).max), np.dtype(np.float64): float(np.finfo(np.float64).max)}


def _as_float(value: numbers.Integral) -> float:
    """A Python int as a float, ±inf beyond float64's range (where ``float`` raises): the value
    it rounds to, as a float literal that large (1e400) is inf."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def pytorch_spellings(method: Callable) -> Callable:
    """Let ``method`` also accept PyTorch's ``dim=`` for ``axis=`` and ``keepdim=`` for
    ``keepdims=``; giving both spellings of one argument is a TypeError."""
    parameters = list(inspect.signature(method).parameters)[1:]  # after self
    spellings = [(torch_name, name) for torch_name, name in (("dim", "axis"), ("keepdim", "keepdims"))
                 if name in parameters]

    @functools.wraps(method)
    def with_pytorch_spellings(self, *args, **kwargs):
        for torch_name, name in spellings:
            if torch_name in kwargs:
                if name in kwargs or parameters.index(name) < len(args):
                    raise TypeError(f"{method.__name__}() got both {name}= and {torch_name}= "
                                    "(its PyTorch spelling); pass one")
                kwargs[name] = kwargs.pop(torch_name)
        return method(self, *args, **kwargs)

    return with_pytorch_spellings


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python floats become float32, Python
    ints int64, bools bool; numpy arrays keep their dtype (float16 becomes float32); ``dtype``
    converts (to bool, an integer type, float32 or float64; any other is a TypeError). Only
    float32 and float64 tensors can require grad.
    """

    __slots__ = ("data", "_grad", "requires_grad", "node", "version", "memory_family", "__weakref__")
    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray + Tensor → Tensor

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype=None):
        self.data: np.ndarray = _as_array(data, dtype)
        self._grad: Optional[np.ndarray] = None  # (``grad``, checked when assigned by hand)
        if requires_grad and self.data.dtype.type not in FLOAT_TYPES:
            raise TypeError(
                f"only float32 and float64 tensors can require grad; this one is {self.data.dtype} "
                "(integer and bool tensors hold labels, indices and masks)"
            )
        self.requires_grad: bool = bool(requires_grad)
        self.node: Optional[Node] = None
        self.version: int = 0  # how many in-place updates changed data (see Node.check_unmodified)
        #: the tensors whose arrays share memory with this one (views, detach(), Tensor(t)),
        #: this one included, or None while there are none: an in-place update counts for all
        self.memory_family: Optional[weakref.WeakSet[Tensor]] = None
        if isinstance(data, Tensor) and self.data is data.data:
            _join_memory_family(self, data)

    @classmethod
    def _from_op(cls, op: Function, inputs: tuple["Tensor", ...]) -> "Tensor":
        """Run ``op`` forward on the inputs' data and record it if a gradient is needed."""
        # Once per op, and a batch-1 step is mostly such overhead: list comprehensions, not
        # generators, and no clock without hooks (with Function.apply's and the cheaper
        # checks, measured on a chain of relus: 4.6 -> 3.3 µs per op forward, 4.6 -> 4.2 back)
        if _grad_mode.recording:
            needs = tuple([tensor.requires_grad for tensor in inputs])
            requires_grad = True in needs
        else:
            needs, requires_grad = (False,) * len(inputs), False
        op.needs_input_grad = needs
        output = cls.__new__(cls)
        if forward_hooks:
            start = time.perf_counter()
            output.data = op.forward(*[tensor.data for tensor in inputs])
            seconds = time.perf_counter() - start
        else:
            output.data = op.forward(*[tensor.data for tensor in inputs])
        if not isinstance(output.data, np.ndarray):
            if not isinstance(output.data, np.generic):
                raise TypeError(_not_an_array(op, output.data))
            # numpy gives a scalar for 0-d operands (Tensor(1.0) * Tensor(2.0), x.sum() in a
            # Function of your own): held as a 0-d array, as every other tensor's data, so that
            # in-place updates (``out=``), ``.numpy()`` and views behave as for any tensor
            output.data = np.asarray(output.data)
        output._grad = None
        output.version = 0
        output.memory_family = None
        data = output.data
        base = data.base
        for tensor in inputs:  # a view of an input (Reshape, GetItem, ...) shares its versions
            if data is tensor.data or (base is not None and np.may_share_memory(data, tensor.data)):
                _note_view(output, tensor)
        if requires_grad and data.dtype.kind in "biu":
            # an integer or bool result (a rounding or an index computed by a Function of your
            # own) has no gradient and never requires grad, as in PyTorch, which marks such
            # outputs non-differentiable: a graph through it would pass G on as if it did
            requires_grad = False
        output.requires_grad = requires_grad
        output.node = Node(op, inputs) if requires_grad else None
        if forward_hooks:
            for hook in forward_hooks:
                hook(op, inputs, output, seconds)
        return output

    # -- constructors -----------------------------------------------------------------
    # ``shape`` as separate ints or one sequence: Tensor.zeros(2, 3) or Tensor.zeros((2, 3)).
    # ``dtype`` defaults to float32, as in PyTorch.

    @classmethod
    def zeros(cls, *shape: int | Sequence[int], dtype=None, requires_grad: bool = False) -> "Tensor":
        """A tensor of zeros."""
        shape = shape_argument("zeros", shape)
        return cls(np.zeros(shape, dtype=dtype_argument("zeros", dtype)), requires_grad=requires_grad)

    @classmethod
    def ones(cls, *shape: int | Sequence[int], dtype=None, requires_grad: bool = False) -> "Tensor":
        """A tensor of ones."""
        shape = shape_argument("ones", shape)
        return cls(np.ones(shape, dtype=dtype_argument("ones", dtype)), requires_grad=requires_grad)

    @classmethod
    def full(cls, shape: int | Sequence[int], fill_value: bool | int | float, dtype=None,
             requires_grad: bool = False) -> "Tensor":
        """A tensor of ``shape`` holding ``fill_value`` everywhere; as PyTorch's, its dtype
        follows the value unless given: bool for a bool, int64 for an int, float32 for a float."""
        shape = shape_argument("full", tuple(shape) if isinstance(shape, (tuple, list)) else (shape,))
        if not isinstance(fill_value, (numbers.Real, np.bool_)):
            raise TypeError(f"full: fill_value must be a number, got {fill_value!r}")
        if dtype is None:
            dtype = (np.bool_ if isinstance(fill_value, (bool, np.bool_)) else
                     np.int64 if isinstance(fill_value, numbers.Integral) else np.float32)
        return cls(np.full(shape, fill_value, dtype=dtype_argument("full", dtype)), requires_grad=requires_grad)

    @classmethod
    def zeros_like(cls, other: ArrayLike, dtype=None, requires_grad: bool = False) -> "Tensor":
        """Zeros of ``other``'s shape and (unless ``dtype`` is given) its dtype."""
        other = other if isinstance(other, Tensor) else Tensor(other)
        return cls.zeros(other.shape, dtype=other.dtype if dtype is None else dtype, requires_grad=requires_grad)

    @classmethod
    def ones_like(cls, other: ArrayLike, dtype=None, requires_grad: bool = False) -> "Tensor":
        """Ones of ``other``'s shape and (unless ``dtype`` is given) its dtype."""
        other = other if isinstance(other, Tensor) else Tensor(other)
        return cls.ones(other.shape, dtype=other.dtype if dtype is None else dtype, requires_grad=requires_grad)

    @classmethod
    def randn(cls, *shape: int | Sequence[int], dtype=None, requires_grad: bool = False) -> "Tensor":
        """Samples of the standard normal distribution N(0, 1) from the package's generator
        (``tinygrad_cnn.manual_seed`` makes them repeatable)."""
        shape = shape_argument("randn", shape)
        dtype = dtype_argument("randn", dtype, floats_only=True)
        return cls(random.generator().standard_normal(shape, dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def rand(cls, *shape: int | Sequence[int], dtype=None, requires_grad: bool = False) -> "Tensor":
        """Samples of the uniform distribution on [0, 1) from the package's generator."""
        shape = shape_argument("rand", shape)
        dtype = dtype_argument("rand", dtype, floats_only=True)
        return cls(random.generator().random(shape, dtype=dtype), requires_grad=requires_grad)

    @classmethod
    def arange(cls, start: float, stop: Optional[float] = None, step: float = 1, dtype=None,
               requires_grad: bool = False) -> "Tensor":
        """start, start + step, … up to but excluding stop; ``arange(n)`` is 0, 1, …, n − 1.

        As in PyTorch: int64 when start, stop and step are all integers, float32 otherwise.
        The values are computed in float64 and then converted, so float32 steps do not drift.
        A step whose sign leads away from stop (``arange(5, 0)``, ``arange(-3)``) is a
        ValueError, as in PyTorch, where numpy gives an empty tensor; so is an infinite or NaN
        argument. start == stop gives an empty tensor.
        """
        if stop is None:
            start, stop = 0, start
        for name, value in (("start", start), ("stop", stop), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"arange: {name} must be a number, got {value!r}")
        if step == 0:
            raise ValueError("arange: step must not be zero")
        if not all(isinstance(value, numbers.Integral) or math.isfinite(value) for value in (start, stop, step)):
            raise ValueError(f"arange: start, stop and step must be finite, got {start!r}, {stop!r}, {step!r}")
        if (stop - start) * step < 0:
            # as PyTorch: numpy gives an empty tensor, which hides a swapped start and stop
            # (or arange(n) with a negative n) until a later shape error far from the cause
            raise ValueError(f"arange: step {step!r} moves away from stop {stop!r} (start {start!r}); "
                             f"the step's sign must be that of stop - start")
        integers = all(isinstance(value, numbers.Integral) for value in (start, stop, step))
        dtype = dtype_argument("arange", np.int64 if integers and dtype is None else dtype)
        return cls(np.arange(start, stop, step).astype(dtype), requires_grad=requires_grad)

    @classmethod
    def eye(cls, n: int, m: Optional[int] = None, dtype=None, requires_grad: bool = False) -> "Tensor":
        """The n×m identity matrix (ones on the diagonal; m defaults to n)."""
        rows, columns = shape_argument("eye", (n, n if m is None else m))
        return cls(np.eye(rows, columns, dtype=dtype_argument("eye", dtype)), requires_grad=requires_grad)

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

    def numel(self) -> int:
        """The number of elements, as PyTorch's (``size`` here, as numpy's)."""
        return self.data.size

    def dim(self) -> int:
        """The number of axes, as PyTorch's (``ndim``)."""
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self.node is None

    def numpy(self) -> np.ndarray:
        return self.data

    def tolist(self) -> Any:
        """The values as nested Python lists of Python numbers (a 0-d tensor: one number), as
        PyTorch's ``tolist``."""
        return self.data.tolist()

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

    def __index__(self) -> int:
        """A one-element integer or bool tensor as a Python int, where Python needs one (``x[:n]``,
        ``range(n)``), as PyTorch; a float tensor is a TypeError, as a float is."""
        if self.dtype.kind not in "biu":
            raise TypeError(f"only an integer or bool tensor can be used as an index, got dtype {self.dtype}")
        return int(self._one_element("a tensor used as an index"))

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
        """A new leaf sharing this tensor's data (and its version: see ``note_in_place_change``),
        outside any graph."""
        return Tensor(self)

    def zero_grad(self) -> None:
        self._grad = None

    @property
    def grad(self) -> Optional[np.ndarray]:
        """dLoss/dself accumulated by ``backward()``: None, or a numpy array of this tensor's
        shape and dtype."""
        return self._grad

    @grad.setter
    def grad(self, grad: Optional[np.ndarray]) -> None:
        """Assign a gradient by hand, checked as PyTorch checks it then (not at the optimizer's
        next step): None, or a writable numpy array of this float tensor's shape and dtype that
        is not its own data (``check_assigned_grad``). The array is kept, not copied: as in
        PyTorch, the next ``backward()`` adds into it in place. (``backward()`` itself writes
        ``_grad``: its accumulation pays nothing for this check.)"""
        if grad is not None:
            check_assigned_grad(grad, self.data)
        self._grad = grad

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
            key = id(tensor)
            if key not in grads:
                continue
            if tensor.node is None:
                tensor._accumulate(grads.pop(key))  # the dict's reference handed over (see _accumulate)
            else:
                _run_vjp(tensor, grads.pop(key), grads)

    def _accumulate(self, grad: np.ndarray) -> None:
        """Add ``grad`` into ``self.grad``, which must be private to this tensor: a later
        in-place update (the next backward's ``+=``, a user's ``grad *= scale``) must not
        change another tensor's gradient or an array the user holds."""
        if self._grad is not None:
            self._grad += grad
        elif (type(grad) is np.ndarray and grad.dtype == self.dtype and grad.base is None
              and grad.flags.writeable and _LONE_ARGUMENT is not None and sys.getrefcount(grad) <= _LONE_ARGUMENT):
            # An array that owns its memory (no view) and that nothing else refers to (no other
            # tensor's grad, no saved array, no user variable: backward handed over its only
            # reference) can be kept without a copy: no one else can ever see it change.
            # Measured on the batch-1 step: SeedCNN -30 µs (fc1's 1.25 MB gradient), SeedMLP
            # -150 µs (fc1's 3.1 MB: the copy, and the cache contents it evicted).
            self._grad = grad
        else:
            self._grad = np.array(grad, dtype=self.dtype)  # a private copy of the right shape

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
        check_broadcast("+", left, right)
        return ops.Add.apply(left, right)

    def __radd__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__add__(self)

    def __sub__(self, other: ArrayLike) -> "Tensor":
        left, right = _promoted(self, self._operand(other))
        check_broadcast("-", left, right)
        check_not_bool("-", left, right)  # (mask - 1 is int64, as mask + 1; PyTorch refuses that too)
        return ops.Sub.apply(left, right)

    def __rsub__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__sub__(self)

    def __mul__(self, other: ArrayLike) -> "Tensor":
        left, right = _promoted(self, self._operand(other))
        check_broadcast("*", left, right)
        return ops.Mul.apply(left, right)

    def __rmul__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__mul__(self)

    def __truediv__(self, other: ArrayLike) -> "Tensor":
        left, right = _promoted(self, self._operand(other), true_division=True)
        check_broadcast("/", left, right)
        return ops.Div.apply(left, right)

    def __rtruediv__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__truediv__(self)

    def __mod__(self, other: ArrayLike) -> "Tensor":
        """Remainder with the sign of the divisor, as Python's ``%`` and PyTorch's ``remainder``."""
        left, right = _promoted(self, self._operand(other))
        check_not_bool("%", left, right)
        left, right = _integer_divisor_checked("%", left, right)
        return ops.Remainder.apply(left, right)

    def __rmod__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__mod__(self)

    def __floordiv__(self, other: ArrayLike) -> "Tensor":
        """⌊self / other⌋, as Python's ``//`` and PyTorch's ``floor_divide``; it has no gradient
        (see ``ops.FloorDivide``). int // int is int64, a float operand gives a float."""
        left, right = _promoted(self, self._operand(other))
        check_not_bool("//", left, right)
        left, right = _integer_divisor_checked("//", left, right)
        return _apply_unrecorded(ops.FloorDivide, left, right)

    def __rfloordiv__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).__floordiv__(self)

    def __neg__(self) -> "Tensor":
        check_not_bool("neg", self)
        return ops.Neg.apply(self)

    def __matmul__(self, other: ArrayLike) -> "Tensor":
        return self.matmul(other)

    def __rmatmul__(self, other: ArrayLike) -> "Tensor":
        return self._operand(other).matmul(self)

    def matmul(self, other: ArrayLike, *, bias: Optional[ArrayLike] = None, relu: bool = False) -> "Tensor":
        """Matrix product as ``np.matmul``; 1-D operands are treated as a row / a column.
        An integer operand mixed with a float one takes the float's dtype (as ``+``).

        ``bias`` is added to the product (broadcast as ``+`` broadcasts, but it may not grow the
        product's shape: (m,) or (n, m) for an (n, m) product) and ``relu=True`` applies a relu,
        in the same op: the seed's "matrix multiply and add" layer, the fused form of
        ``(x @ weight + bias).relu()`` (same values, dtypes and gradients), as ``conv2d``'s bias
        and relu. The bias is promoted against the product as ``+`` promotes it; one that would
        widen the product's dtype (float64 on float32, a float on integers) is added after the
        product, as its own op.
        """
        check_flag("matmul", "relu", relu)
        left, right = _promoted(self, self._operand(other))
        check_not_bool("@", left, right)
        if left.ndim == 0 or right.ndim == 0:
            raise ValueError(f"matmul needs at least 1-D operands, got shapes {left.shape} and {right.shape}")
        inner_left = left.shape[-1]
        inner_right = right.shape[-2] if right.ndim > 1 else right.shape[0]
        if inner_left != inner_right:  # checked here, before 1-D operands are reshaped, to name the user's shapes
            raise ValueError(
                f"matmul shape mismatch: {left.shape} @ {right.shape} "
                f"(inner sizes {inner_left} and {inner_right} differ)"
            )
        if left.ndim == 1 or right.ndim == 1:  # a row or a column: reshaped, then the bias and relu as separate ops
            if left.ndim == 1 and right.ndim == 1:  # the dot product: a scalar, as np.matmul gives
                product = left.reshape(1, -1).matmul(right.reshape(-1, 1)).reshape(())
            elif left.ndim == 1:
                product = left.reshape(1, -1).matmul(right).reshape(*right.shape[:-2], right.shape[-1])
            else:
                product = left.matmul(right.reshape(-1, 1)).reshape(*left.shape[:-1])
            if bias is not None:
                bias = product._operand(bias)  # (a number takes the product's dtype, as in product + bias)
                _check_matmul_bias(bias.shape, product.shape)
                product = product + bias
            return product.relu() if relu else product
        if left.ndim > 2 or right.ndim > 2:  # the batch axes must broadcast
            check_broadcast("@", Tensor(np.empty(left.shape[:-2])), Tensor(np.empty(right.shape[:-2])))
        if bias is None:
            return ops.MatMul.apply(left, right, relu=bool(relu))
        product_dtype = left.data.dtype if left.data.dtype == right.data.dtype else np.result_type(left.data.dtype, right.data.dtype)
        bias, fits = _matmul_bias(bias, product_dtype)
        batch = np.broadcast_shapes(left.shape[:-2], right.shape[:-2]) if left.ndim > 2 or right.ndim > 2 else ()
        _check_matmul_bias(bias.shape, batch + (left.shape[-2], right.shape[-1]))
        if not fits:  # a bias the sum would widen the product for (float64 on float32, float on int): as + does
            product = ops.MatMul.apply(left, right) + bias
            return product.relu() if relu else product
        return ops.MatMul.apply(left, right, bias, relu=bool(relu))

    # -- element-wise math ----------------------------------------------------------

    def exp(self) -> "Tensor":
        return ops.Exp.apply(_floating(self))

    def log(self) -> "Tensor":
        """Natural logarithm (NaN for x < 0 and −inf at 0, as in PyTorch)."""
        return ops.Log.apply(_floating(self))

    def sqrt(self) -> "Tensor":
        return ops.Sqrt.apply(_floating(self))

    def sin(self) -> "Tensor":
        return ops.Sin.apply(_floating(self))

    def cos(self) -> "Tensor":
        return ops.Cos.apply(_floating(self))

    def tanh(self) -> "Tensor":
        return ops.Tanh.apply(_floating(self))

    def sigmoid(self) -> "Tensor":
        """1 / (1 + e⁻ˣ), computed so that no input overflows (exactly 0 and 1 far out)."""
        return ops.Sigmoid.apply(_floating(self))

    def abs(self) -> "Tensor":
        """|x|; the gradient at 0 is 0, as in PyTorch. A bool tensor is refused, as in PyTorch."""
        check_not_bool("abs", self)
        return ops.Abs.apply(self)

    def __abs__(self) -> "Tensor":
        return self.abs()

    def leaky_relu(self, negative_slope: float = 0.01) -> "Tensor":
        """x for x > 0, negative_slope · x otherwise (gradient negative_slope at 0, as PyTorch)."""
        check_is_number("leaky_relu", "negative_slope", negative_slope)
        return ops.LeakyReLU.apply(_floating(self), negative_slope=negative_slope)

    def elu(self, alpha: float = 1.0) -> "Tensor":
        """x for x > 0, alpha · (eˣ − 1) otherwise (gradient alpha at 0, as PyTorch)."""
        check_is_number("elu", "alpha", alpha)
        return ops.ELU.apply(_floating(self), alpha=alpha)

    def gelu(self, approximate: str = "none") -> "Tensor":
        """x · Φ(x), Φ the standard normal CDF (PyTorch's default), or with ``approximate="tanh"``
        x · (1 + tanh(√(2/π)(x + 0.044715 x³))) / 2, GPT-2's. The exact form calls ``math.erfc``
        once an element (numpy has no erf): about 0.14 µs an element; "tanh" is numpy's speed."""
        if not isinstance(approximate, str):
            raise TypeError(f"gelu: approximate must be a string, 'none' or 'tanh', got {type(approximate).__name__}")
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return ops.GELU.apply(_floating(self), approximate=approximate)

    def __pow__(self, exponent: ArrayLike) -> "Tensor":
        """self ** exponent, element-wise; the exponent may be a number, an array or a Tensor."""
        base, exponent = _promoted(self, self._operand(exponent))
        check_broadcast("**", base, exponent)
        check_not_bool("**", base, exponent)  # (mask ** 2 is int64, as in PyTorch)
        if base.dtype.kind != "f" and exponent.dtype.kind != "f" and np.any(exponent.data < 0):
            raise ValueError("integers to negative integer powers are not allowed (as in PyTorch); "
                             "make the base a float tensor")
        return ops.Pow.apply(base, exponent)

    def __rpow__(self, base: ArrayLike) -> "Tensor":
        return self._operand(base).__pow__(self)

    def pow(self, exponent: ArrayLike) -> "Tensor":
        return self.__pow__(exponent)

    def clamp(self, min: Optional[ArrayLike] = None, max: Optional[ArrayLike] = None) -> "Tensor":
        """``clip`` under PyTorch's other name for it (its errors say ``clamp``)."""
        return self._clip(min, max, "clamp")

    def clip(self, min: Optional[ArrayLike] = None, max: Optional[ArrayLike] = None) -> "Tensor":
        """Limit every element to [min, max] (a bound of None is absent), as torch.clamp: the
        gradient passes where min <= x <= max, bounds included; min > max gives max everywhere.

        A bound is a number, or a Tensor or array that broadcasts with self (the result takes the
        broadcast shape); a Tensor bound that requires grad gets torch.clamp's gradient (the G of
        each place clipped to it: see ``ops.Clip``). A number beside a Tensor bound counts as a
        constant one (PyTorch refuses that mix). Dtypes promote as for ``maximum``.
        An integer tensor with an int bound beyond its dtype's range gets the true answer
        (uint8 clipped to max=300 is unchanged; PyTorch refuses it, or wraps a min of -5), or an
        OverflowError where that answer does not fit (uint8 clipped to min=300). A bool tensor
        with int bounds gives int64, as PyTorch (and as ``mask + 1``)."""
        return self._clip(min, max, "clip")

    def _clip(self, min: Optional[ArrayLike], max: Optional[ArrayLike], method: str) -> "Tensor":
        """``clip``, its errors naming ``method`` (the name it was called by)."""
        if min is None and max is None:
            raise ValueError(f"{method} needs at least one of min= and max=")
        if isinstance(min, (Tensor, np.ndarray, list, tuple)) or isinstance(max, (Tensor, np.ndarray, list, tuple)):
            return self._clip_to_tensors(min, max, method)
        for name, bound in (("min", min), ("max", max)):
            if bound is not None:
                check_is_number(method, name, bound, "a number, a Tensor, an array or a list")
        integral_bounds = all(isinstance(bound, (numbers.Integral, type(None))) for bound in (min, max))
        x = self if integral_bounds else _floating(self)  # an int tensor clipped to 0.5 becomes float32
        if x.dtype == np.bool_:  # a mask clipped to int bounds is int64, as mask + 1 (it gave True for min=2)
            x = x.astype(np.int64)
        if x.dtype.kind in "iu":
            min, max = integer_clip_bounds(x.dtype, min, max, method)
        return ops.Clip.apply(x, low=min, high=max)

    def _clip_to_tensors(self, min: Optional[ArrayLike], max: Optional[ArrayLike], method: str) -> "Tensor":
        """``clip`` with a Tensor, array or list among its bounds: each bound becomes an input of
        the op. An int beside it is taken in the integer dtype the op computes in (the tensor's,
        promoted with the array bounds'), and one beyond that dtype's range as the nearest end
        of it, which clips to the same values: the true answer, as with number bounds alone."""
        named = {name: bound for name, bound in (("min", min), ("max", max)) if bound is not None}
        arrays: dict[str, Tensor] = {}
        for name, bound in named.items():
            if isinstance(bound, (list, tuple)):
                bound = np.asarray(bound)
            if isinstance(bound, (Tensor, np.ndarray)):
                arrays[name] = self._operand(bound)
            else:
                check_is_number(method, name, bound, "a number, a Tensor, an array or a list")
        x = self
        for name, bound in arrays.items():
            x, arrays[name] = _promoted(x, bound)
        common = np.result_type(x.dtype, *[bound.dtype for bound in arrays.values()])  # (what the op computes in)
        if common.kind in "iu":  # an int beyond it, as a 0-d array of it (an array keeps its dtype; a number would not)
            limits = np.iinfo(common)
            named = {name: np.asarray(np.clip(bound, limits.min, limits.max), dtype=common)
                     if isinstance(bound, numbers.Integral) else bound for name, bound in named.items()}
        bounds = {name: arrays[name] if name in arrays else x._operand(bound) for name, bound in named.items()}
        for name, bound in bounds.items():
            x, bounds[name] = _promoted(x, bound)
        bounds = {name: _promoted(x, bound)[1] for name, bound in bounds.items()}  # (x may have become float)
        try:
            np.broadcast_shapes(x.shape, *[bound.shape for bound in bounds.values()])
        except ValueError:
            shapes = " and ".join(f"{bound.shape} ({name})" for name, bound in bounds.items())
            raise ValueError(f"{method}: shapes {x.shape} (the tensor) and {shapes} cannot be broadcast together") from None
        return ops.Clip.apply(x, *bounds.values(), bound_inputs=tuple("low" if name == "min" else "high" for name in bounds))

    def maximum(self, other: ArrayLike) -> "Tensor":
        """Element-wise larger of self and other (broadcasting); ties give each side half the gradient.
        An int below an integer tensor's range is its lowest value (the answer is the tensor
        itself); one above it is an OverflowError, as the answer does not fit."""
        left, right = _promoted(self, self._operand(self._within_range(other, below=True)))
        check_broadcast("maximum", left, right)
        return ops.Maximum.apply(left, right)

    def minimum(self, other: ArrayLike) -> "Tensor":
        """Element-wise smaller of self and other (broadcasting); ties give each side half the gradient.
        An int above an integer tensor's range is its highest value (the answer is the tensor
        itself); one below it is an OverflowError, as the answer does not fit."""
        left, right = _promoted(self, self._operand(self._within_range(other, below=False)))
        check_broadcast("minimum", left, right)
        return ops.Minimum.apply(left, right)

    def _within_range(self, other: ArrayLike, below: bool) -> ArrayLike:
        """For maximum (``below``) or minimum: a Python int beyond this integer tensor's range on
        the side where it loses to every element, as the nearest end of the range (the same
        answer); anything else unchanged."""
        if self.dtype.kind in "iu" and isinstance(other, numbers.Integral) and not isinstance(other, (bool, np.bool_)):
            limits = np.iinfo(self.dtype)
            if below and other < limits.min:
                return int(limits.min)
            if not below and other > limits.max:
                return int(limits.max)
        return other

    def where(self, a: ArrayLike, b: ArrayLike) -> "Tensor":
        """``cond.where(a, b)``, also written ``Tensor.where(cond, a, b)``: a where cond is True,
        else b (broadcasting; a and b may be numbers). cond must be bool (e.g. ``x > 0``) and
        gets no gradient. Note the order is tinygrad's: PyTorch's ``x.where(cond, y)`` puts x first.
        """
        condition = self if isinstance(self, Tensor) else Tensor(self)
        if condition.dtype != np.bool_:
            raise TypeError(f"where: the condition must be a bool tensor (e.g. x > 0), got dtype {condition.dtype}")
        reference = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
        a, b = _promoted(constant_like(a, reference), constant_like(b, reference))
        try:
            np.broadcast_shapes(condition.shape, a.shape, b.shape)
        except ValueError:
            raise ValueError(f"where: shapes {condition.shape} (condition), {a.shape} and {b.shape} "
                             "cannot be broadcast together") from None
        return ops.Where.apply(condition, a, b)

    # -- max, min and their indices -------------------------------------------------

    @pytorch_spellings
    def max(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False) -> "Tensor":
        """Largest element over ``axis`` (all by default); tied maxima share the gradient
        equally. Returns the values only, as torch.amax; ``argmax`` gives the indices."""
        check_reducible("max", axis, self.shape)
        check_keepdims("max", keepdims)
        return ops.Max.apply(self, axis=axis, keepdims=bool(keepdims))

    @pytorch_spellings
    def min(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False) -> "Tensor":
        """Smallest element over ``axis``; tied minima share the gradient equally (as torch.amin)."""
        check_reducible("min", axis, self.shape)
        check_keepdims("min", keepdims)
        return ops.Min.apply(self, axis=axis, keepdims=bool(keepdims))

    @pytorch_spellings
    def argmax(self, axis: Optional[int] = None, keepdims: bool = False) -> "Tensor":
        """int64 index of the largest element along ``axis`` (the first on ties); with
        axis=None, the index into the flattened tensor. Indices have no gradient."""
        check_index_axis("argmax", axis, self.shape)
        check_keepdims("argmax", keepdims)
        return _apply_unrecorded(ops.ArgMax, self, axis=axis, keepdims=bool(keepdims))

    @pytorch_spellings
    def argmin(self, axis: Optional[int] = None, keepdims: bool = False) -> "Tensor":
        """int64 index of the smallest element along ``axis`` (the first on ties), as argmax."""
        check_index_axis("argmin", axis, self.shape)
        check_keepdims("argmin", keepdims)
        return _apply_unrecorded(ops.ArgMin, self, axis=axis, keepdims=bool(keepdims))

    # -- comparisons and in-place updates -----------------------------------------------

    def _compare(self, symbol: str, other: ArrayLike) -> "Tensor":
        """A bool mask: the op ``Compare`` (so tracers such as the ONNX exporter see it), never
        recorded for backward (a comparison has no gradient).

        A Python number takes this tensor's dtype, as in arithmetic (``x + 1``), except an int
        that an integer or bool tensor's dtype cannot hold (uint8 < 256, int64 < 2**70): every
        element then lies on one side of it, so it is compared as ±inf, which gives the true
        answer where arithmetic with it is an OverflowError (PyTorch wraps 256 around to 0, or
        raises for ints beyond int64). A float tensor compares with the int rounded to its
        dtype, as in ``x + 2**70`` (PyTorch raises beyond int64)."""
        try:
            other = self._operand(other)
        except TypeError:  # e.g. tensor == None: let Python decide (identity for ==, an error for <)
            return NotImplemented
        except OverflowError:  # (only an int that does not fit raises: see constant_like)
            if not isinstance(other, numbers.Integral):  # (a list holding one: as Tensor(list) says)
                raise
            other = Tensor(math.inf if other > 0 else -math.inf)
        check_broadcast(symbol, self, other)
        return _apply_unrecorded(ops.Compare, *_promoted(self, other), symbol=symbol)  # (compared as x - t is computed)

    def __lt__(self, other: ArrayLike) -> "Tensor":
        return self._compare("<", other)

    def __le__(self, other: ArrayLike) -> "Tensor":
        return self._compare("<=", other)

    def __gt__(self, other: ArrayLike) -> "Tensor":
        return self._compare(">", other)

    def __ge__(self, other: ArrayLike) -> "Tensor":
        return self._compare(">=", other)

    def __eq__(self, other: ArrayLike) -> "Tensor":  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: ArrayLike) -> "Tensor":  # type: ignore[override]
        return self._compare("!=", other)

    # defining __eq__ removes the inherited hash: keep hashing by identity, so tensors can
    # still be dict keys and set members (as in PyTorch)
    __hash__ = object.__hash__

    def _update_in_place(self, symbol: str, operation: np.ufunc, other: ArrayLike) -> "Tensor":
        """``self.data ∘= other`` in the same array; same object, dtype, leaf status, requires_grad.

        Allowed under no_grad() (the optimizer step ``p -= lr * p.grad``), and anywhere on a
        constant (``counts += 1``), as in PyTorch. Outside no_grad() a tensor that requires
        grad (or an update by one that does) is refused: the update would not be recorded. So
        is, as in PyTorch, a view made under no_grad() of a tensor that requires grad (``with
        no_grad(): v = w[:2]``, then ``v += 1`` after the block), which silently changed ``w``;
        ``w.detach()`` is no view: changing it changes ``w``, as in PyTorch.
        Each update adds 1 to ``version`` of this tensor and of every tensor sharing its memory
        (``note_in_place_change``), so backward() raises if the graph had saved the old values
        (as PyTorch does).
        """
        other = self._operand(other)
        if _grad_mode.recording and (self.requires_grad or other.requires_grad or _is_view_made_under_no_grad(self)):
            raise RuntimeError(in_place_refusal(symbol, self, other, _is_view_made_under_no_grad(self)))
        check_broadcast(symbol, self, other)
        result_shape = np.broadcast_shapes(self.shape, other.shape)
        if result_shape != self.shape:
            raise ValueError(f"in-place {symbol}: the result would have shape {result_shape}, "
                             f"but the tensor has shape {self.shape}")
        _, other = _promoted(self, other)  # (a 0-d float acts as a number, as in x + t; nothing is recorded here)
        try:
            operation(self.data, other.data, out=self.data, casting="same_kind")
        except TypeError as error:
            raise TypeError(
                f"in-place {symbol} keeps the tensor's dtype {self.dtype}, which cannot hold the result of "
                f"combining it with {other.dtype} (as in PyTorch); write x = x {symbol[:-1]} y for a new tensor"
            ) from error
        self.note_in_place_change()
        return self

    def note_in_place_change(self) -> None:
        """Add 1 to ``version`` of this tensor and of every tensor sharing its memory (its views,
        the tensor it is a view of, ``detach()``, ``Tensor(t)``): a graph that saved one of them
        then raises at backward() instead of using the new values. The in-place operators and
        the optimizers' steps call it; call it after changing ``.data`` in place yourself."""
        for tensor in self.memory_family or (self,):
            tensor.version += 1

    def __iadd__(self, other: ArrayLike) -> "Tensor":
        return self._update_in_place("+=", np.add, other)

    def __isub__(self, other: ArrayLike) -> "Tensor":
        return self._update_in_place("-=", np.subtract, other)

    def __imul__(self, other: ArrayLike) -> "Tensor":
        return self._update_in_place("*=", np.multiply, other)

    def __itruediv__(self, other: ArrayLike) -> "Tensor":
        return self._update_in_place("/=", np.true_divide, other)

    # -- reductions and shape -------------------------------------------------------

    @pytorch_spellings
    def sum(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False) -> "Tensor":
        check_axes("sum", axis, self.ndim)
        check_keepdims("sum", keepdims)
        return ops.Sum.apply(self, axis=axis, keepdims=bool(keepdims))

    @pytorch_spellings
    def mean(self, axis: Optional[int | Sequence[int]] = None, keepdims: bool = False) -> "Tensor":
        """Mean over ``axis`` (all by default). PyTorch refuses the mean of an integer or bool
        tensor; here it is float32, as for every float-valued op (exp, log, softmax, ...)."""
        check_axes("mean", axis, self.ndim)
        check_keepdims("mean", keepdims)
        return ops.Mean.apply(_floating(self), axis=axis, keepdims=bool(keepdims))

    @pytorch_spellings
    def var(self, axis: Optional[int | Sequence[int]] = None, *, correction: Optional[int] = None,
            keepdims: bool = False, unbiased: Optional[bool] = None) -> "Tensor":
        """Variance over ``axis`` (all by default), as torch.var: Σ (x − mean)² / (n − correction),
        n the number of elements reduced; ``correction=1`` (Bessel's, the default) or
        ``unbiased=False`` (correction 0, PyTorch's older spelling; giving both is a TypeError).
        With n ≤ correction the division is by 0: inf, or NaN where every difference is 0, and
        gradients ±inf (PyTorch's for n = correction; for n < correction its gradient divides by
        the negative n − correction). Recorded as the mean, a subtraction, a square, a sum and
        a division (a mean with correction 0, so that an export over the batch axis can take any
        batch size), whose VJPs give d var / dx = 2 (x − mean) / (n − correction)."""
        return self._variance("var", axis, correction, keepdims, unbiased)

    @pytorch_spellings
    def std(self, axis: Optional[int | Sequence[int]] = None, *, correction: Optional[int] = None,
            keepdims: bool = False, unbiased: Optional[bool] = None) -> "Tensor":
        """Standard deviation, √var with ``var``'s arguments, as torch.std. Where the variance is
        exactly 0 the gradient is 0, as PyTorch's (√'s would be G/0 there, times differences
        that are all 0: NaN): those places take the constant 0 instead of √var, and √ sees 1."""
        variance = self._variance("std", axis, correction, keepdims, unbiased)
        spread = variance != 0  # (a recorded mask, as the file an export writes needs; NaN and inf keep their √)
        return Tensor.where(spread, Tensor.where(spread, variance, 1.0).sqrt(), 0.0)

    def _variance(self, name: str, axis: Optional[int | Sequence[int]], correction: Optional[int], keepdims: bool,
                  unbiased: Optional[bool]) -> "Tensor":
        """``var``'s work, its arguments checked under ``name`` (var or std)."""
        check_axes(name, axis, self.ndim)
        check_keepdims(name, keepdims)
        if unbiased is not None:
            check_flag(name, "unbiased", unbiased)
            if correction is not None:
                raise TypeError(f"{name}() got both correction= and unbiased= (its older spelling); pass one")
            correction = int(unbiased)
        correction = 1 if correction is None else correction
        if not is_int(correction) or correction < 0:
            raise ValueError(f"{name}: correction must be an int >= 0, got {correction!r}")
        x = _floating(self)
        count = math.prod(x.shape[single] for single in _axes_of(axis, x.ndim))
        if count <= correction:  # x / 0, as PyTorch: inf, or NaN where every difference is 0 (0 · inf)
            # (the mean as a constant here: through it the gradient would be inf − inf, NaN, where
            # PyTorch's is 0, as Σ (x − mean) = 0; so the gradients are ±inf, as PyTorch's)
            mean = x.data.mean(axis=_axes_of(axis, x.ndim), keepdims=True) if count else np.zeros((1,) * x.ndim, x.dtype)
            with np.errstate(invalid="ignore"):
                return ((x - mean) ** 2).sum(axis, keepdims=keepdims) * math.inf
        squares = (x - x.mean(axis, keepdims=True)) ** 2
        if correction == 0:
            return squares.mean(axis, keepdims=keepdims)  # (the same numbers as the sum over n)
        return squares.sum(axis, keepdims=keepdims) / (count - int(correction))

    @pytorch_spellings
    def logsumexp(self, axis: int | Sequence[int], keepdims: bool = False) -> "Tensor":
        """log Σ exp(x) over ``axis`` (required, as in torch.logsumexp), computed as
        m + log Σ exp(x − m) with m the maximum (0 where it is ±inf), so that no exp overflows.
        Recorded as max, a subtraction, exp, sum, log and an addition: the gradient is softmax(x)
        along ``axis``. Over no elements it is −inf, as PyTorch's."""
        check_axes("logsumexp", axis, self.ndim)
        check_keepdims("logsumexp", keepdims)
        x = _floating(self)
        axes = _axes_of(axis, x.ndim)
        if x.size:  # m is recorded, not a constant: an exported graph computes it from each input
            peak = x.max(axis, keepdims=True)  # (its gradient, G·(1 − Σ softmax), is 0 up to rounding)
            shift = Tensor.where(peak.abs() < math.inf, peak, 0.0)  # (±inf, NaN: exp(x − 0) gives what it must)
        else:
            shift = Tensor(np.zeros(tuple(1 if index in axes else size for index, size in enumerate(x.shape)), x.dtype))
        with np.errstate(divide="ignore"):  # (log 0 = −inf: an all −inf slice, or no elements)
            total = (x - shift).exp().sum(axis, keepdims=True).log() + shift
        if keepdims:
            return total
        return total.reshape(tuple(size for index, size in enumerate(x.shape) if index not in axes))

    def reshape(self, *shape: int | Sequence[int]) -> "Tensor":
        """Same elements in a new shape; one axis may be -1 (inferred)."""
        return self._reshape(shape, "reshape")

    def _reshape(self, shape: tuple, method: str) -> "Tensor":
        """``reshape``, its errors naming ``method`` (the name it was called by)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, np.ndarray)):
            shape = tuple(shape[0])
        for size in shape:
            if type(size) is not int and not isinstance(size, np.integer):
                raise TypeError(f"{method}: sizes must be ints, got {size!r} in {shape!r}")
        resolved = resolve_shape(tuple(int(size) for size in shape), self.shape, method)
        if resolved == self.shape:
            return self
        return ops.Reshape.apply(self, shape=resolved)

    def view(self, *shape: int | Sequence[int]) -> "Tensor":
        """``reshape`` under PyTorch's name (which needs contiguous memory there; not here; its
        errors say ``view``)."""
        return self._reshape(shape, "view")

    def masked_fill(self, mask: ArrayLike, value: float | bool | "Tensor") -> "Tensor":
        """``value`` where the bool ``mask`` (broadcast to this tensor's shape) is True, the
        tensor elsewhere, as PyTorch's (an attention mask: ``scores.masked_fill(future, -inf)``).
        The gradient flows to the tensor where the mask is False. ``value`` (a number, a bool,
        or a 0-d Tensor that needs no gradient) takes the tensor's dtype, as in PyTorch; one the
        dtype cannot hold (2.5 or inf in an integer tensor, 5 in a bool one) is a TypeError
        (PyTorch would store 2 for 2.5)."""
        mask = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill: the mask must be bool, got dtype {mask.dtype}")
        if not _broadcasts_to(mask.shape, self.shape):
            raise ValueError(f"masked_fill: a mask of shape {mask.shape} does not broadcast to the tensor's shape {self.shape}")
        if isinstance(value, Tensor):
            if value.ndim or value.requires_grad:
                raise TypeError(f"masked_fill: a Tensor value must be 0-d and need no gradient, got shape {value.shape}"
                                f"{' that requires grad' if value.requires_grad else ''}")
            value = value.item()
        if not isinstance(value, (numbers.Real, np.bool_)):
            raise TypeError(f"masked_fill: value must be a number or a bool, got {value!r}")
        try:
            with np.errstate(invalid="ignore", over="ignore"):
                fill = np.asarray(value).astype(self.dtype)
        except OverflowError:  # (an int beyond every numpy integer)
            fill = None
        if fill is None or (fill.item() != value if self.dtype.kind in "biu" else
                            math.isfinite(value) and not math.isfinite(fill.item())):
            raise TypeError(f"masked_fill: the value {value!r} does not fit the tensor's dtype {self.dtype}")
        return Tensor.where(mask, Tensor(fill), self)

    def split(self, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple["Tensor", ...]:
        """The tensor cut along ``dim`` into pieces of ``split_size_or_sections`` elements each (the
        last may be smaller), or of the listed sizes (which must add up to the axis' length), as
        PyTorch's. Each piece is a slice (a recorded indexing op), so gradients flow back."""
        axis = dimension_argument("split", "dim", dim, max(self.ndim, 1), self.shape)
        if self.ndim == 0:
            raise ValueError("split: a 0-d tensor has no axis to split")
        length = self.shape[axis]
        if is_int(split_size_or_sections):
            if split_size_or_sections < 1 and length:
                raise ValueError(f"split: split_size must be a positive int, got {split_size_or_sections}")
            size = max(int(split_size_or_sections), 1)
            sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
        else:
            sizes = list(split_size_or_sections) if isinstance(split_size_or_sections, (tuple, list)) else []
            if not sizes or not all(is_int(size) and size >= 0 for size in sizes) or sum(sizes) != length:
                raise ValueError(f"split: the sizes must be non-negative ints adding up to the length {length} of "
                                 f"axis {dim}, got {split_size_or_sections!r}")
        pieces, start = [], 0
        for size in sizes:
            pieces.append(self[(slice(None),) * axis + (slice(start, start + int(size)),)])
            start += int(size)
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple["Tensor", ...]:
        """The tensor cut along ``dim`` into ``chunks`` pieces of ⌈length / chunks⌉ elements (the last
        may be smaller, and there may be fewer pieces), as PyTorch's: ``split`` by that size."""
        if not is_int(chunks) or chunks < 1:
            raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
        if self.ndim == 0:
            raise ValueError("chunk: a 0-d tensor has no axis to chunk")
        axis = dimension_argument("chunk", "dim", dim, self.ndim, self.shape)
        length = self.shape[axis]
        if length == 0:  # (PyTorch's: as many empty pieces as asked for)
            return self.split([0] * int(chunks), dim)
        return self.split(-(-length // int(chunks)), dim)

    def flatten(self, start_dim: int = 1, end_dim: int = -1) -> "Tensor":
        """Merge the axes from ``start_dim`` through ``end_dim`` (default: the last) into one;
        the default keeps the batch axis. ``x.flatten(0, 1)`` merges the first two, as PyTorch.

        As in PyTorch, both must lie in [-ndim, ndim - 1] (a 0-d tensor counts as 1-D: 0 or -1
        make it shape (1,)), and start_dim may not come after end_dim; an empty tensor keeps
        its sizes: (0, 1, 28, 28) → (0, 784).
        """
        dims = max(self.ndim, 1)
        start = dimension_argument("flatten", "start_dim", start_dim, dims, self.shape)
        end = dimension_argument("flatten", "end_dim", end_dim, dims, self.shape)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"for a tensor of shape {self.shape}")
        if self.ndim == 0:
            return self.reshape(1)
        shape = self.shape[:start] + (math.prod(self.shape[start:end + 1]),) + self.shape[end + 1:]
        return self if shape == self.shape else ops.Reshape.apply(self, shape=shape)  # (a valid shape: as reshape, unchecked)

    @pytorch_spellings
    def unsqueeze(self, axis: int) -> "Tensor":
        """A new axis of size 1 at ``axis``, as PyTorch's: in [-ndim - 1, ndim], a negative one
        counted from the end of the result (``x.unsqueeze(-1)`` adds a last axis). A view."""
        position = dimension_argument("unsqueeze", "axis", axis, self.ndim + 1, self.shape)
        return ops.Reshape.apply(self, shape=self.shape[:position] + (1,) + self.shape[position:])

    @pytorch_spellings
    def squeeze(self, axis: Optional[int | Sequence[int]] = None) -> "Tensor":
        """The axes of size 1 removed: all of them, or those among ``axis`` (an int or a tuple);
        as in PyTorch, a named axis whose size is not 1 stays, without an error. A view."""
        named = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis) if isinstance(axis, (tuple, list)) else None
        if axis is not None and named is None:
            raise TypeError(f"squeeze: axis must be None, an int or a tuple of ints, got {axis!r}")
        dims = max(self.ndim, 1)  # (a 0-d tensor takes axis 0 or -1, as in PyTorch)
        positions = [dimension_argument("squeeze", "axis", single, dims, self.shape) for single in named or ()]
        if len(set(positions)) != len(positions):
            raise ValueError(f"squeeze: axis {axis!r} names the same axis twice")
        candidates = range(self.ndim) if named is None else positions
        axes = [index for index in candidates if index < self.ndim and self.shape[index] == 1]
        if not axes:
            return self
        return ops.Reshape.apply(self, shape=tuple(size for index, size in enumerate(self.shape) if index not in axes))

    def pad(self, pad_width: int | Sequence) -> "Tensor":
        """Zero padding, numpy-style: ((before, after), ...) per axis, or one int for all sides."""
        return ops.Pad.apply(self, widths=normalize_pad_width(pad_width, self.shape))

    # -- shape, indexing and movement -------------------------------------------------

    def permute(self, *dims: int | Sequence[int]) -> "Tensor":
        """The axes reordered: result.shape[i] = self.shape[dims[i]]; ``dims`` as separate ints
        or one sequence, negative ones counting from the end."""
        dims = integers_argument("permute", dims)
        normalized = [dim % self.ndim for dim in dims if -self.ndim <= dim < self.ndim]
        if len(dims) != self.ndim or sorted(normalized) != list(range(self.ndim)):
            raise ValueError(
                f"permute: dims {dims} are not a permutation of the {self.ndim} axes of a tensor of "
                f"shape {self.shape}"
            )
        if normalized == list(range(self.ndim)):
            return self
        return ops.Permute.apply(self, axes=tuple(normalized))

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        """The axes ``dim0`` and ``dim1`` swapped (PyTorch's transpose, not numpy's)."""
        check_axes("transpose", dim0, self.ndim)
        check_axes("transpose", dim1, self.ndim)
        axes = list(range(self.ndim))
        if self.ndim:
            axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    @property
    def T(self) -> "Tensor":
        """All axes reversed, as numpy's ``.T`` (PyTorch deprecates ``.T`` for ndim != 2; for a
        matrix both agree, and we follow numpy for the other ranks)."""
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index: object) -> "Tensor":
        """numpy indexing: ints, slices (any step), negative indices, None, Ellipsis, integer
        arrays, lists or Tensors of any shape, bool masks. The VJP scatter-adds (``np.add.at``),
        so an element read k times (``table[Tensor([[1, 1, 2]])]``) receives k gradients."""
        return ops.GetItem.apply(self, index=_checked_index(index, self.shape))

    def __iter__(self):
        """The sub-tensors along the first axis, ``self[0]``, ``self[1]``, … (each in the graph)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[position] for position in range(len(self)))

    @staticmethod
    def cat(tensors: Sequence[ArrayLike], axis: Optional[int] = None, *, dim: Optional[int] = None) -> "Tensor":
        """The tensors joined along an existing axis (default 0; ``dim`` is PyTorch's name for it).

        Every other axis must have the same size. Tensors without gradient and arrays may be
        mixed in; dtypes are promoted first (ints with floats take the float's dtype, float32
        with float64 gives float64, as in PyTorch).
        """
        tensors, axis = _joinable("cat", tensors, axis, dim)
        first = tensors[0]
        if first.ndim == 0:
            raise ValueError("cat: zero-dimensional tensors cannot be joined; use Tensor.stack")
        check_axes("cat", axis, first.ndim)
        axis %= first.ndim
        for tensor in tensors[1:]:
            if tensor.ndim != first.ndim:
                raise ValueError(f"cat: tensors must have the same number of axes, got shapes {first.shape} and {tensor.shape}")
            if tensor.shape[:axis] + tensor.shape[axis + 1:] != first.shape[:axis] + first.shape[axis + 1:]:
                raise ValueError(
                    f"cat along axis {axis}: shapes {first.shape} and {tensor.shape} differ on another axis"
                )
        return ops.Cat.apply(*tensors, axis=axis)

    @staticmethod
    def stack(tensors: Sequence[ArrayLike], axis: Optional[int] = None, *, dim: Optional[int] = None) -> "Tensor":
        """The tensors (all of one shape) stacked along a new axis (default 0; ``dim`` is an alias).

        Mixing and dtype promotion as in ``Tensor.cat``.
        """
        tensors, axis = _joinable("stack", tensors, axis, dim)
        first = tensors[0]
        check_axes("stack", axis, first.ndim + 1)
        for tensor in tensors[1:]:
            if tensor.shape != first.shape:
                raise ValueError(f"stack needs tensors of one shape, got shapes {first.shape} and {tensor.shape}")
        return ops.Stack.apply(*tensors, axis=axis % (first.ndim + 1))

    def astype(self, dtype) -> "Tensor":
        """This tensor converted to ``dtype`` (itself if it already has it, as PyTorch's ``.to``).

        A float result stays in the graph (the VJP converts G back to this tensor's dtype); an
        integer or bool result has no gradient, as in PyTorch: the op ``Cast`` is still applied
        (so tracers such as the ONNX exporter see it) but never recorded for backward.
        """
        dtype = dtype_argument("astype", dtype, default=None)
        if dtype == self.dtype:
            return self
        if dtype.kind != "f":  # an integer or bool tensor never requires grad
            return _apply_unrecorded(ops.Cast, self, dtype=dtype)
        return ops.Cast.apply(self, dtype=dtype)

    # -- neural-network ops -----------------------------------------------------------

    def relu(self) -> "Tensor":
        """max(x, 0); integers keep their dtype, a bool tensor is refused (as in PyTorch: numpy
        would make it int64)."""
        if self.data.dtype.kind == "b":  # (check_not_bool's test, inline: relu is on the batch-1 hot path)
            check_not_bool("relu", self)
        return ops.ReLU.apply(self)

    @pytorch_spellings
    def softmax(self, axis: int = -1) -> "Tensor":
        check_axes("softmax", axis, self.ndim)
        return ops.Softmax.apply(_floating(self), axis=axis)

    @pytorch_spellings
    def log_softmax(self, axis: int = -1) -> "Tensor":
        check_axes("log_softmax", axis, self.ndim)
        return ops.LogSoftmax.apply(_floating(self), axis=axis)

    def conv2d(self, weight: "Tensor", bias: Optional[ArrayLike] = None, stride: int | tuple[int, int] = 1,
               padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, groups: int = 1,
               relu: bool = False) -> "Tensor":
        """2-D cross-correlation as PyTorch's: self (N,C,H,W), weight (O,C/groups,kh,kw) → (N,O,Ho,Wo);
        one image (C,H,W) gives (O,Ho,Wo), as in PyTorch (a batch of one, the batch axis then dropped).

        ``bias`` is (O,) per channel, as in PyTorch, or (O,Ho,Wo) per position, as the seed's
        "Addition" layers; ``relu=True`` applies a relu in the same op (the seed's fused form).
        An integer input, weight or bias mixed with a float one takes the float's dtype (as ``+``);
        a bias that would widen the product's dtype (float64 on float32) is added after the
        product, as its own op, as ``x.conv2d(weight) + bias`` adds it (not rounded to the product's).
        A numpy array keeps its dtype here as with ``+``: ``np.zeros(O)`` is float64, and makes a
        float32 layer's output float64; give a float32 model float32 arrays.
        """
        check_flag("conv2d", "relu", relu)
        x, weight = _promoted(self, self._operand(weight))
        if bias is not None:
            x, bias = _promoted(x, self._operand(bias))
            weight = _promoted(x, weight)[1]  # x has become float if only the bias was
        check_not_bool("conv2d", x, weight)
        stride, padding, dilation = int_pair("stride", stride, 1), int_pair("padding", padding, 0), int_pair("dilation", dilation, 1)
        out_shape = check_conv2d(x.shape, weight.shape, stride, padding, dilation, groups)
        if bias is not None and bias.shape not in ((out_shape[0],), out_shape):
            raise ValueError(
                f"conv2d: bias of shape {bias.shape} fits neither one value per output channel "
                f"({out_shape[0]},) nor one per output position (O,Ho,Wo) = {out_shape}"
            )
        if x.ndim == 3:  # one image: through a batch of one (two views in the graph)
            return x.reshape(1, *x.shape).conv2d(weight, bias, stride, padding, dilation, groups, relu).reshape(out_shape)
        if bias is not None and bias.data.dtype != x.data.dtype and bias_widens_product(
                bias.data.dtype, bias.ndim, np.result_type(x.data.dtype, weight.data.dtype)):
            # a bias the sum would widen the product for (float64 on float32, int64 on int8): as +
            product = x.conv2d(weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
            product = product + (bias.reshape(-1, 1, 1) if bias.ndim == 1 else bias)
            return product.relu() if relu else product
        inputs = (x, weight) if bias is None else (x, weight, bias)
        return ops.Conv2d.apply(*inputs, stride=stride, padding=padding, dilation=dilation, groups=groups,
                                relu=bool(relu))

    def max_pool2d(self, kernel_size: int | tuple[int, int], stride: Optional[int | tuple[int, int]] = None) -> "Tensor":
        """Max over kh×kw windows of (N,C,H,W) or of one image (C,H,W), moved by ``stride``
        (default: the kernel size)."""
        return self.pad_max_pool2d(((0, 0), (0, 0)), kernel_size, stride)

    def pad_max_pool2d(self, padding: Sequence[Sequence[int]], kernel_size: int | tuple[int, int],
                       stride: Optional[int | tuple[int, int]] = None, relu: bool = False) -> "Tensor":
        """``self.pad(((0, 0), (0, 0), top_bottom, left_right)).max_pool2d(kernel_size, stride)``
        (then ``.relu()`` if ``relu``) as one op, the seed's form: ``padding`` = ((top, bottom),
        (left, right)) of zeros (PyTorch's max_pool2d pads with −∞ instead)."""
        if self.ndim not in (3, 4):
            raise ValueError(f"max_pool2d input must be 4-D (N,C,H,W), or 3-D (C,H,W) for one image, got shape {self.shape}")
        check_flag("max_pool2d", "relu", relu)
        if relu:
            check_not_bool("relu", self)
        padding = pool_padding(padding)
        (top, bottom), (left, right) = padding
        kernel, stride = pool_geometry(kernel_size, stride)
        height, width = self.shape[-2:]
        check_pool2d("max_pool2d", self.shape[:-2] + (height + top + bottom, width + left + right), kernel)
        if self.ndim == 3:  # one image: through a batch of one (two views in the graph)
            pooled = self.reshape(1, *self.shape).pad_max_pool2d(padding, kernel, stride, relu)
            return pooled.reshape(pooled.shape[1:])
        return ops.MaxPool2d.apply(self, kernel_size=kernel, stride=stride, padding=padding, relu=bool(relu))

    def avg_pool2d(self, kernel_size: int | tuple[int, int], stride: Optional[int | tuple[int, int]] = None) -> "Tensor":
        """Mean over kh×kw windows of (N,C,H,W) or of one image (C,H,W), moved by ``stride``
        (default: the kernel size). An integer or bool tensor gives float32, as every float-valued op."""
        kernel, stride = pool_geometry(kernel_size, stride)
        check_pool2d("avg_pool2d", self.shape, kernel)
        if self.ndim == 3:  # one image: through a batch of one (two views in the graph)
            pooled = self.reshape(1, *self.shape).avg_pool2d(kernel, stride)
            return pooled.reshape(pooled.shape[1:])
        return ops.AvgPool2d.apply(_floating(self), kernel_size=kernel, stride=stride)

    def cross_entropy(self, labels: ArrayLike) -> "Tensor":
        """Mean softmax cross-entropy of logits (N,K) against integer class labels (N,)."""
        labels = check_labels(self.shape, labels)
        return ops.CrossEntropy.apply(_floating(self), labels=labels)

    def nll_loss(self, labels: ArrayLike) -> "Tensor":
        """Mean negative log-likelihood of log-probabilities (N,K) at integer class labels (N,),
        as PyTorch's ``F.nll_loss``: −(1/N) Σₙ x[n, labelₙ] (NaN for an empty batch).
        ``x.log_softmax(axis=1).nll_loss(labels)`` equals ``x.cross_entropy(labels)``, which
        fuses the two. Recorded as indexing and a mean, whose VJPs it takes. Unlike PyTorch's, it
        takes only (N,K) (not one (K,) row) and has no ``ignore_index``: every label, −100
        included, must be a class in 0..K-1."""
        labels = check_labels(self.shape, labels, name="nll_loss", scores="log-probabilities")
        if self.dtype.kind != "f":
            raise TypeError(f"nll_loss needs float log-probabilities, got dtype {self.dtype}")
        return 0.0 - self[np.arange(len(labels)), labels].mean()  # (0 − x: a zero loss is +0, as PyTorch's)

    def mse_loss(self, target: ArrayLike, reduction: str = "mean") -> "Tensor":
        """The squared differences (x − target)², their mean (``reduction="mean"``, the default),
        their sum (``"sum"``) or each of them (``"none"``), as PyTorch's ``F.mse_loss``. ``target``
        (a Tensor or an array; a number for a 0-d x) must have x's shape: PyTorch broadcasts another one
        with a warning, usually a mistake (an (N,1) output against (N,) targets makes N×N
        differences); here it is a ValueError. A target that requires grad gets its gradient.
        Integer inputs are computed in float32 (PyTorch refuses them; a uint8 difference would wrap)."""
        return _reduced_loss("mse_loss", (_floating(self) - _loss_target("mse_loss", self, target)) ** 2, reduction)

    def binary_cross_entropy_with_logits(self, target: ArrayLike, reduction: str = "mean") -> "Tensor":
        """The binary cross-entropy of σ(x) against targets t in [0, 1], as PyTorch's
        ``F.binary_cross_entropy_with_logits``, from the logits x so that nothing overflows:
        max(x, 0) − x·t + log(1 + e^−|x|) per element (= −t log σ(x) − (1 − t) log(1 − σ(x))),
        reduced as in ``mse_loss`` (``target`` too). Recorded as maximum, products, abs, exp and
        log: the gradient is σ(x) − t (at x = 0 too: maximum's tie gives each side half)."""
        name = "binary_cross_entropy_with_logits"
        x, target = _floating(self), _loss_target(name, self, target)
        return _reduced_loss(name, x.maximum(0.0) - x * target + ((-x.abs()).exp() + 1.0).log(), reduction)

    def l1_loss(self, target: ArrayLike, reduction: str = "mean") -> "Tensor":
        """The absolute differences |x − target|, reduced as in ``mse_loss``, as PyTorch's
        ``F.l1_loss`` (the gradient at x = target is 0, as PyTorch's)."""
        return _reduced_loss("l1_loss", (_floating(self) - _loss_target("l1_loss", self, target)).abs(), reduction)

    # -- training-time ops ------------------------------------------------------------

    #: True while training (see ``train_mode``): dropout drops, batch norm uses batch statistics
    training: bool = False

    def dropout(self, p: float = 0.5) -> "Tensor":
        """Inverted dropout while ``Tensor.training``: each element is zeroed with probability
        ``p`` and the kept ones are scaled by 1/(1 − p), so the expectation is unchanged. The
        mask comes from ``tinygrad_cnn.random.generator()`` (``manual_seed`` repeats it).
        Outside training, and for p = 0, it returns ``self`` (no op is recorded), whatever its
        dtype, as PyTorch's; dropping from an integer tensor is a TypeError."""
        check_dropout(p)
        if not Tensor.training or p == 0:
            return self
        check_dropout(p, self.dtype)
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
        check_batch_norm(self.shape, self.dtype, weight, bias, running_mean, running_var, training, momentum, eps)
        channels = self.shape[1]
        weight = Tensor(np.ones(channels, dtype=self.dtype)) if weight is None else self._operand(weight)
        bias = Tensor(np.zeros(channels, dtype=self.dtype)) if bias is None else self._operand(bias)
        return ops.BatchNorm.apply(self, weight, bias, eps=float(eps), momentum=float(momentum),
                                   batch_statistics=training or running_mean is None,
                                   running_mean=running_mean, running_var=running_var)

    def layer_norm(self, normalized_shape: int | Sequence[int], weight: Optional[ArrayLike] = None,
                   bias: Optional[ArrayLike] = None, eps: float = 1e-5) -> "Tensor":
        """Layer normalization over the last axes, those of ``normalized_shape``, as PyTorch's
        ``F.layer_norm``: y = (x − mean) / √(var + eps) · weight + bias, with the mean and the
        biased variance over those axes of each sample; ``weight`` and ``bias`` (None: none) of
        shape ``normalized_shape``. Recorded as the means, subtraction, square, root, division,
        multiplication and addition it is made of: their VJPs give its gradient."""
        shape = normalized_shape_argument("layer_norm", normalized_shape)
        check_eps("layer_norm", eps)
        if self.shape[self.ndim - len(shape):] != shape:
            raise ValueError(f"layer_norm: normalized_shape {shape} must be the last axes of the input, "
                             f"whose shape is {self.shape}")
        for name, parameter in (("weight", weight), ("bias", bias)):
            parameter_shape = None if parameter is None else np.shape(parameter.data if isinstance(parameter, Tensor)
                                                                      else parameter)
            if parameter_shape is not None and parameter_shape != shape:
                raise ValueError(f"layer_norm: {name} must have the shape normalized_shape {shape}, got {parameter_shape}")
        axes = tuple(range(-len(shape), 0))
        x = _floating(self)
        centered = x - x.mean(axes, keepdims=True)
        normalized = centered / ((centered ** 2).mean(axes, keepdims=True) + eps).sqrt()
        if weight is not None:
            normalized = normalized * weight
        return normalized if bias is None else normalized + bias


    # -- PyTorch's cast shorthands, last: inside the class body their names would hide the
    # builtin float from the annotations that follow them

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    def long(self) -> "Tensor":
        return self.astype(np.int64)

    def int(self) -> "Tensor":
        return self.astype(np.int32)

    def bool(self) -> "Tensor":
        return self.astype(np.bool_)


# ---------------------------------------------------------------------------
# Helpers of the methods: unrecorded ops, dtype promotion, labels, indices, joining
# (the argument checks that need no Tensor are in checks.py)
# ---------------------------------------------------------------------------


def _apply_unrecorded(op: type[Function], *inputs: Tensor, **options: Any) -> Tensor:
    """``op`` applied but never recorded for backward, for results that have no gradient
    (a comparison's mask, an index, an integer cast): no Node, nothing saved. It is still an
    op, so tracers (forward hooks: the ONNX exporter, the summary) see it."""
    if _grad_mode.recording and any(tensor.requires_grad for tensor in inputs):
        with no_grad():
            return op.apply(*inputs, **options)
    return op.apply(*inputs, **options)


def _integer_divisor_checked(symbol: str, left: Tensor, right: Tensor) -> tuple[Tensor, Tensor]:
    """The operands of ``%`` or ``//`` (already promoted), once they broadcast and, for integers,
    no divisor is 0: a ZeroDivisionError there, as PyTorch (numpy would give 0 with a warning)."""
    check_broadcast(symbol, left, right)
    if right.dtype.kind in "biu" and left.dtype.kind in "biu" and not np.all(right.data):
        raise ZeroDivisionError(f"integer {symbol} by zero: the divisor holds a 0 (PyTorch raises too; "
                                "a float divisor gives NaN or inf instead)")
    return left, right


def _matmul_bias(bias: ArrayLike, product_dtype: np.dtype) -> tuple[Tensor, bool]:
    """``bias`` as a Tensor promoted against a matmul product of ``product_dtype`` as ``product
    + bias`` promotes it (a number or a 0-d tensor takes the product's dtype), and whether
    ``product + bias`` keeps ``product_dtype``, so that MatMul can add it in place (then the bias
    has that dtype too). Otherwise (a float64 bias on a float32 product, a float bias on an
    integer one) the sum widens, and the product is computed first, as ``+`` would."""
    if isinstance(bias, Tensor) and bias.data.dtype == product_dtype:  # the usual bias: nothing to promote
        return bias, True
    product = Tensor(np.empty((0, 0), dtype=product_dtype))  # a stand-in: only its dtype and ndim count
    product, bias = _promoted(product, product._operand(bias))
    if product.data.dtype != product_dtype or bias_widens_product(bias.data.dtype, bias.ndim, product_dtype):
        return bias, False
    return (bias if bias.data.dtype == product_dtype else bias.astype(product_dtype)), True  # (an int or bool bias)


def _check_matmul_bias(bias_shape: tuple[int, ...], product_shape: tuple[int, ...]) -> None:
    """A ValueError unless a bias of ``bias_shape`` broadcasts to ``product_shape`` unchanged."""
    if bias_shape == product_shape[len(product_shape) - len(bias_shape):]:  # (m,), (n, m): the usual biases
        return
    try:
        fits = np.broadcast_shapes(bias_shape, product_shape) == product_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"matmul: a bias of shape {bias_shape} does not broadcast to the product's shape "
                         f"{product_shape} (a bias (m,) or (n, m) fits an (n, m) product)")


def _promoted(a: Tensor, b: Tensor, true_division: bool = False) -> tuple[Tensor, Tensor]:
    """PyTorch's promotion for a binary op: an integer or bool operand mixed with a float
    one takes the float's dtype (numpy would make int64 + float32 float64); two integer
    operands stay integer, except under true division, which gives float32. Float32 mixed
    with float64 gives float64 (the VJP casts back when it accumulates), except that a 0-d
    tensor takes the dtype of an n-d one of its kind (float, or integer): PyTorch treats it
    as a number there (an integer one that does not fit that dtype keeps numpy's promotion,
    which gives the true result: uint8 + Tensor(300) is int64)."""
    if a.data.dtype is b.data.dtype and (not true_division or a.data.dtype.kind == "f"):  # nothing to promote
        return a, b
    a_float, b_float = a.dtype.kind == "f", b.dtype.kind == "f"
    if a_float and not b_float:
        return a, b.astype(a.dtype)
    if b_float and not a_float:
        return a.astype(b.dtype), b
    if true_division and not a_float:
        return a.astype(np.float32), b.astype(np.float32)
    if (a.ndim == 0) != (b.ndim == 0):
        if a_float and b_float:  # (a recorded cast: the 0-d side keeps its gradient)
            return (a.astype(b.dtype), b) if a.ndim == 0 else (a, b.astype(a.dtype))
        number, other = (a, b) if a.ndim == 0 else (b, a)
        if number.dtype.kind in "iu" and other.dtype.kind in "iu":
            limits = np.iinfo(other.dtype)
            if limits.min <= number.item() <= limits.max:  # (else numpy's wider dtype: the true result)
                number = number.astype(other.dtype)
                return (number, b) if a.ndim == 0 else (a, number)
    return a, b


def _floating(tensor: Tensor) -> Tensor:
    """The tensor itself if it is float, else its values as float32 (PyTorch gives float32
    for exp, log, ... of an integer tensor)."""
    return tensor if tensor.dtype.kind == "f" else tensor.astype(np.float32)


def _axes_of(axis: Optional[int | Sequence[int]], ndim: int) -> tuple[int, ...]:
    """The axes a reduction's (checked) ``axis`` names, as non-negative ints (None: every axis)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(single) % max(ndim, 1) for single in axes)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` without changing it."""
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _loss_target(name: str, prediction: Tensor, target: ArrayLike) -> Tensor:
    """A regression loss's target as a float Tensor (a Python number takes the prediction's
    float dtype; an array keeps its own, and float32 with float64 gives float64, as PyTorch's
    promotion; integers become float32, where PyTorch refuses integer losses and numpy would
    wrap around), refused (ValueError) unless it has the prediction's shape."""
    target = _floating(target if isinstance(target, Tensor) else constant_like(target, _floating(prediction)))
    if target.shape != prediction.shape:
        raise ValueError(f"{name}: the target has shape {target.shape}, the input {prediction.shape}; they must be "
                         "equal (PyTorch would broadcast them with a warning, usually a mistake)")
    return target


def _reduced_loss(name: str, losses: Tensor, reduction: str) -> Tensor:
    """Each element's loss reduced by PyTorch's ``reduction``: "mean", "sum" or "none"."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_labels(logits_shape: tuple[int, ...], labels: ArrayLike, name: str = "cross_entropy",
                 scores: str = "logits") -> np.ndarray:
    """Class labels for ``scores`` (logits, or log-probabilities) of shape (N, K), checked: one
    integer in 0..K-1 per row (floats that are whole numbers are accepted), as an intp array; a
    clear error otherwise, naming ``name``. What ``cross_entropy`` and ``nll_loss`` run first; a
    Function of your own that takes labels can call it too."""
    if len(logits_shape) != 2:
        raise ValueError(f"{name} needs 2-D {scores} (N,K), got shape {logits_shape}")
    if isinstance(labels, Tensor):
        labels = labels.data
    labels = np.asarray(labels)
    whole_floats = labels.dtype.kind == "f" and bool(np.all(np.mod(labels, 1) == 0))  # (cast after the range check)
    if labels.dtype.kind not in "iu" and not whole_floats:
        raise TypeError(f"{name} labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (logits_shape[0],):
        raise ValueError(
            f"{name} needs one label per row of {scores} {logits_shape}: "
            f"expected labels of shape ({logits_shape[0]},), got {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= logits_shape[1]):
        bad = labels[(labels < 0) | (labels >= logits_shape[1])][0]
        raise ValueError(
            f"{name} label {bad if labels.dtype.kind in 'iu' else format(bad, 'g')} is out of range for {logits_shape[1]} classes (0..{logits_shape[1] - 1})"
        )
    return labels.astype(np.intp, copy=False)


def _checked_index(index: object, shape: tuple[int, ...]) -> object:
    """``index`` with Tensors replaced by their arrays, tried with numpy's rules on a stand-in
    of ``shape`` that holds no memory, so a bad index fails here and names the shape."""
    def plain(part: object) -> object:
        return part.data if isinstance(part, Tensor) else part

    index = tuple(plain(part) for part in index) if isinstance(index, tuple) else plain(index)
    try:
        np.broadcast_to(np.empty((), dtype=bool), shape)[index]
    except IndexError as error:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {shape}: {error}") from None
    return index


def _joinable(name: str, tensors: Sequence[ArrayLike], axis: Optional[int],
              dim: Optional[int]) -> tuple[list[Tensor], int]:
    """cat/stack's inputs as Tensors of one dtype, and the axis (``dim`` is its alias)."""
    if axis is not None and dim is not None:
        raise TypeError(f"{name}: give axis or dim (the same thing), not both")
    axis = axis if axis is not None else (dim if dim is not None else 0)
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name} takes a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name} needs at least one tensor, got an empty {type(tensors).__name__}")
    tensors = [tensor if isinstance(tensor, Tensor) else Tensor(tensor) for tensor in tensors]
    floats = [tensor.dtype for tensor in tensors if tensor.dtype.kind == "f"]
    dtype = np.result_type(*floats) if floats else np.result_type(*[tensor.dtype for tensor in tensors])
    return [tensor.astype(dtype) for tensor in tensors], int(axis)


function_module.tensor_module = sys.modules[__name__]  # (for Function.apply: see function.py)
