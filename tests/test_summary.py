"""summary.py and graph.py: the per-op table and the DOT export, read off the real graph."""

import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinygrad_cnn import Tensor, ops
from tinygrad_cnn import tensor as tensor_module
from tinygrad_cnn.graph import GraphFreedError, to_dot, write_graph
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import named_parameters
from tinygrad_cnn.summary import format_summary, summary

SEED_CNN_MACS = [112896, 903168, 903168, 313600, 1000]


@pytest.fixture(scope="module")
def cnn_rows():
    return summary(SeedCNN(), (1, 1, 28, 28), print_table=False)


def test_seed_cnn_macs_of_the_five_multiply_layers(cnn_rows):
    assert [row["macs"] for row in cnn_rows if row["macs"] > 0] == SEED_CNN_MACS


def test_seed_cnn_shapes_and_parameters(cnn_rows):
    first_conv = next(row for row in cnn_rows if row["macs"] > 0)
    assert first_conv["input_shapes"][0] == (1, 1, 28, 28)
    assert first_conv["output_shape"] == (1, 16, 28, 28)
    assert first_conv["param_names"] == ["conv1.weight", "conv1.bias"]  # the fused conv + bias
    assert first_conv["param_shapes"] == [(16, 1, 3, 3), (16, 28, 28)]
    assert first_conv["params"] == 144 + 16 * 28 * 28
    assert cnn_rows[-1]["output_shape"] == (1, 10)
    multiply_rows = [row for row in cnn_rows if row["macs"] > 0]
    assert [row["output_shape"] for row in multiply_rows] == [
        (1, 16, 28, 28), (1, 32, 14, 14), (1, 64, 7, 7), (1, 100), (1, 10)]
    # every op has the keys, and ops without parameters say so
    for row in cnn_rows:
        assert {"op", "label", "input_shapes", "output_shape", "param_shapes", "param_names", "params", "macs"} == (
            set(row) - {"index", "seconds", "batch"})
        if not row["param_names"]:
            assert row["param_shapes"] == [] and row["params"] == 0
    # each parameter of the model appears exactly once, under its name
    names = [name for row in cnn_rows for name in row["param_names"]]
    assert sorted(names) == sorted(named_parameters(SeedCNN()))


def test_total_parameters_equal_the_model_parameters(cnn_rows):
    expected = sum(tensor.size for tensor in named_parameters(SeedCNN()).values())
    assert sum(row["params"] for row in cnn_rows) == expected == 359_846


def test_printed_table_is_in_the_seed_style(cnn_rows, capsys):
    summary(SeedCNN(), (1, 1, 28, 28))
    printed = capsys.readouterr().out
    assert printed.strip() == format_summary(cnn_rows)
    assert cnn_rows[0]["label"] == "Division by 255.0"  # the seed's first layer is in the graph
    assert "  1. Division by 255.0: input 28 x 28 x 1, output 28 x 28 x 1" in printed
    assert ("3x3/1 1 pad Convolution + Addition: input 28 x 28 x 1, output 28 x 28 x 16, "
            "parameter 3 x 3 x 1 x 16 and 28 x 28 x 16, MACs = 112896") in printed
    assert ("Zero padding (bottom 1, right 1) + 3x3/2 Max pooling + ReLU: input 28 x 28 x 16, "
            "output 14 x 14 x 16") in printed
    assert "Convolution + Addition + ReLU: input 7 x 7 x 32, output 7 x 7 x 64" in printed
    assert "Vectorization: input 7 x 7 x 64, output 3136" in printed
    assert ("  8. Matrix multiply + Addition + ReLU: input 3136, output 100, parameter 3136 x 100 and 100, "
            "MACs = 313600") in printed
    assert "  9. Matrix multiply + Addition: input 100, output 10, parameter 100 x 10 and 10, MACs = 1000" in printed
    assert "Forward pass, 9 ops" in printed
    assert "Total: parameters = 359,846, MACs = 2,233,832" in printed


