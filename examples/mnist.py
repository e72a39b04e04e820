#!/usr/bin/env python3
"""Train the seed CNN (or the seed MLP) on MNIST with tinygrad_cnn, and report how well it does.

    python examples/mnist.py                         # the fast recipe: 3 epochs, >= 99 % test accuracy
    python examples/mnist.py --recipe seed           # the original recipe: batch 1, 9 epochs, warm-up + cosine
    python examples/mnist.py --save run.npz          # checkpoint every epoch (and on Ctrl-C)
    python examples/mnist.py --resume run.npz        # continue exactly where it stopped

The data comes from --data-dir, else $TINYGRAD_CNN_DATA, else a per-user cache directory
(downloaded there, checksum-verified, on first use).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tinygrad_cnn import Tensor, no_grad
from tinygrad_cnn.datasets import batches, mnist
from tinygrad_cnn.models import SeedCNN, SeedMLP
from tinygrad_cnn.nn import get_parameters, load, load_state_dict, named_parameters, save
from tinygrad_cnn.optim import SGD, Adam, Optimizer, WarmupCosine

CHECKPOINT_FORMAT = 1

# Each recipe fills in the training flags the user did not give.
RECIPES: dict[str, dict[str, Any]] = {
    # Reaches >= 99 % test accuracy in 3 epochs: mini-batches, momentum, a short warm-up.
    "fast": {"optimizer": "sgd", "epochs": 3, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "warmup_epochs": 0.25},
    # The seed program's recipe: one image per step, plain SGD, warm-up then cosine to zero.
    "seed": {"optimizer": "sgd", "epochs": 9, "batch_size": 1, "lr": 0.001, "momentum": 0.0, "warmup_epochs": 1.0},
}
TRAINING_FLAGS = ("model", "recipe", "optimizer", "betas", "epochs", "batch_size", "lr", "momentum", "warmup_epochs",
                  "seed", "limit_train")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    training = parser.add_argument_group("training (restored from the checkpoint with --resume)")
    training.add_argument("--model", choices=("cnn", "mlp"), default="cnn",
                          help="cnn: the seed's convolutional network (default); mlp: its 784-1000-100-10 network")
    training.add_argument("--recipe", choices=sorted(RECIPES), default="fast",
                          help="default values of the flags below: 'fast' = 3 epochs, batch 64, lr 0.05, "
                               "momentum 0.9; 'seed' = the original: 9 epochs, batch 1, max lr 0.001, no momentum")
    training.add_argument("--optimizer", choices=("sgd", "adam"),
                          help="sgd (with --momentum; the recipes' choice) or adam (betas 0.9, 0.999)")
    training.add_argument("--betas", type=float, nargs=2, metavar=("BETA1", "BETA2"),
                          help="Adam's moment decay rates (default 0.9 0.999)")
    training.add_argument("--epochs", type=int, help="passes over the training set")
    training.add_argument("--batch-size", type=int, help="images per SGD step")
    training.add_argument("--lr", type=float, help="peak learning rate (reached after the warm-up)")
    training.add_argument("--momentum", type=float, help="SGD momentum (0 = plain SGD)")
    training.add_argument("--warmup-epochs", type=float,
                          help="linear warm-up length in epochs, then cosine decay to 0 at the end")
    training.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the data order (default 0)")
    training.add_argument("--limit-train", type=int, metavar="N", help="train on the first N training images only")

    data = parser.add_argument_group("data and evaluation")
    data.add_argument("--data-dir", help="directory with the four MNIST IDX files "
                                         "(default: $TINYGRAD_CNN_DATA or ~/.cache/tinygrad_cnn/mnist)")
    data.add_argument("--limit-test", type=int, metavar="N", help="evaluate on the first N test images only")
    data.add_argument("--eval-only", action="store_true", help="only evaluate the --resume checkpoint on the test set")

    output = parser.add_argument_group("checkpoints and output")
    output.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) at the end of every epoch, "
                                                       "every --save-every steps and on Ctrl-C (atomically)")
    output.add_argument("--save-every", type=int, metavar="STEPS", help="also checkpoint every STEPS optimizer steps")
    output.add_argument("--resume", metavar="PATH", help="continue training from a checkpoint, bit-exactly")
    output.add_argument("--json", metavar="PATH", help="write the results as JSON")
    output.add_argument("--plots", metavar="DIR", help="save PNG plots there (needs matplotlib)")
    output.add_argument("--graph", metavar="FILE", help="write the model's graph as Graphviz DOT (and a PNG if `dot` is installed)")
    output.add_argument("--export-onnx", metavar="PATH", help="write the trained model as an ONNX file (input 'images': "
                                                              "raw pixels N,1,28,28 float32; output 'logits'; needs "
                                                              "pip install tinygrad_cnn[onnx])")
    output.add_argument("--no-progress", action="store_true", help="no live progress bar")
    args = parser.parse_args(argv)

    for name in ("epochs", "batch_size", "limit_train", "limit_test", "save_every"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    for name in ("lr", "momentum", "warmup_epochs"):
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            parser.error(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
    if args.betas is not None and not all(0 <= beta < 1 for beta in args.betas):
        parser.error(f"--betas must lie in [0, 1), got {args.betas}")
    if args.eval_only and not args.resume:
        parser.error("--eval-only needs --resume PATH (the checkpoint to evaluate)")
    if args.save_every and not args.save:
        parser.error("--save-every needs --save PATH")
    return args


def training_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that define a training run: the recipe's defaults, overridden by flags."""
    config = dict(RECIPES[args.recipe])
    for name in TRAINING_FLAGS:
        value = getattr(args, name)
        if value is not None:
            config[name] = value
    return config


