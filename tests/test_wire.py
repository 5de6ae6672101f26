"""course.grading.wire: values cross between the student's kernel and the judge as data only."""

from __future__ import annotations

import json
import os
import pathlib
import zipfile

import keras
import numpy as np
import pytest

from course.grading import wire


def _round_trip(tmp_path, value, **decoder_options):
    tmp_path.mkdir(parents=True, exist_ok=True)
    folder = wire.Folder(tmp_path / "request", create=True)
    try:
        desc = wire.Encoder(folder, remember=lambda v: "k1").encode(value)
        json.dumps(desc)  # the description itself is plain JSON
        return wire.Decoder(folder, **decoder_options).decode(json.loads(json.dumps(desc)))
    finally:
        folder.close()


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**70, 0.1, float("inf"), 1 + 2j, "text", "",
    [1, "a", None], (1, (2.5, "b")), {"lenet": 28, "alexnet": 55}, {1: "one", (2, 3): [4]}, {3, 4},
    pathlib.Path("/tmp/digit.png"),
])
def test_plain_values_cross_unchanged_with_their_types(tmp_path, value):
    got = _round_trip(tmp_path, value)
    assert got == value and type(got) is type(value)


def test_arrays_and_numpy_scalars_keep_dtype_shape_and_values(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    got = _round_trip(tmp_path, array)
    assert got.dtype == np.int16 and got.shape == (2, 3, 4) and np.array_equal(got, array)
    scalar = _round_trip(tmp_path / "s", np.float32(0.25))
    assert type(scalar) is np.float32 and scalar == 0.25


def test_objects_that_are_not_data_are_refused(tmp_path):
    class Rigged:
        def __eq__(self, other):
            return True

    with pytest.raises(wire.NotData, match="Rigged"):
        _round_trip(tmp_path, Rigged())
    with pytest.raises(wire.NotData, match="dtype=object"):
        _round_trip(tmp_path / "o", np.array([Rigged()], dtype=object))


def test_a_function_crosses_as_a_reference(tmp_path):
    got = _round_trip(tmp_path, len, function=lambda ref, name: ("stand-in", ref, name))
    assert got == ("stand-in", "k1", "len")


def test_a_keras_model_crosses_as_a_file_with_architecture_and_weights(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    got = _round_trip(tmp_path, model)
    assert isinstance(got, keras.Sequential) and got is not model
    assert [type(l) for l in got.layers] == [keras.layers.Dense] and got.count_params() == 15
    assert all(np.array_equal(a, b) for a, b in zip(got.get_weights(), model.get_weights()))
    assert isinstance(got.optimizer, keras.optimizers.Adam)


def test_a_history_crosses_as_its_data_with_the_model_it_trained(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((10, 4), dtype=np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, 10)]
    history = model.fit(x, y, epochs=2, batch_size=4, validation_data=(x[:5], y[:5]), verbose=0)
    got = _round_trip(tmp_path, history)
    assert type(got) is keras.callbacks.History and got is not history
    assert got.params == {"verbose": 0, "epochs": 2, "steps": 3} and got.epoch == [0, 1]
    assert got.history == history.history and sorted(got.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert isinstance(got.model, keras.Sequential) and got.model is not model
    assert all(np.array_equal(a, b) for a, b in zip(got.model.get_weights(), model.get_weights()))
    assert int(got.model.optimizer.iterations) == 6  # the steps it took: 2 epochs of 3 batches
    empty = _round_trip(tmp_path / "empty", keras.callbacks.History())
    assert (empty.params, empty.history, empty.epoch, empty.model) == ({}, {}, [], None)


@pytest.mark.parametrize("change, message", [
    ({"params": {"t": "list", "items": []}}, "malformed History"),
    ({"epoch": {"t": "int", "v": "3"}}, "malformed History"),
    ({"model": {"t": "int", "v": "3"}}, "not a Keras model"),
])
def test_a_malformed_history_is_refused(tmp_path, change, message):
    folder = wire.Folder(tmp_path / "request", create=True)
    try:
        desc = {"t": "history", "params": {"t": "dict", "items": []}, "history": {"t": "dict", "items": []},
                "epoch": {"t": "list", "items": []}, "model": {"t": "none"}, **change}
        with pytest.raises(wire.NotData, match=message):
            wire.Decoder(folder).decode(desc)
    finally:
        folder.close()


def test_a_learning_rate_schedule_crosses_by_its_configuration(tmp_path):
    schedule = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=10, decay_rate=0.5, staircase=True)
    got = _round_trip(tmp_path, schedule)
    assert [float(got(s)) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]


def test_keras_configurations_naming_code_outside_keras_are_refused():
    wire.check_keras_config({"module": "keras.layers", "class_name": "Dense", "config": {"units": 3}})
    for bad in ({"module": "os", "class_name": "system"},
                {"module": "keras.layers", "class_name": "Dense", "config": {"x": [{"module": "subprocess"}]}},
                {"module": "__main__", "class_name": "MyLayer"}):
        with pytest.raises(wire.NotData, match="outside Keras"):
            wire.check_keras_config(bad)


def test_a_model_file_whose_configuration_names_foreign_code_is_refused_before_loading(tmp_path):
    buffer = tmp_path / "evil.keras"
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", json.dumps({"module": "builtins", "class_name": "Sequential",
                                                    "config": {"layers": [{"module": "os", "class_name": "system"}]}}))
    with pytest.raises(wire.NotData, match="outside Keras"):
        wire.check_keras_file(buffer.read_bytes())
    with pytest.raises(wire.NotData, match="not a Keras model file"):
        wire.check_keras_file(b"not a zip")


