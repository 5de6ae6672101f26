"""The pipeline test's ``course demo``, started in a process of its own as soon as pytest has collected it.

``tests/test_pipeline.py`` grades every sample submission (about 16 minutes of both cores in
CI). The rest of the suite keeps less than one core busy on average (CPU time 903 s over
1,111 s of wall time on 2 cores, measured at b1ea031), so the demo runs beside it rather
than before it: :func:`start` (called from ``tests/conftest.py`` once the collected tests
include the pipeline's) copies the course and starts this module in a new session;
``test_pipeline.py``'s fixture waits for it (:meth:`Run.wait`). A run of the pipeline's
tests alone waits at once, as before.

The grader must leave the instructor's files as they were (``tests/conftest.py`` checks every
``batch.grade`` call of the session). Here the check runs in the demo's own process, around its
``batch.grade`` call: the copy's files (all but the grader's outputs) and this repository's tracked
files, hashed before and after; untracked files of the repository are left out, since the tests
running meanwhile write some (screenshots, built wheels).

``python tests/pipeline_run.py COURSE RESULT``: runs ``course demo`` in ``COURSE`` and writes
``RESULT`` (JSON: the grade table, the files it changed, or the error that stopped it).
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

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = Path("tests") / "submissions"
STOP_SECONDS = 60  # after SIGTERM, for `course grade` to stop its workers and merge nothing half-graded


def copy_course(root: Path) -> None:
    """The parts of the course that ``course demo`` reads, copied into ``root``."""
    shutil.copytree(ROOT / "source", root / "source")
    shutil.copytree(ROOT / SAMPLES_DIR, root / SAMPLES_DIR)
    shutil.copy(ROOT / "nbgrader_config.py", root)


@dataclass
class Run:
    """``course demo`` running in ``root``, its result to be written to ``result`` and its output to ``log``."""

    root: Path
    result: Path
    log: Path
    process: subprocess.Popen[bytes]
    started: float

    def wait(self) -> tuple[Path, str]:
        """The course folder and the grade table, once the demo has finished; its output is printed (pytest shows
        it with the test that waited). Raises if the demo failed or changed the instructor's files."""
        status = self.process.wait()
        sys.stdout.write(self.log.read_text(errors="replace"))
        print(f"course demo: {time.monotonic() - self.started:.0f} s beside the other tests, exit status {status}")
        if not self.result.is_file():
            raise RuntimeError(f"course demo stopped (exit status {status}) without a result: see its output above")
        outcome = json.loads(self.result.read_text())
        if outcome["error"]:
            raise RuntimeError(f"course demo failed:\n{outcome['error']}")
        assert not outcome["changed"], f"course grade changed the instructor's files: {outcome['changed'][:20]}"
        return self.root, outcome["table"]

    def stop(self) -> None:
        """Stop the demo and everything it started (SIGTERM first, as an instructor's Ctrl-C would)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


# The run, in pytest's stash: started by tests/conftest.py, waited for by test_pipeline.py's fixture.
PIPELINE = pytest.StashKey["Run"]()


def start(folder: Path | None = None) -> Run:
    """Copy the course into a new folder (under ``folder``) and start ``course demo`` there."""
    base = Path(tempfile.mkdtemp(prefix="course-pipeline-", dir=folder))
    root = base / "course"
    copy_course(root)
    log = base / "demo.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, __file__, str(root), str(base / "result.json")],
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    return Run(root, base / "result.json", log, process, time.monotonic())


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


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM this process group once pytest (``parent``) is gone, killed without the chance to stop the demo."""
    while os.getppid() == parent:
        time.sleep(2)
    os.killpg(0, signal.SIGTERM)


def main(root: Path, result: Path) -> int:
    import threading

    from course.grading import batch, demo

    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
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


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
