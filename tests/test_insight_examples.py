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
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import Linear, get_parameters, save, state_dict
from tinygrad_cnn.optim import SGD

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
    result = run_example("visualize.py", "--limit-train", "96", "--limit-test", "8", "--index", "3",
                         "--plots", str(out), "--no-progress", env={"TINYGRAD_CNN_DATA": str(data)})
    assert result.returncode == 0, result.stderr
    assert "training the seed CNN for one epoch on 96 images" in result.stdout
    assert "Epoch 1/1" in result.stdout  # mnist.py's training loop did the work
    for name in ("feature_maps.png", "conv1_filters.png"):
        picture = out / name
        assert picture.is_file() and picture.stat().st_size > 1000, name
        assert picture.read_bytes().startswith(b"\x89PNG")


@pytest.fixture
def common_module(monkeypatch):
    """examples/common.py imported as a module."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import common

    return common


@pytest.mark.parametrize("layout", ["trainer checkpoint", "plain state dict"])
def test_a_model_is_built_from_both_checkpoint_layouts(tmp_path, common_module, layout):
    model = SeedCNN(seed=5)
    weights = state_dict(model)
    if layout == "trainer checkpoint":  # examples/mnist.py --save: model/<key>, optimizer state, meta
        optimizer = SGD(get_parameters(model), lr=0.1)
        config = {"model": "cnn", "optimizer": "sgd", "epochs": 1, "batch_size": 64, "lr": 0.1, "momentum": 0.0,
                  "warmup_epochs": 0.0, "seed": 5}
        position = {"epoch": 1, "step_in_epoch": 0, "global_step": 1, "history": [], "train_seconds": 0.0,
                    "running": {}, "epoch_rng_state": {}}
        common_module.save_checkpoint(tmp_path / "checkpoint.npz", model, optimizer, {"config": config, **position})
    else:  # tinygrad_cnn.nn.save(model, path)
        save(weights, tmp_path / "checkpoint.npz")
    loaded, meta = common_module.model_from_checkpoint(tmp_path / "checkpoint.npz")
    assert isinstance(loaded, SeedCNN) and (meta is None) == (layout == "plain state dict")
    for key, value in state_dict(loaded).items():
        np.testing.assert_array_equal(value, weights[key])


def test_a_state_dict_of_the_mlp_builds_the_mlp(tmp_path, common_module):
    save(SeedMLP(seed=2), tmp_path / "mlp.npz")
    model, _ = common_module.model_from_checkpoint(tmp_path / "mlp.npz")
    assert isinstance(model, SeedMLP)
    np.testing.assert_array_equal(model.fc3.weight.data, SeedMLP(seed=2).fc3.weight.data)


def test_softmax_and_batched_prediction(common_module):
    logits = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]])
    np.testing.assert_allclose(common_module.softmax(logits), [[0.25, 0.75], [0.5, 0.5]], rtol=1e-6)
    model = SeedCNN(seed=1)
    images = np.random.default_rng(0).integers(0, 256, (7, 1, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(common_module.predict(model, images, batch_size=3),
                               common_module.predict(model, images, batch_size=100), rtol=1e-5, atol=1e-6)


def test_visualize_uses_a_checkpoint_instead_of_training(tmp_path):
    pytest.importorskip("matplotlib")
    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=2)
    save(SeedCNN(seed=5), tmp_path / "weights.npz")
    result = run_example("visualize.py", "--resume", str(tmp_path / "weights.npz"), "--limit-test", "2",
                         "--plots", str(tmp_path / "plots"), "--data-dir", str(data), "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout and "training the seed CNN" not in result.stdout
    assert "note: nothing is trained with --resume; ignoring --seed" in result.stdout
    assert (tmp_path / "plots" / "feature_maps.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "conv1_filters.png").stat().st_size > 1000


@pytest.mark.parametrize("flags", [["--seed", "-1"], ["--seed", "-1", "--resume", "weights.npz"]])
def test_visualize_refuses_a_negative_seed_at_its_parser(flags, capsys, monkeypatch):
    """As examples/mnist.py does; it was a traceback from the trainer's seeding."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import visualize

    with pytest.raises(SystemExit) as stop:
        visualize.parse_args(flags)
    assert stop.value.code == 2
    assert "error: --seed must be >= 0, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("problem", ["missing checkpoint", "text checkpoint", "mlp checkpoint", "index",
                                     "plots is a file"])
