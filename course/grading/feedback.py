"""Feedback that shows students their visible tests and results, never the hidden tests.

nbgrader's ``generate_feedback`` renders the autograded notebook, whose test
cells hold the hidden tests again (nbgrader issues 917 and 1363), and a failed
hidden test's traceback quotes the lines around the failure. This
preprocessor, configured in ``nbgrader_config.py``, removes the hidden regions
and cuts those cells' tracebacks to the exception's one-line message, which
the test author writes for students. Errors written by the judge
(course/grading/judge.py), which quote a failing line only when it is visible, stay whole.
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests


class HideHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` for feedback, which also shortens the tracebacks of the cells it cleared."""

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        had_hidden_tests = self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if had_hidden_tests:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and not _from_the_judge(output):
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


def _from_the_judge(output: NotebookNode) -> bool:
    """An error as the judge (course/grading/judge.py) writes it: the message, after the failing line only when that
    line is visible. It quotes no hidden test, so it stays whole."""
    lines = list(output.get("traceback", []))
    message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return (1 <= len(lines) <= 2 and lines[-1] == message
            and (len(lines) == 1 or lines[0].startswith("In the test cell, line ")))
