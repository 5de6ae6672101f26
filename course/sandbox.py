"""A Jupyter kernel that runs a student's code inside a bubblewrap sandbox, for ``course grade``.

nbgrader runs submissions with the instructor's rights, next to ``source/``
(solutions, hidden tests) and ``gradebook.db``. ``course grade`` (course/batch.py)
therefore points nbgrader's ``Execute`` at the kernel written by
:func:`write_kernelspec`, whose command is ``python -m course.sandbox``: it
starts the ordinary IPython kernel under Debian's ``bwrap`` so that the
student's code

- sees the whole file system read-only, with the course folder, every grading
  workspace and the home folder replaced by empty ones (the Python
  environment, the ``course`` package, the datasets and their caches stay
  readable where they lie inside those);
- may write only in its own working folder (a throwaway copy of the
  submission), in a private ``/tmp`` and in an empty home folder;
- cannot read the notebook being graded from disk (it holds the hidden tests);
- keeps no capabilities (CI runs as root) and sees only its own processes.

The network is shared: the kernel talks to nbgrader over local TCP ports.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import course
from course import data

KERNEL_NAME = "course-sandbox"
INSTALL_HINT = "bubblewrap is not installed: `sudo apt-get install bubblewrap` (Debian/Ubuntu), or grade with --no-sandbox"


def available() -> bool:
    """Whether bubblewrap (``bwrap``) is on PATH."""
    return shutil.which("bwrap") is not None


def write_kernelspec(jupyter_path: Path, hide: list[Path]) -> None:
    """Write the sandboxed kernel's spec under ``jupyter_path/kernels``; put ``jupyter_path`` on ``JUPYTER_PATH``."""
    argv = [sys.executable, "-m", "course.sandbox", *(f"--hide={Path(p).resolve()}" for p in hide), "--",
            sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    folder = jupyter_path / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    # A signal would reach bwrap, not the kernel: interrupt through Jupyter's control channel.
    spec = {"argv": argv, "display_name": "Python 3 (course sandbox)", "language": "python", "interrupt_mode": "message"}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))


def readable_inside() -> list[Path]:
    """What the kernel needs to read wherever it lies: Python, the course helpers, the datasets and caches."""
    paths = [Path(sys.prefix), Path(sys.base_prefix), Path(course.__file__).parent, data.cache_dir(), Path.home() / ".keras"]
    mirror = os.environ.get(data.DATA_DIR_VARIABLE)
    if mirror:
        paths.append(Path(mirror))
    return [p.resolve() for p in paths if p.exists()]


def bwrap_command(kernel: list[str], workdir: Path, hide: list[Path]) -> list[str]:
    """The ``bwrap`` command line that runs ``kernel`` in ``workdir`` with ``hide`` made empty."""
    workdir = workdir.resolve()
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
               "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--cap-drop", "ALL"]
    for folder in [Path.home(), *hide]:
        command += ["--tmpfs", str(Path(folder).resolve())]
    for path in readable_inside():
        command += ["--ro-bind", str(path), str(path)]
    connection_file = kernel[kernel.index("-f") + 1] if "-f" in kernel else None
    if connection_file:
        command += ["--ro-bind", connection_file, connection_file]
    command += ["--bind", str(workdir), str(workdir)]
    # The notebook being graded, on disk beside the kernel, holds the hidden tests.
    for notebook in sorted(workdir.glob("*.ipynb")):
        command += ["--ro-bind", "/dev/null", str(notebook)]
    # ipykernel exits when its parent looks like init, and bwrap is pid 1 here: --die-with-parent does that job.
    command += ["--unsetenv", "JPY_PARENT_PID"]
    return [*command, "--chdir", str(workdir), "--", *kernel]


def main(argv: list[str] | None = None) -> None:
    """``python -m course.sandbox [--hide=DIR ...] -- KERNEL COMMAND``: replace this process with the sandbox."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python -m course.sandbox [--hide=DIR ...] -- KERNEL COMMAND")
    split = argv.index("--")
    hide = [Path(a.removeprefix("--hide=")) for a in argv[:split]]
    if not available():
        raise SystemExit(INSTALL_HINT)
    command = bwrap_command(argv[split + 1:], Path.cwd(), hide)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
