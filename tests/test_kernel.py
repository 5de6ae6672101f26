"""course.grading.kernel: the grader's kernel keeps its error messages under the grader's message cap."""

import json
import sys

from course.grading import kernel


def test_an_error_message_is_cut_to_size_and_says_so():
    content = {"status": "error", "ename": "ValueError", "evalue": "w" * 50_000, "traceback": ["a", "w" * 30_000],
               "execution_count": 3}
    cut = kernel.capped(content)
    assert cut["evalue"] == "w" * kernel.MAX_ERROR_CHARS + "... [30,000 more characters cut by the grader]"
    assert cut["traceback"] == ["a", "w" * kernel.MAX_ERROR_CHARS + "... [10,000 more characters cut by the grader]"]
    assert (cut["status"], cut["ename"], cut["execution_count"]) == ("error", "ValueError", 3)
    assert content["evalue"] == "w" * 50_000  # the original is left alone


def test_a_long_traceback_keeps_its_first_and_last_lines():
    lines = [f"frame {n}" for n in range(250)]
    cut = kernel.capped({"traceback": lines})["traceback"]
    half = kernel.MAX_TRACEBACK_LINES // 2
    assert cut == lines[:half] + ["... [150 traceback lines cut by the grader]"] + lines[-half:]


def test_messages_without_an_error_pass_unchanged():
    reply = {"status": "ok", "execution_count": 1, "user_expressions": {}, "payload": []}
    assert kernel.capped(reply) is reply
    assert kernel.capped(None) is None


def test_the_kernel_sends_a_huge_exception_as_a_reply_under_the_graders_cap(tmp_path, monkeypatch):
    """A 64 MB exception message, raised in a cell of a kernel started like the grader's: both the error output
    and the cell's reply arrive, small (the grader drops a message over 8 MiB unread)."""
    from jupyter_client.manager import start_new_kernel

    spec = tmp_path / "kernels" / "capped"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "course.grading.kernel", "-f", "{connection_file}"], "display_name": "capped",
        "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    manager, client = start_new_kernel(kernel_name="capped")
    try:
        msg_id = client.execute('raise ValueError("w" * 64_000_000)')
        reply = client.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error"
        assert len(json.dumps(reply["content"])) < 200_000
        assert reply["content"]["evalue"].endswith("... [63,980,000 more characters cut by the grader]")
        while (message := client.get_iopub_msg(timeout=30))["msg_type"] != "error":
            pass
        assert len(json.dumps(message["content"])) < 200_000
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
