"""Export a model's recorded forward pass as an ONNX model (needs ``pip install tinygrad_cnn[onnx]``).

    from tinygrad_cnn.onnx import export
    export(SeedCNN(), "seed_cnn.onnx", (1, 1, 28, 28))     # input "images" N,1,28,28, output "logits"

    import onnxruntime, numpy as np                         # then serve it anywhere, e.g.
    session = onnxruntime.InferenceSession("seed_cnn.onnx")
    logits = session.run(None, {"images": images.astype(np.float32)})[0]

How: the model runs under ``no_grad``, in evaluation mode (``Tensor.training`` off, as
PyTorch's exporter does), on an example input while a hook on ``tensor.forward_hooks``
records every op application (the op object with its options, its input Tensors and its
output Tensor), as ``summary.trace`` does. Each op that the model's output depends on
becomes one or a few ONNX nodes through the table ``CONVERTERS`` {op class name:
converter}; a new op only needs an entry there. The Tensors no traced op produced are the
graph's leaves:

* the model's parameters (``nn.named_parameters``) become initializers named by their
  dotted names (``conv1.weight``), so the file reads like the state dict; so do buffers
  an op holds (a batch norm's ``bn.running_mean``);
* the graph input is the one leaf that holds the example input (after the model's own
  cast, e.g. uint8 → float32): models turn the user's array into a fresh Tensor inside
  ``__call__``, so that is how it is found. An integer input whose every use is one cast
  to float is taken as that float input (``_fold_casts``). Its batch axis is symbolic
  ("N"): the file runs on any batch size, and so is every output axis that grows with it;
* every other leaf (a number like the 255 of ``x / 255``) is a constant initializer.

The model is traced a second time on another input: a constant that changes with the
input was computed outside the graph (``.data`` and numpy give plain arrays) and would be
frozen into the file, so it is an error, as are different ops for different inputs (control
flow on the values). Comparisons such as ``x > 0`` are ops (``Compare``): they export as
Greater, Less, …, so ``where(x > 0, x, 0)`` runs on the mask of each new input; ``argmax``
and ``argmin`` export as ArgMax and ArgMin.

With a dynamic batch (the default) it is traced a third time, on a batch one larger: a
constant that changes with the batch size (``y.sum(axis=0) / y.shape[0]``: write
``y.mean(axis=0)``) would be wrong in the file at any other batch size, so it is an error
naming the op, as is a model that cannot run on that batch; ``dynamic_batch=False`` exports
the example's batch size only. The output's leading axis is "N" when it grew with the batch.

Decisions: opset 17 (``OPSET``), which onnxruntime has supported since 1.12. The file
computes in float32 whatever the model's dtype: a float64 model's parameters, buffers and
constants are written as float32, its input and output are float32, and a cast to float64
becomes a cast to float32. Files are served with float32 input, and onnxruntime has no
float64 kernel for Conv or AveragePool (a float64 file would load and then fail to run). Likewise
onnxruntime has no kernel for some integer dtypes that ONNX allows (int16 Max, Where and Pad,
uint32 ReduceMax, …: the file passes onnx.checker and fails to load): such a node computes in
a wider integer type that holds every value, its result cast back, so it stays exact
(``RUNTIME_DTYPES``); so do nodes that only select values where ONNX lacks the dtype
(ReduceMax of int16 or bools; MaxPool of bools, and of 16- and 32-bit ints in float32 or
float64, exact for each of those). A uint64 ``where``, ``max``/``min`` or ``argmax``/``argmin``,
and an int64 or uint64 max pool, which no wider type holds exactly, are an error naming the
op and the dtype. A reshape keeps
the batch dynamic by comparing its target shape in the traces at the two batch sizes: an axis
that changes with the batch is 0 ("copy the input's axis") where it equals the input's axis in
both, else -1 (``convert_reshape``). The graph's input and output names are checked, never
renamed: a server feeds the input under the name it gave.
Zero padding stays zero padding: a pool's ``padding`` becomes an explicit ``Pad`` node
(ONNX MaxPool would pad with −inf). An op's ``relu=True`` option becomes a ``Relu`` node
after it. Dropout exports as Identity. An op with no ONNX equivalent (the loss, a user's
own ``Function``) is a clear error naming it.

NaN: onnxruntime's ReduceMax, ReduceMin, MaxPool, ArgMax and ArgMin may skip a NaN, and
whether a NaN reaches the result depends on where it lies among the values reduced or in the
window (onnxruntime issue #10514): ``x.max(axis=1)`` of [1, NaN, 4, 3] is 4 in the file where
ours, numpy and PyTorch give NaN whenever one is there (its element-wise Max, Min, Relu and
Clip propagate NaN, as ours). The file keeps the plain nodes, as torch.onnx's files do. An
exact fix exists (a pool as Max(MaxPool(x), AveragePool(Where(IsNaN(x), x, −inf))), a
reduction with a ReduceSum of that Where), but it made the exported seed CNN 35–55 % slower
in onnxruntime, and adds three passes over each reduced input, only to change what a NaN
input gives. ``test_onnx.py`` pins both sides of the difference.

Batch norm follows ``Tensor.training``, which export turns off: a ``BatchNorm2d`` layer is
exported with its running statistics whatever mode the caller is in. A ``batch_norm`` called
with ``training=True`` uses the batch's statistics in every mode, so the file computes them
too, from each input it is given, and export warns (``_warn_batch_statistics``): that is what
the model computes, and what ``torch.onnx`` does with ``F.batch_norm(..., training=True)``
(it warns the same way), where refusing would make a user rewrite a model that runs. Export
never changes the model: each trace puts back every parameter and buffer it changed (such a
batch norm updates its running statistics, once per trace).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from tinygrad_cnn import __version__, nn
from tinygrad_cnn import tensor as tensor_module
from tinygrad_cnn.function import Function
from tinygrad_cnn.ops.elementwise import GELU_TANH_CUBIC, GELU_TANH_SCALE
from tinygrad_cnn.tensor import Tensor, no_grad, train_mode

__all__ = ["export", "to_onnx", "OPSET", "CONVERTERS", "NOT_EXPORTABLE", "UnsupportedOpError"]

#: the ONNX operator-set version of the exported files
OPSET = 17
#: the ONNX IR version written in the file (IR 8 came with opset 17; older runtimes read it)
IR_VERSION = 8
#: Slice's "to the end" bounds
_INT64_MAX, _INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


class UnsupportedOpError(TypeError):
    """The traced graph holds an op that has no ONNX counterpart in ``CONVERTERS``."""


def _import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper  # a submodule that ``import onnx`` does not always load
    except ImportError as error:
        raise ImportError(
            "ONNX export needs the onnx package: pip install tinygrad_cnn[onnx] (or pip install onnx)"
        ) from error
    return onnx


# ---------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------


@dataclass
class Step:
    """One traced op application; ``inputs`` are the names of its input values in the graph."""

    op: Any  # a Function; converters read its own options (axis, stride, ...)
    tensors: tuple[Tensor, ...]
    output: Tensor
    inputs: tuple[str, ...] = ()
    #: with a dynamic batch, the same op in the trace on a batch one larger (None for a fixed
    #: batch): what changes between the two is what the file must compute from the batch size
    at_larger_batch: Optional["Step"] = None
    #: how an error names it: "op Where (op 3 of 5)" (set before the graph is built)
    label: str = ""


def _trace(model: Any, images: np.ndarray) -> tuple[list[Step], Tensor]:
    """Run ``model(images)`` once under no_grad in evaluation mode (``Tensor.training`` off,
    as PyTorch's exporter does: dropout off, batch norm on its running statistics); the
    steps the output depends on, in execution order, and the output.

    The model is left as it was: every parameter and buffer the call changed is put back
    (``nn.unchanged_state``). A ``batch_norm(..., training=True)`` updates its running
    statistics even here, and export traces two or three times, so each export moved them."""
    steps: list[Step] = []

    def record(op: Function, inputs: tuple[Tensor, ...], output: Tensor, seconds: float) -> None:
        steps.append(Step(op, tuple(inputs), output))

    tensor_module.forward_hooks.append(record)
    try:
        with no_grad(), train_mode(False), nn.unchanged_state(model):
            result = model(images)
    finally:
        tensor_module.forward_hooks.remove(record)
    if not isinstance(result, Tensor):
        raise TypeError(f"the model must return one Tensor to export; it returned {type(result).__name__}")
    if not any(step.output is result for step in steps) and np.shares_memory(result.data, images):
        raise ValueError(
            "the model's output is not computed by any op: it returns its input itself, e.g. a model that "
            "is all dropout in eval mode, which is the identity; an ONNX graph needs at least one op"
        )
    if not any(step.output is result for step in steps):
        raise ValueError(
            "the model's output was not computed by a traced op: rebuilding a tensor from numpy arrays "
            "(Tensor(x.data), numpy), e.g. running a big batch in chunks, puts it outside the graph "
            "(export with a smaller batch, e.g. input_shape (1, ...))"
        )
    return _needed_steps(steps, result), result


def _needed_steps(steps: list[Step], output: Tensor) -> list[Step]:
    """The steps ``output`` depends on, in execution order (ops whose results go unused are dropped)."""
    producer = {id(step.output): index for index, step in enumerate(steps)}
    needed: set[int] = set()
    pending = [producer[id(output)]]
    while pending:
        index = pending.pop()
        if index not in needed:
            needed.add(index)
            pending.extend(producer[id(tensor)] for tensor in steps[index].tensors if id(tensor) in producer)
    return [step for index, step in enumerate(steps) if index in needed]


def _find_input(steps: list[Step], images: np.ndarray, parameter_ids: set[int]) -> Tensor:
    """The one leaf tensor (not a parameter, not produced by an op) that holds ``images``."""
    produced = {id(step.output) for step in steps}
    matches: dict[int, Tensor] = {}
    for step in steps:
        for tensor in step.tensors:
            if id(tensor) in produced or id(tensor) in parameter_ids or tensor.shape != images.shape:
                continue
            if np.array_equal(tensor.data, images.astype(tensor.dtype)):
                matches[id(tensor)] = tensor
    if len(matches) != 1:
        found = "no leaf tensor holds" if not matches else f"{len(matches)} different leaf tensors hold"
        raise ValueError(
            f"cannot tell the model's input: {found} the example input of shape {images.shape}. "
            "The model must turn its input into one Tensor (a dtype cast is fine, e.g. "
            "Tensor(images.astype(np.float32))) and compute everything else from it with Tensor ops"
        )
    return next(iter(matches.values()))


def _fold_casts(steps: list[Step], source: Tensor, parameter_ids: set[int], result: Tensor) -> tuple[list[Step], Tensor]:
    """The steps without the casts the file needs no node for, and the input it takes.

    Mixing dtypes casts inside the model (``x * (x > 0)``, an int tensor divided by 255: a
    ``Cast`` op). A cast of a constant becomes the constant, cast. Where every use of an
    integer input is the same cast to a float dtype (``Tensor(pixels) / 255``), the file takes
    that float input: what a model given uint8 example pixels computes from (the pixels a
    server sends are float32). An input also used as an integer (compared, indexed) stays one."""
    produced = {id(step.output) for step in steps}
    uses = [step for step in steps if any(tensor is source for tensor in step.tensors)]
    input_casts = [step for step in uses if step.op.name == "Cast" and step.output.dtype.kind == "f"]
    folded = set()
    if (source.dtype.kind != "f" and uses and len(input_casts) == len(uses)
            and len({step.output.dtype for step in input_casts}) == 1 and not any(step.output is result for step in uses)):
        folded = {id(step) for step in input_casts}
        first = input_casts[0].output
        for step in steps:  # every other cast of the input reads the first one's result instead
            step.tensors = tuple(first if any(tensor is cast.output for cast in input_casts) else tensor
                                 for tensor in step.tensors)
        source = first
    for step in steps:
        if step.op.name != "Cast" or step.output is result:
            continue
        (tensor,) = step.tensors
        if id(tensor) not in produced and id(tensor) not in parameter_ids and tensor is not source:
            folded.add(id(step))  # a cast constant: graph.value makes its result an initializer
    return [step for step in steps if id(step) not in folded], source


def _check_fixed_graph(steps: list[Step], again: list[Step], leaves_to_skip: set[int],
                       batch: Optional[int] = None) -> None:
    """``again`` (the trace on another input of the same shape, or, given the example's
    ``batch``, on a batch one larger) must run the same ops on the same constants. Otherwise something depends on the
    input (or its batch size) outside the graph (``.data``, numpy, ``x.shape[0]``, Python
    control flow), and the file would hold its
    value for the example input only."""
    if [(step.op.name, len(step.tensors)) for step in steps] != [(step.op.name, len(step.tensors)) for step in again]:
        if batch is not None:
            raise ValueError("the model runs different ops for a different batch size: the ONNX file cannot "
                             "take any batch size; export with dynamic_batch=False for a fixed batch")
        raise ValueError("the model runs different ops on different inputs (control flow that depends on "
                         "the values): ONNX export needs one fixed graph")
    produced = {id(step.output) for step in steps}
    for index, (step, repeat) in enumerate(zip(steps, again)):
        if step.op.name == "GetItem" and not _same_index(step.op.index, repeat.op.index):
            raise ValueError(
                f"the index of op GetItem (op {index + 1} of {len(steps)}) depends on the model's input"
                + (" or its batch size" if batch is not None else "") + " (e.g. an argmax result, .data or numpy "
                "used as an index): the ONNX file would freeze the example's index. Use Tensor ops instead "
                "(e.g. a one-hot mask: Tensor.where(x.argmax(axis=1, keepdims=True) == positions, x, 0))"
            )
        for position, (tensor, other) in enumerate(zip(step.tensors, repeat.tensors)):
            if id(tensor) in produced or id(tensor) in leaves_to_skip:
                continue
            floating = tensor.dtype.kind == "f"
            if tensor.shape == other.shape and np.array_equal(tensor.data, other.data, equal_nan=floating):
                continue
            where = f"input {position} of op {step.op.name} (op {index + 1} of {len(steps)})"
            if batch is not None:
                raise ValueError(
                    f"{where} depends on the batch size (e.g. a number computed from x.shape[0], or a tensor "
                    f"of the batch's shape made outside the graph): it is {_describe(tensor)} for batch {batch} "
                    f"but {_describe(other)} for batch {batch + 1}, so an ONNX file taking any batch size would "
                    "compute wrong results. Compute it with Tensor ops (x.mean(axis=0) rather than x.sum(axis=0) / "
                    "x.shape[0]), or export a fixed batch size with dynamic_batch=False"
                )
            raise ValueError(
                f"{where} depends on the model's input but was computed outside the graph (.data and numpy "
                "give plain arrays); the ONNX file would freeze its value for the example "
                "input. Compute it with Tensor ops, or leave it out of the exported model"
            )


def _same_index(index: object, other: object) -> bool:
    """Whether two GetItem indices (ints, slices, None, Ellipsis, arrays, or a tuple of them) are equal."""
    parts, other_parts = (index if isinstance(index, tuple) else (index,)), (other if isinstance(other, tuple) else (other,))
    return len(parts) == len(other_parts) and all(
        np.array_equal(part, other_part) if isinstance(part, np.ndarray) or isinstance(other_part, np.ndarray)
        else part == other_part for part, other_part in zip(parts, other_parts))


def _describe(tensor: Tensor) -> str:
    """A constant for an error message: its value when it is one number, else its shape."""
    return f"{tensor.data.reshape(-1)[0]:.6g}" if tensor.size == 1 else f"an array of shape {tensor.shape}"


# ---------------------------------------------------------------------------
# Graph building
# ---------------------------------------------------------------------------


class GraphBuilder:
    """Collects ONNX nodes and initializers under unique value names.

    ``value(tensor)`` names the graph value that holds a Tensor: the output of the node that
    computed it, else (a leaf) a parameter initializer under its dotted name, else a
    constant initializer, created on first use.
    """

    def __init__(self, onnx, parameters: dict[str, Tensor]) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self.names: dict[int, str] = {}  # id(Tensor) → the graph value holding it
        self.taken: set[str] = set(parameters)
        self.parameter_names = {id(tensor): name for name, tensor in parameters.items()}
        self.keep_alive: list[Tensor] = list(parameters.values())  # ids stay unique while the tensors live
        self.int64_constants: dict[tuple[str, tuple[int, ...]], str] = {}  # reused, not repeated
        self.buffer_names: dict[int, str] = {}  # id(numpy array) → its state-dict name (see ``buffer``)
        self.written_buffers: set[str] = set()  # (their names are reserved in ``taken`` from the start)

    def fresh(self, stem: str) -> str:
        """A value name not used yet: ``stem``, else ``stem_1``, ``stem_2``, …"""
        name, count = stem, 0
        while name in self.taken:
            count += 1
            name = f"{stem}_{count}"
        self.taken.add(name)
        return name

    def bind(self, tensor: Tensor, name: str) -> None:
        self.names[id(tensor)] = name
        self.keep_alive.append(tensor)

    def value(self, tensor: Tensor) -> str:
        if id(tensor) not in self.names:
            if id(tensor) in self.parameter_names:
                name = self.parameter_names[id(tensor)]
                self.initializers.append(self.onnx.numpy_helper.from_array(_exported_array(tensor.data), name))
            else:
                name = self.initializer(tensor.data, "constant")
            self.bind(tensor, name)
        return self.names[id(tensor)]

    def buffer(self, array: np.ndarray, dtype: np.dtype, stem: str) -> str:
        """A numpy array an op holds as an option (a running mean), as an initializer of
        ``dtype``: under its state-dict name when it is one of the model's buffers."""
        name = self.buffer_names.get(id(array))
        if name is None or _exported_dtype(array.dtype) != _exported_dtype(dtype):
            return self.initializer(np.asarray(array, dtype=dtype), stem)
        if name not in self.written_buffers:
            self.written_buffers.add(name)
            self.initializers.append(self.onnx.numpy_helper.from_array(_exported_array(array), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], **attributes: Any) -> str:
        """Append one node with one output; returns the output's name."""
        output = self.fresh(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    def initializer(self, array: np.ndarray, stem: str) -> str:
        name = self.fresh(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(_exported_array(np.asarray(array)), name))
        return name

    def int64s(self, values: Sequence[int], stem: str) -> str:
        """A 1-D int64 initializer (shapes, pads, axes), shared by the nodes that need the same one."""
        key = (stem, tuple(int(value) for value in values))
        if key not in self.int64_constants:
            self.int64_constants[key] = self.initializer(np.asarray(key[1], dtype=np.int64), stem)
        return self.int64_constants[key]

    def cast(self, name: str, source: np.dtype, dtype: np.dtype) -> str:
        """``name``, holding values of dtype ``source``, converted to ``dtype`` where they differ."""
        if _exported_dtype(source) == _exported_dtype(dtype):
            return name
        return self.node("Cast", [name], to=_onnx_type(self.onnx, dtype))


def _exported_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a value of ``dtype`` has in the file: float64 becomes float32 (see ``to_onnx``)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float64 else np.dtype(dtype)


def _exported_array(array: np.ndarray) -> np.ndarray:
    """``array`` as the file holds it: float64 cast to float32."""
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _onnx_type(onnx, dtype: np.dtype) -> int:
    """The ONNX element type of a value of ``dtype`` in the file (float64 written as float32)."""
    return onnx.helper.np_dtype_to_tensor_dtype(_exported_dtype(dtype))


# ---------------------------------------------------------------------------
# Converters: one small function per op class, (graph, step) → the name of the op's output
# ---------------------------------------------------------------------------

Converter = Callable[[GraphBuilder, Step], str]


def _same(onnx_type: str) -> Converter:
    """An op that is one ONNX node with the same inputs (cast to the output dtype, or to the
    wider one onnxruntime computes the node in: ``RUNTIME_DTYPES``, the result cast back)."""

    def convert(graph: GraphBuilder, step: Step) -> str:
        dtype = step.output.dtype
        computed = _runtime_dtype(step, onnx_type, dtype)
        inputs = [graph.cast(name, tensor.dtype, computed) for name, tensor in zip(step.inputs, step.tensors)]
        return graph.cast(graph.node(onnx_type, inputs), computed, dtype)

    convert.__name__ = f"convert_to_{onnx_type}"
    return convert


def _axes(axis: Optional[Union[int, Sequence[int]]]) -> Optional[list[int]]:
    """None (all axes) or the axes as a list (negative axes are fine in ONNX)."""
    if axis is None:
        return None
    return [int(axis)] if isinstance(axis, (int, np.integer)) else [int(a) for a in axis]


def _reduction(onnx_type: str, axes_as_input: bool) -> Converter:
    """Sum/Mean/Max/Min over ``axis`` (None = all) with ``keepdims``. In opset 17 ReduceSum
    takes the axes as an input, the others as an attribute. A 0-d input (which takes axis 0
    or -1, as in PyTorch) has nothing to reduce: the result is the value itself, an Identity
    (ONNX refuses any axis of a rank-0 input). The node computes in the output's dtype (a
    sum of bools or small ints is int64, as ours), or in the wider one of ``RUNTIME_DTYPES``."""

    def convert(graph: GraphBuilder, step: Step) -> str:
        axes, keepdims, dtype = _axes(step.op.axis), int(bool(step.op.keepdims)), step.output.dtype
        if step.tensors[0].ndim == 0:
            return graph.node("Identity", [graph.cast(step.inputs[0], step.tensors[0].dtype, dtype)])
        computed = _runtime_dtype(step, onnx_type, dtype)
        source = graph.cast(step.inputs[0], step.tensors[0].dtype, computed)
        if axes is None:  # no axes: ONNX reduces over all of them
            reduced = graph.node(onnx_type, [source], keepdims=keepdims)
        elif axes_as_input:
            reduced = graph.node(onnx_type, [source, graph.int64s(axes, "axes")], keepdims=keepdims)
        else:
            reduced = graph.node(onnx_type, [source], axes=axes, keepdims=keepdims)
        return graph.cast(reduced, computed, dtype)

    convert.__name__ = f"convert_to_{onnx_type}"
    return convert


def _index_of_extreme(onnx_type: str) -> Converter:
    """ArgMax/ArgMin along ``axis`` (the first index on ties, as numpy); axis None, or a 0-d
    input: over the flattened input (Reshape to [-1], then axis 0), with keepdims an all-ones
    shape. A bool input is cast to int32 (ONNX defines ArgMax on numbers only), and the
    dtypes onnxruntime has no ArgMax for to a wider one (``RUNTIME_DTYPES``). Where a NaN is
    the extreme, the file gives whatever the runtime does (onnxruntime skips NaN; numpy and
    PyTorch give the first NaN)."""

    def convert(graph: GraphBuilder, step: Step) -> str:
        keepdims, (x,) = int(bool(step.op.keepdims)), step.tensors
        name = graph.cast(step.inputs[0], x.dtype, _runtime_dtype(step, onnx_type, x.dtype))
        if step.op.axis is not None and x.ndim > 0:
            return graph.node(onnx_type, [name], axis=int(step.op.axis), keepdims=keepdims, select_last_index=0)
        flat = graph.node("Reshape", [name, graph.int64s([-1], "shape")])
        index = graph.node(onnx_type, [flat], axis=0, keepdims=0, select_last_index=0)
        return graph.node("Reshape", [index, graph.int64s(list(step.output.shape), "shape")]) if keepdims else index

    convert.__name__ = f"convert_to_{onnx_type}"
    return convert


def _softmax(onnx_type: str) -> Converter:
    """Softmax/LogSoftmax along ``axis``; a 0-d input (axis 0 or -1) is taken as one of shape
    (1,) and reshaped back, since ONNX's Softmax needs rank ≥ 1 (the result is 1, or 0 for the log)."""

    def convert(graph: GraphBuilder, step: Step) -> str:
        if step.tensors[0].ndim == 0:
            vector = graph.node("Reshape", [step.inputs[0], graph.int64s([1], "shape")])
            return graph.node("Reshape", [graph.node(onnx_type, [vector], axis=0), graph.int64s([], "shape")])
        return graph.node(onnx_type, step.inputs[:1], axis=int(step.op.axis))

    convert.__name__ = f"convert_to_{onnx_type}"
    return convert


def convert_reshape(graph: GraphBuilder, step: Step) -> str:
    """Reshape to ``op.shape``. With a fixed batch the file holds that shape. With a dynamic
    batch each target axis is read off the two traces (``step.at_larger_batch``): an axis of
    the same size in both is that size; one that changes with the batch is 0 (ONNX: copy the
    input's axis) where it equals the input's axis at the same position in both traces, else
    -1 (inferred; ONNX allows one). Guessing from the example alone is wrong both ways: a
    leading 2 that equals the input's 2 by chance (``x.reshape(2, -1)``, or x.T flattened,
    the batch last) would become "copy the batch", and a leading axis that is not the batch
    would become -1 while the batch axis stays the example's size."""
    target, source = [int(size) for size in step.op.shape], step.tensors[0].shape
    larger = step.at_larger_batch
    if larger is None:
        # allowzero: a 0 in the shape is an empty axis, not ONNX's default "copy the input's axis"
        return graph.node("Reshape", [step.inputs[0], graph.int64s(target, "shape")], allowzero=int(0 in target))
    other_target, other_source = [int(size) for size in larger.op.shape], larger.tensors[0].shape
    shape: list[int] = []
    for axis, (size, other_size) in enumerate(zip(target, other_target) if len(target) == len(other_target) else ()):
        if size == other_size and size != 0:
            shape.append(size)
        elif axis < len(source) and (size, other_size) == (source[axis], other_source[axis]):
            shape.append(0)
        elif size != other_size and -1 not in shape:
            shape.append(-1)
        else:
            break
    if len(shape) != len(target):
        raise UnsupportedOpError(
            f"cannot export op Reshape from {source} to {tuple(target)} with a dynamic batch: at a batch one "
            f"larger it reshapes {other_source} to {tuple(other_target)}, and ONNX's Reshape cannot compute "
            "that shape from its input (one inferred axis at most, and an empty axis only where the input "
            "has one at the same position); export with dynamic_batch=False"
        )
    return graph.node("Reshape", [step.inputs[0], graph.int64s(shape, "shape")])


def _zero_pad(graph: GraphBuilder, step: Step, name: str, dtype: np.dtype, widths: Sequence[Sequence[int]]) -> str:
    """An ONNX Pad with zeros of ``name`` (values of ``dtype``, in the wider ``RUNTIME_DTYPES``
    one where onnxruntime has no Pad for it); ``widths`` = ((before, after), ...) per axis as in np.pad."""
    widths = [(int(before), int(after)) for before, after in widths]
    if not any(before or after for before, after in widths):
        return name
    pads = [before for before, _ in widths] + [after for _, after in widths]
    computed = _runtime_dtype(step, "Pad", dtype)
    padded = graph.node("Pad", [graph.cast(name, dtype, computed), graph.int64s(pads, "pads")], mode="constant")
    return graph.cast(padded, computed, dtype)


def convert_pad(graph: GraphBuilder, step: Step) -> str:
    return _zero_pad(graph, step, step.inputs[0], step.tensors[0].dtype, step.op.widths)


def convert_permute(graph: GraphBuilder, step: Step) -> str:
    return graph.node("Transpose", step.inputs[:1], perm=[int(axis) for axis in step.op.axes])


def convert_cat(graph: GraphBuilder, step: Step) -> str:
    return graph.node("Concat", step.inputs, axis=int(step.op.axis))


def convert_stack(graph: GraphBuilder, step: Step) -> str:
    """Stack = each input given a new axis of size 1 there, then joined along it."""
    axis = graph.int64s([int(step.op.axis)], "axes")
    return graph.node("Concat", [graph.node("Unsqueeze", [name, axis]) for name in step.inputs], axis=int(step.op.axis))


def convert_cast(graph: GraphBuilder, step: Step) -> str:
    return graph.node("Cast", step.inputs[:1], to=_onnx_type(graph.onnx, step.output.dtype))


def convert_identity(graph: GraphBuilder, step: Step) -> str:
    """Dropout in the exported (evaluation) model: the identity."""
    return graph.node("Identity", step.inputs[:1])


def convert_clip(graph: GraphBuilder, step: Step) -> str:
    """clip(x, low, high): number bounds as Clip's scalar inputs of x's dtype ("" = no bound);
    tensor bounds (inputs after x, of x's dtype) as Max(x, low), then Min(that, high), which
    broadcast (the bounds of ONNX's Clip must be scalars). Either way in the wider
    ``RUNTIME_DTYPES`` one where onnxruntime has no kernel for x's."""
    dtype = step.output.dtype
    if step.op.bound_inputs:
        computed = _runtime_dtype(step, "Max", dtype)  # (Max and Min are widened alike)
        output = graph.cast(step.inputs[0], step.tensors[0].dtype, computed)
        for bound, name, tensor in zip(step.op.bound_inputs, step.inputs[1:], step.tensors[1:]):
            output = graph.node("Max" if bound == "low" else "Min", [output, graph.cast(name, tensor.dtype, computed)])
        return graph.cast(output, computed, dtype)
    computed = _runtime_dtype(step, "Clip", dtype)
    bounds = [
        "" if bound is None else graph.initializer(np.asarray(bound, dtype=dtype).astype(computed), stem)
        for bound, stem in ((step.op.low, "clip_low"), (step.op.high, "clip_high"))
    ]
    clipped = graph.node("Clip", [graph.cast(step.inputs[0], step.tensors[0].dtype, computed), *bounds])
    return graph.cast(clipped, computed, dtype)


def convert_relu(graph: GraphBuilder, step: Step) -> str:
    return _relu(graph, step, step.inputs[0])


def _relu(graph: GraphBuilder, step: Step, name: str) -> str:
    """Relu of ``name`` (also a conv's or pool's fused relu), which holds values of the step's
    output dtype (relu keeps its input's dtype; a bool input is refused, as in PyTorch, so none
    arrives here); on integers Max(x, 0), which onnxruntime runs (ONNX has no unsigned Relu,
    onnxruntime no int32 one), in the dtype onnxruntime has a Max for (``RUNTIME_DTYPES``)."""
    dtype = step.output.dtype
    if dtype.kind == "f":
        return graph.node("Relu", [name])
    computed = _runtime_dtype(step, "Max", dtype)
    zero = graph.initializer(np.zeros((), dtype=computed), "zero")
    return graph.cast(graph.node("Max", [graph.cast(name, dtype, computed), zero]), computed, dtype)


def convert_leaky_relu(graph: GraphBuilder, step: Step) -> str:
    return graph.node("LeakyRelu", step.inputs[:1], alpha=float(step.op.negative_slope))


def convert_elu(graph: GraphBuilder, step: Step) -> str:
    return graph.node("Elu", step.inputs[:1], alpha=float(step.op.alpha))


def convert_gelu(graph: GraphBuilder, step: Step) -> str:
    """Opset 17 has no Gelu node (opset 20 has): x · (1 + Erf(x · 1/√2)) / 2, or the tanh
    form x · (1 + Tanh(√(2/π) · (x + 0.044715 · x · x · x))) / 2, from their nodes."""
    x, dtype = step.inputs[0], step.output.dtype

    def constant(value: float) -> str:
        return graph.initializer(np.asarray(value, dtype=dtype), "gelu_constant")

    if step.op.approximate == "tanh":
        cube = graph.node("Mul", [x, graph.node("Mul", [x, x])])
        inner = graph.node("Add", [x, graph.node("Mul", [cube, constant(GELU_TANH_CUBIC)])])
        shape = graph.node("Tanh", [graph.node("Mul", [inner, constant(GELU_TANH_SCALE)])])
    else:
        shape = graph.node("Erf", [graph.node("Mul", [x, constant(1 / math.sqrt(2))])])
    return graph.node("Mul", [x, graph.node("Mul", [graph.node("Add", [shape, constant(1.0)]), constant(0.5)])])


def convert_where(graph: GraphBuilder, step: Step) -> str:
    """Where(condition, a, b), a and b cast to the output's dtype. Between two bool masks (or
    int16 values, …) it selects uint8 (int32, …: ``RUNTIME_DTYPES``) and casts the result
    back: ONNX defines Where for bools, but onnxruntime has no bool kernel."""
    (condition, a, b), dtype = step.inputs, step.output.dtype
    chosen = _runtime_dtype(step, "Where", dtype)
    selected = graph.node("Where", [condition, graph.cast(a, step.tensors[1].dtype, chosen),
                                    graph.cast(b, step.tensors[2].dtype, chosen)])
    return graph.cast(selected, chosen, dtype)


#: Compare's symbol → the ONNX node (``!=`` is Not(Equal))
_COMPARISONS = {"<": "Less", "<=": "LessOrEqual", ">": "Greater", ">=": "GreaterOrEqual", "==": "Equal", "!=": "Equal"}


def convert_compare(graph: GraphBuilder, step: Step) -> str:
    """a ∘ b as a bool mask: both inputs cast to their common dtype, as numpy compares them
    (bools to int32 for the orderings, which ONNX defines on numbers only); != is Not(Equal)."""
    symbol, (a, b) = step.op.symbol, step.tensors
    common = np.result_type(a.dtype, b.dtype)
    if common == np.bool_ and symbol not in ("==", "!="):
        common = np.dtype(np.int32)
    inputs = [graph.cast(name, tensor.dtype, common) for name, tensor in zip(step.inputs, step.tensors)]
    mask = graph.node(_COMPARISONS[symbol], inputs)
    return graph.node("Not", [mask]) if symbol == "!=" else mask


def convert_matmul(graph: GraphBuilder, step: Step) -> str:
    """MatMul; a bias (``matmul(..., bias=)``, the seed's matrix multiply and add) is an Add
    after it, broadcast as numpy does; both computed in the dtype onnxruntime has a MatMul for
    (``RUNTIME_DTYPES``), the result cast back."""
    dtype = step.output.dtype
    computed = _runtime_dtype(step, "MatMul", dtype)
    a, b, *bias = [graph.cast(name, tensor.dtype, computed) for name, tensor in zip(step.inputs, step.tensors)]
    output = graph.node("MatMul", [a, b])
    if bias:
        output = graph.node("Add", [output, bias[0]])
    return graph.cast(output, computed, dtype)


def convert_conv2d(graph: GraphBuilder, step: Step) -> str:
    """Conv with ``stride``, ``padding`` (ph, pw), ``dilation`` and ``groups``. A per-channel
    bias (O,) is Conv's B input; any other bias (the seed's per-position O,Ho,Wo) is an Add
    after the Conv, broadcast as numpy does."""
    x, weight, *bias = step.inputs
    pad_h, pad_w = step.op.padding
    attributes = dict(
        kernel_shape=list(step.tensors[1].shape[2:]),
        strides=list(step.op.stride),
        pads=[pad_h, pad_w, pad_h, pad_w],
        dilations=list(step.op.dilation),
        group=step.op.groups,
    )
    per_channel = bias and step.tensors[2].ndim == 1
    if per_channel:
        return graph.node("Conv", [x, weight, bias[0]], **attributes)
    output = graph.node("Conv", [x, weight], **attributes)
    return graph.node("Add", [output, bias[0]]) if bias else output


def _pool(onnx_type: str) -> Converter:
    """Max or average pooling with ``kernel_size`` and ``stride``; a ``padding`` option pads
    with zeros first (an explicit Pad: ONNX's own pool padding would not be zeros). A max pool
    of values ONNX's MaxPool is not defined for (bools, 16- and 32-bit ints) computes in the
    ``RUNTIME_DTYPES`` one that holds each exactly (uint8, float32, float64: a true float64,
    not the float32 a model's float64 becomes), the result cast back."""

    def convert(graph: GraphBuilder, step: Step) -> str:
        widths = [(0, 0), (0, 0), *step.op.padding]  # the op's ((top, bottom), (left, right))
        dtype = step.tensors[0].dtype
        computed = _runtime_dtype(step, onnx_type, dtype)
        source = step.inputs[0]
        if computed != _exported_dtype(dtype):  # (graph.cast would write a float64 as float32)
            source = graph.node("Cast", [source], to=graph.onnx.helper.np_dtype_to_tensor_dtype(computed))
        padded = _zero_pad(graph, step, source, computed, widths)
        pooled = graph.node(onnx_type, [padded], kernel_shape=list(step.op.kernel_size), strides=list(step.op.stride))
        return graph.cast(pooled, computed, dtype)

    convert.__name__ = f"convert_to_{onnx_type}"
    return convert


def convert_batch_norm(graph: GraphBuilder, step: Step) -> str:
    """y = (x − μ) / sqrt(var + eps) · weight + bias per channel (axis 1). With the running
    statistics (evaluation): one BatchNormalization node. With the batch's statistics (a
    batch_norm given no running statistics, or called with ``training=True``): μ and var
    computed in the graph from each input, as in forward."""
    op, dtype = step.op, step.output.dtype
    x, weight, bias = step.inputs
    if not op.batch_statistics:
        mean = graph.buffer(op.running_mean, dtype, "running_mean")
        variance = graph.buffer(op.running_var, dtype, "running_var")
        return graph.node("BatchNormalization", [x, weight, bias, mean, variance], epsilon=float(op.eps))
    ndim = step.tensors[0].ndim
    channel_shape = graph.int64s([1, -1] + [1] * (ndim - 2), "channel_shape")
    axes = [0] + list(range(2, ndim))
    centered = graph.node("Sub", [x, graph.node("ReduceMean", [x], axes=axes, keepdims=1)])
    variance = graph.node("ReduceMean", [graph.node("Mul", [centered, centered])], axes=axes, keepdims=1)
    epsilon = graph.initializer(np.asarray(op.eps, dtype=dtype), "epsilon")
    normalized = graph.node("Div", [centered, graph.node("Sqrt", [graph.node("Add", [variance, epsilon])])])
    scaled = graph.node("Mul", [normalized, graph.node("Reshape", [weight, channel_shape])])
    return graph.node("Add", [scaled, graph.node("Reshape", [bias, channel_shape])])


def convert_getitem(graph: GraphBuilder, step: Step) -> str:
    """x[index] for ints, slices, None, Ellipsis and at most one integer (or 1-D bool) array:
    slices become Slice (the raw start/stop/step: ONNX clamps them as Python does, so the
    batch stays dynamic), an int a Gather of a scalar (removing the axis), None an Unsqueeze,
    an array a Gather (its axes replace the indexed one, as numpy does for one array)."""
    index = step.op.index if isinstance(step.op.index, tuple) else (step.op.index,)
    # a list is an array to numpy: [True, False, True] is a mask (read as the integers 1, 0, 1 it
    # would gather other elements, silently wrong where the shapes agree: a sum over the axis)
    index = tuple(np.asarray(item) if isinstance(item, list) else item for item in index)
    for item in index:
        if isinstance(item, (bool, np.bool_)) or (isinstance(item, np.ndarray) and item.dtype == bool and item.ndim != 1):
            raise UnsupportedOpError(
                f"GetItem with index {step.op.index!r}: only 1-D bool masks can be exported (a bool scalar "
                "adds an axis, a mask of several axes indexes them together; neither is one ONNX Gather)"
            )
    index = tuple(np.flatnonzero(item) if isinstance(item, np.ndarray) and item.dtype == bool else item
                  for item in index)
    arrays = [item for item in index if isinstance(item, (np.ndarray, Tensor))]
    if len(arrays) > 1 or (arrays and any(isinstance(item, (int, np.integer)) for item in index)):
        raise UnsupportedOpError(
            f"GetItem with index {step.op.index!r}: only one integer array (and no integers beside it) "
            "can be exported (numpy moves the axes of several advanced indices)"
        )
    used_axes = sum(1 for item in index if item is not None and item is not Ellipsis)
    if any(item is Ellipsis for item in index):
        position = next(position for position, item in enumerate(index) if item is Ellipsis)
        fill = (slice(None),) * (step.tensors[0].ndim - used_axes)
        index = index[:position] + fill + index[position + 1 :]
    name, axis = step.inputs[0], 0
    for item in index:
        if item is None:
            name, axis = graph.node("Unsqueeze", [name, graph.int64s([axis], "axes")]), axis + 1
        elif isinstance(item, slice):
            if item != slice(None):
                step_size = 1 if item.step is None else int(item.step)
                start = item.start if item.start is not None else (0 if step_size > 0 else _INT64_MAX)
                stop = item.stop if item.stop is not None else (_INT64_MAX if step_size > 0 else _INT64_MIN)
                bounds = [graph.int64s([value], stem) for value, stem in
                          ((start, "starts"), (stop, "ends"), (axis, "axes"), (step_size, "steps"))]
                name = graph.node("Slice", [name, *bounds])
            axis += 1
        else:
            indices = np.asarray(item.data if isinstance(item, Tensor) else item, dtype=np.int64)
            name = graph.node("Gather", [name, graph.initializer(indices, "indices")], axis=axis)
            axis += indices.ndim
    return name


def convert_embedding(graph: GraphBuilder, step: Step) -> str:
    """table[indices] (``nn.Embedding``): a Gather of the table's rows at the indices, which the
    file reads from the tensor that holds them (its input, for a model that embeds it), as int64."""
    indices = graph.cast(step.inputs[1], step.tensors[1].dtype, np.dtype(np.int64))
    return graph.node("Gather", [step.inputs[0], indices], axis=0)


#: {op class name: converter}. An op of ``tinygrad_cnn.ops`` not listed here has no ONNX
#: equivalent (e.g. CrossEntropy, which belongs to the loss) and is a clear error.
CONVERTERS: dict[str, Converter] = {
    # element-wise
    "Add": _same("Add"),
    "Sub": _same("Sub"),
    "Mul": _same("Mul"),
    "Div": _same("Div"),
    "Neg": _same("Neg"),
    "ReLU": convert_relu,
    "Exp": _same("Exp"),
    "Log": _same("Log"),
    "Sqrt": _same("Sqrt"),
    "Pow": _same("Pow"),
    "Sin": _same("Sin"),
    "Cos": _same("Cos"),
    "Tanh": _same("Tanh"),
    "Sigmoid": _same("Sigmoid"),
    "Abs": _same("Abs"),
    "Clip": convert_clip,
    "Maximum": _same("Max"),
    "Minimum": _same("Min"),
    "Where": convert_where,
    "Compare": convert_compare,
    "LeakyReLU": convert_leaky_relu,
    "ELU": convert_elu,
    "GELU": convert_gelu,
    # reductions
    "Sum": _reduction("ReduceSum", axes_as_input=True),
    "Mean": _reduction("ReduceMean", axes_as_input=False),
    "Max": _reduction("ReduceMax", axes_as_input=False),
    "Min": _reduction("ReduceMin", axes_as_input=False),
    "ArgMax": _index_of_extreme("ArgMax"),
    "ArgMin": _index_of_extreme("ArgMin"),
    # movement
    "Reshape": convert_reshape,
    "Pad": convert_pad,
    "Permute": convert_permute,
    "GetItem": convert_getitem,
    "Embedding": convert_embedding,
    "Cat": convert_cat,
    "Stack": convert_stack,
    "Cast": convert_cast,
    # neural-network ops
    "MatMul": convert_matmul,
    "Conv2d": convert_conv2d,
    "MaxPool2d": _pool("MaxPool"),
    "AvgPool2d": _pool("AveragePool"),
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    "Dropout": convert_identity,
    "BatchNorm": convert_batch_norm,
}


#: the ops of ``tinygrad_cnn.ops`` that are deliberately not exported, and why
NOT_EXPORTABLE: dict[str, str] = {
    "CrossEntropy": "it is the loss: export the model that returns the logits, not the loss",
    "Remainder": ("it is not translated yet: ONNX's Mod takes the divisor's sign only for integers (for floats "
                  "it needs fmod=1, C's fmod, with the dividend's sign), so a float % needs a − b·Floor(a/b)"),
    "FloorDivide": ("it is not translated yet: ONNX's Div truncates integers toward zero where // rounds down, "
                    "so it needs Floor(Div) for floats and a correction for negative integers"),
}

#: our ops whose ONNX node is defined for some input dtypes only (opset 17's type constraints;
#: the rest take every dtype they can meet here): numpy dtype kinds ("i" signed ints, "u"
#: unsigned, "f" floats) or dtype names
ONNX_INPUT_TYPES: dict[str, tuple[str, ...]] = {
    **{name: ("i", "u", "f") for name in ("Add", "Sub", "Mul", "Div")},  # no bool
    "Neg": ("i", "f"),
    **{name: ("i", "u", "f") for name in ("Abs", "Clip", "Maximum", "Minimum")},  # no bool
    **{name: ("int8", "uint8", "int32", "int64", "uint32", "uint64", "f") for name in ("Max", "Min")},  # ReduceMax/Min
    "Pow": ("int32", "int64", "f"),
    "MaxPool2d": ("int8", "uint8", "f"),
    "MatMul": ("int32", "int64", "uint32", "uint64", "f"),
    "Conv2d": ("f",),
}

#: the ONNX node of each op above whose other dtypes ``RUNTIME_DTYPES`` may widen to one ONNX
#: defines it for (such a dtype is exported, computed in the wider one)
_ONNX_NODES: dict[str, str] = {"Max": "ReduceMax", "Min": "ReduceMin", "MaxPool2d": "MaxPool"}

#: ONNX nodes that onnxruntime's CPU provider cannot run on some dtypes that ONNX defines them
#: for (so the file passes onnx.checker, then fails to load: "Could not find an implementation
#: for Max(13)"), or that ONNX does not define (ArgMax on bools, ReduceMax on bools and 16-bit
#: ints, MaxPool on any int but int8 and uint8): {node: {dtype: the dtype it computes in
#: instead}}. The wider dtype holds every value exactly and these nodes only select or compare
#: values (and Pad adds zeros), so the result, cast back, is exact. MaxPool has no wider int:
#: it computes in float32 (every 16-bit int exact) or float64 (every 32-bit one, below 2^53);
#: an int64 or uint64 one stays refused (``ONNX_INPUT_TYPES``: no float holds every value).
#: None: no such dtype exists (uint64 holds values above int64's), and export refuses the op
#: naming the dtype. Found with onnxruntime 1.32 by exporting every op on every dtype and running the
#: file (``test_every_op_on_every_dtype_is_refused_or_runs_in_onnxruntime_as_ours``); the
#: test extra asks for that version or later, as no older one was checked.
RUNTIME_DTYPES: dict[str, dict[str, Optional[str]]] = {
    "Max": {"int16": "int32", "uint16": "int32"},  # element-wise: maximum, an integer relu
    "Min": {"int16": "int32", "uint16": "int32"},
    "Clip": {"int16": "int32", "uint16": "int32"},
    "Pad": {"int16": "int32", "uint16": "int32"},
    "Where": {"bool": "uint8", "int16": "int32", "uint16": "int32", "uint64": None},
    **{name: {"bool": "uint8", "int16": "int32", "uint16": "int32", "uint32": "int64", "uint64": None}
       for name in ("ReduceMax", "ReduceMin")},
    "MaxPool": {"bool": "uint8", "int16": "float32", "uint16": "float32", "int32": "float64", "uint32": "float64"},
    **{name: {"bool": "int32", "int16": "int32", "uint16": "int32", "uint32": "int64", "uint64": None}
       for name in ("ArgMax", "ArgMin")},
}


def _runtime_dtype(step: Step, onnx_type: str, dtype: np.dtype) -> np.dtype:
    """The dtype the ``onnx_type`` node of ``step`` computes in, for values of ``dtype``: that
    one as the file holds it, or the wider one of ``RUNTIME_DTYPES``; an error naming our op
    and the dtype where onnxruntime could not run the node at all."""
    dtype = _exported_dtype(dtype)
    wider = RUNTIME_DTYPES.get(onnx_type, {}).get(dtype.name, dtype.name)
    if wider is None:
        raise UnsupportedOpError(
            f"cannot export {step.label or 'op ' + step.op.name} on {dtype} values: onnxruntime has no {dtype} "
            f"kernel for ONNX's {onnx_type} (the file would pass onnx.checker and then fail to load), and no "
            f"wider type holds every {dtype} value; cast first (e.g. .astype(np.int64) where the values fit)"
        )
    return np.dtype(wider)
_KIND_WORDS = {"i": "signed ints", "u": "unsigned ints", "f": "floats"}


def _check_onnx_input_types(step: Step, position: int, count: int) -> None:
    """An error naming our op and its dtype where ONNX defines no node for that dtype (the
    checker would raise an InferenceError naming only the ONNX node) and ``RUNTIME_DTYPES``
    has no wider one for it."""
    allowed = ONNX_INPUT_TYPES.get(step.op.name, ())
    widened = RUNTIME_DTYPES.get(_ONNX_NODES.get(step.op.name, ""), {})
    for tensor in step.tensors if allowed else ():
        if tensor.dtype.kind not in allowed and tensor.dtype.name not in allowed and widened.get(tensor.dtype.name) is None:
            raise UnsupportedOpError(
                f"cannot export op {step.op.name} (op {position} of {count}) on {tensor.dtype} tensors: ONNX "
                f"defines it for {', '.join(_KIND_WORDS.get(kind, kind) for kind in allowed)} only; cast first "
                "(e.g. .astype(np.float32))"
            )


def _warn_batch_statistics(step: Step, position: int, count: int) -> None:
    """Warn where a batch norm with running statistics normalizes with the batch's own (it was
    called with ``training=True``): a file served one example at a time rarely wants that."""
    op = step.op
    if op.name == "BatchNorm" and op.batch_statistics and op.running_mean is not None:
        warnings.warn(
            f"op BatchNorm (op {position} of {count}) is called with training=True, so the ONNX file normalizes "
            "each input with its own batch's mean and variance, as the model does (torch.onnx exports "
            "F.batch_norm(..., training=True) the same way), not with the running statistics. To export "
            "those, leave training at None: batch_norm then follows Tensor.training, which export turns off",
            UserWarning, stacklevel=3,
        )


def _converter(op: Function) -> Converter:
    """The op's converter, or an error that names the op and says why it has none."""
    built_in = type(op).__module__.startswith("tinygrad_cnn.ops")
    if built_in and op.name in CONVERTERS:
        return CONVERTERS[op.name]
    if not built_in:
        why = (f"it is a user-defined Function ({type(op).__module__}.{type(op).__qualname__}), "
               "which the exporter cannot translate")
    else:
        why = NOT_EXPORTABLE.get(op.name, "it has no ONNX equivalent in tinygrad_cnn.onnx.CONVERTERS")
    raise UnsupportedOpError(f"cannot export op {op.name} to ONNX: {why}")


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def _example_inputs(input_shape: Optional[Sequence[int]], images: Optional[np.ndarray],
                    rng: np.random.Generator, batch: Optional[int] = None) -> np.ndarray:
    """An array to trace the model on: random values (a permutation of ``images``' values, or
    0..255 pixels (uint8) of ``input_shape``), so that no other tensor in the trace holds the
    same numbers; with ``batch``, that many examples instead of the example's batch."""
    if images is not None:
        images = np.asarray(images)
        shape = images.shape if batch is None else (batch, *images.shape[1:])
        values = images.reshape(-1)
        repeated = np.resize(values, int(np.prod(shape))) if values.size else values
        return rng.permutation(repeated).reshape(shape)
    if input_shape is None:
        raise ValueError("export needs input_shape (e.g. (1, 1, 28, 28)) or example images")
    shape = tuple(int(size) for size in input_shape)
    if not shape or any(size < 1 for size in shape):
        raise ValueError(f"input_shape must list positive sizes, the batch first; got {tuple(input_shape)}")
    if batch is not None:
        shape = (batch, *shape[1:])
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _trace_other_batch(model: Any, images: np.ndarray) -> tuple[list[Step], Tensor]:
    """The trace on a batch one larger than the example's: a model that cannot run on it has no
    dynamic batch."""
    try:
        return _trace(model, images)
    except Exception as error:
        raise ValueError(
            f"the model fails on a batch of {images.shape[0]} ({type(error).__name__}: {error}), so the "
            "ONNX file cannot take any batch size: export a fixed batch size with dynamic_batch=False"
        ) from error


def _value_info(onnx, name: str, tensor: Tensor, symbolic_axes: dict[int, str]):
    """A graph input/output description; the axes in ``symbolic_axes`` get those names ("N")
    instead of the example's sizes."""
    shape: list[Union[int, str]] = [symbolic_axes.get(axis, size) for axis, size in enumerate(tensor.shape)]
    return onnx.helper.make_tensor_value_info(name, _onnx_type(onnx, tensor.dtype), shape)


def _batch_axes(shape: tuple[int, ...], larger_shape: tuple[int, ...], batch: int, name: str) -> dict[int, str]:
    """The output's axes that change with the batch size, each with its symbolic name: "N" for
    an axis that is the batch (it grew from ``batch`` to ``batch + 1``), else "<name>_<axis>"
    (one that grows otherwise: x.reshape(-1, 4) of N,3,4 has N·3 rows)."""
    return {axis: "N" if (size, larger) == (batch, batch + 1) else f"{name}_{axis}"
            for axis, (size, larger) in enumerate(zip(shape, larger_shape)) if size != larger}


def _check_names(input_name: object, output_name: object, state_names: set[str]) -> None:
    """The input's and output's names must be non-empty strings, different from each other and
    from the parameters' and buffers' names (the initializers'): ONNX needs every value name
    once, and a server feeds the input under the name it asked for (renaming it "fc.bias_1"
    would break that silently)."""
    for role, name in (("input_name", input_name), ("output_name", output_name)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{role} must be a non-empty string (the name of the graph's {role[:-5]}), got {name!r}")
        if name in state_names:
            raise ValueError(f"{role} {name!r} is the name of one of the model's parameters or buffers, which the "
                             "file holds under that name; choose another name")
    if input_name == output_name:
        raise ValueError(f"input_name and output_name are both {input_name!r}: the graph's input and output "
                         "need different names")


def to_onnx(model: Any, input_shape: Optional[Sequence[int]] = None, *, images: Optional[np.ndarray] = None,
            input_name: str = "images", output_name: str = "logits", dynamic_batch: bool = True):
    """The ONNX ModelProto of ``model``'s forward pass (see the module docstring).

    ``model`` is called once on ``images`` (or on random uint8 pixels of ``input_shape``)
    and must return one Tensor. With ``dynamic_batch`` the input's and output's leading
    axis is the symbolic "N". A float64 model is exported as float32 (parameters, constants,
    input and output; see the module docstring). The model is checked with ``onnx.checker``
    before it is returned.
    """
    onnx = _import_onnx()
    buffers = nn.named_buffers(model)
    _check_names(input_name, output_name, set(nn.named_parameters(model)) | set(buffers))
    rng = np.random.default_rng(0)
    example = np.asarray(images) if images is not None else _example_inputs(input_shape, None, rng)
    steps, result = _trace(model, example)
    converters = [_converter(step.op) for step in steps]  # an op with no ONNX form: say so first
    parameters = nn.named_parameters(model)
    parameter_ids = {id(tensor) for tensor in parameters.values()}
    source = _find_input(steps, example, parameter_ids)
    leaves = parameter_ids | {id(source)}
    _check_fixed_graph(steps, _trace(model, _example_inputs(input_shape, images, rng))[0], leaves)
    dynamic_batch = dynamic_batch and example.ndim > 0
    output_axes: dict[int, str] = {}
    if dynamic_batch:
        batch = int(example.shape[0])
        larger = _example_inputs(input_shape, images, rng, batch=batch + 1)
        again, larger_result = _trace_other_batch(model, larger)
        _check_fixed_graph(steps, again, leaves, batch=batch)
        output_axes = _batch_axes(result.shape, larger_result.shape, batch, output_name)
        for step, repeat in zip(steps, again):
            step.at_larger_batch = repeat
    steps, source = _fold_casts(steps, source, parameter_ids, result)
    converters = [_converter(step.op) for step in steps]
    for position, step in enumerate(steps, start=1):
        _check_onnx_input_types(step, position, len(steps))
        _warn_batch_statistics(step, position, len(steps))
    graph = GraphBuilder(onnx, parameters)
    graph.buffer_names = {id(array): name for name, array in buffers.items()}
    graph.taken |= set(buffers) | {input_name, output_name}  # no node or constant takes these names
    graph.bind(source, input_name)
    for position, (step, converter) in enumerate(zip(steps, converters), start=1):
        step.label = f"op {step.op.name} (op {position} of {len(steps)})"
        step.inputs = tuple(graph.value(tensor) for tensor in step.tensors)
        output = converter(graph, step)
        if getattr(step.op, "relu", False) is True:  # the fused relu of a conv, pool or matmul
            output = _relu(graph, step, output)
        graph.bind(step.output, output)
    final = graph.names[id(result)]
    if graph.nodes and graph.nodes[-1].output[0] == final:  # name the last node's output
        graph.nodes[-1].output[0] = output_name
    else:
        graph.nodes.append(onnx.helper.make_node("Identity", [final], [output_name]))

    onnx_graph = onnx.helper.make_graph(
        graph.nodes, type(model).__name__,
        inputs=[_value_info(onnx, graph.names[id(source)], source, {0: "N"} if dynamic_batch else {})],
        outputs=[_value_info(onnx, output_name, result, output_axes)],
        initializer=graph.initializers,
    )
    onnx_model = onnx.helper.make_model(
        onnx_graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="tinygrad_cnn", producer_version=__version__,
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export(model: Any, path: Union[str, "os.PathLike[str]"], input_shape: Optional[Sequence[int]] = None, *,
           images: Optional[np.ndarray] = None, input_name: str = "images", output_name: str = "logits",
           dynamic_batch: bool = True):
    """Write ``model``'s forward pass to ``path`` as an ONNX file; returns the ModelProto.

    ``input_shape`` is the example input's shape with the batch first, e.g. (1, 1, 28, 28)
    (the file accepts any batch size unless ``dynamic_batch=False``); or give ``images``.
    The file is written atomically (``nn.atomic_write``): an interrupt or a full disk during
    the write leaves the previous file at ``path`` (or none), never a truncated one.
    """
    onnx_model = to_onnx(model, input_shape, images=images, input_name=input_name,
                         output_name=output_name, dynamic_batch=dynamic_batch)
    serialized = onnx_model.SerializeToString()  # the binary ONNX format, whatever the file's extension
    nn.atomic_write(path, lambda file: file.write(serialized))
    return onnx_model
