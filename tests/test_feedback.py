"""course.grading.feedback: hidden tests and their tracebacks never reach a student, and a submission's scripts never run in a grader's page."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course.grading.feedback import HideHiddenTests, SanitizeSubmittedHTML

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


def test_a_submissions_html_is_cleaned_and_its_scripts_dropped():
    from nbformat.v4 import new_markdown_cell

    summary = '<pre style="white-space:pre"><span style="font-weight: bold">Model: "sequential"</span></pre>'
    code = new_code_cell("display(...)", outputs=[
        new_output("display_data", data={"text/html": "<b>hi</b><script>fetch('/formgrader/api/grade')</script>",
                                         "text/plain": "hi"}),
        new_output("display_data", data={"text/html": summary, "text/plain": "Model"}),
        new_output("display_data", data={"application/javascript": "alert(1)"}),
        new_output("display_data", data={"image/svg+xml": "<svg onload='alert(1)'/>", "image/png": "iVBORw0KGgo="}),
        new_output("execute_result", data={"text/plain": "0.5", "text/markdown": "[x](javascript:alert(1))<img src=x onerror=alert(1)>"},
                   execution_count=1),
        new_output("stream", name="stdout", text="<script>printed, shown as text</script>\n"),
        new_output("display_data", data={"image/png": "iVBORw0KGgo="},  # nbconvert writes the width unquoted
                   metadata={"image/png": {"width": "1 onerror=alert(1)", "height": 20}, "width": 640, "isolated": True}),
        new_output("display_data", data={"text/markdown": "- item\n\n  ```\n  a\n\n  [open](javascript:alert(2))\n  ```\n"}),
    ])
    answer = new_markdown_cell("My answer: <img src=x onerror=alert(1)> and a < b.\n\n> a quote")
    answer.metadata["nbgrader"] = {"grade": True, "grade_id": "answer", "locked": False, "points": 1, "schema_version": 3,
                                   "solution": True, "task": False}
    plain_answer = new_markdown_cell("> Quoted: x < 3 & y > 2")
    pictured = new_markdown_cell("![mine](attachment:a.png) [docs](https://keras.io) [x]: javascript:alert(1)",
                                 attachments={"a.png": {"image/png": "iVBORw0KGgo="}, "b.svg": {"image/svg+xml": "<svg/>"}})
    instructor = new_markdown_cell("Instructions <b>in bold</b>: <kbd>Shift</kbd>")
    instructor.metadata["nbgrader"] = {"grade": False, "grade_id": "intro", "locked": True, "schema_version": 3,
                                       "solution": False, "task": False}
    nb = new_notebook(cells=[code, answer, plain_answer, instructor, pictured])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"w": {"value": "kept inputs"}}}}
    nb, _ = SanitizeSubmittedHTML().preprocess(nb, {})
    assert "widgets" not in nb.metadata
    outputs = [dict(o.get("data", {})) for o in nb.cells[0].outputs]
    assert outputs == [
        {"text/html": "<b>hi</b>&lt;script&gt;fetch('/formgrader/api/grade')&lt;/script&gt;", "text/plain": "hi"},
        {"text/html": '<pre style="white-space:pre;"><span style="font-weight: bold;">Model: "sequential"</span></pre>',
         "text/plain": "Model"},
        {"text/plain": "[an output the grader does not show: it could run code in the page]"},
        {"image/png": "iVBORw0KGgo="},
        {"text/plain": "0.5", "text/markdown": "<p><a>x</a><img></p>\n"},
        {},
        {"image/png": "iVBORw0KGgo="},
        {"text/markdown": "<ul>\n<li><p>item</p>\n<pre><code>a\n\n&#91;open&#93;(javascript:alert(2))\n</code></pre>\n</li>\n</ul>\n"},
    ]
    assert nb.cells[0].outputs[6].metadata == {"width": 640, "image/png": {"height": 20}}
    assert nb.cells[0].outputs[5].text == "<script>printed, shown as text</script>\n"  # escaped when rendered
    assert nb.cells[1].source == "<p>My answer: <img> and a &lt; b.</p>\n<blockquote>\n<p>a quote</p>\n</blockquote>\n"
    assert nb.cells[2].source == "> Quoted: x < 3 & y > 2"  # no tag: left as written
    assert nb.cells[3].source == "Instructions <b>in bold</b>: <kbd>Shift</kbd>"  # the instructor's, locked
    assert nb.cells[4].source == ('<p><img src="data:image/png;base64,iVBORw0KGgo=" alt="mine"> '
                                  '<a href="https://keras.io">docs</a> &#91;x&#93;: javascript:alert(1)</p>\n')
    assert nb.cells[4].attachments == {"a.png": {"image/png": "iVBORw0KGgo="}, "b.svg": {}}
    nbformat.validate(nb)


def test_outputs_of_cells_run_after_hidden_tests_are_not_in_the_feedback():
    from course.grading.feedback import HIDDEN_INPUTS_NOTE, OUTPUT_NOT_SHOWN, HideOutputsAfterHiddenTests

    def solution(text):
        cell = new_code_cell("print(...)", outputs=[new_output("stream", name="stdout", text=text)])
        cell.metadata["nbgrader"] = {"grade": False, "grade_id": f"s{len(text)}", "locked": False, "schema_version": 3,
                                     "solution": True, "task": False}
        return cell

    visible_only = _graded('assert f(1) == 2, "f(1) should be 2"', [new_output("stream", name="stdout", text="ok\n")])
    hidden = _graded(TEST_SOURCE, [_error("f must add one")])
    later_test = _graded(TEST_SOURCE, [new_output("stream", name="stdout", text="judged\n")])
    logged = new_code_cell("print(LOGGED)", outputs=[
        new_output("stream", name="stdout", text="f was called with 41\n"),
        new_output("error", ename="ValueError", evalue="41", traceback=["ValueError: 41"])])
    nb = new_notebook(cells=[solution("before\n"), visible_only, solution("still before\n"), hidden, solution("after\n"),
                             logged, new_code_cell("pass"), later_test])
    nb, _ = HideOutputsAfterHiddenTests().preprocess(nb, {})
    texts = [[o.get("text") or o.get("evalue") for o in cell.outputs] for cell in nb.cells]
    assert texts == [["before\n"], ["ok\n"], ["still before\n"], ["f must add one"], [HIDDEN_INPUTS_NOTE],
                     [OUTPUT_NOT_SHOWN], [], ["judged\n"]]
    nbformat.validate(nb)


def test_a_visible_failure_after_the_hidden_tests_keeps_its_line_but_not_its_message():
    """After the first hidden test the kernel may hold its inputs, and a function can return them to a visible
    test whose message quotes what it got: that message stays in formgrader, not in the feedback."""
    from course.grading.feedback import VISIBLE_MESSAGE_NOT_SHOWN, HideOutputsAfterHiddenTests

    line = 'In the test cell, line 1: assert f(1) == 2, f"f(1) should be 2, got {f(1)}"'

    def judged(name, message, visible=True):
        return new_output("error", ename=name, evalue=message,
                          traceback=[line, f"{name}: {message}"] if visible else [f"{name}: {message}"])

    before = _graded('assert f(1) == 2, "f(1) should be 2"', [judged("AssertionError", "f(1) should be 2, got [255, 0, 7]")])
    first_hidden = _graded(TEST_SOURCE, [judged("AssertionError", "f(1) should be 2, got [255, 0, 8]")])
    later = [_graded(TEST_SOURCE, [judged("AssertionError", "f(1) should be 2, got [255, 0, 9]")]),
             _graded(TEST_SOURCE, [judged("LEAKED_255_0_9", "f() raised LEAKED_255_0_9: 255 0 9")]),
             _graded(TEST_SOURCE, [judged("ValueError", "f() raised ValueError", visible=False)]),
             _graded(TEST_SOURCE, [judged("LEAKED_255_0_9", "f() raised an exception", visible=False)]),
             _graded(TEST_SOURCE, [judged("AssertionError", "f must add one", visible=False)])]
    nb = new_notebook(cells=[before, first_hidden, *later])
    for number, cell in enumerate(nb.cells, start=777114151):  # the kernel's counter: the student sets it
        cell.execution_count = number
    nb, _ = HideOutputsAfterHiddenTests().preprocess(nb, {})
    assert [cell.execution_count for cell in nb.cells] == [777114151, 777114152, None, None, None, None, None]
    errors = [(o.ename, o.evalue, o.traceback) for cell in nb.cells for o in cell.outputs]
    assert errors == [
        ("AssertionError", "f(1) should be 2, got [255, 0, 7]", [line, "AssertionError: f(1) should be 2, got [255, 0, 7]"]),
        ("AssertionError", "f(1) should be 2, got [255, 0, 8]", [line, "AssertionError: f(1) should be 2, got [255, 0, 8]"]),
        ("AssertionError", VISIBLE_MESSAGE_NOT_SHOWN, [line, f"AssertionError: {VISIBLE_MESSAGE_NOT_SHOWN}"]),
        ("StudentCodeError", VISIBLE_MESSAGE_NOT_SHOWN, [line, f"StudentCodeError: {VISIBLE_MESSAGE_NOT_SHOWN}"]),
        ("ValueError", "f() raised ValueError", ["ValueError: f() raised ValueError"]),
        ("StudentCodeError", "f() raised an exception", ["StudentCodeError: f() raised an exception"]),
        ("AssertionError", "f must add one", ["AssertionError: f must add one"]),
    ]
    nb, _ = HideHiddenTests().preprocess(nb, {})  # the next step in feedback keeps the judge's errors whole
    assert [o.traceback for cell in nb.cells[2:4] for o in cell.outputs] == [
        [line, f"AssertionError: {VISIBLE_MESSAGE_NOT_SHOWN}"], [line, f"StudentCodeError: {VISIBLE_MESSAGE_NOT_SHOWN}"]]
    nbformat.validate(nb)


def test_what_the_judge_marks_as_printed_after_the_hidden_tests_stays_in_formgrader_and_not_in_the_feedback():
    from course.grading.feedback import VISIBLE_PRINT_NOT_SHOWN, HideOutputsAfterHiddenTests, SanitizeSubmittedHTML
    from course.grading.judge import PRINTED_AFTER_HIDDEN

    def printed(marked):
        return new_output("display_data", data={"text/plain": "Test accuracy 89359839930500.00%\n"},
                          metadata={PRINTED_AFTER_HIDDEN: True} if marked else {})

    test = _graded(TEST_SOURCE, [new_output("stream", name="stdout", text="judged\n"), printed(True)])
    forged = new_code_cell("print(...)", outputs=[printed(True)])  # a student's own cell cannot mark its output
    forged.metadata["nbgrader"] = {"grade": False, "grade_id": "s", "locked": False, "schema_version": 3,
                                   "solution": True, "task": False}
    nb = new_notebook(cells=[test, forged])
    nb, _ = SanitizeSubmittedHTML().preprocess(nb, {})  # in autograde: formgrader shows the marked print
    assert nb.cells[0].outputs[1].metadata == {PRINTED_AFTER_HIDDEN: True} and nb.cells[1].outputs[0].metadata == {}
    nb, _ = HideOutputsAfterHiddenTests().preprocess(nb, {})
    assert [o.get("text") for o in nb.cells[0].outputs] == ["judged\n", VISIBLE_PRINT_NOT_SHOWN]
    nbformat.validate(nb)

