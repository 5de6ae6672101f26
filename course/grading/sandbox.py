"""A Jupyter kernel that runs a student's code inside a bubblewrap sandbox, for ``course grade``.

nbgrader runs submissions with the instructor's rights, next to ``source/``
(solutions, hidden tests) and ``gradebook.db``. ``course grade`` (course/grading/batch.py)
therefore points nbgrader's ``Execute`` at the kernel written by
:func:`write_kernelspec`, whose command is ``python -m course.grading.sandbox``: it
starts the ordinary IPython kernel under Debian's ``bwrap`` so that the
student's code

- sees the whole file system read-only, with the course folder, every grading
  workspace and the home folder replaced by empty ones (the Python
  environment, the ``course`` package, the datasets and their caches stay
  readable where they lie inside those);
- may write only in its own working folder (a throwaway copy of the
  submission), in a private ``/tmp`` and in an empty home folder;
- cannot read the notebook being graded from disk (it holds the hidden tests);
- keeps no capabilities (CI runs as root) and sees only its own processes;
- has no network: ``course grade`` runs the kernel on Jupyter's IPC transport
  (socket files in a short private folder bound into the sandbox) and gives it a
  network namespace of its own, so it reaches no listener on this machine, the
  local network, the internet or a cloud metadata address (a kernel on TCP, as
  plain ``nbgrader autograde`` starts it, keeps the network);
- sees only an allowlisted environment (:data:`KEPT_ENVIRONMENT`), not the
  instructor's secrets;
- cannot read bubblewrap's arguments (which name the hidden folders): they reach
  bwrap through a pipe (``--args``), not its command line;
- runs under OS limits (:class:`OSLimits`, set by :func:`main` just before it
  execs bwrap, so bwrap, the kernel or the judge and all they start inherit
  them): no file over 1 GiB (a write past it fails in the student's cell with
  ``OSError: [Errno 27] File too large``), no core dumps, and a backstop on the
  number of tasks (see :class:`OSLimits` for why it is only a backstop);
- has System V shared memory and message queues of its own, capped at 64 MiB
  and 16 queues where ``course grade`` runs as root (:func:`private_ipc`);
- runs, with the judge, in cgroups of their own where the machine has writable
  cgroup v1 hierarchies (:func:`join_cgroups`): at most 6,144 tasks, and a memory
  limit above the watcher's (``course grade``: the kernel's and the judge's limits
  plus 1 GiB), a backstop the OS enforces, files in RAM-backed folders included.

The other limits are ``course grade``'s watcher (course/grading/batch.py): memory, with
the sandbox's RAM-backed folders (:func:`tmpfs_folders`) counted in it, and the
number of processes and threads.

The judge (course/grading/judge.py) runs in the same sandbox, without any network: it
speaks to the grader through pipes.

Files cross the sandbox's boundary twice, and both ways go through
:func:`copy_files`: the submission into the grading workspace, and the
autograded notebooks (and model files) from the workspace back into the course
folder. Both folders are the student's to shape (a submission as handed in,
the workspace as the student's code left it), so the copy follows no link,
copies only regular files, and stops at a size and a count.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import course
from course import data
from course.grading import wire

KERNEL_NAME = "course-sandbox"
INSTALL_HINT = "bubblewrap is not installed: `sudo apt-get install bubblewrap` (Debian/Ubuntu), or grade with --no-sandbox"


def available() -> bool:
    """Whether bubblewrap (``bwrap``) is on PATH."""
    return shutil.which("bwrap") is not None


def write_kernelspec(jupyter_path: Path, hide: list[Path], cgroup: str | None = None,
                     memory_bytes: int | None = None) -> None:
    """Write the sandboxed kernel's spec under ``jupyter_path/kernels``; put ``jupyter_path`` on ``JUPYTER_PATH``.

    The launcher runs isolated (``python -I``): it starts in the student's folder, and
    without ``-I`` a ``course/grading/sandbox.py`` submitted there would run instead of this
    module, outside the sandbox. The kernel is ipykernel started by course/grading/kernel.py, which keeps
    its error messages under the grader's message cap. With ``cgroup``, the kernel (and the judge
    beside it) run in cgroups of that name (:func:`join_cgroups`), their memory capped at ``memory_bytes``."""
    options = [f"--hide={Path(p).resolve()}" for p in hide]
    options += [f"--cgroup={cgroup}"] if cgroup else []
    options += [f"--max-memory-bytes={memory_bytes}"] if memory_bytes else []
    argv = [sys.executable, "-I", "-m", "course.grading.sandbox", *options, "--",
            sys.executable, "-m", "course.grading.kernel", "-f", "{connection_file}"]
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


# What the sandboxed kernel and judge may see of the grader's environment: what Python,
# TensorFlow, the course helpers and the budgets read. Anything else (tokens, cloud
# credentials, SSH agents) stays outside.
KEPT_ENVIRONMENT = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED", "PYTHONPATH", "COURSE_DATA_DIR", "COURSE_CACHE_DIR", "COURSE_BUDGET", "COURSE_CELL_TIMEOUT",
    "NBGRADER_EXECUTION", "KERAS_HOME", "KERAS_BACKEND", "KERAS_MAX_EPOCHS", "KERAS_MAX_STEPS_PER_EPOCH",
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
    "CUDA_VISIBLE_DEVICES", "MPLBACKEND",
)

# Folders given by path that the sandbox binds where they really lie (readable_inside).
RESOLVED_PATHS = ("COURSE_DATA_DIR", "COURSE_CACHE_DIR", "KERAS_HOME")


def _connection_transport(connection_file: str | None) -> tuple[str, str | None]:
    """The kernel's transport and, for IPC, the folder of its socket files (from its connection file)."""
    if not connection_file:
        return "none", None
    try:
        info = json.loads(Path(connection_file).read_text())
    except (OSError, ValueError):
        return "tcp", None
    if info.get("transport") == "ipc" and str(info.get("ip", "")).startswith("/"):
        return "ipc", str(Path(info["ip"]).parent)
    return "tcp", None