def test_unfused_seed_cnn_lists_the_seed_documents_layers_one_by_one(capsys):
    rows = summary(SeedCNN(fused=False), (1, 1, 28, 28))
    printed = capsys.readouterr().out
    assert len(rows) == 20
    assert printed.splitlines()[1] == "  1. Division by 255.0: input 28 x 28 x 1, output 28 x 28 x 1"
    assert [row["macs"] for row in rows if row["macs"]] == SEED_CNN_MACS
    assert ("3x3/1 1 pad Convolution: input 28 x 28 x 1, output 28 x 28 x 16, "
            "parameter 3 x 3 x 1 x 16, MACs = 112896") in printed
    assert "Addition: input 28 x 28 x 16, output 28 x 28 x 16, parameter 28 x 28 x 16" in printed
    assert "Zero padding (bottom 1, right 1): input 28 x 28 x 16, output 29 x 29 x 16" in printed
    assert "3x3/2 Max pooling: input 29 x 29 x 16, output 14 x 14 x 16" in printed
    assert "Total: parameters = 359,846, MACs = 2,233,832" in printed


def test_hook_is_removed_even_when_the_model_fails():
    before = list(tensor_module.forward_hooks)

    def broken_model(images):
        Tensor(np.ones(3), requires_grad=True).relu()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        summary(broken_model, (1, 1, 28, 28), print_table=False)
    assert tensor_module.forward_hooks == before


def test_seed_mlp_summary():
    rows = summary(SeedMLP(), (2, 1, 28, 28), print_table=False)
    assert [row["macs"] for row in rows if row["macs"] > 0] == [2 * 784 * 1000, 2 * 1000 * 100, 2 * 100 * 10]
    assert rows[-1]["output_shape"] == (2, 10)
    assert sum(row["params"] for row in rows) == sum(t.size for t in named_parameters(SeedMLP()).values())
    text = format_summary(rows)
    assert "Matrix multiply + Addition + ReLU: input 784, output 1000, parameter 784 x 1000 and 1000, MACs = 1568000" in text
    assert [row["label"] for row in rows[2:]] == ["Matrix multiply + Addition + ReLU"] * 2 + ["Matrix multiply + Addition"]
    unfused = summary(SeedMLP(fused=False), (2, 1, 28, 28), print_table=False)
    assert [row["op"] for row in unfused[2:]] == ["MatMul", "Add", "ReLU"] * 2 + ["MatMul", "Add"]
    assert [row["macs"] for row in unfused if row["macs"] > 0] == [row["macs"] for row in rows if row["macs"] > 0]


class FusedConvBiasReLU(ops.Function):
    """A user's fused op, relu(conv2d(x, w) + bias), that does not describe itself."""

    def __init__(self, stride=(1, 1), padding=(1, 1)):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias):
        self.conv = ops.Conv2d(self.stride, self.padding)
        self.conv.needs_input_grad = (False, False)
        return np.maximum(self.conv.forward(x, weight) + bias, 0)

    def macs(self, input_shapes, output_shape):
        return ops.Conv2d().macs(input_shapes[:2], output_shape)


class PadMaxPool(ops.Function):
    """A user's op that names itself through ``label``: zero-pad bottom/right by one, then max-pool."""

    label = "Zero padding + Max pooling"

    def forward(self, x):
        pool = ops.MaxPool2d((3, 3), (2, 2), padding=((0, 1), (0, 1)))
        pool.needs_input_grad = (False,)
        return pool.forward(x)


class FusedModel:
    def __init__(self):
        rng = np.random.default_rng(0)
        self.conv = SimpleNamespace(weight=Tensor(rng.standard_normal((4, 1, 3, 3)), requires_grad=True),
                                    bias=Tensor(np.zeros((4, 28, 28)), requires_grad=True))
        self.head = Tensor(rng.standard_normal((4 * 14 * 14, 10)), requires_grad=True)

    def __call__(self, images):
        x = Tensor(np.asarray(images, dtype=np.float64) / 255)
        x = Tensor._from_op(FusedConvBiasReLU(), (x, self.conv.weight, self.conv.bias))
        x = Tensor._from_op(PadMaxPool(), (x,))
        return x.flatten() @ self.head


