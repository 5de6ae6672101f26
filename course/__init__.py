"""Helpers for the CNN image-classification course.

What students import: ``data`` (datasets, online or offline), ``budget`` (training
budgets), ``seeding``, ``plotting`` (image grids, curves), ``modelfile`` (the trained
model a submission includes) and ``training`` (a long run that survives a disconnect);
the instructor's grading is ``course.grading`` (``batch``, ``judge``, ``sandbox``, ``cli``, ...),
which imports these, never the reverse; the student edition ships without it.
"""

__version__ = "0.1.0"
