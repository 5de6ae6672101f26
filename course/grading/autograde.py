"""``python -m course.grading.autograde --graded-folder PATH [--notebook NAME]... ASSIGNMENT --student STUDENT [nbgrader
options]``: one submission graded, then its feedback written, by one Python (``course grade``'s worker, in the
submission's workspace).

``nbgrader autograde`` and then ``nbgrader generate_feedback`` for that one student,
run in this process as nbgrader's own tests run its commands (``NbGraderApp`` in
process, reset between the two, started lean: course/grading/nbgrader_app.py): the second start of nbgrader
(about 3 s of imports) is saved, and the feedback is written on the machine that graded, in
the parallel workers or on a Dask worker, not one assignment after another at
the end of the run. :func:`course.grading.batch.merge` copies the feedback page into the
course's ``feedback/`` with the autograded notebook.

Both commands read the workspace's ``nbgrader_config.py``, a copy of the
instructor's: the student's kernel and the judge never see the workspace's root.
They do write in ``--graded-folder`` (``autograded/<student>/<assignment>``, where
the notebook ran), so before the feedback is generated that folder keeps only what
nbgrader wrote there for the feedback to read (:func:`keep_only_graded`): the
``--notebook`` names, ``timestamp.txt`` and model files, as regular files. A
notebook the student's code wrote there would fail the feedback, and a link would be
followed by nbgrader's copy of ``timestamp.txt``.

Exit status: autograde's. A feedback that could not be written leaves the grades as
they are, and says so in the log (:data:`NO_FEEDBACK`, reported as a problem line).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import sys
from pathlib import Path

from course.grading.nbgrader_app import run as run_nbgrader, start_lean

# Written to the log (course/grading/batch.py's problems_in_log reports it) when the feedback could not be generated.
NO_FEEDBACK = "course.grading.autograde: no feedback written:"
MODEL_SUFFIX = ".keras"


def keep_only_graded(folder: Path, notebooks: list[str]) -> list[str]:
    """Remove from ``folder`` everything but the regular files ``NAME.ipynb`` (``NAME`` in ``notebooks``),
    ``timestamp.txt`` and ``*.keras``; links are removed, never followed. The names removed, sorted."""
    wanted = {f"{name}.ipynb" for name in notebooks} | {"timestamp.txt"}
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISREG(mode) and (entry.name in wanted or entry.name.endswith(MODEL_SUFFIX)):
                continue
            if stat.S_ISDIR(mode):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
    return sorted(removed)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.grading.autograde", allow_abbrev=False)
    parser.add_argument("--graded-folder", type=Path, required=True)
    parser.add_argument("--notebook", action="append", default=[])
    options, nbgrader_args = parser.parse_known_args(argv)
    start_lean()
    status = run_nbgrader(["autograde", *nbgrader_args, "--force"])
    if status != 0:
        return status
    folder = options.graded_folder
    if folder.is_symlink() or not folder.is_dir():
        print(f"{NO_FEEDBACK} {folder} is not a folder", file=sys.stderr, flush=True)
        return 0
    keep_only_graded(folder, options.notebook)
    feedback = run_nbgrader(["generate_feedback", *nbgrader_args, "--force"])
    if feedback != 0:
        print(f"{NO_FEEDBACK} generate_feedback exited with {feedback}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
