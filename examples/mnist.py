#!/usr/bin/env python3
"""Train the seed CNN (or the seed MLP) on MNIST with tinygrad_cnn, and report how well it does.

    python examples/mnist.py                         # the fast recipe: 3 epochs, >= 99 % test accuracy
    python examples/mnist.py --recipe seed           # the original recipe: batch 1, 9 epochs, warm-up + cosine
    python examples/mnist.py --save run.npz          # checkpoint every epoch (and on Ctrl-C or SIGTERM)
    python examples/mnist.py --resume run.npz        # continue exactly where it stopped (and keep saving there)
    python examples/mnist.py --resume run.npz --epochs 5   # extend a finished 3-epoch run to 5 epochs

The data comes from --data-dir, else $TINYGRAD_CNN_DATA, else a per-user cache directory
(downloaded there, checksum-verified, on first use). Every output path is checked before
training starts.
"""

from __future__ import annotations

import argparse
import importlib
import math
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from common import (
    CLASS_NAMES,
    DATASETS,
    LEARNING_RATE_RULE,
    OPTIMIZERS,
    CommandLineError,
    ModelDiverged,
    accuracy_percent,
    build_model,
    check_free_space,
    closed_stdout_exit,
    create_parent_directory,
    expand_home,
    flag_name,
    load_data,
    load_weights,
    model_from_checkpoint,
    predict,
    prepare_output_file,
    read_checkpoint,
    refuse_directory_name,
    refuse_empty_paths,
    refuse_negative,
    refuse_negative_integers,
    refuse_non_positive,
    save_checkpoint,
    silence_closed_stdout,
    write_json,
)

from tinygrad_cnn.datasets import batches
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import get_parameters
from tinygrad_cnn.optim import SGD, Adam, Optimizer, WarmupCosine

Log = Callable[[str], None]

# Each recipe fills in the training flags the user did not give.
RECIPES: dict[str, dict[str, Any]] = {
    # Reaches >= 99 % test accuracy in 3 epochs: mini-batches, momentum, a short warm-up.
    "fast": {"optimizer": "sgd", "epochs": 3, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "warmup_epochs": 0.25},
    # The seed program's recipe: one image per step, plain SGD, warm-up then cosine to zero.
    "seed": {"optimizer": "sgd", "epochs": 9, "batch_size": 1, "lr": 0.001, "momentum": 0.0, "warmup_epochs": 1.0},
}
# What a flag left out means (kept None in the parsed arguments, so a given flag can be told apart).
DEFAULTS: dict[str, Any] = {"model": "cnn", "recipe": "fast", "seed": 0, "dataset": "mnist"}
ADAM_BETAS = (0.9, 0.999)  # what --betas left out means
#: the optimizer's own setting; the other optimizer has no use for it
OPTIMIZER_SETTINGS = {"sgd": "momentum", "adam": "betas"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}
#: the settings of a training run: a resumed run takes them from its checkpoint (all but
#: --epochs), and a note names each one given with another value (``ignored_flags``)
TRAINING_FLAGS = ("model", "recipe", "optimizer", "betas", "epochs", "batch_size", "lr", "momentum", "warmup_epochs",
                  "seed", "limit_train", "dataset")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    training = parser.add_argument_group("training (with --resume: taken from the checkpoint, except --epochs)")
    training.add_argument("--model", choices=("cnn", "mlp"),
                          help="cnn: the seed's convolutional network (default); mlp: its 784-1000-100-10 network")
    training.add_argument("--recipe", choices=sorted(RECIPES),
                          help="default values of the flags below: 'fast' (default) = 3 epochs, batch 64, lr 0.05, "
                               "momentum 0.9; 'seed' = the original: 9 epochs, batch 1, max lr 0.001, no momentum")
    training.add_argument("--optimizer", choices=OPTIMIZERS,
                          help="sgd (with --momentum; the recipes' choice) or adam (betas 0.9, 0.999)")
    training.add_argument("--betas", type=float, nargs=2, metavar=("BETA1", "BETA2"),
                          help="Adam's moment decay rates (default 0.9 0.999)")
    training.add_argument("--epochs", type=int,
                          help="passes over the training set; with --resume, a new length for the run (extends a "
                               "finished run; the learning-rate schedule is rebuilt for the new length)")
    training.add_argument("--batch-size", type=int, help="images per SGD step")
    training.add_argument("--lr", type=float, help="peak learning rate (reached after the warm-up): "
                          + LEARNING_RATE_RULE)
    training.add_argument("--momentum", type=float, help="SGD momentum (0 = plain SGD)")
    training.add_argument("--warmup-epochs", type=float,
                          help="linear warm-up length in epochs, then cosine decay to 0 at the end")
    training.add_argument("--seed", type=int, help="seed of the initial weights and the data order (default 0)")
    training.add_argument("--limit-train", type=int, metavar="N",
                          help="train on the first N training images only (N at or above their number: all of them)")

    data = parser.add_argument_group("data and evaluation")
    data.add_argument("--dataset", choices=sorted(DATASETS), help="mnist (digits, default) or fashion "
                      "(Fashion-MNIST: the same file format, ten kinds of clothing; the plots name the classes)")
    data.add_argument("--data-dir", help="directory with the four MNIST IDX files "
                                         "(default: $TINYGRAD_CNN_DATA or ~/.cache/tinygrad_cnn/mnist)")
    data.add_argument("--limit-test", type=int, metavar="N", help="evaluate on the first N test images only")
    data.add_argument("--eval-only", action="store_true",
                      help="only evaluate the --resume checkpoint (or a state dict saved with nn.save) on the test set")

    output = parser.add_argument_group("checkpoints and output (every path is checked before training starts)")
    output.add_argument("--save", metavar="PATH",
                        help="write a checkpoint (.npz) at the end of every epoch, every --save-every steps and on "
                             "Ctrl-C or SIGTERM (atomically); refuses to replace an existing file it is not resuming")
    output.add_argument("--save-every", type=int, metavar="STEPS", help="also checkpoint every STEPS optimizer steps")
    output.add_argument("--resume", metavar="PATH",
                        help="continue training from a checkpoint, bit-exactly, and keep saving to PATH "
                             "(unless --save names another file)")
    output.add_argument("--json", metavar="PATH", help="write the results as JSON")
    output.add_argument("--plots", metavar="DIR", help="save PNG plots there (needs matplotlib)")
    output.add_argument("--graph", metavar="FILE", help="write the model's graph as Graphviz DOT to FILE (and a PNG "
                        "next to it if `dot` is installed; a FILE ending in .png gets the picture, the DOT beside it)")
    output.add_argument("--export-onnx", metavar="PATH", help="write the trained model as an ONNX file (input 'images': "
                                                              "raw pixels N,1,28,28 float32; output 'logits'; needs "
                                                              "pip install tinygrad_cnn[onnx])")
    output.add_argument("--no-progress", action="store_true", help="no live progress bar")
    args = parser.parse_args(argv)

    refuse_non_positive(parser, args, ("epochs", "batch_size", "limit_train", "limit_test", "save_every"))
    refuse_negative(parser, args, ("lr", "momentum", "warmup_epochs"))
    if args.betas is not None and not all(0 <= beta < 1 for beta in args.betas):
        parser.error(f"--betas must lie in [0, 1), got {args.betas}")
    refuse_negative_integers(parser, args, ("seed",))
    optimizer = args.optimizer or RECIPES[args.recipe or DEFAULTS["recipe"]]["optimizer"]
    if not args.resume and optimizer == "adam" and args.momentum is not None:  # (resuming ignores both, with a note)
        parser.error("--momentum is SGD's; Adam would ignore it (its moment decay rates are --betas)")
    if not args.resume and optimizer == "sgd" and args.betas is not None:
        parser.error("--betas are Adam's (--optimizer adam); SGD would ignore them (its setting is --momentum)")
    paths = ("save", "resume", "json", "plots", "graph", "export_onnx", "data_dir")
    refuse_empty_paths(parser, args, paths)
    expand_home(args, paths)
    if args.eval_only and not args.resume:
        parser.error("--eval-only needs --resume PATH (the checkpoint to evaluate)")
    if args.save_every and not (args.save or args.resume) or args.save_every and args.eval_only:
        parser.error("--save-every needs a checkpoint to write: --save PATH or --resume PATH, without --eval-only")
    return args


