"""Pictures of a trained CNN: one digit followed through the network, the first-layer filters,
and the trainer's pictures (``examples/mnist.py --plots DIR``: learning curves, the seed's grid
of 32 test digits titled "True: t  Pred: p", the most confident mistakes).

    from plotting import plot_feature_maps, plot_conv1_filters   # from a script in examples/
    plot_feature_maps(model, x_test[0], "plots/feature_maps.png")
    plot_conv1_filters(model, "plots/conv1_filters.png")

matplotlib is an optional dependency (``pip install tinygrad_cnn[plots]``); it is imported
inside the plotting functions, with the headless Agg backend, so importing this module costs
nothing and needs no display.

The feature maps are read off the real forward pass with ``tensor.forward_hooks`` (through
``summary.trace``), so the figure shows whatever ops the model runs, fused ones included.
"""

from __future__ import annotations

import contextlib
import math
import os
import textwrap
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

import numpy as np
from common import (  # examples/common.py
    CommandLineError,
    create_parent_directory,
    predict,
    prepare_output_directory,
    softmax,
)

from tinygrad_cnn.datasets import MNIST_CLASSES
from tinygrad_cnn.nn import atomic_write, named_parameters
from tinygrad_cnn.summary import trace

PathLike = Union[str, Path]


def require_matplotlib():
    """The matplotlib module; an ImportError that says how to install it when it is missing.
    Scripts call this before any work, so a missing matplotlib is found out at once."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib, an optional dependency: pip install matplotlib "
            "(or pip install -e '.[plots]')"
        ) from None
    return matplotlib


def prepare_plots_directory(path: PathLike, file_names: Sequence[str], flag: str = "--plots") -> Path:
    """Before any work, creating nothing: matplotlib is importable, ``path`` is a directory
    files can be written into (made with the first picture, if missing), and none of the ``file_names`` to be written there is a
    directory or a read-only file; else CommandLineError naming ``flag`` and the path.
    Returns the directory (``~`` expanded): the place to write the pictures."""
    try:
        require_matplotlib()
    except ImportError as error:
        raise CommandLineError(f"{flag} {path}: {error}") from None
    directory = prepare_output_directory(path, flag)
    for name in file_names:
        picture = directory / name
        if picture.is_dir():
            raise CommandLineError(f"{flag} {path}: {picture} is a directory, where the picture {name} is to be "
                                   f"written; move it or give another {flag}")
        if picture.exists() and not os.access(picture, os.W_OK):
            raise CommandLineError(f"{flag} {path}: {picture} is read-only, where the picture {name} is to be written")
    return directory


def _pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no window), imported on first use."""
    matplotlib = require_matplotlib()
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


#: the pictures ``_save`` has written inside the innermost ``reporting_write_errors`` block
#: (None outside one): kept by the one function that writes pictures, so no caller can forget one
_pictures_written: ContextVar[list[Path] | None] = ContextVar("pictures_written", default=None)


def _save(figure, path: PathLike) -> Path:
    """Write ``figure`` to ``path`` (in the format its suffix names: PNG here) and close it. The
    write is atomic (``nn.atomic_write``): a kill or a full disk keeps the previous picture,
    never half of one. A picture that cannot be written raises OSError naming its file."""
    path = Path(path)
    picture_format = path.suffix[1:].lower() or None  # (None: matplotlib's default, PNG)
    try:
        create_parent_directory(path)
        atomic_write(path, lambda file: figure.savefig(file, format=picture_format, dpi=72))
    finally:
        _pyplot().close(figure)
    written = _pictures_written.get()
    if written is not None:
        written.append(path)
    return path


@contextlib.contextmanager
def reporting_write_errors(flag: str, value: PathLike) -> Iterator[None]:
    """Turn a picture that could not be written inside the block (the disk filled up, the
    directory's permissions changed since ``prepare_plots_directory`` looked) into one
    CommandLineError naming ``flag``, the file and the reason, for the scripts' ``error:``
    line. The pictures written in the block before it stay, and the line names them (or says
    that none was written), so the user learns which files the run left."""
    written: list[Path] = []
    token = _pictures_written.set(written)
    try:
        yield
    except OSError as error:
        left = ("the pictures written before it: " + ", ".join(str(path) for path in written) if written
                else "no picture was written")
        raise CommandLineError(f"{flag} {value}: could not write {error.filename or value}: "
                               f"{error.strerror or error}; {left}") from None
    finally:
        _pictures_written.reset(token)


