"""course.leaderboard: the capstone's ranking, read from autograded notebooks."""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course import leaderboard

ASSIGNMENT = "08_cifar_challenge"


def _autograded(root, student, printed_by_test=None, printed_elsewhere=None):
    test = new_code_cell("...", metadata={"nbgrader": {"grade_id": leaderboard.GRADE_ID, "grade": True}})
    if printed_by_test:
        test.outputs = [new_output("stream", name="stdout", text=f"Measured...\n{printed_by_test}\n")]
    other = new_code_cell("print(...)")
    if printed_elsewhere:
        other.outputs = [new_output("stream", name="stdout", text=printed_elsewhere + "\n")]
    folder = root / "autograded" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(new_notebook(cells=[other, test]), folder / f"{ASSIGNMENT}.ipynb")


def _line(accuracy, params):
    return leaderboard.MARKER + json.dumps({"accuracy": accuracy, "params": params})


def test_record_prints_the_line_entries_read(capsys):
    leaderboard.record({"accuracy": 0.851234, "params": 289642, "layers": []})
    assert capsys.readouterr().out == 'LEADERBOARD {"accuracy": 0.8512, "params": 289642}\n'


def test_ranked_by_accuracy_then_fewer_parameters_and_only_from_the_test_cell(tmp_path):
    _autograded(tmp_path, "ana", _line(0.81, 500_000))
    _autograded(tmp_path, "ben", _line(0.86, 900_000))
    _autograded(tmp_path, "cai", _line(0.81, 300_000))
    _autograded(tmp_path, "dev", printed_elsewhere=_line(0.99, 1))  # a line printed by the student's own cell
    ranked, unmeasured = leaderboard.entries(tmp_path, ASSIGNMENT)
    assert ranked == [leaderboard.Entry("ben", 0.86, 900_000), leaderboard.Entry("cai", 0.81, 300_000),
                      leaderboard.Entry("ana", 0.81, 500_000)]
    assert unmeasured == ["dev"]
    assert leaderboard.format_table(ranked, unmeasured).splitlines() == [
        "rank  student                  test accuracy   parameters",
        "   1  ben                             86.00%      900,000",
        "   2  cai                             81.00%      300,000",
        "   3  ana                             81.00%      500,000",
        "no model measured: dev",
    ]
    leaderboard.write_csv(tmp_path / "leaderboard.csv", ranked)
    assert (tmp_path / "leaderboard.csv").read_text().splitlines() == [
        "rank,student,accuracy,params", "1,ben,0.8600,900000", "2,cai,0.8100,300000", "3,ana,0.8100,500000"]
