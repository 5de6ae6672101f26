"""Hidden tests' measurements of a student's model, taken outside the student's kernel.

A student's code runs in the same kernel as the tests that grade it, so it can
redefine anything a test would call there: ``Model.count_params``,
``Model.evaluate``, the test-set variables, ``numpy.mean``. The hidden tests
of 02_mnist_mlp (where this is introduced) and of every later training
notebook therefore save the model to a file and measure it with
:func:`fresh_report`: a new Python process (``python -I``, which also ignores
files a student put beside the notebook) loads the file and the test set
itself and reports the parameter count, the layers and the test accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 300


def fresh_report(model: Any, dataset: str | None = None) -> dict[str, Any]:
    """Save ``model`` and measure it in a fresh Python: ``params``, ``layers``, ``input_shape``,
    ``output_shape`` and, given ``dataset`` ("mnist", "fashion_mnist", "cifar10"), ``accuracy`` on its test set."""
    with tempfile.TemporaryDirectory(prefix="course-check-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        command = [sys.executable, "-I", "-m", "course.checks", str(path), *([dataset] if dataset else [])]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise RuntimeError(f"the saved model could not be measured: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(path: Path, dataset: str | None) -> dict[str, Any]:
    """Load the model file and the test set, and measure: runs in the fresh process."""
    import keras
    import numpy as np

    from course import data

    model = keras.saving.load_model(path, compile=False)
    report: dict[str, Any] = {
        "params": int(model.count_params()),
        "layers": [type(layer).__name__ for layer in model.layers],
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
    }
    if dataset:
        _, (images, labels) = getattr(data, dataset)()
        x = (images.astype(np.float32) / 255.0).reshape((len(images), *model.input_shape[1:]))
        predicted = np.asarray(model.predict(x, batch_size=500, verbose=0)).argmax(axis=-1)
        report["accuracy"] = float(np.mean(predicted == labels.reshape(-1)))
    return report


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)))
