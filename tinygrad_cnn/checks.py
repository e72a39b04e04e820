"""Argument checks for the Tensor API: a clear error that names the problem, raised before any
work, instead of a deep numpy traceback or a silent wrong answer.

Each function takes plain values (shapes, axes, pad widths, dtypes, numbers) and either
returns them normalised or raises; none builds a Tensor or runs an op, so ``tensor.py``
keeps the math and this module the rules. What every check allows is what PyTorch (or
numpy, where the two agree) allows; the README's "Decisions" say where they differ.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from tinygrad_cnn.tensor import Tensor

FLOAT_TYPES = (np.float32, np.float64)


def resolve_shape(shape: tuple[int, ...], original: tuple[int, ...], method: str = "reshape") -> tuple[int, ...]:
    """Replace a single -1 in ``shape`` by the size that keeps the element count (a ValueError
    naming ``method`` where no size does)."""
    size = math.prod(original)  # (math.prod, not np.prod: 1 µs, not 3, on a short tuple)
    unknown = [axis for axis, length in enumerate(shape) if length == -1]
    known = math.prod([length for length in shape if length != -1])
    problem = len(unknown) > 1 or any(length < -1 for length in shape)
    if not problem and unknown:
        problem = known == 0 or size % known != 0
        if not problem:
            shape = shape[: unknown[0]] + (size // known,) + shape[unknown[0] + 1 :]
    if problem or math.prod(shape) != size:
        message = f"cannot reshape a tensor of shape {original} ({size} elements) into {shape}"
        raise ValueError(message if method == "reshape" else f"{method}: {message}")
    return shape


def check_is_number(name: str, argument: str, value: object, expected: str = "a number") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {argument} must be {expected}, got {value!r}")


def check_assigned_grad(grad: object, data: np.ndarray) -> None:
    """``tensor.grad = grad`` by hand, for a tensor holding ``data``: as PyTorch checks it, the
    grad must match the tensor's shape and dtype (a float one: integer and bool tensors have no
    gradient). It must be a numpy array, what ``backward()`` leaves there (a Tensor is refused:
    backward would add into its data in place, behind its back), writable (backward adds in
    place) and not the tensor's own data (a step would change both; PyTorch refuses a tensor
    as its own grad)."""
    if not isinstance(grad, np.ndarray):
        from tinygrad_cnn.tensor import Tensor  # (here: tensor.py imports this module)

        hint = (": assign an array, e.g. t.data.copy() (a grad is a numpy array, as backward() leaves it)"
                if isinstance(grad, Tensor) else "")
        raise TypeError(f"tensor.grad must be None or a numpy array, got a {type(grad).__name__}{hint}")
    if data.dtype.type not in FLOAT_TYPES:
        raise TypeError(f"tensor.grad: a tensor of dtype {data.dtype} has no gradient (only float32 and "
                        "float64 tensors do); its grad can only be None")
    if grad.dtype != data.dtype:
        raise TypeError(f"tensor.grad: a grad of dtype {grad.dtype} was assigned to a tensor of dtype "
                        f"{data.dtype}; it must have the tensor's dtype (convert it: .astype(np.{data.dtype}))")
    if grad.shape != data.shape:
        raise ValueError(f"tensor.grad: a grad of shape {grad.shape} was assigned to a tensor of shape "
                         f"{data.shape}; it must have the tensor's shape (it would not be broadcast)")
    if not grad.flags.writeable:
        raise ValueError("tensor.grad: the assigned grad is a read-only array (as np.broadcast_to gives), and "
                         "backward() adds into a grad in place; assign a writable copy (np.array(...))")
    if np.may_share_memory(grad, data):
        raise ValueError("tensor.grad: the assigned grad shares memory with the tensor's own data, so a step "
                         "would change both (PyTorch refuses a tensor as its own grad); assign a copy")


def integer_clip_bounds(dtype: np.dtype, low: Optional[int], high: Optional[int],
                        method: str = "clip") -> tuple[Optional[int], Optional[int]]:
    """``clip``'s int bounds for an integer tensor, limited to its dtype's range: a bound beyond
    it limits nothing there (uint8 to high=300). An OverflowError (naming ``method``) where every
    element would become a value the dtype cannot hold (uint8 to low=300, or to high=-5)."""
    limits = np.iinfo(dtype)
    if high is not None and high < limits.min:
        every = high
    elif low is not None and low > limits.max and (high is None or high >= low):
        every = low
    else:
        every = None
    if every is not None:
        raise OverflowError(f"{method}: every element would become {every}, which does not fit the tensor's dtype "
                            f"{dtype} ({limits.min}..{limits.max}); convert the tensor first, e.g. .astype(np.int64)")
    def limited(bound: Optional[int]) -> Optional[int]:
        return None if bound is None else int(np.clip(bound, limits.min, limits.max))
    return limited(low), limited(high)


def check_reducible(name: str, axis: Optional[int | Sequence[int]], shape: tuple[int, ...]) -> None:
    """max/min need at least one element in every group they reduce."""
    check_axes(name, axis, len(shape))
    if axis is None or not shape:  # all axes (a 0-d tensor has one element)
        empty = [position for position, size in enumerate(shape) if size == 0]
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        empty = [int(a) % len(shape) for a in axes if shape[a] == 0]
    if empty:
        raise ValueError(f"{name}: cannot reduce a tensor of shape {shape} over axis {empty[0]}, "
                         f"which has size 0: there is no {name} of no elements")


def check_flag(name: str, argument: str, value: object, hint: str = "") -> None:
    """A switch (``keepdims``, ``relu``) must be True or False, a Python or numpy bool, as
    PyTorch's: read as a truth value, the string "no" would switch it on."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: {argument} must be True or False, got {value!r}{hint}")