def build_model(config: dict[str, Any]):
    return (SeedCNN if config["model"] == "cnn" else SeedMLP)(seed=config["seed"])


# ---------------------------------------------------------------------------
# Checkpoints: one .npz, weights + optimizer buffers + a JSON "meta" string, never pickle
# ---------------------------------------------------------------------------


def save_checkpoint(path: str, model, optimizer: Optimizer, state: dict[str, Any]) -> None:
    arrays = {f"model/{name}": tensor.data for name, tensor in named_parameters(model).items()}
    arrays.update({f"optimizer/{key}": value for key, value in optimizer.state_dict().items()})
    arrays["meta"] = np.array(json.dumps({"format": CHECKPOINT_FORMAT, **state}))
    save(arrays, path)


def load_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    arrays = load(path)
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a training checkpoint of examples/mnist.py (no 'meta' entry)")
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {meta.get('format')}, expected {CHECKPOINT_FORMAT}")
    weights = {key[len("model/"):]: value for key, value in arrays.items() if key.startswith("model/")}
    buffers = {key[len("optimizer/"):]: value for key, value in arrays.items() if key.startswith("optimizer/")}
    return weights, buffers, meta


# ---------------------------------------------------------------------------
# Evaluation and training
# ---------------------------------------------------------------------------


def predict(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits for every image, computed under no_grad in batches."""
    with no_grad():
        return np.concatenate([model(images[start:start + batch_size]).data
                               for start in range(0, len(images), batch_size)])


def accuracy_percent(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean() * 100)


class StopRequested:
    """Turns Ctrl-C (SIGINT) into a flag the training loop checks between steps, so an
    interrupt never lands in the middle of a parameter update."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C: stop at once
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self.previous)


class TrainingDiverged(RuntimeError):
    pass


def progress_bar(total: int, initial: int, description: str, disabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit="img", unit_scale=True,
                disable=True if disabled else None, leave=False, dynamic_ncols=True)


