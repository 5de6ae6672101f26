"""course.grading.demo: `make demo` says plainly when a sample submission did not get its expected score."""

from __future__ import annotations

from pathlib import Path

from course.grading import demo, pipeline, progress, submissions

ROOT = Path(__file__).resolve().parents[1]


def test_samples_off_their_expected_score_are_listed(tmp_path):
    samples = tmp_path / "tests" / "submissions"
    samples.mkdir(parents=True)
    (samples / "07_x.yml").write_text("correct:\n  expected_score: 10\nempty:\n  expected_score: 0\n"
                                      "late:\n  expected_score: 4\n")
    (tmp_path / "grades.csv").write_text(
        "assignment,duedate,timestamp,student_id,last_name,first_name,email,raw_score,late_submission_penalty,score,max_score\n"
        "07_x,,2026-01-01 12:00:00,correct,,,,7.0,0.0,7.0,10.0\n"
        "07_x,,2026-01-01 12:00:00,empty,,,,0.0,0.0,0.0,10.0\n"
        "07_x,,,late,,,,0.0,0.0,0.0,10.0\n")
    assert demo.unexpected_scores(tmp_path) == ["07_x correct: expected 10, got 7", "07_x late: expected 4, got no grade"]


def test_a_course_without_timings_starts_from_the_samples_and_one_with_timings_keeps_its_own(tmp_path):
    (tmp_path / "tests" / "submissions").mkdir(parents=True)
    (tmp_path / demo.SAMPLE_TIMINGS).write_text('{"assignments": {"01": 9.0}, "submissions": {"01": {"loops": 300.0}}}')
    demo.seed_timings(tmp_path)
    assert progress.load(tmp_path) == progress.Timings({"01": 9.0}, {("01", "loops"): 300.0})
    (tmp_path / demo.SAMPLE_TIMINGS).write_text('{"assignments": {"01": 1.0}, "submissions": {}}')
    demo.seed_timings(tmp_path)
    assert progress.load(tmp_path).assignments == {"01": 9.0}


def test_the_samples_timings_name_the_samples_and_put_the_slow_ones_first():
    timings = progress.load_file(ROOT / demo.SAMPLE_TIMINGS)
    samples = {(spec_file.stem, spec.student) for spec_file in (ROOT / pipeline.SAMPLES_DIR).glob("*.yml")
               for spec in submissions.load_specs(spec_file)}
    assert set(timings.submissions) <= samples
    assert set(timings.assignments) == {assignment for assignment, _ in samples}
    order = progress.longest_first(sorted(samples), timings.assignments, timings.submissions)
    # The samples that stop at a time limit, or retrain without a model file, start in the first quarter,
    # beside the others, instead of alone at the end.
    first = set(order[:len(order) // 4])
    assert {("01_images", "infinite_loop"), ("01_images", "swallows_interrupt"),
            ("06_normalization_optimizers", "partly_wrong"), ("02_mnist_mlp", "partly_wrong")} <= first
