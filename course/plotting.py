"""Pictures the notebooks show again and again."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class SeedSpread:
    """One setting of a sweep run with several seeds: per epoch, the mean, lowest and highest value."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def seed_spread(runs: Sequence[object], metric: str) -> SeedSpread:
    """The spread of ``metric`` over the seeds of one setting, epoch by epoch.

    Introduced in ``06_normalization_optimizers``. ``runs`` holds one ``History`` (or its
    ``.history`` dict) per seed, all trained for the same number of epochs.
    """
    if not runs:
        raise ValueError("no runs: train the setting with at least one seed")
    curves = []
    for index, history in enumerate(runs):
        values = getattr(history, "history", history)
        if metric not in values:
            raise KeyError(f"run {index} has no {metric!r}; it has {sorted(values)}")
        curves.append(np.asarray(values[metric], dtype=np.float64))
    lengths = sorted({len(curve) for curve in curves})
    if len(lengths) > 1:
        raise ValueError(f"the seeds' runs have different numbers of epochs: {lengths}; train each for the same")
    stacked = np.stack(curves)
    return SeedSpread(stacked.mean(axis=0), stacked.min(axis=0), stacked.max(axis=0))


def plot_sweep(sweep: dict[object, Sequence[object]], metric: str = "val_accuracy",
               setting_name: str = "setting") -> Figure | None:
    """A sweep over several seeds: each setting's curve with its seeds' spread, and where each one ended.

    Introduced in ``06_normalization_optimizers``. ``sweep`` maps a setting (a dropout rate,
    an optimizer's name) to one run per seed (``History`` objects or their ``.history``
    dicts). Left: ``metric`` per epoch, the seeds' mean as a line and the band between
    their lowest and highest value. Right: the last epoch's mean per setting, with a bar
    from the lowest to the highest seed; numeric settings sit on a number line, others side
    by side. Where two settings' bands overlap, these seeds cannot rank them.

    A setting given as ``None`` did not run in this session (as in :func:`plot_history`):
    it is left out, and with nothing left nothing is drawn and ``None`` is returned.
    """
    spreads = {setting: seed_spread(runs, metric) for setting, runs in sweep.items() if runs is not None}
    if not spreads:
        return None
    seeds = sorted({len(runs) for runs in sweep.values() if runs is not None})
    fig, (curves, ends) = plt.subplots(1, 2, figsize=(11, 3.8))
    for index, (setting, spread) in enumerate(spreads.items()):
        colour = f"C{index}"
        epochs = np.arange(1, len(spread.mean) + 1)
        curves.plot(epochs, spread.mean, color=colour, marker="o", markersize=3, label=f"{setting_name} {setting}")
        curves.fill_between(epochs, spread.low, spread.high, color=colour, alpha=0.2)
    curves.set(xlabel="epoch", ylabel=metric)
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8)
    settings = list(spreads)
    numeric = all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in settings)
    positions = np.asarray(settings, dtype=np.float64) if numeric else np.arange(len(settings))
    last = np.array([[spreads[s].mean[-1], spreads[s].low[-1], spreads[s].high[-1]] for s in settings])
    ends.errorbar(positions, last[:, 0], yerr=[last[:, 0] - last[:, 1], last[:, 2] - last[:, 0]],
                  fmt="o-" if numeric else "o", capsize=4, color="k")
    if not numeric:
        ends.set_xticks(positions, [str(s) for s in settings], rotation=15, fontsize=8)
    ends.set(xlabel=setting_name, ylabel=f"{metric}, last epoch")
    ends.grid(alpha=0.3)
    seed_text = " or ".join(str(n) for n in seeds)
    fig.suptitle(f"mean of {seed_text} seeds; band and bars: lowest to highest seed")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class WiringRow:
    """One row of :func:`plot_wiring`: a layer of the model built, of the model meant, or of both.

    ``status`` is ``"same"`` (type, output shape and parameter count agree), ``"differs"``
    (same place, not the same layer), ``"missing"`` (meant, not built) or ``"extra"``
    (built, not meant); a side the row lacks is ``None``.
    """

    built: str | None
    meant: str | None
    status: str


