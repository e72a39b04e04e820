"""examples/mnist.ipynb: stored without outputs, and runs top to bottom in a fresh kernel without error.

nbclient starts the kernel named "python3" that ipykernel provides inside the environment
(sys.prefix/share/jupyter/kernels/python3, and jupyter_client falls back to ipykernel's own
spec), so no ``python -m ipykernel install`` is needed; jupyter_client runs it with this
interpreter. The notebook trains on ``TINYGRAD_CNN_NOTEBOOK_LIMIT`` images. It reads MNIST
from ``$TINYGRAD_CNN_DATA`` (CI sets it); without it this test writes a small random
stand-in, so nothing is ever downloaded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from test_datasets import write_mnist  # noqa: E402  (tests/ is on sys.path under pytest)

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "mnist.ipynb"
LIMIT = 256  # training and test images: a few steps, so the notebook runs in seconds


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.environ.get("TINYGRAD_CNN_DATA"):
        write_mnist(tmp_path / "mnist", train=LIMIT, test=LIMIT)
        monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "mnist"))
    monkeypatch.setenv("TINYGRAD_CNN_NOTEBOOK_LIMIT", str(LIMIT))  # the kernel inherits the environment
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    print(f"the notebook ran in {time.perf_counter() - start:.1f} s")

    outputs = [output for cell in code_cells(notebook) for output in cell.outputs]
    text = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert f"{LIMIT} training and {LIMIT} test images" in text
    assert "Convolution" in text and "epoch 1: test accuracy" in text  # the layer table, the training
    assert len(pictures) == 4  # curves, the 32 digits, the filters, the feature maps
    assert any("image/svg+xml" in output.get("data", {}) for output in outputs) or "digraph" in text  # the graph
    assert "gradcheck: True" in text and "the wrong VJP is caught" in text
