"""course.batch: `course grade` grades a class in parallel, each submission in its own workspace."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from course import batch, pipeline, submissions

ROOT = Path(__file__).parents[1]
ASSIGNMENT = "01_images"
SPECS = {s.student: s for s in submissions.load_specs(ROOT / pipeline.SAMPLES_DIR / f"{ASSIGNMENT}.yml")}


def _course(tmp_path: Path, only: list[str] | None = None) -> Path:
    root = tmp_path / "course"
    (root / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    pipeline.release(root, ASSIGNMENT, capture=True)
    pipeline.submit_samples(root, ASSIGNMENT, ROOT / pipeline.SAMPLES_DIR)
    for student in set(SPECS) - set(only or SPECS):
        shutil.rmtree(root / "submitted" / student)
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COURSE_CELL_TIMEOUT", "20")  # the looping sample
        root = _course(tmp_path_factory.mktemp("batch"))
        outcomes = batch.grade(root, ASSIGNMENT, jobs=2)
    with open(root / "grades.csv", newline="") as f:
        grades = {row["student_id"]: row for row in csv.DictReader(f)}
    return root, {o.student: o for o in outcomes}, grades


@pytest.mark.parametrize("student", sorted(SPECS))
def test_two_workers_give_every_submission_exactly_its_score(graded, student):
    root, outcomes, grades = graded
    assert outcomes[student].score == SPECS[student].expected_score
    assert float(grades[student]["score"]) == SPECS[student].expected_score
    assert grades[student]["timestamp"].startswith("2026-01-01 12:00:00")
    assert list((root / "autograded" / student / ASSIGNMENT).glob("*.ipynb"))
    assert list((root / "feedback" / student / ASSIGNMENT).glob("*.html"))


def test_regrading_replaces_the_earlier_grades(graded, monkeypatch):
    root, _, _ = graded
    monkeypatch.setenv("COURSE_CELL_TIMEOUT", "20")  # the looping sample is graded again
    shutil.rmtree(root / "submitted" / "correct")
    shutil.copytree(root / "submitted" / "empty", root / "submitted" / "correct")
    outcomes = {o.student: o for o in batch.grade(root, ASSIGNMENT, jobs=2) if o.student == "correct"}
    assert outcomes["correct"].score == 0


def test_a_submission_past_its_wall_clock_limit_is_stopped_and_scored_zero(tmp_path, monkeypatch, capsys):
    root = _course(tmp_path, only=["infinite_loop", "correct"])
    monkeypatch.setenv("COURSE_CELL_TIMEOUT", "600")  # only the wall-clock limit can stop the loop
    outcomes = {o.student: o for o in batch.grade(root, ASSIGNMENT, jobs=2, wall_seconds=45)}
    looping = outcomes["infinite_loop"]
    assert looping.score == 0 and looping.problems == ["stopped after the 45 s limit"]
    assert looping.seconds < 90
    assert outcomes["correct"].score == 10 and outcomes["correct"].problems == []
    out = capsys.readouterr().out
    assert "infinite_loop" in out and "stopped after the 45 s limit" in out
    with open(root / "grades.csv", newline="") as f:
        assert {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)} == {"infinite_loop": 0.0, "correct": 10.0}


def test_summary_lists_distribution_and_problems():
    outcomes = [batch.Outcome("a", 3.0, 10.0, 10.0), batch.Outcome("b", 4.0, 0.0, 10.0, ["stopped after the 5 s limit"]), batch.Outcome("c", 5.0, 6.0, 10.0)]
    assert batch.summary(outcomes) == "3 submissions; scores min 0, median 6, max 10\n  problem: b: stopped after the 5 s limit"
    assert outcomes[1].line() == "b                          0/10      4 s  (stopped after the 5 s limit)"


def test_no_submissions_is_a_clear_error(tmp_path):
    root = tmp_path / "course"
    (root / "submitted").mkdir(parents=True)
    with pytest.raises(SystemExit, match="No submissions of 01_images"):
        batch.grade(root, ASSIGNMENT)
