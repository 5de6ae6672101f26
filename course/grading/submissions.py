"""Sample submissions built from the release notebooks, for the demo and the tests.

A submission is described in ``tests/submissions/<assignment>.yml``::

    partly_wrong:
      expected_score: 7
      solutions: reference      # or "none": leave the release stubs
      replace:                  # grade_id -> the cell's new source
        scale_to_unit: |
          def scale_to_unit(image):
              return image / 256
      insert_before:            # grade_id -> source of a new code cell placed before it
        scale_to_unit_test: |
          np.mean = lambda *args, **kwargs: 1.0
      duplicate:                # grade_id -> source of a copy, same metadata, placed after it
        scale_to_unit: "def scale_to_unit(image): return image"
      retype:                   # grade_id -> the cell type a student changed it to
        scale_to_unit_test: markdown
      delete: [reshape_test]    # grade_ids of cells the student deleted
      paste:                    # grade_id -> a graded cell from elsewhere, placed before it
        scale_to_unit_test: {grade_id: other_course_test, points: 5, source: "print('pasted')"}
      files:                    # other files submitted with the notebook (08_cifar_challenge's model)
        08_cifar_challenge.keras: {copy: 08_cifar_challenge_reference.keras}   # beside the YAML file
        notes.txt: {text: "not a model"}
        other.keras:            # a copied model file with a training record added (course/training.py)
          copy: 08_cifar_challenge_reference.keras
          record: {epochs: 20, minutes: 19.1, device: CPU}

Building from ``release/`` and ``source/`` keeps the samples in step with the
notebooks: a sample can never go stale.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

from course import modelfile

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass(frozen=True)
class SampleSubmission:
    """One student's submission of one assignment, with the score it must get."""

    student: str
    expected_score: float
    solutions: str = "reference"
    replace: dict[str, str] = field(default_factory=dict)
    insert_before: dict[str, str] = field(default_factory=dict)
    duplicate: dict[str, str] = field(default_factory=dict)
    retype: dict[str, str] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    paste: dict[str, dict[str, object]] = field(default_factory=dict)


def load_specs(path: Path) -> list[SampleSubmission]:
    """Read the sample submissions described in a YAML file."""
    raw = yaml.safe_load(path.read_text()) or {}
    specs = []
    for student, entry in raw.items():
        solutions = entry.get("solutions", "reference")
        if solutions not in ("reference", "none"):
            raise ValueError(f"{path}: {student}: solutions must be 'reference' or 'none', got {solutions!r}")
        retype = dict(entry.get("retype") or {})
        if not set(retype.values()) <= {"code", "markdown", "raw"}:
            raise ValueError(f"{path}: {student}: retype to code, markdown or raw, got {sorted(retype.values())}")
        files = dict(entry.get("files") or {})
        for name, content in files.items():
            if not (isinstance(content, dict) and set(content) in ({"copy"}, {"text"}, {"copy", "record"})
                    and isinstance(content.get("record", {}), dict)):
                raise ValueError(f"{path}: {student}: file {name} needs {{copy: PATH}}, {{copy: PATH, record: {{...}}}} "
                                 f"or {{text: CONTENT}}, got {content!r}")
        paste = dict(entry.get("paste") or {})
        for where, cell in paste.items():
            if not (isinstance(cell, dict) and set(cell) == {"grade_id", "points", "source"}):
                raise ValueError(f"{path}: {student}: paste before {where} needs grade_id, points and source, got {cell!r}")
        specs.append(SampleSubmission(
            student, float(entry["expected_score"]), solutions,
            replace=dict(entry.get("replace") or {}), insert_before=dict(entry.get("insert_before") or {}),
            duplicate=dict(entry.get("duplicate") or {}), retype=retype, delete=tuple(entry.get("delete") or ()),
            files=files, paste=paste,
        ))
    return specs


def write_files(spec: SampleSubmission, samples_dir: Path, target: Path) -> None:
    """Write the files ``spec`` submits besides its notebooks into ``target``."""
    for name, content in spec.files.items():
        if "copy" in content:
            shutil.copyfile(samples_dir / content["copy"], target / name)
            if "record" in content:  # as course.modelfile.save(..., record=...) stores it
                modelfile.add_record(target / name, content["record"])
        else:
            (target / name).write_text(content["text"])


def reference_solution(source_text: str) -> str:
    """A source cell's text as a student who solved it would leave it: the markers removed."""
    return "\n".join(line for line in source_text.split("\n") if line.strip() not in SOLUTION_MARKERS)


def build(release_nb: Path, source_nb: Path, spec: SampleSubmission) -> nbformat.NotebookNode:
    """The release notebook with its solution cells filled in and its cells edited as ``spec`` says."""
    notebook = nbformat.read(release_nb, as_version=4)
    source = nbformat.read(source_nb, as_version=4)
    reference = {
        cell.metadata["nbgrader"]["grade_id"]: reference_solution(cell.source)
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    named = {*spec.replace, *spec.insert_before, *spec.duplicate, *spec.retype, *spec.delete, *spec.paste}
    unknown = named - {c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells}
    if unknown:
        raise KeyError(f"{spec.student}: no cells with grade_id {sorted(unknown)} in {release_nb}")
    cells = []
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in spec.replace:
            cell.source = spec.replace[grade_id]
        elif spec.solutions == "reference" and grade_id in reference:
            cell.source = reference[grade_id]
        if grade_id in spec.insert_before:
            cells.append(nbformat.v4.new_code_cell(spec.insert_before[grade_id]))
        if grade_id in spec.paste:
            cells.append(_pasted(spec.paste[grade_id]))
        if grade_id in spec.retype:
            cell = _retyped(cell, spec.retype[grade_id])
        if grade_id not in spec.delete:
            cells.append(cell)
        if grade_id in spec.duplicate:
            copy = nbformat.from_dict(dict(cell, id=f"{cell.get('id', grade_id)}-copy"))
            copy.source = spec.duplicate[grade_id]
            cells.append(copy)
    notebook.cells = cells
    return notebook


def _pasted(cell: dict[str, object]) -> nbformat.NotebookNode:
    """A graded test cell copied from another notebook, its nbgrader metadata and all."""
    pasted = nbformat.v4.new_code_cell(str(cell["source"]))
    pasted.metadata["nbgrader"] = {"grade": True, "grade_id": str(cell["grade_id"]), "locked": True,
                                   "points": float(cell["points"]), "schema_version": 3, "solution": False, "task": False}
    return pasted


def _retyped(cell: nbformat.NotebookNode, cell_type: str) -> nbformat.NotebookNode:
    """The cell as the notebook stores it after a student changed its type in the editor."""
    make = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell, "raw": nbformat.v4.new_raw_cell}
    retyped = make[cell_type](cell.source, metadata=cell.metadata)
    retyped.id = cell.get("id", retyped.id)
    return retyped
