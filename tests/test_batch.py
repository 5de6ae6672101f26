"""course.grading.batch: `course grade` grades a class in parallel, each submission in its own workspace.

Every sample submission's exact score through `course grade` is checked by
tests/test_pipeline.py (`course demo` grades with it); these tests cover the
limits, regrading, collecting and reporting, and that nothing a student leaves
behind reaches the instructor (links, special files, names inside zips), that
one student's failure is a line and not the batch's end, and that a signal stops
grading with no process left behind. Those last ones stub nbgrader out, so they
take seconds.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from course.grading import batch, cli, pipeline, sandbox

ROOT = Path(__file__).parents[1]
ASSIGNMENT = "01_images"


def _course(tmp_path: Path, only: list[str]) -> Path:
    root = tmp_path / "course"
    (root / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "source" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    shutil.copy(ROOT / "nbgrader_config.py", root)
    pipeline.release(root, ASSIGNMENT, capture=True)
    pipeline.submit_samples(root, ASSIGNMENT, ROOT / pipeline.SAMPLES_DIR)
    for student in {p.name for p in (root / "submitted").iterdir()} - set(only):
        shutil.rmtree(root / "submitted" / student)
    return root


def _grades(root: Path) -> dict[str, float]:
    with open(root / "grades.csv", newline="") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def looping(tmp_path_factory):
    """A class of two graded with a 30 s wall-clock limit: a correct submission (about 8 s) and one that loops
    forever."""
    with pytest.MonkeyPatch.context() as env:
        # Only the wall-clock limit may stop the loop: no cell limit shorter than it, neither
        # Execute.timeout nor 01's own 20 s (a cell limit as long as the wall-clock limit would race it).
        env.setenv("COURSE_CELL_TIMEOUT", "600")
        root = _course(tmp_path_factory.mktemp("batch"), only=["infinite_loop", "correct"])
        with open(root / "nbgrader_config.py", "a") as config:
            config.write("\nc.CrashTolerantExecute.timeout_by_assignment = {}\n")
        outcomes = {o.student: o for o in batch.grade(root, [ASSIGNMENT], jobs=2, wall_seconds=30)}
    return root, outcomes


def test_a_submission_past_its_wall_clock_limit_is_stopped_and_scored_zero(looping):
    root, outcomes = looping
    assert outcomes["infinite_loop"].score == 0 and not outcomes["infinite_loop"].graded
    assert outcomes["infinite_loop"].problems == ["stopped after the 30 s limit"]
    assert outcomes["infinite_loop"].seconds < 75
    assert outcomes["correct"].score == 10 and outcomes["correct"].problems == []
    assert _grades(root) == {"infinite_loop": 0.0, "correct": 10.0}
    assert list((root / "autograded" / "correct" / ASSIGNMENT).glob("*.ipynb"))
    assert list((root / "feedback" / "correct" / ASSIGNMENT).glob("*.html"))
    assert (root / "logs" / ASSIGNMENT / "infinite_loop.log").is_file()


def test_regrading_replaces_the_earlier_automatic_grades_and_keeps_the_instructors_own(looping, capsys):
    from nbgrader.api import Gradebook

    root, _ = looping
    database = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(database) as gradebook:  # what an instructor did in the Formgrader after the first run
        gradebook.find_grade("images_reshape_test", ASSIGNMENT, ASSIGNMENT, "correct").manual_score = 1.5
        gradebook.find_grade("images_split_channels_test", ASSIGNMENT, ASSIGNMENT, "correct").extra_credit = 0.5
        gradebook.find_comment("images_reshape", ASSIGNMENT, ASSIGNMENT, "correct").manual_comment = "see me"
        gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "correct").flagged = True
        gradebook.db.commit()
    shutil.rmtree(root / "submitted" / "infinite_loop")
    shutil.rmtree(root / "submitted" / "correct")
    shutil.copytree(ROOT / "release" / ASSIGNMENT, root / "submitted" / "correct" / ASSIGNMENT)  # now unsolved
    outcomes = batch.grade(root, [ASSIGNMENT], jobs=1)
    # Every automatic grade is now 0; the instructor's 1.5 and 0.5 stay, as nbgrader's autograde keeps them.
    assert [(o.student, o.score) for o in outcomes] == [("correct", 2)]
    assert _grades(root)["correct"] == 2
    with Gradebook(database) as gradebook:
        reshape = gradebook.find_grade("images_reshape_test", ASSIGNMENT, ASSIGNMENT, "correct")
        assert (reshape.auto_score, reshape.manual_score, reshape.needs_manual_grade) == (0, 1.5, True)
        channels = gradebook.find_grade("images_split_channels_test", ASSIGNMENT, ASSIGNMENT, "correct")
        assert (channels.auto_score, channels.manual_score, channels.extra_credit) == (0, None, 0.5)
        assert gradebook.find_comment("images_reshape", ASSIGNMENT, ASSIGNMENT, "correct").manual_comment == "see me"
        assert gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "correct").flagged
        other = gradebook.find_grade("images_open_as_array_test", ASSIGNMENT, ASSIGNMENT, "correct")
        assert (other.auto_score, other.manual_score, other.needs_manual_grade) == (0, None, False)
    out = capsys.readouterr().out
    # The first run's time for 01_images (logs/grading-times.json) gives an ETA from the start.
    assert re.search(r"Grading 1 submissions of 01_images with 1 worker\(s\)\.\.\. ETA [1-9]\d* s\n", out), out
    assert "[####################] 1/1  ETA 0 s          01_images        correct" in out
    timings = json.loads((root / "logs" / "grading-times.json").read_text())
    assert set(timings["assignments"]) == {ASSIGNMENT}
    # The loop stopped at the wall-clock limit is kept too: it goes first next time.
    assert set(timings["submissions"][ASSIGNMENT]) == {"correct", "infinite_loop"}
    assert timings["submissions"][ASSIGNMENT]["infinite_loop"] >= 30


def test_several_assignments_share_the_workers_and_each_gets_its_grades_and_feedback(tmp_path, capsys):
    root = _course(tmp_path, only=["correct", "empty"])
    again = "01_again"  # a second assignment: 01 under another name
    shutil.copytree(ROOT / "source" / ASSIGNMENT, root / "source" / again)
    pipeline.release(root, again, capture=True)
    shutil.copytree(root / "submitted" / "correct" / ASSIGNMENT, root / "submitted" / "correct" / again)
    outcomes = batch.grade(root, [ASSIGNMENT, again], jobs=2)
    assert [(o.assignment, o.student, o.score) for o in outcomes] == [
        (ASSIGNMENT, "correct", 10), (ASSIGNMENT, "empty", 0), (again, "correct", 10)]
    assert "Grading 3 submissions of 01_images, 01_again with 2 worker(s)..." in capsys.readouterr().out
    with open(root / "grades.csv", newline="") as f:
        scores = {(row["assignment"], row["student_id"]): float(row["score"]) for row in csv.DictReader(f) if row["timestamp"]}
    assert scores == {(ASSIGNMENT, "correct"): 10, (ASSIGNMENT, "empty"): 0, (again, "correct"): 10}
    assert list((root / "feedback" / "correct" / again).glob("*.html"))
    assert (root / "logs" / again / "correct.log").is_file()


def test_memory_limit_kills_the_processes_under_nbgrader_not_nbgrader():
    hog = "import numpy, time; blocks = [numpy.ones(2**27) for _ in range(4)]; time.sleep(60)"  # 4 GiB
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hog!r}]); print('parent lives')"],
                              stdout=subprocess.PIPE, text=True)
    outcome = batch.Outcome(ASSIGNMENT, "hog", 0.0)
    batch._watch_memory(parent, 1 * batch.GIB, outcome)
    assert parent.stdout.read() == "parent lives\n"
    assert outcome.problems == ["kernel killed at the 1 GiB memory limit"]


def test_the_judge_has_a_memory_limit_of_its_own_and_does_not_count_against_the_kernel():
    """Two children under one parent: a 'kernel' using 1.5 GiB and a 'judge' (its command names course.grading.judge)
    using 1.5 GiB; with a 2 GiB kernel limit and a 1 GiB judge limit only the judge is killed."""
    # Each holds its 1.5 GiB for 10 s: the watcher, which looks every 0.2 s, kills the judge within the first.
    hog = "import numpy, sys, time; block = numpy.ones(3 * 2**26); time.sleep(10); print('survived', flush=True)"
    script = ("import subprocess, sys\n"
              f"kernel = subprocess.Popen([sys.executable, '-c', {hog!r}])\n"
              f"judge = subprocess.Popen([sys.executable, '-c', {hog!r}, 'course.grading.judge'])\n"
              "print(kernel.wait(), judge.wait())")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    outcome = batch.Outcome(ASSIGNMENT, "big", 0.0)
    batch._watch_memory(parent, 2 * batch.GIB, outcome, judge_limit_bytes=1 * batch.GIB)
    assert parent.stdout.read().splitlines() == ["survived", "0 -9"]
    assert outcome.problems == ["the grader's checks stopped at their 1 GiB memory limit "
                                "(the values the tests read from the notebook are too large)"]


def _sandboxed(tmp_path: Path, code: str, then: str = "") -> subprocess.Popen[str]:
    """A parent (standing for nbgrader) that runs ``code`` in the sandbox, as a kernel, then prints 'parent lives'."""
    launcher = [sys.executable, "-I", "-m", "course.grading.sandbox", f"--hide={tmp_path / 'course'}", "--", sys.executable, "-c"]
    script = f"import subprocess\nsubprocess.run({launcher + [code]!r})\n{then}print('parent lives', flush=True)"
    return subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True)


def test_a_fork_bomb_is_killed_with_everything_in_its_sandbox_within_a_second(tmp_path):
    """A shell fork bomb, bounded here at 2**11 shells (and as many sleeps) should the watcher miss it. Watched by
    scanning every process at a normal priority, the unbounded one grew to the machine's 32768 pids and ran a minute;
    counted in the sandbox's own /proc at a normal priority, it reached 3585 of its 4095 processes before the kill.
    Now a watcher process of its own (course/grading/forkwatch.py) runs at a real-time priority (as root), counts the
    sandbox's namespace every 0.02 s, and the namespace's first process exits at a real-time priority, taking every
    process in it along."""
    bomb = "import subprocess\nsubprocess.run(['bash', '-c', 'f(){ if [ $1 -lt 10 ]; then f $(($1+1)) & f $(($1+1)) & fi; sleep 60; }; f 0'])"
    parent = _sandboxed(tmp_path, bomb)
    # The bomb's size, counted by a process of its own (a thread here could hold the watcher's GIL while starved).
    count = ("import contextlib, os, sys, time\n"
             "most = 0\n"
             f"while os.path.exists('/proc/{parent.pid}/cmdline') and open('/proc/{parent.pid}/stat').read().split()[2] != 'Z':\n"
             "    here = 0\n"
             "    for pid in os.listdir('/proc'):\n"
             "        with contextlib.suppress(OSError):\n"
             f"            here += os.readlink(f'/proc/{{pid}}/cwd') == {str(tmp_path)!r}\n"
             "    most = max(most, here)\n"
             "    time.sleep(0.02)\n"
             "print(most)")
    counter = subprocess.Popen([sys.executable, "-c", count], stdout=subprocess.PIPE, text=True)
    outcome = batch.Outcome(ASSIGNMENT, "bomb", 0.0)
    started = time.monotonic()
    batch._watch_memory(parent, 4 * batch.GIB, outcome)
    assert time.monotonic() - started < 10  # left alone, its shells sleep 60 s
    assert parent.stdout.read() == "parent lives\n"
    assert outcome.problems == [f"kernel killed: more than {batch.MAX_PROCESSES} processes"]
    most = int(counter.communicate(timeout=30)[0])
    # The problem line says the watcher counted more than 256; the counter, at a normal priority, sees less of it
    # (measured as root on an idle machine: 4 to 81 with the watcher process; 950 to 1750 with a real-time watcher
    # thread; 3585 with a thread at a normal priority, in CI).
    assert most < 2048
    left = [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == str(tmp_path)]
    assert left == []


def test_threads_have_a_limit_of_their_own(tmp_path):
    threads = "import threading, time\nfor _ in range(300):\n    threading.Thread(target=time.sleep, args=(120,)).start()"
    parent = _sandboxed(tmp_path, threads)
    outcome = batch.Outcome(ASSIGNMENT, "threads", 0.0)
    batch._watch_memory(parent, 4 * batch.GIB, outcome, max_processes=50, max_threads=200)
    assert parent.stdout.read() == "parent lives\n"
    assert outcome.problems == ["kernel killed: more than 200 threads"]


def test_files_in_the_sandboxes_in_memory_folders_count_against_its_memory_limit(tmp_path):
    """128 MiB in /tmp, 128 MiB in /dev/shm (two tmpfs, both counted) and 128 MiB in an anonymous in-memory file,
    with a 0.25 GiB limit: killed, though the process itself holds a few MiB. Outside a sandbox, /tmp is not the
    kernel's: nothing counted."""
    fill = ("import os, sys, time\n"
            "anonymous = os.memfd_create('hidden')\n"
            "for path in ('/tmp/a', '/dev/shm/b', anonymous):\n"
            "    with open(path, 'wb', closefd=path != anonymous) as f:\n"
            "        for _ in range(2):\n"
            "            f.write(bytes(2**26))\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)")
    parent = _sandboxed(tmp_path, fill)
    assert parent.stdout.readline() == "ready\n"
    outcome = batch.Outcome(ASSIGNMENT, "fills_tmp", 0.0)
    batch._watch_memory(parent, 0.25 * batch.GIB, outcome, tmpfs=sandbox.tmpfs_folders([tmp_path / "course"]))
    assert parent.stdout.read() == "parent lives\n"
    assert outcome.problems == ["kernel killed at the 0.25 GiB memory limit (files in memory, in /tmp and the like, "
                                "count in it: 0.4 GiB of them)"]
    assert batch._tmpfs_bytes([psutil.Process()], ["/tmp", "/dev"]) == 0