def helpers_checkout() -> list[Path]:
    """The source checkout the course helpers run from, when they run from one (an editable install, as
    ``make`` makes): its ``source/`` notebooks hold the solutions and hidden tests, ``tests/submissions`` the
    reference model files. The sandbox hides it like the course folder, whatever folder is graded (a course
    folder elsewhere; a Dask worker, which has none); the helpers and Python inside it are bound back
    (:func:`readable_inside`). An installed package (site-packages holds no notebooks) hides nothing more."""
    root = Path(course.__file__).resolve().parents[1]
    if root == Path(root.anchor) or not (root / "pyproject.toml").is_file():
        return []
    return [root]


def _emptied(hide: list[Path]) -> list[str]:
    """The folders the sandbox mounts empty, in order, each once: home, the helpers' checkout, ``hide``."""
    folders: list[str] = []
    for folder in [Path.home(), *helpers_checkout(), *hide]:
        resolved = str(Path(folder).resolve())
        if resolved not in folders:
            folders.append(resolved)
    return folders


def tmpfs_folders(hide: list[Path]) -> list[str]:
    """The sandbox's writable folders that live in RAM (tmpfs): ``/tmp``, ``/dev`` (``--dev``; ``/dev/shm`` lies in
    it), the empty home folder and the hidden folders. ``course grade`` counts what is written there in the
    kernel's memory (course/grading/batch.py): from outside, under ``/proc/<pid>/root``."""
    return ["/tmp", "/dev", *_emptied(hide)]