def test_summary_and_to_dot_are_generic_over_fused_ops():
    model = FusedModel()
    rows = summary(model, (1, 1, 28, 28), print_table=False)
    assert [row["op"] for row in rows] == ["FusedConvBiasReLU", "PadMaxPool", "Reshape", "MatMul"]
    fused = rows[0]
    assert fused["macs"] == 28 * 28 * 4 * 9
    assert fused["param_names"] == ["conv.weight", "conv.bias"]
    assert fused["param_shapes"] == [(4, 1, 3, 3), (4, 28, 28)] and fused["params"] == 36 + 4 * 28 * 28
    text = format_summary(rows)
    assert ("  1. FusedConvBiasReLU: input 28 x 28 x 1, output 28 x 28 x 4, "
            "parameter 3 x 3 x 1 x 4 and 28 x 28 x 4, MACs = 28224") in text
    assert "  2. Zero padding + Max pooling: input 28 x 28 x 4, output 14 x 14 x 4" in text
    assert f"Total: parameters = {36 + 4 * 28 * 28 + 784 * 10:,}, MACs = {28224 + 7840:,}" in text
    dot = to_dot(model(np.zeros((1, 1, 28, 28))), model)
    assert "FusedConvBiasReLU" in dot and "Zero padding + Max pooling" in dot and 'label="conv.bias (4,28,28)"' in dot


# ---------------------------------------------------------------------------
# Graph export
# ---------------------------------------------------------------------------


def _seed_cnn_loss():
    model = SeedCNN()
    seen_ops = set()

    def hook(op, inputs, output, seconds):
        if output.requires_grad:  # recorded in the graph (the /255 of constant pixels is not)
            seen_ops.add(op.describe())

    tensor_module.forward_hooks.append(hook)
    try:
        images = np.random.default_rng(0).integers(0, 256, (2, 1, 28, 28), dtype=np.uint8)
        loss = model(images).cross_entropy(np.array([3, 7]))
    finally:
        tensor_module.forward_hooks.remove(hook)
    return model, loss, seen_ops


def test_to_dot_names_every_op_and_parameter():
    model, loss, seen_ops = _seed_cnn_loss()
    dot = to_dot(loss, model)
    assert dot.lstrip().startswith("digraph")
    assert dot.count("{") == dot.count("}") and dot.rstrip().endswith("}")
    op_labels = set(re.findall(r'shape=ellipse, label="([^"\\]+)\\n', dot))
    assert op_labels == seen_ops  # generic: whatever ops the forward pass ran, as each describes itself
    assert "3x3/1 1 pad Convolution + Addition + ReLU" in op_labels  # fused relus are visible
    assert "Zero padding (bottom 1, right 1) + 3x3/2 Max pooling + ReLU" in op_labels
    for name, parameter in named_parameters(model).items():
        shape = "(" + ",".join(map(str, parameter.shape)) + ("," if parameter.ndim == 1 else "") + ")"
        assert re.search(rf'fillcolor="\w+", label="{re.escape(name)} {re.escape(shape)}"', dot), name
    assert 'label="conv1.weight (16,1,3,3)"' in dot
    assert "constant (2,1,28,28)" in dot  # the images are a constant leaf
    # every edge joins two declared nodes
    declared = set(re.findall(r"^\s*(t\d+) \[", dot, flags=re.M))
    for source, target in re.findall(r"(t\d+) -> (t\d+)", dot):
        assert source in declared and target in declared


def test_to_dot_without_a_model_still_marks_parameters():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    y = (a * 2.0).sum()
    dot = to_dot(y)
    assert "parameter (2,3)" in dot and "constant () = 2" in dot and "Mul" in dot and "Sum" in dot