def test_the_workspace_has_a_disk_limit_that_counts_deleted_files_kept_open(tmp_path):
    """Two files of 40 MiB in the kernel's folder and one of 40 MiB deleted but kept open, with a 0.1 GiB limit."""
    fill = ("import os, time\n"
            "for name in ('a.bin', 'b.bin', 'c.bin'):\n"
            "    with open(name, 'wb') as f:\n"
            "        f.write(os.urandom(40 * 2**20))\n"
            "kept = open('c.bin', 'rb')\n"
            "os.remove('c.bin')\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)")
    parent = _sandboxed(tmp_path, fill)
    assert parent.stdout.readline() == "ready\n"
    assert 120 * 2**20 <= batch._disk_bytes(tmp_path, psutil.Process(parent.pid).children(recursive=True)) < 121 * 2**20
    assert batch._disk_bytes(tmp_path, [], max_entries=1) is None
    outcome = batch.Outcome(ASSIGNMENT, "fills_disk", 0.0)
    batch._watch_memory(parent, 4 * batch.GIB, outcome, disk=tmp_path, disk_limit_bytes=0.1 * batch.GIB)
    assert parent.stdout.read() == "parent lives\n"
    assert outcome.problems == ["kernel killed at the 0.1 GiB disk limit of its folder"]


