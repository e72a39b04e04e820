"""examples/mnist.py end to end on the real MNIST files: accuracy, JSON, checkpoints, resume,
determinism, Ctrl-C, kill -9, divergence. CI sets TINYGRAD_CNN_DATA to ../shared/data/mnist;
without the data these tests fail in CI (never pass vacuously) and skip on a laptop."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SCRIPT = REPOSITORY / "examples" / "mnist.py"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(scope="module")
def data_dir() -> str:
    directory = os.environ.get("TINYGRAD_CNN_DATA", "")
    present = directory and all(
        (Path(directory) / name).exists() or (Path(directory) / f"{name}.gz").exists() for name in FILES
    )
    if not present:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide MNIST: TINYGRAD_CNN_DATA={directory!r} does not hold the four files")
        pytest.skip("MNIST not available: set TINYGRAD_CNN_DATA to a directory with the four IDX files")
    return directory


def command(data_dir: str, *flags: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "--data-dir", data_dir, "--no-progress", *flags]


def run(data_dir: str, *flags: str, expect: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(command(data_dir, *flags), capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == expect, result.stdout + result.stderr
    return result


def weights(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files if not name == "meta"}


def assert_bit_identical(first: Path, second: Path) -> None:
    a, b = weights(first), weights(second)
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"


SMALL = ("--limit-train", "640", "--limit-test", "500", "--batch-size", "32")


def test_trains_to_95_percent_on_5000_images_in_one_epoch(data_dir, tmp_path):
    # Small data, one pass: Adam with quick-reacting moments gets the most out of 5,000 images
    # (95.4-95.9 % over seeds 0-5; SGD settings stayed at 92-94 % with the seed initialisation)
    result = run(data_dir, "--limit-train", "5000", "--limit-test", "2000", "--epochs", "1",
                 "--optimizer", "adam", "--batch-size", "8", "--lr", "0.004", "--betas", "0.8", "0.95",
                 "--warmup-epochs", "0.1", "--json", str(tmp_path / "result.json"), "--save", str(tmp_path / "model.npz"))
    report = json.loads((tmp_path / "result.json").read_text())
    assert report["test_accuracy"] >= 95.0, result.stdout
    assert {"model", "epochs", "batch_size", "test_accuracy", "train_seconds", "total_seconds", "history"} <= set(report)
    assert report["model"] == "cnn" and report["epochs"] == 1 and len(report["history"]) == 1
    assert set(report["history"][0]) >= {"epoch", "lr", "avg_loss", "test_accuracy", "seconds"}
    assert "Epoch 1/1" in result.stdout and "Final test accuracy" in result.stdout

    evaluated = run(data_dir, "--eval-only", "--resume", str(tmp_path / "model.npz"), "--limit-test", "2000")
    assert f"{report['test_accuracy']:.2f}%" in evaluated.stdout


def test_same_seed_gives_bit_identical_weights(data_dir, tmp_path):
    run(data_dir, *SMALL, "--epochs", "1", "--save", str(tmp_path / "a.npz"))
    run(data_dir, *SMALL, "--epochs", "1", "--save", str(tmp_path / "b.npz"))
    assert_bit_identical(tmp_path / "a.npz", tmp_path / "b.npz")
    run(data_dir, *SMALL, "--epochs", "1", "--seed", "1", "--save", str(tmp_path / "c.npz"))
    assert not np.array_equal(weights(tmp_path / "a.npz")["model/fc2.weight"],
                              weights(tmp_path / "c.npz")["model/fc2.weight"])


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory) -> Path:
    """Two uninterrupted epochs: what every interrupted-and-resumed run must reproduce."""
    path = tmp_path_factory.mktemp("reference") / "two_epochs.npz"
    run(data_dir, *SMALL, "--epochs", "2", "--save", str(path))
    return path


def test_one_epoch_then_resume_equals_two_epochs(data_dir, tmp_path, uninterrupted):
    """Stop after epoch 1 (the epoch-end checkpoint), then resume for the second epoch."""
    checkpoint = tmp_path / "run.npz"
    process = subprocess.Popen(command(data_dir, *SMALL, "--epochs", "2", "--save", str(checkpoint)),
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    for line in process.stdout:  # wait for the end of epoch 1, then interrupt
        if line.startswith("Epoch 1/2"):
            process.send_signal(signal.SIGINT)
            break
    output = process.stdout.read()
    assert process.wait(timeout=120) == 130
    assert "Interrupted at" in output and "Traceback" not in output
    resumed = run(data_dir, "--resume", str(checkpoint), "--save", str(checkpoint), "--limit-test", "500")
    assert "Epoch 2/2" in resumed.stdout
    assert_bit_identical(checkpoint, uninterrupted)
    history = json.loads(str(np.load(checkpoint)["meta"]))["history"]
    reference = json.loads(str(np.load(uninterrupted)["meta"]))["history"]
    assert [h["avg_loss"] for h in history] == [h["avg_loss"] for h in reference]


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_kill_9_mid_epoch_leaves_a_loadable_checkpoint_and_resume_is_bit_exact(data_dir, tmp_path, uninterrupted):
    checkpoint = tmp_path / "run.npz"
    process = subprocess.Popen(command(data_dir, *SMALL, "--epochs", "2", "--save", str(checkpoint), "--save-every", "3"),
                               stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    wait_for(checkpoint)
    time.sleep(0.3)  # somewhere in the middle of training, likely mid-write of a later checkpoint
    process.kill()
    process.wait(timeout=30)
    meta = json.loads(str(np.load(checkpoint)["meta"]))  # loadable: the old or the new checkpoint
    assert meta["global_step"] % 3 == 0 or meta["step_in_epoch"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name != "run.npz" and not p.name.endswith(".tmp")]
    run(data_dir, "--resume", str(checkpoint), "--save", str(checkpoint), "--limit-test", "500")
    assert_bit_identical(checkpoint, uninterrupted)


def test_ctrl_c_without_save_exits_cleanly(data_dir):
    process = subprocess.Popen(command(data_dir, *SMALL, "--epochs", "50"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    for line in process.stdout:
        if line.startswith("Training on"):
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Interrupted" in stdout and "nothing saved" in stdout
    assert "Traceback" not in stdout + stderr


def test_diverging_training_stops_with_a_clear_message(data_dir):
    result = run(data_dir, "--limit-train", "256", "--limit-test", "100", "--batch-size", "32",
                 "--lr", "1e30", "--warmup-epochs", "0", expect=1)
    assert "training loss became" in result.stdout and "step" in result.stdout and "lower --lr" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_help_documents_every_flag():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    for flag in ("--model", "--epochs", "--batch-size", "--lr", "--momentum", "--recipe", "--data-dir",
                 "--limit-train", "--limit-test", "--seed", "--save", "--save-every", "--resume",
                 "--eval-only", "--plots", "--json", "--graph"):
        assert flag in result.stdout


def test_bad_flags_and_missing_data_are_reported(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--eval-only"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 2 and "--eval-only needs --resume" in result.stderr
    for name in FILES:  # present, so nothing is downloaded, but not gzip despite the name
        (tmp_path / f"{name}.gz").write_bytes(b"not a gzip file")
    result = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(tmp_path), "--no-progress"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 1 and "train-images-idx3-ubyte.gz" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_plots_are_written(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    run(data_dir, "--limit-train", "320", "--limit-test", "300", "--epochs", "1", "--batch-size", "32",
        "--plots", str(tmp_path / "plots"))
    for name in ("curves.png", "predictions.png", "mistakes.png", "conv1_filters.png", "feature_maps.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000, name


def test_resume_from_a_corrupt_or_foreign_checkpoint_is_refused(data_dir, tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip archive at all")
    result = run(data_dir, "--resume", str(corrupt), "--limit-test", "10", expect=1)
    assert "corrupt.npz" in result.stdout and "Traceback" not in result.stdout + result.stderr
    weights_only = tmp_path / "weights.npz"
    np.savez(weights_only, **{"conv1.weight": np.zeros((16, 1, 3, 3))})
    result = run(data_dir, "--resume", str(weights_only), "--eval-only", expect=1)
    assert "not a training checkpoint" in result.stdout
