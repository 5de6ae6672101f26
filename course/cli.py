"""``course``: the instructor's commands (see README, "For instructors")."""

from __future__ import annotations

import argparse
from pathlib import Path

from course import batch, colab, pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the course folder (holds source/ and nbgrader_config.py)")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="generate release/ from source/ with nbgrader")
    release.add_argument("assignments", nargs="*", help="default: every assignment in source/")
    commands.add_parser("demo", help="release everything, autograde the sample submissions, export grades.csv")
    grade = commands.add_parser("grade", help="autograde every submission of an assignment in parallel, then feedback and grades.csv")
    grade.add_argument("assignment")
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    grade.add_argument("--wall-seconds", type=float, default=1800, help="limit for one submission (default 1800)")
    commands.add_parser("links", help="point every source notebook's Colab badge and install command at pyproject's Repository URL")
    args = parser.parse_args(argv)

    root = args.root.resolve()
    if not (root / "nbgrader_config.py").is_file():
        parser.error(f"{root} is not a course folder: it has no nbgrader_config.py")
    if args.command == "release":
        for assignment in args.assignments or pipeline.assignments(root):
            pipeline.release(root, assignment)
    elif args.command == "grade":
        print(batch.summary(batch.grade(root, args.assignment, args.jobs, args.wall_seconds)))
    elif args.command == "links":
        for path in colab.update_links(root):
            print(f"updated {path.relative_to(root)}")
    else:
        print(pipeline.demo(root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