def test_reading_refuses_links_special_files_and_oversized_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor's")
    folder = wire.Folder(tmp_path / "request", create=True)
    try:
        os.symlink(secret, tmp_path / "request" / "link.npy")
        os.mkfifo(tmp_path / "request" / "fifo.npy")
        (tmp_path / "request" / "big.npy").write_bytes(b"x" * 100)
        with pytest.raises(wire.NotData, match="cannot open link.npy"):
            folder.read("link.npy")
        with pytest.raises(wire.NotData, match="not a regular file"):
            folder.read("fifo.npy")
        with pytest.raises(wire.NotData, match="100 bytes, more than the 99 allowed"):
            folder.read("big.npy", limit=99)
        with pytest.raises(wire.NotData, match="bad file name"):
            folder.read("../secret.txt")
        assert folder.read("big.npy") == b"x" * 100
    finally:
        folder.close()


def _answered(tmp_path, name, request):
    """``request(folder)`` sent to the kernel side (course.grading.wire.handle) in a folder of its own under
    ``tmp_path``: that folder and the response."""
    folder = wire.Folder(tmp_path / name, create=True, prefix="j")
    folder.write_json("request.json", request(folder))
    wire.handle(str(tmp_path / name))
    return folder, folder.read_json("response.json")


def test_the_kernel_side_answers_get_has_and_call_requests(tmp_path, monkeypatch):
    """What course.grading.wire.handle does in the student's kernel, with a plain dict as the notebook's names."""
    def double(x):
        x *= 2  # changes its argument in place
        return x.sum()

    namespace = {"x_train": np.ones((2, 2), np.float32), "double": double}
    monkeypatch.setattr(wire, "_user_namespace", lambda: namespace)

    def ask(name, request):
        return _answered(tmp_path, name, request)

    _, has = ask("has", lambda f: {"op": "has", "name": "x_train"})
    assert has == {"ok": True, "value": True}
    _, missing = ask("missing", lambda f: {"op": "get", "name": "nothing"})
    assert missing == {"ok": True, "missing": True}
    folder, got = ask("get", lambda f: {"op": "get", "name": "double"})
    ref = got["value"]["ref"]
    assert got["value"] == {"t": "function", "ref": ref, "name": "double"}
    argument = np.arange(3, dtype=np.int64)
    folder, called = ask("call", lambda f: {"op": "call", "ref": ref, "args": [wire.Encoder(f).encode(argument)], "kwargs": {}})
    decoder = wire.Decoder(folder)
    assert decoder.decode(called["value"]) == 6
    assert np.array_equal(decoder.decode(called["changed_args"]["0"]), [0, 2, 4])
    _, raised = ask("raised", lambda f: {"op": "call", "ref": ref, "args": [wire.Encoder(f).encode("text")], "kwargs": {}})
    assert raised == {"ok": False, "raised": {"type": "AttributeError", "message": "'str' object has no attribute 'sum'"}}


def test_a_model_argument_changed_in_place_is_sent_back_and_an_unchanged_one_is_not(tmp_path, monkeypatch):
    """A student's function that trains the model it is given (as ``fit`` does) changes it in place: the judge gets
    the changed model back; one that only reads it sends nothing back."""
    import keras

    def train_in_place(model):
        model.set_weights([np.ones_like(w) for w in model.get_weights()])

    def count(model):
        return model.count_params()

    namespace = {"train_in_place": train_in_place, "count": count}
    monkeypatch.setattr(wire, "_user_namespace", lambda: namespace)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    def call(name, function):
        _, got = _answered(tmp_path, f"{name}-get", lambda f: {"op": "get", "name": function})
        ref = got["value"]["ref"]
        return _answered(tmp_path, name, lambda f: {"op": "call", "ref": ref, "args": [wire.Encoder(f).encode(model)], "kwargs": {}})

    folder, trained = call("trained", "train_in_place")
    sent_back = wire.Decoder(folder).decode(trained["changed_args"]["0"])
    assert [w.tolist() for w in sent_back.get_weights()] == [[[1.0, 1.0]] * 3, [1.0, 1.0]]
    folder, counted = call("counted", "count")
    assert wire.Decoder(folder).decode(counted["value"]) == 8 and "changed_args" not in counted
