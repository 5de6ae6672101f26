"""course.grading.preflight: a machine that cannot grade is found out before any grade changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course.grading import batch, preflight, sandbox

ROOT = Path(__file__).parents[1]


def _course(tmp_path: Path, notebook_text: str) -> Path:
    root = tmp_path / "course"
    (root / "source" / "A").mkdir(parents=True)
    (root / "source" / "A" / "A.ipynb").write_text(notebook_text)
    return root


def test_the_datasets_an_assignment_reads_are_found_in_its_notebooks(tmp_path):
    root = _course(tmp_path, '"(x, y), _ = data.cifar10()\\n", "data.mnist()"')
    assert preflight.datasets_used(root / "source", ["A"]) == ["mnist", "cifar10"]
    assert preflight.datasets_used(ROOT / "source", ["04_fashion_cnn"]) == ["fashion_mnist"]


def test_bubblewrap_that_cannot_create_namespaces_stops_grading_before_any_change(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    root = _course(tmp_path, "no data")
    with pytest.raises(preflight.PreflightError, match="cannot create its sandbox here .*Permission denied"):
        preflight.check(root, ["A"], sandboxed=True)
    (root / "submitted" / "ann" / "A").mkdir(parents=True)
    (root / "gradebook.db").write_bytes(b"earlier grades")
    with pytest.raises(SystemExit, match="this machine cannot grade: bubblewrap is installed but cannot"):
        batch.grade(root, ["A"], sandboxed=True)
    assert (root / "gradebook.db").read_bytes() == b"earlier grades"
    assert sorted(p.name for p in root.iterdir()) == ["gradebook.db", "source", "submitted"]


@pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is not installed")
def test_datasets_reached_through_a_link_under_the_hidden_course_folder_load_in_the_sandbox(tmp_path, monkeypatch):
    mirror = os.environ.get("COURSE_DATA_DIR")
    if not mirror:
        pytest.skip("COURSE_DATA_DIR is not set: no offline copy of the real datasets")
    root = _course(tmp_path, "data.mnist()")
    (root / "shared").symlink_to(Path(mirror).resolve())
    monkeypatch.setenv("COURSE_DATA_DIR", str(root / "shared"))  # hidden inside the sandbox
    preflight.check(root, ["A"], sandboxed=True)


def test_a_configuration_course_grade_cannot_follow_stops_it_before_any_change(tmp_path):
    root = _course(tmp_path, "no data")
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.db_url = "postgresql://grades"\n')
    with pytest.raises(preflight.PreflightError, match="course grade needs an SQLite file.*Nothing was graded"):
        preflight.check(root, ["A"], sandboxed=False)
    (root / "submitted" / "ann" / "A").mkdir(parents=True)
    with pytest.raises(SystemExit, match="course grade: nbgrader_config.py sets what course grade cannot follow"):
        batch.grade(root, ["A"], sandboxed=False)
    assert sorted(p.name for p in root.iterdir()) == ["nbgrader_config.py", "source", "submitted"]
