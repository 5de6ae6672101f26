"""course.grading.feedback: hidden tests and their tracebacks never reach a student."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course.grading.feedback import HideHiddenTests

TEST_SOURCE = """assert f(1) == 2, "f(1) should be 2"
### BEGIN HIDDEN TESTS
assert f(41) == 42, "f must add one"
### END HIDDEN TESTS"""


def _graded(source, outputs):
    cell = new_code_cell(source, outputs=outputs)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "locked": True, "points": 1, "schema_version": 3, "solution": False, "task": False}
    return cell


def _error(message):
    return new_output("error", ename="AssertionError", evalue=message, traceback=["\x1b[0;31m----\x1b[0m", "      2 ### BEGIN HIDDEN TESTS", '----> 3 assert f(41) == 42, "f must add one"'])


def test_hidden_region_and_its_traceback_are_removed():
    nb = new_notebook(cells=[_graded(TEST_SOURCE, [_error("f must add one")])])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    cell = nb.cells[0]
    assert cell.source == 'assert f(1) == 2, "f(1) should be 2"'
    assert cell.outputs[0].traceback == ["AssertionError: f must add one"]
    assert "f(41)" not in nbformat.writes(nb)


def test_cells_without_hidden_tests_keep_their_traceback():
    traceback = _error("f(1) should be 2").traceback
    nb = new_notebook(cells=[_graded('assert f(1) == 2, "f(1) should be 2"', [_error("f(1) should be 2")])])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    assert nb.cells[0].outputs[0].traceback == traceback


def test_the_judges_errors_keep_their_visible_line():
    judged = new_output("error", ename="AssertionError", evalue="f(1) should be 2",
                        traceback=['In the test cell, line 1: assert f(1) == 2, "f(1) should be 2"', "AssertionError: f(1) should be 2"])
    forged = new_output("error", ename="AssertionError", evalue="x",
                        traceback=['In the test cell, line 3: assert f(41) == 42', "something else"])
    nb = new_notebook(cells=[_graded(TEST_SOURCE, [judged]), _graded(TEST_SOURCE, [forged])])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    assert nb.cells[0].outputs[0].traceback == judged.traceback
    assert nb.cells[1].outputs[0].traceback == ["AssertionError: x"]
