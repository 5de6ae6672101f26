"""course.grading.leaderboard: the capstone's ranking, read from autograded notebooks."""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from course.grading import leaderboard

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


def _line(accuracy, params, **training):
    return leaderboard.MARKER + json.dumps({"accuracy": accuracy, "params": params, **training})


def test_record_prints_the_line_entries_read(capsys):
    leaderboard.record({"accuracy": 0.851234, "params": 289642, "layers": []})
    assert capsys.readouterr().out == 'LEADERBOARD {"accuracy": 0.8512, "params": 289642}\n'


def test_record_adds_what_the_model_file_says_of_its_training_and_whether_it_used_the_course_split(capsys):
    training = {"epochs": 20, "minutes": 19.1, "device": "GPU: Tesla T4", "cpu_cores": 2, "train_labels_sha256": "aa"}
    leaderboard.record({"accuracy": 0.8, "params": 10, "training": training}, course_labels_digest="aa")
    leaderboard.record({"accuracy": 0.8, "params": 10, "training": training}, course_labels_digest="bb")
    leaderboard.record({"accuracy": 0.8, "params": 10, "training": {"device": "CPU", "minutes": "soon"}}, "aa")
    assert [json.loads(line[len(leaderboard.MARKER):]) for line in capsys.readouterr().out.splitlines()] == [
        {"accuracy": 0.8, "params": 10, "device": "GPU: Tesla T4", "minutes": 19.1, "epochs": 20, "split": "course"},
        {"accuracy": 0.8, "params": 10, "device": "GPU: Tesla T4", "minutes": 19.1, "epochs": 20, "split": "other"},
        {"accuracy": 0.8, "params": 10, "device": "CPU"}]


def test_cpu_and_gpu_runs_are_ranked_apart_and_runs_outside_the_rules_are_marked(tmp_path):
    _autograded(tmp_path, "ana", _line(0.84, 300_000, device="CPU", minutes=19.1, epochs=20, split="course"))
    _autograded(tmp_path, "ben", _line(0.90, 900_000, device="GPU: Tesla T4", minutes=9.5, epochs=60, split="course"))
    _autograded(tmp_path, "cai", _line(0.86, 400_000, device="CPU", minutes=42.0, epochs=30, split="course"))
    _autograded(tmp_path, "dev", _line(0.88, 500_000, device="GPU: A100", minutes=8.0, epochs=40, split="other"))
    _autograded(tmp_path, "eve", _line(0.70, 100_000))  # a file without a training record
    ranked, unmeasured = leaderboard.entries(tmp_path, ASSIGNMENT)
    assert {board: [e.student for e in entries] for board, entries in leaderboard.boards(ranked).items()} == {
        "CPU": ["cai", "ana"], "GPU": ["ben", "dev"], "not recorded": ["eve"]}
    assert leaderboard.format_table(ranked, unmeasured).splitlines() == [
        "trained on a CPU",
        "rank  student                  test accuracy   parameters  minutes epochs",
        "   1  cai                             86.00%      400,000     42.0     30  *",
        "   2  ana                             84.00%      300,000     19.1     20",
        "* cai: 42 min on a CPU (limit 30)",
        "",
        "trained on a GPU",
        "rank  student                  test accuracy   parameters  minutes epochs",
        "   1  ben                             90.00%      900,000      9.5     60",
        "   2  dev                             88.00%      500,000      8.0     40  *",
        "* dev: trained on other images than the training split",
        "",
        "no training record in the model file",
        "rank  student                  test accuracy   parameters  minutes epochs",
        "   1  eve                             70.00%      100,000",
    ]
    leaderboard.write_csv(tmp_path / "leaderboard.csv", ranked)
    assert (tmp_path / "leaderboard.csv").read_text().splitlines()[:3] == [
        "board,rank,student,accuracy,params,device,minutes,epochs,split,outside_rules",
        "CPU,1,cai,0.8600,400000,CPU,42.0,30,course,42 min on a CPU (limit 30)",
        "CPU,2,ana,0.8400,300000,CPU,19.1,20,course,"]


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
        "no training record in the model file",
        "rank  student                  test accuracy   parameters  minutes epochs",
        "   1  ben                             86.00%      900,000",
        "   2  cai                             81.00%      300,000",
        "   3  ana                             81.00%      500,000",
        "no model measured: dev",
    ]
    leaderboard.write_csv(tmp_path / "leaderboard.csv", ranked)
    assert (tmp_path / "leaderboard.csv").read_text().splitlines() == [
        "board,rank,student,accuracy,params,device,minutes,epochs,split,outside_rules",
        "not recorded,1,ben,0.8600,900000,not recorded,,,,", "not recorded,2,cai,0.8100,300000,not recorded,,,,",
        "not recorded,3,ana,0.8100,500000,not recorded,,,,"]


def test_a_record_that_looks_like_a_spreadsheet_formula_reaches_the_csv_as_text(tmp_path):
    _autograded(tmp_path, "-1+1", _line(0.8, 10, device='=HYPERLINK("http://x","click")', minutes=1.0))
    ranked, _ = leaderboard.entries(tmp_path, ASSIGNMENT)
    leaderboard.write_csv(tmp_path / "leaderboard.csv", ranked)
    assert (tmp_path / "leaderboard.csv").read_text().splitlines()[1] == (
        'not recorded,1,\'-1+1,0.8000,10,"\'=HYPERLINK(""http://x"",""click"")",1.0,,,')
