"""nbgrader configuration: this folder is the course root (source/, release/, submitted/, autograded/)."""

import os

from nbgrader.preprocessors import GetGrades
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

from course.feedback import HideHiddenTests

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "cnn-course"

# The exchange (release/fetch/submit/collect, the students' Assignment List) lives in
# the course folder: the system-wide default /usr/local/share/nbgrader/exchange
# needs an administrator. On a shared JupyterHub, point this at a shared folder.
# nbgrader requires it to exist and never creates it.
c.Exchange.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exchange")
os.makedirs(c.Exchange.root, exist_ok=True)

# Training cells run under the grading budget (course.budget), a few minutes at
# most; nbgrader's default of 30 s per cell would fail them.
c.Execute.timeout = 600

# Students see their visible tests and results, never hidden-test source.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

# nbgrader scores a test cell 0 when anything reaches stderr, a harmless warning
# too (nbgrader/utils.py, determine_grade). Drop Python warnings
# ("file:line: SomeWarning: ...") and TensorFlow's log lines ("I0000 12:00:00 ...")
# before grading, so a correct solution that triggers a warning keeps its points.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(?m)\w+Warning: |^[IWE]\d{4} \d\d:\d\d:\d\d"
