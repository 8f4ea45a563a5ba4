"""Sphinx configuration for the evtsim site: the teaching notebooks (executed), the API, the story.

Build with ``make docs`` (HTML in ``docs/_build/html``). The build is offline: the notebooks run
on a local kernel, and the widget snapshots render with JavaScript vendored from npm by
``docs/vendor_widgets_js.sh``, never from a CDN (``tests/test_docs.py`` checks both).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
VENDOR = DOCS / "_static" / "vendor"


def link_assets() -> None:
    """Make ``docs/assets`` a symlink to the repository's ``assets/`` (Sphinx reads only docs/).

    The notebooks and pages refer to figures as ``../assets/...``; through this link that path
    means the same from ``docs/notebooks/`` as from ``notebooks/``.
    """
    link = DOCS / "assets"
    if not link.is_symlink():
        link.symlink_to(Path("..") / "assets", target_is_directory=True)


def mirror_notebooks() -> None:
    """Copy ``notebooks/*.ipynb`` into ``docs/notebooks/``, dropping copies whose original is gone.

    Copies, not symlinks: MyST resolves a link such as ``[the series](README.md)`` from a
    notebook's real path, which for a symlink lies outside docs/. Beside the copies sits
    ``docs/notebooks/README.md``, this site's page for the series and the target of that link.
    ``copy2`` keeps the mtime, so an unchanged notebook is not re-read by an incremental build.
    """
    mirror = DOCS / "notebooks"
    originals = {p.name: p for p in (ROOT / "notebooks").glob("*.ipynb")}
    for stale in mirror.glob("*.ipynb"):
        if stale.name not in originals:
            stale.unlink()
    for name, original in originals.items():
        copy = mirror / name
        if not copy.exists() or copy.read_bytes() != original.read_bytes():
            shutil.copy2(original, copy)


def require_vendored_widget_js() -> None:
    """Stop with the fix if the widget JS is missing, rather than publish blank widget areas."""
    missing = [p for p in ("require.js", "html-manager/embed-amd.js") if not (VENDOR / p).is_file()]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)} in {VENDOR}; run: bash docs/vendor_widgets_js.sh")


link_assets()
mirror_notebooks()
require_vendored_widget_js()

# -- Project -----------------------------------------------------------------------------------
project = "evtsim"
author = "the evtsim authors"
copyright = "evtsim authors"
release = version = "0.1.0"

extensions = [
    "myst_nb",  # Markdown pages and .ipynb notebooks, executed at build time
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
]
root_doc = "index"
exclude_patterns = [
    "_build", "jupyter_execute", ".jupyter_cache", "**.ipynb_checkpoints",
    "assets",  # only the figures in it are used, through image links
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- Notebooks: executed on every build --------------------------------------------------------
# "cache" (jupyter-cache, a myst-nb dependency, which keeps the widget state too) re-executes a
# notebook only when its code cells change; setup() below also keys the cache to evtsim's sources,
# so a change to the package re-executes everything. A fresh output directory executes all.
nb_execution_mode = "cache" if importlib.util.find_spec("jupyter_cache") else "force"
nb_execution_timeout = 120
nb_execution_raise_on_error = True  # a notebook that fails must fail the build
nb_execution_show_tb = True
nb_merge_streams = True
# The pages keep the widgets' state, drawn by ipywidgets' own JavaScript: no dashboard adds the
# hidden widget that asks a live browser for its pixel ratio (evtsim/widgets/screen.py), which
# would need anywidget's. The kernels myst-nb starts inherit this.
os.environ["EVTSIM_STATIC_WIDGETS"] = "1"
# Widget snapshots: vendored JS (docs/vendor_widgets_js.sh), loaded in this order, never a CDN.
# Do not add data-jupyter-widgets-cdn-only: its mere presence makes the loader use the CDN.
nb_ipywidgets_js = {
    "widgets_setup.js": {},
    "vendor/require.js": {},
    "vendor/html-manager/embed-amd.js": {},
}

# -- API reference -----------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# ignore-module-all: document what each module defines, not what it re-exports (evtsim.scenarios
# re-exports the function `hibernation`, which has the same dotted name as its module).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
add_module_names = False

# -- HTML --------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "evtsim"
html_static_path = ["_static"]
html_theme_options = {
    "use_download_button": True,  # the .ipynb and .md sources, served from this site
    "show_toc_level": 2,
    "show_navbar_depth": 2,  # the notebooks listed under "The teaching series" in the sidebar
}
html_last_updated_fmt = None


def evtsim_digest() -> str:
    """A short hash of every file in the evtsim package: what the notebooks' outputs depend on."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "evtsim").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def key_execution_cache(app, config) -> None:
    """Use ``<outdir>/../.jupyter_cache/<evtsim digest>``, dropping caches of other versions.

    jupyter-cache alone keys a notebook by its code, so after a change to evtsim it would serve
    outputs the package no longer produces.
    """
    caches = Path(app.outdir).parent / ".jupyter_cache"
    for old in caches.glob("*") if caches.is_dir() else ():
        if old.name != evtsim_digest():
            shutil.rmtree(old)
    config.nb_execution_cache_path = str(caches / evtsim_digest())


def setup(app) -> None:
    """Hook the cache keying in before myst-nb reads its configuration (builder-inited)."""
    app.connect("config-inited", key_execution_cache)
