"""course.grading.judge: graded test cells run outside the student's kernel, on the kernel's values as data.

Here the "kernel" is a plain dict answered by course.grading.wire.handle in this process;
tests/test_preprocessors.py runs the judge beside a real kernel, and tests/test_pipeline.py
grades the sample submissions (the attacks among them) with it.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from course.grading import judge, wire


class LoopbackLink:
    """The grader's relay, short-circuited: a kernel request is answered by wire.handle at once."""

    def __init__(self):
        self.replies = []
        self.requests = []

    def send(self, message):
        if message["op"] == "kernel":
            self.requests.append(message["dir"])
            wire.handle(message["dir"])
            self.replies.append({"op": "reply", "status": "ok"})

    def receive(self):
        return self.replies.pop(0)


@pytest.fixture
def kernel(monkeypatch, tmp_path):
    """The student's names, and a judge that reads them."""
    names = {}
    monkeypatch.setattr(wire, "_user_namespace", lambda: names)
    link = LoopbackLink()
    monkeypatch.setattr(wire, "PRIVATE_TMP", None)
    the_judge = judge.Judge(link, tmp_path)
    the_judge.setup(["import numpy as np"])
    yield names, the_judge, link
    import tempfile
    tempfile.tempdir = None


TEST_CELL = '''"""Checks scale."""
_x = np.arange(4, dtype=np.uint8)
assert scale(_x).dtype == np.float32, "scale must return float32"
print("visible checks passed")
### BEGIN HIDDEN TESTS
_y = np.full(3, 255, np.uint8)
assert np.allclose(scale(_y), 1.0), "scale: 255 must give 1.0"
### END HIDDEN TESTS'''


def test_a_correct_function_passes_and_its_output_is_the_cell_output(kernel):
    names, the_judge, _ = kernel
    names["scale"] = lambda x: x.astype(np.float32) / 255
    assert the_judge.run_cell(TEST_CELL) == [{"output_type": "stream", "name": "stdout", "text": "visible checks passed\n"}]


def test_a_failing_hidden_test_shows_its_message_but_not_its_line(kernel):
    names, the_judge, _ = kernel
    names["scale"] = lambda x: x.astype(np.float32) / 256
    outputs = the_judge.run_cell(TEST_CELL)
    assert outputs[-1] == {"output_type": "error", "ename": "AssertionError", "evalue": "scale: 255 must give 1.0",
                           "traceback": ["AssertionError: scale: 255 must give 1.0"]}


def test_a_failing_visible_test_shows_its_line(kernel):
    names, the_judge, _ = kernel
    names["scale"] = lambda x: x / 255
    error = the_judge.run_cell(TEST_CELL)[-1]
    assert error["ename"] == "AssertionError"
    assert error["traceback"][0] == 'In the test cell, line 3: assert scale(_x).dtype == np.float32, "scale must return float32"'


def test_what_the_kernel_redefines_does_not_reach_the_judge(kernel):
    names, the_judge, _ = kernel
    fake_numpy = type("FakeNumpy", (), {"allclose": staticmethod(lambda *a, **k: True)})
    names.update(np=fake_numpy, _y=np.ones(3), scale=lambda x: x.astype(np.float32) / 256)
    assert the_judge.run_cell(TEST_CELL)[-1]["ename"] == "AssertionError"


def test_names_starting_with_an_underscore_and_builtins_never_come_from_the_kernel(kernel):
    names, the_judge, link = kernel
    names.update(_secret_helper=1, len=lambda x: 99)
    outputs = the_judge.run_cell("print(len([1, 2]))\n_secret_helper")
    assert outputs == [{"output_type": "stream", "name": "stdout", "text": "2\n"},
                       {"output_type": "error", "ename": "NameError", "evalue": "name '_secret_helper' is not defined",
                        "traceback": ["In the test cell, line 2: _secret_helper",
                                      "NameError: name '_secret_helper' is not defined"]}]
    assert link.requests == []


