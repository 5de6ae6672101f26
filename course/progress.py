"""How long ``course grade`` will take: timings kept from the last run, longest-first order, an ETA.

``course grade`` (course/batch.py) writes how long each assignment's submissions took
to ``logs/grading-times.json`` after every run. The next run uses them twice:

- it hands the longest submissions to the workers first (a class's 06 notebooks
  before its 01 notebooks), so that no worker is left with one long submission at
  the end while the others wait;
- it shows an ETA from the first second, before any submission has finished:
  the expected time of every submission not yet graded, shared among the workers.
  Once some have finished, their real times replace the last run's.

Without timings (the first run) the order is the course's and the ETA waits for the
first finished submission.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

TIMINGS_FILE = Path("logs") / "grading-times.json"


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
        """What one submission of ``assignment`` takes: this run's median, else the last run's, else
        this run's median over every assignment."""
        here = [s for a, s in self.finished if a == assignment]
        if here:
            return statistics.median(here)
        if assignment in self.expected:
            return self.expected[assignment]
        return statistics.median(s for _, s in self.finished) if self.finished else None

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
