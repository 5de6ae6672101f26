"""Pictures the notebooks show again and again."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def show_image_grid(
    images: np.ndarray,
    labels: Sequence[object] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.5,
) -> Figure:
    """Show ``images`` in a grid, each titled with its label (or class name).

    Introduced in ``01_images``, where students first build this grid by hand.
    Grayscale images may be ``(H, W)`` or ``(H, W, 1)`` and are drawn with
    ``cmap="gray"``; colour images are ``(H, W, 3)``. Labels may be integers,
    one-element arrays (CIFAR-10's ``(N, 1)`` labels) or strings.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"expected a batch of images (N, H, W[, C]), got shape {images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    count = len(images)
    ncols = max(1, min(ncols, count))
    nrows = -(-count // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        image = images[index]
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        if labels is not None:
            ax.set_title(_label_text(labels[index], class_names), fontsize=9)
    fig.tight_layout()
    return fig


def _label_text(label: object, class_names: Sequence[str] | None) -> str:
    if isinstance(label, str):
        return label
    value = int(np.asarray(label).reshape(-1)[0])
    return class_names[value] if class_names is not None else str(value)


def plot_history(histories: dict[str, object], metrics: Sequence[str] = ("accuracy", "loss")) -> Figure | None:
    """Training curves: one panel per metric, training (solid) and validation (dashed) per run.

    Introduced in ``02_mnist_mlp``. ``histories`` maps a run's name to what
    ``model.fit`` returned (a ``keras.callbacks.History``) or to its
    ``.history`` dict. Epochs are counted from 1, as Keras prints them.

    A run given as ``None`` did not happen in this session (under grading, a notebook
    that loads the submitted model file trains nothing, ``05_cifar_cnn`` on): it is left
    out, and with no run left nothing is drawn and ``None`` is returned.
    """
    histories = {run: history for run, history in histories.items() if history is not None}
    if not histories:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for index, (run, history) in enumerate(histories.items()):
            values = getattr(history, "history", history)
            if metric not in values:
                raise KeyError(f"{run!r} has no {metric!r}; it has {sorted(values)}")
            colour = f"C{index}"
            epochs = range(1, len(values[metric]) + 1)
            ax.plot(epochs, values[metric], color=colour, label=f"{run} training")
            if f"val_{metric}" in values:
                ax.plot(epochs, values[f"val_{metric}"], color=colour, linestyle="--", label=f"{run} validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