def training_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that define a new training run: the recipe's defaults, overridden by flags."""
    config = {**DEFAULTS, **RECIPES[args.recipe or DEFAULTS["recipe"]]}
    for name in TRAINING_FLAGS:
        value = getattr(args, name)
        if value is not None:
            config[name] = list(value) if name == "betas" else value
    return config


# ---------------------------------------------------------------------------
# A run: the model, its optimizer, and the position that checkpoints save
# ---------------------------------------------------------------------------


def fresh_position() -> dict[str, Any]:
    """Where a new run stands: nothing trained. Checkpoints store this dict (as JSON)."""
    return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [], "train_seconds": 0.0,
            "running": {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}}


@dataclass
class Run:
    """Everything training changes. ``position`` and the weights and optimizer buffers are
    what a checkpoint holds; the rest is this process's bookkeeping."""

    config: dict[str, Any]
    model: Any
    optimizer: Optimizer
    position: dict[str, Any]
    rng: np.random.Generator
    resumed_from: Optional[str] = None
    session_train_seconds: float = 0.0
    #: (epoch, step in epoch) of the last checkpoint this process wrote: an epoch's last step and
    #: the end of that epoch share a global step, but not a position (the end adds its record)
    saved_at: Optional[tuple[int, int]] = None
    saved_where: Optional[str] = None  # and that position in words
    save_path: Optional[Path] = None

    @property
    def finished(self) -> bool:
        return self.position["epoch"] >= self.config["epochs"]


def make_optimizer(config: dict[str, Any], model: Any) -> Optimizer:
    if config["optimizer"] == "adam":
        return Adam(get_parameters(model), lr=config["lr"], betas=tuple(config.get("betas") or ADAM_BETAS))
    return SGD(get_parameters(model), lr=config["lr"], momentum=config["momentum"])


def new_run(config: dict[str, Any]) -> Run:
    model = build_model(config["model"], config["seed"])
    return Run(config, model, make_optimizer(config, model), fresh_position(), np.random.default_rng(config["seed"]))


