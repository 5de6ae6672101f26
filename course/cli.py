"""``course``: the instructor's commands (see README, "For instructors")."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from course import batch, colab, demo, leaderboard, pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the course folder (holds source/ and nbgrader_config.py)")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="generate release/ from source/ with nbgrader")
    release.add_argument("assignments", nargs="*", help="default: every assignment in source/")
    jobs_help = "submissions graded at once (default: the number of CPU cores, %(default)s)"
    demo_command = commands.add_parser("demo", help="release everything, grade the sample submissions, export grades.csv")
    demo_command.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help=jobs_help)
    grade = commands.add_parser("grade", help="autograde every submission of the assignments in parallel, then feedback and grades.csv")
    grade.add_argument("assignments", nargs="*", metavar="assignment")
    grade.add_argument("--all", action="store_true", help="every assignment in source/")
    grade.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help=jobs_help)
    grade.add_argument("--wall-seconds", type=float, default=1800, help="time limit for one submission (default %(default)s)")
    grade.add_argument("--memory-gib", type=float, default=6, help="memory limit for one submission's kernel (default %(default)s)")
    grade.add_argument("--zip-collect", action="store_true",
                       help="first run `nbgrader zip_collect` on the LMS downloads in downloaded/<assignment>/archive")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run students' code without bubblewrap, with your rights and next to your files (not recommended)")
    board = commands.add_parser("leaderboard", help="rank the capstone's graded models by test accuracy; writes leaderboard.csv")
    board.add_argument("assignment", nargs="?", default="08_cifar_challenge")
    commands.add_parser("links", help="point every source notebook's Colab badge and install command at pyproject's Repository URL")
    args = parser.parse_args(argv)

    root = args.root.resolve()
    if not (root / "nbgrader_config.py").is_file():
        parser.error(f"{root} is not a course folder: it has no nbgrader_config.py")
    if args.command == "release":
        for assignment in args.assignments or pipeline.assignments(root):
            pipeline.release(root, assignment)
    elif args.command == "grade":
        assignments = pipeline.assignments(root) if args.all else args.assignments
        if not assignments:
            parser.error("name the assignments to grade, or --all")
        if args.zip_collect:
            for assignment in assignments:
                batch.collect_zips(root, assignment)
        outcomes = batch.grade(root, assignments, args.jobs, args.wall_seconds, args.memory_gib, not args.no_sandbox)
        print(batch.summary(outcomes))
    elif args.command == "leaderboard":
        ranked, unmeasured = leaderboard.entries(root, args.assignment)
        if not ranked and not unmeasured:
            parser.error(f"no autograded submissions of {args.assignment} in {root / 'autograded'}: run `course grade {args.assignment}` first")
        print(leaderboard.format_table(ranked, unmeasured))
        leaderboard.write_csv(root / "leaderboard.csv", ranked)
    elif args.command == "links":
        for path in colab.update_links(root):
            print(f"updated {path.relative_to(root)}")
    else:
        print(demo.run(root, args.jobs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
