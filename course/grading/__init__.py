"""What instructors run: ``course grade`` and its sandbox, judge, nbgrader preprocessors, Dask workers,
the demo and the publisher. Students never import this half (the student edition, course/grading/publish.py,
ships without it); it imports the student half (course/*.py), never the reverse. README, "For instructors"."""
