"""examples/mnist.py end to end on the real MNIST files: accuracy, JSON, checkpoints, resume,
determinism, Ctrl-C, SIGTERM, kill -9, divergence, output paths checked before training, a full disk. CI sets TINYGRAD_CNN_DATA to ../shared/data/mnist;
without the data these tests fail in CI (never pass vacuously) and skip on a laptop."""

import errno
import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import state_dict

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
TINY = ("--limit-train", "96", "--limit-test", "50", "--batch-size", "16")  # 6 steps per epoch


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
    """Interrupt once epoch 1's line is out (its checkpoint was written before the line, so the
    interrupt lands early in epoch 2 and is saved there), then resume for the rest."""
    checkpoint = tmp_path / "run.npz"
    process = subprocess.Popen(command(data_dir, *SMALL, "--epochs", "2", "--save", str(checkpoint)),
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    for line in process.stdout:  # wait for the end of epoch 1, then interrupt
        if line.startswith("Epoch 1/2"):
            process.send_signal(signal.SIGINT)
            break
    output = process.stdout.read()
    assert process.wait(timeout=120) == 130
    assert re.search(r"Interrupted by Ctrl-C at epoch 2, step \d+/20: checkpoint saved", output), output
    assert "Traceback" not in output
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
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # a temporary the kill left is removed by a later save


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
    assert "training loss became" in result.stderr and "step" in result.stderr and "lower --lr" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_help_documents_every_flag():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    for flag in ("--model", "--epochs", "--batch-size", "--lr", "--momentum", "--recipe", "--data-dir",
                 "--limit-train", "--limit-test", "--seed", "--save", "--save-every", "--resume",
                 "--eval-only", "--plots", "--json", "--graph"):
        assert flag in result.stdout
    assert "keep saving to PATH" in result.stdout.replace("\n", " ").replace("  ", " ")


def test_bad_flags_and_missing_data_are_reported(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--eval-only"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 2 and "--eval-only needs --resume" in result.stderr
    for name in FILES:  # present, so nothing is downloaded, but not gzip despite the name
        (tmp_path / f"{name}.gz").write_bytes(b"not a gzip file")
    result = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(tmp_path), "--no-progress"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 1 and "train-images-idx3-ubyte.gz" in result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("flags, message", [
    (["--seed", "-1"], "--seed must be >= 0, got -1"),  # (was a traceback from the model's constructor)
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum is SGD's; Adam would ignore it"),  # (silently ignored)
    (["--betas", "0.8", "0.99"], "--betas are Adam's (--optimizer adam); SGD would ignore them"),
])
def test_a_flag_the_run_cannot_use_is_refused_by_the_parser(flags, message):
    result = subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 2 and f"mnist.py: error: {message}" in result.stderr, result.stderr


def test_a_png_graph_without_graphviz_is_refused_before_training(tmp_path):
    """A PATH without Graphviz's dot: the picture cannot be drawn, said in one line up front
    (it was a traceback after training)."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--graph", str(tmp_path / "graph.png"),
                             "--data-dir", str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY), "PATH": str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: --graph {tmp_path / 'graph.png'}: drawing the picture needs Graphviz's dot")


def test_a_tilde_the_shell_did_not_expand_is_a_home_directory_in_every_path(data_dir, tmp_path, monkeypatch):
    """--resume='~/run.npz' passed the up-front check (which expanded ~) and then failed to load."""
    monkeypatch.setenv("HOME", str(tmp_path))
    run(data_dir, *TINY, "--epochs", "1", "--save", "~/run.npz", "--json", "~/result.json")
    assert (tmp_path / "run.npz").is_file() and (tmp_path / "result.json").is_file()
    result = subprocess.run(command(data_dir, "--limit-test", "50", "--resume", "~/run.npz", "--eval-only"),
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 0 and f"Test accuracy of {tmp_path / 'run.npz'}" in result.stdout, result.stderr


def test_plots_and_every_other_output_are_written_into_missing_directories(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    run(data_dir, "--limit-train", "64", "--limit-test", "100", "--epochs", "1", "--batch-size", "32",
        "--plots", str(tmp_path / "a" / "plots"), "--save", str(tmp_path / "b" / "c" / "run.npz"),
        "--json", str(tmp_path / "d" / "result.json"), "--graph", str(tmp_path / "e" / "graph.dot"))
    for name in ("curves.png", "predictions.png", "mistakes.png", "conv1_filters.png", "feature_maps.png"):
        assert (tmp_path / "a" / "plots" / name).stat().st_size > 1000, name
    assert json.loads((tmp_path / "d" / "result.json").read_text())["train_images"] == 64
    assert "digraph" in (tmp_path / "e" / "graph.dot").read_text()
    assert "model/conv1.weight" in np.load(tmp_path / "b" / "c" / "run.npz").files


def test_resume_from_a_corrupt_or_foreign_checkpoint_is_refused(data_dir, tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip archive at all")
    result = run(data_dir, "--resume", str(corrupt), "--limit-test", "10", expect=1)
    assert "corrupt.npz" in result.stderr and "Traceback" not in result.stdout + result.stderr
    text = tmp_path / "notes.npz"
    text.write_text("these are my notes, not a checkpoint\n")
    result = run(data_dir, "--resume", str(text), expect=1)
    assert "text file" in result.stderr and "pickle" not in result.stderr
    partial = tmp_path / "partial.npz"
    np.savez(partial, **{"conv1.weight": np.zeros((16, 1, 3, 3))})
    result = run(data_dir, "--resume", str(partial), "--eval-only", expect=1)
    assert "match neither the seed CNN nor the seed MLP" in result.stderr
    weights_only = tmp_path / "weights.npz"
    np.savez(weights_only, **state_dict(SeedCNN(seed=1)))  # what tinygrad_cnn.nn.save(model, path) writes
    result = run(data_dir, "--resume", str(weights_only), expect=1)
    assert "not a training checkpoint" in result.stderr and "--eval-only" in result.stderr
    result_file = tmp_path / "result.json"
    evaluated = run(data_dir, "--resume", str(weights_only), "--eval-only", "--limit-test", "50",
                    "--json", str(result_file))
    assert "Test accuracy of" in evaluated.stdout
    assert json.loads(result_file.read_text())["model"] == "cnn"  # recognised by its weights (it was null)


# ---------------------------------------------------------------------------
# Output paths are checked before anything slow happens
# ---------------------------------------------------------------------------


def run_without_data(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """The trainer pointed at a data directory that does not exist: a problem found before the
    data is loaded is reported as itself, not as missing data."""
    return subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(tmp_path / "no-data-here"), "--no-progress",
                           *flags], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPOSITORY)})


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Training on" not in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize("flag, target, fragment", [
    ("--save", "a_file/run.npz", "a file stands at a_file"),
    ("--save", "a_directory", "that is a directory"),
    ("--json", "a_file/sub/result.json", "a file stands at a_file"),
    ("--json", "a_directory", "that is a directory"),
    ("--plots", "a_file", "a file stands there"),
    ("--graph", "a_file/graph.dot", "a file stands at a_file"),
])
def test_an_impossible_output_path_stops_before_training(tmp_path, flag, target, fragment):
    (tmp_path / "a_file").write_text("in the way")
    (tmp_path / "a_directory").mkdir()
    result = run_without_data(tmp_path, flag, target)
    assert_one_error_line(result, f"{flag} {target}", fragment)


@pytest.mark.parametrize("flag", ["--save", "--resume", "--json", "--plots", "--graph", "--export-onnx", "--data-dir"])
def test_an_empty_path_is_refused_by_the_parser(flag, monkeypatch, capsys):
    """--save "$OUT" with OUT unset trained and saved nothing without a word; --resume "" trained a
    fresh model and reported it as if resumed."""
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import mnist

    with pytest.raises(SystemExit) as stop:
        mnist.parse_args([flag, ""])
    assert stop.value.code == 2
    assert f"error: {flag} was given an empty path" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dot") is None, reason="the picture beside a .dot is drawn only with Graphviz")
@pytest.mark.parametrize("named, beside, words", [("net.png", "net.dot", "its DOT text"),
                                                  ("net.dot", "net.png", "its picture")])
def test_a_directory_where_the_graph_s_second_file_goes_is_refused_before_training(tmp_path, named, beside, words):
    """--graph net.png with a directory net.dot was an IsADirectoryError traceback (after loading the data)."""
    (tmp_path / beside).mkdir()
    result = run_without_data(tmp_path, "--graph", named)
    assert_one_error_line(result, f"--graph {named}: {beside} is a directory, where {words} is to be written")


def test_an_onnx_that_is_installed_but_fails_to_import_stops_before_training(tmp_path):
    """find_spec found such a package, and the export failed with a traceback after training."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "onnx.py").write_text("raise ImportError('onnx is broken here')\n")
    result = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(tmp_path / "no-data-here"),
                             "--export-onnx", str(tmp_path / "model.onnx")], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{REPOSITORY}"})
    assert_one_error_line(result, "--export-onnx needs the onnx package", "onnx is broken here")


def test_training_runs_without_tqdm(monkeypatch):
    """tqdm is a dependency, but without it every run was an ImportError traceback, --no-progress included."""
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import mnist

    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    for disabled in (True, False):
        bar = mnist.progress_bar(10, 0, "epoch 1/1", disabled)
        bar.update(5)
        bar.set_postfix(loss="0.1", refresh=False)
        bar.close()
        assert isinstance(bar, mnist.NoProgressBar)


@pytest.mark.parametrize("flags, fragments", [
    (["--eval-only", "--resume", "keep.npz", "--json", "keep.npz"],
     ["--resume keep.npz and --json keep.npz are the same file", "overwrite the checkpoint it reads"]),
    (["--save", "new.npz", "--export-onnx", "new.npz"], ["--save new.npz and --export-onnx new.npz are the same file"]),
    (["--resume", "keep.npz", "--export-onnx", "hard_link.onnx"], ["--resume keep.npz and --export-onnx hard_link.onnx"]),
    (["--resume", "keep.npz", "--save", "other.npz", "--json", "symbolic_link.json"],
     ["--resume keep.npz and --json symbolic_link.json"]),
    (["--json", "missing/../result.json", "--save", "result.json"], ["--save result.json and --json missing/../result.json"]),
    (["--graph", "net", "--save", "net.png"], ["--save net.png and --graph net (its PNG)"]),
    (["--graph", "net.dot", "--json", "net.dot"], ["--json net.dot and --graph net.dot are the same file"]),
    (["--graph", "net.gv", "--json", "net.gv"], ["--json net.gv and --graph net.gv are the same file"]),
    (["--graph", "net.png", "--json", "net.dot"], ["--json net.dot and --graph net.png (its DOT text)"]),
    (["--plots", "plots", "--json", "plots/curves.png"], ["--json plots/curves.png and --plots plots (its curves.png)"]),
])
def test_two_outputs_naming_one_file_are_refused_before_anything_is_written(tmp_path, flags, fragments):
    keep = tmp_path / "keep.npz"
    keep.write_bytes(b"a week of training")
    os.link(keep, tmp_path / "hard_link.onnx")
    (tmp_path / "symbolic_link.json").symlink_to(keep)
    before = sorted(path.name for path in tmp_path.iterdir())
    result = run_without_data(tmp_path, *flags)
    assert_one_error_line(result, *fragments, "give each output its own path")
    assert keep.read_bytes() == b"a week of training"
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # nothing written, no directory made


@pytest.mark.parametrize("flag", ["--save", "--json", "--graph", "--export-onnx"])
@pytest.mark.parametrize("target", ["new_directory/", "new_directory/.", ".."])
def test_an_output_path_naming_a_directory_is_refused(tmp_path, flag, target):
    """``out/`` names a directory even where none exists: never write a file called ``out``."""
    result = run_without_data(tmp_path, flag, target)
    assert_one_error_line(result, f"{flag} {target}: that names a directory; give a file name inside it")
    assert not (tmp_path / "new_directory").exists()


def test_save_refuses_to_replace_a_file_it_is_not_resuming(tmp_path):
    existing = tmp_path / "last_week.npz"
    existing.write_bytes(b"a week of training")
    result = run_without_data(tmp_path, "--save", str(existing))
    assert_one_error_line(result, "the file exists", f"--resume {existing}")
    assert existing.read_bytes() == b"a week of training"


def test_plots_without_matplotlib_stop_before_training(tmp_path):
    stand_in = tmp_path / "no_matplotlib" / "matplotlib"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    result = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(tmp_path / "no-data-here"),
                             "--plots", str(tmp_path / "plots")], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": f"{stand_in.parent}{os.pathsep}{REPOSITORY}"})
    assert_one_error_line(result, "--plots", "pip install matplotlib")


