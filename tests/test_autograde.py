"""course/grading/autograde.py: what the folder a notebook ran in keeps before nbgrader writes its feedback."""

from __future__ import annotations

import os

from course.grading import autograde


def test_the_graded_folder_keeps_only_the_notebooks_timestamp_and_model_files(tmp_path):
    outside = tmp_path / "instructor.txt"
    outside.write_text("the instructor's")
    folder = tmp_path / "autograded" / "alice" / "A"
    folder.mkdir(parents=True)
    for name in ("A.ipynb", "B[1].ipynb", "timestamp.txt", "A.keras"):
        (folder / name).write_text(name)
    (folder / "planted.ipynb").write_text("written by the student's code")  # would fail generate_feedback
    (folder / "B1.ipynb").write_text("not B[1]")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "link").symlink_to(outside)
    (folder / "other.keras").symlink_to(outside)
    os.mkfifo(folder / "notes.txt")
    removed = autograde.keep_only_graded(folder, ["A", "B[1]"])
    assert removed == ["B1.ipynb", "checkpoints", "notes.txt", "other.keras", "planted.ipynb"]
    assert sorted(p.name for p in folder.iterdir()) == ["A.ipynb", "A.keras", "B[1].ipynb", "timestamp.txt"]
    assert outside.read_text() == "the instructor's"


def test_its_own_options_are_read_whatever_nbgrader_is_given(monkeypatch, tmp_path, capsys):
    ran = []
    monkeypatch.setattr(autograde, "run_nbgrader", lambda args: ran.append(args) or (0 if args[0] == "autograde" else 3))
    folder = tmp_path / "graded"
    folder.mkdir()
    (folder / "planted.ipynb").write_text("")
    status = autograde.main([f"--graded-folder={folder}", "--notebook=A", "A", "--student", "alice",
                             "--CourseDirectory.root=/w"])
    assert status == 0  # the grades stand when only the feedback fails
    assert ran == [["autograde", "A", "--student", "alice", "--CourseDirectory.root=/w", "--force"],
                   ["generate_feedback", "A", "--student", "alice", "--CourseDirectory.root=/w", "--force"]]
    assert not (folder / "planted.ipynb").exists()
    assert f"{autograde.NO_FEEDBACK} generate_feedback exited with 3" in capsys.readouterr().err


def test_a_failed_autograde_writes_no_feedback(monkeypatch, tmp_path):
    ran = []
    monkeypatch.setattr(autograde, "run_nbgrader", lambda args: ran.append(args[0]) or 1)
    assert autograde.main([f"--graded-folder={tmp_path}", "A", "--student", "alice"]) == 1
    assert ran == ["autograde"]