def bwrap_command(kernel: list[str], workdir: Path, hide: list[Path], environ: dict[str, str] | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``kernel`` in ``workdir`` with ``hide`` made empty.

    A kernel on IPC, and a command without a connection file (the judge), get no network."""
    workdir = workdir.resolve()
    environ = os.environ if environ is None else environ
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
               "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--cap-drop", "ALL"]
    connection_file = kernel[kernel.index("-f") + 1] if "-f" in kernel else None
    transport, sockets = _connection_transport(connection_file)
    if transport != "tcp":
        command.append("--unshare-net")
    command.append("--clearenv")
    for name in KEPT_ENVIRONMENT:
        if name in environ:
            value = environ[name]
            if name in RESOLVED_PATHS and value:  # a path through a link under a hidden folder would lead nowhere
                value = str(Path(value).expanduser().resolve())
            command += ["--setenv", name, value]
    command += ["--setenv", "HOME", str(Path.home())]
    for folder in _emptied(hide):
        command += ["--tmpfs", folder]
    for path in readable_inside():
        command += ["--ro-bind", str(path), str(path)]
    if sockets:  # the kernel creates its IPC socket files there
        command += ["--bind", sockets, sockets]
    if connection_file:
        command += ["--ro-bind", connection_file, connection_file]
    command += ["--bind", str(workdir), str(workdir)]
    # The notebook being graded, on disk beside the kernel, holds the hidden tests.
    for notebook in sorted(workdir.glob("*.ipynb")):
        command += ["--ro-bind", "/dev/null", str(notebook)]
    return [*command, "--chdir", str(workdir), "--", *kernel]


@dataclass(frozen=True)
class OSLimits:
    """The resource limits (``setrlimit``) the sandbox's processes run under; :func:`main` sets them.

    Each can be changed on the launcher's command line (``--max-file-bytes=N``,
    ``--task-headroom=N``), which the tests do to hit them quickly.
    """

    # RLIMIT_FSIZE: the largest file the student's code (or the judge) may write. A write past it
    # fails with OSError EFBIG "File too large" in the student's cell (CPython ignores SIGXFSZ);
    # the kernel lives on. The values a test reads cross to the judge as files of at most
    # course.grading.wire.MAX_FILE_BYTES (1 GiB), so the limit is that; model files are a few MiB.
    max_file_bytes: int = wire.MAX_FILE_BYTES
    # RLIMIT_CORE: a crashing kernel writes no core dump (its working folder is on disk).
    max_core_bytes: int = 0
    # RLIMIT_NPROC, a backstop only: the kernel counts it over every task (threads too) of the real
    # uid on the whole machine, not per sandbox, and it does not apply to root at all (uid 0 is exempt
    # in copy_process(), with or without capabilities: measured, 200 forks under a limit of 50 inside
    # bwrap --cap-drop ALL). For another uid it is set to the tasks that uid has when the sandbox
    # starts plus this headroom: far above what the watcher lets one kernel hold (course/grading/batch.py kills
    # a kernel past 256 processes or 4096 threads within 0.2 s), so that it only matters if the watcher
    # is too slow for a fork bomb, and then it keeps the bomb from taking every pid of the machine
    # (another student's kernel could briefly fail to start a thread, not every process on the machine).
    task_headroom: int = 16384
    # System V shared memory and message queues hold RAM outside every process (a segment written, then
    # detached, is in no process's resident memory), so the watcher could not count them. The sandbox
    # gets an IPC namespace of its own whose limits (kernel.shmall, shmmax, shmmni, msgmni) are set
    # before anything runs in it (:func:`private_ipc`), and which ends with the sandbox. Nothing the
    # course uses needs them (multiprocessing's shared memory lives in /dev/shm, counted as tmpfs).
    max_sysv_shm_bytes: int = 64 * 2**20
    max_sysv_segments: int = 16
    max_sysv_queues: int = 16  # of at most 16 KiB each (kernel.msgmnb)
    # pids.max of the sandbox's pids cgroup (:func:`join_cgroups`), where the machine has one: tasks,
    # threads included, of the kernel and the judge together. Far above what the watcher lets a kernel
    # hold (256 processes, 4096 threads: course/grading/batch.py), so that only a fork bomb the watcher is too
    # slow for meets it; unlike RLIMIT_NPROC it holds for root, and per sandbox.
    max_tasks: int = 6144


OS_LIMITS = OSLimits()

# cgroup v1's pids and memory controllers, where the grading machine mounts them writable (these
# machines do; cgroup v2 hosts delegate differently, and there the watcher and RLIMIT_NPROC remain).
CGROUP_ROOT = Path("/sys/fs/cgroup")
TASK_CGROUPS = "course-grade"


def _own_cgroup(controller: str) -> Path:
    """This process's cgroup folder for a v1 ``controller`` (``/sys/fs/cgroup/<controller>/<its path>``)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                return CGROUP_ROOT / controller / path.lstrip("/")
    except (OSError, ValueError):
        pass
    return CGROUP_ROOT / controller


