"""The instructor's nbgrader steps, run as nbgrader's own commands in a course folder.

Used by ``course demo`` (course/grading/demo.py), ``course grade`` (course/grading/batch.py) and the tests.
Every step is the documented nbgrader command an instructor would type, run
with this Python so that the course's configuration and kernel are the same.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from course.grading import submissions

SAMPLES_DIR = Path("tests") / "submissions"
# nbgrader reads a submission's time from timestamp.txt, as `nbgrader collect`
# writes it; a fixed one keeps the samples' grades reproducible.
SAMPLE_TIMESTAMP = "2026-01-01 12:00:00.000000 UTC"


def assignments(root: Path) -> list[str]:
    """The assignments in ``root/source``, in course order."""
    return sorted(p.name for p in (root / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


def nbgrader_command(*args: str) -> list[str]:
    """``nbgrader ARGS`` run by this Python, so that configuration and kernel match, started a second sooner
    (course/grading/nbgrader_app.py)."""
    return [sys.executable, "-m", "course.grading.nbgrader_app", *args]


def autograde_command(*args: str) -> list[str]:
    """``nbgrader autograde`` and then ``nbgrader generate_feedback``, both ``--force``, in one Python
    (course/grading/autograde.py, which says what ``args`` are): what ``course grade`` runs in each submission's workspace."""
    return [sys.executable, "-m", "course.grading.autograde", *args]


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: it calls `alembic` by name, so this Python's scripts come first on PATH."""
    return dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def nbgrader(root: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader ARGS`` in ``root``; raise with its output if it fails."""
    result = subprocess.run(nbgrader_command(*args), cwd=root, text=True, capture_output=capture, env=nbgrader_env())
    if result.returncode != 0:
        detail = f"\n{result.stdout}\n{result.stderr}" if capture else ""
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed with exit code {result.returncode}{detail}")
    return result


def release(root: Path, assignment: str, capture: bool = False) -> None:
    """``nbgrader generate_assignment``: write ``release/<assignment>`` from ``source/``."""
    nbgrader(root, "generate_assignment", assignment, "--force", capture=capture)


def submit_samples(root: Path, assignment: str, samples_dir: Path) -> list[submissions.SampleSubmission]:
    """Build the sample submissions of ``assignment`` into ``root/submitted/<student>/<assignment>/``."""
    spec_file = samples_dir / f"{assignment}.yml"
    if not spec_file.is_file():
        return []
    specs = submissions.load_specs(spec_file)
    for spec in specs:
        target = root / "submitted" / spec.student / assignment
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        (target / "timestamp.txt").write_text(SAMPLE_TIMESTAMP)
        for release_nb in sorted((root / "release" / assignment).glob("*.ipynb")):
            source_nb = root / "source" / assignment / release_nb.name
            nbformat.write(submissions.build(release_nb, source_nb, spec), target / release_nb.name)
        submissions.write_files(spec, samples_dir, target)
    return specs


def export(root: Path, capture: bool = False) -> list[dict[str, str]]:
    """``nbgrader export``: write ``root/grades.csv`` and return its rows."""
    nbgrader(root, "export", capture=capture)
    with open(root / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


def format_grades(rows: list[dict[str, str]]) -> str:
    """``grades.csv`` as a grade table: one row per student, a column per assignment (headed by its number, named
    in the legend below), and each student's total. nbgrader lists every student for every assignment; a row
    without a timestamp had no submission (``-``, counted 0 in the total)."""
    assignments = sorted({row["assignment"] for row in rows})
    maximum = {row["assignment"]: float(row["max_score"]) for row in rows}
    prefixes = [a.split("_")[0] for a in assignments]
    short = dict(zip(assignments, prefixes)) if len(set(prefixes)) == len(prefixes) else {a: a for a in assignments}
    scores: dict[str, dict[str, float | None]] = {}
    for row in rows:
        scores.setdefault(row["student_id"], {})[row["assignment"]] = float(row["score"]) if row["timestamp"] else None
    width = max([7, *(len(student) for student in scores)])
    columns = [max(5, len(short[a])) for a in assignments]
    total_max = sum(maximum.values())
    totals = {student: f"{sum(v or 0.0 for v in scores[student].values()):g}/{total_max:g}" for student in scores}
    total_width = max(len("total"), *(len(t) for t in totals.values()))
    lines = [f"{'student':<{width}} " + " ".join(f"{short[a]:>{w}}" for a, w in zip(assignments, columns))
             + f"  {'total':>{total_width}}"]
    for student in sorted(scores):
        cells = [scores[student].get(a) for a in assignments]
        lines.append(f"{student:<{width}} " + " ".join(f"{'-' if c is None else f'{c:g}':>{w}}" for c, w in zip(cells, columns))
                     + f"  {totals[student]:>{total_width}}")
    lines.append("")
    lines += [f"{short[a]:>{max(columns)}}  {a} (out of {maximum[a]:g})" for a in assignments if short[a] != a]
    lines.append("-: no submission (0 in the total)")
    return "\n".join(lines)