def test_the_last_expression_is_the_cell_result_nbgrader_reads_as_partial_credit(kernel):
    names, the_judge, _ = kernel
    names["accuracy"] = 0.81
    outputs = the_judge.run_cell("tiers = sum(accuracy >= t for t in (0.6, 0.7, 0.8, 0.9))\nfloat(tiers)")
    assert outputs == [{"output_type": "execute_result", "execution_count": None, "metadata": {},
                        "data": {"text/plain": "3.0"}}]


def test_globals_lookups_and_comprehensions_reach_the_kernel(kernel):
    names, the_judge, _ = kernel
    names.update(conv_params=320, sizes={"a": 1})
    source = ('assert isinstance(globals().get("conv_params"), int)\n'
              'assert "sizes" in globals() and "missing" not in globals()\n'
              'assert [sizes[k] for k in ("a",)] == [1]')
    assert the_judge.run_cell(source) == []


def test_each_cell_sees_the_kernel_state_afresh(kernel):
    names, the_judge, _ = kernel
    names["model_version"] = 1
    assert the_judge.run_cell("model_version") [0]["data"]["text/plain"] == "1"
    names["model_version"] = 2
    assert the_judge.run_cell("model_version")[0]["data"]["text/plain"] == "2"


def test_a_function_that_changes_its_argument_in_place_changes_the_judges_array(kernel):
    names, the_judge, _ = kernel

    def scale(x):
        x[0] = 99
        return x

    names["scale"] = scale
    outputs = the_judge.run_cell("_x = np.zeros(2)\n_kept = _x.copy()\nscale(_x)\nassert np.array_equal(_x, _kept), 'scale modified its input'")
    assert outputs[-1]["evalue"] == "scale modified its input"


def test_a_model_the_students_function_trains_in_place_is_trained_in_the_judge_too(kernel):
    """02's train(model, ...): the judge's model crosses as a copy, which fit trains in the kernel; its weights come
    back, and the History that fit returned arrives with the trained model and its optimizer's step count."""
    import keras

    names, the_judge, _ = kernel
    the_judge.setup(["import keras"])

    def train(model, x, y, epochs):
        return model.fit(x, y, epochs=epochs, batch_size=2, verbose=0)

    def train_a_copy(model, x, y, epochs):
        other = keras.models.clone_model(model)
        other.compile(optimizer="sgd", loss="mse")
        return other.fit(x, y, epochs=epochs, batch_size=2, verbose=0)

    names.update(train=train, train_a_copy=train_a_copy)
    cell = """_m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
_m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
_h = {function}(_m, np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), 3)
assert isinstance(_h, keras.callbacks.History) and _h.params["steps"] == 2 and len(_h.history["loss"]) == 3, "the History"
assert int(_h.model.optimizer.iterations) == 6, "the trained model's optimizer"
assert np.abs(_m.get_weights()[0]).sum() > 0, "the model passed in is untrained"
"""
    assert the_judge.run_cell(cell.format(function="train")) == []
    assert the_judge.run_cell(cell.format(function="train_a_copy"))[-1]["evalue"] == "the model passed in is untrained"


def test_values_that_cannot_cross_fail_the_test_with_a_clear_message(kernel):
    names, the_judge, _ = kernel

    class Channel:
        def __eq__(self, other):
            return True

    names["split"] = lambda image: (Channel(), Channel(), Channel())
    error = the_judge.run_cell("assert split(np.zeros((2, 2, 3)))[0] == 0")[-1]
    assert error["ename"] == "NotData"
    assert "split() returned a" in error["evalue"] and "Channel" in error["evalue"]


