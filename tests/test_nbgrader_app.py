"""course/grading/nbgrader_app.py: nbgrader's command line, started without the grammar no notebook needs."""

from __future__ import annotations

import json
import subprocess
import sys

from course.grading import nbgrader_app, pipeline

PROBE = """
import json, sys
{lean}
import nbformat
from jsonschema import FormatChecker
notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
nbformat.validate(notebook)
print(json.dumps({{"grammar_built": "lark" in sys.modules, "formats": sorted(FormatChecker.checkers)}}))
"""


def _probe(lean: bool) -> dict:
    code = PROBE.format(lean="from course.grading.nbgrader_app import start_lean; start_lean()" if lean else "")
    return json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def test_a_lean_start_builds_no_grammar_and_drops_only_the_two_iri_formats():
    plain, lean = _probe(lean=False), _probe(lean=True)
    assert plain["grammar_built"] and not lean["grammar_built"]
    assert set(plain["formats"]) - set(lean["formats"]) == {"iri", "iri-reference"}
    assert set(lean["formats"]) <= set(plain["formats"])


def test_a_module_already_imported_is_left_as_it_is(monkeypatch):
    module = type(sys)("rfc3987_syntax")
    monkeypatch.setitem(sys.modules, "rfc3987_syntax", module)
    nbgrader_app.start_lean()
    assert sys.modules["rfc3987_syntax"] is module


def test_the_pipeline_runs_nbgrader_through_it_and_its_exit_status_comes_back(tmp_path):
    version = subprocess.run(pipeline.nbgrader_command("--version"), capture_output=True, text=True, cwd=tmp_path)
    assert version.returncode == 0 and "nbgrader version" in version.stdout
    missing = subprocess.run(pipeline.nbgrader_command("generate_assignment", "no_such_assignment"),
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode != 0
