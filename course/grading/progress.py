"""How long ``course grade`` will take: timings kept from the last run, longest-first order, an ETA.

``course grade`` (course/grading/batch.py) writes how long each submission took, and the median
of each assignment's, to ``logs/grading-times.json`` after every run. The next run uses
them twice:

- it hands the longest submissions to the workers first (a class's 06 notebooks
  before its 01 notebooks; a submission that took long last time, such as one that
  looped to the cell time limit, before the others of its assignment), so that no
  worker is left with one long submission at the end while the others wait;
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
from dataclasses import dataclass, field
from pathlib import Path

TIMINGS_FILE = Path("logs") / "grading-times.json"
# Median seconds per submission, `course grade --all` of the sample submissions (tests/submissions)
# with 2 workers on a 2-core machine, 2026-11-25 (64 submissions in 1730 s, 600 s cell limit; the
# samples' own times are tests/submissions/grading-times.json). That run graded 05_cifar_cnn before 05b_cifar_wide
# was split from it (56.9 s, both parts): the two split parts' figures are the pipeline test's medians after the
# split (tests/submissions/grading-times.json, 2026-12-07). An assignment missing here gets the median of these.
MEASURED = {"01_images": 13.3, "02_mnist_mlp": 30.1, "03_mnist_cnn": 24.8, "04_fashion_cnn": 35.3,
            "05_cifar_cnn": 28.2, "05b_cifar_wide": 35.8, "06_normalization_optimizers": 69.7,
            "07_batchnorm_functional": 41.8, "08_cifar_challenge": 27.7}


def with_defaults(stored: dict[str, float]) -> dict[str, float]:
    """The timings to expect: a course's own (``stored``, from :func:`load`) over :data:`MEASURED`."""
    return {**MEASURED, **stored}


@dataclass
class Timings:
    """What the last runs took: the median seconds of each assignment's submissions, and each submission's."""

    assignments: dict[str, float] = field(default_factory=dict)
    submissions: dict[tuple[str, str], float] = field(default_factory=dict)


def _positive(seconds: object) -> float:
    value = float(seconds)  # type: ignore[arg-type]
    if not value > 0:
        raise ValueError(f"not a time: {seconds!r}")
    return value


def load(root: Path) -> Timings:
    """The timings :func:`save` kept under ``root``; empty when there are none or they are unreadable."""
    return load_file(root / TIMINGS_FILE)


def load_file(path: Path) -> Timings:
    """The timings in ``path``, a file :func:`save` wrote; empty when it is missing or unreadable."""
    try:
        stored = json.loads(path.read_text())
        return Timings({str(name): _positive(seconds) for name, seconds in stored["assignments"].items()},
                       {(str(assignment), str(student)): _positive(seconds)
                        for assignment, by_student in stored["submissions"].items()
                        for student, seconds in by_student.items()})
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return Timings()


def save(root: Path, seconds: Iterable[tuple[str, str, float]], earlier: Timings | None = None) -> None:
    """Store this run's ``(assignment, student, seconds)``: each submission's time, and the median per
    assignment; ``earlier``'s other assignments and submissions are kept."""
    earlier = earlier or Timings()
    by_assignment: dict[str, list[float]] = {}
    submissions = dict(earlier.submissions)
    for assignment, student, value in seconds:
        by_assignment.setdefault(assignment, []).append(value)
        submissions[assignment, student] = round(value, 1)
    assignments = dict(earlier.assignments)
    assignments.update({name: round(statistics.median(values), 1) for name, values in by_assignment.items()})
    nested: dict[str, dict[str, float]] = {}
    for (assignment, student), value in submissions.items():
        nested.setdefault(assignment, {})[student] = value
    path = root / TIMINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"assignments": assignments, "submissions": nested}, indent=1, sort_keys=True) + "\n")


def longest_first(submissions: list[tuple[str, str]], expected: dict[str, float],
                  known: dict[tuple[str, str], float] | None = None) -> list[tuple[str, str]]:
    """``(assignment, student)`` pairs, the longest expected first: a submission's own last time where
    ``known`` has it, else its assignment's in ``expected``. Assignments without a timing keep their place
    before the timed ones (they may be long), and ties keep their order."""
    known = known or {}
    return sorted(submissions, key=lambda pair: -known.get(pair, expected.get(pair[0], float("inf"))))


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