@pytest.fixture
def small_disk(tmp_path):
    """A directory on a freshly mounted tmpfs of the requested size (needs root)."""
    mounted = []

    def mount(size: str) -> Path:
        directory = tmp_path / f"disk_{size}"
        directory.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                                capture_output=True, text=True)
        if result.returncode != 0:  # test_a_failing_checkpoint_write_... covers this case without a mount
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()})")
        mounted.append(directory)
        return directory

    yield mount
    for directory in mounted:
        subprocess.run(["umount", str(directory)], check=True)


def test_a_disk_too_small_for_a_checkpoint_is_refused_before_training(tmp_path, small_disk):
    disk = small_disk("64k")
    result = run_without_data(tmp_path, "--save", str(disk / "run.npz"))
    assert_one_error_line(result, f"--save {disk / 'run.npz'}", "KB free", "a checkpoint needs about")


def test_a_disk_that_fills_up_stops_the_run_and_keeps_the_last_checkpoint(data_dir, tmp_path, small_disk):
    disk = small_disk("4m")  # room for one checkpoint (2.8 MB), not for a second one beside it
    result = run(data_dir, *TINY, "--epochs", "2", "--save", str(disk / "run.npz"), expect=1)
    assert "Epoch 1/2" in result.stdout
    assert "could not write the checkpoint" in result.stderr and "No space left" in result.stderr
    assert "still holds the checkpoint from after epoch 1" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(str(np.load(disk / "run.npz")["meta"]))["epoch"] == 1
    assert [path.name for path in disk.iterdir()] == ["run.npz"]  # the half-written file was removed


