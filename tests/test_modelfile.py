"""course.modelfile: the capstone's submitted model file, loaded instead of retrained."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from course import modelfile


def test_a_saved_model_loads_and_predicts_as_before(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path / "08_cifar_challenge.keras"
    model.save(path)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(modelfile.load(path).predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_missing_file_says_what_to_submit(tmp_path):
    with pytest.raises(modelfile.ModelFileError, match=r"No trained model file 08_cifar_challenge.keras .* submit"):
        modelfile.load(tmp_path / "08_cifar_challenge.keras")


def test_a_corrupt_file_says_to_save_it_again(tmp_path):
    path = tmp_path / "08_cifar_challenge.keras"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(modelfile.ModelFileError, match=r"not a model file Keras can load .* model.save\('08_cifar_challenge.keras'\)"):
        modelfile.load(path)
