"""How long ``course grade`` will take: timings kept from the last run, longest-first order, an ETA.

``course grade`` (course/batch.py) writes how long each assignment's submissions took
to ``logs/grading-times.json`` after every run. The next run uses them twice:

- it hands the longest submissions to the workers first (a class's 06 notebooks
  before its 01 notebooks), so that no worker is left with one long submission at
  the end while the others wait;
- it shows an ETA from the first second, before any submission has finished:
  the expected time of every submission not yet graded, shared among the workers.
  Once some have finished, their real times replace the last run's.

Before a course has timings of its own (its first run), :data:`MEASURED` stands in:
this course's assignments as measured here, and their median for any other
assignment, so the ETA is there from the first second all the same.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

TIMINGS_FILE = Path("logs") / "grading-times.json"
# Median seconds per submission, `course grade --all` of the sample submissions (tests/submissions)
# with 2 workers on a 2-core machine, 2026-11-25 (61 submissions in 2382 s; a busy machine).
MEASURED = {"01_images": 45.0, "02_mnist_mlp": 62.0, "03_mnist_cnn": 47.0, "04_fashion_cnn": 50.0,
            "05_cifar_cnn": 98.0, "06_normalization_optimizers": 115.0, "07_batchnorm_functional": 52.0,
            "08_cifar_challenge": 30.0}


def with_defaults(stored: dict[str, float]) -> dict[str, float]:
    """The timings to expect: a course's own (``stored``, from :func:`load`) over :data:`MEASURED`."""
    return {**MEASURED, **stored}


def load(root: Path) -> dict[str, float]:
    """The last run's median seconds per submission, by assignment; empty when there is none or it is unreadable."""
    try:
        stored = json.loads((root / TIMINGS_FILE).read_text())
        return {str(name): float(seconds) for name, seconds in stored.items() if float(seconds) > 0}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save(root: Path, seconds: Iterable[tuple[str, float]], earlier: dict[str, float] | None = None) -> None:
    """Store the median of this run's ``(assignment, seconds)`` per assignment, keeping ``earlier``'s other assignments."""
    by_assignment: dict[str, list[float]] = {}
    for assignment, value in seconds:
        by_assignment.setdefault(assignment, []).append(value)
    stored = dict(earlier or {})
    stored.update({name: round(statistics.median(values), 1) for name, values in by_assignment.items()})
    path = root / TIMINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")


def longest_first(submissions: list[tuple[str, str]], expected: dict[str, float]) -> list[tuple[str, str]]:
    """``(assignment, student)`` pairs, the longest expected first; assignments without a timing keep their
    place before the timed ones (they may be long), and ties keep their order."""
    return sorted(submissions, key=lambda pair: -expected.get(pair[0], float("inf")))


class Estimate:
    """The time left for a batch of submissions shared by ``jobs`` workers."""

    def __init__(self, submissions: list[tuple[str, str]], jobs: int, expected: dict[str, float],
                 clock=time.monotonic) -> None:
        self.assignments = [assignment for assignment, _ in submissions]
        self.jobs = jobs
        self.expected = dict(expected)
        self.clock = clock
        self.start = clock()
        self.finished: list[tuple[str, float]] = []

    def done(self, assignment: str, seconds: float) -> None:
        """One submission of ``assignment`` finished after ``seconds``."""
        self.finished.append((assignment, seconds))

    def _seconds(self, assignment: str) -> float | None:
        """What one submission of ``assignment`` takes: this run's median, else the expected one, else
        this run's median over every assignment, else the expected median over every assignment."""
        here = [s for a, s in self.finished if a == assignment]
        if here:
            return statistics.median(here)
        if assignment in self.expected:
            return self.expected[assignment]
        if self.finished:
            return statistics.median(s for _, s in self.finished)
        return statistics.median(self.expected.values()) if self.expected else None

    def left(self) -> float | None:
        """Seconds until the last submission finishes, or None when nothing tells yet."""
        remaining = list(self.assignments)
        for assignment, _ in self.finished:
            remaining.remove(assignment)
        work = 0.0
        for assignment in remaining:
            seconds = self._seconds(assignment)
            if seconds is None:
                return None
            work += seconds
        # The work started so far (elapsed on every worker) is partly done already.
        elapsed = self.clock() - self.start
        busy = max(0.0, elapsed * min(self.jobs, len(self.assignments)) - sum(s for _, s in self.finished))
        return max(0.0, (work - busy) / min(self.jobs, max(1, len(remaining))))


def format_seconds(seconds: float | None) -> str:
    """``ETA 4 min 05 s``-style text: ``ETA ?`` when unknown."""
    if seconds is None:
        return "ETA ?"
    seconds = round(seconds)
    if seconds < 60:
        return f"ETA {seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"ETA {minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours} h {minutes:02d} min"
