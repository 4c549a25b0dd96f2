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

.PHONY: help venv book test test-full test-colab lab lint strip unit notebooks book-strict browser bench bench-recipe student student-check clean
help:
	@echo "make book   build the HTML book into _build/html (executes every chapter)"
	@echo "make test   unit tests, then a book build that executes every chapter and fails on any warning"
	@echo "            or failing cell (the chapters' hidden assert cells included); make lint first, make browser last"
	@echo "make test-full  TL_PROFILE=full: lint, unit tests, then every notebook under nbval (needs Keras's ImageNet"
	@echo "            weights in KERAS_HOME or ~/.keras/models: the full profile stops without them; meant for a GPU)"
	@echo "make lint   ruff check, and that every notebook is stored without outputs or execution counts"
	@echo "make strip  remove outputs and execution counts from every notebook (cell ids and tags are kept)"
	@echo "make notebooks  every notebook under nbval (cell-by-cell report; slower, not part of make test)"
	@echo "make browser  open every page of the built book (_build/html) in headless Chromium: console errors,"
	@echo "            images, formulas, unrendered roles, launch links, search; screenshots in _build/screens"
	@echo "make bench  speed benchmarks, written to benchmarks/results/*.json"
	@echo "make bench-recipe  tlh fit's defaults with each part of the recipe turned off in turn, on TrashNet's"
	@echo "            validation split (about an hour on 2 cores), then mixed precision and export latency"
	@echo "make student  a copy of the notebooks without solution cells, in _build/student/"
	@echo "make student-check  make student, then run each student notebook up to its first exercise"
	@echo "make test-colab  every notebook under nbval in Colab's package set (Python 3.13, requirements/colab.txt),"
	@echo "            each installing tlhelpers through its own Colab install cell (PYTHON_COLAB=/path/to/python3.13)"
	@echo "make lab    JupyterLab on the notebooks, in the course's environment"

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

# The chapters execute two at a time (longest first) into the book's execution cache, jupyter-cache's
# _build/.jupyter_cache; the build then takes their outputs from there and executes whatever is not cached (a
# notebook that failed there fails again in the build, with its traceback). A chapter whose code is unchanged since
# its last successful run under the same TL_PROFILE and TL_DATA_DIR is not executed again; `make clean` empties it.
NB_CACHE := _build/.jupyter_cache
NB_ORDER := $(addprefix notebooks/,pretrained_recipe.ipynb 01_what_is_transfer_learning.ipynb 03_cats_vs_dogs.ipynb \
	04_trash_classifier.ipynb source_model.ipynb 05_what_convnets_learn.ipynb batchnorm_momentum.ipynb \
	02_domains_and_tasks.ipynb benchmarks.ipynb)

.PHONY: execute
execute: venv
	@settings="profile=$${TL_PROFILE:-default} data=$${TL_DATA_DIR:-}"; \
	if [ -f $(NB_CACHE)/run-settings ] && [ "$$(cat $(NB_CACHE)/run-settings)" != "$$settings" ]; then \
	  echo "make execute: $$settings differs from the cached run's: clearing $(NB_CACHE)"; rm -rf $(NB_CACHE); fi; \
	mkdir -p $(NB_CACHE) && echo "$$settings" > $(NB_CACHE)/run-settings
	$(BIN)/python -c "import sys; from jupyter_cache import get_cache; \
	  cache = get_cache(sys.argv[1]); [cache.add_nb_to_project(nb) for nb in sys.argv[2:]]" $(NB_CACHE) $(NB_ORDER)
	$(BIN)/jcache project -p $(NB_CACHE) execute -e local-parallel -t 900

book: venv execute
	start=$$(date +%s); $(BIN)/jupyter-book build . --all --keep-going; mkdir -p benchmarks/results; \
	  printf '{"benchmark": "make_book", "seconds": %s, "cpus": %s, "profile": "%s"}\n' \
	  "$$(( $$(date +%s) - start ))" "$$(nproc)" "$${TL_PROFILE:-default}" > benchmarks/results/make_book.json
	@echo; echo "Open $(CURDIR)/_build/html/index.html in a browser."

unit: venv
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q --durations=15

notebooks: venv
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

book-strict: venv execute
	$(BIN)/jupyter-book build . --all -W -n --keep-going

# The built book in the system's Chromium (Playwright drives it; .ci/run installs chromium with apt-get).
# --confcutdir leaves out tests/conftest.py (the unit tests' Keras set-up); `make unit` skips tests/browser,
# because TL_BROWSER_HTML is not set there.
browser: venv
	TL_BROWSER_HTML=$(CURDIR)/_build/html $(BIN)/python -m pytest -q -p no:cacheprovider \
	  --confcutdir=tests/browser tests/browser

# Each chapter executes once, in the strict book build: a failing cell (a hidden assert included) is a
# build error there. `make notebooks` runs them under nbval instead, for a cell-by-cell report.
# The unit tests keep about one core busy and the chapters a little more, so on two cores the two run side by
# side (each one's output printed whole when it finishes). Then the book they built is opened in a browser.
test: venv
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory -j2 --output-sync=target unit book-strict
	$(MAKE) --no-print-directory browser
	@echo "make test: all checks passed"

# The full profile with real ImageNet weights, one notebook after another under nbval: the GPU job's check.
test-full: venv
	TL_PROFILE=full $(MAKE) --no-print-directory lint unit
	TL_PROFILE=full $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
	@echo "make test-full: all checks passed"

