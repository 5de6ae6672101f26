"""course.checks: hidden tests measure a model in a fresh Python, out of the student's reach."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from course import checks


def _always_one() -> keras.Model:
    """A (28, 28, 1) -> 10 model that predicts class 1 for every image."""
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    dense = model.layers[-1]
    dense.set_weights([np.zeros((784, 10), np.float32), np.eye(10, dtype=np.float32)[1]])
    return model


def test_parameter_count_and_layers_come_from_the_saved_file_not_this_process(monkeypatch):
    model = _always_one()
    monkeypatch.setattr(keras.Model, "count_params", lambda self: 1)  # what a student might do
    report = checks.fresh_report(model)
    assert report == {"params": 7850, "layers": ["Flatten", "Dense"], "input_shape": [None, 28, 28, 1], "output_shape": [None, 10]}


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_DIR"), reason="needs the MNIST test set (COURSE_DATA_DIR)")
def test_accuracy_is_measured_on_the_test_set_the_fresh_process_loads(monkeypatch):
    monkeypatch.setattr(np, "mean", lambda *args, **kwargs: 0.999)
    monkeypatch.setattr(keras.Model, "predict", lambda self, *args, **kwargs: None)
    assert checks.fresh_report(_always_one(), "mnist")["accuracy"] == 1135 / 10000  # the test set's 1s


def test_a_model_that_cannot_be_saved_is_a_clear_error():
    class Unsaveable:
        def save(self, path):
            path.write_text("not a model")

    with pytest.raises(RuntimeError, match="the saved model could not be measured"):
        checks.fresh_report(Unsaveable())
