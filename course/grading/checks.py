"""Hidden tests' measurements of a student's model, taken outside the student's kernel.

A student's code runs in the same kernel as the tests that grade it, so it can
redefine anything a test would call there: ``Model.count_params``,
``Model.evaluate``, the test-set variables, ``numpy.mean``. The hidden tests
of 02_mnist_mlp (where this is introduced) and of every later training
notebook therefore save the model to a file and measure it with
:func:`fresh_report`: a new Python process (``python -I``, which also ignores
files a student put beside the notebook) loads the file and the test set
itself and reports the parameter count, the layers and the test accuracy.

Under ``course grade`` the hidden tests run in the judge (course/grading/judge.py), where
no student code runs: there the measurement is taken in the judge's own process,
which saves starting a fresh Python for every check.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from collections.abc import Iterator, Sequence
from typing import Any

TIMEOUT_SECONDS = 300
# Test images per forward pass when the judge measures a model. On the grading machines' CPUs (one
# TensorFlow thread per worker) 32 beat 500 by 12-18% over CIFAR-10's 10,000 test images, twice each:
# 06's VGG 21.5 s against 24.4 s, 05's wide model 7.4 against 8.9, 08's 11.9 against 13.5 (AMD EPYC,
# AVX2, 2026-12-03); it also holds a tenth of the activations in memory.
MEASURE_BATCH = 32


Standardization = tuple[Sequence[float], Sequence[float]]

# In the judge (course/grading/judge.py): the model files submitted with the notebook, name -> a private copy of
# the bytes the grader read before the student's kernel started (course.grading.preprocessors.submitted_model_files).
# A name that maps to ``None`` was submitted past the grader's limits. ``None`` elsewhere: a file is read where it lies.
SUBMITTED_FILES: dict[str, Path | None] | None = None


def submitted_file(path: Path) -> Path | None:
    """Where to read the model file a student submitted as ``path``, or ``None`` when none was submitted.

    In the judge it is the grader's copy of the file as submitted, looked up by name, so that a notebook
    which deletes or rewrites its model file while it runs is graded on what it submitted (deleting it once
    lowered the accuracy threshold to the grading budget's). Elsewhere it is ``path`` itself. A file submitted
    past the grader's limits is an ``AssertionError``: its test fails, rather than grading as if there were none.
    Introduced in ``02_mnist_mlp``."""
    if SUBMITTED_FILES is not None:
        name = Path(path).name
        if name in SUBMITTED_FILES and SUBMITTED_FILES[name] is None:
            raise AssertionError(f"the model file {name} was not graded: the submission's model files are past the "
                                 "grader's limits on their number and size")
        return SUBMITTED_FILES.get(name)
    return Path(path) if Path(path).is_file() else None


def fresh_report(model: Any, dataset: str | None = None, standardize: Standardization | None = None) -> dict[str, Any]:
    """Save ``model`` and measure it in a fresh Python: ``params``, ``layers``, ``input_shape``,
    ``output_shape`` and, given ``dataset`` ("mnist", "fashion_mnist", "cifar10"), ``accuracy`` on its test set.

    ``standardize=(mean, std)``: the model expects ``(pixels / 255 - mean) / std`` per channel
    (``06_normalization_optimizers``) instead of ``pixels / 255``."""
    from course.grading import wire

    # wire.PRIVATE_TMP: in the judge, tempfile's folder is one the kernel shares.
    with tempfile.TemporaryDirectory(prefix="course-check-", dir=wire.PRIVATE_TMP) as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return _report_of_file(path, dataset, standardize)


def file_report(path: Path, dataset: str | None = None, standardize: Standardization | None = None) -> dict[str, Any]:
    """Measure the model file submitted as ``path`` (:func:`submitted_file`) in a fresh Python, as
    :func:`fresh_report` does.

    Introduced in ``08_cifar_challenge``, whose submissions include the trained model file.
    No such file, or one that Keras cannot load, raises ``RuntimeError`` saying which."""
    found = submitted_file(path)
    if found is None:
        raise RuntimeError(f"no model file {Path(path).name} was submitted with the notebook")
    return _report_of_file(found, dataset, standardize)


def _report_of_file(path: Path, dataset: str | None, standardize: Standardization | None) -> dict[str, Any]:
    if os.environ.get("COURSE_JUDGE") == "1":  # the judge: no student code in this process
        try:
            return measure(Path(path), dataset, standardize)
        except Exception as error:
            raise RuntimeError(f"the saved model could not be measured: {type(error).__name__}: {error}") from None
    command = [sys.executable, "-I", "-m", "course.grading.checks", str(path), *([dataset] if dataset else [])]
    if standardize is not None:
        mean, std = standardize
        command += ["--standardize", json.dumps([[float(v) for v in mean], [float(v) for v in std]])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise RuntimeError(f"the saved model could not be measured: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def checked_copy(path: Path) -> Iterator[Path]:
    """A private copy of the model file at ``path`` whose configuration names only Keras' own classes
    (:func:`course.grading.wire.check_keras_file`): what is loaded is the bytes checked, whatever happens to
    ``path`` meanwhile. In the judge the copy lies where the student's kernel cannot reach."""
    from course.grading import wire

    checked = Path(path).read_bytes()
    wire.check_keras_file(checked)
    with tempfile.TemporaryDirectory(dir=wire.PRIVATE_TMP) as private:
        copy = Path(private) / "model.keras"
        copy.write_bytes(checked)
        yield copy


def load_checked(path: Path) -> tuple[Any, dict[str, Any] | None]:
    """The model in the file at ``path`` and its training record (:func:`course.modelfile.read_record`), both read
    from one :func:`checked_copy`: uncompiled, in Keras' safe mode. Raises what Keras or the check raise."""
    import keras

    from course import modelfile

    with checked_copy(path) as copy:
        return keras.saving.load_model(copy, compile=False, safe_mode=True), modelfile.read_record(copy.read_bytes())


def measure(path: Path, dataset: str | None, standardize: Standardization | None = None) -> dict[str, Any]:
    """Load the model file and the test set, and measure: runs in the fresh process."""
    model, training = load_checked(path)
    return measure_loaded(model, training, dataset, standardize)


def measure_loaded(model: Any, training: dict[str, Any] | None, dataset: str | None,
                   standardize: Standardization | None = None) -> dict[str, Any]:
    """:func:`measure` of a model already loaded from a checked file (``training``: its record, if any)."""
    import numpy as np

    from course import data

    report: dict[str, Any] = {
        "params": int(model.count_params()),
        "layers": [type(layer).__name__ for layer in model.layers],
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
    }
    if training is not None:  # the capstone's record of its training (course/training.py)
        report["training"] = training
    if dataset:
        _, (images, labels) = getattr(data, dataset)()
        x = (images.astype(np.float32) / 255.0).reshape((len(images), *model.input_shape[1:]))
        if standardize is not None:
            mean, std = (np.asarray(v, np.float32) for v in standardize)
            x = (x - mean) / std
        predicted = np.asarray(model.predict(x, batch_size=MEASURE_BATCH, verbose=0)).argmax(axis=-1)
        report["accuracy"] = float(np.mean(predicted == labels.reshape(-1)))
    return report


# The settings that make two layers the same layer (names, seeds and dtypes aside).
ARCHITECTURE_SETTINGS = ("units", "filters", "kernel_size", "strides", "padding", "activation", "use_bias", "rate",
                         "pool_size", "momentum", "epsilon", "axis", "data_format", "factor", "height_factor",
                         "width_factor", "mode")


def architecture(model: Any) -> list[tuple[Any, ...]]:
    """What a model is, layer by layer: class, output shape, parameter count and the settings in
    :data:`ARCHITECTURE_SETTINGS`; an ``InputLayer`` counts only through the shapes it gives.

    Two models with equal architectures differ only in their weights (and layer names): the
    accuracy test of ``02_mnist_mlp`` compares the submitted model file with the student's own
    build function this way, so a model from elsewhere earns nothing."""
    import keras

    described = [("input", tuple(model.input_shape))]
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        config = layer.get_config()
        settings = tuple((key, json.dumps(config[key], sort_keys=True, default=str)) for key in ARCHITECTURE_SETTINGS
                         if key in config)
        described.append((type(layer).__name__, tuple(layer.output.shape), int(layer.count_params()), settings))
    return described


def submitted_report(path: Path, built: Any, dataset: str | None = None,
                     standardize: Standardization | None = None) -> dict[str, Any] | None:
    """Measure the model file a student submitted, as :func:`file_report` does, adding ``same_architecture``:
    whether it holds the network ``built`` (the student's own build function's model) has. ``None`` when
    there is no file Keras can load: the notebook then trained under the grading budget.
    Introduced in ``02_mnist_mlp``."""
    found = submitted_file(path)
    if found is None:
        return None
    try:
        if os.environ.get("COURSE_JUDGE") == "1":  # the judge measures the model it has just loaded
            model, training = load_checked(found)
            report = measure_loaded(model, training, dataset, standardize)
        else:
            with checked_copy(found) as copy:  # one copy for both: the file cannot change between them
                model, _ = load_checked(copy)
                report = _report_of_file(copy, dataset, standardize)
    except Exception:  # a file Keras cannot load counts as no file
        return None
    report["same_architecture"] = architecture(model) == architecture(built)
    return report


def pixel_scaling(prepared: Any, images: Any) -> Standardization | None:
    """How the student's own preprocessing scales pixels, as ``standardize`` for :func:`graded_accuracy`.

    ``prepared`` is the student's preprocessing of ``images`` (uint8 pixels; any shape holding the same
    number of values). When it is one of the maps a mistake gives (:data:`MISTAKEN_SCALINGS`: unscaled
    pixels, ``/ 256``, centred values), the answer ``([mean], [std])`` makes the measurement feed the model
    ``(pixels / 255 - mean) / std``, which is exactly that; otherwise (``pixels / 255``, or anything else)
    ``None``: the test images are ``pixels / 255``.

    So a model trained on what the student's preprocessing gives is measured on the same kind of input:
    a scaling mistake costs the preprocessing exercise its points, and not the accuracy test's too (a model
    trained on raw pixels scores about 10% on ``pixels / 255``). Introduced in ``02_mnist_mlp``."""
    import numpy as np

    try:
        pixels = np.asarray(images, dtype=np.float64).ravel()
        values = np.asarray(prepared, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    if pixels.size != values.size or pixels.size < 2 or np.ptp(pixels) == 0 or not np.all(np.isfinite(values)):
        return None
    slope, offset = np.polyfit(pixels, values, 1)
    if not (np.isfinite(slope) and np.isfinite(offset) and slope > 0):
        return None
    size = abs(slope) * 255 + abs(offset)
    if not np.allclose(values, slope * pixels + offset, rtol=0, atol=1e-4 * size):
        return None
    if np.isclose(slope * 255, 1.0, rtol=1e-5, atol=0) and abs(offset) <= 1e-6:
        return None  # pixels / 255: measured as it always was
    known = [(slope_, offset_) for slope_, offset_ in MISTAKEN_SCALINGS.values()
             if np.isclose(slope, slope_, rtol=1e-4, atol=0) and np.isclose(offset, offset_, rtol=0, atol=1e-4)]
    if not known:
        return None  # no mistake gives this map: a rescaling tuned to the test set is measured on pixels / 255
    slope, offset = known[0]
    std = 1.0 / (255.0 * slope)
    return [float(-offset * std)], [float(std)]


# The scalings :func:`pixel_scaling` takes for a mistake, ``pixels * slope + offset``. Any other map is measured on
# ``pixels / 255``, as a correct preprocessing is: the red team's ``1.7 * pixels / 255``, returned only for the
# accuracy test's call, tuned a model's inputs to the test set (97.23% became 97.31%).
MISTAKEN_SCALINGS = {
    "raw pixels": (1.0, 0.0),
    "divided by 256": (1 / 256, 0.0),
    "divided by 127.5": (1 / 127.5, 0.0),
    "from -1 to 1": (2 / 255, -1.0),
    "from -0.5 to 0.5": (1 / 255, -0.5),
    "standardized with MNIST's mean and standard deviation": (1 / (255 * 0.3081), -0.1307 / 0.3081),
}


def graded_accuracy(path: Path, built: Any, trained: Any, dataset: str, full: float, grading: float,
                    standardize: Standardization | None = None) -> tuple[float, float, str]:
    """The accuracy a hidden test grades, its threshold, and which model it was: ``(accuracy, threshold, what)``.

    The submitted model file at ``path`` when Keras can load it: it must hold the network ``built`` (the
    student's own build function's model) has, and meets the ``full`` budget's threshold. A failed requirement
    is an ``AssertionError`` that says which. Introduced in ``02_mnist_mlp``; README, "Grading the model the
    student trained".

    Without such a file, grading a submission (in the judge) fails the test: whatever model the student's kernel
    holds, nothing shows where it came from (a weaker file under another name, weights pasted into the notebook,
    or the grading budget's own training, which would give the points to a student who never trained). Elsewhere
    (CI's nbval, a student's own run of the source notebook) the model the notebook trained, ``trained()``, is
    measured instead, with the threshold of the budget that ran (``grading``, or ``full``)."""
    import keras

    from course import budget

    report = submitted_report(path, built, dataset, standardize)
    if report is not None:
        assert report["same_architecture"], f"the model file {Path(path).name} does not hold the network your build function builds"
        threshold, what = full, f"the model file you submitted ({Path(path).name}, full budget)"
    else:
        assert os.environ.get("COURSE_JUDGE") != "1", (
            f"no model file {Path(path).name} that Keras can load was submitted: the accuracy points are measured on "
            "the file your notebook saves when it trains with the full budget; submit it with the notebook")
        model = trained()
        assert isinstance(model, keras.Model), "model must be the trained Keras model"
        assert architecture(model) == architecture(built), "the trained model is not the network your build function builds"
        report = fresh_report(model, dataset, standardize)
        name = budget.active_name()
        threshold = {"full": full, "grading": grading}[name]
        what = f"the model this run trained ({name} budget; no usable model file)"
    assert report["output_shape"] == [None, 10], "the model must output 10 probabilities per image"
    return report["accuracy"], threshold, what


def cifar10_train_statistics() -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of ``pixels / 255`` over CIFAR-10's training split.

    The split of ``05_cifar_cnn``, ``05b_cifar_wide`` and ``06_normalization_optimizers``: ``train_test_split(...,
    test_size=0.2, random_state=9)`` of the 50,000 training images, the 40,000 it keeps for training.
    Hidden tests compare the student's statistics with these and standardize the test set with them.
    Computed once per process (the judge grades several cells that ask)."""
    mean, std = _cifar10_train_statistics()
    return list(mean), list(std)


@functools.lru_cache(maxsize=1)
def _cifar10_train_statistics() -> tuple[tuple[float, ...], tuple[float, ...]]:
    import numpy as np
    from sklearn.model_selection import train_test_split

    from course import data

    (images, _), _ = data.cifar10()
    # The split depends on the number of images and the seed only, so splitting their indices picks the same
    # 40,000. Pixels are uint8: counting each value per channel gives the float64 mean and standard deviation
    # of pixels / 255 exactly, in a fraction of the time converting 123 million values to floats takes
    # (seconds, for every judge of 05 and 06). Counted 2,000 images at a time, the copies stay small.
    kept, _ = train_test_split(np.arange(len(images)), test_size=0.2, random_state=9)
    kept = np.sort(kept)
    counts = np.zeros((images.shape[-1], 256))
    for start in range(0, len(kept), 2000):
        block = images[kept[start:start + 2000]].reshape(-1, images.shape[-1])
        for channel in range(images.shape[-1]):
            counts[channel] += np.bincount(block[:, channel], minlength=256)
    values = np.arange(256) / 255.0
    means = counts @ values / counts.sum(axis=1)
    stds = np.sqrt((counts * (values - means[:, None]) ** 2).sum(axis=1) / counts.sum(axis=1))
    return tuple(means.tolist()), tuple(stds.tolist())


def _main() -> None:
    parser = argparse.ArgumentParser(description="Measure a saved Keras model (run by the hidden tests).")
    parser.add_argument("path", type=Path)
    parser.add_argument("dataset", nargs="?")
    parser.add_argument("--standardize", type=json.loads, help="[[means], [stds]] per channel")
    args = parser.parse_args()
    print(json.dumps(measure(args.path, args.dataset, args.standardize)))


if __name__ == "__main__":
    _main()
