# Two commands for a learner: `make lab` (open the course) and `make test` (run every check).
# Both create .venv on first use and reinstall only when a requirements file changes.
# For instructors: `make check` (is this laptop ready?), `make html` (the course as a static site),
# `make handout` (the course without its solutions, as a zip), `make wheelhouse` (every package, for a room without
# wifi: then `make lab WHEELHOUSE=/path/to/wheelhouse` installs with no network at all).
# Paths are quoted in the recipes: PYTHON="/path with space/python3.11" works.

# Python 3.11, 3.12 or 3.13: the first of python3.11, python3.12, python3.13 and python3 on PATH, unless PYTHON says.
# A second environment beside .venv for another version: make test PYTHON=python3.13 VENV=build/venv-3.13
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
# uv installs the pinned requirements (about 25 s for 6 GB, against 2.5 min for pip); pip only bootstraps it. Modules
# are compiled at install (--compile-bytecode), as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing else would.
# uv reads UV_* settings (UV_INDEX_URL, UV_EXTRA_INDEX_URL, ...), not pip.conf: set those for a package mirror.
UV_VERSION := 0.13.8
# WHEELHOUSE=/path: install from that folder of wheels (make wheelhouse) with no network at all; empty: from PyPI.
WHEELHOUSE ?=
OFFLINE := $(if $(WHEELHOUSE),--offline --no-index --find-links "$(abspath $(WHEELHOUSE))")
PIP_OFFLINE := $(if $(WHEELHOUSE),--no-index --find-links "$(abspath $(WHEELHOUSE))")
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: lab test test-vgg16 weights clean-venv help html check handout wheelhouse inventories
help:
	@echo "make lab      install the course environment (.venv) and open lesson 00 in JupyterLab"
	@echo "make test     install the environment and run every test and notebook (offline model; TESTS=paths: some)"
	@echo "make test-vgg16  run every lesson and solution to the end on VGG16 with random weights (slow; CI runs it)"
	@echo "make weights  download VGG16's ImageNet weights into the torch cache (needs internet)"
	@echo "make check    prove this machine is ready for the course: runs lesson 00 as a test"
	@echo "make html     execute every notebook and render the course as a website (Sphinx) in build/html/"
	@echo "make handout  zip the last commit without its solutions into build/handout.zip"
	@echo "make wheelhouse  every pinned package as wheels in build/wheelhouse (WHEELHOUSE=dir), for offline installs"
	@echo "make inventories  download the libraries' Sphinx inventories into book/_inventories/ (needs internet)"
	@echo "make clean-venv  remove .venv (the next make lab or make test reinstalls it)"
	@echo "make mutation   mutation testing of utils/, each module by its own tests (MODULE=saliency: one)"

# One line when the interpreter is missing or of another version: which one was found, and what to do.
PYTHON_CHECK := import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(None if v in ("3.11", "3.12", "3.13") else \
	f"The course needs Python 3.11, 3.12 or 3.13; {sys.executable} is Python {v}: install one of those and pass it, \
	e.g. make lab PYTHON=python3.13")
$(BIN)/python:
	@command -v "$(PYTHON)" >/dev/null 2>&1 || { echo "No Python found (PYTHON='$(PYTHON)'): install Python 3.11, \
	3.12 or 3.13 and pass it, e.g. make lab PYTHON=/path/to/python3.13" >&2; exit 1; }
	@"$(PYTHON)" -c '$(PYTHON_CHECK)'
	"$(PYTHON)" -m venv "$(VENV)"

$(UV): | $(BIN)/python
	"$(BIN)/python" -m pip install --disable-pip-version-check --quiet $(PIP_OFFLINE) "uv==$(UV_VERSION)"

$(RUNTIME_STAMP): requirements.txt pyproject.toml | $(UV)
	"$(UV)" pip install $(OFFLINE) --compile-bytecode --python "$(BIN)/python" -r requirements.txt
	"$(UV)" pip install $(OFFLINE) --python "$(BIN)/python" --no-deps -e .
	touch "$@"

$(DEV_STAMP): requirements-dev.txt $(RUNTIME_STAMP)
	"$(UV)" pip install $(OFFLINE) --compile-bytecode --python "$(BIN)/python" -r requirements-dev.txt
	touch "$@"