LINTED := tlhelpers tests benchmarks data_scripts requirements
NOTEBOOKS := $(wildcard notebooks/*.ipynb)

lint: venv
	$(BIN)/ruff check $(LINTED)
	@# Notebook code: at most 88 columns a line, what the book's code column shows without a scroll bar.
	$(BIN)/ruff check --select E501 --line-length 88 notebooks
	@$(BIN)/nbstripout --verify --keep-id $(NOTEBOOKS) || { \
	  echo "make lint: the notebooks above are stored with outputs or execution counts: run \`make strip\`"; exit 1; }
	@echo "make lint: ruff and notebook checks passed"

strip: venv
	$(BIN)/nbstripout --keep-id $(NOTEBOOKS)

bench: venv
	$(BIN)/python benchmarks/run.py

bench-recipe: venv
	$(BIN)/python benchmarks/fit_defaults.py $(TL_DATA_DIR)/trashnet/dataset-resized
	$(BIN)/python benchmarks/recipe.py

student: venv
	$(BIN)/python -m tlhelpers.exercises notebooks _build/student

student-check: venv
	MPLBACKEND=Agg $(BIN)/python -m tlhelpers.exercises notebooks _build/student --execute

# Colab's package set (requirements/colab.txt) on Colab's Python, in its own venv: no book toolchain there. Every
# notebook runs under nbval with a stand-in `google.colab` imported at kernel start (tests/colab_runtime), so each
# one's install cell takes its Colab branch and installs tlhelpers: TL_INSTALL_FROM points it at a wheel of this
# checkout (a learner's cell installs the tagged release instead). Two notebooks at a time, longest first; the
# second group starts once the first install cell has installed tlhelpers (two pip runs must not write the venv
# at once; later install cells find the same version installed and change nothing).
PYTHON_COLAB ?= $(shell PYENV_VERSION=3.13.0 pyenv which python 2>/dev/null || command -v python3.13)
COLAB_VENV := .venv-colab
COLAB_BIN := $(CURDIR)/$(COLAB_VENV)/bin
COLAB_STAMP := $(COLAB_VENV)/.installed
COLAB_GROUPS := "source_model 04_trash_classifier pretrained_recipe 02_domains_and_tasks benchmarks" \
	"01_what_is_transfer_learning 03_cats_vs_dogs 05_what_convnets_learn batchnorm_momentum"
# A cell's time limit: the slowest cell takes about 2.5 minutes alone (COLAB_CELL_TIMEOUT=... on a busier machine).
COLAB_CELL_TIMEOUT ?= 900
NBVAL := -q -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=$(COLAB_CELL_TIMEOUT)

$(COLAB_STAMP): requirements/colab.txt
	@v=$$("$(PYTHON_COLAB)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true); \
	if [ "$$v" != "3.13" ]; then echo "make test-colab needs Python 3.13, Colab's (found: $${v:-none}): \
	install it (pyenv install 3.13) or run make test-colab PYTHON_COLAB=/path/to/python3.13"; exit 2; fi
	rm -rf $(COLAB_VENV) && "$(PYTHON_COLAB)" -m venv $(COLAB_VENV)
	$(COLAB_BIN)/python -m pip install --quiet -r requirements/colab.txt pytest==9.2.0 nbval==0.11.0 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }
	touch $@

test-colab: $(COLAB_STAMP) seed-keras
	rm -rf _build/colab && mkdir -p _build/colab/src && cp -r tlhelpers pyproject.toml README.md _build/colab/src/
	$(COLAB_BIN)/python -m pip wheel --quiet --no-deps -w _build/colab/dist _build/colab/src 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }
	$(COLAB_BIN)/python -m pip uninstall --quiet -y tlhelpers 2>/dev/null || true
	@start=$$(date +%s); export TL_INSTALL_FROM="$$(ls $(CURDIR)/_build/colab/dist/tlhelpers-*.whl)" \
	  PYTHONPATH=$(CURDIR)/tests/colab_runtime MPLBACKEND=module://matplotlib_inline.backend_inline \
	  PYDEVD_DISABLE_FILE_VALIDATION=1; \
	pids=""; logs=""; n=0; for group in $(COLAB_GROUPS); do \
	  n=$$((n + 1)); log=_build/colab/group$$n.log; logs="$$logs $$log"; \
	  $(COLAB_BIN)/python -m pytest $(NBVAL) $$(printf 'notebooks/%s.ipynb ' $$group) > $$log 2>&1 & pids="$$pids $$!"; \
	  for i in $$(seq 300); do kill -0 $$! 2>/dev/null || break; \
	    compgen -G "$(COLAB_VENV)/lib/python*/site-packages/tlhelpers-*.dist-info/RECORD" >/dev/null && break; \
	    sleep 2; done; sleep 2; \
	done; status=0; for pid in $$pids; do wait $$pid || status=1; done; \
	for log in $$logs; do echo "== $$log"; grep -v "Debugger warning\|frozen modules\|Debugging will proceed" $$log; done; \
	echo "make test-colab: $$(( $$(date +%s) - start )) s for every notebook in Colab's package set"; \
	mkdir -p benchmarks/results; printf '{"benchmark": "make_test_colab", "seconds": %s, "cpus": %s}\n' \
	  "$$(( $$(date +%s) - start ))" "$$(nproc)" > benchmarks/results/make_test_colab.json; \
	[ $$status -eq 0 ] || { echo "make test-colab: a notebook failed in Colab's package set (its log above)"; exit 1; }
	@echo "make test-colab: all notebooks passed under nbval"

# JupyterLab on the chapters, in the course's pinned environment (the same one `make book` and `make test` use).
lab: venv
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root) \
	  notebooks/01_what_is_transfer_learning.ipynb

clean:
	rm -rf _build .cache
