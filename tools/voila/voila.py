"""Voila's configuration for `make present`: a page's kernel is freed when the page goes away.

- Kernel replies are polled in slices (tools/sliced_kernel.py).
- The page asks Voila to shut its kernel down when it unloads (a ``beforeunload`` beacon to
  ``/voila/api/shutdown/<kernel>``), sending the ``_xsrf`` cookie as a form field. Voila 0.5
  never sets that cookie, so the request was refused (403, "'_xsrf' argument missing from
  POST") and every reload left a kernel behind. The prelaunch hook below reads the handler's
  ``xsrf_token``, which is how tornado sets the cookie, before the page is sent.
- Kernels nobody is connected to are culled by the Makefile's ``--MappingKernelManager.cull_*``
  options (PRESENT_CULL_IDLE), for pages that vanish without a beacon (a crashed browser).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sliced_kernel import SlicedClient  # noqa: E402


def set_xsrf_cookie(req, notebook, cwd):
    """VoilaConfiguration.prelaunch_hook: give the page the ``_xsrf`` cookie its shutdown beacon sends."""
    req.xsrf_token  # noqa: B018  (reading it sets the cookie: tornado.web.RequestHandler.xsrf_token)
    return notebook


c.KernelManager.client_factory = SlicedClient  # noqa: F821  (c is Voila's config object)
c.VoilaConfiguration.prelaunch_hook = set_xsrf_cookie  # noqa: F821
