"""course.grading.sandbox: the kernel `course grade` runs students' code in."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course.grading import sandbox
from course.grading.preprocessors import CrashTolerantExecute

ROOT = Path(__file__).resolve().parents[1]


def test_command_hides_then_exposes_only_what_the_kernel_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    monkeypatch.setattr(sandbox, "readable_inside", lambda: [Path("/opt/python")])
    monkeypatch.setattr(sandbox, "helpers_checkout", lambda: [tmp_path / "checkout"])
    workdir = tmp_path / "scratch" / "ann" / "work"
    workdir.mkdir(parents=True)
    (workdir / "01_images.ipynb").write_text("{}")
    (workdir / "photo.png").write_text("")
    connection = tmp_path / "kernel-1.json"
    connection.write_text(json.dumps({"transport": "ipc", "ip": "/tmp/ck-1/kernel"}))
    kernel = ["python", "-m", "ipykernel_launcher", "-f", str(connection)]
    environ = {"PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "secret", "COURSE_BUDGET": "grading", "JPY_PARENT_PID": "1"}
    command = sandbox.bwrap_command(kernel, workdir, hide=[tmp_path / "course", tmp_path / "scratch"], environ=environ)
    assert command == [
        "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--cap-drop", "ALL", "--unshare-net",
        "--clearenv", "--setenv", "PATH", "/usr/bin", "--setenv", "COURSE_BUDGET", "grading",
        "--setenv", "HOME", str(tmp_path / "home"),
        "--tmpfs", str(tmp_path / "home"), "--tmpfs", str(tmp_path / "checkout"),
        "--tmpfs", str(tmp_path / "course"), "--tmpfs", str(tmp_path / "scratch"),
        "--ro-bind", "/opt/python", "/opt/python",
        "--bind", "/tmp/ck-1", "/tmp/ck-1",
        "--ro-bind", str(connection), str(connection),
        "--bind", str(workdir), str(workdir),
        "--ro-bind", "/dev/null", str(workdir / "01_images.ipynb"),
        "--chdir", str(workdir), "--", *kernel,
    ]
    # A kernel on TCP (plain nbgrader) keeps the network; the judge (no connection file) has none.
    connection.write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1"}))
    assert "--unshare-net" not in sandbox.bwrap_command(kernel, workdir, hide=[], environ=environ)
    assert "--unshare-net" in sandbox.bwrap_command(["python", "-m", "course.grading.judge"], workdir, hide=[], environ=environ)


def test_a_kernel_on_ipc_reaches_no_network_no_secret_and_not_bwraps_arguments(tmp_path, monkeypatch):
    import socket as sockets
    import tempfile

    from traitlets.config import Config

    workdir = tmp_path / "ann"
    workdir.mkdir()
    sandbox.write_kernelspec(tmp_path / "jupyter", hide=[tmp_path / "course"])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("INSTRUCTOR_TOKEN", "hunter2")
    listener = sockets.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    runtime = tempfile.mkdtemp(prefix="ck-", dir="/tmp")
    config = Config()
    config.KernelManager.transport, config.KernelManager.ip = "ipc", f"{runtime}/kernel"
    code = ("import os, socket\n"
            "print(os.environ.get('INSTRUCTOR_TOKEN'))\n"
            "s = socket.socket()\ns.settimeout(3)\n"
            f"print(s.connect_ex(('127.0.0.1', {port})) != 0)\n"
            "print(open('/proc/1/cmdline').read().replace(chr(0), ' '))")
    notebook = new_notebook(cells=[new_code_cell(code)])
    try:
        NotebookClient(notebook, timeout=30, kernel_name=sandbox.KERNEL_NAME, config=config,
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        listener.close()
    secret, refused, cmdline = notebook.cells[0].outputs[0].text.strip().split("\n")
    assert (secret, refused) == ("None", "True")
    assert cmdline.startswith("bwrap --args ") and str(tmp_path / "course") not in cmdline


def test_kernelspec_starts_this_python_through_the_sandbox(tmp_path):
    sandbox.write_kernelspec(tmp_path, hide=[Path("/srv/course")])
    spec = json.loads((tmp_path / "kernels" / sandbox.KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-I", "-m", "course.grading.sandbox", "--hide=/srv/course", "--",
                            sys.executable, "-m", "course.grading.kernel", "-f", "{connection_file}"]
    assert spec["interrupt_mode"] == "message"


def test_a_course_package_in_the_students_folder_never_replaces_the_launchers(tmp_path):
    """The kernel's and the judge's launchers start in the student's folder: a `course/grading/sandbox.py`
    submitted (or written by the kernel) there must not run in place of ours, outside the sandbox."""
    import subprocess

    from course.grading.preprocessors import judge_command

    marker = tmp_path / "ESCAPED"
    fake = tmp_path / "student" / "course"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    for name in ("sandbox.py", "judge.py"):
        (fake / name).write_text(f"open({str(marker)!r}, 'w').write('outside the sandbox')\n")
    sandbox.write_kernelspec(tmp_path / "jupyter", hide=[tmp_path / "course"])
    kernel = json.loads((tmp_path / "jupyter" / "kernels" / sandbox.KERNEL_NAME / "kernel.json").read_text())["argv"]
    launcher = kernel[:kernel.index("--") + 1]
    for command in (launcher + ["true"], judge_command(kernel)[:-4] + [sys.executable, "-I", "-c", "import course.grading.judge"]):
        subprocess.run(command, cwd=tmp_path / "student", capture_output=True, timeout=120)
    assert not marker.exists()


def test_student_code_in_the_sandboxed_kernel_reaches_only_its_own_folder(tmp_path, monkeypatch):
    course, scratch = tmp_path / "course", tmp_path / "scratch"
    (course / "source").mkdir(parents=True)
    (course / "gradebook.db").write_text("hidden tests")
    (scratch / "bob").mkdir(parents=True)
    (scratch / "bob" / "work.ipynb").write_text("another student")
    workdir = scratch / "ann"
    workdir.mkdir()
    (workdir / "graded.ipynb").write_text("hidden tests")
    sandbox.write_kernelspec(tmp_path / "jupyter", hide=[course, scratch])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    def run(code: str) -> str:
        return f"try:\n    {code}\n    print('allowed')\nexcept OSError as error:\n    print(type(error).__name__)"

    notebook = new_notebook(cells=[
        new_code_cell(run(f"open({str(course / 'gradebook.db')!r}).read()")),
        new_code_cell(run(f"open({str(scratch / 'bob' / 'work.ipynb')!r}, 'a').write('x')")),
        new_code_cell(run("open('graded.ipynb').read()")),
        new_code_cell(run(f"open({str(Path(sys.prefix) / 'pyvenv-test.txt')!r}, 'w')")),
        new_code_cell(run("open('answer.txt', 'w').write('42')")),
        new_code_cell("import course.data\nprint(course.data.__name__)"),
        new_code_cell("while True:\n    pass"),
        new_code_cell("print('still running')"),
    ])
    client = NotebookClient(notebook, timeout=5, kernel_name=sandbox.KERNEL_NAME, allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(workdir)}})
    client.execute()
    printed = ["".join(o.get("text", "") for o in c.outputs).strip() for c in notebook.cells]
    assert printed[:6] == ["FileNotFoundError", "FileNotFoundError", "PermissionError", "OSError", "allowed", "course.data"]
    assert [o.ename for o in notebook.cells[6].outputs if o.output_type == "error"] == ["KeyboardInterrupt"]
    assert printed[7] == "still running"
    assert (workdir / "answer.txt").read_text() == "42"
    assert (scratch / "bob" / "work.ipynb").read_text() == "another student"
    assert not (Path(sys.prefix) / "pyvenv-test.txt").exists()
    nbformat.validate(notebook)


def test_a_sandboxed_kernel_that_ignores_its_interrupt_is_killed_with_everything_inside(tmp_path, monkeypatch):
    workdir = tmp_path / "ann"
    workdir.mkdir()
    sandbox.write_kernelspec(tmp_path / "jupyter", hide=[tmp_path / "course"])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = new_notebook(cells=[
        new_code_cell("import subprocess, time\nchild = subprocess.Popen(['sleep', '600'])"),
        new_code_cell("while True:\n    try:\n        time.sleep(0.1)\n    except:\n        pass"),
    ])
    executor = CrashTolerantExecute(timeout=3, interrupt_grace=2, kernel_name=sandbox.KERNEL_NAME)
    executed, _ = executor.preprocess(notebook, {"metadata": {"path": str(workdir)}})
    assert [o.ename for o in executed.cells[1].outputs] == ["KernelDied"]
    time.sleep(1)
    left = []
    for process in psutil.process_iter():
        try:
            if Path(process.cwd()) == workdir:
                left.append(process.cmdline())
        except psutil.Error:
            pass
    assert left == []


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A grader's folder holding a secret, and a student's folder ``work/alice/01`` shaped to reach it."""
    grader = tmp_path / "grader"
    (grader / "source").mkdir(parents=True)
    (grader / "source" / "secret.ipynb").write_text("hidden tests")
    folder = grader / "work" / "alice" / "01"
    folder.mkdir(parents=True)
    (folder / "01.ipynb").write_text("graded notebook")
    (folder / "model.keras").write_bytes(b"\x00model")
    (folder / "notes.txt").write_text("scratch")
    (folder / "linked.ipynb").symlink_to(grader / "source" / "secret.ipynb")
    (folder / "source").symlink_to(grader / "source")
    os.mkfifo(folder / "pipe.ipynb")  # opening it to read would block
    (folder / "folder.ipynb").mkdir()
    (folder / "scratch").mkdir()
    (folder / "scratch" / "inner.ipynb").write_text("inner")
    return grader, folder


