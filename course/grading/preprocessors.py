"""Autograding that gives each submission the points it earned, even when its kernel crashes.

Configured in ``nbgrader_config.py``. Stock nbgrader abandons a submission whose
kernel dies (``os._exit``, a segfault, the memory killer): "There was an error
processing assignment", and the student gets 0, even for the exercises solved
before the crash. :class:`CrashTolerantExecute` instead records the crash in
the cell where it happened and in every code cell after it (the kernel's state
is gone, so they cannot run), and nbgrader grades the notebook as usual.

A cell past the time limit is interrupted (nbgrader's ``interrupt_on_timeout``).
Code that swallows the interrupt (a bare ``except:`` inside a loop does) keeps
the kernel busy, and nbclient then abandons the whole notebook: "Timeout
waiting for IOPub output", 0 for every exercise. Here a cell still running
``interrupt_grace`` seconds after its interrupt has its kernel killed, and
counts as a crash.

The kernel's outputs are kept in nbgrader's own process, outside the sandbox, until
the notebook is written: a 400 MB print grew it by as much, outside every limit.
:class:`CrashTolerantExecute` caps them. Its kernel client's sockets refuse a
message over ``max_message_bytes`` (ZMQ_MAXMSGSIZE: the message is never read
into memory; ZeroMQ then drops that connection, and the client connects its
output channel again); a cell's outputs past ``max_cell_output_bytes`` and a
notebook's past ``max_output_bytes`` are dropped. Either way the cell gets one
line saying so, and its grading goes on.

It also abandons a submission holding a copied cell (its ``grade_id`` twice)
once deleted test cells are put back (``OverwriteCells.add_missing_cells``):
:class:`DeduplicateGradeIds` fixes that; a pasted cell whose ``grade_id`` the
gradebook does not know makes it fail the whole notebook: :class:`DropUnknownGradeIds`.

:class:`JudgedExecute` grades the test cells outside the student's kernel: each
graded test cell runs in the judge (course/grading/judge.py), a separate process where no
student code runs, and only the judge's outputs are graded. The kernel runs the
visible part of each test cell (its outputs dropped), so the notebook's state is
what the student saw; it never receives a hidden test. The model files submitted
beside the notebook are read before the kernel starts (:func:`submitted_model_files`)
and handed to the judge, which grades those bytes whatever the student's code does
to the files meanwhile.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import DeduplicateIds, Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_locked, is_solution
from traitlets import Bool, Dict, Float, Integer, Unicode

from course.grading import judge as judge_module
from course.grading.sandbox import OS_LIMITS

KERNEL_DIED = "The kernel died while running this cell (a crash, os._exit, or too much memory)."
MIB = 2**20
# A write past the sandbox's RLIMIT_FSIZE fails with this error in the student's cell (course/grading/sandbox.py).
FILE_TOO_LARGE = "[Errno 27] File too large"
FILE_SIZE_LIMIT = f"{OS_LIMITS.max_file_bytes / MIB:g} MiB"
# The kernel messages that become outputs, or state nbclient keeps (widgets): what the output caps count.
KEPT_MESSAGES = ("stream", "display_data", "execute_result", "error", "update_display_data")


class CappedKernelClient(AsyncKernelClient):
    """jupyter_client's kernel client whose sockets refuse a message over ``max_message_bytes`` (ZMQ_MAXMSGSIZE).

    ZeroMQ checks a message's size from its header, before it holds the message:
    a larger one never reaches this process's memory. It then closes that connection
    for good (a protocol error), losing what the kernel sends after it:
    :class:`CrashTolerantExecute` connects the output channel again."""

    max_message_bytes = 8 * MIB
    # Messages ZeroMQ holds for this process before it reads them (ZMQ_RCVHWM; 1000 by default): a
    # kernel printing faster than nbclient reads filled 1000 x 1 MiB. The kernel drops what does not
    # fit (its PUB socket never waits): at most max_message_bytes x queued_messages held.
    queued_messages = 32

    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        context.setsockopt(zmq.RCVHWM, self.queued_messages)
        return context


def _size(value: Any, depth: int = 0) -> int:
    """About how many bytes a decoded message's content takes: the lengths of its strings, keys included."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return len(value)
    if depth > 64:
        return 0
    if isinstance(value, dict):
        return sum(len(str(k)) + _size(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_size(v, depth + 1) for v in value) + len(value)
    return 8


def cell_time_limit(timeout: int | None, by_assignment: dict[str, int], assignment: str | None) -> int | None:
    """The cell time limit for ``assignment``: ``timeout`` (``Execute.timeout``; ``None`` is no limit), or the
    assignment's own limit in ``by_assignment`` where that is shorter."""
    own = by_assignment.get(assignment or "")
    if own is None or own <= 0:
        return timeout
    return own if timeout is None else min(timeout, own)


class CrashTolerantExecute(Execute):
    """nbgrader's ``Execute``, except that a dead kernel fails the cells from the crash on, not the submission,
    and that the outputs kept from the kernel are capped."""

    interrupt_grace = Float(
        10.0, help="Seconds a cell past the time limit has to stop after its interrupt before the kernel is killed "
                   "(Python stops at its next bytecode; a TensorFlow step ends within a second or two).",
    ).tag(config=True)
    max_message_bytes = Integer(
        8 * MIB, help="The largest message read from the kernel; a larger one is dropped, unread.",
    ).tag(config=True)
    max_cell_output_bytes = Integer(
        16 * MIB, help="Outputs kept for one cell; past it, the cell's outputs are cut.",
    ).tag(config=True)
    max_output_bytes = Integer(
        64 * MIB, help="Outputs kept for the whole notebook; past it, every cell's outputs are cut.",
    ).tag(config=True)
    timeout_by_assignment = Dict(
        key_trait=Unicode(), value_trait=Integer(), default_value={},
        help="A shorter cell time limit (seconds) for these assignments, e.g. those that train nothing: a looping "
             "cell there holds its grading slot this long instead of ``timeout``. The smaller of the two applies.",
    ).tag(config=True)
    # nbgrader raises, and abandons the notebook, when a cell's outputs stop before the kernel says it is idle:
    # that is what a dropped message (max_message_bytes) does. Here the cell keeps what arrived and says so.
    raise_on_iopub_timeout = Bool(False).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._crashed_at: int | None = None
        self._killed_message: str | None = None
        self._output_bytes = 0
        self._cell_bytes = 0
        self._cut = False
        self._idle = True
        self._assignment = ((resources or {}).get("nbgrader") or {}).get("assignment")
        return super().preprocess(nb, resources, km)

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        return cell_time_limit(super()._get_timeout(cell), self.timeout_by_assignment,
                               getattr(self, "_assignment", None))

    def create_kernel_manager(self) -> Any:
        km = super().create_kernel_manager()
        km.client_factory = type("CappedKernelClient", (CappedKernelClient,),
                                 {"max_message_bytes": self.max_message_bytes})
        return km

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int) -> NotebookNode | None:
        kind = msg["msg_type"]
        content = msg.get("content") or {}
        if kind == "status" and content.get("execution_state") == "idle":
            self._idle = True
        elif kind == "clear_output":  # what was cleared is no longer kept
            self._output_bytes -= self._cell_bytes
            self._cell_bytes, self._cut = 0, False
        elif kind in KEPT_MESSAGES or kind.startswith("comm_"):
            if self._cut:
                return None
            size = _size(content) + sum(len(b) for b in msg.get("buffers") or [])
            if kind == "update_display_data":  # it replaces every output shown with that id, in every cell
                display = (content.get("transient") or {}).get("display_id")
                size *= max(1, sum(len(i) for i in self._display_id_map.get(display, {}).values()))
            if self._cell_bytes + size > self.max_cell_output_bytes or self._output_bytes + size > self.max_output_bytes:
                if not self._cut:
                    self._cut = True
                    limit = (f"{self.max_cell_output_bytes / MIB:g} MiB in this cell"
                             if self._cell_bytes + size > self.max_cell_output_bytes
                             else f"{self.max_output_bytes / MIB:g} MiB in the notebook")
                    self.log.warning("Output of cell %d cut at %s.", cell_index, limit)
                    cell.outputs.append(NotebookNode(output_type="stream", name="stderr",
                                                     text=f"[output truncated: more than {limit}]\n"))
                return None
            self._cell_bytes += size
            self._output_bytes += size
        return super().process_message(msg, cell, cell_index)

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> dict[str, Any] | None:
        # nbgrader interrupts the kernel and hands nbclient a "CellTimeoutError" reply at once;
        # nbclient then fails the whole notebook if the kernel does not go idle within seconds.
        reply = await super()._async_handle_timeout(timeout, cell)
        try:
            kernel_reply = await ensure_async(self.kc.shell_channel.get_msg(timeout=self.interrupt_grace))
        except Empty:
            self.log.error("The cell ignored the interrupt for %g s: killing the kernel.", self.interrupt_grace)
            await ensure_async(self.km.shutdown_kernel(now=True))
            self._killed_message = (f"Stopped: this cell ran past the {timeout} s time limit and went on "
                                    f"{self.interrupt_grace:g} s after being interrupted, so its kernel was killed.")
            raise DeadKernelError("Kernel killed") from None
        return reply or kernel_reply

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type != "code":
            return cell, resources
        if self._crashed_at is None:
            self._cell_bytes, self._cut, self._idle = 0, False, False
            try:
                cell, resources = super().preprocess_cell(cell, resources, index)
                if not self._idle:  # the kernel said it was done, its outputs did not: a message was dropped
                    self._lost_output(cell, index)
                if any(o.get("output_type") == "error" and str(o.get("evalue", "")).startswith(FILE_TOO_LARGE)
                       for o in cell.outputs):
                    self.log.warning("Cell %d hit the file size limit (%s).", index, FILE_SIZE_LIMIT)
                return cell, resources
            except DeadKernelError:
                self._crashed_at = index
                self.log.warning("The kernel died in cell %d; that cell and the ones after it fail.", index)
                message = self._killed_message or KERNEL_DIED
        else:
            message = f"Not run: the kernel died in an earlier cell (cell {self._crashed_at})."
        cell.outputs.append(NotebookNode(output_type="error", ename="KernelDied", evalue=message, traceback=[f"KernelDied: {message}"]))
        return cell, self.resources


    def _lost_output(self, cell: NotebookNode, index: int) -> None:
        """Say that part of this cell's output was lost, and connect the output channel again."""
        self.log.warning("Output of cell %d lost: a message over %g MiB, or output after the cell ended.", index,
                         self.max_message_bytes / MIB)
        cell.outputs.append(NotebookNode(
            output_type="stream", name="stderr",
            text=f"[output lost: a message over {self.max_message_bytes / MIB:g} MiB, or output after the cell ended]\n"))
        run_sync(self._async_reconnect_iopub)()

    async def _async_reconnect_iopub(self, timeout: float = 30.0) -> None:
        """A new output channel, once it receives: the kernel's status for a request sent after it connected."""
        kc = self.kc
        kc.iopub_channel.close()
        kc._iopub_channel = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = kc.kernel_info()
            until = time.monotonic() + 1.0
            while (left := until - time.monotonic()) > 0:
                try:
                    message = await ensure_async(kc.iopub_channel.get_msg(timeout=left))
                except Empty:
                    break
                if message.get("parent_header", {}).get("msg_id") == msg_id:
                    return
        self.log.error("The kernel's output channel did not come back within %g s.", timeout)