def test_the_graders_own_process_has_a_memory_limit_and_past_it_the_submission_is_not_graded():
    grader = subprocess.Popen([sys.executable, "-c", "import time; block = bytearray(2**29); time.sleep(60)"])
    outcome = batch.Outcome(ASSIGNMENT, "prints", 0.0)
    batch._watch_memory(grader, 4 * batch.GIB, outcome, grader_limit_bytes=0.25 * batch.GIB)
    assert grader.wait() == -signal.SIGKILL and not outcome.graded
    assert outcome.problems == ["not graded: the grader's own process passed its 0.25 GiB memory limit "
                                "(the notebook's outputs are too large)"]


def test_zip_collect_moves_an_lms_download_into_submitted(tmp_path):
    root = _course(tmp_path, only=[])
    archive = root / "downloaded" / ASSIGNMENT / "archive"
    archive.mkdir(parents=True)
    release = (ROOT / "release" / ASSIGNMENT / "01_images.ipynb").read_bytes()
    with zipfile.ZipFile(archive / "download.zip", "w") as download:  # files named <student>_<notebook>
        download.writestr("alice_01_images.ipynb", release)
        download.writestr("bob-2_01_images.ipynb", release)
    batch.collect_zips(root, ASSIGNMENT)
    assert batch.students(root, ASSIGNMENT) == ["alice", "bob-2"]
    assert (root / "submitted" / "bob-2" / ASSIGNMENT / "01_images.ipynb").read_bytes() == release


def test_an_empty_lms_download_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="Nothing to collect: put the LMS download"):
        batch.collect_zips(tmp_path, ASSIGNMENT)


def test_without_bubblewrap_grading_refuses_unless_told_not_to_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "available", lambda: False)
    with pytest.raises(SystemExit, match="apt-get install bubblewrap"):
        batch.grade(tmp_path, [ASSIGNMENT])
    with pytest.raises(SystemExit, match="No submissions of 01_images"):  # gets past the check
        batch.grade(tmp_path, [ASSIGNMENT], sandboxed=False)


def test_summary_lists_each_assignments_distribution_and_problems():
    outcomes = [batch.Outcome("01_images", "a", 3.0, 10.0, 10.0),
                batch.Outcome("01_images", "b", 4.0, 0.0, 10.0, ["stopped after the 5 s limit"]),
                batch.Outcome("01_images", "c", 5.0, 6.0, 10.0),
                batch.Outcome("02_mnist_mlp", "a", 9.0, None, None, ["nbgrader failed (exit 1)"], graded=False)]
    assert batch.summary(outcomes) == ("01_images: 3 submissions; scores min 0, median 6, max 10\n"
                                       "  problem: b: stopped after the 5 s limit\n"
                                       "02_mnist_mlp: 1 submissions; none graded\n"
                                       "  problem: a: nbgrader failed (exit 1)")
    assert outcomes[1].line() == "01_images        b                              0/10      4 s  (stopped after the 5 s limit)"


