# Two commands for a newcomer: `make lab` (JupyterLab on the notebooks) and `make test`.
# `make present` serves the hibernation dashboard with Voila for a workshop: open the URL it prints
# (http://127.0.0.1:8866/?token=..., like JupyterLab's). Variables: LAB_PORT, PRESENT_IP,
# PRESENT_PORT, PRESENT_CULL_IDLE (see below), e.g. `make present PRESENT_IP=0.0.0.0` for a room.
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

.PHONY: setup lab present test screenshots bench clean

setup: $(VENV)/.installed-notebooks,test

# One stamp per set of extras, newer than pyproject.toml once installed, so re-runs are instant.
# Installing "a,b" also stamps "a" and "b", so `make test` then `make lab` installs nothing twice.
$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[$*]" $(QUIET_PIP)
	for extras in $* $(subst $(comma), ,$*); do touch "$(VENV)/.installed-$$extras"; done

# Served from the repository root (the notebooks link ../assets/ images), opened at notebooks/.
# JupyterLab prints its URL with a fresh token; if LAB_PORT is taken it tries the next ports.
LAB_PORT ?= 8888
lab: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(LAB_PORT) --ServerApp.root_dir=. \
	  --ServerApp.default_url=/lab/tree/notebooks $(ALLOW_ROOT)

# Workshop mode: the hibernation dashboard alone, served by Voila (no code, no notebook UI).
# Every page runs a kernel, so the server needs a token as JupyterLab does: a fresh one is printed
# in the URL at start (set JUPYTER_TOKEN to choose it; the log then shows `?token=...`).
# PRESENT_IP is the address to listen on: 127.0.0.1 (this machine only) by default; 0.0.0.0 for a
# room, where attendees open http://<this machine>:PRESENT_PORT/?token=<token>.
# A page frees its kernel when it is closed or reloaded (tools/voila/voila.py); a kernel that no
# page is connected to (a crashed browser, a laptop put to sleep) is culled after
# PRESENT_CULL_IDLE seconds idle, checked every PRESENT_CULL_INTERVAL seconds.
# tests/test_browser.py runs this recipe as it is (make -o <stamp> present PRESENT_DIR=<copy> ...).
PRESENT_DIR      ?= notebooks
PRESENT_NOTEBOOK ?= present-hibernation.ipynb
PRESENT_IP       ?= 127.0.0.1
PRESENT_PORT     ?= 8866
PRESENT_CULL_IDLE     ?= 300
PRESENT_CULL_INTERVAL ?= 30
# tools/voila/voila.py polls kernel replies in 1 s slices: Voila's executor otherwise misses
# one now and then and the page never finishes (see tools/sliced_kernel.py).
VOILA_CONFIG_DIR  = $(abspath tools/voila)
present: $(VENV)/.installed-notebooks,present
	cd "$(PRESENT_DIR)" && exec env -u MPLBACKEND "$(abspath $(BIN))/voila" "$(PRESENT_NOTEBOOK)" --no-browser \
	  --Voila.ip=$(PRESENT_IP) --port=$(PRESENT_PORT) --Voila.auto_token=True \
	  --MappingKernelManager.cull_idle_timeout=$(PRESENT_CULL_IDLE) \
	  --MappingKernelManager.cull_interval=$(PRESENT_CULL_INTERVAL) \
	  --Voila.config_file_paths "$(VOILA_CONFIG_DIR)"


test: $(VENV)/.installed-notebooks,test
	$(BIN)/python -m pytest

# The README's screenshots, redrawn by the browser tests (which otherwise keep theirs in a temporary folder).
screenshots: $(VENV)/.installed-notebooks,test
	EVTSIM_SCREENSHOTS="$(abspath assets/screenshots)" $(BIN)/python -m pytest tests/test_browser.py

bench: $(VENV)/.installed-notebooks,test
	shopt -s nullglob; for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python "$$script"; done

# `make docs`: the static site in docs/_build/html (Sphinx + myst-nb; every notebook is executed).
# Offline by design: the widget JavaScript is vendored from npm once (docs/vendor_widgets_js.sh),
# never fetched from a CDN. MPLBACKEND is dropped because kernels inherit it (Agg = no figures).
.PHONY: docs
docs: $(VENV)/.installed-notebooks,docs docs/_static/vendor/VERSIONS
	env -u MPLBACKEND $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

docs/_static/vendor/VERSIONS: docs/vendor_widgets_js.sh
	bash docs/vendor_widgets_js.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .hypothesis docs/_build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