def as_text(value: Any) -> str:
    """A flag's value as typed on the command line ('0.9 0.999' for a pair)."""
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def value_in_use(config: dict[str, Any], name: str) -> Any:
    """The value of the setting ``name`` that the run ``config`` describes trains with: a run
    started without --betas trains with Adam's defaults (``make_optimizer``), not with none."""
    if name == "betas" and config.get("betas") is None:
        return ADAM_BETAS
    return config.get(name, DEFAULTS.get(name))


def limit_in_effect(limit: Optional[int], training_images: Optional[int]) -> Optional[int]:
    """A --limit-train value as the run trains with it: None (the whole training set) for no
    limit or one at or above ``training_images``, the number of images in the training set
    the run loads, since it cuts nothing; else the limit. An unknown size (None) keeps it."""
    if limit is None or training_images is not None and limit >= training_images:
        return None
    return limit


def setting_in_words(name: str, value: Any) -> str:
    """What a checkpoint's run trains with for the setting ``name``, for the resume note: a run
    saved without --limit-train trains on the whole training set (the note said the checkpoint
    had "none"), one saved with it on the first N images; any other setting is its value."""
    if name == "limit_train":
        return ("the checkpoint trains on the whole training set" if value is None
                else f"the checkpoint trains on the first {value} training images")
    return f"the checkpoint has {as_text(value)}"


def ignored_flags(args: argparse.Namespace, config: dict[str, Any], names,
                  training_images: Optional[int] = None) -> list[str]:
    """``--flag value (why)`` for every flag among ``names`` the user gave with a value the run
    does not use: one that differs from the value the run trains with, or the other
    optimizer's setting (--momentum for an Adam run, --betas for an SGD run), whatever its value.
    --limit-train is compared by the images it keeps of the ``training_images`` the run loads
    (``limit_in_effect``): with 60,000, a given 60000 is the checkpoint's "no limit"."""
    ignored = []
    optimizer = config.get("optimizer")
    for name in names:
        given = getattr(args, name)
        if given is None:
            continue
        in_use = value_in_use(config, name)
        if name in OPTIMIZER_SETTINGS.values() and OPTIMIZER_SETTINGS.get(optimizer) != name:
            ignored.append(f"{flag_name(name)} {as_text(given)} (the checkpoint trains with "
                           f"{OPTIMIZER_NAMES.get(optimizer, optimizer)}, which has no {flag_name(name)})")
        elif name == "limit_train":
            in_use = limit_in_effect(in_use, training_images)
            if limit_in_effect(given, training_images) != in_use:
                ignored.append(f"{flag_name(name)} {as_text(given)} ({setting_in_words(name, in_use)})")
        elif in_use is None or as_text(given) != as_text(in_use):
            ignored.append(f"{flag_name(name)} {as_text(given)} ({setting_in_words(name, in_use)})")
    return ignored


def note_ignored_flags(args: argparse.Namespace, config: dict[str, Any], training_images: int, log: Log) -> None:
    """On resume, name the training flags given with a value the checkpoint's run does not use
    (all but --epochs, which ``change_length`` handles); ``training_images`` is the size of the
    training set the run loads, which decides whether a --limit-train cuts anything."""
    ignored = ignored_flags(args, config, [name for name in TRAINING_FLAGS if name != "epochs"], training_images)
    if ignored:
        log("note: resuming with the checkpoint's settings; ignoring " + ", ".join(ignored))


def resume_run(args: argparse.Namespace, log: Log) -> Run:
    """The run stored in ``args.resume``, with its own settings; a given ``--epochs`` changes its
    length. The other training flags given are named in a note once the data is loaded
    (``note_ignored_flags``): whether a --limit-train cuts anything depends on its size."""
    weights, buffers, meta = read_checkpoint(args.resume)
    if meta is None:
        raise CommandLineError(f"{args.resume} holds only model weights (a state dict saved with nn.save), not a "
                               "training checkpoint of examples/mnist.py: it can be evaluated with --eval-only, "
                               "not resumed")
    config = {"dataset": DEFAULTS["dataset"], **meta["config"]}  # checkpoints older than --dataset are MNIST's
    run = new_run(config)
    load_weights(run.model, weights, args.resume)
    try:
        run.optimizer.load_state_dict(buffers)
    except (KeyError, ValueError) as error:
        raise CommandLineError(f"{args.resume}: the optimizer state does not fit: {error}") from None
    run.position = {**fresh_position(), **{key: meta[key] for key in fresh_position()}}
    run.position["running"] = {**fresh_position()["running"], **run.position["running"]}
    # the optimizer's step count (not in its state) sets the steps its buffers' tiny entries are
    # flushed on (kernels.flush_steps): one step per global step, as the run it continues
    run.optimizer.steps_taken = run.position["global_step"]
    run.rng.bit_generator.state = meta["epoch_rng_state"]
    run.resumed_from = args.resume
    change_length(run, args.epochs, log)
    return run


def change_length(run: Run, epochs: Optional[int], log: Log) -> None:
    """Apply ``--epochs`` on resume: any length the run has not yet passed (a finished run is
    extended); the schedule is then rebuilt for the new length."""
    if epochs is None or epochs == run.config["epochs"]:
        return
    done = run.position["epoch"] + (1 if run.position["step_in_epoch"] else 0)  # a started epoch counts
    if epochs < done:
        log(f"note: ignoring --epochs {epochs}: the checkpoint was saved {where(run.position)}")
        return
    log(f"note: --epochs {epochs} changes the run's length from {run.config['epochs']} to {epochs} epochs; the "
        f"learning-rate schedule is rebuilt for {epochs} epochs from here on, so the result differs from a run "
        f"started with --epochs {epochs}")
    run.config["epochs"] = epochs