def check_keepdims(name: str, keepdims: object) -> None:
    """``keepdims`` must be a bool, as PyTorch's ``keepdim``. numpy takes any int there, so
    ``x.sum(0, 1)``, meant as a sum over axes 0 and 1, summed axis 0 only and kept it; a
    string was taken as True, and None failed deep in numpy."""
    hint = (" (to reduce over several axes, pass them as one tuple: axis=(0, 1))"
            if isinstance(keepdims, (int, np.integer)) and not isinstance(keepdims, bool) else "")
    check_flag(name, "keepdims", keepdims, hint)


def check_index_axis(name: str, axis: Optional[int], shape: tuple[int, ...]) -> None:
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int or None, got {axis!r}")
    check_reducible(name, axis, shape)


def dimension_argument(name: str, label: str, dimension: object, dims: int, shape: tuple[int, ...]) -> int:
    """``dimension`` as an index in [0, dims) if it is an int in [-dims, dims - 1] (PyTorch's
    range for an axis of ``flatten``, ``squeeze``, ``unsqueeze``), else a TypeError or an
    IndexError naming the call, the argument (``label``) and the tensor's shape."""
    if not isinstance(dimension, (int, np.integer)) or isinstance(dimension, bool):
        raise TypeError(f"{name}: {label} must be an int, got {dimension!r}")
    if not -dims <= dimension < dims:
        raise IndexError(f"{name}: {label} {dimension} is out of range for a tensor of shape {shape} "
                         f"(expected it in [{-dims}, {dims - 1}])")
    return int(dimension) % dims


def in_place_refusal(symbol: str, target: Tensor, other: Tensor, view_made_under_no_grad: bool) -> str:
    """Why an in-place update outside no_grad() is refused (the RuntimeError's message).
    ``view_made_under_no_grad``: the target is a view made under no_grad() of a tensor that
    requires grad (see ``Tensor._update_in_place``)."""
    if view_made_under_no_grad:
        return (f"in-place {symbol} outside no_grad() on a view that was made under no_grad() of a tensor "
                "that requires grad: whether the change belongs in the graph is ambiguous, so it is refused "
                "(as in PyTorch). Make the view and the change in the same place: both inside one "
                f"`with no_grad():` block (the change is not recorded), or write v = v {symbol[:-1]} y "
                "to make a new tensor.")
    if target.requires_grad and target.is_leaf:
        problem = (f"a leaf tensor that requires grad is being used in an in-place operation ({symbol}) "
                   "outside no_grad(): the update would not be recorded in the graph")
    elif target.requires_grad:
        problem = (f"in-place {symbol} on a tensor computed by {target.node.op.name}, which requires grad: "
                   "in-place updates are not recorded in the graph")
    else:
        problem = (f"in-place {symbol} with a right-hand side that requires grad: the tensor would have "
                   "to join the graph, and in-place updates are not recorded in it")
    return (f"{problem}. Update parameters inside `with no_grad():` (as optimizers do: "
            f"p -= lr * p.grad), or write x = x {symbol[:-1]} y to make a new tensor.")


