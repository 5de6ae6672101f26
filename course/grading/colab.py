"""Open-in-Colab badges and the setup cell's install command, kept in step with one URL.

Introduced in every notebook's first cells. The repository URL lives in
``pyproject.toml`` (``[project.urls] Repository``); ``course links`` rewrites
the badge and the install command of every source notebook from it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat

BADGE_PATTERN = re.compile(r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\([^)]*\)")
PIP_SPEC_PATTERN = re.compile(r'os\.environ\.get\("COURSE_PIP_SPEC", "[^"]*"\)')


def repository_url(root: Path) -> str:
    """The course repository's URL, from ``pyproject.toml``."""
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Repository"].rstrip("/")


def badge(repository: str, assignment: str, branch: str = "main", folder: str = "release") -> str:
    """Markdown for the badge that opens ``<folder>/<assignment>/<assignment>.ipynb`` of ``branch`` (or a tag)
    in Colab; the student edition (course/grading/publish.py) keeps its notebooks in ``notebooks/``."""
    path = repository.removeprefix("https://github.com/")
    return (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{path}/blob/{branch}/{folder}/{assignment}/{assignment}.ipynb)"
    )


def pip_spec_expression(repository: str) -> str:
    """The setup cell's install target: ``$COURSE_PIP_SPEC`` (tests) or the repository."""
    return f'os.environ.get("COURSE_PIP_SPEC", "git+{repository}")'


def update_links(root: Path) -> list[Path]:
    """Rewrite every source notebook's badge and install command; return the notebooks changed."""
    repository = repository_url(root)
    changed = []
    for path in sorted((root / "source").glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        assignment = path.parent.name
        before = [cell.source for cell in notebook.cells]
        for cell in notebook.cells:
            cell.source = BADGE_PATTERN.sub(badge(repository, assignment), cell.source)
            cell.source = PIP_SPEC_PATTERN.sub(pip_spec_expression(repository), cell.source)
        if [cell.source for cell in notebook.cells] != before:
            nbformat.write(notebook, path)
            changed.append(path)
    return changed
