// Runs table: count the selected runs and enable "Compare" once two or more are chosen.
(function () {
  "use strict";
  var form = document.getElementById("compare-form");
  if (!form) {
    return;
  }
  var button = document.getElementById("compare-button");
  var counter = document.getElementById("selection-count");
  var all = document.getElementById("select-all");

  function boxes() {
    return Array.prototype.slice.call(form.querySelectorAll("input[name=runs]"));
  }
  function update() {
    var chosen = boxes().filter(function (b) { return b.checked; }).length;
    counter.textContent = chosen + " selected";
    button.disabled = chosen < 2;
    boxes().forEach(function (b) {
      b.closest("tr").classList.toggle("chosen", b.checked);
    });
  }
  form.addEventListener("change", function (event) {
    if (event.target === all) {
      boxes().forEach(function (b) { b.checked = all.checked; });
    }
    update();
  });
  update();
})();
