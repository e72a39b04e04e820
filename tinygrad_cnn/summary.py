"""A per-op table of a model, read off one traced forward pass.

    from tinygrad_cnn.summary import summary
    rows = summary(SeedCNN(), (1, 1, 28, 28))   # prints the table, returns one dict per op

Nothing here knows the model's layers or the op classes: the table is whatever ops the
forward pass actually runs, seen through ``tensor.forward_hooks``. Each op describes itself
(``op.describe()``) and reports its own
multiply-accumulates (``op.macs``); a tensor among an op's inputs is a parameter when it is
one of ``nn.named_parameters(model)``. So the table stays right when ops are fused or a
model's forward is written differently.

The printed lines follow the seed documents' style, with activations and parameters in
H x W x C order (the batch axis N is left out and named once in the header):

    3x3/1 1 pad Convolution: input 28 x 28 x 1, output 28 x 28 x 16, parameter 3 x 3 x 1 x 16, MACs = 112896

The graph export (``to_dot``, ``write_graph``) lives in ``graph.py`` and is re-exported here.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from tinygrad_cnn import tensor as tensor_module
from tinygrad_cnn.function import Function
from tinygrad_cnn.graph import to_dot, write_graph
from tinygrad_cnn.nn import named_parameters, unchanged_state
from tinygrad_cnn.tensor import Tensor, no_grad, train_mode

__all__ = ["summary", "format_summary", "trace", "to_dot", "write_graph"]

def trace(model: Any, input_shape: Optional[Sequence[int]] = None, images: Optional[np.ndarray] = None,
          keep_outputs: bool = False) -> list[dict]:
    """Run ``model`` once under no_grad and describe every op it applies, in execution order.

    The pass runs in evaluation mode (``Tensor.training`` off for the call, then restored), as
    the ONNX exporter's does: looking at a model must not change it, and in training mode a
    batch norm would move its running statistics towards those of the traced input (zeros:
    running_var shrinks by a factor 1 − momentum per call) and dropout would draw from the
    package generator, shifting every later mask of a seeded run. So the table shows the
    evaluation graph (no dropout rows), whatever mode the caller is in. A
    ``batch_norm(..., training=True)`` call updates its running statistics in any mode: every
    parameter and buffer the pass changed is put back afterwards (``nn.unchanged_state``).

    The input is ``images`` if given, else zeros (uint8) of ``input_shape``. Returns one dict
    per op application (see ``summary`` for the keys); with ``keep_outputs`` each row also
    holds the op's output array under ``"output"`` (e.g. to draw feature maps).
    """
    if images is None:
        if input_shape is None:
            raise ValueError("trace needs input_shape or images")
        expected = "input_shape must be a tuple of non-negative ints, the batch's shape such as (1, 1, 28, 28); got"
        if (not isinstance(input_shape, (tuple, list))
                or not all(isinstance(size, (int, np.integer)) and not isinstance(size, bool) for size in input_shape)):
            raise TypeError(f"{expected} {type(input_shape).__name__} {input_shape!r}")
        if any(size < 0 for size in input_shape):
            raise ValueError(f"{expected} {input_shape!r}")
        images = np.zeros(tuple(input_shape), dtype=np.uint8)
    images = np.asarray(images)
    parameter_names = {id(tensor): name for name, tensor in named_parameters(model).items()}
    rows: list[dict] = []

    def record(op: Function, inputs: tuple[Tensor, ...], output: Tensor, seconds: float) -> None:
        input_shapes = [tuple(tensor.shape) for tensor in inputs]
        # each parameter once, in input order, though an op may take it twice (w * w)
        params = list({id(tensor): (parameter_names[id(tensor)], tensor) for tensor in inputs
                       if id(tensor) in parameter_names}.values())
        param_shapes = [tuple(tensor.shape) for _, tensor in params]
        row = {
            "index": len(rows),
            "op": op.name,
            "label": op.describe(),
            "input_shapes": input_shapes,
            "output_shape": tuple(output.shape),
            "param_names": [name for name, _ in params],
            "param_shapes": param_shapes,
            "params": int(sum(tensor.size for _, tensor in params)),
            "macs": int(op.macs(input_shapes, tuple(output.shape))),
            "seconds": seconds,
        }
        if keep_outputs:
            row["output"] = output.data
        rows.append(row)

    tensor_module.forward_hooks.append(record)
    try:
        with no_grad(), train_mode(False), unchanged_state(model):
            model(images)
    finally:
        tensor_module.forward_hooks.remove(record)
    for row in rows:
        row["batch"] = int(images.shape[0]) if images.ndim else None
    return rows


def summary(model: Any, input_shape: Sequence[int], print_table: bool = True) -> list[dict]:
    """Trace one forward pass of ``model`` on zeros of ``input_shape`` and tabulate its ops
    (in evaluation mode, leaving the model unchanged: see ``trace``).

    Each row is a dict with:

    * ``op``: the op's class name; ``label``: the op's own seed-style description
      (``op.describe()``, e.g. '3x3/1 1 pad Convolution + Addition + ReLU');
    * ``input_shapes`` (one per input, in order), ``output_shape``;
    * ``param_names`` / ``param_shapes``: the model parameters among the op's inputs (names
      from ``nn.named_parameters``), in input order;
    * ``params``: their element count; ``macs``: the op's multiply-accumulates (``op.macs``);
    * ``index``, ``batch`` and ``seconds`` (the forward time of this op on zeros).

    The table is printed unless ``print_table`` is False; ``format_summary(rows)`` gives it.
    """
    rows = trace(model, input_shape)
    if print_table:
        print(format_summary(rows))
    return rows


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def _hwc(shape: Sequence[int]) -> tuple[int, ...]:
    """Per-sample C,H,W → H,W,C; an O,C,kh,kw filter bank → kh,kw,C,O; other ranks as they are."""
    shape = tuple(shape)
    if len(shape) == 3:
        channels, height, width = shape
        return height, width, channels
    if len(shape) == 4:
        out_channels, channels, height, width = shape
        return height, width, channels, out_channels
    return shape


def _activation(shape: Optional[Sequence[int]], batch: Optional[int]) -> str:
    """An activation's shape per sample, H x W x C: (1,16,28,28) → '28 x 28 x 16'."""
    if shape is None:
        return "-"
    shape = tuple(shape)
    if batch is not None and len(shape) >= 2 and shape[0] == batch:
        shape = shape[1:]
    shape = _hwc(shape) if len(shape) == 3 else shape
    return " x ".join(str(size) for size in shape) if shape else "scalar"


