# One-command set-up: `make book` builds the course, `make test` checks everything CI checks.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
SHARED := $(abspath $(CURDIR)/../shared)

# Real images and the ImageNet class index from ../shared when it is there (development, CI).
ifneq ($(wildcard $(SHARED)/datasets),)
export TL_DATA_DIR ?= $(SHARED)/datasets
endif
ifneq ($(wildcard $(SHARED)/keras),)
export KERAS_HOME ?= $(CURDIR)/.cache/keras
endif
export TL_CACHE_DIR ?= $(CURDIR)/.cache/tlhelpers
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

STAMP := $(VENV)/.installed

.PHONY: help venv book test unit notebooks book-strict bench student clean
help:
	@echo "make book   build the HTML book into _build/html (executes every chapter)"
	@echo "make test   unit tests, then a book build that executes every chapter and fails on any warning"
	@echo "            or failing cell (the chapters' hidden assert cells included)"
	@echo "make notebooks  every notebook under nbval (cell-by-cell report; slower, not part of make test)"
	@echo "make bench  speed benchmarks, written to benchmarks/results/*.json"
	@echo "make student  a copy of the notebooks without solution cells, in student/"

$(STAMP): requirements/lock.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install it, or run make PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(STAMP) seed-keras

.PHONY: seed-keras
seed-keras:
	@if [ -n "$${KERAS_HOME:-}" ] && [ -d "$(SHARED)/keras/models" ]; then \
	  mkdir -p "$$KERAS_HOME/models" && cp -n "$(SHARED)"/keras/models/* "$$KERAS_HOME/models/"; fi

book: venv
	$(BIN)/jupyter-book build . --all --keep-going
	@echo; echo "Open $(CURDIR)/_build/html/index.html in a browser."

unit: venv
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q --durations=15

notebooks: venv
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

book-strict: venv
	$(BIN)/jupyter-book build . --all -W -n --keep-going

# Each chapter executes once, in the strict book build: a failing cell (a hidden assert included) is a
# build error there. `make notebooks` runs them under nbval instead, for a cell-by-cell report.
# The unit tests keep about one core busy and the chapters a little more, so on two cores the two run side by
# side (each one's output printed whole when it finishes).
test: venv
	$(MAKE) --no-print-directory -j2 --output-sync=target unit book-strict
	@echo "make test: all checks passed"

bench: venv
	$(BIN)/python benchmarks/run.py

student: venv
	$(BIN)/python -m tlhelpers.exercises notebooks student

clean:
	rm -rf _build .cache student
