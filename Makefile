# Two commands for a newcomer: `make lab` (JupyterLab on the notebooks) and `make test`.
# `make present` serves the hibernation dashboard with Voila at http://127.0.0.1:8866 for a workshop.
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

.PHONY: setup lab present test bench clean

setup: $(VENV)/.installed-notebooks,test

# One stamp per set of extras, newer than pyproject.toml once installed, so re-runs are instant.
# Installing "a,b" also stamps "a" and "b", so `make test` then `make lab` installs nothing twice.
$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[$*]" $(QUIET_PIP)
	for extras in $* $(subst $(comma), ,$*); do touch "$(VENV)/.installed-$$extras"; done

# Served from the repository root (the notebooks link ../assets/ images), opened at notebooks/.
lab: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=. --ServerApp.default_url=/lab/tree/notebooks $(ALLOW_ROOT)

# Workshop mode: the hibernation dashboard alone, served by Voila (no code, no notebook UI).
# tests/test_browser.py runs this recipe as it is (make -o <stamp> present PRESENT_DIR=<copy> ...).
PRESENT_DIR      ?= notebooks
PRESENT_NOTEBOOK ?= present-hibernation.ipynb
PRESENT_PORT     ?= 8866
VOILA_CONFIG_DIR  = $(abspath $(VENV))/voila-config
present: $(VENV)/.installed-notebooks,present
	mkdir -p "$(VOILA_CONFIG_DIR)"
	printf '%s\n' "$$VOILA_CONFIG" > "$(VOILA_CONFIG_DIR)/voila.py"
	cd "$(PRESENT_DIR)" && exec env -u MPLBACKEND "$(abspath $(BIN))/voila" "$(PRESENT_NOTEBOOK)" --no-browser \
	  --Voila.ip=127.0.0.1 --port=$(PRESENT_PORT) --Voila.config_file_paths "$(VOILA_CONFIG_DIR)"

# Voila's executor waits for each execute_reply with one asyncio zmq poll, and with pyzmq 27 and
# jupyter_client 8.10 that poll now and then misses the wake-up: the kernel is idle, the page never
# finishes (about 1 load in 7 here; voila-dashboards/voila#1446, jupyter/nbclient#312). Polling in
# 1 s slices, as tests/test_notebooks.py does for nbclient, ended it (0 stalls in 26 loads).
define VOILA_CONFIG
# Written by `make present` (Makefile, VOILA_CONFIG); edit it there.
import time
from queue import Empty

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type

SLICE = 1.0  # seconds: the longest a missed wake-up can stall a page


class SlicedChannel(AsyncZMQSocketChannel):
    """A kernel channel whose get_msg polls in slices, so a missed wake-up costs one slice."""

    async def get_msg(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(SLICE, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class SlicedClient(AsyncKernelClient):
    shell_channel_class = Type(SlicedChannel)
    iopub_channel_class = Type(SlicedChannel)


c.KernelManager.client_factory = SlicedClient
endef
export VOILA_CONFIG

test: $(VENV)/.installed-notebooks,test
	$(BIN)/python -m pytest

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
