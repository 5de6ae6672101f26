"""course.grading.progress: the last run's timings, longest-first order and the ETA of course grade."""

import json

import pytest

from course.grading import progress


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_timings_round_trip_as_medians_and_per_submission_and_keep_the_others(tmp_path):
    assert progress.load(tmp_path) == progress.Timings()
    earlier = progress.Timings({"08": 40.0, "01": 99.0}, {("08", "ann"): 40.0, ("01", "ann"): 99.0})
    progress.save(tmp_path, [("06", "ann", 300.04), ("06", "bob", 100.0), ("06", "cid", 120.0), ("01", "ann", 20.0)],
                  earlier=earlier)
    assert json.loads((tmp_path / "logs" / "grading-times.json").read_text()) == {
        "assignments": {"01": 20.0, "06": 120.0, "08": 40.0},
        "submissions": {"01": {"ann": 20.0}, "06": {"ann": 300.0, "bob": 100.0, "cid": 120.0}, "08": {"ann": 40.0}}}
    assert progress.load(tmp_path) == progress.Timings(
        {"01": 20.0, "06": 120.0, "08": 40.0},
        {("01", "ann"): 20.0, ("06", "ann"): 300.0, ("06", "bob"): 100.0, ("06", "cid"): 120.0, ("08", "ann"): 40.0})


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"01": 20.0}', '{"assignments": {"01": "soon"}, "submissions": {}}',
                                     '{"assignments": {"01": 20.0}, "submissions": {"01": {"ann": -1}}}'])
def test_unreadable_timings_are_no_timings(tmp_path, content):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "grading-times.json").write_text(content)
    assert progress.load(tmp_path) == progress.Timings()


def test_longest_first_puts_untimed_assignments_first_and_keeps_ties_in_order():
    pairs = [("01", "a"), ("06", "a"), ("01", "b"), ("09", "a"), ("06", "b")]
    assert progress.longest_first(pairs, {"01": 20.0, "06": 300.0}) == [
        ("09", "a"), ("06", "a"), ("06", "b"), ("01", "a"), ("01", "b")]


def test_a_submission_that_took_long_last_time_goes_before_its_assignment():
    pairs = [("01", "a"), ("06", "a"), ("01", "loops"), ("06", "b")]
    known = {("01", "loops"): 340.0, ("06", "b"): 90.0}
    assert progress.longest_first(pairs, {"01": 20.0, "06": 300.0}, known) == [
        ("01", "loops"), ("06", "a"), ("06", "b"), ("01", "a")]


def test_the_eta_comes_from_the_last_run_before_anything_finishes():
    clock = Clock()
    estimate = progress.Estimate([("06", "a"), ("06", "b"), ("01", "a"), ("01", "b")], jobs=2,
                                 expected={"06": 300.0, "01": 20.0}, clock=clock)
    assert estimate.left() == 320.0  # 640 s of work on 2 workers
    clock.now += 100  # both workers busy for 100 s
    assert estimate.left() == 220.0
    estimate.done("06", 250.0)  # this run's time replaces the last run's for 06
    assert estimate.left() == 145.0  # 250 + 20 + 20 s left on 2 workers
    clock.now += 50  # 2 x 150 s of work done, 250 s of it finished: 50 s into what is running
    assert estimate.left() == 120.0


def test_without_timings_the_eta_waits_for_the_first_submission_then_uses_its_time():
    clock = Clock()
    estimate = progress.Estimate([("01", "a"), ("02", "a"), ("02", "b")], jobs=1, expected={}, clock=clock)
    assert estimate.left() is None
    clock.now += 30
    estimate.done("01", 30.0)
    assert estimate.left() == 60.0  # two more, each as long as the one seen so far


def test_eta_text():
    assert [progress.format_seconds(s) for s in (None, 0, 59.4, 61, 3599, 3600, 7380)] == [
        "ETA ?", "ETA 0 s", "ETA 59 s", "ETA 1 min 01 s", "ETA 59 min 59 s", "ETA 1 h 00 min", "ETA 2 h 03 min"]


def test_a_course_without_timings_expects_the_measured_ones_and_their_median_for_others(tmp_path):
    expected = progress.with_defaults(progress.load(tmp_path).assignments)
    assert expected == progress.MEASURED
    estimate = progress.Estimate([("01_images", "a"), ("my_own", "a")], jobs=1, expected=expected, clock=lambda: 0.0)
    assert estimate.left() == progress.MEASURED["01_images"] + 30.1  # the median of the nine
    assert progress.with_defaults({"01_images": 7.0})["01_images"] == 7.0
