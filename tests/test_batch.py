"""course.batch: `course grade` grades a class in parallel, each submission in its own workspace.

Every sample submission's exact score through `course grade` is checked by
tests/test_pipeline.py (`course demo` grades with it); these tests cover the
limits, regrading, collecting and reporting.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from course import batch, pipeline, sandbox

ROOT = Path(__file__).parents[1]
ASSIGNMENT = "01_images"


def _course(tmp_path: Path, only: list[str]) -> Path:
    root = tmp_path / "course"
    (root / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    pipeline.release(root, ASSIGNMENT, capture=True)
    pipeline.submit_samples(root, ASSIGNMENT, ROOT / pipeline.SAMPLES_DIR)
    for student in {p.name for p in (root / "submitted").iterdir()} - set(only):
        shutil.rmtree(root / "submitted" / student)
    return root


def _grades(root: Path) -> dict[str, float]:
    with open(root / "grades.csv", newline="") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    """A class of two graded with a 45 s wall-clock limit: a correct submission and one that loops forever."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COURSE_CELL_TIMEOUT", "600")  # only the wall-clock limit can stop the loop
        root = _course(tmp_path_factory.mktemp("batch"), only=["infinite_loop", "correct"])
        outcomes = {o.student: o for o in batch.grade(root, [ASSIGNMENT], jobs=2, wall_seconds=45)}
    return root, outcomes


def test_a_submission_past_its_wall_clock_limit_is_stopped_and_scored_zero(looping):
    root, outcomes = looping
    assert outcomes["infinite_loop"].score == 0 and not outcomes["infinite_loop"].graded
    assert outcomes["infinite_loop"].problems == ["stopped after the 45 s limit"]
    assert outcomes["infinite_loop"].seconds < 90
    assert outcomes["correct"].score == 10 and outcomes["correct"].problems == []
    assert _grades(root) == {"infinite_loop": 0.0, "correct": 10.0}
    assert list((root / "autograded" / "correct" / ASSIGNMENT).glob("*.ipynb"))
    assert list((root / "feedback" / "correct" / ASSIGNMENT).glob("*.html"))
    assert (root / "logs" / ASSIGNMENT / "infinite_loop.log").is_file()


def test_regrading_replaces_the_earlier_grades(looping, capsys):
    root, _ = looping
    shutil.rmtree(root / "submitted" / "infinite_loop")
    shutil.rmtree(root / "submitted" / "correct")
    shutil.copytree(ROOT / "release" / ASSIGNMENT, root / "submitted" / "correct" / ASSIGNMENT)  # now unsolved
    outcomes = batch.grade(root, [ASSIGNMENT], jobs=1)
    assert [(o.student, o.score) for o in outcomes] == [("correct", 0)]
    assert _grades(root)["correct"] == 0
    out = capsys.readouterr().out
    assert "Grading 1 submissions of 01_images with 1 worker(s)..." in out
    assert "[####################] 1/1  01_images        correct" in out


def test_several_assignments_share_the_workers_and_each_gets_its_grades_and_feedback(tmp_path, capsys):
    root = _course(tmp_path, only=["correct", "empty"])
    again = "01_again"  # a second assignment: 01 under another name
    shutil.copytree(ROOT / "source" / ASSIGNMENT, root / "source" / again)
    pipeline.release(root, again, capture=True)
    shutil.copytree(root / "submitted" / "correct" / ASSIGNMENT, root / "submitted" / "correct" / again)
    outcomes = batch.grade(root, [ASSIGNMENT, again], jobs=2)
    assert [(o.assignment, o.student, o.score) for o in outcomes] == [
        (ASSIGNMENT, "correct", 10), (ASSIGNMENT, "empty", 0), (again, "correct", 10)]
    assert "Grading 3 submissions of 01_images, 01_again with 2 worker(s)..." in capsys.readouterr().out
    with open(root / "grades.csv", newline="") as f:
        scores = {(row["assignment"], row["student_id"]): float(row["score"]) for row in csv.DictReader(f) if row["timestamp"]}
    assert scores == {(ASSIGNMENT, "correct"): 10, (ASSIGNMENT, "empty"): 0, (again, "correct"): 10}
    assert list((root / "feedback" / "correct" / again).glob("*.html"))
    assert (root / "logs" / again / "correct.log").is_file()