def test_an_exception_in_the_students_function_fails_the_test(kernel):
    names, the_judge, _ = kernel

    def stub(x):
        raise NotImplementedError()

    names["stub"] = stub
    error = the_judge.run_cell("stub(1)")[-1]
    assert (error["ename"], error["evalue"]) == ("NotImplementedError", "stub() raised NotImplementedError: ")
    names["stub"] = lambda x: (_ for _ in ()).throw(type("weird name", (Exception,), {})("odd"))
    assert the_judge.run_cell("stub(1)")[-1]["ename"] == "StudentCodeError"
    names["stub"] = stub  # the first cell with hidden tests fails on its visible line, before they run: named
    assert the_judge.run_cell(TEST_CELL.replace("scale(", "stub("))[-1]["ename"] == "NotImplementedError"
    assert the_judge.run_cell(TEST_CELL.replace("scale(", "stub("))[-1]["ename"] == "StudentCodeError"  # after them


def test_a_kernel_that_does_not_answer_fails_the_test(kernel):
    names, the_judge, link = kernel
    link.send = lambda message: link.replies.append({"op": "reply", "status": "timeout", "message": "ran past 60 s"})
    names["x"] = 1
    assert the_judge.run_cell("x")[-1] == {"output_type": "error", "ename": "KernelUnavailable", "evalue": "ran past 60 s",
                                         "traceback": ["In the test cell, line 1: x", "KernelUnavailable: ran past 60 s"]}


def test_hidden_regions_and_visible_source():
    source = "a = 1\n### BEGIN HIDDEN TESTS\nb = 2\n### END HIDDEN TESTS\nc = 3"
    assert judge.hidden_lines(source) == {2, 3, 4}
    assert judge.visible_source(source) == "a = 1\nc = 3"


def test_the_notebooks_imports_are_taken_from_its_locked_cells_magics_and_all():
    setup = ("import os\nif os.environ.get('COLAB'):\n    %pip install course\nimport numpy as np\n"
             "from course import budget, data\nSEED = 42\n")
    assert judge.notebook_imports([setup, "x = 1"]) == ["import os", "import numpy as np", "from course import budget, data"]


def test_the_judge_imports_only_what_the_test_cells_use():
    setup = ("import os\nimport matplotlib.pyplot as plt\nimport numpy as np\nimport keras.layers\n"
             "from sklearn.datasets import load_sample_image\nfrom course import budget, data as d\nfrom math import *\n")
    tests = ['"""Checks x."""\nassert np.allclose(x, 1), f"{d.mnist}"\n### BEGIN HIDDEN TESTS\nkeras.ops.sum(x)\n### END HIDDEN TESTS']
    assert judge.notebook_imports([setup], tests=tests) == [
        "import numpy as np", "import keras.layers", "from course import budget, data as d", "from math import *"]
    assert judge.notebook_imports([setup], tests=[*tests, "%%time\nnot python("]) == judge.notebook_imports([setup])


def test_keras_is_imported_first_when_the_instructors_imports_name_keras_or_tensorflow():
    assert judge.imports_model_libraries(["import numpy as np", "import keras as _keras"])
    assert judge.imports_model_libraries(["from tensorflow import keras"])
    assert judge.imports_model_libraries(["import tensorflow.math as m"])
    assert not judge.imports_model_libraries(
        ["import numpy as np", "from course import data", "from . import keras", "import kerasx"])


def test_the_judge_imports_keras_without_scikit_learn_scipy_or_matplotlib_which_stay_importable():
    script = ("import sys; from course.grading import judge; judge.import_keras_lean(); "
              "print(sorted(m for m in ('keras', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules)); "
              "from sklearn.model_selection import train_test_split; import matplotlib.pyplot; "
              "print(sorted(m for m in ('sklearn', 'scipy', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['keras']", "['matplotlib', 'scipy', 'sklearn']"]


def test_the_same_keras_object_sent_twice_is_the_same_object_in_the_judge(kernel):
    """02's hidden test asserts ``build_mlp() is not _m`` (a new model each call): the judge's copies must not
    make a function that returns one shared model look as if it built a new one."""
    import keras

    names, the_judge, _ = kernel
    shared = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    names["build_shared"] = lambda: shared
    names["build_new"] = lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    cell = "_m = {0}()\nassert {0}() is not _m, '{0} must build a new model each call'"
    assert the_judge.run_cell(cell.format("build_new")) == []
    outputs = the_judge.run_cell(cell.format("build_shared"))
    assert outputs[-1]["evalue"] == "build_shared must build a new model each call"
    # The object sent again carries the weights the kernel's model has now.
    the_judge.run_cell("_first = build_shared()")
    shared.layers[0].kernel.assign(np.ones((3, 2), np.float32))
    assert the_judge.run_cell("assert float(build_shared().layers[0].kernel.numpy().sum()) == 6.0, 'stale weights'") == []


