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


def test_lenet_stops_with_an_error_line_when_its_logits_are_not_finite(data_dir, monkeypatch, capsys):
    """Diverged weights give NaN logits; argmax would call every such row class 0 and print a
    made-up accuracy, so the run stops with one error line instead (predict stands in for
    a diverged model here: Adam's bounded steps rarely reach NaN within a few seconds)."""
    import numpy as np

    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import lenet

    monkeypatch.setattr(lenet, "predict", lambda model, images: np.full((len(images), 10), np.nan))
    code = lenet.main(["--data-dir", data_dir, "--limit-train", "64", "--limit-test", "20", "--epochs", "1"])
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: the model diverged: its logits are NaN or inf on 20 of 20 test images (epoch 1, lr 0.002); "
        "try a lower --lr")


def test_lenet_checks_its_json_path_before_training_and_reports_errors_on_stderr(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "TINYGRAD_CNN_DATA": str(tmp_path / "nowhere")}
    result = subprocess.run([sys.executable, str(REPOSITORY / "examples" / "lenet.py"), "--json",
                             str(blocker / "result.json")], capture_output=True, text=True, timeout=60, env=environment)
    assert result.returncode == 1 and result.stdout == ""  # refused before loading any data
    assert result.stderr.startswith("error: --json") and "a file stands at" in result.stderr
    result = subprocess.run([sys.executable, str(REPOSITORY / "examples" / "lenet.py")],
                            capture_output=True, text=True, timeout=60, env=environment)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: could not load MNIST")