def test_problems_in_the_log_are_cell_timeouts_and_kernel_deaths():
    log = ("[AutogradeApp | ERROR] Timeout waiting for execute reply (60s).\n"
           "[AutogradeApp | ERROR] Interrupting kernel\n"
           "[AutogradeApp | ERROR] Timeout waiting for execute reply (60s).\n"
           "[AutogradeApp | WARNING] The kernel died in cell 7; that cell and the ones after it fail.\n")
    assert batch.problems_in_log(log) == ["2 cell(s) stopped at the 60 s cell time limit", "the kernel died 1 time(s)"]
    assert batch.problems_in_log("[AutogradeApp | INFO] Writing 26242 bytes\n") == []
    swallowed = ("[AutogradeApp | ERROR] Timeout waiting for execute reply (60s).\n"
                 "[AutogradeApp | ERROR] The cell ignored the interrupt for 30 s: killing the kernel.\n"
                 "[AutogradeApp | WARNING] The kernel died in cell 9; that cell and the ones after it fail.\n")
    assert batch.problems_in_log(swallowed) == ["1 cell(s) stopped at the 60 s cell time limit",
                                                "a cell ignored its interrupt: kernel killed"]
    outputs = ("[AutogradeApp | WARNING] Output of cell 4 cut at 16 MiB in this cell.\n"
               "[AutogradeApp | WARNING] Output of cell 9 cut at 64 MiB in the notebook.\n"
               "[AutogradeApp | WARNING] Output of cell 7 lost: a message over 8 MiB, or output after the cell ended.\n"
               "[AutogradeApp | WARNING] Cell 35 hit the file size limit (1024 MiB).\n")
    assert batch.problems_in_log(outputs) == ["1 cell(s) could not write a file past the 1024 MiB file size limit",
                                              "the output of 2 cell(s) was cut at the output size limits",
                                              "the output of 1 cell(s) was lost (a message over 8 MiB)"]


def test_progress_bar():
    assert batch.progress_bar(0, 20) == "[....................]  0/20"
    assert batch.progress_bar(5, 20) == "[#####...............]  5/20"
    assert batch.progress_bar(3, 3, width=6) == "[######] 3/3"


def test_no_submissions_is_a_clear_error(tmp_path):
    root = tmp_path / "course"
    (root / "submitted").mkdir(parents=True)
    with pytest.raises(SystemExit, match="No submissions of 01_images"):
        batch.grade(root, [ASSIGNMENT])


# --- What a student leaves behind never reaches the instructor ---------------------------------

def _stub_nbgrader(monkeypatch, code: str = "pass") -> None:
    """grade_one runs ``python -c CODE`` instead of nbgrader."""
    monkeypatch.setattr(pipeline, "autograde_command", lambda *args: [sys.executable, "-c", code])


def _fake_course(tmp_path: Path, students: list[str]) -> Path:
    """A course folder for grading with nbgrader stubbed: a configuration, a gradebook file, submissions."""
    root = tmp_path / "course"
    (root / "source" / "A").mkdir(parents=True)
    (root / "source" / "A" / "A.ipynb").write_text("solutions and hidden tests")
    (root / "nbgrader_config.py").write_text("")
    (root / "gradebook.db").write_text("")
    for student in students:
        (root / "submitted" / student / "A").mkdir(parents=True)
        (root / "submitted" / student / "A" / "A.ipynb").write_text(f"{student}'s notebook")
    return root


def test_a_link_in_a_submission_brings_nothing_of_the_graders_into_the_workspace(tmp_path, monkeypatch):
    _stub_nbgrader(monkeypatch)
    root = _fake_course(tmp_path, ["alice"])
    submission = root / "submitted" / "alice" / "A"
    (submission / "solutions.ipynb").symlink_to(root / "source" / "A" / "A.ipynb")
    (submission / "source").symlink_to(root / "source")
    (submission / "data").mkdir()
    (submission / "data" / "x.csv").write_text("1,2")
    (root / "gradebook.db").write_text("")
    workdir = tmp_path / "scratch"
    workdir.mkdir()
    shutil.copy(root / "gradebook.db", workdir)
    outcome = batch.grade_one(root, "A", "alice", workdir, wall_seconds=60, sandboxed=False)
    assert outcome.graded and outcome.problems == ["skipped submitted/alice/A/solutions.ipynb: a symlink",
                                                   "skipped submitted/alice/A/source: a symlink"]
    copied = workdir / "A" / "alice" / "submitted" / "alice" / "A"
    assert sorted(str(p.relative_to(copied)) for p in copied.rglob("*")) == ["A.ipynb", "data", "data/x.csv"]


def test_a_submission_folder_that_is_a_link_is_not_graded(tmp_path, monkeypatch):
    _stub_nbgrader(monkeypatch, "raise SystemExit('nbgrader must not run')")
    root = _fake_course(tmp_path, [])
    (root / "submitted" / "mallory").mkdir(parents=True)
    (root / "submitted" / "mallory" / "A").symlink_to(root / "source" / "A")
    workdir = tmp_path / "scratch"
    workdir.mkdir()
    outcome = batch.grade_one(root, "A", "mallory", workdir, wall_seconds=60, sandboxed=False)
    assert not outcome.graded and outcome.problems == ["skipped submitted/mallory/A: a symlink"]
    assert not (workdir / "A" / "mallory" / "submitted" / "mallory" / "A").exists()


