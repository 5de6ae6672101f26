"""course.modelfile: the capstone's submitted model file, loaded instead of retrained."""

from __future__ import annotations

import io
import zipfile

import h5py
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


def test_a_model_saved_for_grading_has_its_weights_but_not_its_optimizer(tmp_path, capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.ones((8, 4), np.float32), np.zeros(8), verbose=0)
    path = modelfile.save(model, tmp_path / "02_mnist_mlp.keras")
    assert "submit it together with this notebook" in capsys.readouterr().out
    loaded = modelfile.load(path)
    assert getattr(loaded, "optimizer", None) is None
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        assert "optimizer" not in weights
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))


def test_under_grading_a_missing_or_broken_file_means_training_and_says_why(tmp_path, capsys):
    assert modelfile.submitted(tmp_path / "02_mnist_mlp.keras") is None
    assert "Grading without your model file: No trained model file 02_mnist_mlp.keras" in capsys.readouterr().out
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.save(tmp_path / "02_mnist_mlp.keras")
    assert modelfile.submitted(tmp_path / "02_mnist_mlp.keras").count_params() == 15
    assert "Grading the model you trained and submitted (02_mnist_mlp.keras)" in capsys.readouterr().out


def test_a_training_record_travels_in_the_model_file_which_keras_still_loads(tmp_path, capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    record = {"epochs": 20, "minutes": 19.1, "device": "CPU", "train_labels_sha256": "ab" * 32}
    path = modelfile.save(model, tmp_path / "08_cifar_challenge.keras", record=record)
    assert modelfile.read_record(path.read_bytes()) == record
    assert modelfile.load(path).count_params() == 15
    assert modelfile.read_record(modelfile.save(model, tmp_path / "plain.keras").read_bytes()) is None


def test_a_record_is_read_as_plain_data_or_not_at_all(tmp_path):
    def with_record(text: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(modelfile.RECORD_ENTRY, text)
        return buffer.getvalue()

    assert modelfile.read_record(with_record('{"device": {"nested": [1, 2]}, "epochs": 3, "flag": true}')) == {
        "device": "{'nested': [1, 2]}", "epochs": 3, "flag": "True"}
    assert modelfile.read_record(with_record("[1, 2]")) is None
    assert modelfile.read_record(with_record("not json")) is None
    assert modelfile.read_record(with_record("[" * 8000 + "]" * 8000)) is None
    assert modelfile.read_record(with_record('{"x": "' + "y" * modelfile.MAX_RECORD_BYTES + '"}')) is None
    assert modelfile.read_record(b"not a zip") is None
