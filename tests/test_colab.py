"""The Colab path, as closely as an offline machine allows.

A fresh virtual environment holds only what Colab preinstalls (TensorFlow, NumPy,
matplotlib, scikit-learn, Pillow, PyYAML, and IPython's kernel), not the course
helpers. A release notebook, with its solutions filled in, runs top to bottom in
that environment's kernel. Its setup cell must install the helpers (here from a
wheel built from this checkout, named by ``COURSE_PIP_SPEC``, instead of the
network) and nothing else, and report the GPU and the versions.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course.grading import colab, submissions

ROOT = Path(__file__).parents[1]
COLAB_PREINSTALLED = ["tensorflow-cpu==2.21.*", "keras>=3.15,<4", "numpy", "matplotlib", "scikit-learn", "pillow", "pyyaml", "ipykernel"]


def _freeze(python: Path) -> set[str]:
    out = subprocess.run([str(python), "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True, text=True).stdout
    # Lines are `name==version` or `name @ url`.
    return {re.split(r"==| @ ", line)[0].strip().lower() for line in out.splitlines() if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def colab_kernel(tmp_path_factory):
    """A Colab-like kernel without the course helpers, and a wheel of them: (kernel dir, wheel, venv python)."""
    base = tmp_path_factory.mktemp("colab")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # --no-compile: byte-compiling every module of these packages took longer than the whole install without it
    # (71 s against 39 s); the kernels compile only what the two notebooks import, once.
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", *COLAB_PREINSTALLED], check=True)
    wheels = base / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    (wheel,) = wheels.glob("cnn_course-*.whl")
    kernels = base / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python",
    }))
    return base / "jupyter", wheel, python


def test_release_notebook_runs_in_a_colab_like_kernel_and_installs_only_the_helpers(colab_kernel, tmp_path, monkeypatch):
    jupyter_dir, wheel, python = colab_kernel
    before = _freeze(python)
    assert "cnn-course" not in before
    assignment = "01_images"
    notebook = submissions.build(
        ROOT / "release" / assignment / f"{assignment}.ipynb",
        ROOT / "source" / assignment / f"{assignment}.ipynb",
        submissions.SampleSubmission("colab", 0),
    )
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))
    monkeypatch.setenv("COURSE_PIP_SPEC", str(wheel))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_BUDGET", raising=False)
    NotebookClient(notebook, timeout=600, kernel_name="colab", resources={"metadata": {"path": str(tmp_path)}}).execute()

    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    setup = "".join(o.get("text", "") for o in notebook.cells[_setup_index(notebook)].outputs if o.output_type == "stream")
    # 01 imports no TensorFlow: its setup prints NumPy's and Pillow's versions and the helpers' it just installed
    assert "Installing the course helpers" in setup and "Pillow" in setup and "course helpers" in setup, setup
    assert _freeze(python) - before == {"cnn-course"}, "the setup cell may install the helpers and nothing else"


def _setup_index(notebook) -> int:
    (index,) = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and "COURSE_PIP_SPEC" in c.source]
    return index


# --- badges and the install command (course.grading.colab) -----------------------------------

SOURCE_NOTEBOOKS = sorted((ROOT / "source").glob("*/*.ipynb"))


def test_badge_opens_the_release_notebook():
    assert colab.badge("https://github.com/acme/cnn-course", "02_mnist_mlp") == (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/acme/cnn-course/blob/main/release/02_mnist_mlp/02_mnist_mlp.ipynb)"
    )


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.parent.name)
def test_every_notebook_has_its_badge_and_install_command(path):
    repository = colab.repository_url(ROOT)
    cells = nbformat.read(path, as_version=4).cells
    assert colab.badge(repository, path.parent.name) in cells[0].source
    setup = cells[_setup_index(nbformat.read(path, as_version=4))]
    assert colab.pip_spec_expression(repository) in setup.source
    assert setup.metadata["nbgrader"]["locked"]


def test_update_links_follows_the_repository_url(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/new/place"\n')
    folder = tmp_path / "source" / "01_x"
    folder.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# T\n\n" + colab.badge("https://github.com/old/place", "01_x")),
        nbformat.v4.new_code_cell("COURSE_PIP_SPEC = " + colab.pip_spec_expression("https://github.com/old/place")),
    ])
    nbformat.write(notebook, folder / "01_x.ipynb")
    assert colab.update_links(tmp_path) == [folder / "01_x.ipynb"]
    cells = nbformat.read(folder / "01_x.ipynb", as_version=4).cells
    assert "github/new/place/blob/main/release/01_x/01_x.ipynb" in cells[0].source
    assert 'os.environ.get("COURSE_PIP_SPEC", "git+https://github.com/new/place")' in cells[1].source
    assert colab.update_links(tmp_path) == []


def test_a_notebook_of_the_student_edition_runs_in_a_colab_like_kernel_with_the_editions_helpers(
        colab_kernel, tmp_path, monkeypatch):
    """The edition (course/grading/publish.py) is what students get: its 03 notebook, solved, runs top to bottom in the
    Colab-like kernel after installing the edition's helpers, which hold only the student modules."""
    from course.grading import cli, publish

    jupyter_dir, _, python = colab_kernel
    subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "cnn-course"], check=True)
    edition = tmp_path / "edition"
    assert cli.main(["--root", str(ROOT), "publish", str(edition), "--url", "https://github.com/example/notebooks",
                     "--tag", "v1.0"]) == 0
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(edition)],
                   check=True)
    (wheel,) = wheels.glob("cnn_course-*.whl")
    assignment = "03_mnist_cnn"
    notebook = submissions.build(edition / "notebooks" / assignment / f"{assignment}.ipynb",
                                 ROOT / "source" / assignment / f"{assignment}.ipynb", submissions.SampleSubmission("colab", 0))
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))
    monkeypatch.setenv("COURSE_PIP_SPEC", str(wheel))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_BUDGET", "grading")  # a short training run
    work = tmp_path / "work"
    work.mkdir()
    NotebookClient(notebook, timeout=600, kernel_name="colab", resources={"metadata": {"path": str(work)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    modules = subprocess.run([str(python), "-c", "import course, pkgutil; print(*sorted(m.name for m in "
                              "pkgutil.iter_modules(course.__path__)))"], check=True, capture_output=True, text=True,
                             cwd=work)  # not this checkout, whose course/ would come first on the path
    assert modules.stdout.split() == sorted(set(publish.STUDENT_MODULES) - {"__init__"})
