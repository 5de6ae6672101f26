"""The instructor's nbgrader pipeline, end to end, in a throwaway copy of the course.

generate_assignment -> sample submissions -> `course grade` (sandboxed autograde, feedback)
-> export, exactly as `course demo` (README's main command) runs it. The samples
(tests/submissions/*.yml) include broken and mischievous submissions.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course.grading import batch, demo, leaderboard, pipeline, submissions

ROOT = Path(__file__).parents[1]
ASSIGNMENTS = pipeline.assignments(ROOT)
SAMPLES = [
    (assignment, spec)
    for assignment in ASSIGNMENTS
    for spec in submissions.load_specs(ROOT / pipeline.SAMPLES_DIR / f"{assignment}.yml")
]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A copy of the course folder after `course demo`, and the grades it exported."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "source", root / "source")
    shutil.copytree(ROOT / pipeline.SAMPLES_DIR, root / pipeline.SAMPLES_DIR)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    table = demo.run(root)
    print(table)
    with open(root / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return root, {(r["assignment"], r["student_id"]): r for r in rows}


def _hidden_lines(assignment: str) -> list[str]:
    """Lines of the hidden tests that students never see (not also in the release notebook)."""
    lines = []
    for path in (ROOT / "source" / assignment).glob("*.ipynb"):
        visible = (ROOT / "release" / assignment / path.name).read_text()
        for cell in nbformat.read(path, as_version=4).cells:
            for region in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S):
                lines += [line.strip() for line in region.splitlines()
                          if len(line.strip()) > 12 and json.dumps(line.strip())[1:-1] not in visible]
    return lines


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_is_what_nbgrader_generates(course, assignment):
    root, _ = course
    generated = sorted(p.relative_to(root / "release") for p in (root / "release" / assignment).rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT / "release") for p in (ROOT / "release" / assignment).rglob("*") if p.is_file())
    assert generated == committed, "release/ is stale: run `make release` and commit it"
    for path in generated:
        assert (root / "release" / path).read_bytes() == (ROOT / "release" / path).read_bytes(), (
            f"release/{path} is stale: run `make release` and commit it")


@pytest.mark.parametrize("assignment, spec", SAMPLES, ids=[f"{a}-{s.student}" for a, s in SAMPLES])
def test_sample_submission_gets_exactly_its_expected_score(course, assignment, spec):
    root, grades = course
    row = grades[(assignment, spec.student)]
    assert row["timestamp"].startswith(pipeline.SAMPLE_TIMESTAMP[:19]), "the submission's timestamp.txt was not read"
    log = (root / "logs" / assignment / f"{spec.student}.log").read_text(errors="replace")
    assert float(row["score"]) == spec.expected_score, (
        f"{spec.student} scored {row['score']}; problems: {batch.problems_in_log(log)}")


def test_no_grading_log_passes_its_limit(course):
    """01's floods_log writes 64 MiB to the grader's log; every log keeps at most batch.MAX_LOG_BYTES of what
    nbgrader and the kernel wrote, and says what it dropped."""
    root, _ = course
    sizes = {path.name: path.stat().st_size for path in (root / "logs").rglob("*.log")}
    assert sizes and max(sizes.values()) <= batch.MAX_LOG_BYTES + 200, sizes
    flooded = (root / "logs" / "01_images" / "floods_log.log").read_text(errors="replace")
    assert "bytes of this log were dropped here, past its 16 MiB" in flooded


# The capstone's tests measure the submitted model file, which an untouched release
# lacks: they fail on that, not on a stub.
TESTS_CALL_NO_STUB = {"08_cifar_challenge"}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_fails_every_test_because_of_the_stubs(course, assignment):
    # A stub inside a function raises when the test calls it; a whole-cell stub
    # (e.g. the train/validation split) leaves its names undefined, which the
    # test reports as a NameError or with its own message.
    root, _ = course
    for path in (root / "autograded" / "empty" / assignment).glob("*.ipynb"):
        cells = nbformat.read(path, as_version=4).cells
        errors = {
            c.metadata.nbgrader.grade_id: [o.get("ename") for o in c.outputs if o.output_type == "error"]
            for c in cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
        }
        assert errors and all(len(e) == 1 for e in errors.values()), f"every test must fail: {errors}"
        if assignment not in TESTS_CALL_NO_STUB:
            assert ["NotImplementedError"] in errors.values()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_shows_results_but_no_hidden_test(course, assignment):
    root, _ = course
    hidden = _hidden_lines(assignment)
    assert hidden
    autograded = "".join(p.read_text() for p in (root / "autograded").glob(f"*/{assignment}/*.ipynb"))
    assert any(line in autograded for line in hidden), "the check below would prove nothing"
    pages = sorted((root / "feedback").glob(f"*/{assignment}/*.html"))
    assert {p.parts[-3] for p in pages} == {s.student for a, s in SAMPLES if a == assignment}
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        assert "HIDDEN TESTS" not in text
        leaked = [line for line in hidden if line in text]
        assert leaked == [], f"{page} shows hidden tests"
    partly_wrong = html.unescape(re.sub(r"<[^>]+>", "", (root / "feedback" / "partly_wrong" / assignment).glob("*.html").__next__().read_text()))
    why = "of 5 tiers" if assignment == "08_cifar_challenge" else "AssertionError"  # the capstone gives partial credit
    assert why in partly_wrong, "a test that did not give every point must still tell the student why"


def test_feedback_shows_no_output_of_a_cell_run_after_hidden_tests(course):
    """01's logs_hidden_inputs keeps the arguments the hidden tests pass to scale_to_unit and prints them
    later: the instructor's autograded notebook has them, the student's feedback does not."""
    root, _ = course
    (notebook,) = (root / "autograded" / "logs_hidden_inputs" / "01_images").glob("*.ipynb")
    printed = "".join(o.get("text", "") for c in nbformat.read(notebook, as_version=4).cells for o in c.get("outputs", []))
    assert "LOGGED: [[[[0, 0, 0" in printed and "[240, 241, 242, 243" in printed, "the check below would prove nothing"
    (page,) = (root / "feedback" / "logs_hidden_inputs" / "01_images").glob("*.html")
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
    assert "LOGGED:" not in text and "[240, 241, 242, 243" not in text
    assert "not shown in the feedback" in text
    for student, marker in (("updates_earlier_display", "LEAKED: "), ("names_exception_after_inputs", "LEAKED_BY_CLASS"),
                            ("raises_hidden_inputs", "LEAKED-BY-ERROR")):
        (page,) = (root / "feedback" / student / "01_images").glob("*.html")
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        assert marker not in text and "[240, 241, 242, 243" not in text, student
    assert "scale_to_unit() raised ValueError" in text, "the check above would prove nothing"
    # returns_hidden_inputs hands them back to channel_means' visible test, whose message quotes what it got.
    (notebook,) = (root / "autograded" / "returns_hidden_inputs" / "01_images").glob("*.ipynb")
    assert "1002.5" in json.dumps([c.get("outputs", []) for c in nbformat.read(notebook, as_version=4).cells]), (
        "the check below would prove nothing")
    (page,) = (root / "feedback" / "returns_hidden_inputs" / "01_images").glob("*.html")
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
    assert "1002.5" not in text and "message not shown in the feedback" in text


@pytest.mark.parametrize("assignment, student, marker", [
    ("01_images", "sets_execution_count", "777114151"), ("01_images", "prints_through_means", "[112.8 120.2 111.8]"),
    ("02_mnist_mlp", "prints_through_accuracy", "89359839930500")])
def test_hidden_inputs_a_submission_shows_through_the_kernel_or_a_visible_print_are_not_in_its_feedback(
        course, assignment, student, marker):
    """The red team's routes (2026-12-04): the kernel's execution counter, and a visible check's print of a value
    the notebook computed from what it kept. The instructor's autograded notebook has them; the feedback does not."""
    root, _ = course
    (notebook,) = (root / "autograded" / student / assignment).glob("*.ipynb")
    assert marker in notebook.read_text(), "the check below would prove nothing"
    (page,) = (root / "feedback" / student / assignment).glob("*.html")
    assert marker not in html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.mark.parametrize("assignment", ["01_images", "02_mnist_mlp"])