def test_visualize_reports_problems_as_one_error_line(tmp_path, problem):
    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=2)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    save(SeedMLP(seed=0), tmp_path / "mlp.npz")
    flags = {"missing checkpoint": ["--resume", str(tmp_path / "nothing.npz")],
             "text checkpoint": ["--resume", str(tmp_path / "notes.txt")],
             "mlp checkpoint": ["--resume", str(tmp_path / "mlp.npz")],
             "index": ["--index", "5", "--limit-train", "4"],
             "plots is a file": ["--plots", str(tmp_path / "notes.txt")]}[problem]
    result = run_example("visualize.py", "--data-dir", str(data), *flags)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "training" not in result.stdout


def test_prediction_on_no_images_is_an_empty_array_of_logits(common_module):
    """np.concatenate of no batches raised 'need at least one array to concatenate'."""
    images = np.zeros((0, 1, 28, 28), dtype=np.uint8)
    for model in (SeedCNN(seed=0), SeedMLP(seed=0)):
        logits = common_module.predict(model, images)
        assert logits.shape == (0, 10) and logits.dtype == np.float32


@pytest.mark.parametrize("key", ["model", "dataset", "optimizer"])
def test_a_meta_entry_that_is_not_text_is_refused_naming_the_file(tmp_path, common_module, key):
    """"model": ["cnn"] raised "TypeError: unhashable type: 'list'" from the lookup in MODELS."""
    config = {"model": "cnn", "optimizer": "sgd", "epochs": 1, "batch_size": 64, "lr": 0.1, "momentum": 0.0,
              "warmup_epochs": 0.0, "seed": 5, "dataset": "mnist"}
    position = {"epoch": 1, "step_in_epoch": 0, "global_step": 1, "history": [], "train_seconds": 0.0,
                "running": {}, "epoch_rng_state": {}}
    meta = {"format": 1, "config": {**config, key: [config[key]]}, **position}
    path = tmp_path / "odd.npz"
    with pytest.raises(common_module.CommandLineError) as refused:
        common_module.check_meta(meta, path)
    assert str(refused.value) == (f"{path}: its 'meta' entry has a \"{key}\" that is a list, not a string; "
                                  "it is not a checkpoint examples/mnist.py wrote")


