"""``course``: the instructor's commands (see README, "For instructors").

Each command imports what it needs when it runs: nbgrader, SQLAlchemy and
TensorFlow take seconds to import, and ``course --help`` should not wait for them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DESCRIPTION = "The instructor's commands for this nbgrader course: release, grade (sandboxed, in parallel), leaderboard."
EXAMPLES = """\
examples:
  course release                                 release/ for every assignment in source/
  course grade 03_mnist_cnn                      grade submitted/<student>/03_mnist_cnn/
  course grade --all --jobs 2                    every assignment, two submissions at a time
  course grade 03_mnist_cnn --student alice      only alice (repeat --student for more)
  course grade --all --only-new                  only submissions not autograded yet
  course grade 03_mnist_cnn --zip-collect        first collect downloaded/03_mnist_cnn/archive/
  course grade --all --scheduler tcp://HOST:8786 on a Dask cluster's workers (course worker)
  course leaderboard                             rank the capstone's models
  course publish ../edition --url https://github.com/OWNER/cnn-course-notebooks --tag v1.0
                                                 the student edition, to push as its own repository

Ctrl-C while grading kills every running submission, keeps what was already
graded, and says how to go on (--only-new). See README.md, "For instructors".
"""


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def default_slots() -> int:
    """Grading slots for this machine: one per core (2 workers grade faster than 1 on 2 cores, bench/GRADING.md),
    at most one per 10 GiB of memory (a kernel's 6 GiB and its judge's 4 GiB limits)."""
    import psutil

    return max(1, min(os.cpu_count() or 1, psutil.virtual_memory().total // (10 * 2**30)))


def parser() -> argparse.ArgumentParser:
    """The command line: ``course [--root DIR] COMMAND ...``."""
    main_parser = argparse.ArgumentParser(prog="course", description=DESCRIPTION, epilog=EXAMPLES,
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
    main_parser.add_argument("--root", type=Path, default=Path.cwd(), help="the course folder (holds source/ and nbgrader_config.py)")
    commands = main_parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="generate release/ from source/ with nbgrader")
    release.add_argument("assignments", nargs="*", help="default: every assignment in source/")
    jobs_help = "submissions graded at once (default: the number of CPU cores, %(default)s)"
    demo_command = commands.add_parser("demo", help="release everything, grade the sample submissions, export grades.csv")
    demo_command.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help=jobs_help)
    grade = commands.add_parser("grade", help="autograde every submission of the assignments in parallel, then feedback and grades.csv",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    grade.add_argument("assignments", nargs="*", metavar="assignment")
    grade.add_argument("--all", action="store_true", help="every assignment in source/")
    grade.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help=jobs_help)
    grade.add_argument("--student", action="append", metavar="NAME",
                       help="grade only this student's submissions (repeat for several)")
    grade.add_argument("--only-new", action="store_true",
                       help="grade only submissions with no autograded notebook yet in autograded/<student>/<assignment>/")
    grade.add_argument("--wall-seconds", type=float, default=1800, help="time limit for one submission (default %(default)s)")
    grade.add_argument("--memory-gib", type=float, default=6,
                       help="memory limit for one submission's kernel (default %(default)s; "
                            "nbgrader_config.py's CourseGrade.memory_gib_by_assignment may set less for an assignment)")
    grade.add_argument("--zip-collect", action="store_true",
                       help="first collect the LMS download in downloaded/<assignment>/archive/ (files and zips named "
                            "<student>_<file>) into submitted/")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run students' code without bubblewrap, with your rights and next to your files (not recommended)")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on the workers of this Dask scheduler (tcp://HOST:PORT or tls://...; see `course worker`) "
                            "instead of --jobs local ones")
    grade.add_argument("--scheduler-file", metavar="PATH", help="the same, from a scheduler file (`dask scheduler --scheduler-file`)")
    worker = commands.add_parser("worker", help="check that this machine can grade, then serve a Dask scheduler's "
                                 "`course grade --scheduler` with grading slots (needs no course folder)")
    worker.add_argument("scheduler", help="the scheduler's address, tcp://HOST:PORT")
    worker.add_argument("--slots", type=positive_int, default=default_slots(),
                        help="submissions graded at once here, one Dask worker process each (default: one per CPU "
                             "core, fewer where memory gives each less than 10 GiB: %(default)s)")
    worker.add_argument("--datasets", default="mnist,fashion_mnist,cifar10",
                        help="the datasets checked before serving (default %(default)s)")
    worker.epilog = ("Any other option goes to `dask worker` (after --, or as is): --host, --name, and for TLS "
                     "--tls-ca-file, --tls-cert, --tls-key.")
    board = commands.add_parser("leaderboard", help="rank the capstone's graded models by test accuracy; writes leaderboard.csv")
    board.add_argument("assignment", nargs="?", default="08_cifar_challenge")
    commands.add_parser("links", help="point every source notebook's Colab badge and install command at pyproject's Repository URL")
    edition = commands.add_parser("publish", help="write the student edition (release notebooks, student helpers, "
                                  "README; no solution, hidden test or grading code) into a new folder")
    edition.add_argument("out", type=Path, help="a new (or empty) folder, outside the course: the edition's repository")
    edition.add_argument("--url", required=True, help="the edition's public GitHub address, https://github.com/OWNER/NAME")
    edition.add_argument("--tag", required=True, help="the git tag the badges and installs pin, e.g. v1.0")
    edition.add_argument("--hub", help="a JupyterHub's address: the README adds nbgitpuller links to it")
    return main_parser


def main(argv: list[str] | None = None) -> int:
    from course.grading.nbgrader_app import start_lean

    start_lean()  # most commands import nbformat: a second sooner
    command_line = parser()
    args, unknown = command_line.parse_known_args(argv)
    if unknown and args.command != "worker":
        command_line.error(f"unrecognized arguments: {' '.join(unknown)}")

    if args.command == "worker":
        from course.grading import cluster, preflight

        datasets = [name for name in args.datasets.split(",") if name]
        strange = sorted(set(datasets) - set(preflight.DATASETS))
        if strange:
            command_line.error(f"unknown datasets {', '.join(strange)}: choose from {', '.join(preflight.DATASETS)}")
        cluster.serve(args.scheduler, args.slots, datasets, [option for option in unknown if option != "--"])
        return 0
    root = args.root.resolve()
    if not (root / "nbgrader_config.py").is_file():
        command_line.error(f"{root} is not a course folder: it has no nbgrader_config.py")
    if args.command == "release":
        from course.grading import pipeline

        for assignment in args.assignments or pipeline.assignments(root):
            pipeline.release(root, assignment)
    elif args.command == "grade":
        from course.grading import batch, pipeline

        if args.no_sandbox and (args.scheduler or args.scheduler_file):
            command_line.error("--no-sandbox cannot go to a Dask cluster: a kernel outside the sandbox reaches the "
                               "network, and the scheduler's port runs code on every worker")

        assignments = pipeline.assignments(root) if args.all else args.assignments
        if not assignments:
            command_line.error("name the assignments to grade, or --all")
        if args.zip_collect:
            for assignment in assignments:
                print(batch.collect_zips(root, assignment).report(), flush=True)
        outcomes = batch.grade(root, assignments, args.jobs, args.wall_seconds, args.memory_gib, not args.no_sandbox,
                               only=args.student, only_new=args.only_new, scheduler=args.scheduler,
                               scheduler_file=args.scheduler_file)
        if outcomes:
            print(batch.summary(outcomes))
    elif args.command == "leaderboard":
        from course.grading import leaderboard

        ranked, unmeasured = leaderboard.entries(root, args.assignment)
        if not ranked and not unmeasured:
            from course.grading import layout

            command_line.error(f"no autograded submissions of {args.assignment} in "
                               f"{layout.read(root).step('autograded')}: run `course grade {args.assignment}` first")
        print(leaderboard.format_table(ranked, unmeasured))
        leaderboard.write_csv(root / "leaderboard.csv", ranked)
    elif args.command == "links":
        from course.grading import colab

        for path in colab.update_links(root):
            print(f"updated {path.relative_to(root)}")
    elif args.command == "publish":
        from course.grading import publish

        try:
            written = publish.publish(root, args.out.resolve(), args.url, args.tag, args.hub)
        except publish.PublishError as error:
            command_line.error(str(error))
        leaked = publish.leaks(root, args.out.resolve())
        if leaked:  # never expected: every file comes from an allowlist
            print("The edition holds what students must not see; do not push it:", *leaked, sep="\n  ")
            return 1
        print(f"Wrote the student edition ({len(written)} files) to {args.out}: no solution, hidden test or grading "
              f"code in it. Push it to {args.url} and tag it {args.tag}.")
    else:
        from course.grading import demo

        print(demo.run(root, args.jobs))
        off = demo.unexpected_scores(root)
        if off:
            print(f"\n{len(off)} sample submission(s) did not get their expected score (logs/ says why; a busy "
                  "machine can push training cells past the cell time limit):", *off, sep="\n  ")
            return 1
        print("\nEvery sample submission got exactly its expected score.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
