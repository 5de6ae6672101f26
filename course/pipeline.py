"""The instructor's nbgrader steps, run as nbgrader's own commands in a course folder.

Used by ``course demo`` (course/demo.py), ``course grade`` (course/batch.py) and the tests.
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

from course import submissions

SAMPLES_DIR = Path("tests") / "submissions"
# nbgrader reads a submission's time from timestamp.txt, as `nbgrader collect`
# writes it; a fixed one keeps the samples' grades reproducible.
SAMPLE_TIMESTAMP = "2026-01-01 12:00:00.000000 UTC"


def assignments(root: Path) -> list[str]:
    """The assignments in ``root/source``, in course order."""
    return sorted(p.name for p in (root / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


def nbgrader_command(*args: str) -> list[str]:
    """``nbgrader ARGS`` run by this Python, so that configuration and kernel match."""
    return [sys.executable, "-m", "nbgrader", *args]


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
    """A plain-text table of ``grades.csv`` rows; nbgrader lists every student for
    every assignment, and a row without a timestamp had no submission."""
    width = max([16, *(len(row["assignment"]) for row in rows)])
    lines = [f"{'assignment':<{width}} {'student':<24} {'score':>7} {'max':>5}"]
    for row in sorted(rows, key=lambda r: (r["assignment"], r["student_id"])):
        score = f"{float(row['score']):>7.1f}" if row["timestamp"] else f"{'-':>7}"
        note = "" if row["timestamp"] else "  (no submission)"
        lines.append(f"{row['assignment']:<{width}} {row['student_id']:<24} {score} {float(row['max_score']):>5.1f}{note}")
    return "\n".join(lines)
