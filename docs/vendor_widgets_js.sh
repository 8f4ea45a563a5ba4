#!/usr/bin/env bash
# Vendor the JavaScript that renders widget snapshots in the static site, so no page needs a CDN.
#
# myst-nb embeds each notebook's widget state in its page; require.js and the
# @jupyter-widgets/html-manager embedder turn that state into real widgets. By default myst-nb
# loads both from public CDNs, which leaves the widget area blank offline. This fetches them from
# the npm registry (npm pack: no node_modules, no install scripts) into docs/_static/vendor/,
# which docs/conf.py points nb_ipywidgets_js at. The output is gitignored; `make docs` runs this.
#
# Usage: bash docs/vendor_widgets_js.sh      (from anywhere; about 1 s, 10 MB)
set -euo pipefail

HTML_MANAGER=1.0.15   # @jupyter-widgets/html-manager: renders ipywidgets 8 state (verified)
REQUIREJS=2.3.8       # the AMD loader embed-amd.js expects

docs="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$docs/_static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(
  cd "$tmp"
  npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER" "requirejs@$REQUIREJS" >/dev/null
  for tarball in *.tgz; do mkdir "${tarball%.tgz}" && tar xzf "$tarball" -C "${tarball%.tgz}"; done
)

# Build the new copy beside the old one and swap, so an interrupted run leaves no half copy.
mkdir -p "$tmp/vendor/html-manager"
cp "$tmp/requirejs-$REQUIREJS/package/require.js" "$tmp/vendor/"
manager="$tmp/jupyter-widgets-html-manager-$HTML_MANAGER/package/dist"
cp "$manager/embed-amd.js" "$tmp/vendor/html-manager/"
# Icon fonts: the embedder looks for them beside its RequireJS module URL,
# which _static/widgets_setup.js maps here (else they resolve relative to each page).
cp "$manager"/*.{woff,woff2,ttf,eot,svg} "$tmp/vendor/html-manager/"
printf '@jupyter-widgets/html-manager %s\nrequirejs %s\n' "$HTML_MANAGER" "$REQUIREJS" >"$tmp/vendor/VERSIONS"

rm -rf "$dest"
mv "$tmp/vendor" "$dest"
echo "vendored widget JS into ${dest#"$PWD"/}"
