"""course.budget: which budget runs, and why."""

import pytest

from course import budget

FULL = budget.Budget(epochs=10)
GRADING = budget.Budget(epochs=2, train_samples=12_000)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.delenv(budget.BUDGET_VARIABLE, raising=False)
    monkeypatch.delenv(budget.NBGRADER_VARIABLE, raising=False)


def test_students_get_the_full_budget(capsys):
    chosen = budget.choose(full=FULL, grading=GRADING)
    assert chosen == budget.Budget(10, None, "full")
    assert capsys.readouterr().out == "Training budget: full (default for students): 10 epochs, all training images\n"


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_nbgrader_runs_get_the_grading_budget(monkeypatch, capsys, mode):
    monkeypatch.setenv(budget.NBGRADER_VARIABLE, mode)
    assert budget.choose(full=FULL, grading=GRADING) == budget.Budget(2, 12_000, "grading")
    assert capsys.readouterr().out == f"Training budget: grading (nbgrader {mode}): 2 epochs, 12,000 training images\n"


def test_explicit_variable_wins_over_nbgrader(monkeypatch):
    monkeypatch.setenv(budget.NBGRADER_VARIABLE, "autograde")
    monkeypatch.setenv(budget.BUDGET_VARIABLE, "FULL")
    assert budget.active_name() == "full"
    assert budget.choose(full=FULL, grading=GRADING).epochs == 10


def test_unknown_budget_name_is_an_error(monkeypatch):
    monkeypatch.setenv(budget.BUDGET_VARIABLE, "tiny")
    with pytest.raises(ValueError, match="COURSE_BUDGET='tiny'"):
        budget.active_name()


def test_under_nbgrader_a_grading_budget_may_evaluate_on_the_first_test_images_only(monkeypatch, capsys):
    monkeypatch.setenv(budget.NBGRADER_VARIABLE, "autograde")
    grading = budget.Budget(epochs=2, train_samples=10_000, test_samples=2_000)
    assert budget.choose(full=FULL, grading=grading) == budget.Budget(2, 10_000, "grading", 2_000)
    assert capsys.readouterr().out == ("Training budget: grading (nbgrader autograde): 2 epochs, 10,000 training images; "
                                       "evaluated here on the first 2,000 test images\n")
    monkeypatch.delenv(budget.NBGRADER_VARIABLE)
    assert budget.choose(full=FULL, grading=grading).test_samples is None
    monkeypatch.setenv(budget.BUDGET_VARIABLE, "grading")  # CI's nbval and the benchmark: the whole test set
    assert budget.choose(full=FULL, grading=grading) == budget.Budget(2, 10_000, "grading", None)


@pytest.mark.parametrize("epochs, samples, tested", [(0, None, None), (3, 0, None), (3, None, 0)])
def test_budget_rejects_nonsense(epochs, samples, tested):
    with pytest.raises(ValueError):
        budget.Budget(epochs=epochs, train_samples=samples, test_samples=tested)


@pytest.mark.parametrize("budget_name", [None, "grading", "full"])
def test_comparisons_run_except_under_nbgrader(monkeypatch, budget_name):
    if budget_name:
        monkeypatch.setenv(budget.BUDGET_VARIABLE, budget_name)
    assert budget.compare() is True  # students, and CI's nbval with COURSE_BUDGET=grading
    for mode in ("autograde", "validate"):
        monkeypatch.setenv(budget.NBGRADER_VARIABLE, mode)
        assert budget.compare() is False
