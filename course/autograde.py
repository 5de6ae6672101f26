"""``python -m course.autograde ASSIGNMENT --student STUDENT [nbgrader options]``: one submission graded, then
its feedback written, by one Python (``course grade``'s worker, in the submission's workspace).

``nbgrader autograde`` and then ``nbgrader generate_feedback`` for that one student,
run in this process as nbgrader's own tests run its commands (``NbGraderApp`` in
process, reset between the two): the second start of nbgrader (about 3 s of
imports) is saved, and the feedback is written on the machine that graded, in
the parallel workers or on a Dask worker, not one assignment after another at
the end of the run. :func:`course.batch.merge` copies the feedback page into the
course's ``feedback/`` with the autograded notebook.

Both commands read the workspace's ``nbgrader_config.py``, a copy of the
instructor's: the student's kernel and the judge never see the workspace's root,
only the folder of the notebook they run in (course/sandbox.py).

Exit status: autograde's. A feedback that could not be written leaves the grades as
they are, and says so in the log (:data:`NO_FEEDBACK`, reported as a problem line).
"""

from __future__ import annotations

import sys

# Written to the log (course/batch.py's problems_in_log reports it) when the feedback could not be generated.
NO_FEEDBACK = "course.autograde: no feedback written: generate_feedback exited with"


def run_nbgrader(args: list[str]) -> int:
    """``nbgrader ARGS`` in this process; its exit status."""
    from jupyter_core.application import NoStart
    from nbgrader.apps.nbgraderapp import NbGraderApp

    app = NbGraderApp.instance()
    try:
        app.initialize(args)
        app.start()
    except NoStart:
        return 0
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        app.reset()
    return 0


def main(argv: list[str]) -> int:
    status = run_nbgrader(["autograde", *argv, "--force"])
    if status != 0:
        return status
    feedback = run_nbgrader(["generate_feedback", *argv, "--force"])
    if feedback != 0:
        print(f"{NO_FEEDBACK} {feedback}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
