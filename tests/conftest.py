"""Every test run of ``course grade`` leaves the instructor's files as it found them.

The grader may write only its outputs: the gradebook, the autograded and feedback
folders, ``grades.csv``, ``logs/`` (and nbgrader's ``exchange/`` folder, which
``nbgrader_config.py`` creates). Everything else in the graded course folder
(source and release notebooks, submissions, the configuration) and every file of
this repository is hashed before and after each ``batch.grade`` call in the test
session, whether it graded, refused or failed; a difference fails that test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from course.grading import batch, layout

ROOT = Path(__file__).parents[1]
GRADER_OUTPUTS = ("grades.csv", "logs", "exchange")
NOT_THE_INSTRUCTORS = (".git", ".venv", "__pycache__", ".pytest_cache", ".ipynb_checkpoints")


def _hash(path: Path) -> str:
    """A file's sha256, or the target of a link (not followed)."""
    if path.is_symlink():
        return f"link to {os.readlink(path)}"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "not a file"


def _fingerprint(folder: Path, skipped: set[Path]) -> dict[str, str]:
    """:func:`_hash` of every file under ``folder``, links not followed, ``skipped`` left out."""
    prints: dict[str, str] = {}
    for parent, folders, files in os.walk(folder):
        here = Path(parent)
        folders[:] = [name for name in folders if here / name not in skipped and name not in NOT_THE_INSTRUCTORS]
        for name in files:
            path = here / name
            if path in skipped:
                continue
            if path.is_symlink() or path.is_file():
                prints[str(path)] = _hash(path)
    return prints


def _graded_files(root: Path) -> dict[str, str]:
    """The fingerprint of the course folder graded in ``root`` (and of its layout's root), the grader's outputs
    left out; this repository is fingerprinted apart (:func:`_instructors_files`)."""
    root = Path(root).resolve()
    try:
        where = layout.read(root)
        outputs = {where.step("autograded"), where.step("feedback"), where.gradebook_file}
        graded = {root, where.root}
    except layout.LayoutError:
        outputs, graded = set(), {root}
    outputs |= {root / name for name in GRADER_OUTPUTS} | {root / "gradebook.db"}
    prints: dict[str, str] = {}
    for folder in graded - {ROOT}:
        prints |= _fingerprint(folder, outputs)
    return prints


def _instructors_files(root: Path) -> dict[str, str]:
    return _fingerprint(ROOT, set()) | _graded_files(root)


@pytest.fixture(scope="session", autouse=True)
def instructors_files_are_left_as_they_were():
    real = batch.grade

    def guarded(root: Path, *args, **kwargs):
        before = _instructors_files(root)
        try:
            return real(root, *args, **kwargs)
        finally:
            after = _instructors_files(root)
            changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
            assert not changed, f"course grade changed the instructor's files: {changed[:20]}"

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch, "grade", guarded)
        yield


def pytest_collection_finish(session):
    """Start the pipeline test's ``course demo`` beside the other tests when they include it (tests/pipeline_run.py)."""
    if any(Path(str(item.fspath)).name == "test_pipeline.py" for item in session.items):
        import pipeline_run

        session.config.stash[pipeline_run.PIPELINE] = pipeline_run.start()


def pytest_sessionfinish(session):
    import pipeline_run

    run = session.config.stash.get(pipeline_run.PIPELINE, None)
    if run is not None:
        run.stop()
        if session.testsfailed:
            print(f"\nThe pipeline test's course folder is kept: {run.root}")
        else:
            shutil.rmtree(run.root.parent, ignore_errors=True)