def cgroup_folder(controller: str, name: str) -> Path:
    """Where :func:`join_cgroups` puts the sandbox ``name`` for ``controller``: under this process's own cgroup."""
    return _own_cgroup(controller) / TASK_CGROUPS / name


def join_cgroups(name: str, limits: OSLimits, memory_bytes: int | None) -> list[str]:
    """Move this process into cgroups ``course-grade/name`` of the pids controller (``pids.max``: at most
    ``limits.max_tasks`` tasks) and, with ``memory_bytes``, of the memory controller (``memory.limit_in_bytes``,
    which counts what the sandbox writes to its in-memory folders too); return what could not be set (not
    root, or no writable hierarchy). Whatever this process execs stays in them: a fork past the cap fails
    (``BlockingIOError``), and past the memory limit the OS kills the largest process in the sandbox."""
    wanted = [("pids", "pids.max", limits.max_tasks)]
    if memory_bytes:
        wanted.append(("memory", "memory.limit_in_bytes", memory_bytes))
    missing = []
    for controller, setting, value in wanted:
        folder = cgroup_folder(controller, name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / setting).write_text(str(value))
            (folder / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            missing.append(controller)
    return missing


def oom_kills(name: str) -> int:
    """How many processes the OS killed at the memory limit of :func:`join_cgroups`'s cgroup ``name``."""
    try:
        control = (cgroup_folder("memory", name) / "memory.oom_control").read_text()
    except OSError:
        return 0
    counts = dict(line.split() for line in control.splitlines() if len(line.split()) == 2)
    return int(counts.get("oom_kill", 0))


def remove_cgroups(name: str, seconds: float = 5) -> None:
    """Remove the cgroups of :func:`join_cgroups` once their last task has gone (waiting up to ``seconds``)."""
    import time

    deadline = time.monotonic() + seconds
    for controller in ("pids", "memory"):
        folder = cgroup_folder(controller, name)
        while folder.exists():
            try:
                folder.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)


def sweep_cgroups(older_than_seconds: float = 600) -> list[str]:
    """Remove the leftover cgroups of sandboxes that ended long ago; return their names.

    :func:`remove_cgroups` gives up after a few seconds when a killed sandbox's last task is slow
    to go, which leaves an empty folder under ``course-grade/`` for good. This removes every such
    folder unchanged for ``older_than_seconds`` (one a grading run is setting up now is younger);
    a folder that still holds a task refuses ``rmdir`` and stays. Called after each submission."""
    import time

    removed = []
    for controller in ("pids", "memory"):
        parent = cgroup_folder(controller, "x").parent
        try:
            folders = [folder for folder in parent.iterdir() if folder.is_dir() and not folder.is_symlink()]
        except OSError:
            continue
        for folder in folders:
            try:
                if time.time() - folder.stat().st_mtime < older_than_seconds:
                    continue
                folder.rmdir()
            except OSError:
                continue
            removed.append(f"{controller}/{folder.name}")
    return removed


CLONE_NEWIPC = 0x08000000
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def private_ipc(limits: OSLimits = OS_LIMITS) -> bool:
    """Move this process into a new IPC namespace capped at ``limits``' System V figures; whether it could.

    That needs root (CAP_SYS_ADMIN): elsewhere bwrap's own ``--unshare-ipc`` still gives
    the sandbox a namespace of its own, freed with it, but uncapped (:func:`main` says so
    on standard error, which goes to the grading log)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWIPC) != 0:
        return False
    settings = {"shmmax": limits.max_sysv_shm_bytes, "shmall": limits.max_sysv_shm_bytes // PAGE_BYTES,
                "shmmni": limits.max_sysv_segments, "msgmni": limits.max_sysv_queues}
    for name, value in settings.items():
        with open(f"/proc/sys/kernel/{name}", "w") as setting:
            setting.write(str(value))
    return True


def tasks_of(uid: int) -> int:
    """How many tasks (threads included) processes of real uid ``uid`` have now, as RLIMIT_NPROC counts them."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError, IndexError):
            pass
    return count


