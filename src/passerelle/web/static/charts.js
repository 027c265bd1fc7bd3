// Draw every figure a page embeds as <script type="application/json" class="plotly-figure">.
// Figures are built on the server; this file only hands them to plotly.js.
(function () {
  "use strict";
  function draw() {
    if (typeof Plotly === "undefined") {
      return;
    }
    document.querySelectorAll("script.plotly-figure").forEach(function (node) {
      var target = document.getElementById(node.dataset.target);
      if (!target) {
        return;
      }
      var figure = JSON.parse(node.textContent);
      Plotly.newPlot(target, figure.data, figure.layout, figure.config);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