def test_merge_copies_back_only_the_assignments_notebooks_their_feedback_and_model_files(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "_merge_grades", lambda root, workspace, outcome: None)
    monkeypatch.setattr(batch, "assignment_notebooks", lambda db_url, assignment: ["A", "B[1]"])
    root, workspace = tmp_path / "course", tmp_path / "workspace"
    (root / "source").mkdir(parents=True)
    (root / "source" / "secret.txt").write_text("hidden tests")
    graded = workspace / "autograded" / "alice" / "A"
    graded.mkdir(parents=True)
    (graded / "A.ipynb").write_text("graded")
    (graded / "A.keras").write_bytes(b"model")
    (graded / "B[1].ipynb").write_text("graded too")
    (graded / "B1.ipynb").write_text("written by the student's code: no notebook of the assignment")
    (graded / "planted.ipynb").write_text("written by the student's code")
    (graded / "timestamp.txt").write_text("2026-01-01 12:00:00 UTC")
    (graded / "checkpoints").mkdir()
    (graded / "feedback.ipynb").symlink_to(root / "source" / "secret.txt")
    os.mkfifo(graded / "stuck.keras")
    (root / "autograded" / "alice" / "A").mkdir(parents=True)
    (root / "autograded" / "alice" / "A" / "old.ipynb").write_text("earlier grading")
    pages = workspace / "feedback" / "alice" / "A"
    pages.mkdir(parents=True)
    (pages / "A.html").write_text("feedback")
    (pages / "planted.html").write_text("no notebook of the assignment")
    (pages / "B[1].html").symlink_to(root / "source" / "secret.txt")
    (root / "feedback" / "alice" / "A").mkdir(parents=True)
    (root / "feedback" / "alice" / "A" / "old.html").write_text("earlier grading")
    outcome = batch.Outcome("A", "alice", 1.0)
    batch.merge(root, workspace, outcome)
    assert outcome.problems == ["skipped autograded/alice/A/feedback.ipynb: a symlink",
                                "skipped autograded/alice/A/stuck.keras: a FIFO",
                                "skipped feedback/alice/A/B[1].html: a symlink"]
    assert [p.name for p in (root / "feedback" / "alice" / "A").iterdir()] == ["A.html"]
    back = root / "autograded" / "alice" / "A"
    assert sorted(p.name for p in back.iterdir()) == ["A.ipynb", "A.keras", "B[1].ipynb"]
    assert all(stat.S_ISREG(p.lstat().st_mode) for p in back.iterdir())


def _stub_grading(monkeypatch, grade_one, merge=None) -> list[str]:
    """Replace grading by ``grade_one`` (and merging by ``merge``): what nbgrader would have done after, recorded."""
    ran: list[str] = []
    monkeypatch.setattr(batch, "_ensure_in_gradebook", lambda root, assignment, where: None)
    monkeypatch.setattr(batch, "grade_one", grade_one)
    monkeypatch.setattr(batch, "merge", merge or (lambda root, workspace, outcome, where=None: None))
    monkeypatch.setattr(pipeline, "nbgrader", lambda root, *args, capture=False: ran.append(" ".join(args)))
    monkeypatch.setattr(pipeline, "export", lambda root, capture=False: ran.append("export"))
    return ran


def _graded(root, assignment, student, *args) -> batch.Outcome:
    return batch.Outcome(assignment, student, 1.0, 10.0, 10.0)


def test_one_students_failure_is_their_problem_line_and_the_batch_goes_on(tmp_path, monkeypatch):
    root = _fake_course(tmp_path, ["alice", "bob", "carol"])

    def grade_one(root, assignment, student, *args):
        if student == "bob":
            raise OSError(28, "No space left on device")
        return _graded(root, assignment, student)

    def merge(root, workspace, outcome, where=None):
        if outcome.student == "carol":
            raise PermissionError(13, "Permission denied")

    ran = _stub_grading(monkeypatch, grade_one, merge)
    outcomes = batch.grade(root, ["A"], jobs=2, sandboxed=False)
    assert [(o.student, o.score, o.problems) for o in outcomes] == [
        ("alice", 10.0, []),
        ("bob", None, ["not graded (OSError: [Errno 28] No space left on device); earlier grades, if any, unchanged"]),
        ("carol", 10.0, ["merging failed (PermissionError: [Errno 13] Permission denied)"]),
    ]
    assert ran == ["export"]  # each worker wrote its submission's feedback (course/grading/autograde.py)


def test_an_assignments_own_memory_limit_reaches_its_kernels_when_lower(tmp_path, monkeypatch):
    root = _fake_course(tmp_path, ["alice"])
    (root / "source" / "B").mkdir()
    (root / "submitted" / "alice" / "B").mkdir()
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.CourseGrade.memory_gib_by_assignment = {"A": 2}\n')
    limits = {}

    def grade_one(root, assignment, student, workdir, wall_seconds, memory_gib, *args):
        limits[assignment] = memory_gib
        return _graded(root, assignment, student)

    _stub_grading(monkeypatch, grade_one)
    batch.grade(root, ["A", "B"], jobs=1, sandboxed=False, memory_gib=6)
    assert limits == {"A": 2, "B": 6}
    batch.grade(root, ["A", "B"], jobs=1, sandboxed=False, memory_gib=1.5)
    assert limits == {"A": 1.5, "B": 1.5}


def test_a_grading_run_that_changes_an_instructors_file_fails_its_test(tmp_path, monkeypatch):
    """tests/conftest.py hashes the course's and this repository's files around every batch.grade call."""
    root = _fake_course(tmp_path, ["alice"])
    _stub_grading(monkeypatch, _graded)
    changed = root / "submitted" / "alice" / "A" / "A.ipynb"
    monkeypatch.setattr(batch, "_ensure_in_gradebook", lambda root, assignment, where: changed.write_text("changed"))
    with pytest.raises(AssertionError, match=f"course grade changed the instructor's files: \\['{changed}'\\]"):
        batch.grade(root, ["A"], jobs=1, sandboxed=False)


def test_only_named_students_and_only_new_submissions_are_graded(tmp_path, monkeypatch, capsys):
    root = _fake_course(tmp_path, ["alice", "bob", "carol"])
    (root / "autograded" / "bob" / "A").mkdir(parents=True)
    (root / "autograded" / "bob" / "A" / "A.ipynb").write_text("graded before")
    (root / "autograded" / "carol" / "A").mkdir(parents=True)  # a folder without a notebook: not graded yet
    _stub_grading(monkeypatch, _graded)
    assert [o.student for o in batch.grade(root, ["A"], sandboxed=False, only=["alice", "bob"])] == ["alice", "bob"]
    assert [o.student for o in batch.grade(root, ["A"], sandboxed=False, only_new=True)] == ["alice", "carol"]
    assert [o.student for o in batch.grade(root, ["A"], sandboxed=False, only=["bob"], only_new=True)] == []
    assert "Nothing new to grade: every submission of A has an autograded notebook." in capsys.readouterr().out
    with pytest.raises(SystemExit, match="No submission of A by dave, eve in"):
        batch.grade(root, ["A"], sandboxed=False, only=["alice", "eve", "dave"])


