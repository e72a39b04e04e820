"""Draw what the seed CNN has learned: one test digit followed through the network, and the
first layer's 3x3 filters.

    python examples/visualize.py                                  # trains briefly itself
    python examples/visualize.py --resume run.npz --index 7 --plots plots/

Writes ``feature_maps.png`` and ``conv1_filters.png`` into ``--plots`` (default ``plots/``).

``--resume`` takes a checkpoint written by ``examples/mnist.py --save`` or a plain state dict
written by ``tinygrad_cnn.nn.save``; it is only read. The test images come from the data set
a checkpoint was trained on (MNIST or Fashion-MNIST; MNIST for a state dict). Without
``--resume``, the seed CNN is trained with mnist.py's fast recipe for one epoch on the first
``--limit-train`` training images (10,000 by default: about 10 s). The flags mean what they
mean in examples/mnist.py.

Needs matplotlib (``pip install matplotlib``); runs headless.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import mnist as trainer  # examples/mnist.py: its training loop, and its signal handling
from common import (
    CommandLineError,
    accuracy_percent,
    expand_home,
    load_data,
    model_from_checkpoint,
    predict,
    refuse_empty_paths,
    refuse_negative_integers,
    refuse_non_positive,
)
from plotting import (
    draws_convolutions,
    plot_conv1_filters,
    plot_feature_maps,
    prepare_plots_directory,
    reporting_write_errors,
)

DEFAULT_TRAINING_IMAGES = 10_000
#: the pictures written into the --plots directory
PLOT_FILES = ("feature_maps.png", "conv1_filters.png")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resume", metavar="PATH",
                        help="the model to draw: an .npz from examples/mnist.py --save or tinygrad_cnn.nn.save")
    parser.add_argument("--plots", metavar="DIR", default="plots", help="where the PNGs go (default plots/)")
    parser.add_argument("--index", type=int, default=0, help="which test digit to follow (default 0)")
    parser.add_argument("--limit-train", type=int, metavar="N",
                        help="without --resume: train one epoch on the first N training images (default 10000)")
    parser.add_argument("--limit-test", type=int, default=1000, metavar="N",
                        help="measure the test accuracy on the first N test images (default 1000)")
    parser.add_argument("--data-dir", help="directory with the four MNIST IDX files "
                                           "(default: $TINYGRAD_CNN_DATA or ~/.cache/tinygrad_cnn/mnist)")
    parser.add_argument("--seed", type=int, help="without --resume: the seed of the brief training (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bar")
    args = parser.parse_args(argv)
    refuse_non_positive(parser, args, ("limit_train", "limit_test"))
    refuse_negative_integers(parser, args, ("index", "seed"))
    refuse_empty_paths(parser, args, ("resume", "plots", "data_dir"))
    expand_home(args, ("resume", "plots", "data_dir"))
    return args


def train_briefly(args: argparse.Namespace, data, log) -> object:
    """The seed CNN after one epoch of examples/mnist.py's fast recipe on the given images."""
    config = {**trainer.DEFAULTS, **trainer.RECIPES["fast"], "epochs": 1, "seed": args.seed or 0}
    log(f"no --resume: training the seed CNN for one epoch on {len(data[0])} images "
        f"(mnist.py's fast recipe: batch {config['batch_size']}, SGD lr {config['lr']}, momentum {config['momentum']})")
    run = trainer.new_run(config)
    trainer.train(run, data, log, progress=not args.no_progress,
                  unsaved="no pictures drawn (give --resume a checkpoint of examples/mnist.py --save to skip training)")
    return run.model


def draw(args: argparse.Namespace, log) -> None:
    directory = prepare_plots_directory(args.plots, PLOT_FILES)
    dataset = "mnist"
    if args.resume:
        model, meta = model_from_checkpoint(args.resume)
        if not draws_convolutions(model):
            raise CommandLineError(f"--resume {args.resume}: its model, {type(model).__name__}, has no convolutions to "
                                   "draw (the pictures need a model that has them, such as the seed CNN)")
        if meta is not None:  # a checkpoint of examples/mnist.py names its data set; a state dict is taken as MNIST's
            dataset = meta["config"].get("dataset", "mnist")
        log(f"loaded {args.resume}" + (" (trained on Fashion-MNIST: drawing its test images)" if dataset == "fashion" else ""))
        ignored = [trainer.flag_name(name) for name in ("limit_train", "seed") if getattr(args, name) is not None]
        if ignored:
            log(f"note: nothing is trained with --resume; ignoring {', '.join(ignored)}")
    data = load_data(args.data_dir, args.limit_train or DEFAULT_TRAINING_IMAGES, args.limit_test, dataset,
                     need_train=not args.resume)
    x_test, y_test = data[2], data[3]
    if args.index >= len(x_test):
        raise CommandLineError(f"--index {args.index}: there are only {len(x_test)} test images (0..{len(x_test) - 1})")
    if not args.resume:
        model = train_briefly(args, data, log)
    log(f"test accuracy on {len(x_test)} images: {accuracy_percent(predict(model, x_test), y_test):.2f}%")
    with reporting_write_errors("--plots", args.plots):
        maps = plot_feature_maps(model, x_test[args.index], directory / "feature_maps.png",
                                 label=int(y_test[args.index]))
        filters = plot_conv1_filters(model, directory / "conv1_filters.png")
    log(f"wrote {maps} and {filters}")


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        draw(args, log)
    except CommandLineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except trainer.Interrupted as stop:
        log(str(stop))
        return stop.exit_status
    except KeyboardInterrupt:
        log("Interrupted.")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