# Every package the course installs (runtime, tests, site), uv and what builds the course's own package, as wheels in
# one folder (about 6 GB) for this operating system and Python: copy it to a USB stick or a file server, then on each
# laptop `make lab WHEELHOUSE=/path` (or make test) installs from it with the network off. pip builds the wheels of
# packages published as source only, so the laptops need no compiler and no index.
WHEELHOUSE_DIR = $(or $(WHEELHOUSE),build/wheelhouse)
wheelhouse: | $(BIN)/python
	@mkdir -p "$(WHEELHOUSE_DIR)"
	"$(BIN)/python" -m pip wheel --disable-pip-version-check --quiet --wheel-dir "$(WHEELHOUSE_DIR)" \
		-r requirements-dev.txt "uv==$(UV_VERSION)" "setuptools>=68" wheel
	@echo "$(WHEELHOUSE_DIR): $$(ls "$(WHEELHOUSE_DIR)" | wc -l) wheels, $$(du -sh "$(WHEELHOUSE_DIR)" | cut -f1);" \
		"install with: make lab WHEELHOUSE=$(WHEELHOUSE_DIR)"

# make lab opens lesson 00 (not the Launcher), with no news pop-up and no update check: JupyterLab reads these
# defaults from the environment's overrides.json. JupyterLab refuses to run as root (containers) unless told to.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES):
	@mkdir -p "$(dir $@)"
	printf '%s\n' '{"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": false}}' \
		> "$@"

lab: $(RUNTIME_STAMP) $(LAB_OVERRIDES)
	"$(BIN)/jupyter" lab --notebook-dir=notebooks notebooks/00_start_here.ipynb \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# TESTS=...: pytest's paths instead of pyproject.toml's testpaths, e.g. TESTS="tests utils" (all but the notebooks).
TESTS ?=
test: $(DEV_STAMP)
	"$(BIN)/python" -m pytest -n auto $(TESTS)

# VGG16's branch of every lesson, with seeded random weights (its real ones cannot be downloaded in CI); the numbers are
# meaningless, so claims print instead of asserting. Not in make test: pyproject.toml deselects the vgg16 marker.
# On pytest-xdist's workers, the slowest notebook first: two one-thread kernels beat one two-thread kernel by about 10%.
test-vgg16: $(DEV_STAMP)
	"$(BIN)/python" -m pytest -n auto -m vgg16 tests/test_vgg16_lessons.py

weights: $(RUNTIME_STAMP)
	"$(BIN)/python" -m utils.models download

# XAI_MODEL=vgg16 make check also proves VGG16's weights are cached (the tests never download). The model comes first:
# its name, or the one line saying why it cannot be loaded (then nothing else runs).
check: $(DEV_STAMP)
	@"$(BIN)/python" -m utils.models check
	"$(BIN)/python" -m pytest -q -x --no-header -p no:warnings notebooks/00_start_here.ipynb

# Sphinx + MyST-NB + sphinx-book-theme (book/conf.py); the previous site stays until a build succeeds.
html: $(DEV_STAMP)
	"$(BIN)/python" book/build.py --out build/html

# The API reference links the libraries' names offline through book/_inventories/ (shipped: Python, NumPy, Matplotlib,
# Pillow). Where there is internet this fetches all seven (PyTorch, torchvision and Captum too); commit what it adds.
inventories: $(DEV_STAMP)
	"$(BIN)/python" book/build.py --fetch-inventories

# The hand-out is the last commit without the worked answers (notebooks/solutions/, tests/solutions/), with a note
# saying where they come from. It zips what is committed, so it refuses a copy without git or with edits not committed.
HANDOUT_NOTE := build/handout-note/SOLUTIONS.md
handout:
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "make handout zips the last git commit:" \
		"this copy has no git repository; run it in a clone of the course" >&2; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=no)" || { echo "make handout zips the last commit:" \
		"commit or set aside your edits first (git status lists them)" >&2; exit 1; }
	@mkdir -p "$(dir $(HANDOUT_NOTE))"
	@printf '%s\n' "# Where the solutions are" "" \
		"This hand-out leaves out the worked answers: notebooks/solutions/ (each lesson with its exercise answered)" \
		"and tests/solutions/ (the tests that contain an answer). Each lesson stops at its check cell until its" \
		"exercise is answered. Your instructor gives the solutions out after the exercise, from the course's" \
		"repository (the same folders, and the site that make html builds there)." > "$(HANDOUT_NOTE)"
	git archive --format=zip --prefix=guided-gradcam-course/ --add-file="$(HANDOUT_NOTE)" -o build/handout.zip HEAD \
		-- . ':(exclude)notebooks/solutions' ':(exclude)tests/solutions'
	@echo "build/handout.zip: the last commit without notebooks/solutions/ and tests/solutions/ (see its SOLUTIONS.md)"

# Mutation testing (not part of make test: minutes per module): mutmut mutates a copy of each module of utils/ in
# build/mutation/ and runs that module's own tests and doctests (mutation/modules.toml); prints the score and the
# surviving mutants and records them in mutation/scores.md. `make mutation MODULE="saliency regions"` runs some.
.PHONY: mutation
MODULE ?=
mutation: $(DEV_STAMP)
	"$(BIN)/python" mutation/run.py $(MODULE)

clean-venv:
	rm -rf "$(VENV)"
