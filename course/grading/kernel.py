"""The student's kernel as ``course grade`` starts it: ipykernel, whose error messages fit the grader's cap.

The grader reads no kernel message over 8 MiB (``CappedKernelClient`` in
course/grading/preprocessors.py): ZeroMQ refuses it unread and drops that connection. The
output channel is connected again; the channel that carries a cell's reply is
not, so a reply that size would leave the grader waiting for it until the cell's
time limit, then kill the kernel, and every exercise after it would be lost.
ipykernel puts an exception's whole message into the reply (``evalue``, and again
in the traceback), so ``raise ValueError("w" * 64_000_000)`` in a student's
function, as in the sample ``01_images huge_exception``, did exactly that.

Here every ``error`` message and ``execute_reply`` leaves the kernel with its
``evalue`` and traceback cut to :data:`MAX_ERROR_CHARS` characters and
:data:`MAX_TRACEBACK_LINES` lines, saying so. The cut is made in the kernel, a
process the student controls, so it protects the student's own later exercises,
nothing else: code that undoes it can only lose its own points.

    python -m course.grading.kernel -f CONNECTION_FILE      (as ``python -m ipykernel_launcher``)
"""

from __future__ import annotations

from typing import Any

MAX_ERROR_CHARS = 20_000
MAX_TRACEBACK_LINES = 100
CAPPED_MESSAGES = ("error", "execute_reply")


def _cut(text: Any, limit: int = MAX_ERROR_CHARS) -> Any:
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit:,} more characters cut by the grader]"


def capped(content: Any) -> Any:
    """``content`` of an ``error`` or ``execute_reply`` message, with its error fields cut to size."""
    if not isinstance(content, dict) or ("evalue" not in content and "traceback" not in content):
        return content
    content = dict(content)
    if "evalue" in content:
        content["evalue"] = _cut(content["evalue"])
    if "ename" in content:
        content["ename"] = _cut(content["ename"], 1000)
    traceback = content.get("traceback")
    if isinstance(traceback, list):
        lines = [_cut(line) for line in traceback]
        if len(lines) > MAX_TRACEBACK_LINES:
            half = MAX_TRACEBACK_LINES // 2
            lines = lines[:half] + [f"... [{len(lines) - 2 * half:,} traceback lines cut by the grader]"] + lines[-half:]
        content["traceback"] = lines
    return content


def main() -> None:
    import sys

    if sys.path and sys.path[0] == "":  # as ipykernel_launcher: the shell puts the folder back (init_path)
        del sys.path[0]
    from ipykernel import kernelapp
    from jupyter_client.session import Session

    send = Session.send

    def capped_send(self: Session, stream: Any, msg_or_type: Any, content: Any = None, *args: Any, **kwargs: Any):
        if isinstance(msg_or_type, str) and msg_or_type in CAPPED_MESSAGES:
            content = capped(content)
        return send(self, stream, msg_or_type, content, *args, **kwargs)

    Session.send = capped_send
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