def test_copy_back_takes_only_wanted_regular_files_and_reports_links_and_special_files(tmp_path):
    grader, _ = _workspace(tmp_path)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(grader / "work" / "alice" / "01" / "kernel.sock"))
    try:
        problems = sandbox.copy_files(grader, "work/alice/01", tmp_path / "out", patterns=("*.ipynb", "*.keras"))
    finally:
        server.close()
    assert problems == ["skipped work/alice/01/folder.ipynb: a folder",
                        "skipped work/alice/01/kernel.sock: a socket",
                        "skipped work/alice/01/linked.ipynb: a symlink",
                        "skipped work/alice/01/pipe.ipynb: a FIFO",
                        "skipped work/alice/01/source: a symlink"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01.ipynb", "model.keras"]
    assert (tmp_path / "out" / "model.keras").read_bytes() == b"\x00model"


def test_copy_in_takes_every_regular_file_and_real_folder_but_no_link(tmp_path):
    grader, _ = _workspace(tmp_path)
    problems = sandbox.copy_files(grader, "work/alice/01", tmp_path / "in", recurse=True)
    assert problems == ["skipped work/alice/01/linked.ipynb: a symlink",
                        "skipped work/alice/01/pipe.ipynb: a FIFO",
                        "skipped work/alice/01/source: a symlink"]
    copied = sorted(str(p.relative_to(tmp_path / "in")) for p in (tmp_path / "in").rglob("*"))
    assert copied == ["01.ipynb", "folder.ipynb", "model.keras", "notes.txt", "scratch", "scratch/inner.ipynb"]
    assert not any("hidden tests" in p.read_text() for p in (tmp_path / "in").rglob("*") if p.is_file()
                   and p.suffix != ".keras")


def test_a_link_on_the_way_to_the_folder_is_not_followed(tmp_path):
    grader, _ = _workspace(tmp_path)
    (grader / "submitted").mkdir()
    (grader / "submitted" / "bob").symlink_to(grader / "work" / "alice")  # bob's folder is alice's
    (grader / "submitted" / "carol").mkdir()
    (grader / "submitted" / "carol" / "01").symlink_to(grader / "source")
    assert sandbox.copy_files(grader, "submitted/bob/01", tmp_path / "bob") == ["skipped submitted/bob: a symlink"]
    assert sandbox.copy_files(grader, "submitted/carol/01", tmp_path / "carol") == ["skipped submitted/carol/01: a symlink"]
    assert sandbox.copy_files(grader, "submitted/dave/01", tmp_path / "dave") == [
        "skipped submitted/dave: No such file or directory"]
    assert not (tmp_path / "bob").exists() and not (tmp_path / "carol").exists()


def test_copies_stop_at_the_size_and_count_limits_and_a_sparse_file_is_not_expanded(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    with open(folder / "a_huge.keras", "wb") as f:
        f.truncate(64 * 2**30)  # sparse: 64 GiB that take no disk
    (folder / "b.ipynb").write_bytes(b"x" * 2**20)  # exactly the limit
    (folder / "c.ipynb").write_text("c")
    (folder / "d.ipynb").write_text("d")
    limits = sandbox.Limits(max_file_bytes=2**20, max_files=2)
    problems = sandbox.copy_files(tmp_path, "work", tmp_path / "out", patterns=("*.ipynb", "*.keras"), limits=limits)
    assert problems == ["skipped work/a_huge.keras: larger than 1 MiB", "skipped work/d.ipynb: more than 2 files"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.ipynb", "c.ipynb"]
    assert (tmp_path / "out" / "b.ipynb").stat().st_size == 2**20
    total = sandbox.Limits(max_total_bytes=2**20 + 1)
    assert sandbox.copy_files(tmp_path, "work", tmp_path / "again", patterns=("*.ipynb",), limits=total) == [
        "skipped work/d.ipynb: more than 1 MiB in all"]


def test_the_launcher_sets_os_limits_that_the_sandboxed_code_inherits(tmp_path):
    """A write past the file-size limit fails in the student's code (EFBIG: CPython ignores SIGXFSZ) and the
    process lives on; no core dumps; the task backstop is the uid's tasks now plus the headroom."""
    import subprocess

    code = ("import resource\n"
            "print(*(resource.getrlimit(getattr(resource, 'RLIMIT_' + n))[0] for n in ('FSIZE', 'CORE', 'NPROC')))\n"
            "f = open('big.bin', 'wb')\n"
            "try:\n    f.write(b'x' * 2**21)\n    f.flush()\nexcept OSError as error:\n    print(error.errno, error.strerror)\n"
            "print('alive')")
    launcher = [sys.executable, "-I", "-m", "course.grading.sandbox", f"--hide={tmp_path / 'course'}",
                "--max-file-bytes=1048576", "--task-headroom=100", "--"]
    before = sandbox.tasks_of(os.getuid())
    done = subprocess.run(launcher + [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    limits, efbig, alive = done.stdout.splitlines()
    file_bytes, core_bytes, tasks = map(int, limits.split())
    assert (file_bytes, core_bytes) == (2**20, 0)
    assert before + 100 - 20 <= tasks <= before + 100 + 20  # other tasks on this machine come and go
    assert (efbig, alive) == ("27 File too large", "alive")
    assert (tmp_path / "big.bin").stat().st_size == 2**20
    assert sandbox.OS_LIMITS.max_file_bytes == sandbox.wire.MAX_FILE_BYTES  # what the judge reads still fits
    refused = subprocess.run([sys.executable, "-I", "-m", "course.grading.sandbox", "--max-file-bytes=lots", "--", "true"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and refused.stderr.startswith("usage:")


def test_the_helpers_checkout_is_hidden_wherever_the_course_folder_is(tmp_path, monkeypatch):
    # Run from this checkout (an editable install): its source notebooks hold solutions and hidden tests.
    assert sandbox.helpers_checkout() == [ROOT.resolve()]
    installed = tmp_path / "site-packages" / "course"
    installed.mkdir(parents=True)
    monkeypatch.setattr(sandbox.course, "__file__", str(installed / "__init__.py"))
    assert sandbox.helpers_checkout() == []  # an installed package: nothing more to hide
    (tmp_path / "site-packages" / "pyproject.toml").write_text("")
    assert sandbox.helpers_checkout() == [tmp_path / "site-packages"]


def test_the_ram_backed_folders_are_tmp_dev_home_and_the_hidden_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    monkeypatch.setattr(sandbox, "helpers_checkout", lambda: [tmp_path / "checkout"])
    assert sandbox.tmpfs_folders([tmp_path / "course", tmp_path / "checkout"]) == [
        "/tmp", "/dev", str(tmp_path / "home"), str(tmp_path / "checkout"), str(tmp_path / "course")]
    command = sandbox.bwrap_command(["python"], tmp_path, hide=[tmp_path / "course"], environ={})
    mounted = [command[i + 1] for i, a in enumerate(command) if a in ("--tmpfs", "--dev")]
    assert sorted(mounted) == sorted(sandbox.tmpfs_folders([tmp_path / "course"]))


def test_system_v_shared_memory_and_queues_are_capped_in_a_namespace_of_the_sandboxs_own(tmp_path):
    """As root, a 64 MiB segment fits, a second one does not (64 MiB in all), nor does a 65 MiB one, and the
    17th message queue fails (ENOSPC 28, EINVAL 22); the machine's own limits are untouched. Not as root, the
    grading log says these are not capped."""
    import subprocess

    code = ("import ctypes\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def shm(size):\n"
            "    got = libc.shmget(0, ctypes.c_size_t(size), 0o1600)\n"
            "    return 'ok' if got >= 0 else ctypes.get_errno()\n"
            "print(shm(65 * 2**20), shm(64 * 2**20), shm(2**20))\n"
            "queues = [libc.msgget(0, 0o1600) for _ in range(17)]\n"
            "print(sum(q >= 0 for q in queues), ctypes.get_errno())")
    launcher = [sys.executable, "-I", "-m", "course.grading.sandbox", f"--hide={tmp_path / 'course'}", "--"]
    done = subprocess.run(launcher + [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert open("/proc/sys/kernel/msgmni").read().strip() != "16"
    if os.getuid() != 0:
        assert "System V shared memory and message queues are not capped here" in done.stderr
        return
    assert done.stdout.splitlines() == ["22 ok 28", "16 28"]


def test_the_sandboxs_tasks_and_memory_are_capped_by_cgroups_of_its_own(tmp_path):
    """As root where cgroup v1's pids and memory controllers are writable (these machines): with a cap of 40
    tasks, 60 sleeps cannot all start (the launcher, bwrap and Python's own are tasks too); with 256 MiB of
    memory, 200 MiB in /tmp (RAM) and 100 MiB more in the process are killed by the OS. The cgroups go once
    their tasks are gone. Elsewhere the grading log says the watcher alone caps these."""
    import subprocess
    import uuid

    name = f"test-{uuid.uuid4().hex[:12]}"
    code = ("import subprocess\n"
            "started = []\n"
            "for _ in range(60):\n"
            "    try:\n        started.append(subprocess.Popen(['sleep', '30']))\n"
            "    except OSError as error:\n        print(len(started), error.errno, flush=True)\n        break\n"
            "for process in started:\n    process.kill()\n    process.wait()\n"
            "with open('/tmp/filler', 'wb') as filler:\n    filler.write(bytes(200 * 2**20))\n"
            "print('in /tmp', flush=True)\n"
            "block = bytearray(100 * 2**20)\n"
            "print('survived')")
    launcher = [sys.executable, "-I", "-m", "course.grading.sandbox", f"--hide={tmp_path / 'course'}", f"--cgroup={name}",
                "--max-tasks=40", f"--max-memory-bytes={256 * 2**20}", "--"]
    try:
        done = subprocess.run(launcher + [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        oom_kills, pids_max = sandbox.oom_kills(name), sandbox.cgroup_folder("pids", name) / "pids.max"
        pids_max = pids_max.read_text().strip() if pids_max.exists() else None
    finally:
        sandbox.remove_cgroups(name)
    if not os.access(sandbox.cgroup_folder("pids", "x").parents[1], os.W_OK):
        assert "no writable pids or memory cgroup here" in done.stderr
        return
    started, errno, in_tmp = done.stdout.split()[:3] + [""] * max(0, 3 - len(done.stdout.split()))
    assert 20 < int(started) < 40 and int(errno) == 11 and in_tmp == "in" and "survived" not in done.stdout, done
    assert done.returncode == 137  # bwrap reports its child killed by SIGKILL
    assert (pids_max, oom_kills) == ("40", 1)
    assert not sandbox.cgroup_folder("pids", name).exists() and not sandbox.cgroup_folder("memory", name).exists()


def test_leftover_cgroups_of_long_ended_sandboxes_are_swept(tmp_path, monkeypatch):
    """An empty cgroup folder unchanged for ten minutes goes; a young one (a run setting up) and one
    that refuses rmdir (it still holds a task; here, a file) stay."""
    monkeypatch.setattr(sandbox, "_own_cgroup", lambda controller: tmp_path / controller)
    old = time.time() - 3600
    for controller in ("pids", "memory"):
        for name in ("ended", "young", "busy"):
            sandbox.cgroup_folder(controller, name).mkdir(parents=True)
        (sandbox.cgroup_folder(controller, "busy") / "task").write_text("1")
        for name in ("ended", "busy"):
            os.utime(sandbox.cgroup_folder(controller, name), (old, old))
    assert sandbox.sweep_cgroups() == ["pids/ended", "memory/ended"]
    for controller in ("pids", "memory"):
        assert sorted(p.name for p in (tmp_path / controller / sandbox.TASK_CGROUPS).iterdir()) == ["busy", "young"]
    assert sandbox.sweep_cgroups(older_than_seconds=0) == ["pids/young", "memory/young"]
    monkeypatch.setattr(sandbox, "_own_cgroup", lambda controller: tmp_path / "none" / controller)
    assert sandbox.sweep_cgroups() == []  # no cgroup hierarchy: nothing to do, no error
