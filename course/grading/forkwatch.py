"""Stop a fork bomb in a student's sandbox within a fraction of a second: ``python -m course.grading.forkwatch PID MAX``.

``course grade`` (course/grading/batch.py) starts one watcher process beside each
nbgrader process it runs. The watcher counts the processes in the PID namespace
of each kernel sandbox under nbgrader (``PID``) every 0.02 s and, past ``MAX``,
kills that namespace's first process, which takes every process in the
namespace down with it. It prints one line per kill and ends when its standard
input closes (``course grade`` closes it once nbgrader has ended, or dies).

Why a process of its own: a fork bomb's thousands of runnable processes leave a
watcher at a normal priority waiting for a core while the bomb grows (measured:
3,585 processes before the kill, against 950 to 1,750 at a real-time priority).
At a real-time priority (SCHED_FIFO, as root) a watcher *thread* inside
``course grade`` starved that process's other threads of the GIL, so a looping
submission was never stopped at its wall-clock limit. Here the real-time
watcher has its own interpreter and sleeps between looks: nothing waits on it.

Only the standard library is imported: the watcher starts in about 0.05 s.
"""
from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from collections.abc import Callable

INTERVAL = 0.02  # seconds between looks


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid``, from ``/proc/<pid>/task/*/children``: no scan of every process on the
    machine, which a fork bomb makes slow."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
        except (OSError, ValueError):
            pass
    return found


def _count(proc: str, stop_after: int, counts: Callable[[str], bool]) -> int:
    """The numbered entries of ``proc`` that ``counts`` accepts, up to ``stop_after + 1``."""
    count = 0
    with os.scandir(proc) as entries:
        for entry in entries:
            if entry.name.isdigit() and counts(entry.name):
                count += 1
                if count > stop_after:
                    break
    return count


def _leads_its_thread_group(proc: str, name: str) -> bool:
    """Whether ``proc/name`` is a process (its ``Tgid`` is its own number), not one of a process's threads."""
    try:
        with open(f"{proc}/{name}/status") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return line.split()[1] == name
    except OSError:  # it ended meanwhile
        pass
    return False


def sandbox_processes(top: int, stop_after: int) -> tuple[int, int] | None:
    """``(count, first)``: how many processes (up to ``stop_after + 1``) the PID namespace of the sandbox whose
    bwrap is ``top`` holds, and that namespace's first process; None when ``top`` runs no sandbox.

    Counted in the sandbox's own ``/proc`` (through ``/proc/<first>/root``), which lists
    only that namespace: cheap however many processes the machine runs. Until the sandbox has
    mounted it (the first moments of its start, when its root is still the machine's), that path
    is the machine's own ``/proc``, listing every process on the machine: nothing is counted then
    (a busy grading machine's processes once got a kernel killed as it started)."""
    try:
        own = os.readlink("/proc/self/ns/pid")
        machines = os.stat("/proc").st_dev
    except OSError:
        return None
    for first in children_of(top):
        try:
            if os.readlink(f"/proc/{first}/ns/pid") == own:
                continue
            proc = f"/proc/{first}/root/proc"
            if os.stat(proc).st_dev == machines:  # not the sandbox's /proc yet
                return None
            count = _count(proc, stop_after, lambda name: True)
            if count > stop_after:  # a thread being started can be listed for a moment: count processes only
                count = _count(proc, stop_after, lambda name: _leads_its_thread_group(proc, name))
            return count, first
        except OSError:
            continue
    return None


def stop_fork_bombs(nbgrader: int, max_processes: int) -> bool:
    """Kill every kernel sandbox under ``nbgrader`` whose PID namespace holds more than ``max_processes``
    processes (the judge's sandbox is not looked at); whether one was killed."""
    killed = False
    for top in children_of(nbgrader):
        try:
            with open(f"/proc/{top}/cmdline", "rb") as cmdline:
                if b"course.grading.judge" in cmdline.read():
                    continue
        except OSError:
            continue
        counted = sandbox_processes(top, max_processes)
        if counted is not None and counted[0] > max_processes:
            # The namespace's first process ends the others as it exits, and it must run to exit: among a fork
            # bomb's thousands of runnable processes that took seconds while the bomb grew. As root it exits at
            # a real-time priority.
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setscheduler(counted[1], os.SCHED_FIFO, os.sched_param(1))
            for pid in (counted[1], top):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            killed = True
    return killed


def problem_line(max_processes: int) -> str:
    """The problem line ``course grade`` reports for a kernel killed by this watcher."""
    return f"kernel killed: more than {max_processes} processes"


def watch(nbgrader: int, max_processes: int) -> None:
    """Look every :data:`INTERVAL` seconds until standard input closes; print :func:`problem_line` once per kill."""
    with contextlib.suppress(OSError, AttributeError):  # root only; elsewhere it looks at a normal priority
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    while not select.select([sys.stdin], [], [], INTERVAL)[0]:
        if stop_fork_bombs(nbgrader, max_processes):
            print(problem_line(max_processes), flush=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
