"""``python -m evtsim``: the same as the ``evtsim`` command (see ``evtsim.cli``)."""

from .cli import main

raise SystemExit(main())