@pytest.fixture
def visualize_module(monkeypatch):
    """examples/visualize.py imported as a module (main runs in-process: fast, and HOME can be patched)."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import visualize

    return visualize


def test_visualize_expands_a_tilde_the_shell_left_in_its_paths(tmp_path, visualize_module, monkeypatch, capsys):
    """--plots=~/x checked and created $HOME/x but wrote the PNGs to ./~/x; --resume=~/run.npz
    said there was no checkpoint file at ~/run.npz."""
    pytest.importorskip("matplotlib")
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    write_tiny_mnist(home / "digits", train=4, test=2)
    save(SeedCNN(seed=5), home / "weights.npz")
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    flags = ["--resume", "~/weights.npz", "--plots", "~/pictures", "--data-dir", "~/digits", "--limit-test", "2"]
    args = visualize_module.parse_args(flags)
    assert (args.resume, args.plots, args.data_dir) == (str(home / "weights.npz"), str(home / "pictures"),
                                                        str(home / "digits"))
    assert visualize_module.main(flags) == 0, capsys.readouterr().err
    for name in ("feature_maps.png", "conv1_filters.png"):
        assert (home / "pictures" / name).stat().st_size > 1000, name
    assert list(elsewhere.iterdir()) == []
    assert f"wrote {home / 'pictures' / 'feature_maps.png'}" in capsys.readouterr().out


class LinearOnly:
    """A model without convolutions that is not the seed MLP."""

    def __init__(self):
        self.fc = Linear(784, 10)


@pytest.mark.parametrize("model_class", [SeedMLP, LinearOnly])
def test_visualize_refuses_a_model_without_convolutions_naming_its_class(tmp_path, visualize_module, monkeypatch,
                                                                          capsys, model_class):
    """Any model without convolutions was called "the seed MLP"; the message names the class
    it loaded (the decision stays plotting.draws_convolutions)."""
    checkpoint = tmp_path / "model.npz"
    save(model_class(), checkpoint)
    if model_class is LinearOnly:  # (common.model_from_checkpoint builds only the seed CNN and MLP)
        monkeypatch.setattr(visualize_module, "model_from_checkpoint", lambda path: (LinearOnly(), None))
    flags = ["--resume", str(checkpoint), "--plots", str(tmp_path / "plots"), "--data-dir", str(tmp_path / "none")]
    assert visualize_module.main(flags) == 1
    assert capsys.readouterr().err == (f"error: --resume {checkpoint}: its model, {model_class.__name__}, has no "
                                       "convolutions to draw (the pictures need a model that has them, such as "
                                       "the seed CNN)\n")


@pytest.mark.parametrize("name", ["feature_maps.png", "conv1_filters.png"])
def test_visualize_refuses_a_directory_where_a_picture_goes_before_any_work(tmp_path, visualize_module, capsys, name):
    """It was an IsADirectoryError traceback after the training."""
    pytest.importorskip("matplotlib")
    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=2)
    (tmp_path / "plots" / name).mkdir(parents=True)
    code = visualize_module.main(["--plots", str(tmp_path / "plots"), "--data-dir", str(data), "--no-progress"])
    output = capsys.readouterr()
    assert code == 1 and "training" not in output.out
    assert output.err == (f"error: --plots {tmp_path / 'plots'}: {tmp_path / 'plots' / name} is a directory, "
                          f"where the picture {name} is to be written; move it or give another --plots\n")


def test_visualize_reports_a_picture_it_cannot_write_as_one_error_line(tmp_path, visualize_module, monkeypatch,
                                                                       capsys):
    """A picture made unwritable after the up-front check was a traceback."""
    pytest.importorskip("matplotlib")
    from test_mnist_example import refuse_to_save_a_picture

    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=2)
    save(SeedCNN(seed=0), tmp_path / "weights.npz")
    refuse_to_save_a_picture(monkeypatch, 2)  # feature_maps.png, then conv1_filters.png
    plots = tmp_path / "plots"
    code = visualize_module.main(["--resume", str(tmp_path / "weights.npz"), "--plots", str(plots),
                                  "--data-dir", str(data), "--limit-test", "2"])
    output = capsys.readouterr()
    assert code == 1
    assert output.err == (f"error: --plots {plots}: could not write {plots / 'conv1_filters.png'}: Permission denied; "
                          f"the pictures written before it: {plots / 'feature_maps.png'}\n")
    assert [path.name for path in plots.iterdir()] == ["feature_maps.png"]


def test_visualize_says_no_picture_was_written_when_the_first_one_fails(tmp_path, visualize_module, monkeypatch,
                                                                         capsys):
    """A directory that appears where the first picture goes after the up-front check: the
    error line says that the run wrote no picture (the directory in the way stays as it is)."""
    pytest.importorskip("matplotlib")
    data = write_tiny_mnist(tmp_path / "mnist", train=4, test=2)
    save(SeedCNN(seed=0), tmp_path / "weights.npz")
    plots = tmp_path / "plots"
    original_plot_feature_maps = visualize_module.plot_feature_maps

    def directory_appears_first(model, image, path, **options):
        Path(path).mkdir(parents=True)
        return original_plot_feature_maps(model, image, path, **options)

    monkeypatch.setattr(visualize_module, "plot_feature_maps", directory_appears_first)
    code = visualize_module.main(["--resume", str(tmp_path / "weights.npz"), "--plots", str(plots),
                                  "--data-dir", str(data), "--limit-test", "2"])
    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith(f"error: --plots {plots}: could not write {plots / 'feature_maps.png'}: ")
    assert error.endswith("; no picture was written\n") and len(error.splitlines()) == 1
    assert [(path.name, path.is_dir()) for path in plots.iterdir()] == [("feature_maps.png", True)]


@pytest.fixture
def plotting_module(monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import plotting

    return plotting


def test_the_plots_directory_check_returns_the_directory_with_home_expanded(tmp_path, plotting_module, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert plotting_module.prepare_plots_directory("~/plots", ["a.png"]) == tmp_path / "plots"
    assert list(tmp_path.iterdir()) == []  # a check creates nothing: the first picture makes the directory


def test_visualize_refused_after_its_checks_leaves_no_new_plots_directory(tmp_path, monkeypatch, capsys):
    """prepare_plots_directory created --plots up front; a run that then failed (here: no data)
    left it behind, empty (with the default --plots, a plots/ in the current directory)."""
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import visualize

    code = visualize.main(["--plots", str(tmp_path / "new" / "plots"), "--data-dir", str(tmp_path / "no-data-here"),
                           "--no-progress"])
    assert code == 1 and capsys.readouterr().err.startswith("error: could not load MNIST")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("check", ["prepare_output_file", "prepare_output_directory"])
def test_the_output_checks_create_nothing_and_keep_their_messages(tmp_path, common_module, check):
    """A missing directory is fine when the nearest existing one is writable; a file (or a
    broken link) where a directory must go is refused with the message the mkdir gave."""
    prepare = getattr(common_module, check)
    assert prepare(tmp_path / "a" / "b" / "out.json", "--json") == tmp_path / "a" / "b" / "out.json"
    (tmp_path / "a_file").write_text("in the way")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    before = sorted(tmp_path.iterdir())
    for blocked, what in ((tmp_path / "a_file" / "sub", "a file"), (tmp_path / "broken" / "sub", "a broken symbolic link")):
        with pytest.raises(common_module.CommandLineError) as refused:
            prepare(blocked / "out.json", "--json")
        directory = blocked if check == "prepare_output_file" else blocked / "out.json"
        assert str(refused.value) == (f"--json {blocked / 'out.json'}: cannot create the directory {directory}: "
                                      f"{what} stands at {blocked.parent}")
    assert sorted(tmp_path.iterdir()) == before


def test_the_checkpoint_s_free_space_is_measured_on_the_nearest_existing_directory(tmp_path, common_module):
    common_module.check_free_space(tmp_path / "missing" / "run.npz", 1, "--save")  # (the missing one: an OSError)
    with pytest.raises(common_module.CommandLineError, match="on the disk holding " + str(tmp_path)):
        common_module.check_free_space(tmp_path / "missing" / "run.npz", 2**62, "--save")


def test_the_plots_directory_check_refuses_a_read_only_picture(tmp_path, plotting_module, common_module, monkeypatch):
    (tmp_path / "curves.png").write_bytes(b"last week's picture")
    (tmp_path / "curves.png").chmod(0o444)
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root may write a read-only file: ask as a user would
        monkeypatch.setattr(plotting_module.os, "access", lambda path, mode: not str(path).endswith("curves.png"))
    with pytest.raises(common_module.CommandLineError) as refused:
        plotting_module.prepare_plots_directory(tmp_path, ["curves.png"])
    assert str(refused.value) == (f"--plots {tmp_path}: {tmp_path / 'curves.png'} is read-only, "
                                  "where the picture curves.png is to be written")


@pytest.mark.parametrize("flag", ["--resume", "--plots", "--data-dir"])
def test_visualize_refuses_an_empty_path_at_its_parser(visualize_module, flag, capsys):
    """--resume "" trained a fresh model and drew it instead of the checkpoint; --plots "" wrote into ./"""
    with pytest.raises(SystemExit) as stop:
        visualize_module.parse_args([flag, ""])
    assert stop.value.code == 2
    assert f"error: {flag} was given an empty path" in capsys.readouterr().err


def test_visualize_interrupted_while_training_names_no_flag_it_lacks(tmp_path, visualize_module, monkeypatch, capsys):
    """Ctrl-C in its brief training said "nothing saved (no --save given)": visualize.py has no --save."""
    import signal

    pytest.importorskip("matplotlib")
    data = write_tiny_mnist(tmp_path / "mnist", train=96, test=2)
    original = visualize_module.trainer.train_step

    def step_then_ctrl_c(run, *arguments):
        original(run, *arguments)
        if run.position["global_step"] == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(visualize_module.trainer, "train_step", step_then_ctrl_c)
    code = visualize_module.main(["--data-dir", str(data), "--plots", str(tmp_path / "plots"), "--no-progress"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 130 and last.startswith("Interrupted by Ctrl-C at epoch 1, step 1/2: no pictures drawn"), last
    assert "no --save given" not in last and not (tmp_path / "plots" / "feature_maps.png").exists()