#: the ops PyTorch refuses on bool tensors (masks) where numpy would silently give something
#: else (relu: int64 0s and 1s; ** % //: int8; @ and conv2d: an or of ands, not counts): what
#: is refused, and what to write instead. (Kept, as answers a mask has: sum counts the Trues,
#: mean is their fraction, max/min and max_pool2d are any/all, argmax the first True.)
BOOL_REFUSALS = {
    "relu": ("relu of a bool tensor", "a mask is never negative; use the mask itself, or convert it first "
             "(mask.astype(np.float32))"),
    "abs": ("abs of a bool tensor", "a mask has no sign; use the mask itself, or convert it first "
            "(mask.astype(np.float32))"),
    "neg": ("-x of a bool tensor", "to invert a mask write mask == False; for -1s and 0s convert it first "
            "(-mask.astype(np.int64))"),
    "-": ("a - b of two bool tensors", "for 'one but not the other' write a != b; to count, convert one first "
          "(a.astype(np.int64) - b)"),
    **{symbol: (f"a {symbol} b of two bool tensors", f"numpy would give int8; convert one first (a.astype(np.int64) {symbol} b)")
       for symbol in ("**", "%", "//")},
    "@": ("a @ b of two bool tensors", "numpy would give True/False (an or of ands), not counts; convert one "
          "first (a.astype(np.int64) @ b)"),
    "conv2d": ("conv2d of a bool input with a bool weight", "numpy would give True/False (an or of ands), not "
               "sums; convert one first (x.astype(np.float32))"),
}


def check_not_bool(operation: str, *tensors: Tensor) -> None:
    """Refuse ``operation`` (a key of ``BOOL_REFUSALS``) where all of ``tensors`` (its one
    input, or both operands after promotion) are bool, as PyTorch does, saying what to write."""
    for tensor in tensors:  # (a loop, not all(generator): 0.2 µs less on every conv2d and @)
        if tensor.data.dtype.kind != "b":
            return
    what, instead = BOOL_REFUSALS[operation]
    raise TypeError(f"{what} is refused, as in PyTorch: {instead}")


def check_broadcast(symbol: str, a: Tensor, b: Tensor) -> None:
    """numpy's rule, aligned from the right: two sizes fit when equal or one is 1 (in plain
    Python: 0.5 µs, where np.broadcast_shapes takes 2.5 µs, on every binary op)."""
    for size_a, size_b in zip(reversed(a.shape), reversed(b.shape)):
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise ValueError(f"shapes {a.shape} and {b.shape} cannot be broadcast together for '{symbol}'")


def check_axes(name: str, axis: Optional[int | Sequence[int]], ndim: int) -> None:
    if axis is None:
        return
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis) if isinstance(axis, (tuple, list)) else None
    if axes is None or not all(isinstance(single, (int, np.integer)) and not isinstance(single, bool) for single in axes):
        raise TypeError(f"{name}: axis must be an int or a sequence of ints, got {axis!r}")
    if not axes:
        raise ValueError(f"{name}: axis={axis!r} names no axis (numpy would reduce none, PyTorch all); "
                         "pass axis=None to reduce over every axis")
    dims = max(ndim, 1)  # a 0-d tensor takes axis 0 or -1, as in PyTorch
    for single in axes:  # (the range first: axis 3 of a 3-D tensor is not "axis 0 again")
        if not -dims <= single < dims:
            raise ValueError(f"{name}: axis {single} is out of range for a tensor with {ndim} dimensions")
    if len({int(a) % dims for a in axes}) != len(axes):
        raise ValueError(f"{name}: axis {axis} names the same axis twice")


def check_batch_norm_numbers(caller: str, momentum: object, eps: object) -> None:
    """Batch norm's ``momentum`` must be a number in [0, 1] and ``eps`` a finite number > 0
    (for ``Tensor.batch_norm`` and the ``nn.BatchNorm2d`` layer alike)."""
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"{caller}: momentum must be a number in [0, 1], got {momentum!r} (momentum=None, "
                        "PyTorch's cumulative moving average, is not supported)")
    if not 0 <= momentum <= 1:
        raise ValueError(f"{caller}: momentum must lie in [0, 1], got {momentum}")
    check_eps(caller, eps)


def check_eps(caller: str, eps: object) -> None:
    """A normalization's ``eps`` must be a finite number > 0 (TypeError for a non-number)."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < math.inf:
        error = TypeError if isinstance(eps, bool) or not isinstance(eps, numbers.Real) else ValueError
        raise error(f"{caller}: eps must be a finite number > 0, got {eps!r}")


def normalized_shape_argument(caller: str, normalized_shape: object) -> tuple[int, ...]:
    """Layer norm's ``normalized_shape`` (an int, or a non-empty sequence of ints >= 1) as a tuple."""
    shape = (normalized_shape,) if is_int(normalized_shape) else \
        tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else None
    if not shape or not all(is_int(size) and size >= 1 for size in shape):
        raise TypeError(f"{caller}: normalized_shape must be a positive int or a non-empty sequence of them, "
                        f"got {normalized_shape!r}")
    return tuple(int(size) for size in shape)


