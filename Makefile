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

.PHONY: demo test release lab clean

demo: $(VENV)/.installed
	$(BIN)/course demo

test: $(VENV)/.installed
	$(BIN)/pytest tests source --nbval-lax --nbval-current-env

release: $(VENV)/.installed
	$(BIN)/course release

lab: $(VENV)/.installed
	$(BIN)/jupyter lab

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON_FOR_VENV) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,instructor,test]"
	touch $@

clean:
	rm -rf submitted autograded feedback gradebook.db grades.csv .nbgrader.log
