"""The pipeline test's ``course demo``, started in a process of its own as soon as pytest has collected it.

``tests/test_pipeline.py`` grades every sample submission (about 16 minutes of both cores in
CI). The rest of the suite keeps less than one core busy on average (CPU time 903 s over
1,111 s of wall time on 2 cores, measured at b1ea031), so the demo runs beside it rather
than before it: :func:`start` (called from ``tests/conftest.py`` once the collected tests
include the pipeline's) copies the course and starts this module in a new session;
``test_pipeline.py``'s fixture waits for it (:meth:`Run.wait`). A run of the pipeline's
tests alone waits at once, as before. The demo runs at a lower priority (:data:`NICENESS`).

The grader must leave the instructor's files as they were (``tests/conftest.py`` checks every
``batch.grade`` call of the session). Here the check runs in the demo's own process, around its
``batch.grade`` call: the copy's files (all but the grader's outputs) and this repository's tracked
files, hashed before and after; untracked files of the repository are left out, since the tests
running meanwhile write some (screenshots, built wheels).

``python tests/pipeline_run.py [--detach] COURSE RESULT PYTEST_PID``: runs ``course demo`` in ``COURSE`` and
writes ``RESULT`` (JSON: the grade table, the files it changed, or the error that stopped it); it stops
itself (SIGTERM to its process group) if process ``PYTEST_PID`` is gone. ``--detach`` prints the pid of a
child that does it, in a session of its own, and returns at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = Path("tests") / "submissions"
STOP_SECONDS = 60  # after SIGTERM, for `course grade` to stop its workers and merge nothing half-graded
# The demo yields to the other tests: they are the longer path (a run at the same priority took 1,795 s, the
# other tests slowed to the demo's pace), and it has the idle core most of the time. At nice 5 a demo process
# still gets about a quarter of a core when two busy threads of the tests run (Linux weights 335 against
# 1024): 01's longest cell (2.3-3.3 s) stays far inside its 30 s limit (nbgrader_config.py).
NICENESS = 5


def copy_course(root: Path) -> None:
    """The parts of the course that ``course demo`` reads, copied into ``root``."""
    shutil.copytree(ROOT / "source", root / "source")
    shutil.copytree(ROOT / SAMPLES_DIR, root / SAMPLES_DIR)
    shutil.copy(ROOT / "nbgrader_config.py", root)


@dataclass
class Run:
    """``course demo`` running in ``root`` as process ``pid`` (its session's leader), its result to be written to
    ``result`` and its output to ``log``."""

    root: Path
    result: Path
    log: Path
    pid: int
    started: float

    def running(self) -> bool:
        """Whether the demo is still at work (a zombie that nobody reaps is not)."""
        try:
            alive = psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        return alive and not self.result.is_file()

    def wait(self) -> tuple[Path, str]:
        """The course folder and the grade table, once the demo has finished; its output is printed (pytest shows
        it with the test that waited). Raises if the demo failed or changed the instructor's files."""
        while self.running():
            time.sleep(1)
        time.sleep(0.5)  # the result is written last; the process may still be exiting
        sys.stdout.write(self.log.read_text(errors="replace"))
        print(f"course demo: {time.monotonic() - self.started:.0f} s beside the other tests")
        if not self.result.is_file():
            raise RuntimeError("course demo stopped without a result: see its output above")
        outcome = json.loads(self.result.read_text())
        if outcome["error"]:
            raise RuntimeError(f"course demo failed:\n{outcome['error']}")
        assert not outcome["changed"], f"course grade changed the instructor's files: {outcome['changed'][:20]}"
        return self.root, outcome["table"]

    def stop(self) -> None:
        """Stop the demo and everything it started (SIGTERM first, as an instructor's Ctrl-C would)."""
        for sig, seconds in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if not self.running() and not _group_alive(self.pid):
                    return
                time.sleep(0.5)


def _group_alive(group: int) -> bool:
    """Whether a process of process group ``group`` is still alive (zombies aside)."""
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


# The run, in pytest's stash: started by tests/conftest.py, waited for by test_pipeline.py's fixture.
PIPELINE = pytest.StashKey["Run"]()


def start(folder: Path | None = None) -> Run:
    """Copy the course into a new folder (under ``folder``) and start ``course demo`` there.

    The demo runs outside pytest's process tree (started through a parent that exits at once, in a session of
    its own): tests that look for the processes their own grading started among pytest's descendants
    (tests/test_batch.py, tests/test_cluster.py) must not find the demo's."""
    base = Path(tempfile.mkdtemp(prefix="course-pipeline-", dir=folder))
    root = base / "course"
    copy_course(root)
    log = base / "demo.log"
    with open(log, "wb") as output:
        launcher = subprocess.run([sys.executable, __file__, "--detach", str(root), str(base / "result.json"), str(os.getpid())],
                                  stdout=subprocess.PIPE, stderr=output, check=True)
    return Run(root, base / "result.json", log, int(launcher.stdout), time.monotonic())


def _tracked_files() -> list[Path]:
    """This repository's files that git tracks (every file, when git cannot say)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    return [ROOT / name for name in listed.decode().split("\0") if name]


def _fingerprints(root: Path) -> dict[str, str]:
    import conftest  # tests/conftest.py: the same fingerprint as every other batch.grade call of the session

    prints = {}
    for path in _tracked_files():
        prints |= {str(path): conftest._hash(path)} if path.exists() or path.is_symlink() else {}
    return prints | conftest._graded_files(root)


def _stop_when_orphaned(pytest_pid: int) -> None:
    """SIGTERM this process group once pytest is gone, killed without the chance to stop the demo."""
    while True:
        try:
            os.kill(pytest_pid, 0)
        except ProcessLookupError:
            os.killpg(0, signal.SIGTERM)
            return
        time.sleep(2)


def main(root: Path, result: Path, pytest_pid: int) -> int:
    import threading

    from course.grading import batch, demo

    os.nice(NICENESS)  # inherited by everything the demo starts
    threading.Thread(target=_stop_when_orphaned, args=(pytest_pid,), daemon=True).start()
    changed: set[str] = set()
    real = batch.grade

    def guarded(graded: Path, *args, **kwargs):  # as tests/conftest.py guards every other batch.grade call
        before = _fingerprints(graded)
        try:
            return real(graded, *args, **kwargs)
        finally:
            after = _fingerprints(graded)
            changed.update(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))

    batch.grade = guarded
    outcome: dict[str, object] = {"table": None, "changed": [], "error": None}
    try:
        outcome["table"] = demo.run(root)
    except BaseException:  # noqa: BLE001 (reported to the test that waits, with the traceback)
        outcome["error"] = traceback.format_exc()
    outcome["changed"] = sorted(changed)
    result.write_text(json.dumps(outcome))
    return 0


def detach(root: Path, result: Path, pytest_pid: int) -> int:
    """Print the pid of a child that runs :func:`main` in a new session, and return at once (the child is then
    nobody's but init's)."""
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        return 0
    os.setsid()
    log = os.open(str(result.with_name("demo.log")), os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    try:
        status = main(root, result, pytest_pid)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    if sys.argv[1] == "--detach":
        sys.exit(detach(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])))
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