def test_what_visible_lines_print_once_hidden_tests_ran_is_marked_for_the_feedback_to_leave_out(kernel):
    """A visible check's print of a notebook value (02's ``Test accuracy {test_accuracy:.2%}``) can show what
    the notebook kept of hidden inputs, once a hidden test has called it: marked, and left out of the feedback."""
    names, the_judge, _ = kernel
    names["value"] = 123456.0
    before = "print('visible', value)\n### BEGIN HIDDEN TESTS\nprint('hidden')\n### END HIDDEN TESTS\nprint('after', value)"
    marked = {"output_type": "display_data", "data": {"text/plain": "after 123456.0\n"},
              "metadata": {judge.PRINTED_AFTER_HIDDEN: True}}
    assert the_judge.run_cell(before) == [
        {"output_type": "stream", "name": "stdout", "text": "visible 123456.0\nhidden\n"}, marked]
    later = "import sys\nprint('after', value)\nsys.stdout.write('written\\n')\nprint('sep', 'x', sep='-', end='!\\n')"
    assert the_judge.run_cell(later) == [
        marked, {"output_type": "stream", "name": "stdout", "text": "written\n"},
        {"output_type": "display_data", "data": {"text/plain": "sep-x!\n"}, "metadata": {judge.PRINTED_AFTER_HIDDEN: True}}]


def test_a_build_function_that_builds_another_network_later_fails_the_later_test(kernel):
    """02's red team: build_mlp() built the right network for the build tests and, once the notebook had trained,
    the network of a model file from elsewhere, so that the accuracy test's architecture check passed."""
    import keras

    names, the_judge, _ = kernel
    units = [512]
    names["build"] = lambda rate=0.0: keras.Sequential([keras.Input((3,)), keras.layers.Dense(units[0]),
                                                       keras.layers.Dropout(rate)])
    assert the_judge.run_cell("_a = build()\n_b = build(rate=0.5)") == []
    units[0] = 256
    assert the_judge.run_cell("_c = build(rate=0.25)") == []  # other arguments: a network of its own
    error = the_judge.run_cell("_d = build()")[-1]
    assert (error["ename"], error["evalue"]) == (
        "AssertionError", "build() built a different network than when an earlier test called it the same way: "
                          "a build function must build the same network every time")


def test_a_model_compiled_in_the_kernel_comes_back_compiled(kernel):
    """02's and 04's compile tests: ``compile_model(build_mlp(), 100)`` returns the model it was given, now
    compiled. The judge's earlier copy of that model is uncompiled: it must not stand in for it."""
    import keras

    names, the_judge, _ = kernel
    names["build"] = lambda: keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    def compile_model(model):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        return model

    names["compile_model"] = compile_model
    cell = "_c = compile_model(build()).get_compile_config()\nassert 'Adam' in str(_c['optimizer']), 'not compiled'"
    assert the_judge.run_cell(cell) == []


def test_what_a_test_cell_prints_is_kept_up_to_its_limit_as_it_is_printed(kernel):
    """A test printing a large student value (3 * 10**7 characters, 100 times: 3 GB) costs the judge no memory."""
    import resource

    names, the_judge, _ = kernel
    names["banner"] = "ab" * 15 * 10**6
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outputs = the_judge.run_cell("for _ in range(100):\n    print(banner)")
    assert outputs == [{"output_type": "stream", "name": "stdout", "text": ("ab" * 50_000)[:judge.MAX_PRINTED]}]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB: the value and copies


