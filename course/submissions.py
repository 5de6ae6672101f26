"""Sample submissions built from the release notebooks, for the demo and the tests.

A submission is described in ``tests/submissions/<assignment>.yml``::

    partly_wrong:
      expected_score: 7
      solutions: reference      # or "none": leave the release stubs
      replace:                  # grade_id -> the cell's new source
        scale_to_unit: |
          def scale_to_unit(image):
              return image / 256

Building from ``release/`` and ``source/`` keeps the samples in step with the
notebooks: a sample can never go stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass(frozen=True)
class SampleSubmission:
    """One student's submission of one assignment, with the score it must get."""

    student: str
    expected_score: float
    solutions: str = "reference"
    replace: dict[str, str] = field(default_factory=dict)


def load_specs(path: Path) -> list[SampleSubmission]:
    """Read the sample submissions described in a YAML file."""
    raw = yaml.safe_load(path.read_text()) or {}
    specs = []
    for student, entry in raw.items():
        solutions = entry.get("solutions", "reference")
        if solutions not in ("reference", "none"):
            raise ValueError(f"{path}: {student}: solutions must be 'reference' or 'none', got {solutions!r}")
        specs.append(SampleSubmission(student, float(entry["expected_score"]), solutions, dict(entry.get("replace") or {})))
    return specs


def reference_solution(source_text: str) -> str:
    """A source cell's text as a student who solved it would leave it: the markers removed."""
    return "\n".join(line for line in source_text.split("\n") if line.strip() not in SOLUTION_MARKERS)


def build(release_nb: Path, source_nb: Path, spec: SampleSubmission) -> nbformat.NotebookNode:
    """The release notebook with its solution cells filled in as ``spec`` says."""
    notebook = nbformat.read(release_nb, as_version=4)
    source = nbformat.read(source_nb, as_version=4)
    reference = {
        cell.metadata["nbgrader"]["grade_id"]: reference_solution(cell.source)
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    unknown = set(spec.replace) - {c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells}
    if unknown:
        raise KeyError(f"{spec.student}: no cells with grade_id {sorted(unknown)} in {release_nb}")
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in spec.replace:
            cell.source = spec.replace[grade_id]
        elif spec.solutions == "reference" and grade_id in reference:
            cell.source = reference[grade_id]
    return notebook
