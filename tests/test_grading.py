"""course.grading: a crashed kernel fails the cells from the crash on, not the notebook; copied cells do not break grading."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course.grading import CrashTolerantExecute, DeduplicateGradeIds


def test_cells_before_a_crash_keep_their_outputs_and_later_ones_fail():
    notebook = new_notebook(cells=[
        new_code_cell("print(1 + 1)"),
        new_code_cell("import os\nos._exit(1)"),
        new_markdown_cell("prose"),
        new_code_cell("print('never')"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executed, _ = CrashTolerantExecute(timeout=60).preprocess(notebook, {"metadata": {"path": "."}})
    first, crash, prose, after = executed.cells
    assert first.outputs[0].text == "2\n"
    assert [(o.ename, o.evalue) for o in crash.outputs] == [
        ("KernelDied", "The kernel died while running this cell (a crash, os._exit, or too much memory).")]
    assert "outputs" not in prose
    assert [(o.ename, o.evalue) for o in after.outputs] == [
        ("KernelDied", "Not run: the kernel died in an earlier cell (cell 1).")]
    nbformat.validate(executed)


def test_a_cell_that_ignores_the_interrupt_has_its_kernel_killed_and_counts_as_a_crash():
    swallows_interrupts = "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except:\n        pass"
    notebook = new_notebook(cells=[
        new_code_cell("print(1 + 1)"),
        new_code_cell("import time\ntime.sleep(60)"),
        new_code_cell(swallows_interrupts),
        new_code_cell("print('never')"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executed, _ = CrashTolerantExecute(timeout=3, interrupt_grace=2).preprocess(notebook, {"metadata": {"path": "."}})
    first, interrupted, swallowing, after = executed.cells
    assert first.outputs[0].text == "2\n"
    assert [o.ename for o in interrupted.outputs if o.output_type == "error"] == ["KeyboardInterrupt", "CellTimeoutError"]
    assert [(o.ename, o.evalue) for o in swallowing.outputs] == [
        ("KernelDied", "Stopped: this cell ran past the 3 s time limit and went on 2 s after being interrupted, "
                       "so its kernel was killed.")]
    assert [(o.ename, o.evalue) for o in after.outputs] == [
        ("KernelDied", "Not run: the kernel died in an earlier cell (cell 2).")]
    nbformat.validate(executed)


def test_a_copied_cell_loses_its_grade_id_and_its_metadata_key():
    solution = {"grade_id": "f", "solution": True, "grade": False, "locked": False, "schema_version": 3}
    notebook = new_notebook(cells=[
        new_code_cell("def f(): return 1", metadata={"nbgrader": dict(solution)}),
        new_code_cell("def f(): return 2", metadata={"nbgrader": dict(solution)}),
    ])
    deduplicated, _ = DeduplicateGradeIds().preprocess(notebook, {})
    original, copy = deduplicated.cells
    assert "nbgrader" not in original.metadata
    assert copy.metadata["nbgrader"]["grade_id"] == "f"
