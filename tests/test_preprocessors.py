"""course.grading.preprocessors: a crashed kernel fails the cells from the crash on, not the notebook; copied cells do not break grading."""

import sys
import time

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course.grading.preprocessors import CrashTolerantExecute, DeduplicateGradeIds, DropUnknownGradeIds, JudgedExecute, cell_time_limit


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


def test_an_assignments_own_cell_time_limit_applies_where_it_is_shorter():
    assert cell_time_limit(600, {"01_images": 60}, "01_images") == 60
    assert cell_time_limit(30, {"01_images": 60}, "01_images") == 30  # COURSE_CELL_TIMEOUT shorter still
    assert cell_time_limit(600, {"01_images": 60}, "02_mnist_mlp") == 600
    assert cell_time_limit(None, {"01_images": 60}, "01_images") == 60  # no limit at all: the assignment's
    assert cell_time_limit(600, {"01_images": 0}, "01_images") == 600
    assert cell_time_limit(600, {"01_images": 60}, None) == 600  # not run by nbgrader: no assignment


def test_a_cell_of_an_assignment_with_a_shorter_limit_is_stopped_at_that_limit():
    notebook = new_notebook(cells=[new_code_cell("import time\ntime.sleep(60)"), new_code_cell("print('after')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executor = CrashTolerantExecute(timeout=60, timeout_by_assignment={"01_images": 2, "02_mnist_mlp": 1})
    start = time.monotonic()
    executed, _ = executor.preprocess(notebook, {"metadata": {"path": "."}, "nbgrader": {"assignment": "01_images"}})
    assert time.monotonic() - start < 30
    slept, after = executed.cells
    assert [o.ename for o in slept.outputs if o.output_type == "error"] == ["KeyboardInterrupt", "CellTimeoutError"]
    assert after.outputs[0].text == "after\n"


def test_outputs_kept_from_the_kernel_are_capped_per_message_cell_and_notebook_and_grading_goes_on():
    """Caps of 1 MiB a message, 256 KiB a cell, 512 KiB the notebook (course grade: 8, 16 and 64 MiB). A message over
    the cap is never read: that cell says its output was lost, its error still counts (the kernel's reply carries
    it), and the cells after it show their outputs again."""
    notebook = new_notebook(cells=[
        new_code_cell("print('before')"),
        new_code_cell("print('x' * 2 * 2**20)\nraise ValueError('still graded')"),
        new_code_cell("print('after')"),
        new_code_cell("for _ in range(100):\n    print('y' * 2**14, flush=True)"),
        new_code_cell("print('z' * 200_000)"),
        new_code_cell("print('z' * 200_000)"),
        new_code_cell("print('last')"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executor = CrashTolerantExecute(timeout=60, max_message_bytes=2**20, max_cell_output_bytes=2**18,
                                    max_output_bytes=2**19)
    executed, _ = executor.preprocess(notebook, {"metadata": {"path": "."}})
    before, lost, after, many, big, past, last = [cell.outputs for cell in executed.cells]
    assert [o.text for o in before] == ["before\n"]
    assert [(o.output_type, o.get("text") or o.evalue) for o in lost] == [
        ("error", "still graded"), ("stream", "[output lost: a message over 1 MiB, or output after the cell ended]\n")]
    assert [o.text for o in after] == ["after\n"]
    assert [o.text for o in many] == ["y" * 2**14 + "\n"] * 15 + ["[output truncated: more than 0.25 MiB in this cell]\n"]
    assert [o.text for o in big] == ["z" * 200_000 + "\n"]
    assert [o.text for o in past] == ["[output truncated: more than 0.5 MiB in the notebook]\n"]
    assert [o.text for o in last] == ["last\n"]  # what still fits is kept
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


def _graded_notebook(*cells):
    """A notebook of (kind, source) cells: "setup" (locked), "solution", "test" (graded, 1 point) or plain."""
    made = []
    for number, (kind, source) in enumerate(cells):
        meta = {"grade_id": f"cell{number}", "schema_version": 3, "task": False, "locked": kind != "solution",
                "solution": kind == "solution", "grade": kind == "test"}
        if kind == "test":
            meta["points"] = 1
        made.append(new_code_cell(source, metadata={"nbgrader": meta} if kind != "plain" else {}))
    notebook = new_notebook(cells=made)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def _judged(notebook, tmp_path, **options):
    executed, _ = JudgedExecute(timeout=20, interrupt_grace=2, **options).preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    nbformat.validate(executed)
    return executed


HOOKS = '''import ast, sys
class Forgive(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(Forgive())
get_ipython().events.register("pre_run_cell", lambda info: (print("SEEN:", info.raw_cell), sys.displayhook("full marks")))
'''


def test_test_cells_are_judged_outside_the_kernel_which_never_sees_a_hidden_test(tmp_path):
    test = 'print("visible")\nassert double(2) == 4, "double(2) should be 4"\n### BEGIN HIDDEN TESTS\nassert double(5) == 10, "double: 5 -> 10"\n### END HIDDEN TESTS'
    notebook = _graded_notebook(
        ("setup", "import numpy as np"),
        ("solution", HOOKS + "def double(x):\n    return x * 2 if x < 3 else 0"),
        ("test", test),
        ("plain", "print('IN:', In)"),
    )
    executed = _judged(notebook, tmp_path)
    _, solution, tested, history = executed.cells
    assert [dict(o) for o in tested.outputs] == [
        {"output_type": "stream", "name": "stdout", "text": "visible\n"},
        {"output_type": "error", "ename": "AssertionError", "evalue": "double: 5 -> 10",
         "traceback": ["AssertionError: double: 5 -> 10"]}]
    assert tested.source == test  # the notebook keeps the whole cell for nbgrader
    seen = "".join(o.get("text", "") for o in history.outputs)
    assert "SEEN:" in seen and 'print("visible")' in seen  # the kernel ran the visible part ...
    assert "BEGIN HIDDEN" not in seen and "double(5)" not in seen  # ... and nothing hidden
    assert not list(tmp_path.iterdir()), "the exchange folder is removed"


def test_a_function_that_loops_fails_its_test_and_the_kernel_goes_on(tmp_path):
    notebook = _graded_notebook(
        ("solution", "def spin():\n    while True:\n        pass"),
        ("test", "spin()"),
        ("test", "assert 1 + 1 == 2"),
    )
    _, spun, after = _judged(notebook, tmp_path, ).cells
    assert spun.outputs[-1]["ename"] == "KernelUnavailable" and "20 s time limit" in spun.outputs[-1]["evalue"]
    assert after.outputs == []


def test_a_function_that_loops_is_stopped_at_its_assignments_shorter_limit(tmp_path):
    notebook = _graded_notebook(
        ("solution", "def spin():\n    while True:\n        pass"),
        ("test", "spin()"),
        ("test", "assert 1 + 1 == 2"),
    )
    executed, _ = JudgedExecute(timeout=20, interrupt_grace=2, timeout_by_assignment={"01_images": 3}).preprocess(
        notebook, {"metadata": {"path": str(tmp_path)}, "nbgrader": {"assignment": "01_images"}})
    _, spun, after = executed.cells
    assert spun.outputs[-1]["ename"] == "KernelUnavailable" and "3 s time limit" in spun.outputs[-1]["evalue"]
    assert after.outputs == []


def test_a_function_that_kills_its_kernel_fails_that_test_and_the_later_ones(tmp_path):
    notebook = _graded_notebook(
        ("solution", "import os\ndef crash():\n    os._exit(1)"),
        ("test", "crash()"),
        ("test", "assert True"),
    )
    _, crashed, after = _judged(notebook, tmp_path).cells
    assert crashed.outputs[-1]["ename"] == "KernelUnavailable"
    assert [(o.ename, o.evalue) for o in after.outputs] == [("KernelDied", "Not run: the kernel died in an earlier cell (cell 1).")]


def test_a_cell_with_a_grade_id_the_gradebook_does_not_know_becomes_a_plain_cell(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    from course.grading import pipeline

    monkeypatch.setenv("PATH", pipeline.nbgrader_env()["PATH"])  # the gradebook runs `alembic`
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db_url) as gradebook:
        gradebook.add_assignment("a")
        notebook = gradebook.add_notebook("n", "a")
        gradebook.add_grade_cell("known_test", "n", "a", max_score=1, cell_type="code")
        gradebook.add_source_cell("known_test", "n", "a", cell_type="code", source="assert True", locked=True)
    graded = {"grade": True, "solution": False, "locked": True, "points": 5, "schema_version": 3, "task": False}
    cells = [new_code_cell("assert True", metadata={"nbgrader": dict(graded, grade_id="known_test")}),
             new_code_cell("print('bonus')", metadata={"nbgrader": dict(graded, grade_id="pasted_from_elsewhere")})]
    resources = {"nbgrader": {"db_url": db_url, "assignment": "a", "notebook": "n"}}
    cleaned, _ = DropUnknownGradeIds().preprocess(new_notebook(cells=cells), resources)
    known, pasted = cleaned.cells
    assert known.metadata["nbgrader"]["grade_id"] == "known_test"
    assert "nbgrader" not in pasted.metadata


def test_a_display_update_from_the_kernel_cannot_rewrite_the_judges_result(tmp_path):
    """The kernel opens a display id while it runs the visible part of a test cell, then updates it
    from a later cell: nbclient would write the update into the judged cell's result (partial credit)."""
    hook = ('from IPython.display import display\n'
            'def _hook(result):\n'
            '    if "tiers" in (result.info.raw_cell or ""):\n'
            '        display({"text/plain": "placeholder"}, raw=True, display_id="forged")\n'
            'get_ipython().events.register("post_run_cell", _hook)\n'
            'accuracy = 0.99')
    test = 'print("tiers")\n### BEGIN HIDDEN TESTS\n_measured = 0.12\nfloat(sum(_measured >= t for t in (0.6, 0.7)))\n### END HIDDEN TESTS'
    forge = 'from IPython.display import update_display\nupdate_display({"text/plain": "2.0"}, raw=True, display_id="forged")'
    notebook = _graded_notebook(("solution", hook), ("test", test), ("plain", forge))
    tested = _judged(notebook, tmp_path).cells[1]
    assert [dict(o) for o in tested.outputs] == [
        {"output_type": "stream", "name": "stdout", "text": "tiers\n"},
        {"output_type": "execute_result", "execution_count": None, "metadata": {}, "data": {"text/plain": "0.0"}}]


def test_the_judge_starts_isolated_inside_the_kernels_sandbox():
    from course.grading.preprocessors import judge_command

    kernel = ["/py", "-m", "course.grading.sandbox", "--hide=/course", "--", "/py", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert judge_command(kernel) == ["/py", "-I", "-m", "course.grading.sandbox", "--hide=/course", "--",
                                     sys.executable, "-I", "-m", "course.grading.judge"]
    assert judge_command(["/py", "-m", "ipykernel_launcher", "-f", "x"]) == [sys.executable, "-I", "-m", "course.grading.judge"]


def test_a_message_from_the_judge_past_its_limit_stops_the_judge_and_is_never_read_whole(monkeypatch):
    """A judge that works caps what it sends; a line longer than MAX_JUDGE_LINE is a broken judge."""
    import pytest

    from course.grading import preprocessors as grading

    monkeypatch.setattr(grading, "MAX_JUDGE_LINE", 1000)
    talker = grading.JudgeProcess([sys.executable, "-c", "print('{\"op\": \"ready\"}'); print('x' * 5000); "
                                   "import time; time.sleep(60)"], cwd=".", log=None)
    assert talker.receive(timeout=30) == {"op": "ready"}
    with pytest.raises(RuntimeError, match=r"the judge stopped \(exit code -9\)"):
        talker.receive(timeout=30)


def test_the_judge_reads_the_model_files_as_submitted_whatever_the_notebook_does_to_them(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"as submitted")
    (tmp_path / "elsewhere.bin").write_bytes(b"a file that is no model file")
    (tmp_path / "linked.keras").symlink_to(tmp_path / "elsewhere.bin")  # never followed
    notebook = _graded_notebook(
        ("solution", "import os\nos.remove('model.keras')\nopen('model.keras', 'wb').write(b'rewritten')\n"
                     "open('new.keras', 'wb').write(b'written while grading')"),
        ("test", "from pathlib import Path as _Path\nfrom course.grading import checks as _checks\n"
                 "print({name: _checks.submitted_file(_Path(name)) and _checks.submitted_file(_Path(name)).read_bytes()\n"
                 "       for name in ('model.keras', 'new.keras', 'linked.keras')})"),
    )
    _, tested = _judged(notebook, tmp_path).cells
    assert tested.outputs[0]["text"] == "{'model.keras': b'as submitted', 'new.keras': None, 'linked.keras': None}\n"
    assert (tmp_path / "model.keras").read_bytes() == b"rewritten"  # the notebook's own view is its own


def test_submitted_model_files_are_regular_keras_files_within_the_limits(tmp_path, monkeypatch):
    from course.grading import preprocessors

    for name in ("b.keras", "a.keras", "c.keras"):
        (tmp_path / name).write_bytes(name.encode() * 10)
    (tmp_path / "notes.txt").write_text("not a model file")
    (tmp_path / "folder.keras").mkdir()
    (tmp_path / "fifo.keras").symlink_to("/dev/zero")
    assert preprocessors.submitted_model_files(tmp_path) == {
        "a.keras": b"a.keras" * 10, "b.keras": b"b.keras" * 10, "c.keras": b"c.keras" * 10}
    monkeypatch.setattr(preprocessors, "MAX_SUBMITTED_FILES", 2)  # past a limit: named, so its test fails
    assert preprocessors.submitted_model_files(tmp_path) == {"a.keras": b"a.keras" * 10, "b.keras": b"b.keras" * 10, "c.keras": None}
    monkeypatch.setattr(preprocessors, "MAX_SUBMITTED_BYTES", 150)
    assert preprocessors.submitted_model_files(tmp_path)["c.keras"] is None
    monkeypatch.setattr(preprocessors, "MAX_SUBMITTED_BYTES", 100)
    assert preprocessors.submitted_model_files(tmp_path) == {"a.keras": b"a.keras" * 10, "b.keras": None, "c.keras": None}
    assert preprocessors.submitted_model_files(tmp_path / "missing") == {}


def test_once_the_judge_has_stopped_the_later_test_cells_fail_instead_of_meeting_a_new_judge(monkeypatch):
    """A judge killed mid-notebook (the red team's 5 GB layer) was replaced by a fresh one, which had forgotten that
    hidden tests had run and which networks the build function had built: 02's foreign file then scored 9, not 7."""
    from course.grading import preprocessors as grading

    launched = []

    class Dying:
        process = type("Process", (), {"kill": lambda self: None})()

        def send(self, message):
            pass

        def receive(self, timeout):
            raise RuntimeError("the judge stopped (exit code -9)")

    execute = grading.JudgedExecute()
    # the attributes preprocess() sets, without a kernel:
    execute._judge, execute._judge_launched, execute._judge_ready, execute._judge_failed = None, False, False, None
    monkeypatch.setattr(execute, "_launch_judge", lambda: launched.append(1) or Dying())
    first = execute._judged_outputs("assert True")
    assert first[0]["evalue"] == "The grader could not run this test (the judge stopped (exit code -9))."
    later = execute._judged_outputs("assert True")
    assert later[0]["ename"] == "GraderError" and later[0]["evalue"].startswith(
        "Not judged: the grader's judge stopped in an earlier test cell (the judge stopped (exit code -9))")
    assert launched == [1], "no second judge"
