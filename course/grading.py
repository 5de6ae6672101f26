"""Autograding that gives each submission the points it earned, even when its kernel crashes.

Configured in ``nbgrader_config.py``. Stock nbgrader abandons a submission whose
kernel dies (``os._exit``, a segfault, the memory killer): "There was an error
processing assignment", and the student gets 0, even for the exercises solved
before the crash. :class:`CrashTolerantExecute` instead records the crash in
the cell where it happened and in every code cell after it (the kernel's state
is gone, so they cannot run), and nbgrader grades the notebook as usual.

It also abandons a submission holding a copied cell (its ``grade_id`` twice)
once deleted test cells are put back (``OverwriteCells.add_missing_cells``):
:class:`DeduplicateGradeIds` fixes that.
"""

from __future__ import annotations

from typing import Any

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import DeduplicateIds, Execute


class CrashTolerantExecute(Execute):
    """nbgrader's ``Execute``, except that a dead kernel fails the cells from the crash on, not the submission."""

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._crashed_at: int | None = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int) -> tuple[NotebookNode, Any]:
        if cell.cell_type != "code":
            return cell, resources
        if self._crashed_at is None:
            try:
                return super().preprocess_cell(cell, resources, index)
            except DeadKernelError:
                self._crashed_at = index
                self.log.warning("The kernel died in cell %d; that cell and the ones after it fail.", index)
                message = "The kernel died while running this cell (a crash, os._exit, or too much memory)."
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