def is_int(item: object) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(item, (int, np.integer)) and not isinstance(item, bool)


def int_pair(name: str, value: int | Sequence[int], minimum: int) -> tuple[int, int]:
    """``value`` (an int, or a pair of them, Python or numpy, not bools) as a pair of ints >=
    ``minimum`` (0 or 1), else an error naming ``name``: a kernel size, stride, padding, ...
    One int in a tuple or list, ``stride=(2,)``, counts for both axes, as PyTorch's conv2d and
    max_pool2d take it."""
    if type(value) is int and value >= minimum:  # the usual case first: every conv call checks three
        return value, value
    pair: tuple = (value, value) if is_int(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) == 1:
        pair *= 2
    if len(pair) != 2 or not all(is_int(v) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(pair[0]), int(pair[1])


def normalize_pad_width(pad_width: int | Sequence, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """np.pad's rules: one int for every side, one (before, after) pair for every axis, or a
    pair per axis; returned as a pair per axis."""
    if (isinstance(pad_width, (tuple, list)) and len(pad_width) == len(shape)
            and all(isinstance(pair, (tuple, list)) and len(pair) == 2
                    and all(type(width) is int and width >= 0 for width in pair) for pair in pad_width)):
        # already a pair of non-negative ints per axis, as the seed's pools give: no numpy (3 µs, not 11)
        return tuple((pair[0], pair[1]) for pair in pad_width)
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


def check_conv2d(x_shape: tuple[int, ...], weight_shape: tuple[int, ...], stride: tuple[int, int],
                  padding: tuple[int, int], dilation: tuple[int, int], groups: int) -> tuple[int, int, int]:
    """Check a conv2d's shapes and options (an N,C,H,W batch or one C,H,W image); return the
    output's (O, Ho, Wo)."""
    if len(x_shape) not in (3, 4):
        raise ValueError(f"conv2d input must be 4-D (N,C,H,W), or 3-D (C,H,W) for one image, got shape {x_shape}")
    if len(weight_shape) != 4:
        raise ValueError(f"conv2d weight must be 4-D (O,C/groups,kh,kw), got shape {weight_shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d groups must be a positive int, got {groups!r}")
    if weight_shape[0] == 0:
        raise ValueError(f"conv2d weight needs at least one output channel, got weight of shape {weight_shape}")
    if x_shape[-3] % groups or weight_shape[0] % groups:
        raise ValueError(
            f"conv2d groups={groups} must divide the input channels ({x_shape[-3]}) and the output "
            f"channels ({weight_shape[0]})"
        )
    if x_shape[-3] != weight_shape[1] * groups:
        raise ValueError(
            f"conv2d channel mismatch: input {x_shape} has {x_shape[-3]} channels, weight {weight_shape} "
            f"with groups={groups} expects {weight_shape[1] * groups}"
        )
    padded_h, padded_w = x_shape[-2] + 2 * padding[0], x_shape[-1] + 2 * padding[1]
    reach_h, reach_w = dilation[0] * (weight_shape[2] - 1) + 1, dilation[1] * (weight_shape[3] - 1) + 1
    if weight_shape[2] < 1 or weight_shape[3] < 1 or reach_h > padded_h or reach_w > padded_w:
        raise ValueError(
            f"conv2d kernel {weight_shape[2]}x{weight_shape[3]} (dilation {dilation}) does not fit the "
            f"padded input {padded_h}x{padded_w} (input {x_shape}, padding {padding})"
        )
    return weight_shape[0], (padded_h - reach_h) // stride[0] + 1, (padded_w - reach_w) // stride[1] + 1


def bias_widens_product(bias_dtype: np.dtype, bias_ndim: int, product_dtype: np.dtype) -> bool:
    """Whether ``product + bias`` has a wider dtype than the product (a float64 bias on a float32
    product, int64 or uint8 on int8, a float on integers), so that adding the bias into the
    product in place would round or cut it: numpy's promotion, except that an integer or bool
    bias, and a 0-d float one, take a float product's dtype, as ``+`` gives them here."""
    if bias_dtype == product_dtype or np.result_type(bias_dtype, product_dtype) == product_dtype:
        return False
    return not (product_dtype.kind == "f" and (bias_dtype.kind in "biu" or (bias_ndim == 0 and bias_dtype.kind == "f")))


def pool_padding(padding: object) -> tuple[tuple[int, int], tuple[int, int]]:
    """pad_max_pool2d's ``padding``, ((top, bottom), (left, right)) of non-negative ints, checked."""
    if not (isinstance(padding, (tuple, list)) and len(padding) == 2
            and _is_int_pair(padding[0]) and _is_int_pair(padding[1])):
        raise TypeError(f"pad_max_pool2d padding must be ((top, bottom), (left, right)), pairs of ints, "
                        f"got {padding!r}")
    (top, bottom), (left, right) = padding
    if top < 0 or bottom < 0 or left < 0 or right < 0:
        raise ValueError(f"pad_max_pool2d padding must be non-negative, got {padding!r}")
    return (int(top), int(bottom)), (int(left), int(right))


def _is_int_pair(value: object) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and is_int(value[0]) and is_int(value[1])


def pool_geometry(kernel_size: int | tuple[int, int], stride: Optional[int | tuple[int, int]],
                  caller: str = "") -> tuple[tuple[int, int], tuple[int, int]]:
    """A pool's kernel size and stride (None: the kernel size) as pairs of ints >= 1; an error
    names the argument, after ``caller`` ("MaxPool2d: stride ...") if given."""
    prefix = f"{caller}: " if caller else ""
    kernel = int_pair(f"{prefix}kernel_size", kernel_size, minimum=1)
    return kernel, kernel if stride is None else int_pair(f"{prefix}stride", stride, minimum=1)


def check_pool2d(name: str, x_shape: tuple[int, ...], kernel: tuple[int, int]) -> None:
    """Check a pool's input (an N,C,H,W batch or one C,H,W image) against its kernel."""
    if len(x_shape) not in (3, 4):
        raise ValueError(f"{name} input must be 4-D (N,C,H,W), or 3-D (C,H,W) for one image, got shape {x_shape}")
    if kernel[0] > x_shape[-2] or kernel[1] > x_shape[-1]:
        raise ValueError(f"{name} kernel {kernel[0]}x{kernel[1]} is larger than the input {x_shape[-2]}x{x_shape[-1]}")


def integers_argument(name: str, values: tuple) -> tuple[int, ...]:
    """Ints given separately or as one sequence: f(2, 3) or f((2, 3))."""
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = tuple(values[0])
    if not all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in values):
        raise TypeError(f"{name} needs ints, got {values!r}")
    return tuple(int(value) for value in values)


def shape_argument(name: str, sizes: tuple) -> tuple[int, ...]:
    shape = integers_argument(name, sizes)
    if any(size < 0 for size in shape):
        raise ValueError(f"{name}: sizes must be non-negative, got shape {shape}")
    return shape


def dtype_argument(name: str, dtype, default=np.float32, floats_only: bool = False) -> np.dtype:
    """``dtype`` (``default`` when None) as a numpy dtype a Tensor can hold, or a TypeError."""
    if dtype is None and default is None:
        raise TypeError(f"{name} needs a dtype")
    try:
        resolved = np.dtype(default if dtype is None else dtype)
    except TypeError:
        raise TypeError(f"{name}: {dtype!r} is not a dtype") from None
    if not (resolved.type in FLOAT_TYPES or (not floats_only and resolved.kind in "biu")):
        allowed = "float32 or float64" if floats_only else "bool, an integer type, float32 or float64"
        raise TypeError(f"{name}: dtype must be {allowed}, got {resolved}")
    return resolved


def check_dropout(p: float, dtype: Optional[np.dtype] = None) -> None:
    """``p`` a number in [0, 1] and, if given (dropout that will drop), ``dtype`` a float one."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability p must be a number in [0, 1], got {p!r}")
    if dtype is not None and dtype.kind != "f":
        raise TypeError(f"dropout needs a float tensor, got dtype {dtype}")


def check_batch_norm(shape: tuple[int, ...], dtype: np.dtype, weight, bias, running_mean, running_var,
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
        if training and value is not None and not value.flags.writeable:
            # checked for both before either is updated: a failing in-place update of the second
            # would leave the first one moved, and numpy's "output array is read-only" names neither
            raise ValueError(
                f"batch_norm {name} is a read-only array (as np.broadcast_to or np.load with mmap_mode='r' "
                f"give), which training updates in place; give it a writable copy (np.array(...)) first"
            )
    check_batch_norm_numbers("batch_norm", momentum, eps)
    if (training or running_mean is None) and int(np.prod(shape[:1] + shape[2:])) <= 1:
        # (in evaluation without running statistics the batch's are used too: one value would be
        # normalized to 0 and the output would be the bias, whatever the input)
        raise ValueError(f"batch_norm {'in training' if training else 'without running statistics'} normalizes "
                         f"with the batch's statistics and needs more than one value per channel, got input shape {shape}")
