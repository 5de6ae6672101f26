"""course.grading.submissions: sample submissions built from release/ and source/."""

from pathlib import Path

import nbformat
import pytest

from course.grading import submissions

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


def _ids(notebook):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells]


def test_structural_edits_delete_duplicate_retype_and_insert_cells():
    spec = submissions.SampleSubmission(
        "s", 0,
        insert_before={"images_reshape_test": "flatten_images = None"},
        duplicate={"images_split_channels": "def split_channels(image):\n    return ()"},
        retype={"images_channel_means": "raw"},
        delete=("images_scale_to_unit_test",),
    )
    release = submissions.build(RELEASE, SOURCE, submissions.SampleSubmission("s", 0))
    built = submissions.build(RELEASE, SOURCE, spec)
    assert len(built.cells) == len(release.cells) + 1 + 1 - 1
    ids = _ids(built)
    assert "images_scale_to_unit_test" not in ids
    inserted = built.cells[ids.index("images_reshape_test") - 1]
    assert inserted.source == "flatten_images = None" and "nbgrader" not in inserted.metadata
    first, second = [c for c in built.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "images_split_channels"]
    assert "image[:, :, 0]" in first.source and second.source == "def split_channels(image):\n    return ()"
    assert first.id != second.id
    retyped = _cell(built, "images_channel_means")
    assert retyped.cell_type == "raw" and "images.mean(" in retyped.source and retyped.metadata.nbgrader["solution"]
    nbformat.validate(built)


def test_retype_to_an_unknown_type_is_an_error(tmp_path):
    path = tmp_path / "a.yml"
    path.write_text("dave:\n  expected_score: 1\n  retype:\n    c: heading\n")
    with pytest.raises(ValueError, match="dave: retype to code, markdown or raw"):
        submissions.load_specs(path)


def test_submitted_files_are_copied_or_written_beside_the_notebook(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "model.keras").write_bytes(b"\x01\x02")
    path = samples / "a.yml"
    path.write_text("erin:\n  expected_score: 1\n  files:\n    08_x.keras: {copy: model.keras}\n    notes.txt: {text: hello}\n")
    (spec,) = submissions.load_specs(path)
    target = tmp_path / "submitted"
    target.mkdir()
    submissions.write_files(spec, samples, target)
    assert (target / "08_x.keras").read_bytes() == b"\x01\x02" and (target / "notes.txt").read_text() == "hello"
    path.write_text("frank:\n  expected_score: 1\n  files:\n    m.keras: model.keras\n")
    with pytest.raises(ValueError, match=r"frank: file m.keras needs \{copy: PATH\}, \{copy: PATH, record: \{...\}\} or "
                                         r"\{text: CONTENT\}"):
        submissions.load_specs(path)
    path.write_text("gina:\n  expected_score: 1\n  files:\n    m.keras: {text: x, record: {epochs: 1}}\n")
    with pytest.raises(ValueError, match=r"gina: file m.keras needs"):
        submissions.load_specs(path)


def test_a_copied_model_file_can_carry_a_training_record(tmp_path):
    import keras

    from course import modelfile

    samples = tmp_path / "samples"
    samples.mkdir()
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(samples / "model.keras")
    path = samples / "a.yml"
    path.write_text("hana:\n  expected_score: 1\n  files:\n    08_x.keras:\n      copy: model.keras\n"
                    "      record: {epochs: 20, minutes: 19.1, device: CPU}\n")
    (spec,) = submissions.load_specs(path)
    target = tmp_path / "submitted"
    target.mkdir()
    submissions.write_files(spec, samples, target)
    assert modelfile.read_record((target / "08_x.keras").read_bytes()) == {"epochs": 20, "minutes": 19.1, "device": "CPU"}
    assert modelfile.load(target / "08_x.keras").count_params() == 3
    assert modelfile.read_record((samples / "model.keras").read_bytes()) is None  # the sample file itself unchanged
