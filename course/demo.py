"""``course demo``, README's main command: the instructor's whole pipeline on the sample submissions.

Every assignment in ``source/`` is released with ``nbgrader generate_assignment``;
its sample submissions (``tests/submissions/<assignment>.yml``, built by
course/submissions.py) are graded as a class by ``course grade`` (course/batch.py:
sandboxed, bounded, in parallel, with feedback); ``nbgrader export`` writes
``grades.csv``, returned as a table. An assignment with a leaderboard (the capstone) prints it.
"""

from __future__ import annotations

from pathlib import Path

from course import batch, leaderboard, pipeline


def run(root: Path, jobs: int = 2) -> str:
    """Release every assignment, grade its sample submissions, export and return the grade table."""
    for assignment in pipeline.assignments(root):
        pipeline.release(root, assignment)
        if pipeline.submit_samples(root, assignment, root / pipeline.SAMPLES_DIR):
            print(batch.summary(batch.grade(root, assignment, jobs=jobs)), flush=True)
            ranked, unmeasured = leaderboard.entries(root, assignment)
            if ranked:
                print(leaderboard.format_table(ranked, unmeasured), flush=True)
    return pipeline.format_grades(pipeline.export(root))
