"""course.submissions: sample submissions built from release/ and source/."""

from pathlib import Path

import pytest

from course import submissions

ROOT = Path(__file__).parents[1]
RELEASE = ROOT / "release" / "01_images" / "01_images.ipynb"
SOURCE = ROOT / "source" / "01_images" / "01_images.ipynb"


def _cell(notebook, grade_id):
    (cell,) = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


def test_reference_solution_drops_only_the_markers():
    text = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION"
    assert submissions.reference_solution(text) == "def f(x):\n    return x + 1"


def test_correct_submission_holds_the_reference_solutions():
    built = submissions.build(RELEASE, SOURCE, submissions.SampleSubmission("s", 10))
    cell = _cell(built, "images_scale_to_unit")
    assert "return images.astype(np.float32) / 255.0" in cell.source
    assert "BEGIN SOLUTION" not in cell.source and "NotImplementedError" not in cell.source


def test_empty_submission_keeps_the_stubs_and_replace_overrides_one_cell():
    spec = submissions.SampleSubmission("s", 0, "none", {"images_split_channels": "def split_channels(image):\n    return None"})
    built = submissions.build(RELEASE, SOURCE, spec)
    assert "raise NotImplementedError()" in _cell(built, "images_scale_to_unit").source
    assert _cell(built, "images_split_channels").source == "def split_channels(image):\n    return None"


def test_unknown_grade_id_is_an_error():
    with pytest.raises(KeyError, match="no_such_cell"):
        submissions.build(RELEASE, SOURCE, submissions.SampleSubmission("s", 0, replace={"no_such_cell": "x = 1"}))


def test_spec_files_are_read_and_checked(tmp_path):
    path = tmp_path / "a.yml"
    path.write_text("alice:\n  expected_score: 3\n  replace:\n    c: 'x = 1'\nbob:\n  expected_score: 0\n  solutions: none\n")
    assert submissions.load_specs(path) == [
        submissions.SampleSubmission("alice", 3.0, "reference", {"c": "x = 1"}),
        submissions.SampleSubmission("bob", 0.0, "none", {}),
    ]
    path.write_text("carol:\n  expected_score: 1\n  solutions: some\n")
    with pytest.raises(ValueError, match="carol: solutions must be 'reference' or 'none'"):
        submissions.load_specs(path)