def test_the_command_line_passes_students_and_only_new_and_refuses_fewer_than_one_job(tmp_path, monkeypatch, capsys):
    root = _fake_course(tmp_path, ["alice", "bob"])
    _stub_grading(monkeypatch, _graded)
    assert cli.main(["--root", str(root), "grade", "A", "--no-sandbox", "--student", "bob", "--student", "alice"]) == 0
    assert "A: 2 submissions; scores min 10, median 10, max 10" in capsys.readouterr().out
    for jobs in ("0", "-3", "two"):
        with pytest.raises(SystemExit) as stopped:
            cli.main(["--root", str(root), "grade", "A", "--jobs", jobs])
        assert stopped.value.code == 2
    errors = capsys.readouterr().err
    assert "argument --jobs: must be at least 1, not 0" in errors and "must be at least 1, not -3" in errors
    assert "argument --jobs: not a whole number: 'two'" in errors


def test_course_help_is_quick_and_imports_neither_nbgrader_nor_tensorflow():
    code = textwrap.dedent("""
        import sys
        from course.grading import cli
        try:
            cli.main(["--help"])
        except SystemExit:
            pass
        import course.grading.batch
        print(sorted(m for m in ("nbgrader", "sqlalchemy", "tensorflow", "keras", "course.grading.batch") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "['course.grading.batch']"  # batch itself imports nbgrader only when grading
    assert "examples:\n  course release" in result.stdout and "--only-new" in result.stdout


# --- Collecting an LMS download ---------------------------------------------------------------

def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def _download(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "course"
    archive = root / "downloaded" / "A" / "archive"
    archive.mkdir(parents=True)
    return root, archive


def _collected(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the download and the timestamps, by path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "downloaded" not in p.parts and p.name not in ("timestamp.txt", "roster.csv")}


def test_names_inside_a_students_zip_never_choose_the_student_nor_the_folder(tmp_path):
    root, archive = _download(tmp_path)
    (root / "submitted" / "bob" / "A").mkdir(parents=True)
    (root / "submitted" / "bob" / "A" / "A.ipynb").write_bytes(b"bob's own")
    _zip(archive / "alice_submission.zip", {
        "work/A.ipynb": b"alice",
        "bob_A.ipynb": b"alice pretending to be bob",
        "../evil.ipynb": b"outside?",
        "/tmp/absolute.keras": b"absolute?",
        "notes.txt": b"not collected",
    })
    collection = batch.collect_zips(root, "A")
    assert collection.students == ["alice"]
    assert collection.problems == ["skipped archive/alice_submission.zip:notes.txt: only .ipynb and .keras files are collected"]
    assert _collected(root) == {
        "submitted/alice/A/A.ipynb": b"alice",
        "submitted/alice/A/absolute.keras": b"absolute?",
        "submitted/alice/A/bob_A.ipynb": b"alice pretending to be bob",
        "submitted/alice/A/evil.ipynb": b"outside?",
        "submitted/bob/A/A.ipynb": b"bob's own",
    }
    assert not (tmp_path / "evil.ipynb").exists() and not (root / "submitted" / "evil.ipynb").exists()
    assert (root / "submitted" / "alice" / "A" / "timestamp.txt").read_text().endswith(" UTC")


def test_a_duplicate_a_link_and_a_bad_id_are_reported_and_the_others_collected(tmp_path):
    root, archive = _download(tmp_path)
    (archive / "carol_A.ipynb").write_bytes(b"carol 1")
    _zip(archive / "carol_late.zip", {"A.ipynb": b"carol 2"})
    (root / "submitted" / "carol" / "A").mkdir(parents=True)
    (root / "submitted" / "carol" / "A" / "A.ipynb").write_bytes(b"carol before")
    (archive / "dave_A.ipynb").write_bytes(b"dave")
    (archive / "dave_A.keras").write_bytes(b"dave's model")
    secret = tmp_path / "secret.ipynb"
    secret.write_bytes(b"the instructor's")
    (archive / "erin_A.ipynb").symlink_to(secret)
    (archive / ".._A.ipynb").write_bytes(b"dots")
    with zipfile.ZipFile(archive / "frank_A.zip", "w") as archive_zip:
        link = zipfile.ZipInfo("A.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive_zip.writestr(link, str(secret))
    (archive / "README.md").write_text("from the LMS")
    collection = batch.collect_zips(root, "A")
    assert collection.students == ["dave"]
    assert collection.problems == [
        "skipped archive/.._A.ipynb: '..' is not a student id",
        "skipped archive/README.md: not named <student>_<file>",
        "skipped archive/erin_A.ipynb: a symlink",
        "skipped archive/frank_A.zip:A.ipynb: a symlink",
        "carol: not collected: A.ipynb comes from archive/carol_A.ipynb and from archive/carol_late.zip:A.ipynb; keep one",
    ]
    assert _collected(root) == {"submitted/carol/A/A.ipynb": b"carol before",
                                "submitted/dave/A/A.ipynb": b"dave", "submitted/dave/A/A.keras": b"dave's model"}
    assert "Collected 1 submission(s) of A into submitted/\n  problem: skipped archive/.._A.ipynb" in collection.report()


def test_collection_goes_to_the_courses_own_submitted_folder_and_says_so(tmp_path):
    root, archive = _download(tmp_path)
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.submitted_directory = "handed_in"\n')
    (archive / "alice_A.ipynb").write_bytes(b"alice")
    collection = batch.collect_zips(root, "A")
    assert _collected(root) == {"handed_in/alice/A/A.ipynb": b"alice", "nbgrader_config.py": (root / "nbgrader_config.py").read_bytes()}
    assert collection.report() == "Collected 1 submission(s) of A into handed_in/"


def test_a_zip_bomb_is_refused_from_its_declared_sizes_and_a_roster_bounds_the_ids(tmp_path):
    root, archive = _download(tmp_path)
    _zip(archive / "alice_bomb.zip", {"A.ipynb": b"\0" * (3 * 2**20)})  # a few KiB on disk
    (archive / "bob_A.ipynb").write_bytes(b"bob")
    (archive / "zed_A.ipynb").write_bytes(b"not enrolled")
    (root / "roster.csv").write_text("id,first_name,last_name,email\nalice,A,A,\nbob,B,B,\n")
    _zip(archive / "class.zip", {"dl/bob_B.ipynb": b"bob's B, in the LMS's zip of the class"})
    collection = batch.collect_zips(root, "A", limits=sandbox.Limits(max_file_bytes=2**20))
    assert collection.students == ["bob"]
    assert collection.problems == ["skipped archive/alice_bomb.zip:A.ipynb: larger than 1 MiB",
                                   "skipped archive/zed_A.ipynb: zed is not in roster.csv"]
    assert _collected(root) == {"submitted/bob/A/A.ipynb": b"bob", "submitted/bob/A/B.ipynb": b"bob's B, in the LMS's zip of the class"}


# --- Ctrl-C and SIGTERM ------------------------------------------------------------------------

STOPPABLE = """
import sys
from course.grading import batch, cli, pipeline
# nbgrader stands still, with a child in a session of its own, as jupyter_client starts kernels
pipeline.autograde_command = lambda *args: [sys.executable, "-c",
    "import subprocess, sys, time; subprocess.Popen(['sleep', '300'], start_new_session=True); time.sleep(300)"]
batch._ensure_in_gradebook = lambda root, assignment, where: None
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_grading_kills_every_process_and_merges_nothing_half_graded(tmp_path, signum):
    root = _fake_course(tmp_path, ["alice", "bob", "carol"])
    course = subprocess.Popen([sys.executable, "-c", STOPPABLE, "--root", str(root), "grade", "A", "--jobs", "2",
                               "--no-sandbox"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    me = psutil.Process(course.pid)
    deadline = time.monotonic() + 60
    while len([p for p in me.children(recursive=True) if "sleep" in p.name()]) < 2:  # both workers' trees are up
        assert time.monotonic() < deadline and course.poll() is None, course.communicate()
        time.sleep(0.2)
    started = me.children(recursive=True)
    try:
        course.send_signal(signum)
        out, err = course.communicate(timeout=30)
        assert course.returncode == 128 + signum
        gone, alive = psutil.wait_procs(started, timeout=5)
        assert alive == []
    finally:  # a failure here must not leave the stubs running
        for process in [me, *started]:
            with contextlib.suppress(psutil.Error):
                process.kill()
    # No timings yet: the median of course.grading.progress.MEASURED (30.1 s) for each of three, on two workers (45.15 s,
    # less the moment since the start).
    assert out == "Grading 3 submissions of A with 2 worker(s), NOT sandboxed... ETA 45 s\n"
    assert err.strip() == (f"Stopped by {signal.Signals(signum).name}: 0 of 3 submissions graded and merged into "
                           "gradebook.db; the other 3 were not merged (2 killed while being graded). Feedback and "
                           "grades.csv were not updated: run the same `course grade` with --only-new to go on.")
    assert not (root / "autograded").exists() and not (root / "grades.csv").exists()


# --- a fault of this machine changes no grade --------------------------------------------------

def test_kernels_that_never_start_change_no_grade_and_stop_the_run(tmp_path, monkeypatch, capsys):
    root = _fake_course(tmp_path, ["ann", "bob", "cid", "dee"])
    (root / "gradebook.db").write_bytes(b"the earlier grades")
    monkeypatch.setattr(batch, "_ensure_in_gradebook", lambda root, assignment, where: None)
    _stub_nbgrader(monkeypatch, "import sys; print('[AutogradeApp | ERROR] Error occurred while starting new kernel client "
                                "for kernel 1: Kernel died before replying to kernel_info'); sys.exit(1)")
    with pytest.raises(SystemExit) as stopped:
        batch.grade(root, ["A"], jobs=1, sandboxed=False)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "the first 3 kernels never started: this machine cannot run students' kernels" in err
    assert (root / "gradebook.db").read_bytes() == b"the earlier grades"
    assert not (root / "autograded").exists() and not (root / "grades.csv").exists()


def test_one_kernel_that_never_starts_keeps_that_students_earlier_grade(tmp_path, monkeypatch):
    root = _fake_course(tmp_path, ["ann"])
    merged = []
    monkeypatch.setattr(batch, "_ensure_in_gradebook", lambda root, assignment, where: None)
    monkeypatch.setattr(batch, "merge", lambda *args: merged.append(args))
    monkeypatch.setattr(pipeline, "nbgrader", lambda *args, **kwargs: None)
    monkeypatch.setattr(pipeline, "export", lambda *args, **kwargs: [])
    _stub_nbgrader(monkeypatch, "import sys; print('Kernel died before replying to kernel_info'); sys.exit(1)")
    (outcome,) = batch.grade(root, ["A"], jobs=1, sandboxed=False)
    assert outcome.never_started and not outcome.graded and merged == []
    assert outcome.problems[0].startswith("its kernel never started (a fault of this machine, not of the submission)")


def test_a_terminal_gets_a_live_bar_with_the_eta_and_the_finished_lines_above_it():
    import io

    from rich.console import Console

    screen = io.StringIO()
    with batch._LiveBar(3, console=Console(file=screen, force_terminal=True, width=100)) as bar:
        bar.show(0, "ETA 2 min 00 s")
        bar.line("[######..............] 1/3  ETA 1 min 20 s   A  alice  10/10  40 s")
        bar.show(1, "ETA 1 min 20 s")
    text = screen.getvalue()
    assert "alice  10/10  40 s" in text
    assert "1/3" in text and "ETA 1 min 20 s" in text.rsplit("alice", 1)[1], "the bar, with its ETA, stays below the lines"


def test_the_grading_log_keeps_its_first_and_last_part_and_says_what_was_dropped():
    """A kernel's output reaches nbgrader's log (the kernel inherits its standard output): 10 bytes at most here."""
    read, write = os.pipe()
    with os.fdopen(write, "wb") as out:
        out.write(b"0123456789" + b"x" * 1000 + b"ABCDEFGHIJ")
    log = io.BytesIO()
    batch._copy_log(os.fdopen(read, "rb"), log, 20)
    assert log.getvalue() == (b"0123456789" + batch.LOG_CUT.format(more=1000, limit=20 / 2**20).encode()
                              + b"ABCDEFGHIJ")
    read, write = os.pipe()
    with os.fdopen(write, "wb") as out:
        out.write(b"short")
    log = io.BytesIO()
    batch._copy_log(os.fdopen(read, "rb"), log, 20)
    assert log.getvalue() == b"short"


def test_the_courses_own_folder_names_and_gradebook_are_where_it_grades(tmp_path):
    """nbgrader_config.py renames the submitted, autograded and feedback folders and keeps the gradebook outside
    the course folder: course grade reads and writes there (as the Formgrader reads), and makes nothing at
    nbgrader's default places. reads_instructor_files, which reads and appends to every notebook and gradebook
    it finds, finds none (tests/test_layout.py: the gradebook's folder is hidden in the sandbox)."""
    from nbgrader.api import Gradebook

    root = _course(tmp_path, only=["correct", "reads_instructor_files"])
    books = tmp_path / "books"
    books.mkdir()
    (root / "gradebook.db").rename(books / "grades.sqlite")
    (root / "submitted").rename(root / "handed_in")
    with open(root / "nbgrader_config.py", "a") as config:
        config.write('\nc.CourseDirectory.submitted_directory = "handed_in"\n'
                     'c.CourseDirectory.autograded_directory = "graded"\n'
                     'c.CourseDirectory.feedback_directory = "returned"\n'
                     f'c.CourseDirectory.db_url = "sqlite:///{books / "grades.sqlite"}"\n')
    outcomes = batch.grade(root, [ASSIGNMENT], jobs=2)
    assert [(o.student, o.score, o.problems) for o in outcomes] == [("correct", 10, []),
                                                                    ("reads_instructor_files", 10, [])]
    with Gradebook(f"sqlite:///{books / 'grades.sqlite'}") as gradebook:
        assert gradebook.find_submission(ASSIGNMENT, "correct").score == 10
    assert _grades(root) == {"correct": 10.0, "reads_instructor_files": 10.0}
    assert list((root / "graded" / "correct" / ASSIGNMENT).glob("*.ipynb"))
    assert list((root / "returned" / "correct" / ASSIGNMENT).glob("*.html"))
    assert not any((root / name).exists() for name in ("submitted", "autograded", "feedback", "gradebook.db"))
    import nbformat

    notebook = nbformat.read(next((root / "graded" / "reads_instructor_files" / ASSIGNMENT).glob("*.ipynb")), as_version=4)
    # The kernel may send one print as several stream outputs ("read:", then " []\n"): their text joined.
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "read: []" in printed and "wrote: []" in printed


def test_the_assignments_notebooks_are_read_from_the_gradebook_without_changing_it(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", pipeline.nbgrader_env()["PATH"])  # a new gradebook runs `alembic` by name
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as gradebook:
        gradebook.add_assignment("A")
        gradebook.add_notebook("part2", "A")
        gradebook.add_notebook("part1", "A")
        gradebook.add_assignment("B")
        gradebook.add_notebook("other", "B")
    assert batch.assignment_notebooks(url, "A") == ["part1", "part2"]
    assert batch.assignment_notebooks(url, "C") == []
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert batch.assignment_notebooks(f"sqlite:///{empty}", "A") == [] and empty.read_bytes() == b""
    assert batch.assignment_notebooks(f"sqlite:///{tmp_path / 'missing.db'}", "A") == []
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's add_submission, as merge() says
def test_a_merge_keeps_the_instructors_marks_given_after_the_run_began_and_when_nothing_was_graded(tmp_path, monkeypatch):
    """Each workspace grades against a snapshot of the gradebook taken when the run began: a manual grade, comment
    or flag given in the Formgrader since then, or on a submission that could not be graded this time, stays."""
    import sqlite3

    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", pipeline.nbgrader_env()["PATH"])  # the gradebook runs `alembic`
    course, workspace = tmp_path / "gradebook.db", tmp_path / "workspace"
    with Gradebook(f"sqlite:///{course}") as gradebook:
        gradebook.add_assignment("A")
        gradebook.add_notebook("A", "A")
        gradebook.add_grade_cell("answer", "A", "A", max_score=1, cell_type="markdown")
        gradebook.add_solution_cell("answer", "A", "A")
        gradebook.add_grade_cell("test", "A", "A", max_score=2, cell_type="code")
        gradebook.add_student("alice")
        gradebook.add_submission("A", "alice")
    workspace.mkdir()
    shutil.copy(course, workspace / "gradebook.db")  # the run's snapshot, then autograded in the workspace
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as graded:
        graded.find_grade("test", "A", "A", "alice").auto_score = 2
        graded.find_grade("answer", "A", "A", "alice").needs_manual_grade = True
        graded.db.commit()
    with Gradebook(f"sqlite:///{course}") as gradebook:  # meanwhile, in the Formgrader
        gradebook.find_grade("answer", "A", "A", "alice").manual_score = 1
        gradebook.find_comment("answer", "A", "A", "alice").manual_comment = "well argued"
        gradebook.find_submission_notebook("A", "A", "alice").flagged = True
        gradebook.db.commit()

    def merged(outcome):
        batch._merge_grades(f"sqlite:///{course}", workspace, outcome)
        with Gradebook(f"sqlite:///{course}") as gradebook:
            answer = gradebook.find_grade("answer", "A", "A", "alice")
            return (gradebook.find_submission("A", "alice").score, answer.manual_score, answer.needs_manual_grade,
                    gradebook.find_comment("answer", "A", "A", "alice").manual_comment,
                    gradebook.find_submission_notebook("A", "A", "alice").flagged)

    assert merged(batch.Outcome("A", "alice", 1.0)) == (3, 1, True, "well argued", True)
    assert merged(batch.Outcome("A", "alice", 1.0, graded=False)) == (1, 1, True, "well argued", True)
    assert sqlite3.connect(course).execute("select count(*) from submitted_assignment").fetchone() == (1,)
