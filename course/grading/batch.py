"""Grade a whole class with nbgrader, in parallel: ``course grade ASSIGNMENT... --jobs N``.

nbgrader autogrades one submission after another, in one process writing one
SQLite gradebook (nbgrader issue 174). Here each submission is autograded by
nbgrader itself, in its own throwaway workspace holding a copy of the
gradebook, the configuration and that one submission, so parallel workers
never share a database; the same process then writes that submission's
feedback (course/grading/autograde.py). Each workspace's grades are then merged into
the course's gradebook, one at a time, and the autograded notebook and its
feedback page are copied back.
With ``--scheduler`` the workspaces are on the workers of a Dask cluster instead
(course/grading/cluster.py); the merge stays here.

Each submission is bounded and isolated:

- its kernel runs in a bubblewrap sandbox (course/grading/sandbox.py) that hides the
  course folder, every workspace but its own working folder, and the hidden
  tests in the notebook being graded;
- a cell past ``Execute.timeout`` is interrupted and fails (nbgrader); one
  that swallows the interrupt has its kernel killed (course/grading/preprocessors.py);
- a kernel whose processes together hold more than the memory limit is
  killed: its cells from there on fail, the earlier ones keep their points
  (course/grading/preprocessors.py). Files written in the sandbox's in-memory folders
  (``/tmp``, ``/dev/shm``, the empty home folder) and anonymous in-memory
  files (``memfd_create``) count in that memory;
- a kernel with more than :data:`MAX_PROCESSES` processes, or
  :data:`MAX_THREADS` threads, is killed the same way (a fork bomb ends in
  well under a second: a watcher process at a real-time priority,
  course/grading/forkwatch.py, kills its sandbox's first process, which ends its PID
  namespace);
- the OS limits of course/grading/sandbox.py hold inside the sandbox: a file past
  1 GiB cannot be written (``OSError: File too large`` in the student's cell),
  no core dumps;
- a kernel whose workspace takes more than :data:`DISK_GIB` on disk (deleted
  files it keeps open included), or holds more than :data:`MAX_DISK_ENTRIES`
  files, is killed; each workspace is removed once merged;
- the kernel's outputs are capped where nbgrader keeps them: a message over
  8 MiB is dropped, a cell's outputs past 16 MiB and a notebook's past 64 MiB
  are cut (course/grading/preprocessors.py); nbgrader's own process past
  :data:`GRADER_MEMORY_GIB` is killed as a last resort, and the submission is
  not graded;
- a submission past its wall-clock limit is killed and graded 0.

The reason for any of these is in the submission's line of the report.

A submission is hostile, and nothing one student leaves behind reaches the
instructor: files cross between the course folder and a workspace only through
:func:`course.grading.sandbox.copy_files` (no link followed, regular files only, size
and count capped; back from the workspace only the assignment's own notebooks,
their feedback pages and ``*.keras``),
and :func:`collect_zips` takes a student's id only from the name the LMS gave
the download, never from a name inside the student's own zip. One student's
failure (a file that cannot be copied, a merge that fails) is a line in that
student's report and the batch goes on. Ctrl-C or SIGTERM stops the batch
cleanly: every nbgrader process tree is killed, half-graded submissions are
not merged, and what was graded is listed.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Iterator

import psutil

from course.grading import forkwatch, layout, pipeline, preflight, progress, sandbox
from course.grading.autograde import NO_FEEDBACK

# nbgrader and SQLAlchemy are imported where the gradebook is used: importing
# them takes seconds, and `course --help` should not wait for that.

GIB = 2**30


@dataclass
class Outcome:
    """How one submission's grading went."""

    assignment: str
    student: str
    seconds: float
    score: float | None = None
    max_score: float | None = None
    problems: list[str] = field(default_factory=list)
    graded: bool = True  # False: nbgrader did not finish; every test scores 0
    never_started: bool = False  # the kernel never started: nothing is merged, earlier grades stay

    def line(self) -> str:
        score = f"{self.score:g}/{self.max_score:g}" if self.score is not None else "not graded"
        problems = f"  ({'; '.join(self.problems)})" if self.problems else ""
        return f"{self.assignment:<16} {self.student:<24} {score:>10} {self.seconds:6.0f} s{problems}"


def students(root: Path, assignment: str, where: layout.Layout | None = None) -> list[str]:
    """Students with a submission of ``assignment`` in the course's submitted folder (``root/submitted``
    unless its nbgrader configuration, read into ``where``, says otherwise)."""
    where = where or layout.read(root)
    return sorted(p.parent.name for p in where.step("submitted").glob(f"*/{assignment}") if p.is_dir())


# The judge (course/grading/judge.py) holds the values the tests read from the kernel; it has a
# limit of its own, so that a notebook's own memory and the grader's copies of its
# arrays do not add up against the student (06_normalization_optimizers: kernel 3.6 GB,
# judge 2.5 GB).
JUDGE_MEMORY_GIB = 4.0
# The sandbox's memory cgroup (course/grading/sandbox.py) holds the kernel and the judge: its limit is theirs
# plus this margin, so that the watcher, which says why, kills first.
CGROUP_MEMORY_MARGIN_GIB = 1.0
# A kernel whose processes (not threads) pass this many is killed: its sandbox is counted
# every 0.02 s (course/grading/forkwatch.py), and the sandbox's PID namespace takes everything in it
# down with its first process. Threads are counted apart, every 0.2 s: TensorFlow starts
# dozens, hundreds on a machine with many cores, in one process.
MAX_PROCESSES = 256
MAX_THREADS = 4096
# nbgrader's own process (outside the sandbox) keeps every output the kernel sends until the
# notebook is written. Those are capped (course/grading/preprocessors.py: per message, cell and notebook);
# this is the backstop. Past it the submission is not graded.
GRADER_MEMORY_GIB = 3.0
# A kill's problem line says that files count when they were at least this much of it.
TMPFS_MENTIONED_BYTES = 2**27
# The submission's workspace on disk (the kernel writes only in its working folder there): files
# there and files the kernel deleted but keeps open. No one file passes 1 GiB (the sandbox's
# RLIMIT_FSIZE), but many could fill the grading machine's disk. Model files are a few MiB; the
# arrays a test reads cross to the judge as files of at most 1 GiB, a few at a time.
DISK_GIB = 10.0
MAX_DISK_ENTRIES = 100_000  # files and folders looked at; a million empty files is an attack too
DISK_LOOKS = 10  # the disk is measured every DISK_LOOKS looks (2 s)


def _judge_pids(nbgrader: int) -> set[int]:
    """The judge's processes (its sandbox and everything under it) among nbgrader's descendants.

    Only nbgrader's direct children are asked their command line: reading a process's
    command line waits while that process forks, and a fork bomb's processes do nothing else."""
    pids: set[int] = set()
    for child in forkwatch.children_of(nbgrader):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"course.grading.judge" not in cmdline.read():
                    continue
            pids.add(child)
            pids.update(grandchild.pid for grandchild in psutil.Process(child).children(recursive=True))
        except (OSError, psutil.Error):
            pass
    return pids


def _resident(processes: list[psutil.Process]) -> int:
    used = 0
    for process in processes:
        try:
            used += process.memory_info().rss
        except psutil.Error:
            pass
    return used


def _threads(processes: list[psutil.Process]) -> int:
    count = 0
    for process in processes:
        try:
            count += process.num_threads()
        except psutil.Error:
            pass
    return count


