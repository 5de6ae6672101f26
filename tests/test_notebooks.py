"""The notebooks' structure: nbgrader metadata, the course skeleton, clean commits."""

from collections import Counter
from pathlib import Path

import nbformat
import pytest

from course.grading import submissions

ROOT = Path(__file__).parents[1]
SOURCE_NOTEBOOKS = sorted((ROOT / "source").glob("*/*.ipynb"))
RELEASE_NOTEBOOKS = sorted((ROOT / "release").glob("*/*.ipynb"))
ALL_NOTEBOOKS = SOURCE_NOTEBOOKS + RELEASE_NOTEBOOKS


def _nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


def _read(path):
    return nbformat.read(path, as_version=4)


def test_there_are_notebooks():
    assert SOURCE_NOTEBOOKS and len(RELEASE_NOTEBOOKS) == len(SOURCE_NOTEBOOKS)


def test_grade_ids_are_unique_across_the_course():
    ids = [_nbgrader(c)["grade_id"] for path in SOURCE_NOTEBOOKS for c in _read(path).cells if _nbgrader(c).get("grade_id")]
    assert [i for i, n in Counter(ids).items() if n > 1] == []


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_without_outputs(path):
    for cell in _read(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_skeleton(path):
    cells = _read(path).cells
    headings = [line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("#")]
    assert cells[0].source.startswith("# ") and sum(h.startswith("# ") for h in headings) == 1, "one H1 title, first"
    for section in ("## Overview", "## Setup", "## Summary", "## Exercises"):
        assert any(h.startswith(section) for h in headings), f"missing section {section}"
    for before, cell in zip(cells, cells[1:]):
        if cell.cell_type == "code" and not _nbgrader(cell).get("grade"):
            assert before.cell_type == "markdown" or _nbgrader(before).get("grade"), f"no prose before: {cell.source[:60]}"


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_graded_cells(path):
    cells = _read(path).cells
    pending_solution = None
    for cell in cells:
        meta = _nbgrader(cell)
        if meta.get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
            pending_solution = meta["grade_id"]
        if meta.get("grade") and meta.get("solution"):  # an answer graded by hand (04-07's readings, 08's analysis)
            assert cell.cell_type == "markdown" and meta["points"] > 0 and not meta["locked"], meta["grade_id"]
            assert cell.source.startswith("*For graders: what a full answer contains"), f"{meta['grade_id']}: no rubric"
            continue
        if meta.get("grade"):
            assert meta["points"] > 0 and meta["locked"]
            assert cell.source.startswith('"""') and "\n" in cell.source, f"{meta['grade_id']}: first line must be a docstring"
            assert "### BEGIN HIDDEN TESTS" in cell.source, f"{meta['grade_id']}: no hidden tests"
            visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
            assert "assert" in visible, f"{meta['grade_id']}: no visible self-check before the hidden tests"
            pending_solution = None
    assert pending_solution is None, f"{pending_solution} has no test cell after it"


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_a_deleted_test_cell_can_be_put_back(path):
    # nbgrader re-inserts a deleted test cell after the nbgrader cell before it in the
    # source, which must then be a solution or test cell (OverwriteCells.add_missing_grade_cells).
    previous = None
    for cell in _read(path).cells:
        meta = _nbgrader(cell)
        if meta.get("grade") and not meta.get("solution"):
            assert previous is not None and (previous.get("solution") or previous.get("grade")), (
                f"{meta['grade_id']}: the nbgrader cell before it must be a solution or test cell")
        if meta.get("grade_id"):
            previous = meta


@pytest.mark.parametrize("path", RELEASE_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_release_has_no_solutions_or_hidden_tests(path):
    text = path.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "For graders"):
        assert marker not in text  # "For graders": the rubric of an answer graded by hand
    stubs = [c for c in _read(path).cells if _nbgrader(c).get("solution") and c.cell_type == "code"]
    assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_sample_submissions_cover_full_marks_nothing_and_partial(path):
    # Answers graded by hand (08's analysis) score nothing until an instructor grades them.
    total = sum(_nbgrader(c)["points"] for c in _read(path).cells if _nbgrader(c).get("grade") and not _nbgrader(c).get("solution"))
    specs = {s.student: s for s in submissions.load_specs(ROOT / "tests" / "submissions" / f"{path.parent.name}.yml")}
    assert specs["correct"].expected_score == total
    assert specs["empty"].expected_score == 0 and specs["empty"].solutions == "none"
    assert 0 < specs["partly_wrong"].expected_score < total


def test_every_training_notebook_is_benchmarked_and_reports_what_the_benchmark_reads():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    training = {p.parent.name for p in SOURCE_NOTEBOOKS if "budget.choose(" in p.read_text()}
    assert training == set(bench.TRAINING_NOTEBOOKS)
    for name in training:
        code = "\n".join(c.source for c in _read(ROOT / "source" / name / f"{name}.ipynb").cells if c.cell_type == "code")
        for definition in ("BUDGET = budget.choose(", "model = ", "train_seconds = ", "test_accuracy = "):
            assert definition in code, f"{name} must define {definition.split(' ')[0]} (bench/run.py reads it)"
        budget_cells = [c for c in _read(ROOT / "source" / name / f"{name}.ipynb").cells if "BUDGET = budget.choose(" in c.source]
        assert len(budget_cells) == 1 and budget_cells[0].metadata["nbgrader"]["locked"], f"{name}: one locked budget cell"


def _names(tree):
    """(names a cell assigns or imports, names it reads)."""
    import ast

    assigned, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else assigned).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            assigned |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.arg):
            assigned.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):  # a helper the cell defines itself
            assigned.add(node.name)
    return assigned, read


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_test_cells_are_plain_python_and_define_their_own_helpers(path):
    """The judge (course/grading/judge.py) runs test cells as plain Python, and never takes a name starting
    with `_` from the student's kernel: each test cell imports or defines every `_name` it reads,
    so it is graded on its own, whatever an earlier test cell did."""
    import ast

    for cell in _read(path).cells:
        if cell.cell_type == "code" and _nbgrader(cell).get("grade"):
            tree = ast.parse(cell.source)  # no IPython magics in a test cell
            assigned, read = _names(tree)
            assert sorted(n for n in read - assigned if n.startswith("_")) == [], _nbgrader(cell)["grade_id"]