def checkpoint_bytes(run: Run) -> int:
    """About how large this run's checkpoint file is: the weights, one or two optimizer buffers
    of the same size (momentum; Adam's two moments), and the JSON history."""
    weights = sum(parameter.data.nbytes for parameter in run.optimizer.params)
    buffers = 2 if run.config["optimizer"] == "adam" else (1 if run.config["momentum"] else 0)
    return weights * (1 + buffers) + 64 * 1024


# ---------------------------------------------------------------------------
# Ctrl-C and SIGTERM
# ---------------------------------------------------------------------------

SIGNAL_NAMES: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class Interrupted(BaseException):
    """The run stopped on a signal; ``str()`` is the one line to print, the exit status is 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_status = 128 + signum


def stop_at_once(signum: int, frame) -> None:
    """Outside training (loading data, plotting) SIGTERM stops at once, as Ctrl-C does."""
    raise Interrupted(f"Interrupted by {SIGNAL_NAMES[signum]}.", signum)


class StopOnSignal:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a request the training loop checks between steps,
    so a stop never lands in the middle of a parameter update or a checkpoint write.

    With a checkpoint to write (``keep_going``), later signals change nothing: the loop still
    finishes its step and writes the checkpoint (milliseconds to a second) before it exits.
    Without one there is nothing to wait for, and a second signal stops at once.
    """

    def __init__(self, keep_going: bool) -> None:
        self.keep_going = keep_going
        self.signum: Optional[int] = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "StopOnSignal":
        for signum in SIGNAL_NAMES:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exception) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None and not self.keep_going:
            stop_at_once(signum, frame)
        if self.signum is None:
            self.signum = signum


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


class TrainingDiverged(CommandLineError):
    pass


class NoProgressBar:
    """What ``progress_bar`` returns without tqdm: the bar's calls, doing nothing."""

    def update(self, count: int) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, initial: int, description: str, disabled: bool):
    """A tqdm bar on stderr (shown only on a terminal, unless ``disabled``), or a silent stand-in
    when tqdm is missing: it is a dependency, but a missing progress bar must not stop training."""
    try:
        from tqdm import tqdm
    except ImportError:
        return NoProgressBar()
    return tqdm(total=total, initial=initial, desc=description, unit="img", unit_scale=True,
                disable=True if disabled else None, leave=False, dynamic_ncols=True)


def train_step(run: Run, images: np.ndarray, labels: np.ndarray, lr: float) -> None:
    """One optimizer step on one batch; adds its loss, hits and time to the epoch's running totals."""
    started = time.perf_counter()
    run.optimizer.lr = lr
    logits = run.model(images)
    loss = logits.cross_entropy(labels)
    loss_value = loss.item()
    if not math.isfinite(loss_value):
        raise TrainingDiverged(
            f"the training loss became {loss_value} at step {run.position['global_step'] + 1} "
            f"(epoch {run.position['epoch'] + 1}, lr {lr:.3g}); try a lower --lr"
        )
    run.optimizer.zero_grad()
    loss.backward()
    run.optimizer.step()
    seconds = time.perf_counter() - started
    position, running = run.position, run.position["running"]
    position["global_step"] += 1
    position["step_in_epoch"] += 1
    position["train_seconds"] += seconds
    run.session_train_seconds += seconds
    running["loss_sum"] += loss_value * len(labels)
    running["correct"] += int((logits.data.argmax(axis=1) == labels).sum())
    running["seen"] += len(labels)
    running["seconds"] += seconds


def where(position: dict[str, Any]) -> str:
    """A position in words: 'after epoch 2' or 'at epoch 3, step 5'."""
    if position["step_in_epoch"] == 0:
        return f"after epoch {position['epoch']}"
    return f"at epoch {position['epoch'] + 1}, step {position['step_in_epoch']}"


def write_checkpoint(run: Run) -> None:
    """Save the run to ``run.save_path`` (when saving); a failed write stops the run with one line."""
    if run.save_path is None or run.saved_at == (run.position["epoch"], run.position["step_in_epoch"]):
        return
    try:
        save_checkpoint(run.save_path, run.model, run.optimizer,
                        {"config": run.config, "epoch_rng_state": run.rng.bit_generator.state, **run.position})
    except OSError as error:
        if run.saved_where is not None:
            kept = f"{run.save_path} still holds the checkpoint from {run.saved_where}"
        elif run.save_path.exists():
            kept = f"{run.save_path} still holds the checkpoint this run was resumed from"
        else:
            kept = "no checkpoint was written"
        raise CommandLineError(f"could not write the checkpoint {run.save_path}: {error.strerror or error}; "
                               f"training stopped {where(run.position)}; {kept}") from None
    run.saved_at, run.saved_where = (run.position["epoch"], run.position["step_in_epoch"]), where(run.position)


