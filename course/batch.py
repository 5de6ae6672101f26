"""Grade a whole class with nbgrader, in parallel: ``course grade ASSIGNMENT --jobs N``.

nbgrader autogrades one submission after another, in one process writing one
SQLite gradebook (nbgrader issue 174). Here each submission is autograded by
nbgrader itself, in its own throwaway workspace holding a copy of the
gradebook, the configuration and that one submission, so parallel workers
never share a database. Each workspace's grades are then merged into the
course's gradebook, one at a time, and the autograded notebook is copied back.
A submission that exceeds its wall-clock limit is killed and graded 0, with
the reason in its line of the report.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from course import pipeline


@dataclass
class Outcome:
    """How one submission's grading went."""

    student: str
    seconds: float
    score: float | None = None
    max_score: float | None = None
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        score = f"{self.score:g}/{self.max_score:g}" if self.score is not None else "not graded"
        problems = f"  ({'; '.join(self.problems)})" if self.problems else ""
        return f"{self.student:<20} {score:>10} {self.seconds:6.0f} s{problems}"


def students(root: Path, assignment: str) -> list[str]:
    """Students with a submission of ``assignment`` in ``root/submitted``."""
    return sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())


def _database(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def grade_one(root: Path, assignment: str, student: str, workdir: Path, wall_seconds: float) -> Outcome:
    """Autograde one submission in a workspace of its own; the course folder is only read."""
    start = time.monotonic()
    outcome = Outcome(student, 0.0)
    workspace = workdir / student
    (workspace / "submitted" / student).mkdir(parents=True)
    shutil.copytree(root / "submitted" / student / assignment, workspace / "submitted" / student / assignment)
    shutil.copy(root / "nbgrader_config.py", workspace)
    shutil.copy(root / "gradebook.db", workspace)
    command = pipeline.nbgrader_command("autograde", assignment, "--student", student, "--force")
    with open(workspace / "autograde.log", "w") as log:
        process = subprocess.Popen(command, cwd=workspace, env=pipeline.nbgrader_env(), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=wall_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the kernel too: it is in the same session
            process.wait()
            outcome.problems.append(f"stopped after the {wall_seconds:g} s limit")
    if process.returncode not in (0, -signal.SIGKILL):
        outcome.problems.append(f"nbgrader failed (exit {process.returncode}), see {workspace / 'autograde.log'}")
    outcome.seconds = time.monotonic() - start
    return outcome


def merge(root: Path, workspace: Path, assignment: str, outcome: Outcome) -> None:
    """Copy one workspace's submission, grades and comments into the course gradebook and folder."""
    with Gradebook(_database(workspace)) as source:
        try:
            graded = source.find_submission(assignment, outcome.student)
        except MissingEntry:
            graded = None
        with Gradebook(_database(root)) as target:
            target.update_or_create_student(outcome.student)
            try:
                target.remove_submission(assignment, outcome.student)
            except MissingEntry:
                pass
            extra = {"timestamp": graded.timestamp} if graded is not None and graded.timestamp else {}
            submission = target.add_submission(assignment, outcome.student, **extra)
            if graded is not None and not outcome.problems:
                for notebook in graded.notebooks:
                    for grade in notebook.grades:
                        into = target.find_grade(grade.name, notebook.name, assignment, outcome.student)
                        into.auto_score, into.manual_score = grade.auto_score, grade.manual_score
                        into.extra_credit, into.needs_manual_grade = grade.extra_credit, grade.needs_manual_grade
                    for comment in notebook.comments:
                        into = target.find_comment(comment.name, notebook.name, assignment, outcome.student)
                        into.auto_comment, into.manual_comment = comment.auto_comment, comment.manual_comment
                    into = target.find_submission_notebook(notebook.name, assignment, outcome.student)
                    into.flagged, into.late_submission_penalty = notebook.flagged, notebook.late_submission_penalty
            else:
                # Not graded (killed or nbgrader failed): every test scores 0, visibly.
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        grade.auto_score, grade.needs_manual_grade = 0.0, False
            target.db.commit()
            merged = target.find_submission(assignment, outcome.student)
            outcome.score, outcome.max_score = merged.score, merged.max_score
    autograded = workspace / "autograded" / outcome.student / assignment
    destination = root / "autograded" / outcome.student / assignment
    if destination.exists():
        shutil.rmtree(destination)
    if autograded.is_dir() and not outcome.problems:
        shutil.copytree(autograded, destination)


def _ensure_in_gradebook(root: Path, assignment: str) -> None:
    """autograde needs the assignment's notebooks in the gradebook: generate it only if they are missing."""
    if (root / "gradebook.db").is_file():
        with Gradebook(_database(root)) as gradebook:
            try:
                if gradebook.find_assignment(assignment).notebooks:
                    return
            except MissingEntry:
                pass
    pipeline.release(root, assignment, capture=True)


def grade(root: Path, assignment: str, jobs: int = 1, wall_seconds: float = 1800) -> list[Outcome]:
    """Autograde every submission of ``assignment`` with ``jobs`` workers, then feedback and export."""
    names = students(root, assignment)
    if not names:
        raise SystemExit(f"No submissions of {assignment} in {root / 'submitted'}/<student>/{assignment}/")
    _ensure_in_gradebook(root, assignment)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch, ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_one, root, assignment, s, Path(scratch), wall_seconds): s for s in names}
        for done, future in enumerate(as_completed(futures), start=1):
            outcome = future.result()
            merge(root, Path(scratch) / outcome.student, assignment, outcome)
            outcomes.append(outcome)
            print(f"[{done}/{len(names)}] {outcome.line()}", flush=True)
    pipeline.nbgrader(root, "generate_feedback", assignment, "--force", capture=True)
    pipeline.export(root, capture=True)
    return sorted(outcomes, key=lambda o: o.student)


def summary(outcomes: list[Outcome]) -> str:
    """Score distribution and the submissions that had problems."""
    scores = sorted(o.score for o in outcomes if o.score is not None)
    lines = [
        f"{len(outcomes)} submissions; scores min {scores[0]:g}, median {scores[len(scores) // 2]:g}, max {scores[-1]:g}"
        if scores else f"{len(outcomes)} submissions; none graded",
    ]
    lines += [f"  problem: {o.student}: {'; '.join(o.problems)}" for o in outcomes if o.problems]
    return "\n".join(lines)
