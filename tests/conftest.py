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
from pathlib import Path

import pytest

from course.grading import batch, layout

ROOT = Path(__file__).parents[1]
GRADER_OUTPUTS = ("grades.csv", "logs", "exchange")
NOT_THE_INSTRUCTORS = (".git", ".venv", "__pycache__", ".pytest_cache", ".ipynb_checkpoints")
# Folders of this repository that other tests write while this one grades (pytest-xdist runs two test
# files at a time): pip's in-tree build of the course's wheel (tests/test_colab.py), the browser test's
# screenshots (tests/test_jupyterlab.py).
WRITTEN_BY_OTHER_TESTS = (ROOT / "build", ROOT / "cnn_course.egg-info", ROOT / ".artifacts")


def _fingerprint(folder: Path, skipped: set[Path]) -> dict[str, str]:
    """sha256 (or the link target) of every file under ``folder``, links not followed, ``skipped`` left out."""
    prints: dict[str, str] = {}
    for parent, folders, files in os.walk(folder):
        here = Path(parent)
        folders[:] = [name for name in folders if here / name not in skipped and name not in NOT_THE_INSTRUCTORS]
        for name in files:
            path = here / name
            if path in skipped:
                continue
            if path.is_symlink():
                prints[str(path)] = f"link to {os.readlink(path)}"
            elif path.is_file():
                prints[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def _instructors_files(root: Path) -> dict[str, str]:
    root = Path(root).resolve()
    try:
        where = layout.read(root)
        outputs = {where.step("autograded"), where.step("feedback"), where.gradebook_file}
        graded = {root, where.root}
    except layout.LayoutError:
        outputs, graded = set(), {root}
    outputs |= {root / name for name in GRADER_OUTPUTS} | {root / "gradebook.db"}
    prints = _fingerprint(ROOT, set(WRITTEN_BY_OTHER_TESTS))
    for folder in graded - {ROOT}:
        prints |= _fingerprint(folder, outputs)
    return prints


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