def _tmpfs_bytes(processes: list[psutil.Process], folders: list[str]) -> int:
    """Bytes held by the RAM-backed file systems mounted at ``folders`` inside these processes' sandboxes.

    Seen from outside through ``/proc/<pid>/root``, once per mount namespace and once
    per file system (a folder whose file system is the one it has outside the sandbox
    is not the sandbox's: not counted). What cannot be read is skipped."""
    try:
        own = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return 0
    namespaces: set[str] = set()
    devices: set[int] = set()
    used = 0
    for process in processes:
        try:
            namespace = os.readlink(f"/proc/{process.pid}/ns/mnt")
        except OSError:
            continue
        if namespace == own or namespace in namespaces:
            continue
        namespaces.add(namespace)
        for folder in folders:
            inside = f"/proc/{process.pid}/root{folder}"
            try:
                device = os.stat(inside).st_dev
                if device in devices or (os.path.exists(folder) and os.stat(folder).st_dev == device):
                    continue
                status = os.statvfs(inside)
            except OSError:
                continue
            devices.add(device)
            used += (status.f_blocks - status.f_bfree) * status.f_frsize
    return used


def _open_files(processes: list[psutil.Process], target: Callable[[str], bool]) -> Iterator[os.stat_result]:
    """The status of each file these processes keep open whose link in ``/proc/<pid>/fd`` ``target`` accepts."""
    for process in processes:
        try:
            descriptors = os.listdir(f"/proc/{process.pid}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            path = f"/proc/{process.pid}/fd/{descriptor}"
            try:
                if target(os.readlink(path)):
                    yield os.stat(path)
            except OSError:
                continue


def _memfd_bytes(processes: list[psutil.Process]) -> int:
    """Bytes held by the anonymous in-memory files (``memfd_create``) these processes keep open: RAM that no
    process's resident memory shows until it is mapped."""
    used, seen = 0, set()
    for status in _open_files(processes, lambda link: link.startswith("/memfd:")):
        if (status.st_dev, status.st_ino) not in seen:
            seen.add((status.st_dev, status.st_ino))
            used += status.st_blocks * 512
    return used


def _disk_bytes(folder: Path, processes: list[psutil.Process], max_entries: int = MAX_DISK_ENTRIES) -> int | None:
    """Bytes ``folder`` takes on disk, links not followed, plus the files on its file system that ``processes``
    deleted but keep open; None when it holds more than ``max_entries`` entries."""
    try:
        device = os.stat(folder).st_dev
    except OSError:
        return 0
    used, entries, seen = 0, 0, set()
    stack = [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as scan:
                for entry in scan:
                    entries += 1
                    if entries > max_entries:
                        return None
                    try:
                        status = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(status.st_mode):
                        stack.append(entry.path)
                    if (status.st_dev, status.st_ino) not in seen:
                        seen.add((status.st_dev, status.st_ino))
                        used += status.st_blocks * 512
        except OSError:
            continue
    for status in _open_files(processes, lambda link: link.endswith(" (deleted)")):  # deleted, kept open
        if stat.S_ISREG(status.st_mode) and status.st_dev == device and (status.st_dev, status.st_ino) not in seen:
            seen.add((status.st_dev, status.st_ino))
            used += status.st_blocks * 512
    return used


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass


def _problem(outcome: Outcome, message: str) -> None:
    if not any(p.startswith(message.split(" (")[0]) for p in outcome.problems):  # dying processes may count again
        outcome.problems.append(message)


def _memory_line(what: str, limit_bytes: float, tmpfs: int) -> str:
    line = f"{what} {limit_bytes / GIB:g} GiB memory limit"
    if tmpfs >= TMPFS_MENTIONED_BYTES:
        line += f" (files in memory, in /tmp and the like, count in it: {tmpfs / GIB:.1f} GiB of them)"
    return line


def _watch_memory(process: subprocess.Popen[bytes], limit_bytes: float, outcome: Outcome,
                  judge_limit_bytes: float = JUDGE_MEMORY_GIB * GIB, tmpfs: list[str] | None = None,
                  max_processes: int = MAX_PROCESSES, max_threads: int = MAX_THREADS,
                  grader_limit_bytes: float = GRADER_MEMORY_GIB * GIB, disk: Path | None = None,
                  disk_limit_bytes: float = DISK_GIB * GIB) -> None:
    """Watch the processes under nbgrader until nbgrader ends, every 0.2 s (the disk every 2 s); a process of
    its own counts the kernel sandbox's processes every 0.02 s (course/grading/forkwatch.py).

    The kernel's processes are killed when together they hold more than ``limit_bytes``
    (their resident memory plus what their sandbox's in-memory folders ``tmpfs`` hold,
    see :func:`course.grading.sandbox.tmpfs_folders`), or when they are more than
    ``max_processes`` processes or ``max_threads`` threads; the judge's when they hold
    more than ``judge_limit_bytes``. nbgrader itself, and all under it, is killed when
    its own process holds more than ``grader_limit_bytes``: the submission is then not
    graded. The kernel is killed, too, when ``disk`` (the submission's workspace) takes
    more than ``disk_limit_bytes`` (:func:`_disk_bytes`). Each kill is a line in
    ``outcome.problems``.

    This thread stays at a normal priority: at a real-time one (SCHED_FIFO, tried) two
    watchers in ``course grade``'s process starved its other threads of the GIL, so a
    looping submission was never stopped at its wall-clock limit."""
    folders = tmpfs or []
    bombs = subprocess.Popen([sys.executable, "-I", "-m", "course.grading.forkwatch", str(process.pid), str(max_processes)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    looks = 0
    try:
        parent = psutil.Process(process.pid)
        while process.poll() is None:
            looks += 1
            children = parent.children(recursive=True)
            judges = _judge_pids(process.pid)
            kernel = [c for c in children if c.pid not in judges]
            judge = [c for c in children if c.pid in judges]
            if len(kernel) > max_processes:
                _kill(kernel)
                _problem(outcome, forkwatch.problem_line(max_processes))
                kernel = []
            elif _threads(kernel) > max_threads:
                _kill(kernel)
                _problem(outcome, f"kernel killed: more than {max_threads} threads")
                kernel = []
            for group, limit, what, after in (
                    (kernel, limit_bytes, "kernel killed at the", ""),
                    (judge, judge_limit_bytes, "the grader's checks stopped at their",
                     " (the values the tests read from the notebook are too large)")):
                if not group:
                    continue
                resident = _resident(group)
                files = _tmpfs_bytes(group, folders) + _memfd_bytes(group) if resident <= limit else 0
                if resident + files > limit:
                    _kill(group)
                    _problem(outcome, _memory_line(what, limit, files) + after)
            if disk is not None and kernel and looks % DISK_LOOKS == 0:
                used = _disk_bytes(disk, kernel)
                if used is None or used > disk_limit_bytes:
                    _kill(kernel)
                    _problem(outcome, f"kernel killed: more than {MAX_DISK_ENTRIES} files in its folder" if used is None
                             else f"kernel killed at the {disk_limit_bytes / GIB:g} GiB disk limit of its folder")
            if _resident([parent]) > grader_limit_bytes:
                _kill([parent, *children])
                outcome.graded = False
                _problem(outcome, f"not graded: the grader's own process passed its {grader_limit_bytes / GIB:g} GiB "
                                  "memory limit (the notebook's outputs are too large)")
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        pass
    finally:
        bombs.stdin.close()
        if bombs.stdout.read():
            _problem(outcome, forkwatch.problem_line(max_processes))
        bombs.wait()


# nbgrader's log when the student's kernel could not even start: the sandbox or the
# Python environment failed, which is the grader's fault, not the student's.
KERNEL_NEVER_STARTED = ("Kernel died before replying to kernel_info", "Error occurred while starting new kernel client")
# When this many submissions in a row, and none before them, fail so: stop the run.
NEVER_STARTED_STOP = 3


def problems_in_log(log: str) -> list[str]:
    """What nbgrader's log says went wrong while the notebook ran: cells past the time limit, kernel deaths."""
    problems = []
    timeouts = re.findall(r"Timeout waiting for execute reply \((\d+)s\)", log)
    if timeouts:
        problems.append(f"{len(timeouts)} cell(s) stopped at the {timeouts[0]} s cell time limit")
    kills = log.count("ignored the interrupt")
    if kills:
        problems.append("a cell ignored its interrupt: kernel killed")
    deaths = log.count("The kernel died in cell") - kills
    if deaths:
        problems.append(f"the kernel died {deaths} time(s)")
    too_large = re.findall(r"Cell \d+ hit the file size limit \(([^)]*)\)", log)
    if too_large:
        problems.append(f"{len(too_large)} cell(s) could not write a file past the {too_large[0]} file size limit")
    cut = set(re.findall(r"Output of cell (\d+) cut at", log))
    if cut:
        problems.append(f"the output of {len(cut)} cell(s) was cut at the output size limits")
    lost = re.findall(r"Output of cell (\d+) lost: a message over ([\d.]+ MiB)", log)
    if lost:
        problems.append(f"the output of {len({cell for cell, _ in lost})} cell(s) was lost (a message over {lost[0][1]})")
    if NO_FEEDBACK in log:
        problems.append("its feedback could not be written (see its log); its grades stand")
    return problems


class Processes:
    """The nbgrader processes running for one ``grade`` call, so that a stop can kill every one of them.

    A worker starts its process through :meth:`start`, which refuses once
    :meth:`stop` was called: no process can slip in between the stop and the kill.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.stopped = False
        self.signal: int | None = None  # SIGINT or SIGTERM received: grade stops at its next look
        self.fault: str | None = None  # this machine cannot grade: grade stops, changing nothing more

    def start(self, command: list[str], **options) -> subprocess.Popen[bytes] | None:
        """``Popen(command, **options)`` in a session of its own; None once stopped."""
        with self._lock:
            if self.stopped:
                return None
            process = subprocess.Popen(command, start_new_session=True, **options)
            self._running.add(process)
            return process

    def finished(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(process)

    def stop(self) -> int:
        """Refuse new processes and kill every running one with all its descendants; how many were running."""
        with self._lock:
            self.stopped = True
            running = list(self._running)
        for process in running:
            kill_tree(process)
        return len(running)


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process``, its process group and every descendant, and wait for them.

    nbgrader runs in a session of its own, but jupyter_client starts each kernel
    in yet another session, so killing nbgrader's group alone would leave an
    unsandboxed kernel running: the descendants are listed first, then killed.
    """
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            child.kill()
    process.wait()
    psutil.wait_procs(descendants, timeout=10)


# nbgrader's log of one submission, kernel output included, keeps its first and its last
# MAX_LOG_BYTES / 2 (a few KiB in all when all goes well; nbgrader's last lines say which cells timed out).
MAX_LOG_BYTES = 16 * 2**20
LOG_CUT = "\n[course grade: {more:,} bytes of this log were dropped here, past its {limit:g} MiB]\n"


def _copy_log(stream: IO[bytes], log: IO[bytes], limit: int) -> None:
    """Copy ``stream`` into ``log``: all of it up to ``limit`` bytes, else its first and last ``limit / 2``
    with a line saying how much was dropped between them."""
    head, tail, dropped, written = limit // 2, bytearray(), 0, 0
    try:
        for chunk in iter(lambda: stream.read1(2**16), b""):
            if written < head:
                part = chunk[:head - written]
                log.write(part)
                log.flush()
                written += len(part)
                chunk = chunk[len(part):]
            tail += chunk
            if len(tail) > limit - head:
                dropped += len(tail) - (limit - head)
                del tail[:len(tail) - (limit - head)]
        if dropped:
            log.write(LOG_CUT.format(more=dropped, limit=limit / 2**20).encode())
        log.write(tail)
    except (OSError, ValueError):  # the log was closed: grading is over
        pass
    finally:
        stream.close()


def grade_one(root: Path, assignment: str, student: str, workdir: Path, wall_seconds: float,
              memory_gib: float = 6, sandboxed: bool = True, threads: int | None = None,
              processes: Processes | None = None, where: layout.Layout | None = None,
              environment: dict[str, str] | None = None, hidden: list[Path] | None = None) -> Outcome:
    """Autograde one submission in a workspace of its own, ``workdir/<assignment>/<student>``.

    The course folder is only read; the gradebook is copied from ``workdir/gradebook.db``,
    a snapshot that, unlike the course's, no merge writes to meanwhile. The
    submission is copied in by :func:`course.grading.sandbox.copy_files`: a link in it
    brings nothing of the grader's into the workspace. ``processes`` tracks
    nbgrader's process so that ``grade`` can stop it. ``environment`` is set for nbgrader (a Dask task
    brings the client's ``COURSE_CELL_TIMEOUT``, course/grading/cluster.py); ``hidden`` are more folders the sandbox
    hides (a Dask worker's: every task's folder on that machine).
    """
    start = time.monotonic()
    where = where or layout.read(root)
    outcome = Outcome(assignment, student, 0.0)
    workspace = workdir / assignment / student
    submitted = f"{where.submitted}/{student}/{assignment}"
    workspace.mkdir(parents=True)
    outcome.problems += sandbox.copy_files(where.root, submitted, workspace / submitted, recurse=True)
    if not (workspace / submitted).is_dir():
        outcome.graded = False
        outcome.seconds = time.monotonic() - start
        return outcome
    shutil.copy(root / "nbgrader_config.py", workspace)
    shutil.copy(workdir / layout.GRADEBOOK, workspace / layout.GRADEBOOK)
    # The configuration copied here keeps its folder names; its root and gradebook, if it sets them, are
    # the course's: nbgrader in the workspace is held to the workspace's own.
    graded = workspace / where.autograded / student / assignment
    notebooks = assignment_notebooks(f"{layout.SQLITE}{workdir / layout.GRADEBOOK}", assignment)
    command = pipeline.autograde_command(f"--graded-folder={graded}", *(f"--notebook={name}" for name in notebooks),
                                         assignment, "--student", student, *where.workspace_options(workspace))
    env = pipeline.nbgrader_env()
    env.update(environment or {})
    if threads:  # workers share the cores instead of each TensorFlow taking them all
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")})
    runtime = cgroup = None
    if sandboxed:
        # The OS caps the kernel's and the judge's tasks and memory too, in cgroups of their own: a backstop
        # above the watcher's limits (it kills first, saying why).
        cgroup = f"{os.getpid()}-{re.sub(r'[^A-Za-z0-9_-]', '_', assignment)}-{re.sub(r'[^A-Za-z0-9_-]', '_', student)}"
        sandbox.write_kernelspec(workspace / "jupyter", hide=[root, *where.hidden(), workdir, *(hidden or [])], cgroup=cgroup,
                                 memory_bytes=int((memory_gib + JUDGE_MEMORY_GIB + CGROUP_MEMORY_MARGIN_GIB) * GIB))
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(workspace / "jupyter"), env.get("JUPYTER_PATH")]))
        # The kernel has no network: it speaks to nbgrader over IPC socket files, in a folder
        # of its own with a short absolute path (a socket's path holds at most 107 bytes).
        runtime = Path(tempfile.mkdtemp(prefix="ck-", dir="/tmp"))
        command += [f"--Execute.kernel_name={sandbox.KERNEL_NAME}", "--KernelManager.transport=ipc",
                    f"--KernelManager.ip={runtime}/kernel"]
    processes = processes or Processes()
    log_path = root / "logs" / assignment / f"{student}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        # nbgrader's output and the kernel's own (the kernel inherits nbgrader's standard output and error:
        # a student's os.write(1, ...) lands here), through a pipe that keeps the first MAX_LOG_BYTES.
        process = processes.start(command, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if process is None:
            outcome.graded = False
            outcome.problems.append("not graded: grading was stopped")
            if runtime is not None:
                shutil.rmtree(runtime, ignore_errors=True)
            return outcome
        logger = threading.Thread(target=_copy_log, args=(process.stdout, log, MAX_LOG_BYTES), daemon=True)
        logger.start()
        tmpfs = sandbox.tmpfs_folders([root, workdir, *(hidden or [])]) if sandboxed else []
        watchdog = threading.Thread(target=_watch_memory, args=(process, memory_gib * GIB, outcome),
                                    kwargs={"tmpfs": tmpfs, "disk": workspace}, daemon=True)
        watchdog.start()
        try:
            process.wait(timeout=wall_seconds)
        except subprocess.TimeoutExpired:
            kill_tree(process)
            outcome.graded = False
            outcome.problems.append(f"stopped after the {wall_seconds:g} s limit")
        finally:
            processes.finished(process)
        watchdog.join()
        logger.join(timeout=10)  # a process the kill missed may hold the pipe open: the log is done anyway
    if runtime is not None:
        shutil.rmtree(runtime, ignore_errors=True)
    if cgroup is not None:
        if sandbox.oom_kills(cgroup):
            outcome.problems.append(f"kernel killed by the OS at the {memory_gib + JUDGE_MEMORY_GIB + CGROUP_MEMORY_MARGIN_GIB:g} "
                                    "GiB memory limit of its sandbox")
        sandbox.remove_cgroups(cgroup)
        sandbox.sweep_cgroups()  # and what earlier sandboxes left, if their tasks were slow to go
    log_text = log_path.read_text(errors="replace")
    if process.returncode not in (0, -signal.SIGKILL):
        outcome.graded = False
        if any(sign in log_text for sign in KERNEL_NEVER_STARTED):
            outcome.never_started = True
            outcome.problems.append(f"its kernel never started (a fault of this machine, not of the submission), "
                                    f"see {log_path.relative_to(root)}; earlier grades, if any, unchanged")
        else:
            outcome.problems.append(f"nbgrader failed (exit {process.returncode}), see {log_path.relative_to(root)}")
    outcome.problems += problems_in_log(log_text)
    outcome.seconds = time.monotonic() - start
    return outcome


# The model files that come back from a workspace into autograded/ (the leaderboard reads the capstone's).
MODEL_FILES = "*.keras"


def copied_back(notebooks: list[str]) -> tuple[str, ...]:
    """What comes back from a workspace into autograded/ (:func:`course.grading.sandbox.copy_files` patterns): the
    assignment's own notebooks, named as the gradebook knows them, and the model files. Scratch files the
    student's code wrote stay behind, and so does every link; so does any other notebook it wrote there:
    nbgrader would look for its grades and fail that assignment's feedback."""
    return (*(glob.escape(name) + ".ipynb" for name in notebooks), MODEL_FILES)


def feedback_pages(notebooks: list[str]) -> tuple[str, ...]:
    """The feedback pages nbgrader writes for the assignment's ``notebooks`` (:func:`copied_back`'s patterns)."""
    return tuple(glob.escape(name) + ".html" for name in notebooks)


def assignment_notebooks(db_url: str, assignment: str) -> list[str]:
    """The names of ``assignment``'s notebooks in the gradebook at ``db_url``, without ``.ipynb``; none when
    it has no such assignment. A SQLite gradebook is only read (nbgrader's ``Gradebook`` would create or
    upgrade one that is missing, empty or old)."""
    from nbgrader.api import Gradebook, MissingEntry

    if db_url.startswith(layout.SQLITE):
        path = Path(db_url[len(layout.SQLITE):])
        try:
            with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
                rows = db.execute("SELECT notebook.name FROM notebook JOIN assignment ON notebook.assignment_id = "
                                  "assignment.id WHERE assignment.name = ? ORDER BY notebook.name", (assignment,))
                return [name for (name,) in rows]
        except sqlite3.Error:
            return []
    with Gradebook(db_url) as gradebook:
        try:
            return [notebook.name for notebook in gradebook.find_assignment(assignment).notebooks]
        except MissingEntry:
            return []


def merge(root: Path, workspace: Path, outcome: Outcome, where: layout.Layout | None = None) -> None:
    """Copy one workspace's submission, grades, comments and feedback into the course gradebook and folders.

    Only the regular files :func:`copied_back` names come back, by :func:`course.grading.sandbox.copy_files`, and
    the feedback pages of the assignment's notebooks; what it skipped is added to ``outcome.problems``.
    A submission not graded keeps no earlier feedback: its tests score 0, and an older page would say otherwise.
    """
    from sqlalchemy.exc import SAWarning

    where = where or layout.read(root)
    assignment = outcome.assignment
    with warnings.catch_warnings():
        # nbgrader's add_submission trips SQLAlchemy's autoflush warning; the rows are written all the same.
        warnings.simplefilter("ignore", SAWarning)
        _merge_grades(where.db_url, workspace, outcome)
    autograded, feedback = (where.root / folder / outcome.student / assignment
                            for folder in (where.autograded, where.feedback))
    for destination in (autograded, feedback):
        if destination.exists():
            shutil.rmtree(destination)
    if outcome.graded:
        notebooks = assignment_notebooks(where.db_url, assignment)
        outcome.problems += copy_back(workspace, where, outcome.student, assignment, notebooks, autograded, feedback)


def copy_back(workspace: Path, where: layout.Layout, student: str, assignment: str, notebooks: list[str],
              autograded: Path, feedback: Path) -> list[str]:
    """Copy what comes back from one workspace: the regular files :func:`copied_back` names of
    ``student``'s autograded ``assignment`` into ``autograded``, and the :func:`feedback_pages` of its
    ``notebooks`` into ``feedback``, both by :func:`course.grading.sandbox.copy_files`; what it skipped.
    Used by :func:`merge` here and by :func:`course.grading.cluster.run_task` on a Dask worker."""
    problems: list[str] = []
    for folder, patterns, destination in ((where.autograded, copied_back(notebooks), autograded),
                                          (where.feedback, feedback_pages(notebooks), feedback)):
        relative = f"{folder}/{student}/{assignment}"
        if (workspace / relative).is_dir():
            problems += sandbox.copy_files(workspace, relative, destination, patterns=patterns)
    return problems


def _merge_grades(db_url: str, workspace: Path, outcome: Outcome) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    assignment = outcome.assignment
    with Gradebook(f"{layout.SQLITE}{workspace / layout.GRADEBOOK}") as source:
        try:
            graded = source.find_submission(assignment, outcome.student)
        except MissingEntry:
            graded = None
        with Gradebook(db_url) as target:
            target.update_or_create_student(outcome.student)
            try:
                kept = _instructors_marks(target.find_submission(assignment, outcome.student))
                target.remove_submission(assignment, outcome.student)
            except MissingEntry:
                kept = {}
            extra = {"timestamp": graded.timestamp} if graded is not None and graded.timestamp else {}
            submission = target.add_submission(assignment, outcome.student, **extra)
            if graded is not None and outcome.graded:
                for notebook in graded.notebooks:
                    for grade in notebook.grades:
                        into = target.find_grade(grade.name, notebook.name, assignment, outcome.student)
                        into.auto_score, into.manual_score = grade.auto_score, grade.manual_score
                        into.extra_credit, into.needs_manual_grade = grade.extra_credit, grade.needs_manual_grade
                    for comment in notebook.comments:
                        into = target.find_comment(comment.name, notebook.name, assignment, outcome.student)
                        into.auto_comment, into.manual_comment = comment.auto_comment, comment.manual_comment
                    into = target.find_submission_notebook(notebook.name, assignment, outcome.student)
                    into.flagged, into.late_submission_penalty = notebook.flagged, notebook.late_submission_penalty
            else:
                # Not graded (killed or nbgrader failed): every test scores 0, visibly.
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        grade.auto_score, grade.needs_manual_grade = 0.0, False
            _restore_instructors_marks(submission, kept)
            target.db.commit()
            merged = target.find_submission(assignment, outcome.student)
            outcome.score, outcome.max_score = merged.score, merged.max_score


def _instructors_marks(submission: Any) -> dict[tuple[str, str, str], Any]:
    """What an instructor gave ``submission`` by hand in the Formgrader: each cell's manual score and extra credit,
    each comment's manual text, each notebook's flag, keyed by (kind, notebook, cell)."""
    marks: dict[tuple[str, str, str], Any] = {}
    for notebook in submission.notebooks:
        if notebook.flagged:
            marks["flagged", notebook.name, ""] = True
        for grade in notebook.grades:
            if grade.manual_score is not None or grade.extra_credit:
                marks["grade", notebook.name, grade.name] = (grade.manual_score, grade.extra_credit)
        for comment in notebook.comments:
            if comment.manual_comment:
                marks["comment", notebook.name, comment.name] = comment.manual_comment
    return marks


def _restore_instructors_marks(submission: Any, marks: dict[tuple[str, str, str], Any]) -> None:
    """Put :func:`_instructors_marks` back on the regraded ``submission``, as nbgrader's own autograde keeps them
    (a manual grade takes precedence over the automatic one): a cell that kept a manual score is marked as
    needing review, since the submission may have changed. A cell or notebook the assignment no longer has
    keeps nothing."""
    for notebook in submission.notebooks:
        if marks.get(("flagged", notebook.name, "")):
            notebook.flagged = True
        for grade in notebook.grades:
            if ("grade", notebook.name, grade.name) in marks:
                grade.manual_score, grade.extra_credit = marks["grade", notebook.name, grade.name]
                grade.needs_manual_grade = True
        for comment in notebook.comments:
            if ("comment", notebook.name, comment.name) in marks:
                comment.manual_comment = marks["comment", notebook.name, comment.name]


def _ensure_in_gradebook(root: Path, assignment: str, where: layout.Layout) -> None:
    """autograde needs the assignment's notebooks in the gradebook: generate it only if they are missing."""
    from nbgrader.api import Gradebook, MissingEntry

    if where.gradebook_file.is_file():
        with Gradebook(where.db_url) as gradebook:
            try:
                if gradebook.find_assignment(assignment).notebooks:
                    return
            except MissingEntry:
                pass
    pipeline.release(root, assignment, capture=True)


class _Lines:
    """Progress as printed lines (a log, CI): one per finished submission."""

    def __enter__(self) -> "_Lines":
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def show(self, done: int, eta: str) -> None:
        pass

    def line(self, text: str) -> None:
        print(text, flush=True)


class _LiveBar(_Lines):
    """Progress on a terminal: rich's bar with the ETA, updated every half second, above it the finished lines."""

    def __init__(self, total: int, console: Any = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[eta]}"), console=console)
        self.task = self.progress.add_task("grading", total=total, eta="ETA ?")

    def __enter__(self) -> "_LiveBar":
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def show(self, done: int, eta: str) -> None:
        self.progress.update(self.task, completed=done, eta=eta)

    def line(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)


def _display(total: int) -> _Lines:
    """A live bar on a terminal, printed lines otherwise."""
    return _LiveBar(total) if sys.stdout.isatty() else _Lines()


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``[#####...............]  5/20``"""
    filled = round(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total}"


# --zip-collect: the LMS names every file it hands out <student>_<file name> (adapt
# this to your LMS, as FileNameCollectorPlugin.named_regexp in nbgrader_config.py
# once was). An id has letters, digits, dots and hyphens: "_" ends it.
LMS_NAME = re.compile(r"(?P<student>[A-Za-z0-9.-]+)_(?P<name>.+)")
COLLECTED = (".ipynb", ".keras")
SKIPPED_SILENTLY = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$)")  # what zipping on a Mac adds


@dataclass
class Collection:
    """What :func:`collect_zips` did: the students whose submission it wrote, and what it left out and why."""

    assignment: str
    students: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    folder: str = "submitted"  # the course's submitted folder (nbgrader's CourseDirectory.submitted_directory)

    def report(self) -> str:
        lines = [f"Collected {len(self.students)} submission(s) of {self.assignment} into {self.folder}/"]
        return "\n".join(lines + [f"  problem: {p}" for p in self.problems])


@dataclass
class _File:
    """One file found for a student: its name in ``submitted/<student>/<assignment>/``, where it came from, how to read it."""

    student: str
    name: str
    origin: str
    size: int
    mtime: float | None
    open: Callable[[], IO[bytes]]


def roster(root: Path) -> set[str] | None:
    """The student ids in ``root/roster.csv`` (an ``id`` column, as ``nbgrader db student import`` reads), or None without one.

    The gradebook's students are no roster: a student enrolled since the last
    grading is not in it yet, and must not lose a submission for that.
    """
    path = root / "roster.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return {row["id"].strip() for row in csv.DictReader(f) if row.get("id")}


def _student_id(name: str, known: set[str] | None) -> str:
    """Check an id read from a name the LMS gave; raise ValueError saying why it is refused."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or set(name) == {"."}:
        raise ValueError(f"{name!r} is not a student id")
    if known is not None and name not in known:
        raise ValueError(f"{name} is not in roster.csv")
    return name


def _read_bounded(stream: IO[bytes], size: int, out: IO[bytes]) -> None:
    """Copy at most ``size`` bytes (the size checked against the limits), whatever the stream holds."""
    while size > 0:
        chunk = stream.read(min(size, sandbox.MIB))
        if not chunk:
            break
        out.write(chunk)
        size -= len(chunk)


def _zip_members(archive: zipfile.ZipFile, origin: str, problems: list[str],
                 limits: sandbox.Limits) -> Iterator[tuple[str, zipfile.ZipInfo]]:
    """The regular files of a zip, by base name, with the links, oddities and oversized ones reported."""
    members = archive.infolist()
    if len(members) > limits.max_entries:
        problems.append(f"skipped {origin}: more than {limits.max_entries} entries")
        return
    for info in members:
        path = info.filename.replace("\\", "/")
        name = PurePosixPath(path).name
        if info.is_dir() or SKIPPED_SILENTLY.search(path):
            continue
        where = f"{origin}:{path}"
        mode = info.external_attr >> 16  # Unix zips keep st_mode here; others leave the file type 0
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            problems.append(f"skipped {where}: {sandbox.kind(mode)}")
        elif name in ("", ".", "..") or name.startswith("."):
            problems.append(f"skipped {where}: not a file name")
        elif info.flag_bits & 0x1:
            problems.append(f"skipped {where}: encrypted")
        elif info.file_size > limits.max_file_bytes:
            problems.append(f"skipped {where}: larger than {limits.max_file_bytes / sandbox.MIB:g} MiB")
        else:
            yield name, info


def _zip_time(info: zipfile.ZipInfo) -> float | None:
    """When the zip says a member was written (local time, as unzip reads it); None when that is no date."""
    try:
        return datetime(*info.date_time).timestamp()
    except (ValueError, OverflowError):
        return None


def _students_zip(student: str, archive: zipfile.ZipFile, origin: str, problems: list[str],
                  limits: sandbox.Limits) -> Iterator[_File]:
    """The files of one student's own zip: every name in it is the student's, so only its base name counts."""
    for name, info in _zip_members(archive, origin, problems, limits):
        if not name.endswith(COLLECTED):
            problems.append(f"skipped {origin}:{info.filename}: only {' and '.join(COLLECTED)} files are collected")
        else:
            yield _File(student, name, f"{origin}:{info.filename}", info.file_size, _zip_time(info),
                        lambda info=info: archive.open(info))


def _named_entry(name: str, origin: str, size: int, mtime: float | None, open_file: Callable[[], IO[bytes]],
                 known: set[str] | None, problems: list[str], stack: contextlib.ExitStack, scratch: Path,
                 limits: sandbox.Limits) -> Iterator[_File]:
    """A file named by the LMS, ``<student>_<file>`` or ``<student>_<anything>.zip``: the student is in its name."""
    match = LMS_NAME.fullmatch(name)
    if not match:
        problems.append(f"skipped {origin}: not named <student>_<file>")
        return
    try:
        student = _student_id(match["student"], known)
    except ValueError as error:
        problems.append(f"skipped {origin}: {error}")
        return
    if name.endswith(".zip"):
        if size > limits.max_total_bytes:
            problems.append(f"skipped {origin}: larger than {limits.max_total_bytes / sandbox.MIB:g} MiB")
            return
        out = stack.enter_context(tempfile.TemporaryFile(dir=scratch))  # zipfile needs a file it can seek in
        with open_file() as source:
            _read_bounded(source, size, out)
        yield from _students_zip(student, stack.enter_context(zipfile.ZipFile(out)), origin, problems, limits)
    elif name.endswith(COLLECTED):
        if size > limits.max_file_bytes:
            problems.append(f"skipped {origin}: larger than {limits.max_file_bytes / sandbox.MIB:g} MiB")
        else:
            yield _File(student, match["name"], origin, size, mtime, open_file)
    else:
        problems.append(f"skipped {origin}: only {' and '.join(COLLECTED)} files and zips are collected")


def _archive_entries(archive: Path, known: set[str] | None, problems: list[str], stack: contextlib.ExitStack,
                     scratch: Path, limits: sandbox.Limits) -> Iterator[_File]:
    """Every file found in ``downloaded/<assignment>/archive/``, with its student read from the LMS's names.

    A top-level entry is a file ``<student>_<file>``, a student's zip
    ``<student>_<anything>.zip`` (``<student>.zip`` when roster.csv lists that
    id), or else a zip of the whole class as the LMS downloads it, whose
    members are named like top-level entries (only by their base names; a zip of
    the class inside it is not opened). Links, folders and special files are skipped.
    """
    with os.scandir(archive) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        origin = f"archive/{entry.name}"
        try:
            found = list(_archive_entry(archive, entry, origin, known, problems, stack, scratch, limits))
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as error:
            problems.append(f"skipped {origin}: {error}")
            continue
        yield from found


def _open_regular(path: Path) -> IO[bytes]:
    """``open(path, "rb")`` that refuses a link or anything but a regular file (it may have changed since it was listed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def _archive_entry(archive: Path, entry: os.DirEntry[str], origin: str, known: set[str] | None, problems: list[str],
                   stack: contextlib.ExitStack, scratch: Path, limits: sandbox.Limits) -> Iterator[_File]:
    """The files one top-level entry of the archive folder holds (see :func:`_archive_entries`)."""
    status = entry.stat(follow_symlinks=False)
    if not stat.S_ISREG(status.st_mode):
        problems.append(f"skipped {origin}: {sandbox.kind(status.st_mode)}")
        return
    path = archive / entry.name
    stem = entry.name.removesuffix(".zip")
    if not (entry.name.endswith(".zip") and "_" not in entry.name):
        yield from _named_entry(entry.name, origin, status.st_size, status.st_mtime, lambda: _open_regular(path),
                                known, problems, stack, scratch, limits)
        return
    download = stack.enter_context(zipfile.ZipFile(stack.enter_context(_open_regular(path))))
    if known is not None and stem in known:
        yield from _students_zip(_student_id(stem, known), download, origin, problems, limits)
        return
    for name, info in _zip_members(download, origin, problems, limits):
        where = f"{origin}:{info.filename}"
        try:
            found = list(_named_entry(name, where, info.file_size, _zip_time(info), lambda info=info: download.open(info),
                                      known, problems, stack, scratch, limits))
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as error:
            problems.append(f"skipped {where}: {error}")
            continue
        yield from found


def collect_zips(root: Path, assignment: str, limits: sandbox.Limits = sandbox.LIMITS) -> Collection:
    """Move an LMS download in ``downloaded/<assignment>/archive/`` into ``submitted/<student>/<assignment>/``.

    nbgrader's ``zip_collect`` reads a student's id from every file name, those
    inside a student's own zip too: one student's zip could replace another's
    submission, a ``..`` in a name wrote outside ``submitted/``, and two files for one
    student stopped the whole collection. Here the id comes only from a name the
    LMS gave (see :func:`_archive_entries`); a student's files are placed by
    base name, only ``.ipynb`` and ``.keras`` ones, size- and count-capped by
    ``limits`` (a zip's declared sizes are checked before anything is
    unpacked); ids are checked, and against ``roster.csv`` when there is one.
    A student with two files of one name is reported and not collected (the
    earlier submission, if any, stays); every other student is. Each collected
    folder replaces the student's earlier one and gets a ``timestamp.txt``: the
    newest time the LMS recorded for the student's files, in UTC.
    """
    where = layout.read(root)
    archive = root / "downloaded" / assignment / "archive"
    if not archive.is_dir() or not any(archive.iterdir()):
        raise SystemExit(f"Nothing to collect: put the LMS download (zip files or notebooks) in {archive}/")
    collection = Collection(assignment, folder=where.submitted)
    found: dict[str, list[_File]] = {}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="course-collect-") as scratch:
        for item in _archive_entries(archive, roster(root), collection.problems, stack, Path(scratch), limits):
            found.setdefault(item.student, []).append(item)
        for student, files in sorted(found.items()):
            try:
                problem = _place(where.step("submitted"), assignment, student, files, limits)
            except (OSError, zipfile.BadZipFile, ValueError, EOFError) as error:
                problem = f"{student}: not collected: {error}"
            if problem:
                collection.problems.append(problem)
            else:
                collection.students.append(student)
    return collection


def _place(submitted: Path, assignment: str, student: str, files: list[_File], limits: sandbox.Limits) -> str | None:
    """Write one student's files into ``submitted/<student>/<assignment>/``; None, or why they were not."""
    origins: dict[str, list[str]] = {}
    for item in files:
        origins.setdefault(item.name, []).append(item.origin)
    twice = {name: where for name, where in origins.items() if len(where) > 1}
    if twice:
        name, where = sorted(twice.items())[0]
        return f"{student}: not collected: {name} comes from {' and from '.join(where)}; keep one"
    budget = sandbox.Budget(limits)
    for item in files:
        refused = budget.refuse(item.size)
        if refused:
            return f"{student}: not collected: {refused}"
    folder = submitted / student
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{assignment}-", dir=folder))
    try:
        for item in files:
            with item.open() as source, open(staging / item.name, "xb") as out:
                _read_bounded(source, item.size, out)
        times = [item.mtime for item in files if item.mtime is not None]
        if times:
            newest = datetime.fromtimestamp(max(times), timezone.utc)
            (staging / "timestamp.txt").write_text(newest.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        target = folder / assignment
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return None


def _stopping_on_signals(processes: Processes) -> Callable[[], None]:
    """Make SIGINT and SIGTERM mark ``processes`` to stop; return the function that restores the old handlers.

    The handler only records the signal: the grading loop looks at it between
    merges, so a signal never interrupts a merge half-way.
    """
    previous: dict[int, object] = {}

    def handler(signum: int, frame: object) -> None:
        processes.signal = signum

    def restore() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    if threading.current_thread() is threading.main_thread():  # Python delivers signals to the main thread only
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
    return restore


def grade(root: Path, assignments: list[str], jobs: int = 1, wall_seconds: float = 1800, memory_gib: float = 6,
          sandboxed: bool = True, only: list[str] | None = None, only_new: bool = False,
          scheduler: str | None = None, scheduler_file: str | None = None) -> list[Outcome]:
    """Autograde every submission of ``assignments`` with ``jobs`` workers (each writes its submission's feedback),
    then export ``grades.csv``.

    The submissions of all the assignments share the workers, so a long one
    does not leave a worker idle while another assignment waits. ``only``
    grades only those students; ``only_new`` only submissions with no autograded
    notebook yet. A student whose grading or merge fails gets a problem line
    and the others go on; ``grades.csv`` is written at the end. SIGINT or
    SIGTERM stop everything (see :func:`_stop`) and exit with 128 + the signal.

    ``scheduler`` (``tcp://HOST:PORT``) or ``scheduler_file`` grades on the workers of
    a Dask cluster instead of ``jobs`` local ones (course/grading/cluster.py); merging and export stay here.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    remote = None
    if scheduler is None and scheduler_file is None and sandboxed and not sandbox.available():
        raise SystemExit(sandbox.INSTALL_HINT)
    try:
        where = layout.read(root)
    except layout.LayoutError as error:
        raise SystemExit(f"course grade: {error}. Nothing was graded.") from None
    submitted = where.step("submitted")
    submissions = [(assignment, student) for assignment in assignments
                   for student in students(root, assignment, where)]
    if not submissions:
        raise SystemExit(f"No submissions of {', '.join(assignments)} in {submitted}/<student>/<assignment>/")
    if only is not None:
        missing = sorted(set(only) - {student for _, student in submissions})
        if missing:
            raise SystemExit(f"No submission of {', '.join(assignments)} by {', '.join(missing)} in {submitted}/")
        submissions = [(a, s) for a, s in submissions if s in only]
    if only_new:
        submissions = [(a, s) for a, s in submissions if not any((where.step("autograded") / s / a).glob("*.ipynb"))]
        if not submissions:
            print(f"Nothing new to grade: every submission of {', '.join(assignments)} has an autograded notebook.")
            return []
    graded = sorted({assignment for assignment, _ in submissions}, key=assignments.index)
    stored = progress.load(root)  # the last run's timings (or measured ones): longest first, and an ETA from the start
    expected = progress.with_defaults(stored.assignments)
    submissions = progress.longest_first(submissions, expected, stored.submissions)
    if scheduler is not None or scheduler_file is not None:
        from course.grading import cluster

        remote = cluster.Remote(scheduler, scheduler_file)
        remote.connect()
    try:
        _check_graders(root, graded, sandboxed, where, remote)
        for assignment in graded:
            _ensure_in_gradebook(root, assignment, where)
        if remote is not None:
            jobs = remote.slots
        estimate = progress.Estimate(submissions, jobs, expected)
        on = f" on the Dask scheduler {remote.client.scheduler.address}" if remote is not None else ""
        print(f"Grading {len(submissions)} submissions of {', '.join(graded)} with {jobs} worker(s){on}"
              f"{'' if sandboxed else ', NOT sandboxed'}... {progress.format_seconds(estimate.left())}", flush=True)
        outcomes = _grade_all(root, where, submissions, jobs, wall_seconds, memory_gib, sandboxed, estimate, remote)
    finally:
        if remote is not None:
            remote.close()
    # Each submission that ran (one stopped at the wall-clock limit too: it is long, and goes first next time).
    progress.save(root, [(o.assignment, o.student, o.seconds) for o in outcomes if o.seconds > 0 and not o.never_started],
                  earlier=stored)
    pipeline.export(root, capture=True)
    return sorted(outcomes, key=lambda o: (assignments.index(o.assignment), o.student))


def _check_graders(root: Path, graded: list[str], sandboxed: bool, where: layout.Layout, remote: Any) -> None:
    """Can this machine, or every worker of ``remote`` (course/grading/cluster.py), grade? SystemExit, changing nothing, if not."""
    if remote is None:
        try:
            preflight.check(root, graded, sandboxed, where)
        except preflight.PreflightError as error:
            raise SystemExit(f"course grade: this machine cannot grade: {error}") from None
        return
    fault = remote.check(preflight.datasets_used(where.step("source"), graded), sandboxed)
    if fault is not None:
        raise SystemExit(f"course grade: {fault}. Nothing was graded.")
    failures = remote.allowed_failures()
    if failures:
        print(f"Note: this Dask scheduler retries a task whose worker is lost {failures} time(s) itself, unseen: start it "
              "with DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 and course grade regrades once and reports it.",
              flush=True)


def _grade_all(root: Path, where: layout.Layout, submissions: list[tuple[str, str]], jobs: int, wall_seconds: float,
               memory_gib: float, sandboxed: bool, estimate: progress.Estimate, remote: Any) -> list[Outcome]:
    """Grade ``submissions`` in this order on ``jobs`` local workers, or on ``remote``'s, merging each as it ends.

    A Dask cluster gets at most two tasks per grading slot at a time (each holds its submission's files),
    more as they finish. A task whose worker was lost is submitted once more."""
    outcomes: list[Outcome] = []
    processes = Processes()
    restore = _stopping_on_signals(processes)
    display = _display(len(submissions))
    try:
        with display as bar, tempfile.TemporaryDirectory(prefix="course-grade-") as scratch:
            snapshot = Path(scratch) / layout.GRADEBOOK
            shutil.copy(where.gradebook_file, snapshot)
            threads = max(1, (os.cpu_count() or 1) // min(jobs, len(submissions)))
            pool = ThreadPoolExecutor(max_workers=jobs) if remote is None else None
            queue = list(submissions)
            window = len(queue) if remote is None else 2 * jobs
            pending: dict[Future[Any], tuple[str, str]] = {}
            notes: dict[tuple[str, str], list[str]] = {}  # problems found before the worker graded it
            if remote is not None:
                from course.grading import cluster

                gradebook, versions = snapshot.read_bytes(), cluster.versions()
                datasets = tuple(preflight.datasets_used(where.step("source"), sorted({a for a, _ in submissions})))

            def start(pair: tuple[str, str]) -> None:
                assignment, student = pair
                memory = where.memory_gib(assignment, memory_gib)
                if pool is not None:
                    pending[pool.submit(grade_one, root, assignment, student, Path(scratch), wall_seconds, memory,
                                        sandboxed, threads, processes, where)] = pair
                    return
                future: Future[Any] = Future()
                try:
                    task, problems = cluster.pack(where, assignment, student, gradebook, wall_seconds, memory,
                                                  sandboxed, remote.stop_event, versions, datasets)
                except OSError as error:  # this student's files could not be read: their line, not the batch's
                    task, problems = None, [f"not graded: its files could not be read ({error})"]
                notes.setdefault(pair, []).extend(problems)
                if task is None:
                    future.set_result(Outcome(assignment, student, 0.0, graded=False))
                else:
                    try:
                        future = remote.submit(task)
                    except Exception as error:  # noqa: BLE001 (the scheduler is gone: stop, as for any fault here)
                        processes.fault = f"the Dask scheduler refused a task ({type(error).__name__}: {error})"
                        future.set_result({"fault": processes.fault})
                pending[future] = pair

            try:
                while queue and len(pending) < window:
                    start(queue.pop(0))
                while pending and processes.signal is None:
                    done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    bar.show(len(outcomes), progress.format_seconds(estimate.left()))
                    for future in sorted(done, key=lambda f: pending[f]):
                        if processes.signal is not None:
                            break
                        pair = pending.pop(future)
                        assignment, student = pair
                        if remote is not None and future.cancelled():  # not by us: the scheduler is gone
                            processes.fault = "the connection to the Dask scheduler was lost"
                            break
                        if remote is not None and remote.lost(future):
                            if not any(note.startswith(LOST) for note in notes.get(pair, [])):
                                notes.setdefault(pair, []).append(f"{LOST} ({future.exception()}); graded again on another")
                                start(pair)
                                continue
                            outcome = Outcome(assignment, student, 0.0, graded=False, never_started=True,
                                              problems=[f"not graded: {LOST} twice ({future.exception()}); earlier grades, "
                                                        "if any, unchanged"])
                        else:
                            if (remote is not None and not future.exception() and isinstance(future.result(), dict)
                                    and "fault" in future.result()):
                                processes.fault = future.result()["fault"]
                                break
                            outcome = _finish(root, Path(scratch), future, assignment, student, where, remote,
                                              notes.pop(pair, []))
                        outcomes.append(outcome)
                        estimate.done(assignment, outcome.seconds)
                        bar.line(f"{progress_bar(len(outcomes), len(submissions))}  "
                                 f"{progress.format_seconds(estimate.left()):<16} {outcome.line()}")
                        if len(outcomes) >= NEVER_STARTED_STOP and all(o.never_started for o in outcomes):
                            processes.fault = (f"the first {len(outcomes)} kernels never started: this machine cannot "
                                               "run students' kernels (see their logs)")
                            break
                        while queue and len(pending) < window:
                            start(queue.pop(0))
                    if processes.fault is not None:
                        break
                bar.show(len(outcomes), progress.format_seconds(estimate.left()))
                if processes.signal is not None or processes.fault is not None:
                    _stop(processes, pool, outcomes, len(submissions), remote, list(pending))
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
    finally:
        restore()
    return outcomes


# The problem line of a submission whose Dask worker was lost mid-task (course/grading/cluster.py).
LOST = "its worker was lost mid-task"


def _finish(root: Path, scratch: Path, future: Future[Any], assignment: str, student: str,
            where: layout.Layout | None = None, remote: Any = None, notes: list[str] | None = None) -> Outcome:
    """One submission's outcome, merged into the course; a failure is the student's problem line, not the batch's.

    With ``remote`` (course/grading/cluster.py) the future holds what the worker sent back, laid out here first;
    ``notes`` are problems found before the worker graded it (files not copied, a worker lost)."""
    where = where or layout.read(root)
    try:
        outcome = future.result()
        if remote is not None and not isinstance(outcome, Outcome):
            from course.grading import cluster

            outcome = cluster.receive(root, scratch, outcome, where, assignment, student)
    except Exception as error:  # noqa: BLE001 (one student's failure must not stop the batch)
        return Outcome(assignment, student, 0.0, graded=False,
                       problems=[*(notes or []),
                                 f"not graded ({type(error).__name__}: {error}); earlier grades, if any, unchanged"])
    outcome.problems[:0] = notes or []
    if outcome.never_started:
        return outcome  # the machine's fault: the student's earlier grade stays
    try:
        merge(root, scratch / assignment / student, outcome, where)
    except Exception as error:  # noqa: BLE001
        outcome.problems.append(f"merging failed ({type(error).__name__}: {error})")
    finally:  # what the student's code wrote there (up to the disk limit) goes now, not at the end of the run
        shutil.rmtree(scratch / assignment / student, ignore_errors=True)
    return outcome


def _stop(processes: Processes, pool: ThreadPoolExecutor | None, outcomes: list[Outcome], total: int,
          remote: Any = None, running: list[Future[Any]] | None = None) -> None:
    """After SIGINT or SIGTERM: start nothing more, kill every nbgrader tree (on a Dask cluster's workers too),
    merge nothing half-graded, say so, exit."""
    signum = processes.signal
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    killed = processes.stop()
    if pool is not None:
        pool.shutdown(wait=True)
    if remote is not None:
        remote.stop()
        running = [future for future in running or [] if not future.done()]
        killed = len(running)
        for future in running:
            future.cancel()
    if outcomes:
        print(summary(outcomes), flush=True)
    if processes.fault is not None:
        merged = sum(1 for o in outcomes if not o.never_started)
        kept = (f"the {merged} submission(s) graded before it keep their new grades, no other grade was changed"
                if merged else "no grade was changed")
        print(f"course grade: stopped: {processes.fault}. {kept[0].upper()}{kept[1:]}; grades.csv was not updated.",
              file=sys.stderr, flush=True)
        raise SystemExit(1)
    assert signum is not None
    print(f"Stopped by {signal.Signals(signum).name}: {len(outcomes)} of {total} submissions graded and merged "
          f"into gradebook.db; the other {total - len(outcomes)} were not merged ({killed} killed while being graded). "
          "Feedback and grades.csv were not updated: run the same `course grade` with --only-new to go on.",
          file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def summary(outcomes: list[Outcome]) -> str:
    """Each assignment's score distribution, and the submissions that had problems."""
    lines = []
    for assignment in dict.fromkeys(o.assignment for o in outcomes):
        graded = [o for o in outcomes if o.assignment == assignment]
        scores = sorted(o.score for o in graded if o.score is not None)
        lines.append(f"{assignment}: {len(graded)} submissions; "
                     + (f"scores min {scores[0]:g}, median {scores[len(scores) // 2]:g}, max {scores[-1]:g}" if scores
                        else "none graded"))
        lines += [f"  problem: {o.student}: {'; '.join(o.problems)}" for o in graded if o.problems]
    return "\n".join(lines)
