"""course/grading/forkwatch.py counts a sandbox's processes in the sandbox's own /proc, and only there.

(Its fork-bomb kill, end to end, is in tests/test_batch.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from course.grading import forkwatch, sandbox


def _first_child(process: subprocess.Popen, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = forkwatch.children_of(process.pid)
        if children and os.path.exists(f"/proc/{children[0]}/ns/pid"):
            return children[0]
        time.sleep(0.02)
    raise AssertionError("the child never started")


def test_a_new_pid_namespace_that_still_sees_the_machines_proc_is_not_counted():
    """The moment between a sandbox's new PID namespace and its own /proc: /proc/<first>/root/proc is then the
    machine's, which lists every process on the machine. Counted there, a busy machine (more than ``MAX`` processes
    of its own) got a kernel killed as it started; here ``unshare --pid`` stands for that moment, for good."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare")
    command = ["unshare", "--pid", "--fork", "--kill-child", "sleep", "30"]  # the sleep ends with unshare
    if os.geteuid() != 0:
        command[1:1] = ["--user", "--map-root-user"]
    process = subprocess.Popen(command)
    try:
        _first_child(process)
        machine = sum(name.isdigit() for name in os.listdir("/proc"))
        assert machine > 3  # the machine's /proc would count past the limit below
        assert forkwatch.sandbox_processes(process.pid, 3) is None
    finally:
        process.kill()
        process.wait()


def test_a_sandbox_is_counted_in_its_own_proc():
    """bubblewrap's sandbox with three sleeping children: its namespace's processes, not the machine's."""
    if not sandbox.available():
        pytest.skip("needs bubblewrap")
    code = "import subprocess, time\nfor _ in range(3):\n    subprocess.Popen(['sleep', '30'])\ntime.sleep(30)"
    process = subprocess.Popen([sys.executable, "-I", "-m", "course.grading.sandbox", "--", sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        counted = None
        while time.monotonic() < deadline:
            counted = forkwatch.sandbox_processes(process.pid, 100)
            if counted is not None and counted[0] >= 5:
                break
            time.sleep(0.05)
        # bubblewrap's init in the namespace, the Python it runs, and its three children
        assert counted is not None and counted[0] == 5, counted
    finally:
        process.kill()
        process.wait()
