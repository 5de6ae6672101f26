"""course.grading.checks: hidden tests measure a model in a fresh Python, out of the student's reach."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from course.grading import checks


EXPECTED_CIFAR10_TRAIN_MEAN = [0.491217, 0.481887, 0.446458]
EXPECTED_CIFAR10_TRAIN_STD = [0.245470, 0.242942, 0.260625]


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


def test_standardized_inputs_are_given_to_the_model_as_asked(tmp_path):
    # Dense(10) on the pixel at (0, 0): class 1 when its standardized value is positive, class 0 otherwise.
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    weights = np.zeros((784, 10), np.float32)
    weights[0, 1] = 1.0
    model.layers[-1].set_weights([weights, np.zeros(10, np.float32)])
    path = tmp_path / "model.keras"
    model.save(path)
    # Corner pixels are 0: as pixels / 255 the logits tie and argmax picks class 0;
    # standardized with mean -1 they become +1 and every image is predicted as class 1.
    if not os.environ.get("COURSE_DATA_DIR"):
        pytest.skip("needs the MNIST test set (COURSE_DATA_DIR)")
    assert checks.file_report(path, "mnist")["accuracy"] == 980 / 10000  # the test set's 0s
    assert checks.file_report(path, "mnist", standardize=([-1.0], [1.0]))["accuracy"] == 1135 / 10000


def test_a_model_file_keras_cannot_load_is_a_clear_error(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RuntimeError, match="the saved model could not be measured"):
        checks.file_report(path)


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_DIR"), reason="needs CIFAR-10 (COURSE_DATA_DIR)")
def test_cifar10_training_split_statistics():
    mean, std = checks.cifar10_train_statistics()
    # Figures for the shared JPEG copy's 40,000-image split; CIFAR-10's published 50,000-image
    # figures are (0.4914, 0.4822, 0.4465) and (0.2470, 0.2435, 0.2616).
    assert np.allclose(mean, EXPECTED_CIFAR10_TRAIN_MEAN, atol=1e-6)
    assert np.allclose(std, EXPECTED_CIFAR10_TRAIN_STD, atol=1e-6)
    # Computed once per process, and each caller gets lists of its own.
    mean.append("changed by a caller")
    again = checks.cifar10_train_statistics()
    assert again == (mean[:3], std) and again[0] is not mean
    assert checks._cifar10_train_statistics.cache_info().hits >= 1


def _mlp(units: int, name: str | None = None) -> keras.Model:
    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(units, activation="relu", name=name),
                             keras.layers.Dense(10, activation="softmax")])


def test_architectures_compare_layers_and_settings_not_names_or_weights():
    assert checks.architecture(_mlp(512)) == checks.architecture(_mlp(512, name="hidden"))
    assert checks.architecture(_mlp(512)) != checks.architecture(_mlp(256))
    relu6 = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu6"),
                              keras.layers.Dense(10, activation="softmax")])
    assert checks.architecture(_mlp(512)) != checks.architecture(relu6)
    assert checks.architecture(_mlp(512))[1] == (
        "Dense", (None, 512), 401_920, (("units", "512"), ("activation", '"relu"'), ("use_bias", "true")))


def test_a_submitted_file_is_measured_and_compared_with_the_students_own_network(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_JUDGE", "1")  # measured in this process, as the judge does (a fresh one: tests above)
    path = tmp_path / "02_mnist_mlp.keras"
    _mlp(256).save(path)
    report = checks.submitted_report(path, _mlp(256))
    assert report == {"params": 203_530, "layers": ["Dense", "Dense"], "input_shape": [None, 784],
                      "output_shape": [None, 10], "same_architecture": True}
    assert checks.submitted_report(path, _mlp(512))["same_architecture"] is False
    assert checks.submitted_report(tmp_path / "missing.keras", _mlp(512)) is None
    path.write_text("not a model")
    assert checks.submitted_report(path, _mlp(512)) is None


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_DIR"), reason="needs the MNIST test set (COURSE_DATA_DIR)")
def test_the_graded_accuracy_is_the_submitted_files_and_without_one_the_judge_grades_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_BUDGET", "grading")
    path = tmp_path / "03_mnist_cnn.keras"
    _always_one().save(path)
    accuracy, threshold, what = checks.graded_accuracy(path, _always_one(), lambda: pytest.fail("not needed"),
                                                       "mnist", full=0.98, grading=0.975)
    assert (round(accuracy, 4), threshold) == (0.1135, 0.98) and what.startswith("the model file you submitted")
    # Outside the judge (CI's nbval of a source notebook): the model the run trained, at its budget's threshold.
    accuracy, threshold, what = checks.graded_accuracy(tmp_path / "missing.keras", _always_one(), _always_one,
                                                       "mnist", full=0.98, grading=0.975)
    assert (round(accuracy, 4), threshold) == (0.1135, 0.975) and "no usable model file" in what
    wider = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, use_bias=False)])
    with pytest.raises(AssertionError, match="does not hold the network your build function builds"):
        checks.graded_accuracy(path, wider, _always_one, "mnist", full=0.98, grading=0.975)
    with pytest.raises(AssertionError, match="not the network your build function builds"):
        checks.graded_accuracy(tmp_path / "missing.keras", wider, _always_one, "mnist", full=0.98, grading=0.975)
    # In the judge, no file is no grade, whatever the kernel's model: it is never asked for.
    monkeypatch.setenv("COURSE_JUDGE", "1")
    with pytest.raises(AssertionError, match="no model file missing.keras that Keras can load was submitted"):
        checks.graded_accuracy(tmp_path / "missing.keras", _always_one(), lambda: pytest.fail("not asked for"),
                               "mnist", full=0.98, grading=0.975)
    accuracy, threshold, _ = checks.graded_accuracy(path, _always_one(), lambda: pytest.fail("not asked for"),
                                                    "mnist", full=0.98, grading=0.975)
    assert (round(accuracy, 4), threshold) == (0.1135, 0.98)


def test_pixel_scaling_gives_the_students_own_scaling_to_the_measurement():
    """The accuracy tests of 02-04 measure the model on the student's own scaling of the pixels when it is
    an affine map (a model trained on raw pixels scores about 10% on pixels / 255)."""
    images = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    assert checks.pixel_scaling(images.astype(np.float32)[..., None] / 255, images) is None
    assert checks.pixel_scaling(images.reshape(20, 784).astype(np.float32) / 255.0, images) is None
    for prepared in (images.astype(np.float32), images / 256.0, (images / 255.0 - 0.5) / 0.5, images / 127.5,
                     (images / 255.0 - 0.1307) / 0.3081):
        mean, std = checks.pixel_scaling(prepared, images)
        assert np.allclose((images / 255.0 - np.asarray(mean)) / np.asarray(std), prepared, atol=1e-4)
    # A map no mistake gives (tuned to the test set, for the accuracy test's call only): measured on pixels / 255.
    assert checks.pixel_scaling(1.7 * images / 255.0, images) is None
    assert checks.pixel_scaling((images / 255.0 - 0.5) / 0.25, images) is None
    assert checks.pixel_scaling(np.sqrt(images.astype(np.float32)), images) is None  # not affine
    assert checks.pixel_scaling(255 - images.astype(np.float32), images) is None  # inverted
    assert checks.pixel_scaling(images[:10].astype(np.float32), images) is None  # not the same values
    assert checks.pixel_scaling("not an array", images) is None
    assert checks.pixel_scaling(np.full(images.shape, np.nan), images) is None


def test_in_the_judge_a_model_file_is_read_as_the_grader_received_it(tmp_path, monkeypatch):
    """checks.SUBMITTED_FILES: the judge grades the bytes read before the kernel started, by name; a file
    deleted or written meanwhile where the notebook lies changes nothing."""
    monkeypatch.setenv("COURSE_JUDGE", "1")  # as in the judge, which measures in its own process
    submitted = tmp_path / "private" / "02_mnist_mlp.keras"
    submitted.parent.mkdir()
    _mlp(256).save(submitted)
    beside_notebook = tmp_path / "02_mnist_mlp.keras"  # what the notebook's folder holds now: nothing
    monkeypatch.setattr(checks, "SUBMITTED_FILES", {"02_mnist_mlp.keras": submitted})
    assert checks.submitted_file(beside_notebook) == submitted
    assert checks.submitted_report(beside_notebook, _mlp(256))["same_architecture"] is True
    assert checks.file_report(beside_notebook)["params"] == 203_530
    _mlp(512).save(tmp_path / "05b_cifar_wide.keras")  # written by the notebook, never submitted
    assert checks.submitted_file(tmp_path / "05b_cifar_wide.keras") is None
    assert checks.submitted_report(tmp_path / "05b_cifar_wide.keras", _mlp(512)) is None
    with pytest.raises(RuntimeError, match="no model file 05b_cifar_wide.keras was submitted"):
        checks.file_report(tmp_path / "05b_cifar_wide.keras")
    monkeypatch.setattr(checks, "SUBMITTED_FILES", {"02_mnist_mlp.keras": None})  # submitted past the limits
    with pytest.raises(AssertionError, match="02_mnist_mlp.keras was not graded: .* past the grader's limits"):
        checks.submitted_report(beside_notebook, _mlp(256))
    monkeypatch.setattr(checks, "SUBMITTED_FILES", None)  # outside the judge: where the file lies
    assert checks.submitted_file(tmp_path / "05b_cifar_wide.keras") == tmp_path / "05b_cifar_wide.keras"
    assert checks.submitted_file(beside_notebook) is None
