"""course.grading.cluster: grading on Dask workers gives the grades and notebooks the local pool gives.

The same 01 samples are graded three ways: by the local pool, by a ``LocalCluster``,
and by a ``dask scheduler`` with two ``course worker`` processes this module starts on
127.0.0.1 and stops by PID. Then: a worker killed mid-task, an unreachable scheduler,
a scheduler without grading workers, workers that differ from the client, and a
student kernel that tries the scheduler's port.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask
import psutil
import pytest

from course.grading import batch, cluster, layout, sandbox
from test_batch import _course  # a copy of the course with only these 01 samples submitted

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_images"
# reads_instructor_files looks for gradebooks, source and other students' notebooks from its working
# folder up and in every process's: on a worker, the other tasks' folders must be hidden too. It solves every
# exercise as the reference does (full marks: the work of the `correct` sample, which is left out).
SAMPLES = ["partly_wrong", "kernel_crash", "reads_instructor_files"]
PYTHON_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def _notebooks(root: Path) -> dict[str, dict]:
    """Each student's autograded notebook as JSON, without what differs between any two runs: the cells'
    execution times, the name of the scratch folder 01's setup cell makes (``tempfile.mkdtemp``), where
    a cell's printed text was cut into messages (it arrives as it is flushed), and the ids of the cells
    a sample inserts (new in each copy of the course)."""
    notebooks = {}
    for path in sorted((root / "autograded").glob(f"*/{ASSIGNMENT}/*.ipynb")):
        text = re.sub(r"/tmp/01_images_\w{8}", "/tmp/01_images_XXXXXXXX", path.read_text())
        notebook = json.loads(text)
        for cell in notebook["cells"]:
            cell["metadata"].pop("execution", None)
            if "nbgrader" not in cell["metadata"]:  # a cell a sample inserts gets a new id in each course copy
                cell.pop("id", None)
            _coalesce_streams(cell)
            if path.parent.parent.name == "kernel_crash":  # whether the cell that kills its kernel got a count first
                cell.pop("execution_count", None)          # is the kernel's own race, in any two runs
        notebooks[path.parent.parent.name] = notebook
    return notebooks


def _coalesce_streams(cell: dict) -> None:
    outputs: list[dict] = []
    for output in cell.get("outputs", []):
        if (outputs and output["output_type"] == "stream" and outputs[-1]["output_type"] == "stream"
                and outputs[-1]["name"] == output["name"]):
            outputs[-1] = {**outputs[-1], "text": "".join(outputs[-1]["text"]) + "".join(output["text"])}
        else:
            outputs.append(output if output["output_type"] != "stream" else {**output, "text": "".join(output["text"])})
    if "outputs" in cell:
        cell["outputs"] = outputs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            for member in tree:
                with contextlib.suppress(psutil.Error):
                    member.kill()
            psutil.wait_procs(tree, timeout=10)


@contextlib.contextmanager
def _scheduler_and_workers(folder: Path, workers: int = 2):
    """``dask scheduler`` on 127.0.0.1 (a lost task comes back at once) and ``workers`` ``course worker`` processes
    of one slot each; yields the address and the worker processes (the scheduler file is folder/scheduler.json);
    stops them all by PID."""
    port = _free_port()
    # The workers' temporary folder outside /tmp (which the sandbox replaces with its own): each task's folder
    # there must be hidden from the other tasks' kernels by the worker itself.
    temporary = Path(tempfile.mkdtemp(prefix="course-cluster-test-", dir="/var/tmp"))
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0", PATH=f"{PYTHON_BIN}:{os.environ['PATH']}",
               TMPDIR=str(temporary))
    started: list[subprocess.Popen] = []
    try:
        scheduler = subprocess.Popen([str(PYTHON_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                      "--no-dashboard", "--scheduler-file", str(folder / "scheduler.json")], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(folder / "scheduler.log", "wb"))
        started.append(scheduler)
        _wait_for_port(port, scheduler)
        address = f"tcp://127.0.0.1:{port}"
        for number in range(workers):
            started.append(subprocess.Popen(
                [str(PYTHON_BIN / "course"), "worker", address, "--slots", "1", "--datasets", "",
                 "--", "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{number}"],
                env=env, cwd=folder, stdout=open(folder / f"worker{number}.log", "wb"), stderr=subprocess.STDOUT))
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, started[1:]
    finally:
        _stop(started)
        shutil.rmtree(temporary, ignore_errors=True)


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory):
    """The samples graded by the local pool, a LocalCluster, and a scheduler with two `course worker`s."""
    from distributed import LocalCluster

    results = {}
    folder = tmp_path_factory.mktemp("local")
    root = _course(folder, SAMPLES)
    results["local"] = (root, batch.grade(root, [ASSIGNMENT], jobs=2))
    folder = tmp_path_factory.mktemp("localcluster")
    root = _course(folder, SAMPLES)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, resources={cluster.RESOURCE: 1}, dashboard_address=None) as local:
        results["LocalCluster"] = (root, batch.grade(root, [ASSIGNMENT], scheduler=local.scheduler_address))
    folder = tmp_path_factory.mktemp("workers")
    root = _course(folder, SAMPLES)
    with _scheduler_and_workers(folder) as (address, _):
        results["workers"] = (root, batch.grade(root, [ASSIGNMENT], scheduler=address))
    return results


def test_a_cluster_gives_the_scores_and_notebooks_of_the_local_pool(three_ways):
    root, outcomes = three_ways["local"]
    scores = {o.student: (o.score, o.problems) for o in outcomes}
    assert scores == {"partly_wrong": (6, []), "kernel_crash": (2, ["the kernel died 1 time(s)"]),
                      "reads_instructor_files": (10, [])}
    notebooks = _notebooks(root)
    assert set(notebooks) == set(SAMPLES)
    found = [output["text"] for cell in notebooks["reads_instructor_files"]["cells"] for output in cell.get("outputs", [])
             if output.get("name") == "stdout" and "read:" in output["text"]]
    assert found == ["read: []\nwrote: []\n"]
    for way in ("LocalCluster", "workers"):
        other_root, other = three_ways[way]
        assert {o.student: (o.score, o.problems) for o in other} == scores, way
        assert _notebooks(other_root) == notebooks, way
        # The same rows; nbgrader exports them in the order the merges added the students.
        assert sorted((other_root / "grades.csv").read_text().splitlines()) == sorted(
            (root / "grades.csv").read_text().splitlines())
        assert sorted(p.name for p in (other_root / "feedback").glob(f"*/{ASSIGNMENT}/*.html")) == [
            f"{ASSIGNMENT}.html"] * len(SAMPLES)
        assert (other_root / "logs" / ASSIGNMENT / "kernel_crash.log").stat().st_size > 0


def test_a_worker_lost_mid_task_has_its_submission_graded_again_elsewhere(tmp_path, monkeypatch, capsys):
    root = _course(tmp_path, ["infinite_loop"])
    # Crosses to the worker with the task: the loop stops at 10 s, under 01's own 20 s limit (its slowest cell
    # takes 1-5 s), so that the test waits less; it waits twice, as the task is graded twice.
    monkeypatch.setenv("COURSE_CELL_TIMEOUT", "10")
    with _scheduler_and_workers(tmp_path) as (_, workers):
        def kill_the_grading_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                for worker in workers:
                    for process in psutil.Process(worker.pid).children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            if "course.grading.autograde" in process.cmdline():  # python -m course.grading.autograde: nbgrader, in a worker
                                # The Dask worker process running the task, and the grading it started: a machine lost.
                                grading = [process.parent(), process, *process.children(recursive=True)]
                                time.sleep(3)
                                for member in grading:
                                    with contextlib.suppress(psutil.Error):
                                        member.kill()
                                return
                time.sleep(0.2)

        import threading

        killer = threading.Thread(target=kill_the_grading_worker)
        killer.start()
        outcomes = batch.grade(root, [ASSIGNMENT], scheduler_file=str(tmp_path / "scheduler.json"))  # --scheduler-file
        killer.join()
    [outcome] = outcomes
    assert outcome.score == 8  # as graded locally: one cell stopped at the (here 10 s) cell time limit
    assert outcome.problems[0].startswith(f"{batch.LOST} (") and outcome.problems[0].endswith("; graded again on another")
    assert outcome.problems[1:] == ["1 cell(s) stopped at the 10 s cell time limit"]
    assert "its worker was lost mid-task" in capsys.readouterr().out


def test_an_unreachable_scheduler_is_a_clear_error_and_grades_nothing(tmp_path, monkeypatch):
    root = _course(tmp_path, ["correct"])
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2)
    with pytest.raises(SystemExit) as stopped:
        batch.grade(root, [ASSIGNMENT], scheduler=f"tcp://127.0.0.1:{_free_port()}")
    assert str(stopped.value).startswith(f"course grade: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert str(stopped.value).endswith("Nothing was graded.")
    assert not (root / "autograded").exists() and not (root / "grades.csv").exists()


def test_a_scheduler_without_grading_workers_or_with_different_ones_grades_nothing(tmp_path, monkeypatch):
    from distributed import LocalCluster

    root = _course(tmp_path, ["correct"])
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2)
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as plain:
        with pytest.raises(SystemExit) as stopped:
            batch.grade(root, [ASSIGNMENT], scheduler=plain.scheduler_address)
    assert "offers the 'grade' resource: start workers with `course worker SCHEDULER --slots N`" in str(stopped.value)
    with LocalCluster(n_workers=1, threads_per_worker=1, resources={cluster.RESOURCE: 1}, dashboard_address=None) as local:
        mine = cluster.versions()
        monkeypatch.setattr(cluster, "versions", lambda: {**mine, "nbgrader": "0.0.1"})
        with pytest.raises(SystemExit) as stopped:
            batch.grade(root, [ASSIGNMENT], scheduler=local.scheduler_address)
    assert re.search(r"the worker tcp://127\.0\.0\.1:\d+ differs from this machine: .*nbgrader 0\.0\.1 here, 0\.9\.6 there",
                     str(stopped.value)), stopped.value
    assert not (root / "autograded").exists() and not (root / "grades.csv").exists()


def test_a_worker_with_other_versions_grades_nothing_and_says_why():
    task = cluster.Task(ASSIGNMENT, "ann", {"submitted": "submitted"}, b"", b"", (), 60, 1, True, {},
                        {**cluster.versions(), "keras": "2.0.0"}, "stop")
    result = cluster.run_task(task)
    assert set(result) == {"fault"}
    assert re.fullmatch(r"worker on .+ differs from the client: keras 2\.0\.0 here, \S+ there", result["fault"])


def test_a_task_holds_no_path_of_the_client_machine_and_no_link(tmp_path):
    root = _course(tmp_path, ["correct"])
    folder = root / "submitted" / "correct" / ASSIGNMENT
    (folder / "secret").symlink_to(ROOT / "nbgrader_config.py")
    where = layout.read(root)
    task, problems = cluster.pack(where, ASSIGNMENT, "correct", where.gradebook_file.read_bytes(), 60, 1, True, "stop",
                                  cluster.versions())
    assert problems == [f"skipped submitted/correct/{ASSIGNMENT}/secret: a symlink"]
    assert [name for name, _ in task.files] == [f"{ASSIGNMENT}.ipynb", "timestamp.txt"]
    assert task.files[0][1] == (folder / f"{ASSIGNMENT}.ipynb").read_bytes()
    for value in (task.config, task.gradebook, *(content for _, content in task.files)):
        assert str(tmp_path).encode() not in value
    assert str(tmp_path) not in repr({k: v for k, v in task.__dict__.items() if not isinstance(v, bytes)})


@pytest.mark.parametrize("relative", ["../x", "/etc/passwd", "a/../../x", "", ".", "a//b", "a\0b"])
def test_files_back_from_a_worker_stay_inside_their_folder(tmp_path, relative):
    base = tmp_path / "base"
    assert cluster._write_files(base, [(relative, b"x"), ("ok/a\\b.keras", b"y")]) == [
        f"skipped {relative!r}: not a plain relative path"]
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == ["base/ok/a\\b.keras"]


def test_a_result_for_another_submission_is_refused(tmp_path):
    where = layout.Layout(tmp_path, tmp_path)
    result = {"outcome": {"assignment": ASSIGNMENT, "student": "../bob", "seconds": 1.0}, "gradebook": None,
              "autograded": [], "log": b""}
    with pytest.raises(ValueError, match=r"the worker sent back 01_images/\.\./bob for 01_images/ann"):
        cluster.receive(tmp_path, tmp_path / "scratch", result, where, ASSIGNMENT, "ann")
    assert not (tmp_path / "scratch").exists() and not (tmp_path / "logs").exists()


@pytest.mark.parametrize("planted", ["link", "open", "file"])
def test_a_tasks_folder_someone_else_could_reach_is_refused(tmp_path, monkeypatch, planted):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = tmp_path / f"course-tasks-{os.getuid()}"
    if planted == "link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    elif planted == "open":
        folder.mkdir()
        folder.chmod(0o777)
    else:
        folder.write_text("")
    with pytest.raises(RuntimeError, match="is not a folder of this user's alone"):
        cluster._machines_folders()


def test_the_tasks_folder_is_made_private(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cluster._machines_folders() == [tmp_path / f"course-tasks-{os.getuid()}"]
    assert (tmp_path / f"course-tasks-{os.getuid()}").stat().st_mode & 0o777 == 0o700


def test_course_worker_checks_the_machine_then_becomes_dask_worker_with_every_other_option(monkeypatch):
    from course.grading import cli, preflight

    checked, started = [], []
    monkeypatch.setattr(preflight, "check_machine", lambda datasets, sandboxed, hidden: checked.append((datasets, sandboxed)))
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))
    monkeypatch.delenv(cluster.SLOTS_VARIABLE, raising=False)
    cli.main(["worker", "tls://10.0.0.1:8786", "--slots", "3", "--datasets", "mnist", "--",
              "--tls-ca-file", "ca.pem", "--tls-cert", "w.pem", "--tls-key", "w.key", "--host", "10.0.0.2"])
    assert checked == [(["mnist"], True)]
    assert started[0][1:] == ["worker", "tls://10.0.0.1:8786", "--nworkers", "3", "--nthreads", "1", "--resources",
                              "grade=1", "--tls-ca-file", "ca.pem", "--tls-cert", "w.pem", "--tls-key", "w.key",
                              "--host", "10.0.0.2"]
    assert os.environ[cluster.SLOTS_VARIABLE] == "3"


def test_no_sandbox_never_goes_to_a_cluster(capsys):
    from course.grading import cli

    with pytest.raises(SystemExit):
        cli.main(["--root", str(ROOT), "grade", ASSIGNMENT, "--no-sandbox", "--scheduler", "tcp://127.0.0.1:1"])
    assert "--no-sandbox cannot go to a Dask cluster" in capsys.readouterr().err


def test_a_student_kernel_cannot_reach_the_scheduler(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None, host="127.0.0.1") as local:
        port = int(local.scheduler_address.rsplit(":", 1)[1])
        probe = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n    print('reached')\n"
                 "except OSError as error:\n    print('refused', type(error).__name__)")
        outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        inside = subprocess.run([sys.executable, "-m", "course.grading.sandbox", f"--hide={ROOT}", "--", sys.executable, "-c", probe],
                                capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert outside.stdout == "reached\n"
    assert inside.stdout.startswith("refused"), inside.stdout + inside.stderr


def test_course_worker_refuses_to_start_where_the_sandbox_cannot_run(tmp_path):
    result = subprocess.run([str(PYTHON_BIN / "course"), "worker", "tcp://127.0.0.1:1", "--datasets", ""],
                            env=dict(os.environ, PATH=str(tmp_path)), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"course worker: this machine cannot grade: {sandbox.INSTALL_HINT}. Nothing was graded."


def test_ctrl_c_kills_what_the_workers_are_grading_and_merges_nothing(tmp_path):
    root = _course(tmp_path, ["infinite_loop"])
    with _scheduler_and_workers(tmp_path, workers=1) as (address, _):
        script = ("import sys; from pathlib import Path; from course.grading import batch; "
                  f"batch.grade(Path({str(root)!r}), [{ASSIGNMENT!r}], scheduler={address!r})")
        course = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, COURSE_CELL_TIMEOUT="600"))
        me = psutil.Process()

        def grading() -> list[psutil.Process]:
            found = []
            for process in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if process.pid != course.pid and "course.grading.autograde" in process.cmdline():
                        found.append(process)
            return found

        deadline = time.monotonic() + 120
        while not grading() and time.monotonic() < deadline:
            time.sleep(0.2)
        [nbgrader] = grading()  # under the `course worker`, not under `course grade`
        kernel = nbgrader.children(recursive=True)
        time.sleep(5)  # the kernel is looping
        course.send_signal(signal.SIGINT)
        out, err = course.communicate(timeout=60)
        gone, alive = psutil.wait_procs([nbgrader, *kernel], timeout=15)
    assert course.returncode == 130, err
    assert alive == []
    assert err.strip().endswith("Stopped by SIGINT: 0 of 1 submissions graded and merged into gradebook.db; the other 1 "
                                "were not merged (1 killed while being graded). Feedback and grades.csv were not updated: "
                                "run the same `course grade` with --only-new to go on.")
    assert not (root / "autograded").exists() and not (root / "grades.csv").exists()
