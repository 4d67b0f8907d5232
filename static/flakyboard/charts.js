// Draws every [data-chart] element from its JSON data island (no inline scripts, so the
// Content-Security-Policy can forbid them), again after each htmx swap. A point whose
// customdata is a local URL links through to the tests behind it.
// No mode bar: its buttons are focusable controls inside the chart's role=img (nested
// interactive content), and they covered the legend on a phone. The figure's title is
// the page's caption of the chart (the chart template tag), not drawn again here.
(function () {
  "use strict";
  var config = { responsive: true, displayModeBar: false, displaylogo: false };

  // The point clicked. With a unified hover ("x unified": every series at that x) the
  // click gives one point per series, in an order of Plotly's (not the series under the
  // pointer): take the one nearest the pointer on the y axis.
  function pointed(el, event) {
    var points = event.points || [];
    if (points.length < 2 || !event.event) return points[0];
    var y = event.event.clientY - el.getBoundingClientRect().top;
    var best = points[0];
    var nearest = Infinity;
    points.forEach(function (point) {
      var axis = point.yaxis;
      if (!axis || !axis.l2p || typeof point.y !== "number") return;
      var distance = Math.abs(axis._offset + axis.l2p(point.y) - y);
      if (distance < nearest) { nearest = distance; best = point; }
    });
    return best;
  }

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
        var point = pointed(el, event);
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
