"""Grade a whole class with nbgrader, in parallel: ``course grade ASSIGNMENT... --jobs N``.

nbgrader autogrades one submission after another, in one process writing one
SQLite gradebook (nbgrader issue 174). Here each submission is autograded by
nbgrader itself, in its own throwaway workspace holding a copy of the
gradebook, the configuration and that one submission, so parallel workers
never share a database. Each workspace's grades are then merged into the
course's gradebook, one at a time, and the autograded notebook is copied back.

Each submission is bounded and isolated:

- its kernel runs in a bubblewrap sandbox (course/sandbox.py) that hides the
  course folder, every workspace but its own working folder, and the hidden
  tests in the notebook being graded;
- a cell past ``Execute.timeout`` is interrupted and fails (nbgrader); one
  that swallows the interrupt has its kernel killed (course/grading.py);
- a kernel whose processes together hold more than the memory limit is
  killed: its cells from there on fail, the earlier ones keep their points
  (course/grading.py);
- a submission past its wall-clock limit is killed and graded 0.

The reason for any of these is in the submission's line of the report.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from course import pipeline, sandbox

GIB = 2**30


@dataclass
class Outcome:
    """How one submission's grading went."""

    assignment: str
    student: str
    seconds: float
    score: float | None = None
    max_score: float | None = None
    problems: list[str] = field(default_factory=list)
    graded: bool = True  # False: nbgrader did not finish; every test scores 0

    def line(self) -> str:
        score = f"{self.score:g}/{self.max_score:g}" if self.score is not None else "not graded"
        problems = f"  ({'; '.join(self.problems)})" if self.problems else ""
        return f"{self.assignment:<16} {self.student:<24} {score:>10} {self.seconds:6.0f} s{problems}"


def students(root: Path, assignment: str) -> list[str]:
    """Students with a submission of ``assignment`` in ``root/submitted``."""
    return sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())


