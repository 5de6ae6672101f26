"""Grade on many machines with Dask: ``course grade ... --scheduler tcp://HOST:PORT`` and ``course worker``.

nbgrader grades one submission after another (nbgrader issue 174); ``course grade``
(course/grading/batch.py) already grades each submission in a workspace of its own and merges
the grades with one writer. Here a submission becomes one self-contained task for a
Dask worker on another machine:

- **what goes** (:class:`Task`): bytes and plain names only. The course's
  ``nbgrader_config.py``, a snapshot of the gradebook, the submission's files
  (copied by :func:`course.grading.sandbox.copy_files`: no link followed, sizes capped), the
  step folders' names, the limits, ``COURSE_CELL_TIMEOUT``, and the versions of the
  client's grading software. No path of the client machine is in it.
- **what runs** (:func:`run_task`, on the worker): the same :func:`course.grading.batch.grade_one`
  as the local pool, sandboxed and bounded the same way, in a throwaway folder of the
  worker's, with the datasets of the worker's own mirror or cache (``COURSE_DATA_DIR``,
  ``COURSE_CACHE_DIR``: checked by SHA-256 as they load, course/data.py). Every task's
  folder on a machine lies in one folder that each kernel there has hidden, as are the
  Dask workers' local folders: no kernel sees another task's submission.
- **what comes back** (a ``dict`` of plain data): the outcome, the workspace's gradebook,
  the autograded notebook and model files (the assignment's notebooks and ``*.keras`` only), its feedback
  page and the log.
  :func:`receive` lays them out as a local workspace, and :func:`course.grading.batch.merge`
  merges them on the machine that runs ``course grade``, one at a time, as for the local pool.

A worker is a Dask worker process with one ``grade`` resource (``--nthreads 1
--resources grade=1``): it grades one submission at a time. ``course worker``
(:func:`serve`) starts them after checking that this machine can grade (bubblewrap
works, the datasets load and verify, also inside the sandbox). Before any task,
``course grade`` runs the same checks on every connected worker and compares each
worker's versions (:func:`versions`) with its own: a worker that cannot grade, or
differs, stops the run before any grade changes. A worker that joins later checks
the versions again with each task.

Failures: a worker lost mid-task (killed, its machine gone) has its submission graded
once more elsewhere, and the report says so; a second loss leaves the earlier grade
unchanged and says that too. For that the scheduler must hand a lost task back at
once (``distributed.scheduler.allowed-failures: 0``); with Dask's default (3) it
retries silently and ``course grade`` says so at the start. A failure the student
caused (a loop, a crash, a memory bomb) is an outcome, never an exception: it is
never retried. Ctrl-C or SIGTERM on the client sets a Dask ``Event`` that every
running task watches: each kills its nbgrader and kernel.

The scheduler's port runs code: whoever reaches it can run anything on every worker,
as the worker's user. Keep it on a private network or behind TLS
(``distributed.Security``, README, "Grading on many machines").
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import uuid
import warnings
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from course.grading import batch, layout, preflight, sandbox

RESOURCE = "grade"  # a worker process with one of these grades one submission at a time
SLOTS_VARIABLE = "COURSE_WORKER_SLOTS"  # set by `course worker`: grading slots on this machine
FORWARDED_ENVIRONMENT = ("COURSE_CELL_TIMEOUT",)  # the client's settings that nbgrader_config.py reads
CONNECT_SECONDS = 20
VERSIONED = ("nbgrader", "nbclient", "nbconvert", "nbformat", "traitlets", "sqlalchemy", "keras", "tensorflow",
             "tensorflow-cpu", "numpy", "ipykernel", "jupyter_client", "distributed")
STOP_LOOK_SECONDS = 1.0


def versions() -> dict[str, str]:
    """What must match between the client and a worker for the same submission to get the same grade:
    Python's version, the grading packages' versions and a digest of this ``course`` package's code
    (its checks and judge run on the worker)."""
    found = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    digest = hashlib.sha256()
    package = Path(__file__).parents[1]  # course/: both halves
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    found["course"] = digest.hexdigest()[:16]
    return found


def differences(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """``"keras 3.15.0 here, 3.14.0 there"`` for each difference between two :func:`versions`."""
    return [f"{name} {mine.get(name, 'absent')} here, {theirs.get(name, 'absent')} there"
            for name in sorted(set(mine) | set(theirs)) if mine.get(name) != theirs.get(name)]


@dataclass(frozen=True)
class Task:
    """One submission to grade, as data: nothing in it names a path of the client machine."""

    assignment: str
    student: str
    folders: dict[str, str]  # the step folders' names (course/grading/layout.py): submitted, autograded...
    config: bytes  # nbgrader_config.py
    gradebook: bytes  # the snapshot of the course's gradebook
    files: tuple[tuple[str, bytes], ...]  # the submission's files, by path inside its folder
    wall_seconds: float
    memory_gib: float
    sandboxed: bool
    environment: dict[str, str]
    versions: dict[str, str]
    stop_event: str  # the Dask Event that stops the batch
    datasets: tuple[str, ...] = ()  # what the assignment reads: checked on the worker's first task


def pack(where: layout.Layout, assignment: str, student: str, gradebook: bytes, wall_seconds: float,
         memory_gib: float, sandboxed: bool, stop_event: str, client_versions: dict[str, str],
         datasets: tuple[str, ...] = ()) -> tuple[Task | None, list[str]]:
    """The task of one submission, and what :func:`course.grading.sandbox.copy_files` skipped of its files; no task
    when its folder itself could not be copied (a link, say): then there is nothing to grade."""
    with tempfile.TemporaryDirectory(prefix="course-pack-") as folder:
        copied = Path(folder) / "files"
        problems = sandbox.copy_files(where.root, f"{where.submitted}/{student}/{assignment}", copied, recurse=True)
        if not copied.is_dir():
            return None, problems
        files = tuple(_read_files(copied))
    folders = {name.removesuffix("_directory"): getattr(where, name.removesuffix("_directory")) for name in layout.FOLDERS}
    environment = {name: os.environ[name] for name in FORWARDED_ENVIRONMENT if name in os.environ}
    task = Task(assignment, student, folders, (where.config_folder / "nbgrader_config.py").read_bytes(), gradebook,
                files, wall_seconds, memory_gib, sandboxed, environment, client_versions, stop_event, datasets)
    return task, problems


def _inside(base: Path, relative: str) -> Path | None:
    """``base/relative`` for a plain relative path (parts separated by ``/``, none empty, ``.`` or ``..``, no NUL);
    None for anything else."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\0" in relative:
        return None
    return base.joinpath(*parts)


