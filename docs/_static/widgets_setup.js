// Loaded just before the vendored require.js (docs/conf.py, nb_ipywidgets_js), on pages with widgets.
//
// The widget embedder (vendor/html-manager/embed-amd.js) finds its icon fonts relative to the
// RequireJS URL of its modules, "@jupyter-widgets/...", which by default resolves against the page
// (so notebooks/@jupyter-widgets/... 404s) and, for anything missing, a CDN. A global `require`
// object defined before require.js loads is its configuration: map those modules beside the
// vendored copy, so every page, at any depth, finds the fonts here and nothing leaves this site.
(function () {
  var vendored = new URL("vendor/html-manager", document.currentScript.src).href;
  window.require = {
    paths: {
      "@jupyter-widgets/html-manager/dist": vendored,
      "@jupyter-widgets": vendored
    }
  };
  window.__jupyter_widgets_assets_path__ = vendored + "/";
})();
