"""The trainer's pictures (examples/mnist.py --plots DIR), drawn headless with matplotlib.

* ``curves.png``: test accuracy and average training loss per epoch;
* ``predictions.png``: the seed's grid of 32 test digits titled "True: t  Pred: p";
* ``mistakes.png``: the test digits the model got wrong with the highest confidence;
* ``conv1_filters.png``: the 16 learned 3x3 filters of the first convolution (CNN only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: files only, no window
    import matplotlib.pyplot as pyplot

    return pyplot


def _softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


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
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def plot_digit_grid(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, path: Path,
                    titles: Sequence[str] | None = None, heading: str = "") -> None:
    """Up to 32 digits in a 4x8 grid, each titled "True: t  Pred: p" (red when wrong)."""
    pyplot = _pyplot()
    figure, grid = pyplot.subplots(4, 8, figsize=(14, 8))
    for index, axes in enumerate(grid.flat):
        axes.axis("off")
        if index >= len(images):
            continue
        axes.imshow(images[index, 0], cmap="gray_r")
        title = titles[index] if titles is not None else f"True: {labels[index]}  Pred: {predictions[index]}"
        axes.set_title(title, fontsize=9, color="black" if labels[index] == predictions[index] else "red")
    if heading:
        figure.suptitle(heading)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    pyplot.close(figure)


def plot_conv1_filters(model, path: Path) -> None:
    """The first convolution's 16 filters (3x3 each), one colour scale shared by all."""
    pyplot = _pyplot()
    weights = model.conv1.weight.data[:, 0]
    limit = float(np.abs(weights).max()) or 1.0
    figure, grid = pyplot.subplots(2, 8, figsize=(12, 3.4))
    for index, axes in enumerate(grid.flat):
        image = axes.imshow(weights[index], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes.set_title(f"filter {index}", fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.colorbar(image, ax=grid.ravel().tolist(), shrink=0.8)
    figure.suptitle("conv1: the 16 learned 3x3 filters")
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def save_training_plots(model, history: Sequence[dict[str, Any]], x_test: np.ndarray, y_test: np.ndarray,
                        directory: str | Path) -> list[Path]:
    """Draw every picture of the module docstring into ``directory``; returns the paths."""
    from tinygrad_cnn import no_grad

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with no_grad():
        logits = np.concatenate([model(x_test[start:start + 1000]).data for start in range(0, len(x_test), 1000)])
    predictions = logits.argmax(axis=1)
    written = []
    if history:
        plot_curves(history, directory / "curves.png")
        written.append(directory / "curves.png")

    plot_digit_grid(x_test[:32], y_test[:32], predictions[:32], directory / "predictions.png")
    written.append(directory / "predictions.png")

    confidence = _softmax(logits).max(axis=1)
    wrong = np.flatnonzero(predictions != y_test)
    worst = wrong[np.argsort(-confidence[wrong])][:32]
    titles = [f"True: {y_test[i]}  Pred: {predictions[i]} ({100 * confidence[i]:.0f}%)" for i in worst]
    plot_digit_grid(x_test[worst], y_test[worst], predictions[worst], directory / "mistakes.png", titles,
                    heading=f"The most confident mistakes ({len(wrong)} of {len(y_test)} test images wrong)")
    written.append(directory / "mistakes.png")

    if hasattr(model, "conv1"):
        plot_conv1_filters(model, directory / "conv1_filters.png")
        written.append(directory / "conv1_filters.png")
    return written