def train_epoch(run: Run, x_train: np.ndarray, y_train: np.ndarray, schedule, stop: StopOnSignal,
                save_every: Optional[int], progress: bool) -> bool:
    """Train (the rest of) the current epoch; False if a signal stopped it between two steps."""
    position = run.position
    position["epoch_rng_state"] = run.rng.bit_generator.state  # before this epoch's shuffle
    order = batches(x_train, y_train, run.config["batch_size"], rng=run.rng)
    running = position["running"]
    bar = progress_bar(len(x_train), running["seen"], f"epoch {position['epoch'] + 1}/{run.config['epochs']}",
                       not progress)
    try:
        for images, labels in islice(order, position["step_in_epoch"], None):
            if stop.signum is not None:
                return False
            train_step(run, images, labels, schedule(position["global_step"]))
            bar.update(len(labels))
            bar.set_postfix(loss=f"{running['loss_sum'] / running['seen']:.4f}",
                            acc=f"{100 * running['correct'] / running['seen']:.2f}%", refresh=False)
            if save_every and position["global_step"] % save_every == 0:
                write_checkpoint(run)
    finally:
        bar.close()
    return True


def end_epoch(run: Run, x_test: np.ndarray, y_test: np.ndarray, schedule) -> str:
    """Evaluate, append the epoch's record to the history, and move the position to the next
    epoch; return the epoch's line for the log (written after the checkpoint: see ``train``)."""
    position, running = run.position, run.position["running"]
    evaluation_started = time.perf_counter()
    try:
        test_accuracy = accuracy_percent(predict(run.model, x_test), y_test)
    except ModelDiverged as error:  # the loss was finite, but the last update blew the weights up
        raise TrainingDiverged(
            f"{error} after step {position['global_step']} (epoch {position['epoch'] + 1}, "
            f"lr {schedule(position['global_step'] - 1):.3g}); try a lower --lr"
        ) from None
    seen = max(running["seen"], 1)
    record = {
        "epoch": position["epoch"] + 1,
        "lr": schedule(position["global_step"] - 1),
        "avg_loss": running["loss_sum"] / seen,
        "train_accuracy": 100 * running["correct"] / seen,
        "test_accuracy": test_accuracy,
        "train_seconds": running["seconds"],
        "seconds": running["seconds"] + time.perf_counter() - evaluation_started,
    }
    position["history"].append(record)
    position["epoch"] += 1
    position["step_in_epoch"] = 0
    position["running"] = fresh_position()["running"]
    position["epoch_rng_state"] = run.rng.bit_generator.state  # the next epoch starts from here
    return (f"Epoch {record['epoch']}/{run.config['epochs']}  lr {record['lr']:.5f}  "
        f"avg loss {record['avg_loss']:.4f}  train acc {record['train_accuracy']:.2f}%  "
        f"test acc {test_accuracy:.2f}%  ({record['train_seconds']:.1f} s train, {record['seconds']:.1f} s total, "
        f"{running['seen'] / max(record['train_seconds'], 1e-9):.0f} img/s)")


def train(run: Run, data, log: Log, save_every: Optional[int] = None, progress: bool = True,
          unsaved: str = "nothing saved (no --save given)") -> None:
    """Train until the run's last epoch, checkpointing to ``run.save_path`` after every epoch
    (and every ``save_every`` steps); on Ctrl-C or SIGTERM, checkpoint and raise Interrupted
    (``unsaved`` ends its line when there is no ``run.save_path``)."""
    x_train, y_train, x_test, y_test = data
    steps_per_epoch = math.ceil(len(x_train) / run.config["batch_size"])
    total_steps = steps_per_epoch * run.config["epochs"]
    # the warm-up reaches the peak lr at its end (WarmupCosine), so a run of one step has none:
    # its only step would train at lr 0; a warm-up longer than the run is the whole run (cut in
    # epochs first: --warmup-epochs 1e308 times the steps per epoch is inf, which round() refuses)
    warmup_epochs = min(run.config["warmup_epochs"], run.config["epochs"])
    warmup_steps = min(round(warmup_epochs * steps_per_epoch), total_steps if total_steps > 1 else 0)
    schedule = WarmupCosine(run.config["lr"], total_steps, warmup_steps)
    with StopOnSignal(keep_going=run.save_path is not None) as stop:
        while not run.finished and stop.signum is None:
            if not train_epoch(run, x_train, y_train, schedule, stop, save_every, progress):
                break
            epoch_line = end_epoch(run, x_test, y_test, schedule)
            write_checkpoint(run)  # before the line: an output that fails (a closed pipe) loses no epoch
            log(epoch_line)
        if stop.signum is not None and not run.finished:  # a finished run just completes
            write_checkpoint(run)
            stopped_at = f"epoch {run.position['epoch'] + 1}, step {run.position['step_in_epoch']}/{steps_per_epoch}"
            saved = (f"checkpoint saved to {run.save_path}; continue with --resume {run.save_path}"
                     if run.save_path is not None else unsaved)
            raise Interrupted(f"Interrupted by {SIGNAL_NAMES[stop.signum]} at {stopped_at}: {saved}", stop.signum)


def write_graph_file(model, images: np.ndarray, labels: np.ndarray, path: str, log: Log) -> None:
    from tinygrad_cnn.graph import write_graph

    loss = model(images).cross_entropy(labels)
    try:
        written = write_graph(loss, path, model=model)
    except RuntimeError as error:  # Graphviz's dot failed (the checkpoint, if any, is already saved)
        raise CommandLineError(f"--graph {path}: {error}") from None
    except OSError as error:  # the path changed since check_outputs looked at it
        raise CommandLineError(f"--graph {path}: could not write the graph: {error.strerror or error}") from None
    log("graph written to " + ", ".join(str(p) for p in written))