def test_what_the_students_code_says_on_a_hidden_call_is_left_out_as_it_could_quote_the_inputs(kernel):
    names, the_judge, link = kernel

    def scale(x):
        if x.size != 4:  # only the hidden test's input
            raise ValueError(f"LEAKED {x.tolist()}")
        return x.astype(np.float32) / 255

    names["scale"] = scale
    error = the_judge.run_cell(TEST_CELL)[-1]
    assert error == {"output_type": "error", "ename": "ValueError", "evalue": "scale() raised ValueError",
                     "traceback": ["ValueError: scale() raised ValueError"]}
    class LEAKED_0_1_2(Exception):  # a class of the student's: its name could spell the inputs too
        pass

    names["scale"] = lambda x: x.astype(np.float32) / 255 if x.size == 4 else (_ for _ in ()).throw(LEAKED_0_1_2())
    error = the_judge.run_cell(TEST_CELL)[-1]
    assert error == {"output_type": "error", "ename": "StudentCodeError", "evalue": "scale() raised an exception",
                     "traceback": ["StudentCodeError: scale() raised an exception"]}
    names["scale"] = lambda x: x.astype(np.float32) / 255 if x.size == 4 else type("LEAKED_255_255_255", (), {})()
    error = the_judge.run_cell(TEST_CELL)[-1]
    assert (error["ename"], error["evalue"]) == ("NotData", "scale() returned a value the grader cannot read as data")
    names["scale"] = lambda x: (_ for _ in ()).throw(ValueError(f"visible {x.tolist()}"))  # a visible call: all of it
    assert the_judge.run_cell(TEST_CELL)[-1]["evalue"] == "scale() raised ValueError: visible [0, 1, 2, 3]"
    def leaky(x):
        raise ValueError(x.tolist())

    leaky.__name__ = "LEAKED_255_255_255"  # a function the kernel hands back is named by the kernel
    names["factory"] = lambda: leaky
    error = the_judge.run_cell("### BEGIN HIDDEN TESTS\nfactory()(np.full(3, 255))\n### END HIDDEN TESTS")[-1]
    assert (error["ename"], error["evalue"]) == ("ValueError", "a function of the notebook raised ValueError")
    # NumPy's words on a returned value (a string, a dtype, a shape) could quote it: on a hidden line, only the name.
    names["scale"] = lambda x: x.astype(np.float32) / 255 if x.size == 4 else "LEAKED 255 255 255"
    error = the_judge.run_cell(TEST_CELL)[-1]
    assert (error["ename"], error["evalue"]) == ("UFuncTypeError", judge.HIDDEN_ERROR_MESSAGE)  # np.allclose(str, 1.0)
    names["scale"] = lambda x: x.astype(np.float32) / 255 if x.size == 4 else np.zeros(3, [("LEAKED 255", "f8")])
    error = the_judge.run_cell(TEST_CELL)[-1]
    assert (error["ename"], error["evalue"]) == ("NotData", "scale() returned a value the grader cannot read as data")
    names["scale"] = lambda x: "visible"  # a visible line's error keeps its message
    assert the_judge.run_cell(TEST_CELL)[-1]["evalue"] == "'str' object has no attribute 'dtype'"
    names["scale"] = lambda x: (_ for _ in ()).throw(KeyError("k"))  # after hidden tests: which one is a choice
    error = the_judge.run_cell(TEST_CELL)[-1]
    assert (error["ename"], error["evalue"]) == ("StudentCodeError", "scale() raised KeyError: 'k'")
    link.send = lambda message: link.replies.append({"op": "reply", "status": "error", "message": "could not answer (LEAKED)"})
    hidden_only = "### BEGIN HIDDEN TESTS\nscale(np.zeros(3))\n### END HIDDEN TESTS"
    assert the_judge.run_cell(hidden_only)[-1]["evalue"] == "the notebook's kernel could not answer"
    link.send = lambda message: link.replies.append({"op": "reply", "status": "timeout", "message": "ran past 60 s"})
    assert the_judge.run_cell(hidden_only)[-1]["evalue"] == "ran past 60 s"  # the grader's own words