def layer_label(layer: Any) -> str:
    """``"Conv2D 28x28x32, 9,248 parameters"``: a layer's type, output shape (batch left out) and size."""
    shape = tuple(getattr(getattr(layer, "output", None), "shape", ()) or ())[1:]
    size = "x".join("?" if side is None else str(side) for side in shape)
    return f"{type(layer).__name__}{f' {size}' if size else ''}, {layer.count_params():,} parameters"


def wiring_rows(built: Any, meant: Any) -> list[WiringRow]:
    """The layers of two Keras models, aligned by type from input to output (difflib's matching).

    Introduced in ``07_batchnorm_functional``, where a wiring slip silently drops a block:
    a functional model keeps only the layers on a path from its inputs to its outputs,
    so the layers the slip cut off show here as ``"missing"``.
    """
    kinds = [[type(layer).__name__ for layer in model.layers] for model in (built, meant)]
    labels = [[layer_label(layer) for layer in model.layers] for model in (built, meant)]
    rows = []
    matcher = difflib.SequenceMatcher(None, kinds[0], kinds[1], autojunk=False)
    for _, b_start, b_end, m_start, m_end in matcher.get_opcodes():
        for b, m in itertools.zip_longest(labels[0][b_start:b_end], labels[1][m_start:m_end]):
            if b is None:
                rows.append(WiringRow(None, m, "missing"))
            elif m is None:
                rows.append(WiringRow(b, None, "extra"))
            else:
                rows.append(WiringRow(b, m, "same" if b == m else "differs"))
    return rows


_WIRING_STYLE = {  # status: (face colour, edge colour, line style)
    "same": ("#f0f0f0", "#777777", "solid"),
    "differs": ("#fdd49e", "#d95f0e", "solid"),
    "missing": ("white", "#cb181d", "dashed"),
    "extra": ("white", "#2171b5", "dashed"),
}


def plot_wiring(built: Any, meant: Any, names: tuple[str, str] = ("built", "meant")) -> Figure:
    """Two models' layers side by side, input at the top: the model built and the one meant.

    Introduced in ``07_batchnorm_functional`` (rows from :func:`wiring_rows`). A layer of
    the meant model that the built one lacks is a dashed red box in the built column; a
    layer in the same place with another shape or parameter count is orange in both.
    """
    rows = wiring_rows(built, meant)
    fig, ax = plt.subplots(figsize=(11, 0.5 * len(rows) + 1.2))
    ax.set(xlim=(0, 1), ylim=(len(rows) + 0.3, -1.2))
    ax.axis("off")
    for column, (x, name) in enumerate(zip((0.25, 0.75), names)):
        ax.text(x, -0.9, name, ha="center", va="center", fontsize=11, fontweight="bold")
        previous = None
        for index, row in enumerate(rows):
            label = (row.built, row.meant)[column]
            status = row.status
            if label is None:
                if status != "missing" or column != 0:
                    continue
                label = "missing: " + row.meant.split(" ")[0]
            face, edge, style = _WIRING_STYLE[status]
            if status == "missing" and column == 1:
                style = "solid"  # in the meant model the layer is there: only its edge says the other lacks it
            ax.text(x, index, label, ha="center", va="center", fontsize=8.5,
                    bbox={"boxstyle": "round,pad=0.3", "facecolor": face, "edgecolor": edge, "linestyle": style})
            if status == "missing" and column == 0:
                continue  # nothing flows through a layer that is not there
            if previous is not None and index - previous == 1:
                ax.annotate("", xy=(x, index - 0.3), xytext=(x, previous + 0.3),
                            arrowprops={"arrowstyle": "->", "color": "#555555"})
            elif previous is not None:  # an arrow that skips rows goes round the boxes it passes, on the right
                ax.annotate("", xy=(x + 0.12, index - 0.1), xytext=(x + 0.12, previous + 0.1),
                            arrowprops={"arrowstyle": "->", "color": "#cb181d", "connectionstyle": "arc3,rad=-0.45"})
            previous = index
    ax.text(0.5, len(rows) - 0.2, "dashed red: a layer the built model lacks;  orange: the same place, "
            "another output shape or parameter count", ha="center", va="top", fontsize=8.5, color="#555555")
    fig.tight_layout()
    return fig
