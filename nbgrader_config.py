"""nbgrader configuration: this folder is the course root (source/, release/, submitted/, autograded/)."""

from nbgrader.preprocessors import GetGrades
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

from course.feedback import HideHiddenTests

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "cnn-course"

# Training cells run under the grading budget (course.budget), a few minutes at
# most; nbgrader's default of 30 s per cell would fail them.
c.Execute.timeout = 600

# Students see their visible tests and results, never hidden-test source.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