def set_os_limits(limits: OSLimits = OS_LIMITS) -> None:
    """Lower this process's rlimits to ``limits`` (never raise one); whatever it execs inherits them."""
    import resource

    def lower(which: int, value: int) -> None:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    lower(resource.RLIMIT_FSIZE, limits.max_file_bytes)
    lower(resource.RLIMIT_CORE, limits.max_core_bytes)
    lower(resource.RLIMIT_NPROC, tasks_of(os.getuid()) + limits.task_headroom)


USAGE = ("usage: python -m course.grading.sandbox [--hide=DIR ...] [--cgroup=NAME] [--max-memory-bytes=N] [--max-file-bytes=N] "
         "[--task-headroom=N] [--max-tasks=N] -- KERNEL COMMAND")


def main(argv: list[str] | None = None) -> None:
    """``python -m course.grading.sandbox [--hide=DIR ...] -- KERNEL COMMAND``: replace this process with the sandbox."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit(USAGE)
    split = argv.index("--")
    hide, limits, cgroup, memory_bytes = [], {}, None, None
    for option in argv[:split]:
        name, _, value = option.partition("=")
        if name == "--hide":
            hide.append(Path(value))
        elif name == "--cgroup" and value.replace("-", "").replace("_", "").isalnum():
            cgroup = value
        elif name == "--max-memory-bytes" and value.isdigit():
            memory_bytes = int(value)
        elif name in ("--max-file-bytes", "--task-headroom", "--max-tasks") and value.isdigit():
            limits[name[2:].replace("-", "_")] = int(value)
        else:
            raise SystemExit(USAGE)
    if not available():
        raise SystemExit(INSTALL_HINT)
    command = bwrap_command(argv[split + 1:], Path.cwd(), hide)
    os_limits = OSLimits(**limits)
    set_os_limits(os_limits)
    missing = join_cgroups(cgroup, os_limits, memory_bytes) if cgroup else []
    if missing:
        print(f"course.grading.sandbox: no writable {' or '.join(missing)} cgroup here (cgroup v1 under {CGROUP_ROOT}, as "
              "root): that limit is the watcher's alone", file=sys.stderr)
    if private_ipc(os_limits):  # bwrap's sandbox stays in it
        command.remove("--unshare-ipc")
    else:
        print("course.grading.sandbox: System V shared memory and message queues are not capped here (that needs root); "
              "the sandbox still has them to itself", file=sys.stderr)
    # Through a pipe, not the command line: inside, /proc/1/cmdline is bwrap's, and its
    # arguments name the course folder and the workspaces it hides.
    split = command.index("--")
    read, write = os.pipe()
    os.write(write, b"\0".join(a.encode() for a in command[1:split]) + b"\0")
    os.close(write)
    os.set_inheritable(read, True)
    os.execvp(command[0], [command[0], "--args", str(read), *command[split:]])


if __name__ == "__main__":
    main()


MIB = 2**20


@dataclass(frozen=True)
class Limits:
    """How much :func:`copy_files` copies out of one folder the student shaped."""

    max_file_bytes: int = 256 * MIB  # the capstone's model file is a few MiB
    max_files: int = 200
    max_total_bytes: int = 1024 * MIB
    max_entries: int = 10_000  # entries looked at in one folder; a million empty files is no submission
    max_depth: int = 8


LIMITS = Limits()
_NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO must not block open()
_CHUNK = MIB


def kind(mode: int) -> str:
    """What a file that is not a regular one is, in words: ``a symlink``, ``a FIFO``..."""
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def open_folder(base: Path, relative: str) -> int:
    """A descriptor of ``base/relative``, each part of ``relative`` opened without following a link.

    ``base`` is the grader's own folder; the parts below it may be the
    student's. A part that cannot be opened, a link among them, raises
    ``OSError`` whose ``filename`` is the path up to that part and whose
    ``strerror`` says what it is (``a symlink``).
    """
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    opened: list[str] = []
    try:
        for part in Path(relative).parts:
            try:
                inner = os.open(part, _NOFOLLOW | os.O_DIRECTORY, dir_fd=fd)
            except OSError as error:
                raise OSError(error.errno, _why(error, fd, part), "/".join([*opened, part])) from error
            os.close(fd)
            fd = inner
            opened.append(part)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _why(error: OSError, fd: int, name: str) -> str:
    """Why ``name`` under ``fd`` could not be opened, in the words of a problem line: ``a symlink``, or the error."""
    try:
        mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
    except OSError:
        return error.strerror or str(error)
    return (error.strerror or str(error)) if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else kind(mode)


class Budget:
    """What one :func:`copy_files` call has copied so far, against its limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits, self.files, self.bytes = limits, 0, 0

    def refuse(self, size: int) -> str | None:
        """Why a file of ``size`` bytes may not be copied, or None (and then it counts)."""
        limits = self.limits
        if size > limits.max_file_bytes:
            return f"larger than {limits.max_file_bytes / MIB:g} MiB"
        if self.files >= limits.max_files:
            return f"more than {limits.max_files} files"
        if self.bytes + size > limits.max_total_bytes:
            return f"more than {limits.max_total_bytes / MIB:g} MiB in all"
        self.files += 1
        self.bytes += size
        return None


