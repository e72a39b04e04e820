"""Draw what the seed CNN has learned: one test digit followed through the network, and the
first layer's 3x3 filters.

    PYTHONPATH=. python examples/visualize.py                         # trains briefly itself
    PYTHONPATH=. python examples/visualize.py --checkpoint runs/cnn.npz --index 7 --out plots/

Writes ``feature_maps.png`` and ``conv1_filters.png`` into ``--out`` (default ``plots/``).

``--checkpoint`` takes a checkpoint written by ``examples/mnist.py --save`` (model weights
under the keys ``model/<name>``, e.g. ``model/conv1.weight``) or a plain state dict written
by ``tinygrad_cnn.nn.save`` (keys like ``conv1.weight``). Without one, SeedCNN is trained
for one epoch on the first ``--train-images`` training images (10,000 by default: about a
minute), batch 64, SGD with lr 0.05 and momentum 0.9.

Needs matplotlib (``pip install matplotlib``); runs headless.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from tinygrad_cnn import no_grad
from tinygrad_cnn.datasets import batches, mnist
from tinygrad_cnn.models import SeedCNN
from tinygrad_cnn.nn import get_parameters, load, load_state_dict
from tinygrad_cnn.optim import SGD

from plotting import plot_conv1_filters, plot_feature_maps  # examples/plotting.py, next to this file

MODEL_PREFIX = "model/"


def load_checkpoint(model: SeedCNN, path: Path) -> None:
    """Load model weights from a trainer checkpoint (``model/<key>``) or a plain state dict."""
    arrays = load(path)
    if any(key.startswith(MODEL_PREFIX) for key in arrays):
        arrays = {key[len(MODEL_PREFIX):]: value for key, value in arrays.items() if key.startswith(MODEL_PREFIX)}
    load_state_dict(model, arrays)


def train_briefly(model: SeedCNN, images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                  lr: float = 0.05, momentum: float = 0.9, seed: int = 0) -> None:
    """One epoch of SGD with momentum over ``images``, printing the loss as it goes."""
    optimizer = SGD(get_parameters(model), lr=lr, momentum=momentum)
    steps = -(-len(images) // batch_size)
    start, running = time.perf_counter(), []
    for step, (batch_images, batch_labels) in enumerate(batches(images, labels, batch_size, rng=seed), 1):
        optimizer.zero_grad()
        loss = model(batch_images).cross_entropy(batch_labels)
        loss.backward()
        optimizer.step()
        running.append(loss.item())
        if step % 25 == 0 or step == steps:
            print(f"  step {step:>4}/{steps}  loss {np.mean(running):.3f}  ({time.perf_counter() - start:.0f} s)")
            running = []


def accuracy(model: SeedCNN, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    correct = 0
    with no_grad():
        for first in range(0, len(images), batch_size):
            logits = model(images[first:first + batch_size]).data
            correct += int((logits.argmax(axis=1) == labels[first:first + batch_size]).sum())
    return correct / max(len(images), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="an .npz from examples/mnist.py --save or nn.save")
    parser.add_argument("--out", type=Path, default=Path("plots"), help="output directory (default plots/)")
    parser.add_argument("--index", type=int, default=0, help="which test digit to follow (default 0)")
    parser.add_argument("--train-images", type=int, default=10_000,
                        help="without --checkpoint: train one epoch on this many images (default 10000)")
    parser.add_argument("--eval-images", type=int, default=1000,
                        help="test images to measure accuracy on (default 1000; 0 to skip)")
    parser.add_argument("--data", type=Path, default=None,
                        help="MNIST directory (default: $TINYGRAD_CNN_DATA or the download cache)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = mnist(args.data)
    if not 0 <= args.index < len(x_test):
        parser.error(f"--index must be in 0..{len(x_test) - 1}")
    model = SeedCNN(seed=args.seed)
    if args.checkpoint is not None:
        load_checkpoint(model, args.checkpoint)
        print(f"loaded {args.checkpoint}")
    else:
        count = min(max(args.train_images, 1), len(x_train))
        print(f"no --checkpoint: training SeedCNN for one epoch on {count} images (batch 64, SGD lr 0.05, momentum 0.9)")
        train_briefly(model, x_train[:count], y_train[:count], seed=args.seed)
    if args.eval_images > 0:
        count = min(args.eval_images, len(x_test))
        print(f"test accuracy on {count} images: {accuracy(model, x_test[:count], y_test[:count]):.1%}")

    maps = plot_feature_maps(model, x_test[args.index], args.out / "feature_maps.png", label=int(y_test[args.index]))
    filters = plot_conv1_filters(model, args.out / "conv1_filters.png")
    print(f"wrote {maps} and {filters}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
