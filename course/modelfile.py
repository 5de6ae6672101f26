"""The trained model file a submission includes, graded instead of retrained.

The capstone (``08_cifar_challenge``) trains for up to 30 minutes, and the grader
does not repeat that: the notebook saves the trained model beside itself, the
student submits the file with the notebook, and under the grading budget the
notebook loads the file instead of training. The hidden tests measure the same
file outside the student's kernel (:func:`course.grading.checks.file_report`).

``02_mnist_mlp`` to ``07_batchnorm_functional`` do the same (:func:`save`,
:func:`submitted`): without a usable file, the notebook trains under the grading
budget so that the rest of it runs, and the accuracy test fails (nothing shows
where a model the notebook holds came from).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

# The capstone's model file also holds what its training was (course/training.py, ``record``).
RECORD_ENTRY = "course-training.json"
MAX_RECORD_BYTES = 16_384


class ModelFileError(Exception):
    """The submitted model file is missing or Keras cannot load it."""


NO_FILE_CONSEQUENCE = "Without it the accuracy tests score 0; the rest of the notebook is graded as usual."


def load(path: Path, consequence: str = NO_FILE_CONSEQUENCE) -> Any:
    """Load the trained model saved at ``path``; a missing or unreadable file is a :class:`ModelFileError`
    that says what to do, and then ``consequence``. The model is returned uncompiled: use ``predict``."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"No trained model file {path.name} beside this notebook. Run the notebook with the full budget "
            f"(the training cell saves the file), then submit {path.name} together with the notebook. {consequence}")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds: zip, JSON, h5, deserialization
        raise ModelFileError(
            f"{path.name} is not a model file Keras can load ({type(error).__name__}: {error}). "
            f"Save it again with model.save({path.name!r}) and submit the new file. {consequence}") from error


def save(model: Any, path: Path | str, record: dict[str, Any] | None = None) -> Path:
    """Save ``model`` to ``path`` for grading: architecture and weights, without the optimizer's state
    (a third of the size for Adam, and nothing the grader needs). Introduced in ``02_mnist_mlp``.

    ``record`` (``08_cifar_challenge``: :func:`course.training.record`) is stored in the file beside the
    model, as JSON that Keras does not read and :func:`read_record` gives back."""
    path = Path(path)
    copy = type(model).from_config(model.get_config())  # uncompiled (clone_model keeps the compilation)
    copy.set_weights(model.get_weights())
    copy.save(path)
    if record is not None:
        add_record(path, record)
    print(f"Saved {path.name} ({path.stat().st_size / 1e6:.1f} MB): submit it together with this notebook.")
    return path


def submitted(path: Path) -> Any | None:
    """Under grading: the trained model the student submitted at ``path``, or ``None`` (with the reason
    printed) when there is none Keras can load: the notebook then trains under the grading budget so that the
    rest of it runs, and the accuracy test fails.
    Introduced in ``02_mnist_mlp``."""
    try:
        model = load(path, consequence="The notebook trains under the grading budget so that the rest of it runs, "
                                       "but the accuracy test needs the file: submit it with the notebook.")
    except ModelFileError as error:
        print(f"Grading without your model file: {error}")
        return None
    print(f"Grading the model you trained and submitted ({Path(path).name}): nothing is retrained.")
    return model


def add_record(path: Path | str, record: dict[str, Any]) -> None:
    """Store ``record`` in the model file at ``path``, as :func:`save` does and :func:`read_record` reads it."""
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(RECORD_ENTRY, json.dumps(record, sort_keys=True))


def read_record(data: bytes) -> dict[str, Any] | None:
    """The training record a model file's bytes hold (:func:`save`'s ``record``), as plain JSON data: a dict of
    numbers and short strings; ``None`` when the file has none, or one that is not such a dict."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo(RECORD_ENTRY)
            if info.file_size > MAX_RECORD_BYTES:
                return None
            record = json.loads(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError):  # RecursionError: JSON nested too deep
        return None
    if not isinstance(record, dict):
        return None
    return {str(key)[:64]: value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)[:200]
            for key, value in list(record.items())[:32]}
