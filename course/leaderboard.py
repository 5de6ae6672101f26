"""The capstone's leaderboard, read from the autograded notebooks (``08_cifar_challenge``).

The capstone's hidden accuracy test measures each submitted model file in a fresh
Python and calls :func:`record`, which prints one line into that test cell's output::

    LEADERBOARD {"accuracy": 0.8462, "params": 308842}

After ``course grade``, :func:`entries` reads those lines back from
``autograded/<student>/<assignment>/`` and ``course leaderboard ASSIGNMENT`` ranks them.
Only the output of the named test cell counts, so a student cannot add a line of
their own from another cell.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from course import layout

MARKER = "LEADERBOARD "
GRADE_ID = "challenge_accuracy_tiers"


@dataclass(frozen=True)
class Entry:
    """One student's measured model."""

    student: str
    accuracy: float
    params: int


def record(report: dict[str, Any]) -> None:
    """Print the leaderboard line for a :func:`course.checks.file_report` result (called by the hidden test)."""
    print(MARKER + json.dumps({"accuracy": round(float(report["accuracy"]), 4), "params": int(report["params"])}))


def _measured(notebook: nbformat.NotebookNode, grade_id: str) -> dict[str, Any] | None:
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") != grade_id:
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                for line in output.get("text", "").splitlines():
                    if line.startswith(MARKER):
                        return json.loads(line[len(MARKER):])
    return None


def entries(root: Path, assignment: str, grade_id: str = GRADE_ID) -> tuple[list[Entry], list[str]]:
    """The ranked entries (best accuracy first, then fewer parameters) and the students without a measured model,
    from the course's autograded folder (course/layout.py)."""
    ranked, unmeasured = [], []
    for path in sorted(layout.read(root).step("autograded").glob(f"*/{assignment}/*.ipynb")):
        student = path.parent.parent.name
        measured = _measured(nbformat.read(path, as_version=4), grade_id)
        if measured is None:
            unmeasured.append(student)
        else:
            ranked.append(Entry(student, float(measured["accuracy"]), int(measured["params"])))
    ranked.sort(key=lambda e: (-e.accuracy, e.params, e.student))
    return ranked, unmeasured


def format_table(ranked: list[Entry], unmeasured: list[str]) -> str:
    """A plain-text leaderboard; students without a measured model are listed after it."""
    lines = [f"{'rank':>4}  {'student':<24} {'test accuracy':>13} {'parameters':>12}"]
    lines += [f"{rank:>4}  {e.student:<24} {e.accuracy:>13.2%} {e.params:>12,}" for rank, e in enumerate(ranked, 1)]
    if unmeasured:
        lines.append(f"no model measured: {', '.join(unmeasured)}")
    return "\n".join(lines)


def write_csv(path: Path, ranked: list[Entry]) -> None:
    """``rank,student,accuracy,params``, one row per ranked student."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "student", "accuracy", "params"])
        writer.writerows([rank, e.student, f"{e.accuracy:.4f}", e.params] for rank, e in enumerate(ranked, 1))