# ---------------------------------------------------------------------------
# The command line: check the outputs, train or evaluate, report
# ---------------------------------------------------------------------------


#: the files ``plotting.save_training_plots`` writes into the --plots directory: the last two
#: only for a model with convolutions to draw (``plotting.draws_convolutions``: the seed CNN)
CONVOLUTION_PLOT_FILES = ("conv1_filters.png", "feature_maps.png")
PLOT_FILES = ("curves.png", "predictions.png", "mistakes.png", *CONVOLUTION_PLOT_FILES)


def plot_files(args: argparse.Namespace) -> tuple[str, ...]:
    """The pictures --plots may write, for the checks made before any work (a directory in the
    way, two outputs naming one file). A new run's model is the --model given, built here (in
    milliseconds) to ask ``plotting.draws_convolutions``, the test that decides whether the
    pictures are drawn: one without convolutions (the MLP) writes no convolution pictures, so
    a directory named conv1_filters.png is no obstacle to it.

    Decision: with --resume the model is the checkpoint's, and it is known only once the file is
    read, after these checks: ``read_checkpoint`` loads every array, and a plain state dict's
    model is recognised only by building both models (``model_name_for``). Rather than read the
    checkpoint twice, a resumed run is treated as one whose model may be a CNN, and all the
    pictures are checked: an MLP checkpoint's run is refused a directory named
    conv1_filters.png, a rare case that moving the directory settles."""
    from plotting import draws_convolutions  # (importing plotting imports no matplotlib)

    if args.resume or draws_convolutions(build_model(args.model or DEFAULTS["model"], DEFAULTS["seed"])):
        return PLOT_FILES
    return tuple(name for name in PLOT_FILES if name not in CONVOLUTION_PLOT_FILES)