def test_to_dot_after_backward_raises():
    model, loss, _ = _seed_cnn_loss()
    loss.backward()
    with pytest.raises(GraphFreedError, match="freed by backward"):
        to_dot(loss, model)
    assert issubclass(GraphFreedError, RuntimeError)


def test_write_graph(tmp_path, monkeypatch):
    a = Tensor(np.ones(3), requires_grad=True)
    y = (a * a).sum()
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no Graphviz: only the .dot
    written = write_graph(y, tmp_path / "sub" / "graph.dot")
    assert written == [tmp_path / "sub" / "graph.dot"]
    assert written[0].read_text() == to_dot(y)


def test_write_graph_makes_the_folder_the_resolved_path_needs_and_no_other(tmp_path, monkeypatch):
    """missing/../g.dot is g.dot, written where nn.atomic_write writes (.. taken after any
    symbolic link); the folder 'missing/' was made from the path as given and stayed, empty."""
    a = Tensor(np.ones(3), requires_grad=True)
    y = (a * a).sum()
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no Graphviz: only the .dot
    written = write_graph(y, tmp_path / "missing" / ".." / "g.dot")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["g.dot"]
    assert (tmp_path / "g.dot").read_text() == to_dot(y)
    assert written == [Path(os.path.realpath(tmp_path)) / "g.dot"]  # a path that opens, not missing/../g.dot
    assert written[0].read_text() == to_dot(y)
    written = write_graph(y, tmp_path / "new" / "deeper" / ".." / "g.dot")  # the folders it needs are made
    assert written == [Path(os.path.realpath(tmp_path)) / "new" / "g.dot"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["g.dot", "new"]
    assert [path.name for path in (tmp_path / "new").iterdir()] == ["g.dot"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_write_graph_renders_the_picture_of_a_path_through_a_missing_folder(tmp_path):
    """dot was given the path as typed, which the OS cannot open once 'missing/' is not made."""
    a = Tensor(np.ones(3), requires_grad=True)
    write_graph((a * a).sum(), tmp_path / "missing" / ".." / "g.dot")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["g.dot", "g.png"]
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_write_graph_renders_a_png_with_graphviz(tmp_path):
    a = Tensor(np.ones(3), requires_grad=True)
    written = write_graph((a * a).sum(), tmp_path / "graph.dot")
    assert [path.name for path in written] == ["graph.dot", "graph.png"]
    assert written[1].read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_write_graph_writes_the_file_the_user_named(tmp_path):
    """--graph mygraph.gv used to write mygraph.dot (and mygraph.png), not mygraph.gv."""
    a = Tensor(np.ones(3), requires_grad=True)
    y = (a * a).sum()
    written = write_graph(y, tmp_path / "mygraph.gv")
    assert written == [tmp_path / "mygraph.gv", tmp_path / "mygraph.png"]
    assert written[0].read_text() == to_dot(y) and not (tmp_path / "mygraph.dot").exists()
    assert write_graph(y, tmp_path / "plain") == [tmp_path / "plain", tmp_path / "plain.png"]
    written = write_graph(y, tmp_path / "picture.png")  # a .png asks for the picture there
    assert written == [tmp_path / "picture.dot", tmp_path / "picture.png"]
    assert written[1].read_bytes().startswith(b"\x89PNG")


def test_write_graph_to_a_png_without_graphviz_is_an_error_before_writing(tmp_path, monkeypatch):
    a = Tensor(np.ones(3), requires_grad=True)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"picture\.png needs Graphviz's 'dot'.*give a \.dot path"):
        write_graph((a * a).sum(), tmp_path / "picture.png")
    assert list(tmp_path.iterdir()) == []


#: a stand-in for Graphviz's dot: like the real one it writes its picture to the file after -o,
#: else to stdout; it writes part of one (as on a full disk), then fails or succeeds by $FAKE_DOT
FAKE_DOT = """#!/bin/sh
output=""
while [ $# -gt 0 ]; do
    if [ "$1" = "-o" ]; then output="$2"; shift; fi
    shift
done
if [ "$FAKE_DOT" = "fail" ]; then
    if [ -n "$output" ]; then printf 'partial' > "$output"; else printf 'partial'; fi
    echo "Error: out of disk space" >&2
    exit 1
fi
if [ -n "$output" ]; then printf 'new picture' > "$output"; else printf 'new picture'; fi
"""


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """A fake ``dot`` first on PATH, in its own directory."""
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    program = bin_directory / "dot"
    program.write_text(FAKE_DOT)
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_directory}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("dot") == str(program)
    return monkeypatch