class DeduplicateGradeIds(DeduplicateIds):
    """nbgrader's ``DeduplicateIds`` (the last copy of a cell keeps the ``grade_id``), leaving no empty metadata.

    nbgrader 0.9.6 empties the earlier copies' ``nbgrader`` metadata to ``{}``,
    and ``OverwriteCells.add_missing_task_cells`` then fails on the missing
    ``grade_id`` key; removing the key makes the copies plain cells.
    """

    def preprocess_cell(self, cell: NotebookNode, resources: Any, cell_index: int) -> tuple[NotebookNode, Any]:
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.metadata.get("nbgrader") == {}:
            del cell.metadata["nbgrader"]
        return cell, resources


class DropUnknownGradeIds(NbGraderPreprocessor):
    """Make plain cells of cells whose ``grade_id`` the gradebook does not know for this notebook.

    A student who pastes a graded cell from another notebook (or edits its
    metadata) brings a ``grade_id`` nbgrader 0.9.6 cannot find, and it fails the
    whole notebook: 0 for the points earned. Such a cell is worth nothing, so its
    ``nbgrader`` metadata is dropped and the rest is graded as usual."""

    def preprocess(self, nb: NotebookNode, resources: Any) -> tuple[NotebookNode, Any]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            try:
                notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            known = {cell.name for cell in notebook.source_cells} | {cell.name for cell in notebook.grade_cells} \
                | {cell.name for cell in notebook.task_cells}
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id is not None and grade_id not in known:
                self.log.warning("Cell with unknown grade_id %r: graded as a plain cell.", grade_id)
                del cell.metadata["nbgrader"]
        return nb, resources


