"""``course demo``, README's main command: the instructor's whole pipeline on the sample submissions.

Every assignment in ``source/`` is released with ``nbgrader generate_assignment``;
the sample submissions of all of them (``tests/submissions/<assignment>.yml``,
built by course/submissions.py) are graded together by ``course grade`` (course/batch.py:
sandboxed, bounded, in parallel, with feedback); ``nbgrader export`` writes
``grades.csv``, returned as a table. An assignment with a leaderboard (the capstone) prints it.
"""

from __future__ import annotations

from pathlib import Path

from course import batch, leaderboard, pipeline


def run(root: Path, jobs: int = 2) -> str:
    """Release every assignment, grade its sample submissions, export and return the grade table."""
    assignments = pipeline.assignments(root)
    for assignment in assignments:
        pipeline.release(root, assignment)
    sampled = [a for a in assignments if pipeline.submit_samples(root, a, root / pipeline.SAMPLES_DIR)]
    if sampled:
        print(batch.summary(batch.grade(root, sampled, jobs=jobs)), flush=True)
    for assignment in sampled:
        ranked, unmeasured = leaderboard.entries(root, assignment)
        if ranked:
            print(leaderboard.format_table(ranked, unmeasured), flush=True)
    return pipeline.format_grades(pipeline.export(root))