@pytest.mark.parametrize("name", ["graph.dot", "graph.png"])
def test_a_failed_render_leaves_the_previous_picture_and_no_temporary(tmp_path, fake_dot, name):
    """dot used to write the picture straight into the final file (-o): a failure, an interrupt
    or a full disk part way left a broken picture where a good one was. Now its output is
    written with atomic_write."""
    a = Tensor(np.ones(3), requires_grad=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "graph.png").write_bytes(b"old picture")
    fake_dot.setenv("FAKE_DOT", "fail")
    with pytest.raises(RuntimeError, match="Graphviz 'dot' failed to render .*out of disk space"):
        write_graph((a * a).sum(), out / name)
    assert (out / "graph.png").read_bytes() == b"old picture"
    assert sorted(path.name for path in out.iterdir()) == ["graph.dot", "graph.png"]  # no temporary
    fake_dot.delenv("FAKE_DOT")
    assert write_graph((a * a).sum(), out / name) == [out / "graph.dot", out / "graph.png"]
    assert (out / "graph.png").read_bytes() == b"new picture"
    assert sorted(path.name for path in out.iterdir()) == ["graph.dot", "graph.png"]


def test_docs_derive_the_vjp_of_every_primitive_op():
    """docs/autograd.md has a section per op class in the ops package; a new (e.g. fused) op needs one too."""
    import inspect
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "autograd.md").read_text(encoding="utf-8")
    primitives = [name for name, value in vars(ops).items()
                  if inspect.isclass(value) and issubclass(value, ops.Function) and value is not ops.Function]
    def heading(name: str) -> str:
        module = getattr(ops, name).__module__.replace("tinygrad_cnn.", "").replace(".", "/") + ".py"
        return f"### {name} — [`{module}`, class `{name}`](../tinygrad_cnn/{module})"

    missing = [name for name in primitives if heading(name) not in docs]
    assert not missing, f"add a section (forward, VJP derivation, code link) to docs/autograd.md for {missing}"


@pytest.mark.parametrize("input_shape, error", [
    (1, TypeError), ("1,1,28,28", TypeError), ((1, 1, 28.0, 28), TypeError), ((1, 1, -28, 28), ValueError),
])
def test_a_bad_input_shape_gets_a_clear_error(input_shape, error):
    with pytest.raises(error, match=r"input_shape must be a tuple of non-negative ints, the batch's shape "
                                        r"such as \(1, 1, 28, 28\); got"):
        summary(SeedCNN(), input_shape, print_table=False)


def test_an_op_that_takes_a_parameter_twice_lists_and_counts_it_once():
    class Square:
        def __init__(self):
            self.weight = Tensor(np.ones((3, 4)), requires_grad=True)

        def __call__(self, images):
            return self.weight * self.weight + Tensor(images)

    rows = summary(Square(), (3, 4), print_table=False)
    assert rows[0]["op"] == "Mul" and rows[0]["param_names"] == ["weight"] and rows[0]["params"] == 12
    assert rows[0]["param_shapes"] == [(3, 4)] and "1. Multiplication: input 4, output 4, parameter 3 x 4\n" in format_summary(rows)


