#!/usr/bin/env python3
"""Train LeNet-5 (LeCun et al., 1998) on MNIST, written with the nn layers as in PyTorch.

    x/255 → conv 5x5 pad 2 (1→6) → tanh → average pool 2 → conv 5x5 (6→16) → tanh → average pool 2
    → flatten (400) → Linear 120 → tanh → Linear 84 → tanh → Linear 10 → logits

(tanh and average pooling, as the 1998 network; its scaled tanh and sparse C3 table are left out.)

    python examples/lenet.py                         # 2 epochs of Adam on all 60000 images
    python examples/lenet.py --limit-train 600 --epochs 3

The data comes from --data-dir, else $TINYGRAD_CNN_DATA, else a per-user cache directory.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
from common import (  # examples/common.py, next to this file
    LEARNING_RATE_RULE,
    CommandLineError,
    accuracy_percent,
    closed_stdout_exit,
    expand_home,
    load_data,
    predict,
    prepare_output_file,
    refuse_empty_paths,
    refuse_negative,
    refuse_negative_integers,
    refuse_non_positive,
    silence_closed_stdout,
    write_json,
)

from tinygrad_cnn import Tensor, train_mode
from tinygrad_cnn.datasets import batches
from tinygrad_cnn.models import pixels_to_tensor
from tinygrad_cnn.nn import Conv2d, Linear, get_parameters
from tinygrad_cnn.optim import Adam
from tinygrad_cnn.random import manual_seed


class LeNet5:
    """LeNet-5 on raw 0..255 pixels (N,1,28,28) → logits (N,10)."""

    def __init__(self):
        self.conv1 = Conv2d(1, 6, 5, padding=2)  # 6 x 28 x 28, pooled to 14 x 14
        self.conv2 = Conv2d(6, 16, 5)  # 16 x 10 x 10, pooled to 5 x 5
        self.fc1 = Linear(16 * 5 * 5, 120)
        self.fc2 = Linear(120, 84)
        self.fc3 = Linear(84, 10)

    def __call__(self, images: Tensor | np.ndarray) -> Tensor:
        x = pixels_to_tensor(images, np.float32) / 255.0
        x = self.conv1(x).tanh().avg_pool2d(2)
        x = self.conv2(x).tanh().avg_pool2d(2).flatten()
        x = self.fc2(self.fc1(x).tanh()).tanh()
        return self.fc3(x)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="passes over the training set (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per Adam step (default 32)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (default 0.002): "
                        + LEARNING_RATE_RULE)
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the data order (default 0)")
    parser.add_argument("--limit-train", type=int, metavar="N",
                        help="train on the first N training images only (N at or above their number: all of them)")
    parser.add_argument("--limit-test", type=int, metavar="N", help="evaluate on the first N test images only")
    parser.add_argument("--data-dir", help="directory with the four MNIST IDX files "
                                           "(default: $TINYGRAD_CNN_DATA or ~/.cache/tinygrad_cnn/mnist)")
    parser.add_argument("--json", metavar="PATH", help="write the final test accuracy and timings as JSON")
    args = parser.parse_args(argv)
    refuse_non_positive(parser, args, ("epochs", "batch_size", "limit_train", "limit_test"))
    refuse_negative(parser, args, ("lr",))
    refuse_negative_integers(parser, args, ("seed",))
    refuse_empty_paths(parser, args, ("data_dir", "json"))
    expand_home(args, ("data_dir", "json"))  # ~ as the shell would have, so the check and the write agree
    return args


@dataclass
class Progress:
    """How far the run got, for the line printed on Ctrl-C."""

    epochs: int
    epoch: int = 0  # the epoch being trained (1-based); 0 before training starts
    step: int = 0  # optimizer steps finished in that epoch
    steps_per_epoch: int = 0

    def __str__(self) -> str:
        if self.epoch == 0:
            return "before training started"
        return f"in epoch {self.epoch}/{self.epochs}, after {self.step} of {self.steps_per_epoch} steps"


def train_and_test(args: argparse.Namespace, progress: Progress) -> None:
    """Train LeNet-5 as the flags say, print each epoch's test accuracy, and write --json."""
    json_path = prepare_output_file(args.json, "--json") if args.json else None  # before training: keeps the result
    x_train, y_train, x_test, y_test = load_data(args.data_dir, args.limit_train, args.limit_test)
    print(f"Training LeNet-5 on {len(x_train)} images, testing on {len(x_test)}", flush=True)

    manual_seed(args.seed)
    model = LeNet5()
    optimizer = Adam(get_parameters(model), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    progress.steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        progress.epoch, progress.step = epoch, 0
        loss_sum, epoch_start = 0.0, time.perf_counter()
        with train_mode():  # LeNet has no dropout or batch norm, but this is where they would train
            for images, labels in batches(x_train, y_train, args.batch_size, rng=rng):
                loss = model(images).cross_entropy(labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(labels)
                progress.step += 1
        try:
            accuracy = accuracy_percent(predict(model, x_test), y_test)
        except CommandLineError as error:  # NaN or infinite logits: the model diverged
            raise CommandLineError(f"{error} (epoch {epoch}, lr {args.lr:g}); try a lower --lr") from None
        print(f"Epoch {epoch}/{args.epochs}  avg loss {loss_sum / len(x_train):.4f}  test acc {accuracy:.2f}%  "
              f"({time.perf_counter() - epoch_start:.1f} s)", flush=True)
    seconds = time.perf_counter() - started
    if json_path is not None:  # (before the last line: a stdout closed there loses no result)
        write_json(json_path, {"test_accuracy": accuracy, "seconds": seconds})
    print(f"Final test accuracy: {accuracy:.2f}%  ({seconds:.1f} s)", flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    progress = Progress(args.epochs)
    try:
        train_and_test(args, progress)
    except CommandLineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        try:
            print(f"Interrupted by Ctrl-C {progress}; nothing was saved.", flush=True)
        except BrokenPipeError:
            silence_closed_stdout()
        return 130
    except BrokenPipeError:  # stdout's reader left (`| head`): stop, as a Unix filter does
        return closed_stdout_exit(f"so the run stopped {progress}; nothing was saved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