def _database(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def _watch_memory(process: subprocess.Popen[bytes], limit_bytes: float, outcome: Outcome) -> None:
    """Kill the processes under nbgrader (the kernel and its children) when together they hold more than the limit."""
    try:
        parent = psutil.Process(process.pid)
        while process.poll() is None:
            children = parent.children(recursive=True)
            used = 0
            for child in children:
                try:
                    used += child.memory_info().rss
                except psutil.Error:
                    pass
            if used > limit_bytes:
                for child in children:
                    try:
                        child.kill()
                    except psutil.Error:
                        pass
                message = f"kernel killed at the {limit_bytes / GIB:g} GiB memory limit"
                if message not in outcome.problems:  # dying processes may still count at the next look
                    outcome.problems.append(message)
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        pass


def problems_in_log(log: str) -> list[str]:
    """What nbgrader's log says went wrong while the notebook ran: cells past the time limit, kernel deaths."""
    problems = []
    timeouts = re.findall(r"Timeout waiting for execute reply \((\d+)s\)", log)
    if timeouts:
        problems.append(f"{len(timeouts)} cell(s) stopped at the {timeouts[0]} s cell time limit")
    kills = log.count("ignored the interrupt")
    if kills:
        problems.append("a cell ignored its interrupt: kernel killed")
    deaths = log.count("The kernel died in cell") - kills
    if deaths:
        problems.append(f"the kernel died {deaths} time(s)")
    return problems


def grade_one(root: Path, assignment: str, student: str, workdir: Path, wall_seconds: float,
              memory_gib: float = 6, sandboxed: bool = True, threads: int | None = None) -> Outcome:
    """Autograde one submission in a workspace of its own, ``workdir/<assignment>/<student>``.

    The course folder is only read; the gradebook is copied from ``workdir/gradebook.db``,
    a snapshot that, unlike the course's, no merge writes to meanwhile.
    """
    start = time.monotonic()
    outcome = Outcome(assignment, student, 0.0)
    workspace = workdir / assignment / student
    (workspace / "submitted" / student).mkdir(parents=True)
    shutil.copytree(root / "submitted" / student / assignment, workspace / "submitted" / student / assignment)
    shutil.copy(root / "nbgrader_config.py", workspace)
    shutil.copy(workdir / "gradebook.db", workspace)
    command = pipeline.nbgrader_command("autograde", assignment, "--student", student, "--force")
    env = pipeline.nbgrader_env()
    if threads:  # workers share the cores instead of each TensorFlow taking them all
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")})
    if sandboxed:
        sandbox.write_kernelspec(workspace / "jupyter", hide=[root, workdir])
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(workspace / "jupyter"), env.get("JUPYTER_PATH")]))
        command.append(f"--Execute.kernel_name={sandbox.KERNEL_NAME}")
    log_path = root / "logs" / assignment / f"{student}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=workspace, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        watchdog = threading.Thread(target=_watch_memory, args=(process, memory_gib * GIB, outcome), daemon=True)
        watchdog.start()
        try:
            process.wait(timeout=wall_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the kernel too: it is in the same session
            process.wait()
            outcome.graded = False
            outcome.problems.append(f"stopped after the {wall_seconds:g} s limit")
        watchdog.join()
    if process.returncode not in (0, -signal.SIGKILL):
        outcome.graded = False
        outcome.problems.append(f"nbgrader failed (exit {process.returncode}), see {log_path.relative_to(root)}")
    outcome.problems += problems_in_log(log_path.read_text(errors="replace"))
    outcome.seconds = time.monotonic() - start
    return outcome


def merge(root: Path, workspace: Path, outcome: Outcome) -> None:
    """Copy one workspace's submission, grades and comments into the course gradebook and folder."""
    assignment = outcome.assignment
    with warnings.catch_warnings():
        # nbgrader's add_submission trips SQLAlchemy's autoflush warning; the rows are written all the same.
        warnings.simplefilter("ignore", SAWarning)
        _merge_grades(root, workspace, outcome)
    autograded = workspace / "autograded" / outcome.student / assignment
    destination = root / "autograded" / outcome.student / assignment
    if destination.exists():
        shutil.rmtree(destination)
    if autograded.is_dir() and outcome.graded:
        shutil.copytree(autograded, destination)


def _merge_grades(root: Path, workspace: Path, outcome: Outcome) -> None:
    assignment = outcome.assignment
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
            if graded is not None and outcome.graded:
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


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``[#####...............]  5/20``"""
    filled = round(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total}"


def collect_zips(root: Path, assignment: str) -> None:
    """``nbgrader zip_collect``: move an LMS download in ``downloaded/<assignment>/archive`` into ``submitted/``."""
    archive = root / "downloaded" / assignment / "archive"
    if not any(archive.glob("*")):
        raise SystemExit(f"Nothing to collect: put the LMS download (zip files or notebooks) in {archive}/")
    pipeline.nbgrader(root, "zip_collect", assignment, "--force", capture=True)


def grade(root: Path, assignments: list[str], jobs: int = 1, wall_seconds: float = 1800, memory_gib: float = 6,
          sandboxed: bool = True) -> list[Outcome]:
    """Autograde every submission of ``assignments`` with ``jobs`` workers, then feedback and export.

    The submissions of all the assignments share the workers, so a long one
    does not leave a worker idle while another assignment waits.
    """
    if sandboxed and not sandbox.available():
        raise SystemExit(sandbox.INSTALL_HINT)
    submissions = [(assignment, student) for assignment in assignments for student in students(root, assignment)]
    if not submissions:
        raise SystemExit(f"No submissions of {', '.join(assignments)} in {root / 'submitted'}/<student>/<assignment>/")
    graded = sorted({assignment for assignment, _ in submissions}, key=assignments.index)
    for assignment in graded:
        _ensure_in_gradebook(root, assignment)
    print(f"Grading {len(submissions)} submissions of {', '.join(graded)} with {jobs} worker(s)"
          f"{'' if sandboxed else ', NOT sandboxed'}...", flush=True)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch, ThreadPoolExecutor(max_workers=jobs) as pool:
        shutil.copy(root / "gradebook.db", Path(scratch) / "gradebook.db")
        threads = max(1, (os.cpu_count() or 1) // min(jobs, len(submissions)))
        futures = [pool.submit(grade_one, root, assignment, student, Path(scratch), wall_seconds, memory_gib, sandboxed,
                               threads) for assignment, student in submissions]
        for done, future in enumerate(as_completed(futures), start=1):
            outcome = future.result()
            merge(root, Path(scratch) / outcome.assignment / outcome.student, outcome)
            outcomes.append(outcome)
            print(f"{progress_bar(done, len(submissions))}  {outcome.line()}", flush=True)
    for assignment in graded:
        pipeline.nbgrader(root, "generate_feedback", assignment, "--force", capture=True)
    pipeline.export(root, capture=True)
    return sorted(outcomes, key=lambda o: (assignments.index(o.assignment), o.student))


def summary(outcomes: list[Outcome]) -> str:
    """Each assignment's score distribution, and the submissions that had problems."""
    lines = []
    for assignment in dict.fromkeys(o.assignment for o in outcomes):
        graded = [o for o in outcomes if o.assignment == assignment]
        scores = sorted(o.score for o in graded if o.score is not None)
        lines.append(f"{assignment}: {len(graded)} submissions; "
                     + (f"scores min {scores[0]:g}, median {scores[len(scores) // 2]:g}, max {scores[-1]:g}" if scores
                        else "none graded"))
        lines += [f"  problem: {o.student}: {'; '.join(o.problems)}" for o in graded if o.problems]
    return "\n".join(lines)
