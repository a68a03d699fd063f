// Veritrain explorer: draws the charts (vendored Chart.js) and keeps the page live without a
// reload: it polls /api/head and, when the chain moved, fetches the page's fragment and swaps it in.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var banner = document.getElementById("status");
  var head = document.getElementById("head");
  if (!live) { return; }
  var version = live.getAttribute("data-version");
  var poll = parseInt(live.getAttribute("data-poll"), 10) || 1500;

  function drawCharts() {
    if (typeof Chart === "undefined") { return; }
    var blocks = live.querySelectorAll("script.chart-data");
    for (var i = 0; i < blocks.length; i++) {
      var canvas = document.getElementById(blocks[i].getAttribute("data-canvas"));
      if (!canvas) { continue; }
      var old = Chart.getChart(canvas);
      if (old) { old.destroy(); }
      new Chart(canvas, JSON.parse(blocks[i].textContent));
    }
  }

  function say(text) {
    if (text) { banner.textContent = text; banner.hidden = false; } else { banner.hidden = true; }
  }

  function tick() {
    fetch("/api/head", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (h) {
      say(h.error);
      if (h.head !== null && h.head !== undefined && head) { head.textContent = h.head; }
      if (h.error || h.version === version) { return null; }
      var sep = location.search ? "&" : "?";
      return fetch(location.pathname + location.search + sep + "fragment=1", { cache: "no-store" })
        .then(function (p) {
          if (!p.ok) { return null; }
          return p.text().then(function (html) {
            live.innerHTML = html;
            version = h.version;
            live.setAttribute("data-version", version);
            document.body.setAttribute("data-updates", String(+document.body.getAttribute("data-updates") + 1));
            drawCharts();
          });
        });
    }).catch(function () {
      say("The explorer server does not answer; retrying.");
    }).then(function () { setTimeout(tick, poll); });
  }

  drawCharts();
  setTimeout(tick, poll);
})();
