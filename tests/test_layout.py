"""course.grading.layout: course grade reads and writes where the course's nbgrader configuration says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course.grading import layout, sandbox

ROOT = Path(__file__).parents[1]


def _config(folder: Path, *lines: str) -> None:
    (folder / "nbgrader_config.py").write_text("\n".join(["c = get_config()", *lines]) + "\n")


def test_without_settings_the_layout_is_nbgraders_default(tmp_path):
    for folder in (tmp_path, ROOT):
        where = layout.read(folder)
        assert (where.root, where.config_folder) == (folder.resolve(), folder.resolve())
        assert [where.source, where.release, where.submitted, where.autograded, where.feedback] == [
            "source", "release", "submitted", "autograded", "feedback"]
        assert where.gradebook_file == folder.resolve() / "gradebook.db"
        assert where.db_url == f"sqlite:///{folder.resolve()}/gradebook.db"
        assert where.hidden() == [folder.resolve()]


def test_folder_names_root_and_an_sqlite_gradebook_are_followed(tmp_path):
    (tmp_path / "config").mkdir()
    _config(tmp_path / "config", 'c.CourseDirectory.root = "../course"', 'c.CourseDirectory.submitted_directory = "in"',
            'c.CourseDirectory.autograded_directory = "graded"', 'c.CourseDirectory.db_url = "sqlite:///../books/g.db"')
    where = layout.read(tmp_path / "config")
    assert where.root == tmp_path / "course"
    assert where.step("submitted") == tmp_path / "course" / "in"
    assert where.step("autograded") == tmp_path / "course" / "graded"
    assert where.step("feedback") == tmp_path / "course" / "feedback"
    assert where.gradebook_file == tmp_path / "books" / "g.db"
    assert where.hidden() == [tmp_path / "course", tmp_path / "config", tmp_path / "books"]
    assert where.workspace_options(tmp_path / "w") == [
        f"--CourseDirectory.root={tmp_path / 'w'}", f"--CourseDirectory.db_url=sqlite:///{tmp_path / 'w' / 'gradebook.db'}"]
    _config(tmp_path, f'c.CourseDirectory.db_url = "sqlite:///{tmp_path}/course/g.db"')
    assert layout.read(tmp_path).hidden() == [tmp_path]  # the gradebook lies inside the course folder


def test_what_course_grade_cannot_follow_is_named_setting_by_setting(tmp_path):
    _config(tmp_path, 'c.CourseDirectory.db_url = "postgresql://grades"', 'c.CourseDirectory.autograded_directory = "a/b"',
            'c.CourseDirectory.feedback_directory = "submitted"',
            'c.CourseDirectory.directory_structure = "{student_id}/{nbgrader_step}/{assignment_id}"')
    with pytest.raises(layout.LayoutError) as caught:
        layout.read(tmp_path)
    assert str(caught.value) == (
        "nbgrader_config.py sets what course grade cannot follow: CourseDirectory.autograded_directory = 'a/b' "
        "(course grade needs one plain folder name); two steps share a folder (source: 'source', release: 'release', "
        "submitted: 'submitted', autograded: 'a/b', feedback: 'submitted'); CourseDirectory.db_url = "
        "'postgresql://grades' (course grade needs an SQLite file, sqlite:////path/to/gradebook.db: each grading "
        "workspace works on a copy of it); CourseDirectory.directory_structure = "
        "'{student_id}/{nbgrader_step}/{assignment_id}' (course grade needs nbgrader's "
        "'{nbgrader_step}/{student_id}/{assignment_id}')")
    _config(tmp_path, 'c.CourseDirectory.db_url = "sqlite:////grades.db"')
    with pytest.raises(layout.LayoutError, match="keep it out of the file system's root folder"):
        layout.read(tmp_path)
    _config(tmp_path, "c.CourseDirectory.root = ")
    with pytest.raises(layout.LayoutError, match=r"nbgrader_config.py cannot be read \(SyntaxError"):
        layout.read(tmp_path)


def test_an_assignment_may_have_a_lower_memory_limit_than_course_grades_own(tmp_path):
    assert layout.read(tmp_path).memory_gib("01_images", 6) == 6
    _config(tmp_path, 'c.CourseGrade.memory_gib_by_assignment = {"01_images": 2, "02_mnist_mlp": 8.5}')
    where = layout.read(tmp_path)
    assert [where.memory_gib(name, 6) for name in ("01_images", "02_mnist_mlp", "03_mnist_cnn")] == [2, 6, 6]
    assert where.memory_gib("02_mnist_mlp", 10) == 8.5  # the lower of the two
    for wrong in ('{"01_images": 0}', '{"01_images": "2"}', '{"01_images": True}', '[("01_images", 2)]'):
        _config(tmp_path, f"c.CourseGrade.memory_gib_by_assignment = {wrong}")
        with pytest.raises(layout.LayoutError, match=r"CourseGrade\.memory_gib_by_assignment = .* \(course grade needs "
                                                      r"a dict of assignment names to numbers of GiB above 0\)"):
            layout.read(tmp_path)


@pytest.mark.skipif(not sandbox.available(), reason="bubblewrap is not installed")
def test_a_gradebook_outside_the_course_folder_is_hidden_in_the_sandbox(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "g.db").write_text("every student's grades")
    _config(tmp_path / "course", f'c.CourseDirectory.db_url = "sqlite:///{tmp_path}/books/g.db"')
    where = layout.read(tmp_path / "course")
    work = tmp_path / "work"
    work.mkdir()
    code = "import os, sys; print(os.listdir(sys.argv[1]), open(sys.argv[2]).read())"
    launcher = [sys.executable, "-I", "-m", "course.grading.sandbox", *(f"--hide={path}" for path in where.hidden()), "--"]
    readable = tmp_path / "course" / "readable.txt"
    readable.write_text("read through the course folder")
    done = subprocess.run(launcher + [sys.executable, "-I", "-c", code, str(tmp_path / "books"), str(readable)],
                          cwd=work, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "FileNotFoundError" in done.stderr  # the course folder is hidden too
    code = "import os, sys; print(os.listdir(sys.argv[1]))"
    done = subprocess.run(launcher + [sys.executable, "-I", "-c", code, str(tmp_path / "books")],
                          cwd=work, capture_output=True, text=True, timeout=60)
    assert done.stdout == "[]\n", done.stderr
