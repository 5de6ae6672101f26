"""The capstone's leaderboards, read from the autograded notebooks (``08_cifar_challenge``).

The capstone's hidden accuracy test measures each submitted model file outside the
student's kernel and calls :func:`record`, which prints one line into that test cell's
output::

    LEADERBOARD {"accuracy": 0.8462, "params": 308842, "device": "CPU", "minutes": 19.1, "epochs": 20, "split": "course"}

``device``, ``minutes`` and ``epochs`` come from the training record the model file
holds (course/training.py; the student's session wrote it, so it is reported, not
proven); ``split`` says whether its training labels are the course's training split
(``course``) or not (``other``). A file without a record has none of them.

After ``course grade``, :func:`entries` reads those lines back from
``autograded/<student>/<assignment>/`` and ``course leaderboard ASSIGNMENT`` ranks them,
one board per kind of device (a GPU trains several times faster in the same minutes),
marking the runs outside the rules. Only the output of the named test cell counts, so a
student cannot add a line of their own from another cell.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from course.grading import layout

MARKER = "LEADERBOARD "
GRADE_ID = "challenge_accuracy_tiers"


# The capstone's time rule (08_cifar_challenge's Overview), in minutes of training per kind of device.
TIME_LIMITS = {"CPU": 30.0, "GPU": 10.0}
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Entry:
    """One student's measured model, and what its file says about its training (None: not recorded)."""

    student: str
    accuracy: float
    params: int
    device: str = NOT_RECORDED
    minutes: float | None = None
    epochs: int | None = None
    split: str | None = None

    @property
    def board(self) -> str:
        """The leaderboard this entry is ranked on: ``CPU``, ``GPU`` or ``not recorded``."""
        kind = self.device.split(":")[0].strip()
        return kind if kind in TIME_LIMITS else NOT_RECORDED

    def outside_the_rules(self) -> list[str]:
        """Which rules its record says it broke: the time limit of its device, training on other data."""
        broken = []
        if self.minutes is not None and self.board in TIME_LIMITS and self.minutes > TIME_LIMITS[self.board]:
            broken.append(f"{self.minutes:.0f} min on a {self.board} (limit {TIME_LIMITS[self.board]:.0f})")
        if self.split == "other":
            broken.append("trained on other images than the training split")
        return broken


def record(report: dict[str, Any], course_labels_digest: str | None = None) -> None:
    """Print the leaderboard line for a :func:`course.grading.checks.file_report` result (called by the hidden test).
    ``course_labels_digest`` is :func:`course.training.labels_digest` of the course's training split, which the
    record's ``train_labels_sha256`` is compared with."""
    line: dict[str, Any] = {"accuracy": round(float(report["accuracy"]), 4), "params": int(report["params"])}
    training = report.get("training") or {}
    if training:
        line["device"] = str(training.get("device", NOT_RECORDED))[:80]
        for key, kind in (("minutes", float), ("epochs", int)):
            try:
                line[key] = kind(training[key])
            except (KeyError, TypeError, ValueError):
                pass
        if course_labels_digest is not None and "train_labels_sha256" in training:
            line["split"] = "course" if training["train_labels_sha256"] == course_labels_digest else "other"
    print(MARKER + json.dumps(line))


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
    from the course's autograded folder (course/grading/layout.py)."""
    ranked, unmeasured = [], []
    for path in sorted(layout.read(root).step("autograded").glob(f"*/{assignment}/*.ipynb")):
        student = path.parent.parent.name
        measured = _measured(nbformat.read(path, as_version=4), grade_id)
        if measured is None:
            unmeasured.append(student)
        else:
            ranked.append(Entry(student, float(measured["accuracy"]), int(measured["params"]),
                                str(measured.get("device", NOT_RECORDED)),
                                _number(measured.get("minutes"), float), _number(measured.get("epochs"), int),
                                measured.get("split") if measured.get("split") in ("course", "other") else None))
    ranked.sort(key=lambda e: (-e.accuracy, e.params, e.student))
    return ranked, unmeasured


def _number(value: Any, kind: type) -> Any:
    try:
        return None if value is None else kind(value)
    except (TypeError, ValueError):
        return None


def boards(ranked: list[Entry]) -> dict[str, list[Entry]]:
    """The entries of each leaderboard, ``CPU``, ``GPU``, then ``not recorded``, each in ranked order."""
    order = [*TIME_LIMITS, NOT_RECORDED]
    return {board: [e for e in ranked if e.board == board] for board in order if any(e.board == board for e in ranked)}


def format_table(ranked: list[Entry], unmeasured: list[str]) -> str:
    """Plain-text leaderboards, one per device; runs outside the rules are marked ``*`` and explained below
    their board; students without a measured model are listed last."""
    lines: list[str] = []
    for board, entries_ in boards(ranked).items():
        if lines:
            lines.append("")
        title = f"trained on a {board}" if board in TIME_LIMITS else "no training record in the model file"
        lines += [title, f"{'rank':>4}  {'student':<24} {'test accuracy':>13} {'parameters':>12} {'minutes':>8} {'epochs':>6}"]
        notes = []
        for rank, e in enumerate(entries_, 1):
            broken = e.outside_the_rules()
            minutes = "" if e.minutes is None else f"{e.minutes:.1f}"
            epochs = "" if e.epochs is None else str(e.epochs)
            lines.append((f"{rank:>4}  {e.student:<24} {e.accuracy:>13.2%} {e.params:>12,} {minutes:>8} {epochs:>6}"
                          + ("  *" if broken else "")).rstrip())
            notes += [f"* {e.student}: {'; '.join(broken)}"] if broken else []
        lines += notes
    if unmeasured:
        lines.append(f"no model measured: {', '.join(unmeasured)}")
    return "\n".join(lines)


def _cell(value: Any) -> Any:
    """A CSV field a spreadsheet shows as text: one starting with ``= + - @`` (a formula to Excel or LibreOffice,
    from a student's training record or id) gets a leading ``'``; numbers pass as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(path: Path, ranked: list[Entry]) -> None:
    """``board,rank,student,accuracy,params,device,minutes,epochs,split,outside_rules``, one row per ranked student,
    ranked within its board."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["board", "rank", "student", "accuracy", "params", "device", "minutes", "epochs", "split",
                         "outside_rules"])
        for board, entries_ in boards(ranked).items():
            writer.writerows([_cell(field) for field in (
                board, rank, e.student, f"{e.accuracy:.4f}", e.params, e.device, "" if e.minutes is None else e.minutes,
                "" if e.epochs is None else e.epochs, e.split or "", "; ".join(e.outside_the_rules()))]
                for rank, e in enumerate(entries_, 1))
