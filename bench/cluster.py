"""Benchmark: `course grade --scheduler` on a Dask LocalCluster of 1, 2 and 4 grading workers.

    python bench/cluster.py [--copies 8] [--assignment 02_mnist_mlp] [--workers 1 2 4]

1. A synthetic class: ``--copies`` copies of the ``correct`` sample of one assignment,
   graded through a ``LocalCluster`` of each number of worker processes in
   ``--workers`` (one ``grade`` slot each, as ``course worker`` starts them), and by
   the local pool with 2 jobs for comparison: submissions per minute, where it saturates.
2. One complete course submission (the ``correct`` sample of every assignment) through
   a 2-worker LocalCluster: the seconds of worker time it costs, which sets the table
   of class size against wall time for N machines (the arithmetic is printed with it).

Each run grades a fresh throwaway copy of the course. Prints Markdown and writes it to
``bench/CLUSTER.md``. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dask  # noqa: E402
from distributed import LocalCluster  # noqa: E402

from course.grading import batch, cluster, pipeline  # noqa: E402
from grading import _course, _keep_only_correct  # noqa: E402
import machine  # noqa: E402  (bench/machine.py)

REPORT = ROOT / "bench" / "CLUSTER.md"
CLASS_SIZES = (30, 300, 1000, 3000)
MACHINES = ((1, 2), (1, 32), (4, 32), (16, 32))  # (machines, cores each)


def _cluster(workers: int) -> LocalCluster:
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, resources={cluster.RESOURCE: 1},
                            dashboard_address=None)


def class_throughput(assignment: str, copies: int, workers: int | None) -> tuple[float, list[float]]:
    """Seconds to grade ``copies`` correct submissions on a LocalCluster of ``workers`` (None: the local pool,
    2 jobs), and their scores."""
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        root = _course(Path(folder), [assignment])
        _keep_only_correct(root, copies)
        start = time.perf_counter()
        if workers is None:
            outcomes = batch.grade(root, [assignment], jobs=2)
        else:
            with _cluster(workers) as local:
                outcomes = batch.grade(root, [assignment], scheduler=local.scheduler_address)
        return time.perf_counter() - start, [o.score for o in outcomes]


MERGES: list[float] = []


def _timed_merge(*args, **kwargs):
    start = time.perf_counter()
    try:
        return _merge(*args, **kwargs)
    finally:
        MERGES.append(time.perf_counter() - start)


_merge, batch.merge = batch.merge, _timed_merge


def whole_course() -> tuple[float, list[batch.Outcome]]:
    """Wall seconds and outcomes of one complete course submission on a 2-worker LocalCluster."""
    assignments = pipeline.assignments(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        root = _course(Path(folder), assignments)
        _keep_only_correct(root, 1)
        start = time.perf_counter()
        with _cluster(2) as local:
            outcomes = batch.grade(root, assignments, scheduler=local.scheduler_address)
        return time.perf_counter() - start, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--assignment", default="02_mnist_mlp")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    lines = [f"# Grading on a Dask cluster ({platform.node()}: {machine.describe(cores=cores)})", "",
             f"`python bench/cluster.py --copies {args.copies} --assignment {args.assignment} --workers "
             f"{' '.join(map(str, args.workers))}`; sandboxed; grading budget; each worker process has one `grade` "
             "slot, as `course worker` starts them.", "",
             f"## A class of {args.copies} correct submissions of {args.assignment}", "",
             "| graded by | seconds | submissions / minute | scores |", "| --- | --- | --- | --- |"]
    for workers in [None, *args.workers]:
        seconds, scores = class_throughput(args.assignment, args.copies, workers)
        label = "local pool, 2 jobs" if workers is None else f"LocalCluster, {workers} worker(s)"
        lines.append(f"| {label} | {seconds:.0f} | {args.copies / seconds * 60:.2f} | {min(scores):g}-{max(scores):g} |")
        print(lines[-1], flush=True)
    MERGES.clear()
    wall, outcomes = whole_course()
    merge = sum(MERGES) / len(MERGES)
    work = sum(o.seconds for o in outcomes)
    lines += ["", "## One complete course submission (LocalCluster, 2 workers)", "",
              "| assignment | score | seconds of its worker |", "| --- | --- | --- |"]
    lines += [f"| {o.assignment} | {o.score:g}/{o.max_score:g} | {o.seconds:.0f} |" for o in outcomes]
    lines += [f"| **all: worker seconds** | | **{work:.0f}** |", f"| **all: wall clock** | | **{wall:.0f}** |"]
    # Each of the 2 slots had cores / 2 cores: a course submission costs work x cores / 2 core-seconds.
    core_seconds = work * cores / 2
    longest = max(o.seconds for o in outcomes)
    lines += ["", "## Class size against wall time", "",
              f"One complete course submission took {work:.0f} s of grading-slot time here, with 2 slots sharing "
              f"{cores} cores: {work:.0f} x {cores} / 2 = {core_seconds:.0f} core-seconds. N machines of C cores, one "
              f"slot per core, grade a class of S in about S x {core_seconds:.0f} / (N x C) seconds, and never less "
              f"than the longest single submission ({longest:.0f} s). Computed from this machine's figures, assuming "
              "a core grades as fast elsewhere. The merge into the gradebook runs here, one submission at a "
              f"time, alongside the grading: {merge:.2f} s per submission measured, so it keeps up with up to "
              f"{core_seconds / len(outcomes) / merge:.0f} cores:", "",
              "| class size | " + " | ".join(f"{n} x {c} cores" for n, c in MACHINES) + " |",
              "| --- | " + " | ".join("---" for _ in MACHINES) + " |"]
    for size in CLASS_SIZES:
        cells = []
        for machines, each in MACHINES:
            seconds = max(size * core_seconds / (machines * each), longest)
            cells.append(f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines += ["", f"Measured {datetime.date.today()} at commit {commit}."]
    text = "\n".join(lines) + "\n"
    print(text)
    REPORT.write_text(text)


if __name__ == "__main__":
    main()
