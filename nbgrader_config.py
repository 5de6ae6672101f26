"""nbgrader configuration: this folder is the course root (source/, release/, submitted/, autograded/)."""

import os
import sys

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, ClearOutput, GetGrades, IgnorePattern, LimitOutput,
    OverwriteCells, OverwriteKernelspec, SaveAutoGrades,
)

from course.grading.feedback import HideHiddenTests, HideOutputsAfterHiddenTests, SanitizeSubmittedHTML
from course.grading.preprocessors import DeduplicateGradeIds, DropUnknownGradeIds, JudgedExecute

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "cnn-course"

# The exchange (release/fetch/submit/collect, the students' Assignment List) lives in
# the course folder: the system-wide default /usr/local/share/nbgrader/exchange
# needs an administrator. On a shared JupyterHub, point this at a shared folder.
# nbgrader requires it to exist and never creates it.
c.Exchange.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exchange")
os.makedirs(c.Exchange.root, exist_ok=True)

# Training cells run under the grading budget (course.budget): up to about 2
# minutes each on 2 CPU cores shared by two workers, far past nbgrader's default
# of 30 s per cell. A cell
# past the limit is interrupted and fails; the rest of the notebook still runs.
# COURSE_CELL_TIMEOUT overrides it (the tests use 300 s for their looping sample).
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "600"))
# 01 trains nothing: its longest cell took 3.3 s (the setup cell, 2 workers sharing 2 cores; 4.4 s
# on a slower AVX2-only machine, 2026-12-03), so a cell still running after 20 s is looping, and
# holds its grading slot 20 s instead of 600 s.
# The shorter of this and Execute.timeout applies (course/grading/preprocessors.py, CrashTolerantExecute).
c.CrashTolerantExecute.timeout_by_assignment = {"01_images": 20}
# ...and its kernels need little memory (the reference peaks at 313 MiB), so `course grade` holds them to 4 GiB
# instead of its --memory-gib (6; the lower of the two applies, course/grading/layout.py). A cell that allocates
# until the limit must meet it before the 20 s above (tests/submissions/01_images.yml, memory_bomb): touching new
# memory costs CI's machine up to 3 s per GiB, so 6 GiB took 15-18 s there (at a 15 s cell limit the time limit
# won on 2 of 2 CI runs, 2026-12-07); 4 GiB took about 7 s, 2 workers grading (the whole sample 13 s, against 21 s
# for one that loops until the time limit). Not less than 4: printing 400 MB at once (giant_print) takes ipykernel
# about four times that in memory (1.6 GiB at its peak), and is a lost output, not a lost kernel (at 3 GiB it was).
c.CourseGrade.memory_gib_by_assignment = {"01_images": 4}

# Students see their visible tests and results, never hidden-test source, nor the outputs of cells that ran
# after hidden tests had called their functions (they could print those inputs): course/grading/feedback.py.
# SanitizeSubmittedHTML again, for notebooks autograded before it was in the autograde list below.
c.GenerateFeedback.preprocessors = [GetGrades, SanitizeSubmittedHTML, HideOutputsAfterHiddenTests, HideHiddenTests,
                                    CSSHTMLHeaderPreprocessor]

# nbgrader scores a test cell 0 when anything reaches stderr, a harmless warning
# too (nbgrader/utils.py, determine_grade). Drop Python warnings
# ("file:line: SomeWarning: ...") and TensorFlow's log lines ("I0000 12:00:00 ...")
# before grading, so a correct solution that triggers a warning keeps its points.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(?m)\w+Warning: |^[IWE]\d{4} \d\d:\d\d:\d\d"

# Graded test cells run in the judge (course/grading/judge.py), a process of their own where
# no student code runs; the student's kernel sees only their visible part, and
# only the judge's outputs are graded. A submission whose kernel crashes keeps the
# points it earned before the crash (stock nbgrader grades it 0 for everything).
# See course/grading/preprocessors.py. nbgrader 0.9.6's list, with Execute replaced, and the
# submission's HTML cleaned before formgrader or feedback shows it (SanitizeSubmittedHTML,
# course/grading/feedback.py): a <script> in an output or a Markdown answer would otherwise run in
# the instructor's browser.
c.Autograde.autograde_preprocessors = [
    JudgedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SanitizeSubmittedHTML,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]

# A student who deletes a test cell is graded by it anyway: nbgrader puts it back
# from the gradebook (off by default). Duplicated grade_ids (DeduplicateIds) and
# changed cell types or edited tests (OverwriteCells) are nbgrader's defaults.
c.OverwriteCells.add_missing_cells = True
# nbgrader 0.9.6's list, with DeduplicateIds replaced and cells whose grade_id the
# gradebook does not know made plain (nbgrader fails the notebook on them): see
# course/grading/preprocessors.py.
c.Autograde.sanitize_preprocessors = [
    ClearOutput, DeduplicateGradeIds, DropUnknownGradeIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata,
]

# `nbgrader zip_collect` (run by hand; `course grade --zip-collect` has its own
# collection, course/grading/batch.py, which takes student ids only from the LMS's names) reads
# files named <student>_<notebook>, e.g. alice_03_mnist_cnn.ipynb, and the capstone's
# trained model file with the notebook.
c.FileNameCollectorPlugin.named_regexp = r".*/(?P<student_id>[A-Za-z0-9.-]+)_(?P<file_id>\d\d_\w+\.(ipynb|keras))$"
c.FileNameCollectorPlugin.valid_ext = [".ipynb", ".keras"]

# Every assignment that trains a model (02 to 08) grades the trained model file(s) a
# student submits with the notebook. A model file the instructor trained
# beside the source notebook (or the sample one the tests put there) must
# never replace it during autograde (nbgrader copies source files over the
# submission's), nor reach students through release/ (generate_assignment copies
# every file beside the notebook). CourseDirectory.ignore cannot be set for every
# command: autograde would then also skip the student's file.
MODEL_FILES = {
    name: [f"{name}.keras"] for name in ("02_mnist_mlp", "03_mnist_cnn", "04_fashion_cnn", "05_cifar_cnn", "05b_cifar_wide",
                                         "06_normalization_optimizers", "07_batchnorm_functional", "08_cifar_challenge")
}
c.Autograde.exclude_overwriting = MODEL_FILES
if "generate_assignment" in sys.argv:
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.keras"]