def test_each_model_file_a_notebook_saves_is_submitted_graded_and_never_overwritten():
    """The files named in a notebook's setup (``Path("<name>.keras")``) are the ones its Submitting section
    asks for, its hidden accuracy tests measure, and nbgrader_config.py keeps from being overwritten."""
    import re

    from traitlets.config.loader import PyFileConfigLoader

    excluded = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config().Autograde.exclude_overwriting
    seen = {}
    for path in SOURCE_NOTEBOOKS:
        cells = _read(path).cells
        setup = next(c.source for c in cells if _nbgrader(c).get("grade_id", "").endswith("_setup"))
        names = re.findall(r'Path\("(\d\d[a-z]?_\w+\.keras)"\)', setup)
        if not names:
            continue
        seen[path.parent.name] = sorted(names)
        # "## Submitting" (02 to 07) or the capstone's rules in its overview
        submitting = "\n".join(c.source for c in cells if c.cell_type == "markdown" and "Submit" in c.source)
        hidden = "\n".join(c.source for c in cells if _nbgrader(c).get("grade"))
        for name in names:
            assert name.startswith(path.parent.name), f"{name}: a model file is named after its assignment"
            assert f"`{name}`" in submitting, f"{path.parent.name}: no Submit paragraph asks for {name}"
            assert f'Path("{name}")' in hidden, f"{path.parent.name}: no hidden test measures {name}"
    assert [name.split("_")[0] for name in seen] == ["02", "03", "04", "05", "05b", "06", "07", "08"], "every training notebook"
    assert {name: sorted(files) for name, files in excluded.items()} == seen
