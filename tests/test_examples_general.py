"""The examples that show the general API (nn layers, Adam) on the real MNIST files: each runs
on a small slice in a few seconds and must learn. Without the data these tests fail in CI
(never pass vacuously) and skip on a laptop, as tests/test_mnist_example.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

from test_mnist_example import data_dir  # noqa: F401  (the fixture: the MNIST directory, or skip / fail in CI)

REPOSITORY = Path(__file__).resolve().parents[1]


def run_example(name: str, *flags: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(REPOSITORY / "examples" / name), *flags],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_lenet_learns_from_600_images(data_dir, tmp_path):
    result = run_example("lenet.py", "--data-dir", data_dir, "--limit-train", "600", "--limit-test", "500",
                         "--epochs", "4", "--json", str(tmp_path / "result.json"))
    accuracy = json.loads((tmp_path / "result.json").read_text())["test_accuracy"]
    assert accuracy > 60, result.stdout  # chance is 10 %; 600 images and 4 epochs give about 80 %
    assert "Epoch 4/4" in result.stdout


def test_lenet_rejects_a_non_positive_limit():
    result = subprocess.run([sys.executable, str(REPOSITORY / "examples" / "lenet.py"), "--limit-train", "0"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 2 and "--limit-train must be positive, got 0" in result.stderr
