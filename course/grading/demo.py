"""``course demo``, README's main command: the instructor's whole pipeline on the sample submissions.

Every assignment in ``source/`` is released with ``nbgrader generate_assignment``;
the sample submissions of all of them (``tests/submissions/<assignment>.yml``,
built by course/grading/submissions.py) are graded together by ``course grade`` (course/grading/batch.py:
sandboxed, bounded, in parallel, with feedback); ``nbgrader export`` writes
``grades.csv``, returned as a table. An assignment with a leaderboard (the capstone) prints it.

A course with no timings of its own yet (a fresh clone, CI) starts from the samples'
measured ones (:data:`SAMPLE_TIMINGS`), so that the samples that loop to the cell
time limit are graded first, beside the others, instead of alone at the end.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from course.grading import batch, leaderboard, pipeline, progress, submissions

# Each sample's seconds in a `course demo` on 2 cores (logs/grading-times.json of that run: CI's
# pipeline test at 87bc677 (two samples merged since, timed from their parts; 05_cifar_cnn's and 05b_cifar_wide's
# from the pipeline test at 51f2e2a, after the split), AMD EPYC with AVX-512). Only the order of the queue depends on them.
SAMPLE_TIMINGS = pipeline.SAMPLES_DIR / "grading-times.json"


def run(root: Path, jobs: int = 2) -> str:
    """Release every assignment, grade its sample submissions, export and return the grade table."""
    assignments = pipeline.assignments(root)
    for assignment in assignments:
        pipeline.release(root, assignment)
    sampled = [a for a in assignments if pipeline.submit_samples(root, a, root / pipeline.SAMPLES_DIR)]
    seed_timings(root)
    if sampled:
        print(batch.summary(batch.grade(root, sampled, jobs=jobs)), flush=True)
    for assignment in sampled:
        ranked, unmeasured = leaderboard.entries(root, assignment)
        if ranked:
            print(leaderboard.format_table(ranked, unmeasured), flush=True)
    return pipeline.format_grades(pipeline.export(root))


def seed_timings(root: Path) -> None:
    """Start ``root``'s grading timings from :data:`SAMPLE_TIMINGS`, unless it has timings of its own."""
    timings = root / progress.TIMINGS_FILE
    if not timings.exists() and (root / SAMPLE_TIMINGS).is_file():
        timings.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / SAMPLE_TIMINGS, timings)


def unexpected_scores(root: Path) -> list[str]:
    """The sample submissions whose score in ``root/grades.csv`` differs from the one their YAML file
    expects (tests/submissions/*.yml), one line each; empty when every sample got its score."""
    with open(root / "grades.csv", newline="") as f:
        scores = {(row["assignment"], row["student_id"]): row for row in csv.DictReader(f)}
    lines = []
    for spec_file in sorted((root / pipeline.SAMPLES_DIR).glob("*.yml")):
        assignment = spec_file.stem
        for spec in submissions.load_specs(spec_file):
            row = scores.get((assignment, spec.student))
            got = float(row["score"]) if row and row["timestamp"] else None
            if got != spec.expected_score:
                lines.append(f"{assignment} {spec.student}: expected {spec.expected_score:g}, "
                             f"got {'no grade' if got is None else f'{got:g}'}")
    return lines