def test_once_the_judge_is_killed_no_later_test_cell_is_judged(course, assignment):
    """restarts_the_judge kills the judge with a layer that allocates 5 GB there: a fresh judge had forgotten that
    hidden tests had run (01: a print of hidden values reached the feedback) and which networks build_mlp built
    (02: a foreign file scored). Its score is in its sample file; here, why."""
    root, _ = course
    (notebook,) = (root / "autograded" / "restarts_the_judge" / assignment).glob("*.ipynb")
    text = notebook.read_text()
    assert "Not judged: the grader's judge stopped in an earlier test cell" in text
    assert "110.3 111.3 112.3" not in text and "Graded the model file you submitted" not in text


def test_a_structured_dtype_carries_no_hidden_input_into_an_error_message(course):
    """01's leaks_through_dtype returns an array whose field name holds the hidden inputs: NumPy's error quoted it."""
    root, _ = course
    (notebook,) = (root / "autograded" / "leaks_through_dtype" / "01_images").glob("*.ipynb")
    text = notebook.read_text()
    assert "MARKER-DTYPE" not in text and "channel_means() returned a value the grader cannot read as data" in text


def test_no_page_runs_a_script_a_submission_wrote(course):
    """01's injects_html displays a <script>, event handlers, javascript: links, JavaScript and SVG: in the
    autograded notebooks (formgrader's view) and the feedback pages they are cleaned text or gone."""
    root, _ = course
    shown = set()
    for path in (root / "autograded").glob("*/*/*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                shown |= set(output.get("data", {}))
    assert shown <= {"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg", "application/json", "text/latex"}
    (page,) = (root / "feedback" / "injects_html" / "01_images").glob("*.html")
    text = page.read_text()
    assert "<b>bold stays</b>" in text, "the check below would prove nothing"
    assert re.findall(r"<[^>]*course_xss[^>]*>", text) == [], "a tag that runs the submission's code"
    assert re.findall(r"<script[^>]*>[^<]*course_xss", text) == [], "a script of the submission's"
    (notebook,) = (root / "autograded" / "injects_html" / "01_images").glob("*.ipynb")
    outputs = json.dumps([cell.get("outputs", []) for cell in nbformat.read(notebook, as_version=4).cells])
    assert "bold stays" in outputs and re.findall(r"<[^>]*course_xss[^>]*>", outputs) == []
    assert "course_xss('javascript')" not in outputs and "course_xss('svg')" not in outputs


# The hidden tests that measure a trained model (README, "Grading the model the student trained").
ACCURACY_CELLS = {
    "02_mnist_mlp": ["mlp_test_accuracy"], "03_mnist_cnn": ["cnn_test_accuracy"], "04_fashion_cnn": ["fashion_test_accuracy"],
    "05_cifar_cnn": ["cifar_tutorial_accuracy"], "05b_cifar_wide": ["cifar_wide_accuracy"],
    "06_normalization_optimizers": ["norm_test_accuracy"], "07_batchnorm_functional": ["bn_test_accuracy"],
}
MODEL_FILES = {assignment: [f"{assignment}.keras"] for assignment in ACCURACY_CELLS}  # what each of those measures


def _cell_text(root: Path, assignment: str, student: str, grade_id: str) -> str:
    """What a graded cell of a student's autograded notebook printed, and its error, if any."""
    (path,) = (root / "autograded" / student / assignment).glob("*.ipynb")
    (cell,) = [c for c in nbformat.read(path, as_version=4).cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return "".join(o.get("text", "") if o.output_type == "stream" else o.get("evalue", "") for o in cell.outputs)


@pytest.mark.parametrize("assignment", list(ACCURACY_CELLS))
def test_accuracy_is_graded_on_the_submitted_model_file_and_on_nothing_else(course, assignment):
    """A file submitted is what is graded; without one, nothing is: the model the kernel holds could have come
    from anywhere (a weaker file under another name, weights pasted in, the grading budget's own training)."""
    root, _ = course
    graded = {"correct": 0, "partly_wrong": 0}
    for spec in submissions.load_specs(ROOT / pipeline.SAMPLES_DIR / f"{assignment}.yml"):
        if spec.student not in graded:
            continue
        for grade_id, file in zip(ACCURACY_CELLS[assignment], MODEL_FILES[assignment]):
            text = _cell_text(root, assignment, spec.student, grade_id)
            if file in spec.files:
                assert "Graded the model file you submitted" in text, (spec.student, grade_id)
            else:
                assert f"no model file {file} that Keras can load was submitted" in text, (spec.student, grade_id)
                assert "Graded" not in text, (spec.student, grade_id)
        graded[spec.student] += 1
    assert graded == {"correct": 1, "partly_wrong": 1}


CAPSTONE = "08_cifar_challenge"


def _cell_errors(root: Path, student: str, grade_id: str) -> str:
    (path,) = (root / "autograded" / student / CAPSTONE).glob("*.ipynb")
    (cell,) = [c for c in nbformat.read(path, as_version=4).cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return " ".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")


def test_capstone_without_a_loadable_model_file_says_why_and_loses_only_the_model_tests(course):
    root, grades = course
    assert "ModelFileError: No trained model file 08_cifar_challenge.keras" in _cell_errors(root, "missing_model", "challenge_train_or_load")
    assert "ModelFileError: 08_cifar_challenge.keras is not a model file Keras can load" in _cell_errors(root, "corrupt_model", "challenge_train_or_load")
    assert "AssertionError: No 08_cifar_challenge.keras beside this notebook" in _cell_errors(root, "missing_model", "challenge_model_file")
    assert "is not a model file Keras can load" in _cell_errors(root, "corrupt_model", "challenge_model_file")
    for student in ("missing_model", "corrupt_model"):
        assert float(grades[(CAPSTONE, student)]["score"]) == 0
    # The analysis is still there for the instructor to grade by hand.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for student in ("correct", "missing_model", "corrupt_model"):
            assert gradebook.find_submission(CAPSTONE, student).needs_manual_grade, student
        assert not gradebook.find_submission(CAPSTONE, "empty").needs_manual_grade


BY_HAND = {"04_fashion_cnn": "fashion_dropout_reading", "05b_cifar_wide": "cifar_parameters_reading",
           "06_normalization_optimizers": "norm_sweep_reading", "07_batchnorm_functional": "bn_effect_reading",
           CAPSTONE: "challenge_analysis"}


def test_answers_graded_by_hand_wait_for_the_instructor_with_the_students_words(course):
    from nbgrader.api import Gradebook

    root, grades = course
    written = {a for a in ASSIGNMENTS for c in nbformat.read(ROOT / "source" / a / f"{a}.ipynb", as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"].get("solution")}
    assert written == set(BY_HAND)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for assignment, grade_id in BY_HAND.items():
            correct = gradebook.find_submission(assignment, "correct")
            assert correct.needs_manual_grade, assignment
            answer = gradebook.find_grade(grade_id, assignment, assignment, "correct")
            assert answer.auto_score is None and answer.manual_score is None and answer.max_score > 0, assignment
            assert not gradebook.find_submission(assignment, "empty").needs_manual_grade, assignment  # YOUR ANSWER HERE: 0
            # Its score is the automatic points alone until the instructor grades the answer.
            assert float(grades[(assignment, "correct")]["score"]) == correct.score
            # The answer the instructor reads is the student's own (the samples submit the source's text).
            (path,) = (root / "autograded" / "correct" / assignment).glob("*.ipynb")
            (cell,) = [c for c in nbformat.read(path, as_version=4).cells
                       if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
            assert cell.source.startswith("*For graders: what a full answer contains"), assignment


def test_capstone_leaderboard_ranks_the_measured_models(course):
    root, _ = course
    ranked, unmeasured = leaderboard.entries(root, CAPSTONE)
    assert [(e.student, e.accuracy, e.params) for e in ranked] == [  # tests/submissions/08_cifar_challenge.yml
        ("correct", 0.8462, 308_842), ("recorded_on_cpu", 0.8462, 308_842), ("over_time_on_gpu", 0.6892, 308_842),
        ("partly_wrong", 0.6892, 308_842)]
    assert unmeasured == ["corrupt_model", "empty", "missing_model"]
    boards = leaderboard.boards(ranked)
    assert {board: [e.student for e in entries] for board, entries in boards.items()} == {
        "CPU": ["recorded_on_cpu"], "GPU": ["over_time_on_gpu"], "not recorded": ["correct", "partly_wrong"]}
    [cpu], [gpu] = boards["CPU"], boards["GPU"]
    assert (cpu.minutes, cpu.epochs, cpu.split, cpu.outside_the_rules()) == (19.1, 20, "course", [])
    assert gpu.outside_the_rules() == ["25 min on a GPU (limit 10)", "trained on other images than the training split"]


MARKER = "written by reads_instructor_files".upper().encode()  # what that sample appends to every file it can


def test_a_submission_cannot_read_or_change_the_instructors_or_other_students_files(course):
    root, _ = course
    (notebook,) = (root / "autograded" / "reads_instructor_files" / "01_images").glob("*.ipynb")
    outputs = "".join(o.get("text", "") for c in nbformat.read(notebook, as_version=4).cells for o in c.get("outputs", []))
    assert "read: []" in outputs and "wrote: []" in outputs, "the sandbox let a submission reach files"
    changed = [p for p in root.rglob("*") if p.is_file() and MARKER in p.read_bytes()]
    assert changed == []
    for path in (ROOT / "source").rglob("*.ipynb"):
        assert (root / "source" / path.relative_to(ROOT / "source")).read_bytes() == path.read_bytes()


def test_notebooks_a_submission_writes_beside_its_own_stay_behind(course):
    # plants_notebooks writes two notebooks into its kernel's folder: they would come back into autograded/, and
    # nbgrader would then fail 01's feedback (test_feedback_shows_results_but_no_hidden_test: every student has one).
    root, _ = course
    assert sorted(p.name for p in (root / "autograded" / "plants_notebooks" / "01_images").iterdir()) == ["01_images.ipynb"]


def _validate(root: Path, notebook: Path) -> str:
    result = pipeline.nbgrader(root, "validate", str(notebook), capture=True)
    return result.stdout + result.stderr


def test_validate_output_tells_pass_from_fail(course):
    # `nbgrader validate` exits 0 even when tests fail (nbgrader issue 1908): read its words.
    # Checked on the first assignment only: validate re-runs whole notebooks.
    root, _ = course
    assignment = ASSIGNMENTS[0]
    for student, verdict in (("correct", "Success! Your notebook passes all the tests."), ("empty", "VALIDATION FAILED")):
        for notebook in (root / "submitted" / student / assignment).glob("*.ipynb"):
            assert verdict in _validate(root, notebook)


def _row(assignment: str, student: str, score: str, submitted: bool = True) -> dict[str, str]:
    """A grades.csv row as nbgrader exports it; no timestamp means no submission."""
    timestamp = "2026-01-01 12:00:00" if submitted else ""
    return {"assignment": assignment, "student_id": student, "timestamp": timestamp, "score": score, "max_score": "10.0"}


def test_the_grade_table_has_a_row_per_student_and_a_column_per_assignment():
    rows = [_row("02_b", "ann", "6.0"), _row("01_a", "ann", "0.0", submitted=False),
            _row("01_a", "bob", "9.5"), _row("02_b", "bob", "10.0"), _row("03_capstone", "bob", "3.0")]
    assert pipeline.format_grades(rows).splitlines() == [
        "student    01    02    03    total",
        "ann         -     6     -     6/30",
        "bob       9.5    10     3  22.5/30",
        "",
        "   01  01_a (out of 10)",
        "   02  02_b (out of 10)",
        "   03  03_capstone (out of 10)",
        "-: no submission (0 in the total)",
    ]


def test_assignments_without_distinct_numbers_are_headed_by_their_names():
    rows = [_row("intro", "ann", "6.0"), _row("intro_2", "ann", "1.0")]
    assert pipeline.format_grades(rows).splitlines() == [
        "student intro intro_2  total",
        "ann         6       1   7/20",
        "",
        "-: no submission (0 in the total)",
    ]
