# The course's commands; README.md explains them. Everything runs in .venv,
# created on first use.
PYTHON_FOR_VENV ?= python3
VENV := .venv
BIN := $(VENV)/bin

# The offline mirror (course/data.py) must be an absolute path: notebooks run
# in other folders (source/<a>/, autograded/<student>/<a>/).
ifdef COURSE_DATA_DIR
export COURSE_DATA_DIR := $(abspath $(COURSE_DATA_DIR))
endif

.PHONY: demo test bench release lab lab-instructor clean bubblewrap lock

# The sample submissions include one that loops forever: a 300 s limit per cell
# (instead of 600) keeps demo and tests shorter. Training cells under the grading
# budget need room: 07's took just over 60 s with one TensorFlow thread while a
# second worker graded, and 06's 95-131 s on a shared machine.
demo test: export COURSE_CELL_TIMEOUT ?= 300

demo: $(VENV)/.installed bubblewrap
	$(BIN)/course demo

# Grading runs students' code in Debian's bubblewrap: installed here when we may (root
# with apt-get), otherwise the one command to run is printed.
bubblewrap:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing bubblewrap (grading runs students' code in its sandbox)..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "Grading runs students' code in bubblewrap's sandbox: run  sudo apt-get install bubblewrap  then this command again."; \
	    exit 1; \
	  fi; }

# Notebooks run under the grading budget in tests (course/budget.py).
# First the pipeline test alone: `course demo` on every sample submission, whose grading keeps
# both of CI's 2 cores busy and whose samples run into the grader's time and memory limits on
# purpose. Then every other test, two files at a time (pytest-xdist): most keep one core busy.
# TEST_WORKERS=0 runs those in one process. Both runs always run; the target fails if either does.
TEST_WORKERS ?= 2
PIPELINE_TESTS := tests/test_pipeline.py
test: $(VENV)/.installed bubblewrap
	export COURSE_BUDGET=grading; \
	$(BIN)/pytest $(PIPELINE_TESTS) --durations=5; pipeline=$$?; \
	$(BIN)/pytest tests source --ignore=$(PIPELINE_TESTS) --nbval-lax --nbval-current-env --durations=15 \
	  --numprocesses=$(TEST_WORKERS) --dist=loadfile; rest=$$?; \
	test $$pipeline -eq 0 && test $$rest -eq 0

# Trains every reference solution over several seeds; writes bench/RESULTS.md.
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

release: $(VENV)/.installed
	$(BIN)/course release

# JupyterLab as students see it (jupyter/student: no Formgrader, Create Assignment or
# Course List) and as the instructor does (every nbgrader extension); Jupyter news off
# in both (jupyter/settings/overrides.json).
lab lab-instructor: $(VENV)/.installed
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter/$(if $(filter lab,$@),student,instructor)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(BIN)/jupyter lab

# On Linux x86_64 with Python 3.11 (grading machines, CI) the environment is the locked one;
# elsewhere pip resolves pyproject.toml's ranges.
LOCK := requirements/grading-linux-x86_64-py311.txt
LOCKED := $(shell [ "$$(uname -sm)" = "Linux x86_64" ] && $(PYTHON_FOR_VENV) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && echo yes)

$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON_FOR_VENV) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(LOCKED),yes)
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
else
	$(BIN)/python -m pip install --quiet -e ".[instructor,test]"
endif
	touch $@

# Resolve `.[instructor,test]` afresh in a throwaway environment and write it as the lock.
lock:
	rm -rf .lock-venv && $(PYTHON_FOR_VENV) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e ".[instructor,test]"
	{ sed -n '/^#/p' $(LOCK); .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .lock-venv

clean:
	rm -rf submitted autograded feedback logs downloaded gradebook.db grades.csv .nbgrader.log
