"""The students' and the instructor's JupyterLab, driven in a real browser.

Starts JupyterLab (with nbgrader's extensions) on localhost in a copy of the
course, once with the students' settings (jupyter/student, as `make lab`) and once
with the instructor's (jupyter/instructor, `make lab-instructor`), then drives
Debian's Chromium with Playwright: a student opens a release notebook, runs its
first cells and presses nbgrader's Validate, and finds no Formgrader and no news
prompt; an instructor opens the formgrader and sees the assignments. Screenshots go to
``.artifacts/`` (git-ignored). Skipped, with the reason, only where Chromium
or Playwright is missing; under CI they must be there (.ci/run installs them).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from course.grading import pipeline

ROOT = Path(__file__).parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".artifacts"
# Chromium on a machine without a display or network: no sandbox (root), no GPU,
# no background connections that would be refused.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# JupyterLab's status bar, as JavaScript: it shows the kernel's state
# ("Python 3 (ipykernel) | Idle") and the selected cell ("Cell 3/43").
STATUS_BAR_TEXT = "(document.querySelector('#jp-main-statusbar')?.innerText || '')"


def _requirements_or_skip():
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + ": .ci/run must install it")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A released copy of the course."""
    _requirements_or_skip()
    root = tmp_path_factory.mktemp("lab-course")
    shutil.copytree(ROOT / "source", root / "source")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    for assignment in pipeline.assignments(root):
        pipeline.release(root, assignment, capture=True)
    return root


@pytest.fixture(scope="module")
def lab(course):
    """JupyterLab as students get it, in the released course: (base URL, token)."""
    yield from _running_lab(course, "student")


@pytest.fixture(scope="module")
def instructor_lab(course):
    """JupyterLab as the instructor gets it, in the same course: (base URL, token)."""
    yield from _running_lab(course, "instructor")


def _running_lab(root: Path, who: str):
    port, token = _free_port(), secrets.token_hex(16)
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", JUPYTER_CONFIG_DIR=str(root / f".jupyter-{who}"),
               JUPYTER_CONFIG_PATH=str(ROOT / "jupyter" / who), JUPYTERLAB_SETTINGS_DIR=str(root / f".lab-settings-{who}"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / f".lab-workspaces-{who}"))
    log = open(root / f"lab-{who}.log", "w")
    server = subprocess.Popen(
        [str(bin_dir / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + (root / f"lab-{who}.log").read_text()[-3000:])
            time.sleep(0.5)
    yield base, token
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    return path


def test_student_runs_first_cells_and_validates(lab, browser):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{base}/lab/tree/release/01_images/01_images.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    # A code cell run while the status bar still says "Initializing" (no session
    # yet) is silently skipped, and its output never comes: wait for the kernel.
    # (The toolbar's execution indicator reads "idle" before there is a kernel.)
    page.wait_for_function(f"() => /[|] Idle/.test({STATUS_BAR_TEXT})", timeout=180_000)
    page.locator(".jp-Notebook .jp-Cell").first.click()
    # Key presses before the notebook has focus are lost: wait for the selected cell.
    page.wait_for_selector(".jp-Notebook .jp-Cell.jp-mod-active", timeout=30_000)
    try:
        # Title, setup prose, the setup cell, data prose, the data cell. Each press
        # must move the selection on before the next one is sent.
        for cell_number in range(2, 7):
            page.keyboard.press("Shift+Enter")
            page.wait_for_function(f"() => {STATUS_BAR_TEXT}.includes('Cell {cell_number}/')", timeout=30_000)
        outputs = page.locator(".jp-OutputArea-output")
        outputs.filter(has_text="course helpers").first.wait_for(timeout=240_000)
        outputs.filter(has_text="mnist: loaded from").first.wait_for(timeout=240_000)
    finally:  # on failure too: the screenshot shows what the student would have seen
        _screenshot(page, "student-notebook.png")

    page.locator(".validate-button").first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=300_000)
    page.wait_for_function(
        "() => /VALIDATION FAILED|failed|Success!/.test(document.querySelector('.jp-Dialog')?.innerText || '')",
        timeout=300_000,
    )
    _screenshot(page, "student-validate.png")
    text = dialog.inner_text()
    # The release notebook's exercises are unsolved: validation must say so.
    assert "Success!" not in text
    assert "NotImplementedError" in text or "failed" in text.lower(), text[:500]
    page.keyboard.press("Escape")

    # jupyter/student: nbgrader's menu keeps the Assignment List, not the instructor's
    # tools, and JupyterLab never asked about news (it asks at start-up by default).
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
    menu = page.locator(".lm-Menu").last
    menu.wait_for(timeout=30_000)
    _screenshot(page, "student-nbgrader-menu.png")
    items = menu.inner_text()
    assert "Assignment List" in items, items
    assert "Formgrader" not in items and "Create Assignment" not in items and "Course List" not in items, items
    page.keyboard.press("Escape")
    assert page.get_by_text("Jupyter news").count() == 0
    page.close()


def test_student_lab_does_not_serve_the_formgrader(lab):
    base, token = lab
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/formgrader?token={token}", timeout=30)
    assert refused.value.code == 404


def test_instructor_sees_every_assignment_in_the_formgrader(instructor_lab, browser):
    base, token = instructor_lab
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{base}/formgrader?token={token}")
    for assignment in pipeline.assignments(ROOT):
        page.get_by_text(assignment, exact=True).first.wait_for(timeout=60_000)
    _screenshot(page, "instructor-formgrader.png")
    assert "exchange directory" not in page.inner_text("body"), "nbgrader's exchange is not usable"
    page.close()
