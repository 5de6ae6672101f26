"""Helpers for the CNN image-classification course.

Modules: ``data`` (datasets, online or offline), ``budget`` (training budgets),
``plotting`` (image grids), and the instructor's plumbing: ``pipeline``,
``submissions``, ``feedback``, ``cli``.
"""

__version__ = "0.1.0"