def test_memory_limit_kills_the_processes_under_nbgrader_not_nbgrader():
    hog = "import numpy, time; blocks = [numpy.ones(2**27) for _ in range(4)]; time.sleep(60)"  # 4 GiB
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hog!r}]); print('parent lives')"],
                              stdout=subprocess.PIPE, text=True)
    outcome = batch.Outcome(ASSIGNMENT, "hog", 0.0)
    batch._watch_memory(parent, 1 * batch.GIB, outcome)
    assert parent.stdout.read() == "parent lives\n"
    assert outcome.problems == ["kernel killed at the 1 GiB memory limit"]


def test_zip_collect_moves_an_lms_download_into_submitted(tmp_path):
    root = _course(tmp_path, only=[])
    archive = root / "downloaded" / ASSIGNMENT / "archive"
    archive.mkdir(parents=True)
    release = (ROOT / "release" / ASSIGNMENT / "01_images.ipynb").read_bytes()
    with zipfile.ZipFile(archive / "download.zip", "w") as download:  # files named <student>_<notebook>
        download.writestr("alice_01_images.ipynb", release)
        download.writestr("bob-2_01_images.ipynb", release)
    batch.collect_zips(root, ASSIGNMENT)
    assert batch.students(root, ASSIGNMENT) == ["alice", "bob-2"]
    assert (root / "submitted" / "bob-2" / ASSIGNMENT / "01_images.ipynb").read_bytes() == release


def test_an_empty_lms_download_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="Nothing to collect: put the LMS download"):
        batch.collect_zips(tmp_path, ASSIGNMENT)


def test_without_bubblewrap_grading_refuses_unless_told_not_to_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "available", lambda: False)
    with pytest.raises(SystemExit, match="apt-get install bubblewrap"):
        batch.grade(tmp_path, [ASSIGNMENT])
    with pytest.raises(SystemExit, match="No submissions of 01_images"):  # gets past the check
        batch.grade(tmp_path, [ASSIGNMENT], sandboxed=False)


def test_summary_lists_each_assignments_distribution_and_problems():
    outcomes = [batch.Outcome("01_images", "a", 3.0, 10.0, 10.0),
                batch.Outcome("01_images", "b", 4.0, 0.0, 10.0, ["stopped after the 5 s limit"]),
                batch.Outcome("01_images", "c", 5.0, 6.0, 10.0),
                batch.Outcome("02_mnist_mlp", "a", 9.0, None, None, ["nbgrader failed (exit 1)"], graded=False)]
    assert batch.summary(outcomes) == ("01_images: 3 submissions; scores min 0, median 6, max 10\n"
                                       "  problem: b: stopped after the 5 s limit\n"
                                       "02_mnist_mlp: 1 submissions; none graded\n"
                                       "  problem: a: nbgrader failed (exit 1)")
    assert outcomes[1].line() == "01_images        b                              0/10      4 s  (stopped after the 5 s limit)"


def test_problems_in_the_log_are_cell_timeouts_and_kernel_deaths():
    log = ("[AutogradeApp | ERROR] Timeout waiting for execute reply (60s).\n"
           "[AutogradeApp | ERROR] Interrupting kernel\n"
           "[AutogradeApp | ERROR] Timeout waiting for execute reply (60s).\n"
           "[AutogradeApp | WARNING] The kernel died in cell 7; that cell and the ones after it fail.\n")
    assert batch.problems_in_log(log) == ["2 cell(s) stopped at the 60 s cell time limit", "the kernel died 1 time(s)"]
    assert batch.problems_in_log("[AutogradeApp | INFO] Writing 26242 bytes\n") == []
    swallowed = ("[AutogradeApp | ERROR] Timeout waiting for execute reply (60s).\n"
                 "[AutogradeApp | ERROR] The cell ignored the interrupt for 30 s: killing the kernel.\n"
                 "[AutogradeApp | WARNING] The kernel died in cell 9; that cell and the ones after it fail.\n")
    assert batch.problems_in_log(swallowed) == ["1 cell(s) stopped at the 60 s cell time limit",
                                                "a cell ignored its interrupt: kernel killed"]


def test_progress_bar():
    assert batch.progress_bar(0, 20) == "[....................]  0/20"
    assert batch.progress_bar(5, 20) == "[#####...............]  5/20"
    assert batch.progress_bar(3, 3, width=6) == "[######] 3/3"


def test_no_submissions_is_a_clear_error(tmp_path):
    root = tmp_path / "course"
    (root / "submitted").mkdir(parents=True)
    with pytest.raises(SystemExit, match="No submissions of 01_images"):
        batch.grade(root, [ASSIGNMENT])
