"""The trained model file that a submission of ``08_cifar_challenge`` includes.

The capstone trains for up to 30 minutes, and the grader does not repeat that: the
notebook saves the trained model beside itself, the student submits the file with
the notebook, and under the grading budget the notebook loads the file instead of
training. The hidden tests measure the same file in a fresh Python
(:func:`course.checks.file_report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ModelFileError(Exception):
    """The submitted model file is missing or Keras cannot load it."""


def load(path: Path) -> Any:
    """Load the trained model saved at ``path``; a missing or unreadable file is a :class:`ModelFileError`
    that says what to do. The model is returned uncompiled: use ``predict``."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"No trained model file {path.name} beside this notebook. Run the notebook with the full budget "
            f"(the training cell saves the file), then submit {path.name} together with the notebook. "
            "Without it the accuracy tests score 0; the rest of the notebook is graded as usual.")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds: zip, JSON, h5, deserialization
        raise ModelFileError(
            f"{path.name} is not a model file Keras can load ({type(error).__name__}: {error}). "
            f"Save it again with model.save({path.name!r}) and submit the new file. "
            "Without a loadable file the accuracy tests score 0; the rest of the notebook is graded as usual.") from error
