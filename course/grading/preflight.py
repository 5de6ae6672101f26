"""Before ``course grade`` changes any grade: can this machine grade at all?

A fault on the instructor's side must stop the run before it touches a grade;
otherwise every submission scores 0 and overwrites the grades it had. Two
faults were seen: bubblewrap installed but unable to create its namespaces
(Docker, Kubernetes pods, some AppArmor setups; bubblewrap issue 505), and
datasets the sandboxed kernel could not reach (a ``COURSE_DATA_DIR`` through a
symlink under a hidden folder). :func:`check` runs, in this order:

1. bubblewrap creates the namespaces the sandbox uses;
2. the datasets the assignments read load and verify here (this also fills the
   decoded caches, which the sandbox can only read);
3. the same loads succeed inside the sandbox, as the student's kernel runs.

Before them, the course's nbgrader configuration is read (course/grading/layout.py): its
folders and gradebook are the ones graded into, and a setting ``course grade``
cannot follow stops it.

Each failure raises :class:`PreflightError` with the reason and what to do.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from course.grading import layout
from course.grading.layout import Layout

DATASETS = ("mnist", "fashion_mnist", "cifar10")
TIMEOUT_SECONDS = 600


class PreflightError(Exception):
    """This machine cannot grade: nothing has been changed."""


def datasets_used(source: Path, assignments: list[str]) -> list[str]:
    """The datasets the assignments' source notebooks (in the course's ``source`` folder) load with ``course.data``."""
    used: set[str] = set()
    for assignment in assignments:
        for notebook in (source / assignment).glob("*.ipynb"):
            used |= set(re.findall(r"data\.(mnist|fashion_mnist|cifar10)\(", notebook.read_text(errors="replace")))
    return [name for name in DATASETS if name in used]


def _load_command(datasets: list[str]) -> list[str]:
    loads = "; ".join(f"data.{name}()" for name in datasets)
    return [sys.executable, "-I", "-c", f"from course import data; {loads}"]


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return "\n".join(lines[-5:]) or f"exit code {result.returncode}"


def check(root: Path, assignments: list[str], sandboxed: bool, where: Layout | None = None) -> None:
    """Raise :class:`PreflightError` unless the sandbox works here and the assignments' data load inside it.

    ``where`` is the course's layout (course/grading/layout.py); read from ``root`` when not given."""
    try:
        where = where or layout.read(root)
    except layout.LayoutError as error:
        raise PreflightError(f"{error}. Nothing was graded.") from None
    check_machine(datasets_used(where.step("source"), assignments), sandboxed, where.hidden())


def check_machine(datasets: list[str], sandboxed: bool, hidden: list[Path]) -> None:
    """Raise :class:`PreflightError` unless bubblewrap works here (when ``sandboxed``) and ``datasets`` load, here
    and inside a sandbox hiding ``hidden``: the checks of :func:`check`, on any machine that grades (a Dask
    worker of course/grading/cluster.py has no course folder)."""
    from course.grading import sandbox

    if sandboxed:
        probe = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--unshare-net",
                 "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--cap-drop", "ALL", "true"]
        try:
            result = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise PreflightError(f"{sandbox.INSTALL_HINT}. Nothing was graded.") from None
        if result.returncode != 0:
            raise PreflightError(
                f"bubblewrap is installed but cannot create its sandbox here ({_tail(result)}). This happens inside "
                "unprivileged containers (Docker, Kubernetes pods) and where AppArmor restricts user namespaces "
                "(bubblewrap issue 505): grade on a machine or VM where `bwrap --ro-bind / / true` works, or allow user "
                "namespaces. Nothing was graded.")
    if not datasets:
        return
    result = subprocess.run(_load_command(datasets), capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise PreflightError(f"the datasets {', '.join(datasets)} do not load on this machine:\n{_tail(result)}\n"
                             "Nothing was graded.")
    if sandboxed:
        with tempfile.TemporaryDirectory(prefix="course-preflight-") as folder:
            command = [sys.executable, "-I", "-m", "course.grading.sandbox", *(f"--hide={path}" for path in hidden),
                       "--", *_load_command(datasets)]
            result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        if result.returncode != 0:
            hides = ", ".join(map(str, hidden)) + " and the home folder" if hidden else "the home folder"
            raise PreflightError(
                f"the datasets {', '.join(datasets)} load here but not inside the sandbox, where students' code runs:\n"
                f"{_tail(result)}\nThe sandbox hides {hides}: keep COURSE_DATA_DIR and "
                f"COURSE_CACHE_DIR outside them, or on paths readable from elsewhere ({sandbox.__name__}.readable_inside). "
                "Nothing was graded.")
