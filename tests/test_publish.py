"""course.grading.publish: the student edition holds the release notebooks and the student helpers, nothing else.

tests/test_colab.py runs a notebook of the edition in a Colab-like kernel, installing the edition's helpers.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
import pytest

from course.grading import cli, pipeline, publish

ROOT = Path(__file__).parents[1]
URL, TAG = "https://github.com/example/cnn-course-notebooks", "v1.0"


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("edition") / "cnn-course-notebooks"
    assert cli.main(["--root", str(ROOT), "publish", str(out), "--url", URL, "--tag", TAG,
                     "--hub", "https://hub.example.edu"]) == 0
    return out


def test_the_edition_holds_exactly_the_allowlisted_files(edition):
    files = sorted(str(p.relative_to(edition)) for p in edition.rglob("*") if p.is_file())
    assignments = pipeline.assignments(ROOT)
    assert files == sorted(
        [".gitignore", "LICENSE", "README.md", "pyproject.toml",
         *(f"course/{module}.py" for module in publish.STUDENT_MODULES),
         *(f"notebooks/{a}/{a}.ipynb" for a in assignments),
         "jupyter/settings/overrides.json", "jupyter/student/jupyter_lab_config.py",
         "jupyter/student/jupyter_server_config.json", "jupyter/student/labconfig/page_config.json"])
    for a in assignments:  # the release notebooks, links aside
        released = nbformat.read(ROOT / "release" / a / f"{a}.ipynb", as_version=4)
        published = nbformat.read(edition / "notebooks" / a / f"{a}.ipynb", as_version=4)
        changed = [i for i, (r, p) in enumerate(zip(released.cells, published.cells)) if r.source != p.source]
        assert len(released.cells) == len(published.cells) and changed == [0, 2], (a, changed)


def test_no_solution_hidden_test_or_grading_code_is_in_it(edition, tmp_path):
    assert publish.leaks(ROOT, edition) == []
    project = tomllib.loads((edition / "pyproject.toml").read_text())["project"]
    assert set(project["optional-dependencies"]) == {"student"}
    assert "nbgrader" not in (edition / "pyproject.toml").read_text()
    for module in publish.STUDENT_MODULES:  # the helpers need no module left out
        assert publish.course_imports(edition / "course" / f"{module}.py") <= set(publish.STUDENT_MODULES)
    for notebook in (edition / "notebooks").rglob("*.ipynb"):  # nor do the notebooks
        code = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
        imported = {name.strip() for line in re.findall(r"^from course import (.+)$", code, re.M) for name in line.split(",")}
        assert imported <= set(publish.STUDENT_MODULES), notebook.name
    # The check itself finds a solution's line and a marker.
    secret = publish.secret_lines(ROOT)
    assert len(secret) > 200 and "return images.mean(axis=(0, 1, 2), dtype=np.float64)" in secret
    (tmp_path / "notes.py").write_text("        return images.mean(axis=(0, 1, 2), dtype=np.float64)\n")
    (tmp_path / "tests.py").write_text("### BEGIN HIDDEN TESTS\n")
    assert [entry.split(":")[0] for entry in publish.leaks(ROOT, tmp_path)] == ["notes.py", "tests.py"]


def test_badges_installs_and_hub_links_point_at_the_edition_pinned_to_its_tag(edition):
    notebook = nbformat.read(edition / "notebooks" / "03_mnist_cnn" / "03_mnist_cnn.ipynb", as_version=4)
    text = "\n".join(c.source for c in notebook.cells[:3])
    assert ("(https://colab.research.google.com/github/example/cnn-course-notebooks/blob/v1.0/notebooks/03_mnist_cnn/"
            "03_mnist_cnn.ipynb)") in text
    assert 'os.environ.get("COURSE_PIP_SPEC", "git+https://github.com/example/cnn-course-notebooks@v1.0")' in text
    assert "OWNER" not in (edition / "README.md").read_text()
    assert publish.nbgitpuller_link("https://hub.example.edu/", URL, TAG, "03_mnist_cnn") == (
        "https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fexample%2F"
        "cnn-course-notebooks&branch=v1.0&urlpath=lab%2Ftree%2Fcnn-course-notebooks%2Fnotebooks%2F03_mnist_cnn%2F"
        "03_mnist_cnn.ipynb")
    assert publish.nbgitpuller_link("https://hub.example.edu", URL, TAG, "03_mnist_cnn") in (
        edition / "README.md").read_text()


def test_an_edition_is_written_only_into_a_new_folder_outside_the_course(tmp_path, edition):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "mine.txt").write_text("keep")
    for out, url, tag, message in [
            (tmp_path / "used", URL, TAG, "exists and is not an empty folder"),
            (ROOT / "edition", URL, TAG, "inside the course folder"),
            (tmp_path / "new", "https://gitlab.com/a/b", TAG, "must be a GitHub repository's address"),
            (tmp_path / "new", URL, "v1 ; rm", "must be a git tag name")]:
        with pytest.raises(publish.PublishError, match=message):
            publish.publish(ROOT, out, url, tag)
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["mine.txt"]
    assert not (ROOT / "edition").exists() and not (tmp_path / "new").exists()


def test_the_package_is_split_by_audience():
    """course/*.py is exactly the student half the edition ships; the instructor's half is course/grading/,
    which the student half never imports (so the edition, without it, imports cleanly)."""
    assert {path.stem for path in (ROOT / "course").glob("*.py")} == set(publish.STUDENT_MODULES)
    for module in publish.STUDENT_MODULES:
        assert publish.course_imports(ROOT / "course" / f"{module}.py") <= set(publish.STUDENT_MODULES), module
    assert {path.stem for path in (ROOT / "course" / "grading").glob("*.py")} >= {"cli", "batch", "judge", "checks"}
