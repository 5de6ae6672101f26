"""``python -m course.grading.nbgrader_app ARGS``: ``nbgrader ARGS``, in a Python that starts a second sooner.

The grader starts nbgrader in a new Python for every release, every submission
(course/grading/autograde.py) and every export: a class of 85 sample submissions
starts it about 100 times. Each start imports nbformat, whose ``jsonschema``
builds ``rfc3987-syntax``'s grammar with Lark at import: 0.9 of the 2.4 s
``import nbgrader.apps.nbgraderapp`` takes here (``python -X importtime``), for
the ``iri`` and ``iri-reference`` string formats, which neither nbformat's
schema nor nbgrader's metadata uses. :func:`start_lean` marks that module absent
in the process, so that ``jsonschema`` defines every format but those two (it
imports the module under ``contextlib.suppress(ImportError)``); nothing else
changes. Everything else is nbgrader's own command line, run in this process
as nbgrader's tests run it.

Used by course/grading/pipeline.py (``nbgrader_command``) and course/grading/autograde.py.
"""

from __future__ import annotations

import sys

# Imported by jsonschema when present, for two string formats no notebook schema uses.
UNUSED_AT_IMPORT = ("rfc3987_syntax",)


def start_lean() -> None:
    """Before nbformat is first imported: make the imports in :data:`UNUSED_AT_IMPORT` fail, as if the packages
    were not installed. A module this process has already imported is left as it is."""
    for name in UNUSED_AT_IMPORT:
        sys.modules.setdefault(name, None)  # None in sys.modules: `import name` raises ImportError


def run(args: list[str]) -> int:
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
    start_lean()
    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