def _write_files(base: Path, files: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]) -> list[str]:
    """Write ``files`` under ``base``; what was not written (a name that would leave ``base``), one line each."""
    problems = []
    for relative, content in files:
        path = _inside(base, relative)
        if path is None:
            problems.append(f"skipped {relative!r}: not a plain relative path")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return problems


def _read_files(folder: Path) -> list[tuple[str, bytes]]:
    return sorted((path.relative_to(folder).as_posix(), path.read_bytes())
                  for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _slots_here() -> int:
    """Grading slots on this machine: ``course worker``'s ``--slots``, else the grade workers on this host."""
    if os.environ.get(SLOTS_VARIABLE, "").isdigit() and int(os.environ[SLOTS_VARIABLE]) > 0:
        return int(os.environ[SLOTS_VARIABLE])
    try:
        from distributed import get_worker

        me = get_worker()
        host = me.address.rsplit(":", 1)[0]
        workers = me.client.scheduler_info(n_workers=-1)["workers"]
        return max(1, sum(1 for address, info in workers.items()
                          if address.rsplit(":", 1)[0] == host and info.get("resources", {}).get(RESOURCE)))
    except Exception:  # noqa: BLE001 (outside a worker, or the scheduler is busy: one slot)
        return 1


def _machines_folders() -> list[Path]:
    """What every kernel on this machine must not see besides its own task: the folder holding every task's
    folder (other students' submissions, whatever the temporary folder is), and the Dask workers' local folders
    (where Dask may spill results). The first is created for this user only; RuntimeError when one is there
    that is not that (a link, another user's, open to others), since whoever owns it could swap a task's files."""
    tasks = Path(tempfile.gettempdir()) / f"course-tasks-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        tasks.mkdir(mode=0o700)
    status = os.lstat(tasks)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise RuntimeError(f"{tasks} is not a folder of this user's alone (a link, another user's, or open to others): "
                           "remove it, or set TMPDIR to a private folder")
    folders = [tasks]
    try:
        from distributed import get_worker

        folders.append(Path(get_worker().local_directory).parent)
    except (ImportError, ValueError):  # not in a Dask worker (a test calls run_task itself)
        pass
    return folders


_CHECKED: set[tuple[tuple[str, ...], bool]] = set()


def _check_once(datasets: tuple[str, ...], sandboxed: bool) -> None:
    """:func:`course.grading.preflight.check_machine` on this worker process's first task (and for new datasets): a
    worker that joined after ``course grade`` checked the others, or a plain ``dask worker``, is checked too."""
    if (tuple(datasets), sandboxed) not in _CHECKED:
        preflight.check_machine(list(datasets), sandboxed, hidden=[])
        _CHECKED.add((tuple(datasets), sandboxed))


def _worker_client() -> Any:
    """The Dask client of the worker running this task (made in the task's own thread, where Dask knows the
    worker: a thread of ours would not); None outside a worker."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def _watch_stop(event_name: str, client: Any, processes: batch.Processes, done: threading.Event) -> None:
    """Kill this task's nbgrader once the client sets the batch's stop event."""
    if client is None:
        return
    from distributed import Event

    try:
        stop = Event(event_name, client=client)
        while not done.wait(STOP_LOOK_SECONDS):
            if stop.is_set():
                processes.stop()
                return
    except Exception as error:  # noqa: BLE001 (the scheduler went away: the wall-clock limit still holds)
        print(f"course worker: cannot watch for a stop ({type(error).__name__}: {error}); the wall-clock limit holds",
              file=sys.stderr, flush=True)


def run_task(task: Task) -> dict[str, Any]:
    """Grade one :class:`Task` on this worker; plain data back (see :func:`receive`).

    A worker whose versions differ from the client's grades nothing and says so (``fault``)."""
    worker = socket.gethostname()
    with_versions = differences(task.versions, versions())
    if with_versions:
        return {"fault": f"worker on {worker} differs from the client: {'; '.join(with_versions)}"}
    try:
        _check_once(task.datasets, task.sandboxed)
        hidden = _machines_folders()
    except (preflight.PreflightError, RuntimeError, OSError) as error:
        return {"fault": f"worker on {worker} cannot grade: {error}"}
    client = _worker_client()
    with tempfile.TemporaryDirectory(prefix="task-", dir=hidden[0]) as folder:
        root, scratch = Path(folder) / "course", Path(folder) / "scratch"
        root.mkdir()
        scratch.mkdir()
        (root / "nbgrader_config.py").write_bytes(task.config)
        (scratch / layout.GRADEBOOK).write_bytes(task.gradebook)
        where = layout.Layout(root, root, **task.folders)
        submitted = where.step("submitted") / task.student / task.assignment
        submitted.mkdir(parents=True)
        skipped = _write_files(submitted, task.files)
        processes = batch.Processes()
        done = threading.Event()
        watcher = threading.Thread(target=_watch_stop, args=(task.stop_event, client, processes, done), daemon=True)
        watcher.start()
        try:
            threads = max(1, (os.cpu_count() or 1) // _slots_here())
            outcome = batch.grade_one(root, task.assignment, task.student, scratch, task.wall_seconds, task.memory_gib,
                                      task.sandboxed, threads, processes, where, environment=task.environment,
                                      hidden=hidden)
        finally:
            done.set()
            watcher.join()
        workspace = scratch / task.assignment / task.student
        back, pages = Path(folder) / "back", Path(folder) / "pages"
        relative = f"{where.autograded}/{task.student}/{task.assignment}"
        if (workspace / relative).is_dir():
            outcome.problems[:0] = skipped
        notebooks = batch.assignment_notebooks(f"{layout.SQLITE}{scratch / layout.GRADEBOOK}", task.assignment)
        outcome.problems += batch.copy_back(workspace, where, task.student, task.assignment, notebooks, back, pages)
        log = root / "logs" / task.assignment / f"{task.student}.log"
        return {
            "outcome": asdict(outcome),
            "gradebook": (workspace / layout.GRADEBOOK).read_bytes() if (workspace / layout.GRADEBOOK).is_file() else None,
            "autograded": _read_files(back) if back.is_dir() else [],
            "feedback": _read_files(pages) if pages.is_dir() else [],
            "log": log.read_bytes() if log.is_file() else b"",
            "worker": worker,
        }


def receive(root: Path, scratch: Path, result: dict[str, Any], where: layout.Layout, assignment: str,
            student: str) -> batch.Outcome:
    """Lay out what :func:`run_task` sent back for ``student``'s ``assignment`` as the workspace
    ``scratch/<assignment>/<student>`` that :func:`course.grading.batch.merge` reads, and write its log to ``root/logs``;
    the outcome. ValueError when the result is not that submission's."""
    outcome = batch.Outcome(**result["outcome"])
    if (outcome.assignment, outcome.student) != (assignment, student):
        raise ValueError(f"the worker sent back {outcome.assignment}/{outcome.student} for {assignment}/{student}")
    workspace = scratch / assignment / student
    workspace.mkdir(parents=True, exist_ok=True)
    if result["gradebook"] is not None:
        (workspace / layout.GRADEBOOK).write_bytes(result["gradebook"])
    outcome.problems += _write_files(workspace / where.autograded / student / assignment, result["autograded"])
    outcome.problems += _write_files(workspace / where.feedback / student / assignment, result.get("feedback", []))
    log = root / "logs" / outcome.assignment / f"{outcome.student}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(result["log"])
    return outcome


def check_worker(datasets: list[str], sandboxed: bool) -> dict[str, str]:
    """Run on each worker before a batch: this machine's versions; :class:`course.grading.preflight.PreflightError`
    when it cannot grade (bubblewrap, the datasets, the datasets inside the sandbox)."""
    preflight.check_machine(datasets, sandboxed, hidden=[])
    return versions()


@dataclass
class Remote:
    """``course grade``'s side of a Dask cluster: connect, check every worker, submit tasks, stop them."""

    address: str | None = None
    scheduler_file: str | None = None
    client: Any = None
    stop_event: str = field(default_factory=lambda: f"course-grade-stop-{uuid.uuid4().hex}")
    slots: int = 0
    retried: set[str] = field(default_factory=set)

    def connect(self) -> None:
        """Connect to the scheduler; SystemExit with the reason when it cannot be reached or has no grading worker."""
        from distributed import Client

        try:
            self.client = Client(self.address, scheduler_file=self.scheduler_file, timeout=CONNECT_SECONDS,
                                 set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            where = self.address or f"the scheduler file {self.scheduler_file}"
            raise SystemExit(f"course grade: cannot reach the Dask scheduler at {where} ({type(error).__name__}: "
                             f"{error}). Nothing was graded.") from None
        address = self.client.scheduler.address
        deadline = time.monotonic() + CONNECT_SECONDS  # workers started a moment ago may not have joined yet
        while True:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
            self.slots = sum(int(info.get("resources", {}).get(RESOURCE, 0)) for info in workers.values())
            if self.slots or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not self.slots:
            self.close()
            raise SystemExit(f"course grade: no worker of the Dask scheduler at {address} offers "
                             f"the {RESOURCE!r} resource: start workers with `course worker SCHEDULER --slots N`. "
                             "Nothing was graded.")

    def check(self, datasets: list[str], sandboxed: bool) -> str | None:
        """Check every connected worker (:func:`check_worker`); the reason none may grade, or None."""
        mine = versions()
        found = self.client.run(check_worker, datasets, sandboxed, on_error="return")
        for address, theirs in sorted(found.items()):
            if isinstance(theirs, BaseException):
                return f"the worker {address} cannot grade: {theirs}"
            wrong = differences(mine, theirs)
            if wrong:
                return f"the worker {address} differs from this machine: {'; '.join(wrong)}"
        return None

    def allowed_failures(self) -> int | None:
        try:
            return int(self.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures))
        except Exception:  # noqa: BLE001 (a scheduler that refuses to run code: unknown)
            return None

    def submit(self, task: Task) -> Future:
        """``run_task(task)`` on a worker with a free grade slot, as a ``concurrent.futures.Future``."""
        executor = self.client.get_executor(resources={RESOURCE: 1}, pure=False)
        with warnings.catch_warnings():  # "Sending large graph": a task is its submission's files, by design
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            return executor.submit(run_task, task, key=f"grade-{uuid.uuid4().hex}")

    @staticmethod
    def lost(future: Future) -> bool:
        """Whether the task's worker was lost mid-task (its process or machine gone)."""
        from distributed import KilledWorker

        return future.done() and not future.cancelled() and isinstance(future.exception(), KilledWorker)

    def stop(self) -> None:
        """Tell every running task to kill its nbgrader; cancel the rest."""
        from distributed import Event

        try:
            Event(self.stop_event, client=self.client).set()
        except Exception:  # noqa: BLE001 (the scheduler is gone: nothing runs there any more)
            pass

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def serve(scheduler: str, slots: int, datasets: list[str], extra: list[str]) -> None:
    """``course worker``: check that this machine can grade, then become ``slots`` Dask worker processes
    of one ``grade`` slot each (``dask worker SCHEDULER --nworkers SLOTS --nthreads 1 --resources grade=1``)."""
    try:
        preflight.check_machine(datasets, True, hidden=[])
    except preflight.PreflightError as error:
        raise SystemExit(f"course worker: this machine cannot grade: {error}") from None
    mine = versions()
    print(f"course worker: this machine can grade ({', '.join(f'{k} {v}' for k, v in mine.items())}); "
          f"starting {slots} grading slot(s) for {scheduler}", flush=True)
    os.environ[SLOTS_VARIABLE] = str(slots)
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or "dask"
    os.execv(dask, [dask, "worker", scheduler, "--nworkers", str(slots), "--nthreads", "1",
                    "--resources", f"{RESOURCE}=1", *extra])
