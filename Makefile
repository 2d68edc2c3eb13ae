# Two commands for a learner: `make lab` (open the course) and `make test` (run every check).
# Both create .venv on first use and reinstall only when a requirements file changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: lab test weights clean-venv help
help:
	@echo "make lab      install the course environment (.venv) and open JupyterLab on notebooks/"
	@echo "make test     install the environment and run every test and notebook (offline model)"
	@echo "make weights  download VGG16's ImageNet weights into the torch cache (needs internet)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "The course needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -e .
	touch $@

$(DEV_STAMP): requirements-dev.txt $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

# JupyterLab refuses to run as root (containers, some cloud machines) unless told to.
lab: $(RUNTIME_STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

weights: $(RUNTIME_STAMP)
	$(BIN)/python -m utils.models download

clean-venv:
	rm -rf $(VENV)
