"""``course publish OUT --url URL --tag TAG``: the student edition, a folder to push as its own public repository.

This repository holds ``source/``: every solution and hidden test. Students get
a second repository, made from this one by :func:`publish`, holding only

- ``notebooks/<assignment>/``: the release notebooks (``course release`` first),
  with their Open-in-Colab badge and their setup cell's install command pointing
  at the edition, pinned to ``TAG`` (:func:`course.grading.colab.badge`);
- ``course/``: the helpers students import (:data:`STUDENT_MODULES`: data,
  budget, seeding, plotting, model files, resumable training), no grading code;
- ``pyproject.toml`` (the same package name and version, the ``student`` extra
  only), ``LICENSE``, JupyterLab's student settings (``jupyter/``) and a
  student README (how to open each notebook in Colab, on a JupyterHub through
  nbgitpuller, or on one's own machine).

Everything in it is built from an allowlist; :func:`leaks` lists anything in a
folder that holds a solution's or a hidden test's line. Push the folder, tag it
``TAG``, and the badges work.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
import urllib.parse
from pathlib import Path

import nbformat

from course.grading import colab

# What students import (tests/test_publish.py checks that these import nothing else of the course).
STUDENT_MODULES = ("__init__", "data", "budget", "seeding", "plotting", "modelfile", "training")
NOTEBOOKS = "notebooks"
# Files of release/<assignment>/ that go to students besides the notebooks: none other exist today.
RELEASED_PATTERNS = ("*.ipynb",)
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


class PublishError(Exception):
    """The edition cannot be made: the reason, and nothing written."""


def _github_path(url: str) -> str:
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(\.git)?/?", url)
    if not match:
        raise PublishError(f"--url must be a GitHub repository's address, https://github.com/OWNER/NAME, not {url!r}")
    return match.group(1)


def _pyproject(root: Path, url: str) -> str:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    quoted = ",\n".join(f'    "{dependency}"' for dependency in project["dependencies"])
    student = ",\n".join(f"    '{dependency}'" for dependency in project["optional-dependencies"]["student"])
    return f'''[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{project["name"]}"
version = "{project["version"]}"
description = "The student edition of the course's helpers: datasets (online or offline mirror), training budgets, plots, model files."
readme = "README.md"
requires-python = "{project["requires-python"]}"
license = "{project["license"]}"
license-files = ["LICENSE"]
dependencies = [
{quoted},
]

[project.urls]
Repository = "{url}"

[project.optional-dependencies]
# Your own machine: TensorFlow, Keras and JupyterLab (Colab has them already).
student = [
{student},
]

[tool.setuptools]
packages = ["course"]
'''


def _readme(title: str, url: str, tag: str, assignments: list[str], hub: str | None) -> str:
    github = _github_path(url)
    lines = [f"# {title}: the notebooks", "",
             "Graded Jupyter notebooks on image classification with convolutional networks in Keras 3. Open one,",
             "work through it top to bottom, run each exercise's test cell, then hand in the notebook (and the",
             "model file it saves, where it says so) as your instructor tells you.", "",
             "## The notebooks", "", "| notebook | open |", "| --- | --- |"]
    for assignment in assignments:
        row = f"| `{assignment}` | {colab.badge(url, assignment, tag, folder=NOTEBOOKS)}"
        if hub:
            row += f" [JupyterHub]({nbgitpuller_link(hub, url, tag, assignment)})"
        lines.append(row + " |")
    lines += ["", "## Where to run them", "",
              "- **Colab**: the badge. The first code cell installs this course's helpers (and nothing else).",
              "  *File → Save a copy in Drive* keeps your work."]
    if hub:
        lines += ["- **Your course's JupyterHub**: the JupyterHub link. nbgitpuller copies the notebooks into your",
                  "  home folder and never overwrites what you changed."]
    lines += ["- **Your own machine** (Python 3.11 to 3.13):", "", "  ```bash",
              f"  git clone {url} && cd {github.split('/')[1]}",
              "  python3 -m venv .venv && .venv/bin/pip install -e '.[student]'",
              "  JUPYTER_CONFIG_PATH=jupyter/student .venv/bin/jupyter lab",
              "  ```", "",
              "  On Linux x86_64 this installs `tensorflow-cpu`; on macOS (Apple Silicon), Linux aarch64 and",
              "  Windows, `tensorflow`.", "",
              "## Offline", "",
              "The datasets download through Keras the first time. Without internet, set `COURSE_DATA_DIR` to a",
              "folder holding the course's offline copies (your instructor has them).", "",
              f"Version `{tag}`. Licence: MIT (`LICENSE`)."]
    return "\n".join(lines) + "\n"


def nbgitpuller_link(hub: str, url: str, tag: str, assignment: str) -> str:
    """A link that makes a JupyterHub at ``hub`` pull the edition at ``tag`` and open ``assignment``'s notebook."""
    repository = _github_path(url).split("/")[1]
    query = urllib.parse.urlencode({
        "repo": url, "branch": tag,
        "urlpath": f"lab/tree/{repository}/{NOTEBOOKS}/{assignment}/{assignment}.ipynb"})
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def _notebook(path: Path, url: str, tag: str, assignment: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.source = colab.BADGE_PATTERN.sub(colab.badge(url, assignment, tag, folder=NOTEBOOKS), cell.source)
        cell.source = colab.PIP_SPEC_PATTERN.sub(colab.pip_spec_expression(f"{url}@{tag}"), cell.source)
    return notebook


def publish(root: Path, out: Path, url: str, tag: str, hub: str | None = None) -> list[Path]:
    """Write the student edition of the course at ``root`` into ``out`` (which must not exist, or be empty) and
    return the files written. Nothing is written when :class:`PublishError` is raised."""
    _github_path(url)
    if not re.fullmatch(r"[\w.-]+", tag):
        raise PublishError(f"--tag must be a git tag name such as v1.0, not {tag!r}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PublishError(f"{out} exists and is not an empty folder: publish into a new one")
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise PublishError(f"{out} is inside the course folder: publish outside it, into the edition's own repository")
    assignments = sorted(p.name for p in (root / "release").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
    if not assignments:
        raise PublishError(f"{root / 'release'} holds no notebooks: run `course release` first")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)

    for assignment in assignments:
        for path in sorted(p for pattern in RELEASED_PATTERNS for p in (root / "release" / assignment).glob(pattern)):
            notebook = _notebook(path, url, tag, assignment)
            write(f"{NOTEBOOKS}/{assignment}/{path.name}", nbformat.writes(notebook) + "\n")
    for module in STUDENT_MODULES:
        write(f"course/{module}.py", (root / "course" / f"{module}.py").read_text())
    for path in sorted((root / "jupyter").rglob("*")):
        relative = path.relative_to(root / "jupyter")
        if path.is_file() and relative.parts[0] in ("student", "settings"):
            write(f"jupyter/{relative}", path.read_text())
    write("LICENSE", (root / "LICENSE").read_text())
    write("pyproject.toml", _pyproject(root, url))
    title = tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"]
    write("README.md", _readme(title, url, tag, assignments, hub))
    write(".gitignore", ".venv/\n__pycache__/\n.ipynb_checkpoints/\n*.keras\n")
    return written


def course_imports(path: Path) -> set[str]:
    """The ``course`` modules a Python file imports (``from course import x``, ``import course.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "course":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("course.")}
    return found


def secret_lines(root: Path) -> set[str]:
    """The lines (stripped, over 12 characters) of the solutions and hidden tests in ``root``'s source notebooks
    that no release notebook also holds (``batch_size = 128`` may be one exercise's answer and another
    notebook's given code)."""
    public = {line.strip() for released in (root / "release").glob("*/*.ipynb")
              for cell in nbformat.read(released, as_version=4).cells for line in cell.source.splitlines()}
    secret: set[str] = set()
    for source in sorted((root / "source").glob("*/*.ipynb")):
        for cell in nbformat.read(source, as_version=4).cells:
            for region in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END (?:SOLUTION|HIDDEN TESTS)",
                                     cell.source, re.S):
                secret |= {line.strip() for line in region.splitlines()
                           if len(line.strip()) > 12 and line.strip() not in public}
    return secret


def leaks(root: Path, edition: Path) -> list[str]:
    """``edition``'s files that hold an nbgrader marker or one of :func:`secret_lines`, each with what it holds."""
    secret = secret_lines(root)
    found = []
    for path in sorted(p for p in edition.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        if path.suffix == ".ipynb":
            text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
        lines = {line.strip() for line in text.splitlines()}
        hits = sorted(marker for marker in MARKERS if marker in text) + sorted(lines & secret)[:3]
        if hits:
            found.append(f"{path.relative_to(edition)}: {hits}")
    return found