def train(args: argparse.Namespace, data, log) -> dict[str, Any]:
    x_train, y_train, x_test, y_test = data
    started = time.perf_counter()
    state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [],
                             "train_seconds": 0.0, "running": {"loss_sum": 0.0, "correct": 0, "seen": 0}}
    if args.resume:
        weights, buffers, meta = load_checkpoint(args.resume)
        config = meta["config"]
        ignored = [name for name in TRAINING_FLAGS if getattr(args, name) not in (None, config.get(name))
                   and name not in ("seed", "recipe", "model")]
        if ignored:
            log(f"note: resuming with the checkpoint's settings; ignoring --{', --'.join(n.replace('_', '-') for n in ignored)}")
        state.update({key: meta[key] for key in state})
        state["epoch_rng_state"] = meta["epoch_rng_state"]
    else:
        config = training_config(args)
    model = build_model(config)
    if config.get("limit_train"):
        x_train, y_train = x_train[:config["limit_train"]], y_train[:config["limit_train"]]
    if config["optimizer"] == "adam":
        optimizer = Adam(get_parameters(model), lr=config["lr"], betas=tuple(config.get("betas") or (0.9, 0.999)))
    else:
        optimizer = SGD(get_parameters(model), lr=config["lr"], momentum=config["momentum"])
    if args.resume:
        load_state_dict(model, weights)
        optimizer.load_state_dict(buffers)

    steps_per_epoch = math.ceil(len(x_train) / config["batch_size"])
    total_steps = steps_per_epoch * config["epochs"]
    schedule = WarmupCosine(config["lr"], total_steps, min(round(config["warmup_epochs"] * steps_per_epoch), total_steps))
    rng = np.random.default_rng(config["seed"])
    if args.resume:
        rng.bit_generator.state = state["epoch_rng_state"]

    def checkpoint() -> None:
        if args.save:
            save_checkpoint(args.save, model, optimizer, {"config": config, **state})

    if args.graph:
        write_graph_file(model, x_train[:1], y_train[:1], args.graph, log)

    stop = StopRequested()
    try:
        while state["epoch"] < config["epochs"]:
            epoch_start = time.perf_counter()
            state["epoch_rng_state"] = rng.bit_generator.state  # before this epoch's shuffle
            order = batches(x_train, y_train, config["batch_size"], rng=rng)
            running = state["running"]
            bar = progress_bar(len(x_train), running["seen"], f"epoch {state['epoch'] + 1}/{config['epochs']}",
                               args.no_progress)
            for images, labels in islice(order, state["step_in_epoch"], None):
                step_start = time.perf_counter()
                optimizer.lr = schedule(state["global_step"])
                logits = model(images)
                loss = logits.cross_entropy(labels)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise TrainingDiverged(
                        f"the training loss became {loss_value} at step {state['global_step'] + 1} "
                        f"(epoch {state['epoch'] + 1}, lr {optimizer.lr:.3g}); try a lower --lr"
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                state["global_step"] += 1
                state["step_in_epoch"] += 1
                running["loss_sum"] += loss_value * len(labels)
                running["correct"] += int((logits.data.argmax(axis=1) == labels).sum())
                running["seen"] += len(labels)
                state["train_seconds"] += time.perf_counter() - step_start
                bar.update(len(labels))
                bar.set_postfix(loss=f"{running['loss_sum'] / running['seen']:.4f}",
                                acc=f"{100 * running['correct'] / running['seen']:.2f}%", refresh=False)
                if args.save_every and state["global_step"] % args.save_every == 0:
                    checkpoint()
                if stop.requested:
                    bar.close()
                    checkpoint()
                    where = f"epoch {state['epoch'] + 1}, step {state['step_in_epoch']}/{steps_per_epoch}"
                    saved = f"checkpoint saved to {args.save}; resume with --resume {args.save}" if args.save \
                        else "nothing saved (no --save given)"
                    log(f"Interrupted at {where}: {saved}")
                    raise SystemExit(130)
            bar.close()
            train_time = time.perf_counter() - epoch_start
            test_logits = predict(model, x_test)
            test_accuracy = accuracy_percent(test_logits, y_test)
            record = {
                "epoch": state["epoch"] + 1,
                "lr": schedule(state["global_step"] - 1),
                "avg_loss": running["loss_sum"] / max(running["seen"], 1),
                "train_accuracy": 100 * running["correct"] / max(running["seen"], 1),
                "test_accuracy": test_accuracy,
                "seconds": time.perf_counter() - epoch_start,
            }
            state["history"].append(record)
            state["epoch"] += 1
            state["step_in_epoch"] = 0
            state["running"] = {"loss_sum": 0.0, "correct": 0, "seen": 0}
            state["epoch_rng_state"] = rng.bit_generator.state  # the next epoch starts from here
            log(f"Epoch {record['epoch']}/{config['epochs']}  lr {record['lr']:.5f}  "
                f"avg loss {record['avg_loss']:.4f}  train acc {record['train_accuracy']:.2f}%  "
                f"test acc {test_accuracy:.2f}%  ({train_time:.1f} s train, {record['seconds']:.1f} s total, "
                f"{len(x_train) / train_time:.0f} img/s)")
            checkpoint()
    finally:
        stop.restore()
    return {"model": model, "config": config, "state": state, "elapsed": time.perf_counter() - started}


def write_graph_file(model, images: np.ndarray, labels: np.ndarray, path: str, log) -> None:
    from tinygrad_cnn.graph import write_graph

    loss = model(images).cross_entropy(labels)
    written = write_graph(loss, path, model=model)
    log("graph written to " + ", ".join(str(p) for p in written))


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    total_start = time.perf_counter()

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        data = mnist(args.data_dir)
    except (OSError, ValueError, RuntimeError) as error:
        log(f"error: could not load MNIST: {error}")
        return 1
    x_train, y_train, x_test, y_test = data
    if args.limit_test:
        x_test, y_test = x_test[:args.limit_test], y_test[:args.limit_test]

    try:
        if args.eval_only:
            weights, _, meta = load_checkpoint(args.resume)
            model = build_model(meta["config"])
            load_state_dict(model, weights)
            accuracy = accuracy_percent(predict(model, x_test), y_test)
            log(f"Test accuracy of {args.resume}: {accuracy:.2f}% on {len(y_test)} images")
            result = {"model": meta["config"]["model"], "epochs": meta["epoch"],
                      "batch_size": meta["config"]["batch_size"], "test_accuracy": accuracy,
                      "train_seconds": 0.0, "total_seconds": time.perf_counter() - total_start,
                      "history": meta["history"]}
            plot_model = model
        else:
            log(f"Training on {min(len(x_train), args.limit_train or len(x_train))} images, "
                f"testing on {len(x_test)}")
            outcome = train(args, (x_train, y_train, x_test, y_test), log)
            state, config = outcome["state"], outcome["config"]
            accuracy = state["history"][-1]["test_accuracy"] if state["history"] else \
                accuracy_percent(predict(outcome["model"], x_test), y_test)
            total_seconds = time.perf_counter() - total_start
            log(f"Final test accuracy: {accuracy:.2f}%  training time {state['train_seconds']:.1f} s  "
                f"total {total_seconds:.1f} s")
            result = {"model": config["model"], "epochs": config["epochs"], "batch_size": config["batch_size"],
                      "test_accuracy": accuracy, "train_seconds": state["train_seconds"],
                      "total_seconds": total_seconds, "history": state["history"]}
            plot_model = outcome["model"]
    except (OSError, ValueError, KeyError) as error:
        log(f"error: {error}")
        return 1
    except TrainingDiverged as error:
        log(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        log("Interrupted.")
        return 130

    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.plots:
        from plotting import save_training_plots

        written = save_training_plots(plot_model, result["history"], x_test, y_test, args.plots)
        log("plots written: " + ", ".join(str(path) for path in written))
    if args.export_onnx:
        from tinygrad_cnn.onnx import export

        export(plot_model, args.export_onnx, (1, 1, 28, 28))
        log(f"ONNX model written to {args.export_onnx} ({Path(args.export_onnx).stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