# ---------------------------------------------------------------------------
# In-process runs: signals and failures arrive at exactly the step a test chooses
# ---------------------------------------------------------------------------

@pytest.fixture
def trainer(monkeypatch, data_dir):
    """examples/mnist.py imported as a module, so a test can wrap its functions."""
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import mnist

    return mnist


def signals_after_steps(trainer, monkeypatch, signals: dict[int, list[int]]) -> None:
    """Send this process the given signals right after the given global steps."""
    original = trainer.train_step

    def step_then_signal(run, *arguments):
        original(run, *arguments)
        for signum in signals.get(run.position["global_step"], []):
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(trainer, "train_step", step_then_signal)


def position(path: Path) -> tuple[int, int, int]:
    meta = json.loads(str(np.load(path)["meta"]))
    return meta["epoch"], meta["step_in_epoch"], meta["global_step"]


def test_sigterm_saves_and_exits_143_and_resume_keeps_saving_to_the_same_file(trainer, monkeypatch, data_dir,
                                                                                 tmp_path, capsys):
    reference, checkpoint = tmp_path / "reference.npz", tmp_path / "run.npz"
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "2", "--save", str(reference)]) == 0
    capsys.readouterr()

    signals_after_steps(trainer, monkeypatch, {3: [signal.SIGTERM]})
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "2", "--save", str(checkpoint)]) == 143
    output = capsys.readouterr().out.splitlines()
    assert output[-1] == f"Interrupted by SIGTERM at epoch 1, step 3/6: checkpoint saved to {checkpoint}; " \
                         f"continue with --resume {checkpoint}"
    assert position(checkpoint) == (0, 3, 3)

    signals_after_steps(trainer, monkeypatch, {8: [signal.SIGTERM]})  # resumed without --save: still saved
    assert trainer.main(["--data-dir", data_dir, "--no-progress", "--resume", str(checkpoint)]) == 143
    assert position(checkpoint) == (1, 2, 8)
    assert "Resuming" in capsys.readouterr().out

    assert trainer.main(["--data-dir", data_dir, "--no-progress", "--resume", str(checkpoint)]) == 0
    assert_bit_identical(checkpoint, reference)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_resumed_run_flushes_the_optimizer_buffers_on_the_steps_the_uninterrupted_run_does(trainer, monkeypatch,
                                                                                              data_dir, tmp_path, capsys):
    """The optimizers set tiny buffer entries to 0 every kernels.flush_steps(...) of their own
    steps (144 for SGD's momentum 0.9), a count no checkpoint holds: a run resumed at
    step 3 counted from 0 again and flushed on other steps than the uninterrupted run (in a
    long run, dead units' momentum entries then differ in the checkpoints). Here every flush sets all the momentum to 0 (a
    limit of 2^200 x the smallest float), so flushing on other steps changes the weights."""
    from tinygrad_cnn import kernels

    monkeypatch.setattr(kernels, "FLUSH_MARGIN", 2.0**200)
    monkeypatch.setattr(kernels, "SUBNORMAL_FLUSH_STEPS", 4)
    monkeypatch.setattr(kernels, "flush_steps", lambda decay, headroom=None: 4)  # (144 for momentum 0.9)
    reference, checkpoint = tmp_path / "reference.npz", tmp_path / "run.npz"
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "2", "--save", str(reference)]) == 0
    signals_after_steps(trainer, monkeypatch, {3: [signal.SIGTERM]})
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "2", "--save", str(checkpoint)]) == 143
    assert position(checkpoint) == (0, 3, 3)
    assert trainer.main(["--data-dir", data_dir, "--no-progress", "--resume", str(checkpoint)]) == 0
    capsys.readouterr()
    assert_bit_identical(checkpoint, reference)


def test_a_second_signal_while_the_checkpoint_is_written_waits_for_it(trainer, monkeypatch, data_dir, tmp_path,
                                                                       capsys):
    import common

    original_save = common.save
    calls = []

    def save_while_signalled(arrays, path):
        calls.append(path)
        os.kill(os.getpid(), signal.SIGINT)  # the impatient second and third presses, mid-write
        os.kill(os.getpid(), signal.SIGTERM)
        original_save(arrays, path)

    monkeypatch.setattr(common, "save", save_while_signalled)
    signals_after_steps(trainer, monkeypatch, {2: [signal.SIGINT]})
    checkpoint = tmp_path / "run.npz"
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--save", str(checkpoint)]) == 130
    assert len(calls) == 1 and position(checkpoint) == (0, 2, 2)
    assert capsys.readouterr().out.splitlines()[-1].startswith("Interrupted by Ctrl-C at epoch 1, step 2/6: checkpoint saved")


def test_without_save_a_second_signal_stops_at_once(trainer, monkeypatch, data_dir, capsys):
    original_step = trainer.train_step
    steps = []

    def counted(run, *arguments):
        steps.append(run.position["global_step"])
        original_step(run, *arguments)

    monkeypatch.setattr(trainer, "train_step", counted)
    signals_after_steps(trainer, monkeypatch, {2: [signal.SIGTERM, signal.SIGTERM]})
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY]) == 143
    assert capsys.readouterr().out.splitlines()[-1] == "Interrupted by SIGTERM."
    assert steps == [0, 1]


def test_a_failing_checkpoint_write_stops_with_one_line_and_keeps_the_previous_one(trainer, monkeypatch, data_dir,
                                                                                     tmp_path, capsys):
    real_fsync, calls = os.fsync, []

    def full_disk_on_the_second_write(descriptor):
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):  # nn.save also syncs the directory after the rename
            return real_fsync(descriptor)
        calls.append(descriptor)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_disk_on_the_second_write)
    checkpoint = tmp_path / "run.npz"
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "2", "--save", str(checkpoint)]) == 1
    error = capsys.readouterr().err
    assert error == (f"error: could not write the checkpoint {checkpoint}: No space left on device; training stopped "
                     f"after epoch 2; {checkpoint} still holds the checkpoint from after epoch 1\n")
    assert position(checkpoint) == (1, 0, 6)
    assert [path.name for path in tmp_path.iterdir()] == ["run.npz"]


# ---------------------------------------------------------------------------
# Real signals, end to end
# ---------------------------------------------------------------------------