def files_involved(args: argparse.Namespace) -> list[tuple[str, str, Path]]:
    """Every file the run reads (--resume) or may write, as ``(flag, description, path)``.
    --graph writes the DOT text and maybe a PNG (see tinygrad_cnn.graph.write_graph); --plots a
    directory of PNGs."""
    files = [(flag, f"{flag} {value}", Path(value).expanduser())
             for flag, value in (("--resume", args.resume), ("--save", args.save), ("--json", args.json),
                                 ("--export-onnx", args.export_onnx)) if value]
    if args.graph:
        named = Path(args.graph).expanduser()
        picture = named.suffix.lower() == ".png"  # the picture there, the DOT text beside it
        dot, png = (named.with_suffix(".dot"), named) if picture else (named, named.with_suffix(".png"))
        files += [("--graph", f"--graph {args.graph}" + (" (its DOT text)" if picture else ""), dot),
                  ("--graph", f"--graph {args.graph}" + ("" if picture else " (its PNG)"), png)]
    if args.plots:
        directory = Path(args.plots).expanduser()
        files += [("--plots", f"--plots {args.plots}", directory),
                  *(("--plots", f"--plots {args.plots} (its {name})", directory / name) for name in plot_files(args))]
    return files


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths lead to one file: compared by identity when both exist (hard links,
    symbolic links, case-insensitive disks), else by their absolute paths with links resolved."""
    if first.exists() and second.exists():
        return first.samefile(second)
    return first.resolve() == second.resolve()


def check_distinct(args: argparse.Namespace) -> None:
    """No output may replace another output or the checkpoint being read: only --save and
    --resume may name one file (the resumed run keeps saving there)."""
    files = files_involved(args)
    for index, (first_flag, first, path) in enumerate(files):
        for second_flag, second, other_path in files[index + 1:]:
            if {first_flag, second_flag} == {"--resume", "--save"} or not same_file(path, other_path):
                continue
            harm = "would overwrite the checkpoint it reads" if first_flag == "--resume" else "would write both there"
            raise CommandLineError(f"{first} and {second} are the same file ({path}): the run {harm}; "
                                   "give each output its own path")


def check_outputs(args: argparse.Namespace) -> None:
    """Check the result paths (and matplotlib for --plots) before anything slow happens."""
    for flag, value in (("--save", args.save), ("--json", args.json), ("--graph", args.graph),
                        ("--export-onnx", args.export_onnx)):
        if value:
            refuse_directory_name(value, flag)
    check_distinct(args)
    if args.plots:
        from plotting import prepare_plots_directory  # imports matplotlib only when called

        prepare_plots_directory(args.plots, plot_files(args))
    for flag, value in (("--json", args.json), ("--graph", args.graph), ("--export-onnx", args.export_onnx)):
        if value:
            prepare_output_file(value, flag)
    if args.graph and Path(args.graph).suffix.lower() == ".png" and shutil.which("dot") is None:
        raise CommandLineError(f"--graph {args.graph}: drawing the picture needs Graphviz's dot program, which is not "
                               "on PATH; install Graphviz, or give a .dot path for the DOT text alone")
    if args.graph:  # the file written beside the one named: the DOT text of a .png, the picture of a .dot
        named = Path(args.graph).expanduser()
        beside = named.with_suffix(".dot" if named.suffix.lower() == ".png" else ".png")
        if beside.is_dir() and (beside.suffix == ".dot" or shutil.which("dot") is not None):
            raise CommandLineError(f"--graph {args.graph}: {beside} is a directory, where its "
                                   f"{'DOT text' if beside.suffix == '.dot' else 'picture'} is to be written; "
                                   "move it or give another --graph")
    if args.export_onnx:
        try:  # imported, not only found: an installed onnx that fails to import fails the export after training
            importlib.import_module("onnx")
        except ImportError as error:
            raise CommandLineError(f"--export-onnx needs the onnx package: pip install -e \".[onnx]\" ({error})") from None
    if args.resume and not Path(args.resume).expanduser().is_file():
        raise CommandLineError(f"--resume {args.resume}: no checkpoint file there")


def checkpoint_path(args: argparse.Namespace, run: Run) -> Optional[Path]:
    """Where this run's checkpoints go, checked: --save, else the --resume file, else nowhere.
    An existing file is replaced only when it is the checkpoint being resumed. A finished run
    trains nothing and writes no checkpoint: its --save is not checked (nor refused for
    naming an existing file). The checks create nothing: the save makes missing directories."""
    if run.finished:
        return None
    if args.save:
        path = prepare_output_file(args.save, "--save")
        if path.exists() and not (args.resume and path.samefile(args.resume)):
            raise CommandLineError(f"--save {path}: the file exists and this run would replace it; continue that "
                                   f"run with --resume {path}, or choose another path, or delete it first")
    elif args.resume:
        try:
            path = prepare_output_file(args.resume, "--resume")
        except CommandLineError as error:
            raise CommandLineError(f"{error} (give --save PATH to keep the resumed run elsewhere)") from None
    else:
        return None
    check_free_space(path, checkpoint_bytes(run), "--save" if args.save else "--resume")
    return path


def report(run: Run, accuracy: float, x_train: np.ndarray, x_test: np.ndarray, started: float, log: Log) -> dict:
    """Print the final line; the results as a dict (what --json writes)."""
    total_seconds = time.perf_counter() - started
    whole_run = (f" (this session; the whole run trained {run.position['train_seconds']:.1f} s)"
                 if run.resumed_from else "")
    log(f"Final test accuracy: {accuracy:.2f}% after {run.position['epoch']} epochs  "
        f"training time {run.session_train_seconds:.1f} s  total {total_seconds:.1f} s{whole_run}")
    return {"model": run.config["model"], "epochs": run.position["epoch"], "batch_size": run.config["batch_size"],
            "train_images": len(x_train), "test_images": len(x_test), "test_accuracy": accuracy,
            "train_seconds": run.position["train_seconds"], "session_train_seconds": run.session_train_seconds,
            "total_seconds": total_seconds, "resumed_from": run.resumed_from, "history": run.position["history"]}


def train_and_report(args: argparse.Namespace, started: float, log: Log, results_log: Optional[Log] = None):
    """Train a new or resumed run; returns (the model, the results, the test data). The final
    line goes to ``results_log`` (default: ``log``)."""
    run = resume_run(args, log) if args.resume else new_run(training_config(args))
    run.save_path = checkpoint_path(args, run)
    x_train, y_train, x_test, y_test = load_data(args.data_dir, None, args.limit_test, run.config["dataset"])
    if run.resumed_from:  # (the note needs the training set's size: a --limit-train at or above it is no limit)
        note_ignored_flags(args, run.config, len(x_train), log)
    limit = run.config.get("limit_train")
    x_train, y_train = x_train[:limit], y_train[:limit]
    args.dataset = run.config["dataset"]  # the plots name this data set's classes
    if args.graph:
        write_graph_file(run.model, x_train[:1], y_train[:1], args.graph, log)
    if run.finished:
        log(f"The run in {args.resume} is finished: {run.position['epoch']}/{run.config['epochs']} epochs trained; "
            f"evaluating it (give --epochs more than {run.position['epoch']} to train it further)")
        if args.save:
            log(f"note: nothing was trained, so --save {args.save} is ignored")
    elif run.resumed_from:
        log(f"Resuming {args.resume} at epoch {run.position['epoch'] + 1}/{run.config['epochs']}, "
            f"step {run.position['step_in_epoch']}: training on {len(x_train)} images, testing on {len(x_test)}")
    else:
        log(f"Training on {len(x_train)} images, testing on {len(x_test)}")
    history_before = len(run.position["history"])
    train(run, (x_train, y_train, x_test, y_test), log, args.save_every, progress=not args.no_progress)
    if len(run.position["history"]) > history_before:
        accuracy = run.position["history"][-1]["test_accuracy"]
    else:  # nothing trained here: the checkpoint's accuracy may be on other test images
        accuracy = checkpoint_accuracy(run.model, x_test, y_test, args.resume)
    return run.model, report(run, accuracy, x_train, x_test, started, results_log or log), (x_test, y_test)


def checkpoint_accuracy(model, x_test: np.ndarray, y_test: np.ndarray, path: str) -> float:
    """The test accuracy of a model read from ``path``; a diverged one is an error naming the file."""
    try:
        return accuracy_percent(predict(model, x_test), y_test)
    except ModelDiverged as error:
        raise ModelDiverged(f"{path}: {error} (its weights hold NaN or inf, or are too large); "
                            "train it again with a lower --lr") from None


def evaluate_only(args: argparse.Namespace, started: float, log: Log):
    """--eval-only: the checkpoint's (or state dict's) model on the test set; returns (model, results)."""
    model, meta = model_from_checkpoint(args.resume)
    ignored = [f"{flag_name(name)}" for name in (*TRAINING_FLAGS, "save")
               if name != "dataset" and getattr(args, name) is not None]
    if meta is not None:  # a checkpoint is tested on the data set it was trained on; a state dict on --dataset
        ignored += ignored_flags(args, meta["config"], ["dataset"])
        args.dataset = meta["config"].get("dataset", DEFAULTS["dataset"])  # the plots name its classes too
    if ignored:
        log("note: --eval-only evaluates the checkpoint as it is; ignoring " + ", ".join(ignored))
    _, _, x_test, y_test = load_data(args.data_dir, None, args.limit_test, args.dataset or DEFAULTS["dataset"],
                                     need_train=False)
    if args.graph:
        write_graph_file(model, x_test[:1], y_test[:1], args.graph, log)
    accuracy = checkpoint_accuracy(model, x_test, y_test, args.resume)
    log(f"Test accuracy of {args.resume}: {accuracy:.2f}% on {len(y_test)} images")
    config = meta["config"] if meta else {}
    network = {SeedCNN: "cnn", SeedMLP: "mlp"}.get(type(model))  # (a plain state dict has no config)
    result = {"model": config.get("model", network), "epochs": meta["epoch"] if meta else None,
              "batch_size": config.get("batch_size"), "train_images": None, "test_images": len(x_test),
              "test_accuracy": accuracy, "train_seconds": meta["train_seconds"] if meta else None,
              "session_train_seconds": 0.0, "total_seconds": time.perf_counter() - started,
              "resumed_from": args.resume, "history": meta["history"] if meta else []}
    return model, result, (x_test, y_test)


def write_results(args: argparse.Namespace, model, result: dict, test_data, log: Log) -> None:
    """Write the outputs asked for after the run: --json, --plots, --export-onnx. One that
    fails (a full disk, a permission taken away since the up-front check) does not stop the
    others: each is tried, and the failures then stop the run as one error line."""
    failures = []
    for wanted, write in ((args.json, lambda: write_json(args.json, result)),
                          (args.plots, lambda: write_plots(args, model, result, test_data, log)),
                          (args.export_onnx, lambda: export_onnx(model, args.export_onnx, log))):
        if wanted:
            try:
                write()
            except CommandLineError as error:
                failures.append(str(error))
    if failures:
        raise CommandLineError("; ".join(failures))


def write_plots(args: argparse.Namespace, model, result: dict, test_data, log: Log) -> None:
    from plotting import reporting_write_errors, save_training_plots

    x_test, y_test = test_data
    with reporting_write_errors("--plots", args.plots):
        written = save_training_plots(model, result["history"], x_test, y_test, args.plots,
                                      CLASS_NAMES[args.dataset or "mnist"])
    log("plots written: " + ", ".join(str(path) for path in written))


def export_onnx(model, path: str, log: Log) -> None:
    from tinygrad_cnn.onnx import export

    try:
        create_parent_directory(Path(path).expanduser())
        export(model, Path(path).expanduser(), (1, 1, 28, 28))
    except OSError as error:  # a full disk: the export is atomic, any previous file stays whole
        raise CommandLineError(f"--export-onnx {path}: could not write the model: {error.strerror or error}") from None
    log(f"ONNX model written to {path} ({Path(path).expanduser().stat().st_size:,} bytes)")


def say_if_stdout_is_open(log: Log, message: str) -> None:
    """``log(message)``, unless the standard output was closed (the run has stopped anyway)."""
    try:
        log(message)
    except BrokenPipeError:
        silence_closed_stdout()


def stopped_by_closed_output(finished: bool = False) -> int:
    """The end of a run whose standard output was closed by its reader: during training it
    stops, as a Unix filter does; every finished epoch is in the checkpoint (``train`` writes it
    before the epoch's line). Closed once the training is over (``finished``), the results were
    still written. One line on stderr, exit status 1."""
    if finished:
        return closed_stdout_exit("the run finished and its outputs were written, but not all of its lines")
    return closed_stdout_exit("so the run stopped; with --save, the checkpoint holds every finished epoch "
                              "(continue with --resume)")


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(message, flush=True)

    closed_after_training: list[str] = []  # (the first line that could not be written)

    def results_log(message: str) -> None:
        """``log`` once the training is over: a closed stdout then only silences the rest, so
        that the results (--json, --plots, --export-onnx) are still written."""
        if not closed_after_training:
            try:
                log(message)
            except BrokenPipeError:
                closed_after_training.append(message)
                silence_closed_stdout()

    previous_sigterm = signal.signal(signal.SIGTERM, stop_at_once)  # training replaces it with StopOnSignal
    try:
        check_outputs(args)
        if args.eval_only:
            model, result, test_data = evaluate_only(args, started, results_log)
        else:
            model, result, test_data = train_and_report(args, started, log, results_log)
        write_results(args, model, result, test_data, results_log)
        if closed_after_training:
            return stopped_by_closed_output(finished=True)
    except CommandLineError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    except Interrupted as stop:
        say_if_stdout_is_open(log, str(stop))
        return stop.exit_status
    except KeyboardInterrupt:
        say_if_stdout_is_open(log, "Interrupted.")
        return 130
    except BrokenPipeError:
        return stopped_by_closed_output()
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
