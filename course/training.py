"""A long training run that survives a disconnect, and the record of it that the model file carries.

Introduced in ``08_cifar_challenge``, whose training takes up to 30 minutes. Keras'
own ``keras.callbacks.BackupAndRestore`` saves the weights, the optimizer and the
epoch after every epoch and, when ``fit`` is called again after a crash or a
disconnect, goes on from the last finished epoch. :class:`TrainingClock` does the
same for the time spent training, so that the time the capstone's rules limit
counts every session's epochs, not only the last session's. :func:`backup_folder`
picks where both are kept: Google Drive when it is mounted on Colab (a recycled
Colab machine loses its own disk), a folder beside the notebook otherwise.

:func:`record` is what the capstone's model file says about its training (epochs,
minutes, the device, which training images): ``course.modelfile.save(model, path,
record=...)`` stores it in the file, and the grader's leaderboard reads it back. It is
what the student's session reports, not a proof: the leaderboard shows it beside the
accuracy the grader measured itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import keras  # a Keras callback is a subclass: this module is imported by notebooks that train

DRIVE = Path("/content/drive/MyDrive")  # where Colab mounts Google Drive (google.colab.drive.mount)
CLOCK_FILE = "course-clock.json"


def backup_folder(name: str) -> Path:
    """Where ``BackupAndRestore`` and :class:`TrainingClock` keep ``name``'s progress: on Google Drive when it
    is mounted (Colab), else ``<name>-backup`` beside the notebook."""
    if DRIVE.is_dir():
        return DRIVE / "cnn-course-backup" / name
    return Path(f"{name}-backup")


class TrainingClock(keras.callbacks.Callback):
    """Seconds and epochs of training, kept in ``folder`` after each epoch and read back when ``fit`` starts
    again there (after ``BackupAndRestore`` resumed it): ``seconds`` and ``epochs`` count every session's.

    Give it the same folder as ``BackupAndRestore``, after it in ``callbacks``. A run that ends normally
    leaves nothing behind (``BackupAndRestore`` removes its folder; this removes its own file)."""

    def __init__(self, folder: Path | str) -> None:
        super().__init__()
        self.path = Path(folder) / CLOCK_FILE
        self.seconds = 0.0
        self.epochs = 0
        self._started = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.seconds, self.epochs = 0.0, 0
        try:
            kept = json.loads(self.path.read_text())
            self.seconds, self.epochs = float(kept["seconds"]), int(kept["epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a first run, or nothing usable kept: start from zero
        if self.epochs:
            print(f"Resuming: {self.epochs} epoch(s) and {self.seconds / 60:.1f} minutes of training were done before.")
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        self.seconds += now - self._started
        self._started = now
        self.epochs = epoch + 1  # Keras counts from the epoch BackupAndRestore resumed at
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"seconds": self.seconds, "epochs": self.epochs}))
        os.replace(temporary, self.path)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.path.unlink(missing_ok=True)


def labels_digest(labels: Any) -> str:
    """SHA-256 of the training labels in order: which images of the dataset, in which split, were trained on
    (the labels are the same in every copy of a dataset; the pixels of the offline JPEG copy are not)."""
    import numpy as np

    return hashlib.sha256(np.asarray(labels).reshape(-1).astype("<i8").tobytes()).hexdigest()


def device() -> str:
    """``"GPU: <its name>"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"GPU: {details.get('device_name') or gpus[0].name}"
    except Exception:  # another backend, or no TensorFlow: the CPU is what we can say
        pass
    return "CPU"


def record(epochs: int, seconds: float, train_labels: Any) -> dict[str, Any]:
    """What a model file says about its training: epochs, minutes, the device and its cores, how many
    training images, and :func:`labels_digest` of their labels."""
    return {
        "epochs": int(epochs),
        "minutes": round(float(seconds) / 60, 2),
        "device": device(),
        "cpu_cores": os.cpu_count(),
        "train_images": int(len(train_labels)),
        "train_labels_sha256": labels_digest(train_labels),
        "keras": keras.__version__,
    }
