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

It also abandons a submission holding a copied cell (its ``grade_id`` twice)
once deleted test cells are put back (``OverwriteCells.add_missing_cells``):
:class:`DeduplicateGradeIds` fixes that.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from nbclient.exceptions import DeadKernelError
from nbclient.util import ensure_async
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import DeduplicateIds, Execute
from traitlets import Float

KERNEL_DIED = "The kernel died while running this cell (a crash, os._exit, or too much memory)."


class CrashTolerantExecute(Execute):
    """nbgrader's ``Execute``, except that a dead kernel fails the cells from the crash on, not the submission."""

    interrupt_grace = Float(
        30.0, help="Seconds a cell past the time limit has to stop after its interrupt before the kernel is killed.",
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._crashed_at: int | None = None
        self._killed_message: str | None = None
        return super().preprocess(nb, resources, km)

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
            try:
                return super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                self._crashed_at = index
                self.log.warning("The kernel died in cell %d; that cell and the ones after it fail.", index)
                message = self._killed_message or KERNEL_DIED
        else:
            message = f"Not run: the kernel died in an earlier cell (cell {self._crashed_at})."
        cell.outputs.append(NotebookNode(output_type="error", ename="KernelDied", evalue=message, traceback=[f"KernelDied: {message}"]))
        return cell, self.resources


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