def _parameter(shape: Sequence[int]) -> str:
    """A parameter's shape in the seed's order: (16,1,3,3) → '3 x 3 x 1 x 16'."""
    shape = _hwc(shape)
    return " x ".join(str(size) for size in shape) if shape else "scalar"


def format_line(row: dict) -> str:
    """One row in the seed's words: '<label>: input …, output …[, parameter …][, MACs = …]'."""
    batch = row.get("batch")
    first_input = row["input_shapes"][0] if row["input_shapes"] else None
    parts = [f"input {_activation(first_input, batch)}", f"output {_activation(row['output_shape'], batch)}"]
    if row["param_shapes"]:
        parts.append("parameter " + " and ".join(_parameter(shape) for shape in row["param_shapes"]))
    if row["macs"]:
        parts.append(f"MACs = {row['macs']}")
    return f"{row['label']}: " + ", ".join(parts)


def totals(rows: Sequence[dict]) -> dict:
    """Parameter elements (each parameter counted once, even if used by several ops) and MACs."""
    sizes: dict[str, int] = {}
    for row in rows:
        for name, shape in zip(row["param_names"], row["param_shapes"]):
            sizes[name] = int(np.prod(shape, dtype=np.int64))
    return {"ops": len(rows), "params": sum(sizes.values()), "macs": sum(row["macs"] for row in rows)}


def format_summary(rows: Sequence[dict]) -> str:
    """The table as text: a header, one seed-style line per op, and the totals."""
    rows = list(rows)
    batch = rows[0].get("batch") if rows else None
    total = totals(rows)
    lines = [f"Forward pass, {total['ops']} ops (per sample; batch N = {batch}, shapes H x W x C):"]
    lines += [f"{row['index'] + 1:>3}. {format_line(row)}" for row in rows]
    lines.append(f"Total: parameters = {total['params']:,}, MACs = {total['macs']:,}"
                 + (f" ({total['macs'] // batch:,} per sample)" if batch and batch > 1 else ""))
    return "\n".join(lines)
