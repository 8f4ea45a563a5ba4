# Two commands for a newcomer: `make lab` (JupyterLab on the notebooks) and `make test`.
SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
comma  := ,
# pip prints harmless 'WARNING: Location ... is ignored' lines on this kind of machine; drop only those.
QUIET_PIP := 2>&1 | { grep -v '^WARNING: Location' || true; }
# jupyter lab refuses to run as root without --allow-root; learners are not root, CI and our machines are.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab test bench clean

setup: $(VENV)/.installed-notebooks,test

# One stamp per set of extras, newer than pyproject.toml once installed, so re-runs are instant.
# Installing "a,b" also stamps "a" and "b", so `make test` then `make lab` installs nothing twice.
$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[$*]" $(QUIET_PIP)
	for extras in $* $(subst $(comma), ,$*); do touch "$(VENV)/.installed-$$extras"; done

lab: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks $(ALLOW_ROOT)

test: $(VENV)/.installed-notebooks,test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-notebooks,test
	shopt -s nullglob; for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python "$$script"; done

clean:
	rm -rf $(VENV) build dist *.egg-info .hypothesis docs/_build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
