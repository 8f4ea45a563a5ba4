"""Voila's configuration for `make present`: kernel replies polled in slices (tools/sliced_kernel.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sliced_kernel import SlicedClient  # noqa: E402

c.KernelManager.client_factory = SlicedClient  # noqa: F821  (c is Voila's config object)