def copy_files(base: Path, relative: str, destination: Path, patterns: tuple[str, ...] | None = None,
               recurse: bool = False, limits: Limits = LIMITS) -> list[str]:
    """Copy the regular files of ``base/relative`` into ``destination``; return what was skipped and why.

    Nothing is followed: a link (the folder itself, a part of ``relative``, or
    an entry) is never opened through, so no file of the grader's can be
    brought in by naming it. FIFOs, sockets and devices are skipped; each file
    is opened without following links and checked to be a regular file on the
    open descriptor (no race with a rename), its size is checked before a byte
    is copied (a sparse file is not expanded past the limit) and the copy reads
    no more than that size. ``patterns`` (``fnmatch``, e.g. ``("*.ipynb",)``)
    name the files wanted; None wants every file. Regular files and folders
    not wanted are left silently (scratch files the student's code wrote);
    anything wanted that could not be copied, and every link or special file,
    is one line: ``skipped autograded/alice/01_images/x.ipynb: a symlink``.
    ``recurse`` copies sub-folders (not links to them) too, down to ``limits.max_depth``.
    """
    try:
        fd = open_folder(base, relative)
    except OSError as error:
        return [f"skipped {error.filename or relative}: {error.strerror}"]
    try:
        problems: list[str] = []
        _copy_folder(fd, relative, destination, patterns, recurse, 0, Budget(limits), problems)
        return problems
    finally:
        os.close(fd)


def _copy_folder(fd: int, label: str, destination: Path, patterns: tuple[str, ...] | None, recurse: bool,
                 depth: int, budget: Budget, problems: list[str]) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    names = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if len(names) == budget.limits.max_entries:
                problems.append(f"skipped the rest of {label}: more than {budget.limits.max_entries} entries")
                break
            names.append(entry.name)
    for name in sorted(names):
        where = f"{label}/{name}"
        wanted = patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode) and recurse and depth < budget.limits.max_depth:
                inner = os.open(name, _NOFOLLOW | os.O_DIRECTORY, dir_fd=fd)
                try:
                    _copy_folder(inner, where, destination / name, patterns, recurse, depth + 1, budget, problems)
                finally:
                    os.close(inner)
            elif stat.S_ISDIR(mode):
                if wanted:
                    problems.append(f"skipped {where}: a folder" + (" nested too deep" if recurse else ""))
            elif not stat.S_ISREG(mode):
                problems.append(f"skipped {where}: {kind(mode)}")
            elif wanted:
                why = _copy_file(fd, name, destination / name, budget)
                if why:
                    problems.append(f"skipped {where}: {why}")
        except OSError as error:
            problems.append(f"skipped {where}: {_why(error, fd, name)}")


def _copy_file(fd: int, name: str, target: Path, budget: Budget) -> str | None:
    """Copy one regular file, opened under ``fd`` without following a link; None, or why it was not copied."""
    source = os.open(name, _NOFOLLOW, dir_fd=fd)
    try:
        status = os.fstat(source)
        if not stat.S_ISREG(status.st_mode):
            return kind(status.st_mode)
        refused = budget.refuse(status.st_size)
        if refused:
            return refused
        with open(target, "xb") as out:
            left = status.st_size
            while left > 0:
                chunk = os.read(source, min(_CHUNK, left))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
        return None
    finally:
        os.close(source)
