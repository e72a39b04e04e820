"""Export the recorded graph behind a tensor as Graphviz DOT text (and a PNG, if ``dot`` exists).

    loss = model(images).cross_entropy(labels)
    print(to_dot(loss, model))                  # before loss.backward(): backward frees the graph
    write_graph(loss, "runs/graph.dot", model)  # → [graph.dot, graph.png] (graph.gv → [graph.gv, graph.png])

Every recorded op becomes one ellipse with its description (``op.describe()``, as in the
layer table: ``3x3/1 1 pad Convolution + Addition``) and output shape; every leaf
tensor becomes a box: parameters filled (named after ``nn.named_parameters(model)`` when a
model is given, e.g. ``conv1.weight (16,1,3,3)``), other leaves that want a gradient filled
in another colour, and constants (data, literals, and anything computed without a graph)
dashed and grey. Edges run from inputs to the op that used them, labelled with the argument
position when the op takes several inputs (``A @ B`` is not ``B @ A``).

Only ops that had an input requiring a gradient are recorded, so work done on constants
alone (or under ``no_grad``) shows up as one constant box.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional, Union

from tinygrad_cnn.nn import atomic_write, create_parent_directory
from tinygrad_cnn.tensor import GraphFreedError, Tensor

__all__ = ["to_dot", "write_graph", "GraphFreedError"]

PARAMETER_COLOUR = "lightskyblue"
GRAD_LEAF_COLOUR = "khaki"
CONSTANT_COLOUR = "gray90"


def _shape_text(shape: tuple[int, ...]) -> str:
    """(16,1,3,3) as '(16,1,3,3)'; a 1-D shape keeps Python's comma: '(100,)'."""
    return "(" + ",".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"


def _quote(text: str) -> str:
    """A DOT double-quoted string; a newline becomes DOT's centred line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tensor: Tensor, model: Any = None, name: str = "graph") -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    One node per op (its description, as in the layer table, and output shape) and one box
    per leaf tensor (parameters filled and, given ``model``, named as in
    ``named_parameters(model)``; constants dashed). Raises ``GraphFreedError`` (a RuntimeError) when ``backward()`` has
    already freed the graph.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot needs a Tensor, got {type(tensor).__name__}")
    names: dict[int, str] = {}
    if model is not None:
        from tinygrad_cnn.nn import named_parameters  # nn imports tensor, not graph: no cycle

        names = {id(parameter): key for key, parameter in named_parameters(model).items()}

    try:
        order = tensor._topological_order(all_inputs=True)
    except GraphFreedError as error:
        raise GraphFreedError(f"to_dot: {error} Call to_dot before loss.backward().") from None
    ids = {id(item): f"t{index}" for index, item in enumerate(order)}
    lines = [
        f"digraph {_quote(name)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="gray40"];',
    ]
    for item in order:
        node_id, shape = ids[id(item)], _shape_text(item.shape)
        if item.node is not None:
            label = f"{item.node.op.describe()}\n{shape}"
            extra = ', penwidth=2' if item is tensor else ""
            lines.append(f"  {node_id} [shape=ellipse, label={_quote(label)}{extra}];")
        elif id(item) in names:
            label = f"{names[id(item)]} {shape}"
            lines.append(f'  {node_id} [shape=box, style="filled,bold", fillcolor="{PARAMETER_COLOUR}", '
                         f"label={_quote(label)}];")
        elif item.requires_grad:
            label = f"{'parameter' if model is None else 'leaf (requires grad)'} {shape}"
            lines.append(f'  {node_id} [shape=box, style=filled, fillcolor="{GRAD_LEAF_COLOUR}", '
                         f"label={_quote(label)}];")
        else:
            value = f" = {item.data.reshape(-1)[0]:.6g}" if item.size == 1 else ""
            label = f"constant {shape}{value}"
            lines.append(f'  {node_id} [shape=box, style="dashed,filled", fillcolor="{CONSTANT_COLOUR}", '
                         f'color="gray50", label={_quote(label)}];')
    for item in order:
        if item.node is None:
            continue
        inputs = item.node.inputs
        for position, parent in enumerate(inputs):
            label = f" [label={_quote(str(position))}]" if len(inputs) > 1 else ""
            lines.append(f"  {ids[id(parent)]} -> {ids[id(item)]}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(tensor: Tensor, path: Union[str, Path], model: Any = None) -> list[Path]:
    """Write ``to_dot(tensor, model)`` to the file ``path`` names, and a PNG picture of it.
    Returns the written paths (with any ``..`` resolved as the file system resolves it, so
    each returned path opens: ``missing/../g.dot`` is returned as ``<current folder>/g.dot``).

    ``path`` ending in ``.png`` asks for the picture: it is rendered there by Graphviz's
    ``dot`` program (a RuntimeError, before anything is written, when ``dot`` is not on
    PATH), and the DOT text goes next to it as ``.dot``. Any other name (``graph.dot``,
    ``graph.gv``, ``graph``) gets the DOT text, and the picture is rendered next to it
    with the suffix ``.png`` when ``dot`` is installed.

    Both files are written atomically (``nn.atomic_write``): ``dot`` reads the DOT text on its
    standard input and renders the picture to its standard output, and the bytes go to a
    temporary file renamed into place, so an interrupt, a failed render or a full disk leaves
    the previous picture (or none), never a broken one. A failed render is a RuntimeError with
    Graphviz's message. Missing directories above a file are made where it is written
    (``nn.create_parent_directory``: ``missing/../graph.dot`` makes no ``missing/``)."""
    text = to_dot(tensor, model)  # raises before anything is written if the graph is freed
    path = Path(path)
    if ".." in path.parts:  # (the folder before a '..' may not exist: the path as given would not open)
        path = Path(os.path.realpath(path.parent)) / path.name
    program: Optional[str] = shutil.which("dot")
    if path.suffix.lower() == ".png":
        if program is None:
            raise RuntimeError(f"write_graph: rendering {path} needs Graphviz's 'dot' program, which is not on "
                               "PATH; install Graphviz, or give a .dot path for the DOT text alone")
        dot_path, png_path = path.with_suffix(".dot"), path
    else:
        dot_path, png_path = path, path.with_suffix(".png")
    create_parent_directory(dot_path)  # (of the resolved path: missing/../g.dot makes no missing/)
    atomic_write(dot_path, lambda file: file.write(text.encode()))  # a kill mid-write keeps the previous file
    written = [dot_path]
    if program is not None:
        # the DOT text on stdin, the PNG on stdout: dot never opens a path (missing/../g.dot would not open)
        result = subprocess.run([program, "-Tpng"], input=text.encode(), capture_output=True)
        if result.returncode != 0 or not result.stdout:
            message = result.stderr.decode(errors="replace").strip() or "it wrote no picture"
            raise RuntimeError(f"Graphviz 'dot' failed to render {dot_path}: {message}")
        create_parent_directory(png_path)  # (a png_path that is a link may lead elsewhere)
        atomic_write(png_path, lambda file: file.write(result.stdout))
        written.append(png_path)
    return written
