"""course.demo: `make demo` says plainly when a sample submission did not get its expected score."""

from __future__ import annotations

from course import demo


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
