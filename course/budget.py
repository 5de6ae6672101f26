"""How much training a notebook does: a full budget for students, a small one for grading and CI.

Introduced in ``02_mnist_mlp``. Each training notebook has one locked cell::

    BUDGET = course.budget.choose(
        full=course.budget.Budget(epochs=10, train_samples=None),
        grading=course.budget.Budget(epochs=2, train_samples=12_000),
    )

The rule, in order:

1. ``COURSE_BUDGET=full`` or ``COURSE_BUDGET=grading`` decides (benchmarks, CI).
2. Otherwise the grading budget runs when nbgrader executes the notebook
   (it sets ``NBGRADER_EXECUTION`` during ``autograde`` and ``validate``).
3. Otherwise the full budget runs: a student in JupyterLab or Colab.

``test_samples`` (05-08, whose test-set pass takes seconds to half a minute on a CPU): while
nbgrader executes the notebook, its own evaluation uses only the first that many test images.
No grade reads that evaluation (the hidden tests measure the submitted model file on the whole
test set, outside the student's kernel), so the grader does not pay for the pass twice. Everywhere
else (students, CI's nbval and ``make bench`` with ``COURSE_BUDGET=grading``) it is the whole test set:
the benchmark reads the notebooks' own test accuracy.

Hidden tests call :func:`active_name` again instead of trusting ``BUDGET``,
so accuracy thresholds follow the budget that really applied.

:func:`compare` says whether a notebook's comparisons run: the trainings that show
something (SGD against Adam, dropout rates, batch normalization on and off) but
that no grade depends on.
"""

from __future__ import annotations

import dataclasses
import os

BUDGET_VARIABLE = "COURSE_BUDGET"
NBGRADER_VARIABLE = "NBGRADER_EXECUTION"
NAMES = ("full", "grading")


@dataclasses.dataclass(frozen=True)
class Budget:
    """A training budget: ``epochs`` per ``fit``, how many training images to use, and how many test images the
    notebook's own evaluation uses (None: all)."""

    epochs: int
    train_samples: int | None = None
    name: str = ""
    test_samples: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        for field_name in ("train_samples", "test_samples"):
            value = getattr(self, field_name)
            if value is not None and value < 1:
                raise ValueError(f"{field_name} must be positive or None, got {value}")


def active_name() -> str:
    """``"full"`` or ``"grading"``, by the rule in this module's docstring."""
    requested = os.environ.get(BUDGET_VARIABLE, "").strip().lower()
    if requested:
        if requested not in NAMES:
            raise ValueError(f"{BUDGET_VARIABLE}={requested!r}: use one of {NAMES}.")
        return requested
    return "grading" if os.environ.get(NBGRADER_VARIABLE) else "full"


def choose(full: Budget, grading: Budget) -> Budget:
    """Return the budget that applies now, named, and print one line saying which and why."""
    name = active_name()
    chosen = full if name == "full" else grading
    if os.environ.get(BUDGET_VARIABLE):
        why = f"{BUDGET_VARIABLE}={os.environ[BUDGET_VARIABLE]}"
    elif os.environ.get(NBGRADER_VARIABLE):
        why = f"nbgrader {os.environ[NBGRADER_VARIABLE]}"
    else:
        why = "default for students"
    samples = "all" if chosen.train_samples is None else f"{chosen.train_samples:,}"
    test_samples = chosen.test_samples if os.environ.get(NBGRADER_VARIABLE) else None  # the whole test set outside nbgrader
    tested = "" if test_samples is None else f"; evaluated here on the first {test_samples:,} test images"
    print(f"Training budget: {name} ({why}): {chosen.epochs} epochs, {samples} training images{tested}")
    return dataclasses.replace(chosen, name=name, test_samples=test_samples)


def compare() -> bool:
    """Whether the notebook's comparisons run: not while nbgrader executes it (``autograde``, ``validate``).

    Introduced in ``02_mnist_mlp``. No grade depends on a comparison, so under nbgrader it would only
    cost the grader minutes per submission; students (any budget) and CI's nbval (``COURSE_BUDGET=grading``,
    no nbgrader) run them. A notebook reseeds before the training its grade depends on, so that model
    starts the same whether or not a comparison ran first.
    """
    return not os.environ.get(NBGRADER_VARIABLE)