def test_a_batch_above_the_inference_chunk_is_traced_once_with_its_own_shapes():
    # without a graph SeedCNN runs big batches in chunks of 128; the tracer saw every op once
    # per chunk, with the chunk's shapes
    rows = summary(SeedCNN(), (200, 1, 28, 28), print_table=False)
    assert len(rows) == len(summary(SeedCNN(), (1, 1, 28, 28), print_table=False))
    assert rows[0]["input_shapes"][0] == (200, 1, 28, 28) and rows[-1]["output_shape"] == (200, 10)


def test_summary_in_training_mode_leaves_the_model_and_the_generator_unchanged():
    """Tracing runs in evaluation mode: summarizing inside a training block used to move a
    batch norm's running statistics towards the zeros it traced (running_var 1 → 0.9) and to
    draw dropout masks from the package generator; now neither changes, and the caller's
    mode is restored."""
    from tinygrad_cnn import manual_seed
    from tinygrad_cnn.nn import BatchNorm2d, Conv2d, state_dict
    from tinygrad_cnn.random import generator
    from tinygrad_cnn.tensor import train_mode

    class Model:
        def __init__(self):
            self.conv, self.norm = Conv2d(1, 2, 3), BatchNorm2d(2)

        def __call__(self, images):
            return self.norm(self.conv(Tensor(images).astype(np.float32))).dropout(0.5)

    model = Model()
    before = state_dict(model)
    manual_seed(0)
    with train_mode():
        rows = summary(model, (2, 1, 8, 8), print_table=False)
        assert Tensor.training
    assert not Tensor.training
    after = state_dict(model)
    assert all(np.array_equal(before[name], after[name]) for name in before)
    assert [row["op"] for row in rows] == ["Cast", "Conv2d", "BatchNorm"]  # no Dropout: evaluation mode
    assert generator().random() == manual_seed(0).random()  # no draw was taken


def test_summary_of_a_batch_norm_called_with_training_true_leaves_the_state_dict_bit_identical():
    """``batch_norm(..., training=True)`` updates the running statistics whatever mode the
    trace runs in: summary used to move them towards the traced zeros (running_var × 0.9 per
    call). Now every parameter and buffer the trace changed is put back (nn.unchanged_state),
    in place: the model holds the same array objects."""
    from tinygrad_cnn.nn import Linear, state_dict

    class TrainingBatchNorm:
        def __init__(self) -> None:
            self.fc = Linear(4, 3)
            self.running_mean = np.random.default_rng(0).uniform(-1, 1, 3).astype(np.float32)
            self.running_var = np.random.default_rng(1).uniform(0.5, 2.0, 3).astype(np.float32)

        def __call__(self, images: np.ndarray) -> Tensor:
            return self.fc(Tensor(images).astype(np.float32)).batch_norm(
                running_mean=self.running_mean, running_var=self.running_var, training=True)

    model = TrainingBatchNorm()
    running_mean, running_var = model.running_mean, model.running_var
    before = state_dict(model)
    rows = summary(model, (5, 4), print_table=False)
    assert "BatchNorm" in [row["op"] for row in rows]
    after = state_dict(model)
    assert list(after) == list(before)
    for name, array in before.items():
        assert after[name].tobytes() == array.tobytes(), f"summary changed {name}"
    assert model.running_mean is running_mean and model.running_var is running_var


def test_unchanged_state_puts_back_what_the_block_changed_even_when_it_raises():
    """The one implementation behind summary's and the ONNX export's traces: changed arrays are
    restored in place, a changed parameter counts as changed in place, an unchanged read-only
    buffer is not written."""
    from tinygrad_cnn.nn import unchanged_state

    model = SimpleNamespace(weight=Tensor(np.ones(3, dtype=np.float32), requires_grad=True),
                            frozen=np.zeros(2), counts=np.arange(4))
    model.frozen.flags.writeable = False
    version = model.weight.version
    with pytest.raises(RuntimeError, match="stop"):
        with unchanged_state(model):
            model.weight.data += 1
            model.counts[0] = 99
            raise RuntimeError("stop")
    assert np.array_equal(model.weight.data, np.ones(3)) and np.array_equal(model.counts, np.arange(4))
    assert model.weight.version > version
