// Draws every [data-chart] element from its JSON data island (no inline scripts, so the
// Content-Security-Policy can forbid them), again after each htmx swap. A point whose
// customdata is a local URL links through to the tests behind it.
// No mode bar: its buttons are focusable controls inside the chart's role=img (nested
// interactive content), and they covered the legend on a phone. The figure's title is
// the page's caption of the chart (the chart template tag), not drawn again here.
(function () {
  "use strict";
  var config = { responsive: true, displayModeBar: false, displaylogo: false };

  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var island = document.getElementById(el.dataset.chart);
      if (!island) return;
      var figure = JSON.parse(island.textContent);
      if (figure.layout) delete figure.layout.title;
      window.Plotly.newPlot(el, figure.data, figure.layout, config).then(function () {
        el.dataset.drawn = "1";
      });
      el.on("plotly_click", function (event) {
        var point = event.points && event.points[0];
        var target = point && point.customdata;
        if (Array.isArray(target)) target = target[0];
        if (typeof target === "string" && target.charAt(0) === "/" && target.charAt(1) !== "/") {
          window.location.href = target;
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.detail.elt || document); });
})();
