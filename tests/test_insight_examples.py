"""Smoke tests of the learner-facing examples: examples/tour.py and examples/visualize.py.

They run the scripts as a user would (a subprocess from the repository root). visualize.py
gets a tiny MNIST-layout dataset written here (random pixels), so the test needs neither
the real data nor the network and trains for only a few steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.datasets import MNIST_FILES
from tinygrad_cnn.models import SeedCNN
from tinygrad_cnn.nn import save, state_dict

ROOT = Path(__file__).resolve().parents[1]


def run_example(script: str, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=timeout)


def write_tiny_mnist(directory: Path, train: int = 96, test: int = 8) -> Path:
    """Raw (uncompressed) IDX files in the MNIST layout: ubyte images N x 28 x 28, labels N."""
    rng = np.random.default_rng(0)
    arrays = (rng.integers(0, 256, (train, 28, 28), dtype=np.uint8), rng.integers(0, 10, train, dtype=np.uint8),
              rng.integers(0, 256, (test, 28, 28), dtype=np.uint8), rng.integers(0, 10, test, dtype=np.uint8))
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in zip(MNIST_FILES, arrays):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
        (directory / name).write_bytes(header + array.tobytes())
    return directory


def test_tour_runs_and_its_gradients_check_out():
    result = run_example("tour.py", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "gradcheck OK" in result.stdout
    assert "MISMATCH" not in result.stdout
    assert "dy/db" in result.stdout and "b.grad" in result.stdout


def test_visualize_trains_briefly_and_writes_both_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    data = write_tiny_mnist(tmp_path / "mnist")
    out = tmp_path / "plots"
    result = run_example("visualize.py", "--train-images", "96", "--eval-images", "8", "--index", "3",
                         "--out", str(out), env={"TINYGRAD_CNN_DATA": str(data)})
    assert result.returncode == 0, result.stderr
    assert "training SeedCNN" in result.stdout
    for name in ("feature_maps.png", "conv1_filters.png"):
        picture = out / name
        assert picture.is_file() and picture.stat().st_size > 1000, name
        assert picture.read_bytes().startswith(b"\x89PNG")


@pytest.fixture
def visualize_module(monkeypatch):
    """examples/visualize.py imported as a module (it imports its neighbour plotting.py)."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import visualize

    return visualize


@pytest.mark.parametrize("layout", ["trainer checkpoint", "plain state dict"])
def test_visualize_loads_both_checkpoint_layouts(tmp_path, visualize_module, layout):
    weights = state_dict(SeedCNN(seed=5))
    if layout == "trainer checkpoint":  # examples/mnist.py --save: model/<key>, plus other state
        arrays = {f"model/{key}": value for key, value in weights.items()}
        arrays["optimizer/0"] = np.zeros(3)
    else:  # tinygrad_cnn.nn.save(model, path)
        arrays = weights
    save(arrays, tmp_path / "checkpoint.npz")
    model = SeedCNN(seed=0)
    visualize_module.load_checkpoint(model, tmp_path / "checkpoint.npz")
    for key, value in state_dict(model).items():
        np.testing.assert_array_equal(value, weights[key])


def test_visualize_uses_a_checkpoint_instead_of_training(tmp_path):
    pytest.importorskip("matplotlib")
    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=2)
    save(SeedCNN(seed=5), tmp_path / "weights.npz")
    result = run_example("visualize.py", "--checkpoint", str(tmp_path / "weights.npz"), "--eval-images", "0",
                         "--out", str(tmp_path / "plots"), "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout and "training" not in result.stdout
    assert (tmp_path / "plots" / "feature_maps.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "conv1_filters.png").stat().st_size > 1000