# The longest message read from the judge. Its outputs are capped (course/grading/judge.py: 100,000 characters
# printed, 10,000 of a value or an error) and its other messages are short, so a longer line means a
# broken judge: it is killed, and the cell fails as for a judge that stopped.
MAX_JUDGE_LINE = 4 * 2**20


# The model files a submission may hand the judge: at most this many, and this many bytes in all (this course's
# are 0.5-13 MB; 08's limit of 5,000,000 parameters is 20 MB). They cross the judge's stdin as base64.
MAX_SUBMITTED_FILES = 16
MAX_SUBMITTED_BYTES = 128 * MIB


def submitted_model_files(folder: Path, log: Any = None) -> dict[str, bytes | None]:
    """The ``*.keras`` files lying in ``folder`` itself: name -> bytes, read before the student's kernel starts.

    Only regular files are read (a link is skipped, never followed), in name order, up to
    :data:`MAX_SUBMITTED_FILES` and :data:`MAX_SUBMITTED_BYTES`; a file past either limit maps to ``None``,
    so that its test fails saying so rather than grading as if no file had been submitted. The hidden tests
    measure these bytes (:data:`course.grading.checks.SUBMITTED_FILES`), so a notebook that deletes, replaces
    or rewrites its model file while it runs changes nothing in its grade. Introduced for ``02_mnist_mlp``."""
    found: dict[str, bytes | None] = {}
    total = 0
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(".keras"))
    except OSError:
        return found
    for name in names:
        try:
            fd = os.open(Path(folder) / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # a link, or gone
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            continue
        with os.fdopen(fd, "rb") as file:
            kept = sum(data is not None for data in found.values())
            if kept >= MAX_SUBMITTED_FILES or total + info.st_size > MAX_SUBMITTED_BYTES:
                if log is not None:
                    log.warning("Not graded: the model file %s is past the grader's limits (%d files, %d MiB in all)",
                                name, MAX_SUBMITTED_FILES, MAX_SUBMITTED_BYTES // MIB)
                found[name] = None
                continue
            data = file.read(MAX_SUBMITTED_BYTES - total + 1)
            found[name] = data if total + len(data) <= MAX_SUBMITTED_BYTES else None  # it grew meanwhile
            total += len(data) if found[name] is not None else 0
    return found


class JudgeProcess:
    """The judge (``python -I -m course.grading.judge``), started beside a student's kernel and spoken to in JSON lines."""

    def __init__(self, argv: list[str], cwd: str, log: Any) -> None:
        self.process = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log = log
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while line := self.process.stdout.readline(MAX_JUDGE_LINE + 1):
            if len(line) > MAX_JUDGE_LINE:  # never from a judge that works: it caps what it sends
                self.process.kill()
                break
            self.lines.put(line)
        self.lines.put(None)

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        """The judge's next message; ``RuntimeError`` if it stopped or took longer than ``timeout`` seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except Empty:
            raise RuntimeError(f"the judge gave no answer within {timeout:g} s") from None
        if line is None:
            raise RuntimeError(f"the judge stopped (exit code {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.send({"op": "exit"})
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.process.kill()
            self.process.wait()


def judge_command(kernel_argv: list[str]) -> list[str]:
    """How to start the judge: ``python -I -m course.grading.judge``, inside the kernel's sandbox when it has one
    (the kernel's command up to its ``--``).

    Every Python here starts isolated (``-I``): the judge starts in the student's folder,
    and without ``-I`` a ``course/grading/sandbox.py`` placed there would run instead of ours,
    outside the sandbox."""
    judge = [sys.executable, "-I", "-m", "course.grading.judge"]
    if "course.grading.sandbox" not in kernel_argv or "--" not in kernel_argv:
        return judge
    launcher = kernel_argv[:kernel_argv.index("--") + 1]
    start = launcher.index("-m") if "-m" in launcher else 1
    if "-I" not in launcher[1:start]:
        launcher = [launcher[0], "-I", *launcher[1:]]
    return launcher + judge


class JudgedExecute(CrashTolerantExecute):
    """:class:`CrashTolerantExecute`, with every graded test cell judged outside the student's kernel.

    For a graded test cell, the judge (course/grading/judge.py) runs the whole cell, visible
    and hidden tests, fetching the notebook's names from the kernel as data; its
    outputs become the cell's outputs, which nbgrader grades. Then the kernel runs
    the cell's visible part only, so that names it defines exist for later cells;
    those outputs are dropped. Whatever the student's code prints, patches or
    registers in its kernel cannot reach the verdict.

    Under ``course grade`` the judge runs in the same bubblewrap sandbox as the
    kernel (the kernel's own command, up to its ``--``)."""

    judge = Bool(True, help="Judge graded test cells outside the student's kernel (course/grading/judge.py).").tag(config=True)
    judge_timeout = Float(
        600.0, help="Seconds the judge may spend on one test cell, not counting the kernel's answers.",
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._judge: JudgeProcess | None = None
        self._judge_launched = self._judge_ready = False
        self._judge_failed: str | None = None  # why the notebook's judge stopped, once it has
        self._judged: dict[int, list[NotebookNode]] = {}
        self._judge_imports = judge_module.notebook_imports(
            [cell.source for cell in nb.cells if cell.cell_type == "code" and is_locked(cell)
             and not is_grade(cell) and not is_solution(cell)],
            tests=[cell.source for cell in nb.cells if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)])
        path = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
        # Before the kernel starts: the files as submitted, whatever the notebook does to them.
        self._submitted = submitted_model_files(Path(path), self.log)
        self._exchange = Path(tempfile.mkdtemp(prefix=".course-judge-", dir=path))
        try:
            nb, resources = super().preprocess(nb, resources, km)
            # Only the judge writes a judged cell's outputs: put them back in case a kernel
            # message changed them later (an update_display_data aimed at a display id the
            # kernel opened while running the cell's visible part).
            for index, outputs in self._judged.items():
                nb.cells[index].outputs = [NotebookNode(dict(output)) for output in outputs]
            return nb, resources
        finally:
            if self._judge is not None:
                self._judge.close()
            shutil.rmtree(self._exchange, ignore_errors=True)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if self.judge and self._judge is None and not self._judge_launched and self._crashed_at is None:
            # Started now, the judge's imports (TensorFlow: seconds) overlap the notebook's first cells;
            # _judged_outputs waits for it to be ready at the first graded test cell.
            self._judge_launched = True
            try:
                self._judge = self._launch_judge()
            except (RuntimeError, OSError, ValueError) as error:
                self.log.error("The judge did not start: %s", error)
        if not (self.judge and cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)) \
                or self._crashed_at is not None:
            return super().preprocess_cell(cell, resources, index)
        self._kernel_state = "ok"
        if judge_module.BEGIN_HIDDEN in cell.source:
            # From the first hidden test on, the kernel may hold its inputs: no display it opened earlier may be
            # updated any more (the feedback shows the earlier cells' outputs, course/grading/feedback.py).
            self._display_id_map.clear()
        outputs = self._judged_outputs(cell.source)
        if self._kernel_state == "dead":
            self._crashed_at = index
            self.log.warning("The kernel died in cell %d; that cell and the ones after it fail.", index)
        elif self._kernel_state == "ok":
            visible = NotebookNode(dict(cell, source=judge_module.visible_source(cell.source), outputs=[]))
            super().preprocess_cell(visible, resources, index)
        self.clear_display_id_mapping(index)  # no later display update may touch this cell
        cell.outputs = [NotebookNode(output) for output in outputs]
        self._judged[index] = [NotebookNode(dict(output)) for output in outputs]
        self.nb.cells[index] = cell  # nbclient put the visible copy in its place
        return cell, self.resources

    # -- the judge
    def _launch_judge(self) -> JudgeProcess:
        """Start the judge and send it ``init``; its ``ready`` is read by :meth:`_ready_judge`."""
        kernel_argv = list(getattr(self.km, "kernel_spec", None) and self.km.kernel_spec.argv or [])
        judge = JudgeProcess(judge_command(kernel_argv), str(self._exchange.parent), self.log)
        judge.send({"op": "init", "exchange": str(self._exchange), "imports": self._judge_imports,
                    "submitted": {name: None if data is None else base64.b64encode(data).decode("ascii")
                                  for name, data in self._submitted.items()}})
        self._judge_ready = False
        return judge

    def _ready_judge(self) -> JudgeProcess:
        """The judge, started if need be, once it has said ``ready``."""
        if self._judge is None:
            self._judge = self._launch_judge()
        if not self._judge_ready:
            ready = self._judge.receive(timeout=self.judge_timeout)
            if ready.get("failed_imports"):
                self.log.warning("The judge could not run these imports: %s", ready["failed_imports"])
            self._judge_ready = True
        return self._judge

    def _judged_outputs(self, source: str) -> list[dict[str, Any]]:
        if self._judge_failed is not None:
            # No second judge: a new one would not know what the tests before it saw (that hidden tests had run,
            # the networks a build function built), and a student could stop the first on purpose to reset it.
            message = (f"Not judged: the grader's judge stopped in an earlier test cell ({self._judge_failed}), "
                       "and the tests after it are not run.")
            return [{"output_type": "error", "ename": "GraderError", "evalue": message, "traceback": [message]}]
        try:
            self._ready_judge()
            self._judge.send({"op": "cell", "source": source})
            while True:
                message = self._judge.receive(timeout=self.judge_timeout)
                if message.get("op") == "result":
                    return message["outputs"]
                if message.get("op") == "kernel":
                    status, text = self._kernel_request(str(message["dir"]))
                    self._judge.send({"op": "reply", "status": status, "message": text})
        except (RuntimeError, OSError, ValueError) as error:
            self.log.error("The judge failed: %s", error)
            self._judge_failed = str(error)[:500]
            if self._judge is not None:
                self._judge.process.kill()
                self._judge = None
            message = f"The grader could not run this test ({error})."
            return [{"output_type": "error", "ename": "GraderError", "evalue": message, "traceback": [message]}]

    def _kernel_request(self, folder: str) -> tuple[str, str]:
        """Have the kernel answer the judge's request in ``folder``: ``(status, message)``."""
        if self._kernel_state != "ok":
            return self._kernel_state, "the notebook's kernel is no longer available"
        if not folder.startswith(str(self._exchange) + os.sep):
            return "error", "a request outside the exchange folder"
        code = f"__import__('course.grading.wire', fromlist=['handle']).handle({folder!r})"
        status, text = run_sync(self._async_kernel_request)(code)
        if status in ("timeout", "dead"):
            self._kernel_state = status
        return status, text

    async def _async_kernel_request(self, code: str) -> tuple[str, str]:
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False)
        limit = self._get_timeout(None) or 600
        reply = await self._async_reply(msg_id, float(limit))
        if reply is not None:
            content = reply["content"]
            if content.get("status") == "ok":
                return "ok", ""
            return "error", f"the kernel could not answer ({content.get('ename')}: {content.get('evalue')})"[:2000]
        if not await ensure_async(self.km.is_alive()):
            return "dead", self._killed_message or KERNEL_DIED
        await ensure_async(self.km.interrupt_kernel())
        self.log.error("Timeout waiting for execute reply (%ds): the code a test called.", limit)
        if await self._async_reply(msg_id, self.interrupt_grace) is not None:
            return "timeout", f"the notebook's code ran past the {limit} s time limit and was interrupted"
        self.log.error("The code called by the test ignored the interrupt for %g s: killing the kernel.",
                       self.interrupt_grace)
        await ensure_async(self.km.shutdown_kernel(now=True))
        self._killed_message = (f"Stopped: the code this test called ran past the {limit} s time limit and went on "
                                f"{self.interrupt_grace:g} s after being interrupted, so its kernel was killed.")
        return "dead", self._killed_message

    async def _async_reply(self, msg_id: str, timeout: float) -> dict[str, Any] | None:
        """The kernel's reply to ``msg_id``, or ``None`` after ``timeout`` seconds or when the kernel dies."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(1.0, remaining)))
            except Empty:
                if not await ensure_async(self.km.is_alive()):
                    return None
                continue
            if message.get("parent_header", {}).get("msg_id") == msg_id:
                return message
        return None
