"""Helpers for the CNN image-classification course.

What students import: ``data`` (datasets, online or offline), ``budget`` (training
budgets), ``seeding``, ``plotting`` (image grids, curves), ``modelfile`` (the trained
model a submission includes) and ``training`` (a long run that survives a disconnect);
the rest is the instructor's grading (``batch``, ``judge``, ``sandbox``, ``cli``, ...).
"""

__version__ = "0.1.0"
