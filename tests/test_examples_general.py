"""The examples that show the general API (nn layers, Adam) on the real MNIST files: each runs
on a small slice in a few seconds and must learn. Without the data these tests fail in CI
(never pass vacuously) and skip on a laptop, as tests/test_mnist_example.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_mnist_example import (
    StdoutClosedAt,
    data_dir,  # noqa: F401  (the fixture: the MNIST directory, or skip / fail in CI)
)

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


LIMIT_TRAIN_HELP = ("--limit-train N train on the first N training images only "
                    "(N at or above their number: all of them)")


@pytest.mark.parametrize("script", ["lenet", "mnist"])
def test_lenet_and_mnist_describe_limit_train_alike(script, monkeypatch, capsys):
    """lenet.py's help said only "train on the first N training images only", leaving out what
    a limit at or above the training set's size does; both scripts train on all of it then."""
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    module = __import__(script)
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    assert LIMIT_TRAIN_HELP in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("limit", ["16", "17", "1000"])
def test_lenet_trains_on_the_whole_set_for_a_limit_at_or_above_its_size(limit, monkeypatch, tmp_path, capsys):
    """What the --limit-train help promises for a limit that cuts nothing."""
    from test_datasets import write_mnist

    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import lenet

    write_mnist(tmp_path, train=16, test=4)
    assert lenet.main(["--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "8", "--limit-train", limit]) == 0
    assert capsys.readouterr().out.startswith("Training LeNet-5 on 16 images, testing on 4\n")


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


@pytest.fixture
def lenet_module(monkeypatch):
    """examples/lenet.py imported as a module (its main runs in-process: fast, and HOME can be patched)."""
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    import lenet

    return lenet


def test_lenet_expands_a_tilde_the_shell_left_in_its_paths(lenet_module, tmp_path, monkeypatch, capsys):
    """--json=~/out/r.json: the up-front check expanded ~ (and made $HOME/out), the final write did
    not, so the run failed after training and its result was lost."""
    from test_datasets import write_mnist

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    write_mnist(tmp_path / "digits", train=8, test=4)
    args = lenet_module.parse_args(["--json", "~/out/r.json", "--data-dir", "~/digits"])
    assert (args.json, args.data_dir) == (str(tmp_path / "out" / "r.json"), str(tmp_path / "digits"))
    code = lenet_module.main(["--json", "~/out/r.json", "--data-dir", "~/digits", "--epochs", "1", "--batch-size", "4"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "r.json").read_text())["test_accuracy"] >= 0
    assert not (tmp_path / "~").exists()



@pytest.mark.parametrize("closed_at, status", [("Epoch 1/", "so the run stopped in epoch 1/2"), ("Final test", None)])
def test_lenet_on_a_closed_standard_output_stops_with_one_line_and_keeps_its_json(lenet_module, tmp_path, monkeypatch,
                                                                                   capsys, closed_at, status):
    """``lenet.py --json r.json | head -1``: a traceback, and closed at the final line the --json
    result was lost (it was written after that line); now one line on stderr, exit 1, and the
    result is written whenever the training finished."""
    from test_datasets import write_mnist

    write_mnist(tmp_path / "digits", train=8, test=4)
    monkeypatch.setattr(sys, "stdout", StdoutClosedAt(closed_at))
    code = lenet_module.main(["--json", str(tmp_path / "r.json"), "--data-dir", str(tmp_path / "digits"),
                              "--epochs", "2", "--batch-size", "4"])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: the standard output was closed (broken pipe), ") and error.count("\n") == 1
    if status is None:
        assert json.loads((tmp_path / "r.json").read_text())["test_accuracy"] >= 0
    else:
        assert status in error and not (tmp_path / "r.json").exists()

@pytest.mark.parametrize("flags, message", [
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--lr", "inf"], "--lr must be a finite number >= 0, got inf"),
    (["--lr", "nan"], "--lr must be a finite number >= 0, got nan"),
])
def test_lenet_refuses_a_negative_seed_and_a_non_finite_lr_at_its_parser(lenet_module, flags, message, capsys):
    """Both were tracebacks (from manual_seed and from Adam) instead of a usage error."""
    with pytest.raises(SystemExit) as stop:
        lenet_module.parse_args(flags)
    assert stop.value.code == 2
    assert f"error: {message}" in capsys.readouterr().err


def test_lenet_on_ctrl_c_says_how_far_it_got_and_exits_130(lenet_module, tmp_path, monkeypatch, capsys):
    """Ctrl-C was a KeyboardInterrupt traceback; now one line, as examples/visualize.py prints."""
    from test_datasets import write_mnist

    write_mnist(tmp_path, train=40, test=4)

    class InterruptedAdam(lenet_module.Adam):
        steps = 0

        def step(self) -> None:
            InterruptedAdam.steps += 1
            if InterruptedAdam.steps == 3:
                raise KeyboardInterrupt
            super().step()

    monkeypatch.setattr(lenet_module, "Adam", InterruptedAdam)
    code = lenet_module.main(["--data-dir", str(tmp_path), "--epochs", "2", "--batch-size", "8"])
    output = capsys.readouterr()
    assert code == 130 and "Traceback" not in output.err, output.err
    assert output.out.strip().splitlines()[-1] == (
        "Interrupted by Ctrl-C in epoch 1/2, after 2 of 5 steps; nothing was saved.")


def test_lenet_refused_or_interrupted_leaves_no_new_directory_and_a_run_makes_it(lenet_module, tmp_path,
                                                                                  monkeypatch, capsys):
    """The --json check created the missing directory up front, and it stayed behind, empty,
    when the run then failed or was interrupted; now the write makes it."""
    from test_datasets import write_mnist

    write_mnist(tmp_path / "data", train=16, test=4)
    before = sorted(tmp_path.iterdir())
    results = tmp_path / "new" / "deeper" / "result.json"
    assert lenet_module.main(["--data-dir", str(tmp_path / "no-data-here"), "--json", str(results)]) == 1
    assert capsys.readouterr().err.startswith("error: could not load MNIST")
    assert sorted(tmp_path.iterdir()) == before

    class InterruptedAdam(lenet_module.Adam):
        def step(self) -> None:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(lenet_module, "Adam", InterruptedAdam)
        assert lenet_module.main(["--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "8",
                                  "--json", str(results)]) == 130
    assert "nothing was saved" in capsys.readouterr().out
    assert sorted(tmp_path.iterdir()) == before

    assert lenet_module.main(["--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "8",
                              "--json", str(results)]) == 0
    assert json.loads(results.read_text())["test_accuracy"] >= 0
    assert [path.name for path in results.parent.iterdir()] == ["result.json"]


def test_lenet_refuses_an_empty_test_split_before_training(lenet_module, tmp_path, capsys):
    """It loaded the files itself and failed after training with numpy's 'need at least one
    array to concatenate'; the examples' shared loader names the empty split instead."""
    from test_datasets import write_mnist

    write_mnist(tmp_path, train=8, test=0)
    assert lenet_module.main(["--data-dir", str(tmp_path), "--epochs", "1"]) == 1
    output = capsys.readouterr()
    assert "Training" not in output.out
    assert output.err == (f"error: the MNIST test split in {tmp_path} is empty "
                          "(t10k-images-idx3-ubyte holds 0 images): nothing to test on\n")


def test_lenet_refuses_an_empty_json_path_at_its_parser(lenet_module, capsys):
    """--json "" (an unset shell variable) trained and wrote nothing, without a word."""
    with pytest.raises(SystemExit) as stop:
        lenet_module.parse_args(["--json", ""])
    assert stop.value.code == 2
    assert "error: --json was given an empty path" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["lenet", "mnist"])
@pytest.mark.parametrize("value, refused", [("0", False), ("0.0", False), ("-0.1", True), ("inf", True), ("nan", True)])
def test_lenet_and_mnist_take_the_same_learning_rates(script, value, refused, monkeypatch, capsys):
    """lenet.py refused --lr 0, which mnist.py (and PyTorch's optimizers) accept: one shared
    rule now, a finite number >= 0, and each script's help says 0 is allowed."""
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    module = __import__(script)
    if refused:
        with pytest.raises(SystemExit) as stop:
            module.parse_args(["--lr", value])
        assert stop.value.code == 2
        assert f"error: --lr must be a finite number >= 0, got {float(value)}" in capsys.readouterr().err
    else:
        assert module.parse_args(["--lr", value]).lr == 0.0
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    assert "0 is allowed" in " ".join(capsys.readouterr().out.split())


def test_lr_0_is_a_dry_run_that_leaves_the_weights_as_initialised(lenet_module, tmp_path, monkeypatch, capsys):
    import mnist
    import numpy as np
    from test_datasets import write_mnist

    from tinygrad_cnn.models import SeedCNN
    from tinygrad_cnn.nn import load, state_dict
    from tinygrad_cnn.random import manual_seed

    write_mnist(tmp_path, train=16, test=4)
    models = []

    class RecordedLeNet5(lenet_module.LeNet5):
        def __init__(self):
            super().__init__()
            models.append(self)

    monkeypatch.setattr(lenet_module, "LeNet5", RecordedLeNet5)
    assert lenet_module.main(["--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "8", "--lr", "0"]) == 0
    manual_seed(0)
    initial = state_dict(lenet_module.LeNet5())
    assert all(np.array_equal(value, initial[name]) for name, value in state_dict(models[0]).items())

    checkpoint = tmp_path / "run.npz"
    assert mnist.main(["--data-dir", str(tmp_path), "--no-progress", "--epochs", "1", "--batch-size", "8", "--lr", "0",
                       "--save", str(checkpoint)]) == 0
    trained, initial = load(checkpoint), state_dict(SeedCNN(seed=0))
    assert all(np.array_equal(trained[f"model/{name}"], value) for name, value in initial.items())
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("script", ["lenet", "mnist", "seed_layers", "visualize"])
def test_every_example_refuses_a_negative_seed_with_the_one_shared_message(script, monkeypatch, capsys):
    """Each script had its own copy of the --seed check; now they share common.py's."""
    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    module = __import__(script)
    with pytest.raises(SystemExit) as stop:
        module.parse_args(["--seed", "-1"])
    assert stop.value.code == 2
    assert "error: --seed must be >= 0, got -1" in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_shared_integer_check_refuses_only_negative_values(monkeypatch, capsys):
    import argparse

    monkeypatch.syspath_prepend(str(REPOSITORY / "examples"))
    from common import refuse_negative_integers

    parser = argparse.ArgumentParser(prog="script")
    refuse_negative_integers(parser, argparse.Namespace(seed=0, index=None, steps=7), ("seed", "index", "steps"))
    with pytest.raises(SystemExit):
        refuse_negative_integers(parser, argparse.Namespace(seed=0, limit_test=-3), ("seed", "limit_test"))
    assert capsys.readouterr().err.strip().splitlines()[-1] == "script: error: --limit-test must be >= 0, got -3"
