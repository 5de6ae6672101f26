"""course.training: a run interrupted mid-way goes on from its last epoch, and its minutes and epochs add up."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from course import training


class Disconnect(keras.callbacks.Callback):
    """Stands in for a dropped connection: raises after ``epochs`` epochs."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.after = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt("connection lost")


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_an_interrupted_run_resumes_at_its_last_epoch_and_counts_both_sessions(tmp_path, capsys):
    x, y = np.ones((16, 4), np.float32), np.zeros(16)
    backup = tmp_path / "backup"
    first = training.TrainingClock(backup)
    with pytest.raises(KeyboardInterrupt):
        _model().fit(x, y, epochs=5, verbose=0,
                     callbacks=[keras.callbacks.BackupAndRestore(backup), first, Disconnect(2)])
    kept = json.loads((backup / training.CLOCK_FILE).read_text())
    assert kept["epochs"] == 2 and kept["seconds"] == first.seconds > 0

    second = training.TrainingClock(backup)  # the cell run again, with a model built anew
    history = _model().fit(x, y, epochs=5, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(backup), second])
    assert history.epoch == [2, 3, 4]  # the three epochs left, not five
    assert second.epochs == 5 and second.seconds > first.seconds
    assert "Resuming: 2 epoch(s)" in capsys.readouterr().out
    assert not (backup / training.CLOCK_FILE).exists()  # a finished run leaves its clock behind


def test_a_first_run_starts_from_zero(tmp_path):
    clock = training.TrainingClock(tmp_path / "backup")
    _model().fit(np.ones((8, 4), np.float32), np.zeros(8), epochs=2, verbose=0, callbacks=[clock])
    assert clock.epochs == 2 and clock.seconds > 0


def test_the_backup_goes_to_google_drive_when_it_is_mounted(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "DRIVE", tmp_path / "MyDrive")
    assert training.backup_folder("08_cifar_challenge") == training.Path("08_cifar_challenge-backup")
    (tmp_path / "MyDrive").mkdir()
    assert training.backup_folder("08_cifar_challenge") == tmp_path / "MyDrive" / "cnn-course-backup" / "08_cifar_challenge"


def test_the_record_says_what_the_rules_ask():
    labels = np.array([3, 1, 4, 1, 5])
    record = training.record(20, 1146.0, labels)
    assert record["epochs"] == 20 and record["minutes"] == 19.1 and record["device"] == "CPU"
    assert record["train_images"] == 5
    assert record["train_labels_sha256"] == training.labels_digest(labels.reshape(-1, 1))  # a column: the same labels
    assert record["train_labels_sha256"] != training.labels_digest(labels[::-1])
