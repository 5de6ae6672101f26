"""Benchmark: how fast `course grade` grades a class, with 1 and 2 workers.

    python bench/grading.py [--copies 20] [--assignment 02_mnist_mlp] [--jobs 1 2]

1. A synthetic class: ``--copies`` copies of the ``correct`` sample submission of
   one training assignment, graded (sandboxed, under the grading budget) with each
   number of workers in ``--jobs``: submissions per minute and the speed-up.
2. One complete course submission: the ``correct`` sample of every assignment,
   graded by one ``course grade --all`` with the most workers given; it must
   score what its sample file expects (08's hand-graded analysis scores 0).

Each run grades a fresh throwaway copy of the course. Prints a Markdown table
and writes it to ``bench/GRADING.md``. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from course.grading import batch, pipeline, submissions  # noqa: E402
import machine  # noqa: E402  (bench/machine.py)

REPORT = ROOT / "bench" / "GRADING.md"


def _course(folder: Path, assignments: list[str]) -> Path:
    root = folder / "course"
    for assignment in assignments:
        shutil.copytree(ROOT / "source" / assignment, root / "source" / assignment)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    for assignment in assignments:
        pipeline.release(root, assignment, capture=True)
        pipeline.submit_samples(root, assignment, ROOT / pipeline.SAMPLES_DIR)
    return root


def _keep_only_correct(root: Path, copies: int) -> None:
    submitted = root / "submitted"
    for student in list(submitted.iterdir()):
        if student.name != "correct":
            shutil.rmtree(student)
    for index in range(1, copies):
        shutil.copytree(submitted / "correct", submitted / f"student{index:02d}")


def class_throughput(assignment: str, copies: int, jobs: int) -> tuple[float, list[float]]:
    """Seconds to grade ``copies`` correct submissions with ``jobs`` workers, and their scores."""
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        root = _course(Path(folder), [assignment])
        _keep_only_correct(root, copies)
        start = time.perf_counter()
        outcomes = batch.grade(root, [assignment], jobs=jobs)
        return time.perf_counter() - start, [o.score for o in outcomes]


def whole_course(jobs: int) -> tuple[float, list[batch.Outcome]]:
    """Seconds to grade the ``correct`` sample of every assignment (one student's course), and how each went."""
    assignments = pipeline.assignments(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        root = _course(Path(folder), assignments)
        _keep_only_correct(root, 1)
        start = time.perf_counter()
        outcomes = batch.grade(root, assignments, jobs=jobs)
        seconds = time.perf_counter() - start
    for outcome in outcomes:
        (spec,) = [s for s in submissions.load_specs(ROOT / pipeline.SAMPLES_DIR / f"{outcome.assignment}.yml")
                   if s.student == "correct"]
        assert outcome.score == spec.expected_score, f"{outcome.assignment}: {outcome.score}, not {spec.expected_score}"
    return seconds, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--assignment", default="02_mnist_mlp")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    lines = [f"# Grading benchmark ({platform.node() or 'this machine'}: {machine.describe()})", "",
             f"`python bench/grading.py --copies {args.copies} --assignment {args.assignment} --jobs {' '.join(map(str, args.jobs))}`,"
             f" COURSE_CELL_TIMEOUT={os.environ.get('COURSE_CELL_TIMEOUT', '600')}; sandboxed; grading budget.", "",
             f"## A class of {args.copies} correct submissions of {args.assignment}", "",
             "| workers | seconds | submissions / minute | speed-up | scores |", "| --- | --- | --- | --- | --- |"]
    baseline = None
    for jobs in args.jobs:
        seconds, scores = class_throughput(args.assignment, args.copies, jobs)
        baseline = baseline or seconds
        lines.append(f"| {jobs} | {seconds:.0f} | {60 * args.copies / seconds:.2f} | {baseline / seconds:.2f}x | "
                     f"{min(scores):g}-{max(scores):g} |")
        print(lines[-1], flush=True)
    seconds, outcomes = whole_course(max(args.jobs))
    lines += ["", f"## One complete course submission ({max(args.jobs)} workers, all assignments at once)", "",
              "| assignment | score | seconds of its worker |", "| --- | --- | --- |"]
    lines += [f"| {o.assignment} | {o.score:g}/{o.max_score:g} | {o.seconds:.0f} |" for o in outcomes]
    lines.append(f"| **all, wall clock** | | **{seconds:.0f}** |")
    graded_files = sorted(ROOT.glob(f"{pipeline.SAMPLES_DIR}/*_reference.keras"))
    lines += ["", "## Model files graded instead of retrained", "",
              "The `correct` sample of these assignments submits its model file (trained with the full budget, no "
              "optimizer state); the others retrain under the grading budget.", "",
              "| assignment | file | MB |", "| --- | --- | --- |"]
    lines += [f"| {p.name.removesuffix('_reference.keras')} | {p.name} | {p.stat().st_size / 1e6:.1f} |" for p in graded_files]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines += ["", f"Measured {datetime.date.today()} at commit {commit or 'unknown'}."]
    text = "\n".join(lines) + "\n"
    REPORT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