def test_sigterm_and_two_quick_ctrl_c_leave_a_checkpoint(data_dir, tmp_path):
    checkpoint = tmp_path / "run.npz"
    for signals, status in (([signal.SIGTERM], 143), ([signal.SIGINT, signal.SIGINT], 130)):
        checkpoint.unlink(missing_ok=True)
        process = subprocess.Popen(command(data_dir, *TINY, "--epochs", "1000", "--save", str(checkpoint),
                                           "--save-every", "2"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
        wait_for(checkpoint)
        for signum in signals:
            process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == status, stdout + stderr
        name = "SIGTERM" if signals[0] == signal.SIGTERM else "Ctrl-C"
        assert stdout.splitlines()[-1].startswith(f"Interrupted by {name} at epoch")
        assert "Traceback" not in stderr and position(checkpoint)[2] >= 2


# ---------------------------------------------------------------------------
# Resuming: finished runs, longer runs, ignored flags, real counts and times
# ---------------------------------------------------------------------------


def test_a_save_every_that_divides_the_epoch_still_saves_the_epoch_s_end(data_dir, tmp_path):
    """The periodic save at an epoch's last step and the end-of-epoch save share a global step;
    the second was skipped as a duplicate, so the file lacked the epoch's record and a finished
    run resumed as unfinished."""
    checkpoint = tmp_path / "run.npz"
    run(data_dir, *TINY, "--epochs", "2", "--save", str(checkpoint), "--save-every", "6")  # 6 steps per epoch
    assert position(checkpoint) == (2, 0, 12)
    assert len(json.loads(str(np.load(checkpoint)["meta"]))["history"]) == 2
    assert "is finished" in run(data_dir, "--limit-test", "50", "--resume", str(checkpoint)).stdout


def test_resuming_a_finished_run_evaluates_it_and_a_larger_epochs_extends_it(data_dir, tmp_path, uninterrupted):
    checkpoint = tmp_path / "run.npz"
    checkpoint.write_bytes(uninterrupted.read_bytes())
    finished = run(data_dir, "--resume", str(checkpoint), "--limit-test", "500", "--model", "mlp", "--seed", "3",
                   "--recipe", "seed", "--lr", "0.3", "--json", str(tmp_path / "finished.json"))
    assert f"The run in {checkpoint} is finished: 2/2 epochs trained" in finished.stdout
    note = next(line for line in finished.stdout.splitlines() if line.startswith("note: resuming"))
    for ignored in ("--model mlp", "--seed 3", "--recipe seed", "--lr 0.3"):
        assert ignored in note
    assert checkpoint.read_bytes() == uninterrupted.read_bytes()  # nothing trained, nothing rewritten
    shorter = run(data_dir, "--resume", str(checkpoint), "--epochs", "1", "--limit-test", "50")
    assert "ignoring --epochs 1: the checkpoint was saved after epoch 2" in shorter.stdout
    evaluated = run(data_dir, "--resume", str(checkpoint), "--eval-only", "--limit-test", "50", "--lr", "0.1")
    assert "note: --eval-only evaluates the checkpoint as it is; ignoring --lr" in evaluated.stdout
    report = json.loads((tmp_path / "finished.json").read_text())
    reference_history = json.loads(str(np.load(uninterrupted)["meta"]))["history"]
    assert report["epochs"] == 2 and report["train_images"] == 640 and report["session_train_seconds"] == 0
    assert report["test_accuracy"] == reference_history[-1]["test_accuracy"]  # same 500 test images
    assert report["train_seconds"] == pytest.approx(sum(h["train_seconds"] for h in reference_history))

    extended = run(data_dir, "--resume", str(checkpoint), "--epochs", "3", "--limit-test", "500",
                   "--json", str(tmp_path / "extended.json"))
    assert "changes the run's length from 2 to 3 epochs" in extended.stdout
    assert "training on 640 images" in extended.stdout and "Epoch 3/3" in extended.stdout
    report = json.loads((tmp_path / "extended.json").read_text())
    assert report["epochs"] == 3 and len(report["history"]) == 3 and position(checkpoint) == (3, 0, 60)
    assert 0 < report["session_train_seconds"] < report["total_seconds"]
    assert report["session_train_seconds"] < report["train_seconds"]
    final = next(line for line in extended.stdout.splitlines() if line.startswith("Final test accuracy"))
    assert "after 3 epochs" in final and "the whole run trained" in final


@pytest.fixture
def tiny_trainer(tmp_path, monkeypatch):
    """examples/mnist.py imported as a module, and its flags for a made-up MNIST of 32 training
    and 8 test images (one step per epoch): for what needs a checkpoint, not learning."""
    from test_datasets import write_mnist

    write_mnist(tmp_path / "data", train=32, test=8)
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import mnist

    return mnist, ["--data-dir", str(tmp_path / "data"), "--no-progress", "--batch-size", "32"]


def test_resuming_a_finished_run_with_save_elsewhere_creates_and_writes_nothing(tiny_trainer, tmp_path, capsys):
    """The up-front check of --save created its missing directory, though a finished run
    writes no checkpoint."""
    trainer, flags = tiny_trainer
    checkpoint, elsewhere, taken = tmp_path / "run.npz", tmp_path / "other" / "x.npz", tmp_path / "taken.npz"
    assert trainer.main([*flags, "--epochs", "1", "--save", str(checkpoint)]) == 0
    taken.write_bytes(b"last week's run")
    before = sorted(path.name for path in tmp_path.iterdir())
    capsys.readouterr()
    for save in (elsewhere, taken):  # (an existing file is no reason to stop a run that replaces nothing)
        assert trainer.main([*flags, "--resume", str(checkpoint), "--save", str(save)]) == 0
        output = capsys.readouterr().out
        assert "is finished" in output and f"note: nothing was trained, so --save {save} is ignored" in output
        assert sorted(path.name for path in tmp_path.iterdir()) == before
    assert taken.read_bytes() == b"last week's run"

    # a run that will train still has its --save checked before it starts; its directory is made by the save
    assert trainer.main([*flags, "--resume", str(checkpoint), "--epochs", "2", "--save", str(elsewhere)]) == 0
    assert position(elsewhere) == (2, 0, 2)


def outputs_in_new_directories(tmp_path: Path, *flags: str) -> list[str]:
    """Each named output flag with a path under a directory that does not exist yet."""
    paths = {"--save": tmp_path / "new_save" / "deeper" / "run.npz", "--json": tmp_path / "new_json" / "run.json",
             "--plots": tmp_path / "new_plots" / "deeper", "--graph": tmp_path / "new_graph" / "graph.dot",
             "--export-onnx": tmp_path / "new_onnx" / "model.onnx"}
    return [text for flag in flags for text in (flag, str(paths[flag]))]


ALL_OUTPUTS = ("--save", "--json", "--plots", "--graph", "--export-onnx")


def test_a_run_refused_or_interrupted_after_the_output_checks_leaves_no_new_directory(tiny_trainer, tmp_path,
                                                                                     monkeypatch, capsys):
    """The up-front checks created every missing output directory, which then stayed behind,
    empty, when the run failed or was interrupted before writing anything into it. The checks
    now create nothing; each directory is made by the write into it."""
    pytest.importorskip("matplotlib")
    trainer, flags = tiny_trainer
    before = sorted(tmp_path.iterdir())
    outputs = outputs_in_new_directories(tmp_path, *ALL_OUTPUTS)

    # refused after the checks: no data where --data-dir points
    code = trainer.main(["--data-dir", str(tmp_path / "no-data-here"), "--no-progress", *outputs])
    assert code == 1 and capsys.readouterr().err.startswith("error: could not load MNIST")
    assert sorted(tmp_path.iterdir()) == before

    # Ctrl-C while the data loads (SIGINT's default handler: a KeyboardInterrupt)
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "load_data", interrupted)
        assert trainer.main([*flags, *outputs]) == 130
    assert capsys.readouterr().out.strip().splitlines()[-1] == "Interrupted."
    assert sorted(tmp_path.iterdir()) == before

    # Ctrl-C in training, with no checkpoint to save: the results are never written
    original = trainer.train_epoch

    def train_epoch_then_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # StopOnSignal's handler: the loop stops before its first step
        return original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "train_epoch", train_epoch_then_ctrl_c)
        code = trainer.main([*flags, "--epochs", "1", *outputs_in_new_directories(tmp_path, "--json", "--plots",
                                                                                  "--export-onnx")])
    assert code == 130 and "Interrupted by Ctrl-C" in capsys.readouterr().out
    assert sorted(tmp_path.iterdir()) == before