def feature_map_stages(model: Any, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``[(title, maps C,H,W), ...]`` for one image (1,28,28 raw pixels): the input, then the
    output of every op whose result is a stack of feature maps (N,C,H,W).

    Ops that only enlarge a map without computing anything (zero padding) are left out:
    they show the previous stage again with a black border.
    """
    image = np.asarray(image)
    stages = [("input", image.reshape(-1, *image.shape[-2:]).astype(np.float32))]
    for row in trace(model, images=image[None], keep_outputs=True):
        output = row["output"]
        if output.ndim != 4:
            continue
        input_shape = row["input_shapes"][0]
        grows_only = (row["macs"] == 0 and input_shape is not None and len(input_shape) == 4
                      and output.shape[2] * output.shape[3] > input_shape[2] * input_shape[3])
        if grows_only:
            continue
        channels, height, width = output.shape[1:]
        label = textwrap.fill(f"{row['index'] + 1}. {row['label']}", width=28)  # fused ops have long names
        stages.append((f"{label}\n{height}×{width}×{channels}", output[0]))
    return stages


def plot_feature_maps(model: Any, image: np.ndarray, path: PathLike, channels: int = 8,
                      label: int | None = None) -> Path:
    """Save a figure that follows one digit through ``model``: the input image, then the first
    ``channels`` feature maps after every conv / bias / relu / pool stage (one row each, on a
    common colour scale per row, so a channel weak on this digit shows as dark; a dark map is
    not yet a dead unit, which is 0 on every image), then the predicted class
    probabilities. ``image``: one raw 0..255 image, 1x28x28 or 28x28."""
    pyplot = _pyplot()
    image = np.asarray(image).reshape(1, 28, 28)
    stages = feature_map_stages(model, image)
    probabilities = softmax(predict(model, image[None]))[0].astype(np.float64)

    # One axes per stage, holding its first `channels` maps side by side (a mosaic with
    # one-pixel gaps): a hundred small axes would make matplotlib ten times slower.
    figure, axes = pyplot.subplots(len(stages) + 1, 1, figsize=(0.8 * channels + 2.2, 0.95 * len(stages) + 1.9),
                                   gridspec_kw={"height_ratios": [1] * len(stages) + [1.2]})
    for axis, (title, maps) in zip(axes, stages):
        shown = maps[:channels].astype(np.float64)
        count, height, width = shown.shape
        mosaic = np.full((height, count * (width + 1) - 1), np.nan)
        for channel in range(count):
            mosaic[:, channel * (width + 1): channel * (width + 1) + width] = shown[channel]
        low, high = float(shown.min()), float(shown.max())
        colours = pyplot.get_cmap("gray" if title == "input" else "viridis").with_extremes(bad="white")
        # A fixed extent makes every row equally wide, whatever the maps' resolution.
        axis.imshow(mosaic, cmap=colours, vmin=low, vmax=high if high > low else low + 1,
                    interpolation="nearest", extent=(0, count, 1, 0), aspect="equal")
        axis.set_xlim(0, channels)
        axis.set_yticks([])
        axis.set_xticks([channel + 0.5 for channel in range(count)] if count > 1 else [])
        axis.set_xticklabels([f"ch {channel}" for channel in range(count)] if count > 1 else [], fontsize=6)
        axis.tick_params(length=0, pad=1)
        for side in axis.spines.values():
            side.set_visible(False)
        axis.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=7)
    bars = axes[-1]
    predicted = int(np.argmax(probabilities))
    colours = ["darkorange" if digit == predicted else "steelblue" for digit in range(len(probabilities))]
    bars.bar(range(len(probabilities)), probabilities, color=colours)
    bars.set_xticks(range(len(probabilities)))
    bars.set_ylim(0, 1)
    bars.tick_params(labelsize=7)
    bars.set_ylabel("softmax", fontsize=7)
    truth = f", true label {label}" if label is not None else ""
    figure.suptitle(f"One digit through the network: predicted {predicted} "
                    f"(p = {probabilities[predicted]:.2f}){truth}", fontsize=9)
    figure.subplots_adjust(left=1.9 / figure.get_figwidth(), right=0.98, top=1 - 0.5 / figure.get_figheight(), bottom=0.03, hspace=0.45)
    return _save(figure, path)


def draws_convolutions(model: Any) -> bool:
    """Whether ``model`` gets the convolution pictures (conv1_filters.png, feature_maps.png):
    it has a first convolution, ``conv1`` (the seed CNN; the seed MLP has none). The one place
    that decides it: ``save_training_plots`` draws them by it, examples/mnist.py checks their
    paths before training by it (a new run's model is built for the question), so the pictures
    checked and the pictures drawn cannot differ, and examples/visualize.py refuses a model
    without them."""
    return hasattr(model, "conv1")


def first_conv_weight(model: Any) -> tuple[str, np.ndarray]:
    """The model's first-layer filter bank (O,C,kh,kw): ``conv1.weight`` if it has one, else its
    first 4-D parameter."""
    parameters = named_parameters(model)
    if "conv1.weight" in parameters:
        return "conv1.weight", parameters["conv1.weight"].data
    for name, tensor in parameters.items():
        if tensor.ndim == 4:
            return name, tensor.data
    raise ValueError("the model has no 4-D (convolution filter) parameter to draw")


def plot_conv1_filters(model: Any, path: PathLike) -> Path:
    """Save the first convolution's learned filters (16 of 3x3 for SeedCNN) in a square grid,
    red positive and blue negative on one symmetric scale, each weight written in its cell.
    For filters over several input channels, channel 0 is drawn."""
    pyplot = _pyplot()
    name, weight = first_conv_weight(model)
    filters = np.asarray(weight[:, 0], dtype=np.float64)  # O, kh, kw
    count, kernel_h, kernel_w = filters.shape
    side = math.ceil(math.sqrt(count))
    rows = math.ceil(count / side)
    limit = float(np.abs(filters).max()) or 1.0
    figure, axes = pyplot.subplots(rows, side, figsize=(1.6 * side, 1.6 * rows + 0.5), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_xticks([])
        axis.set_yticks([])
        if index >= count:
            axis.axis("off")
            continue
        axis.imshow(filters[index], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        axis.set_title(f"filter {index}", fontsize=7, pad=2)
        if kernel_h * kernel_w <= 25:
            for (i, j), value in np.ndenumerate(filters[index]):
                axis.text(j, i, f"{value:.2f}".replace("-0.00", "0.00"), ha="center", va="center", fontsize=6,
                          color="white" if abs(value) > 0.6 * limit else "black")
    figure.suptitle(f"{name}: {count} learned {kernel_h}x{kernel_w} filters (red +, blue −)", fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(figure, path)


__all__ = ["plot_feature_maps", "plot_conv1_filters", "feature_map_stages", "first_conv_weight", "draws_convolutions",
           "require_matplotlib", "prepare_plots_directory", "reporting_write_errors", "save_training_plots"]


# ---------------------------------------------------------------------------
# The trainer's pictures
# ---------------------------------------------------------------------------


def plot_curves(history: Sequence[dict[str, Any]], path: Path) -> None:
    pyplot = _pyplot()
    epochs = [record["epoch"] for record in history]
    figure, (accuracy_axes, loss_axes) = pyplot.subplots(1, 2, figsize=(10, 4))
    accuracy_axes.plot(epochs, [record["test_accuracy"] for record in history], "o-", label="test")
    if all("train_accuracy" in record for record in history):
        accuracy_axes.plot(epochs, [record["train_accuracy"] for record in history], "s--", label="train")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    accuracy_axes.legend()
    loss_axes.plot(epochs, [record["avg_loss"] for record in history], "o-", color="tab:red")
    loss_axes.set(xlabel="epoch", ylabel="average cross-entropy", title="Training loss")
    for axes in (accuracy_axes, loss_axes):
        axes.grid(alpha=0.3)
        axes.set_xticks(epochs)
    figure.tight_layout()
    _save(figure, path)


def plot_digit_grid(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, path: Path,
                    titles: Sequence[str] | None = None, heading: str = "",
                    class_names: Sequence[str] = MNIST_CLASSES) -> None:
    """Up to 32 images in a 4x8 grid, each titled "True: t  Pred: p" (red when wrong)."""
    pyplot = _pyplot()
    figure, grid = pyplot.subplots(4, 8, figsize=(14, 8))
    for index, axes in enumerate(grid.flat):
        axes.axis("off")
        if index >= len(images):
            continue
        axes.imshow(images[index, 0], cmap="gray_r")
        title = (titles[index] if titles is not None
                 else f"True: {class_names[labels[index]]}  Pred: {class_names[predictions[index]]}")
        axes.set_title(title, fontsize=9, color="black" if labels[index] == predictions[index] else "red")
    if heading:
        figure.suptitle(heading)
    figure.tight_layout()
    _save(figure, path)


def save_training_plots(model, history: Sequence[dict[str, Any]], x_test: np.ndarray, y_test: np.ndarray,
                        directory: str | Path, class_names: Sequence[str] = MNIST_CLASSES) -> list[Path]:
    """Draw every picture of the module docstring into ``directory`` (made with the first
    picture, if missing; ``class_names`` title the images: the digits, or Fashion-MNIST's
    clothes); returns the paths. A picture that cannot be written raises OSError naming its
    file; the ones before it are written."""
    directory = Path(directory)
    logits = predict(model, x_test)
    predictions = logits.argmax(axis=1)
    written = []
    if history:
        plot_curves(history, directory / "curves.png")
        written.append(directory / "curves.png")

    plot_digit_grid(x_test[:32], y_test[:32], predictions[:32], directory / "predictions.png",
                    class_names=class_names)
    written.append(directory / "predictions.png")

    confidence = softmax(logits).max(axis=1)
    wrong = np.flatnonzero(predictions != y_test)
    worst = wrong[np.argsort(-confidence[wrong])][:32]
    titles = [f"True: {class_names[y_test[i]]}  Pred: {class_names[predictions[i]]} ({100 * confidence[i]:.0f}%)"
              for i in worst]
    plot_digit_grid(x_test[worst], y_test[worst], predictions[worst], directory / "mistakes.png", titles,
                    heading=f"The most confident mistakes ({len(wrong)} of {len(y_test)} test images wrong)")
    written.append(directory / "mistakes.png")

    if draws_convolutions(model):
        written.append(plot_conv1_filters(model, directory / "conv1_filters.png"))
        written.append(plot_feature_maps(model, x_test[0], directory / "feature_maps.png", label=int(y_test[0])))
    return written