def test_a_tiny_run_writes_every_output_into_directories_that_do_not_exist_yet(tiny_trainer, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("onnx")
    trainer, flags = tiny_trainer
    assert trainer.main([*flags, "--epochs", "1", *outputs_in_new_directories(tmp_path, *ALL_OUTPUTS)]) == 0, \
        capsys.readouterr().err
    assert position(tmp_path / "new_save" / "deeper" / "run.npz") == (1, 0, 1)
    assert json.loads((tmp_path / "new_json" / "run.json").read_text())["epochs"] == 1
    assert sorted(path.name for path in (tmp_path / "new_plots" / "deeper").iterdir()) == sorted(trainer.PLOT_FILES)
    assert (tmp_path / "new_graph" / "graph.dot").read_text().startswith("digraph")
    assert (tmp_path / "new_onnx" / "model.onnx").stat().st_size > 1000
    for directory in ("new_save/deeper", "new_json", "new_graph", "new_onnx"):  # no temporary left anywhere
        assert not [path for path in (tmp_path / directory).iterdir() if path.name.startswith(".")], directory


def resume_notes(trainer, flags: list[str], capsys) -> list[str]:
    assert trainer.main(flags) == 0
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: resuming")]


def test_the_resume_note_names_only_settings_the_run_does_not_use(tiny_trainer, tmp_path, capsys):
    """An Adam run started without --betas trains with 0.9 0.999; resuming it with
    --betas 0.9 0.999 said those were ignored and that the checkpoint had "none"."""
    trainer, flags = tiny_trainer
    adam, sgd = str(tmp_path / "adam.npz"), str(tmp_path / "sgd.npz")
    assert trainer.main([*flags, "--epochs", "1", "--optimizer", "adam", "--save", adam]) == 0
    assert trainer.main([*flags, "--epochs", "1", "--save", sgd]) == 0
    capsys.readouterr()
    ignoring = "note: resuming with the checkpoint's settings; ignoring "
    assert resume_notes(trainer, [*flags, "--resume", adam, "--betas", "0.9", "0.999"], capsys) == []
    assert resume_notes(trainer, [*flags, "--resume", adam, "--betas", "0.8", "0.99"], capsys) == [
        ignoring + "--betas 0.8 0.99 (the checkpoint has 0.9 0.999)"]
    assert resume_notes(trainer, [*flags, "--resume", adam, "--momentum", "0.9"], capsys) == [  # (the recipe's value)
        ignoring + "--momentum 0.9 (the checkpoint trains with Adam, which has no --momentum)"]
    assert resume_notes(trainer, [*flags, "--resume", sgd, "--betas", "0.9", "0.999"], capsys) == [
        ignoring + "--betas 0.9 0.999 (the checkpoint trains with SGD, which has no --betas)"]
    assert resume_notes(trainer, [*flags, "--resume", sgd, "--momentum", "0.9"], capsys) == []
    assert resume_notes(trainer, [*flags, "--resume", sgd, "--momentum", "0.5"], capsys) == [
        ignoring + "--momentum 0.5 (the checkpoint has 0.9)"]


def test_the_resume_note_says_how_many_training_images_the_checkpoint_trains_on(tiny_trainer, tmp_path, capsys):
    """A run saved without --limit-train trains on the whole training set; resuming it with
    --limit-train 16 said the checkpoint had "none", as if it trained on no images."""
    trainer, flags = tiny_trainer
    whole, first_16 = str(tmp_path / "whole.npz"), str(tmp_path / "first_16.npz")
    assert trainer.main([*flags, "--epochs", "1", "--save", whole]) == 0
    assert trainer.main([*flags, "--epochs", "1", "--limit-train", "16", "--save", first_16]) == 0
    capsys.readouterr()
    ignoring = "note: resuming with the checkpoint's settings; ignoring "
    assert resume_notes(trainer, [*flags, "--resume", whole, "--limit-train", "16"], capsys) == [
        ignoring + "--limit-train 16 (the checkpoint trains on the whole training set)"]
    assert resume_notes(trainer, [*flags, "--resume", first_16, "--limit-train", "8"], capsys) == [
        ignoring + "--limit-train 8 (the checkpoint trains on the first 16 training images)"]
    assert resume_notes(trainer, [*flags, "--resume", first_16, "--limit-train", "16"], capsys) == []


def test_a_limit_train_at_or_above_the_training_set_s_size_is_no_limit_on_resume(tiny_trainer, tmp_path, capsys):
    """Resuming a run saved without --limit-train with --limit-train 60000 (all of MNIST: the
    same images) said the flag was ignored. A limit that cuts nothing is the same as none; the
    size is that of the training set loaded, here the made-up MNIST's 32 images."""
    trainer, flags = tiny_trainer
    whole, first_40, first_16 = (str(tmp_path / name) for name in ("whole.npz", "first_40.npz", "first_16.npz"))
    assert trainer.main([*flags, "--epochs", "1", "--save", whole]) == 0
    assert trainer.main([*flags, "--epochs", "1", "--limit-train", "40", "--save", first_40]) == 0
    assert trainer.main([*flags, "--epochs", "1", "--limit-train", "16", "--save", first_16]) == 0
    capsys.readouterr()
    ignoring = "note: resuming with the checkpoint's settings; ignoring "
    for checkpoint in (whole, first_40):  # (40 of 32 images: all of them, as no limit)
        for limit in ("32", "40", "1000"):
            assert resume_notes(trainer, [*flags, "--resume", checkpoint, "--limit-train", limit], capsys) == []
        assert resume_notes(trainer, [*flags, "--resume", checkpoint, "--limit-train", "31"], capsys) == [
            ignoring + "--limit-train 31 (the checkpoint trains on the whole training set)"]
    assert resume_notes(trainer, [*flags, "--resume", first_16, "--limit-train", "32"], capsys) == [
        ignoring + "--limit-train 32 (the checkpoint trains on the first 16 training images)"]


def refuse_to_save_a_picture(monkeypatch, number: int) -> None:
    """Make matplotlib's savefig fail with EACCES for the ``number``-th picture (1 = the first),
    as a directory whose permissions changed after the up-front check would (root ignores
    chmod, so the failure is faked)."""
    from matplotlib.figure import Figure

    original, calls = Figure.savefig, []

    def refused(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == number:
            raise PermissionError(errno.EACCES, "Permission denied")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", refused)


def test_a_plot_that_cannot_be_written_is_one_error_line_and_every_other_output_is_kept(tiny_trainer, tmp_path,
                                                                                         monkeypatch, capsys):
    """It was a PermissionError traceback after the training, and the ONNX export after the
    plots was never written. The line names the pictures written before the failure: they stay."""
    pytest.importorskip("matplotlib")
    trainer, flags = tiny_trainer
    refuse_to_save_a_picture(monkeypatch, 3)  # curves.png, predictions.png, then mistakes.png
    plots, checkpoint, results, model = tmp_path / "plots", tmp_path / "run.npz", tmp_path / "run.json", tmp_path / "m.onnx"
    onnx = ["--export-onnx", str(model)] if importlib.util.find_spec("onnx") else []
    code = trainer.main([*flags, "--epochs", "1", "--save", str(checkpoint), "--json", str(results),
                         "--plots", str(plots), *onnx])
    output = capsys.readouterr()
    assert code == 1, output.err
    assert output.err == (f"error: --plots {plots}: could not write {plots / 'mistakes.png'}: Permission denied; "
                          f"the pictures written before it: {plots / 'curves.png'}, {plots / 'predictions.png'}\n")
    assert "Final test accuracy" in output.out
    assert position(checkpoint) == (1, 0, 1) and json.loads(results.read_text())["epochs"] == 1
    assert sorted(path.name for path in plots.iterdir()) == ["curves.png", "predictions.png"]  # (no temporary left)
    if onnx:
        assert model.stat().st_size > 1000 and "ONNX model written" in output.out


def test_dataset_fashion_trains_on_fashion_mnist_files_and_names_the_classes(tmp_path):
    """--dataset fashion loads Fashion-MNIST's files (made here: the machine has no copy) and
    titles the plots with its class names; the choice is kept by the checkpoint."""
    from test_datasets import write_mnist

    write_mnist(tmp_path / "data" / "fashion-mnist", train=96, test=40)
    result = run(str(tmp_path / "data"), "--dataset", "fashion", "--limit-train", "96", "--epochs", "1",
                 "--batch-size", "32", "--save", str(tmp_path / "run.npz"), "--json", str(tmp_path / "run.json"))
    assert "Training on 96 images, testing on 40" in result.stdout
    resumed = run(str(tmp_path / "data"), "--resume", str(tmp_path / "run.npz"), "--limit-test", "40")
    assert "is finished" in resumed.stdout  # evaluated on the checkpoint's data set, Fashion-MNIST


def test_eval_only_and_visualize_use_the_data_set_the_checkpoint_was_trained_on(tmp_path):
    """Both MNIST (30 test images) and Fashion-MNIST (40) lie in the data directory: a checkpoint
    trained on Fashion-MNIST is tested on its 40, whatever --dataset says."""
    from test_datasets import write_mnist

    write_mnist(tmp_path / "data" / "mnist", train=32, test=30)
    write_mnist(tmp_path / "data" / "fashion-mnist", train=32, test=40, seed=5)
    data, checkpoint = str(tmp_path / "data"), str(tmp_path / "run.npz")
    run(data, "--dataset", "fashion", "--epochs", "1", "--batch-size", "32", "--save", checkpoint)
    evaluated = run(data, "--eval-only", "--resume", checkpoint)
    assert "on 40 images" in evaluated.stdout and "note" not in evaluated.stdout
    contradicted = run(data, "--eval-only", "--resume", checkpoint, "--dataset", "mnist")
    assert "ignoring --dataset mnist (the checkpoint has fashion)" in contradicted.stdout
    assert "on 40 images" in contradicted.stdout
    resumed = run(data, "--resume", checkpoint, "--dataset", "mnist")
    assert "ignoring --dataset mnist (the checkpoint has fashion)" in resumed.stdout

    pytest.importorskip("matplotlib")
    drawn = subprocess.run([sys.executable, str(REPOSITORY / "examples" / "visualize.py"), "--resume", checkpoint,
                            "--data-dir", data, "--plots", str(tmp_path / "plots")], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "PYTHONPATH": str(REPOSITORY), "MPLBACKEND": "Agg"})
    assert drawn.returncode == 0, drawn.stderr
    assert "trained on Fashion-MNIST" in drawn.stdout and "test accuracy on 40 images" in drawn.stdout


def test_eval_only_plots_name_the_checkpoints_classes(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from test_datasets import write_mnist

    from tinygrad_cnn.datasets import FASHION_MNIST_CLASSES

    write_mnist(tmp_path / "data" / "fashion-mnist", train=32, test=8)
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import mnist
    import plotting

    data, checkpoint = str(tmp_path / "data"), str(tmp_path / "run.npz")
    assert mnist.main(["--data-dir", data, "--no-progress", "--dataset", "fashion", "--epochs", "1",
                       "--batch-size", "32", "--save", checkpoint]) == 0
    drawn = []
    monkeypatch.setattr(plotting, "save_training_plots", lambda *arguments: drawn.append(arguments) or [])
    assert mnist.main(["--data-dir", data, "--no-progress", "--eval-only", "--resume", checkpoint,
                       "--plots", str(tmp_path / "plots")]) == 0
    assert drawn[0][-1] == FASHION_MNIST_CLASSES and len(drawn[0][2]) == 8


def test_logits_that_become_nan_stop_the_run_instead_of_reporting_an_accuracy(tmp_path):
    """One step at lr 1e30: the step's loss is finite, the weights after it are not, so every
    test row is NaN (whose argmax, class 0, would otherwise count as a prediction)."""
    from test_datasets import write_mnist

    write_mnist(tmp_path / "data", train=64, test=20)
    result = run(str(tmp_path / "data"), "--epochs", "1", "--lr", "1e30", "--warmup-epochs", "0",
                 "--save", str(tmp_path / "run.npz"), "--json", str(tmp_path / "run.json"), expect=1)
    assert result.stderr.splitlines()[-1] == ("error: the model diverged: its logits are NaN or inf on 20 of 20 test "
                                              "images after step 1 (epoch 1, lr 1e+30); try a lower --lr")
    assert "Final test accuracy" not in result.stdout and "Traceback" not in result.stderr
    assert not (tmp_path / "run.json").exists()

    broken = tmp_path / "nan.npz"
    weights = state_dict(SeedCNN(seed=0))
    weights["fc2.bias"] = np.full_like(weights["fc2.bias"], np.nan)
    np.savez(broken, **weights)
    result = run(str(tmp_path / "data"), "--eval-only", "--resume", str(broken), expect=1)
    assert result.stderr.splitlines()[-1].startswith(f"error: {broken}: the model diverged: its logits are NaN or inf "
                                                     "on 20 of 20 test images")
    assert "Test accuracy" not in result.stdout


def test_an_empty_split_is_reported_with_its_directory(tmp_path):
    from test_datasets import write_mnist

    write_mnist(tmp_path / "no_training" / "mnist", train=0, test=5)
    write_mnist(tmp_path / "no_test", train=8, test=0)
    result = run(str(tmp_path / "no_training"), "--epochs", "1", expect=1)
    assert result.stderr == (f"error: the MNIST training split in {tmp_path / 'no_training' / 'mnist'} is empty "
                             "(train-images-idx3-ubyte holds 0 images): nothing to train on\n")
    result = run(str(tmp_path / "no_test"), "--epochs", "1", expect=1)
    assert result.stderr == (f"error: the MNIST test split in {tmp_path / 'no_test'} is empty "
                             "(t10k-images-idx3-ubyte holds 0 images): nothing to test on\n")
    np.savez(tmp_path / "weights.npz", **state_dict(SeedCNN(seed=0)))
    evaluated = run(str(tmp_path / "no_training"), "--eval-only", "--resume", str(tmp_path / "weights.npz"))
    assert "on 5 images" in evaluated.stdout  # evaluating needs no training images


CONFIG = {"model": "cnn", "optimizer": "sgd", "epochs": 1, "batch_size": 8, "lr": 0.1, "momentum": 0.0,
          "warmup_epochs": 0.0, "seed": 0}
POSITION = {"epoch": 1, "step_in_epoch": 0, "global_step": 1, "history": [], "train_seconds": 0.0, "running": {},
            "epoch_rng_state": {}}
MALFORMED_META = {
    "a list": ([1, 2], "is a JSON list, not an object"),
    "no config": ({"format": 1}, 'has no "config" object'),
    "config not an object": ({"format": 1, "config": "cnn", **POSITION}, 'has a "config" that is not an object'),
    "no position": ({"format": 1, "config": CONFIG}, 'lacks "epoch", "step_in_epoch"'),
    "unknown model": ({"format": 1, "config": {**CONFIG, "model": "resnet"}, **POSITION}, "names the model 'resnet'"),
    "unknown data set": ({"format": 1, "config": {**CONFIG, "dataset": "cifar"}, **POSITION}, "names the data set 'cifar'"),
    "unknown optimizer": ({"format": 1, "config": {**CONFIG, "optimizer": "rmsprop"}, **POSITION},
                          "names the optimizer 'rmsprop'"),
}


@pytest.mark.parametrize("problem", sorted(MALFORMED_META))
@pytest.mark.parametrize("eval_only", [True, False])
def test_a_checkpoint_with_malformed_meta_is_refused_naming_the_file(tmp_path, problem, eval_only):
    meta, fragment = MALFORMED_META[problem]
    checkpoint = tmp_path / "odd.npz"
    arrays = {f"model/{key}": value for key, value in state_dict(SeedCNN(seed=0)).items()}
    np.savez(checkpoint, meta=np.array(json.dumps(meta)), **arrays)
    result = run_without_data(tmp_path, "--resume", str(checkpoint), *(["--eval-only"] if eval_only else []))
    assert_one_error_line(result, f"{checkpoint}: its 'meta' entry {fragment}", "not a checkpoint examples/mnist.py wrote")


def test_plots_name_the_classes_of_the_data_set(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import plotting
    from matplotlib.axes import Axes

    from tinygrad_cnn.datasets import FASHION_MNIST_CLASSES

    titles = []
    original = Axes.set_title

    def recording_set_title(self, text, *args, **kwargs):
        titles.append(text)
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_title", recording_set_title)
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    plotting.plot_digit_grid(images, np.array([0, 9, 1, 9]), np.array([0, 9, 2, 8]), tmp_path / "grid.png",
                             class_names=FASHION_MNIST_CLASSES)
    assert titles[:4] == ["True: T-shirt/top  Pred: T-shirt/top", "True: Ankle boot  Pred: Ankle boot",
                          "True: Trouser  Pred: Pullover", "True: Ankle boot  Pred: Bag"]


def test_a_run_of_one_step_trains_it_at_the_peak_lr(data_dir, tmp_path):
    # one step, and --warmup-epochs 1 would make it all warm-up, whose only step trains at lr 0
    # (WarmupCosine refuses that schedule): the run drops the warm-up instead
    run(data_dir, "--limit-train", "16", "--limit-test", "50", "--batch-size", "16", "--epochs", "1",
        "--warmup-epochs", "1", "--save", str(tmp_path / "model.npz"))
    trained, initial = weights(tmp_path / "model.npz"), state_dict(SeedCNN(seed=0))
    assert not np.array_equal(trained["model/conv1.weight"], initial["conv1.weight"])


@pytest.mark.parametrize("name", ["curves.png", "feature_maps.png"])
def test_a_directory_where_a_plot_goes_is_refused_before_training(tmp_path, name):
    """It was an IsADirectoryError traceback after the training, the run's result lost."""
    pytest.importorskip("matplotlib")
    (tmp_path / "plots" / name).mkdir(parents=True)
    result = run_without_data(tmp_path, "--plots", str(tmp_path / "plots"))
    assert_one_error_line(result, f"--plots {tmp_path / 'plots'}: {tmp_path / 'plots' / name} is a directory, "
                                  f"where the picture {name} is to be written")


def test_an_mlp_run_is_not_refused_the_convolution_pictures_it_never_writes(tiny_trainer, tmp_path, capsys):
    """--model mlp draws no conv1 filters and no feature maps, yet a directory named
    conv1_filters.png in its --plots directory stopped it, and so did --json naming
    feature_maps.png there. A resumed run's model is known only once the checkpoint is read,
    after these checks, so it may be a CNN: there the directory is still refused."""
    pytest.importorskip("matplotlib")
    trainer, flags = tiny_trainer
    plots, checkpoint = tmp_path / "plots", tmp_path / "mlp.npz"
    (plots / "conv1_filters.png").mkdir(parents=True)
    results = plots / "feature_maps.png"
    code = trainer.main([*flags, "--model", "mlp", "--epochs", "1", "--save", str(checkpoint), "--plots", str(plots),
                         "--json", str(results)])
    assert code == 0, capsys.readouterr().err
    assert sorted(path.name for path in plots.iterdir()) == [
        "conv1_filters.png", "curves.png", "feature_maps.png", "mistakes.png", "predictions.png"]
    assert (plots / "conv1_filters.png").is_dir() and list((plots / "conv1_filters.png").iterdir()) == []
    assert json.loads(results.read_text())["model"] == "mlp"

    capsys.readouterr()
    code = trainer.main([*flags, "--resume", str(checkpoint), "--epochs", "2", "--plots", str(plots)])
    output = capsys.readouterr()
    assert code == 1 and output.out == "" and position(checkpoint) == (1, 0, 1)
    assert output.err == (f"error: --plots {plots}: {plots / 'conv1_filters.png'} is a directory, where the picture "
                          "conv1_filters.png is to be written; move it or give another --plots\n")


@pytest.mark.parametrize("name, network", [("mlp", SeedCNN), ("cnn", SeedMLP)])
def test_the_pictures_checked_before_training_are_the_ones_drawn_after_it(tiny_trainer, tmp_path, monkeypatch,
                                                                         name, network):
    """The up-front check of --plots decided by the --model name (all but "mlp" draw the
    convolution pictures), save_training_plots by the model (one with a conv1 draws them): a
    network under a name the check did not expect had the wrong pictures checked, and a
    directory where a picture goes then stopped the run after training, or one that was never
    written stopped it before. Here each name builds the other's network: both follow it."""
    pytest.importorskip("matplotlib")
    trainer, _ = tiny_trainer
    import common
    import plotting

    monkeypatch.setitem(common.MODELS, name, network)
    checked = trainer.plot_files(trainer.parse_args(["--model", name, "--plots", str(tmp_path / "plots")]))
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    history = [{"epoch": 1, "avg_loss": 1.0, "train_accuracy": 50.0, "test_accuracy": 50.0}]
    written = plotting.save_training_plots(common.build_model(name, seed=0), history, images, np.arange(4),
                                           tmp_path / "plots")
    assert sorted(path.name for path in written) == sorted(checked)
    assert ("conv1_filters.png" in checked) == (network is SeedCNN)


def test_a_warm_up_longer_than_any_run_is_the_whole_run_not_a_traceback(trainer, data_dir, tmp_path, capsys):
    """--warmup-epochs 1e308 passed the parser (finite, >= 0), but times the steps per epoch it
    is inf, and round() raised OverflowError after the data was loaded; it is all warm-up, as
    --warmup-epochs 2 would be for this one-epoch run."""
    result = tmp_path / "result.json"
    flags = ["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "1", "--json", str(result)]
    assert trainer.main([*flags, "--warmup-epochs", "1e308"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    huge = json.loads(result.read_text())["history"][0]["lr"]
    assert trainer.main([*flags, "--warmup-epochs", "2"]) == 0
    assert huge == json.loads(result.read_text())["history"][0]["lr"] == pytest.approx(0.05 * 5 / 6)


def test_a_json_write_that_fails_keeps_the_previous_results_whole(data_dir, tmp_path):
    """The results are written atomically, as the checkpoints are: a write cut short (here by
    a file size limit, as a full disk would) leaves the file's previous results, not the first
    bytes of the new ones."""
    import resource

    from tinygrad_cnn.nn import save

    model, results = tmp_path / "model.npz", tmp_path / "results.json"
    save(SeedCNN(seed=0), model)
    previous = '{"test_accuracy": 99.0}\n'
    results.write_text(previous)

    def limit_file_size() -> None:  # (in the child: writes past 100 bytes fail with EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    result = subprocess.run(command(data_dir, "--eval-only", "--resume", str(model), "--limit-test", "20",
                                    "--json", str(results)), capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPOSITORY), "PYTHONDONTWRITEBYTECODE": "1"},
                            preexec_fn=limit_file_size)
    assert result.returncode == 1 and "Test accuracy of" in result.stdout, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: --json {results}: could not write the results: File too large")
    assert results.read_text() == previous
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.npz", "results.json"]


class StdoutClosedAt:
    """A standard output whose reader leaves when a line starting with ``prefix`` comes:
    writing it, and what follows, raises BrokenPipeError, as a closed pipe does."""

    def __init__(self, prefix: str):
        self.prefix, self.closed = prefix, False

    def write(self, text: str) -> int:
        self.closed = self.closed or text.startswith(self.prefix)
        if self.closed:
            raise BrokenPipeError(32, "Broken pipe")
        return len(text)

    def flush(self) -> None:
        pass

def test_a_closed_standard_output_stops_the_run_with_one_line_and_every_finished_epoch_saved(
        trainer, monkeypatch, data_dir, tmp_path, capsys):
    """``python examples/mnist.py --save run.npz | head -2``: the reader leaves, and writing the
    next epoch's line raises BrokenPipeError. That used to end the run with a traceback before
    the epoch's checkpoint was written (its training lost); now the checkpoint comes first, and
    the run stops with one line on stderr and exit status 1, as a Unix filter stops."""
    checkpoint = tmp_path / "run.npz"
    monkeypatch.setattr(sys, "stdout", StdoutClosedAt("Epoch 2/"))
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "3", "--save", str(checkpoint)]) == 1
    assert position(checkpoint) == (2, 0, 12)  # epoch 2 finished and saved, though its line could not be written
    error_lines = capsys.readouterr().err.splitlines()
    assert error_lines == ["error: the standard output was closed (broken pipe), so the run stopped; with --save, "
                           "the checkpoint holds every finished epoch (continue with --resume)"]
    monkeypatch.undo()
    assert trainer.main(["--data-dir", data_dir, "--no-progress", "--resume", str(checkpoint)]) == 0
    assert "Resuming" in capsys.readouterr().out and position(checkpoint) == (3, 0, 18)


def test_a_standard_output_closed_after_training_still_gets_the_results_written(trainer, monkeypatch, data_dir,
                                                                                 tmp_path, capsys):
    """Closed at the final line (``| head -3``): the --json results (and the other outputs, which
    come after that line) used to be lost with the BrokenPipeError; now they are written."""
    results = tmp_path / "results.json"
    monkeypatch.setattr(sys, "stdout", StdoutClosedAt("Final test accuracy"))
    assert trainer.main(["--data-dir", data_dir, "--no-progress", *TINY, "--epochs", "1", "--json", str(results)]) == 1
    assert json.loads(results.read_text())["epochs"] == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: the standard output was closed (broken pipe), the run finished and its outputs were written, "
        "but not all of its lines"]
