/* Leadership dashboard: draws the charts from /api/metrics with the page's filters.
 * Every number is also in the server-rendered tables, so the page works without this file. */
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  var status = document.getElementById("chart-status");
  if (!root) { return; }
  if (typeof window.Chart === "undefined") {
    if (status) { status.textContent = "Charts are unavailable; the data tables show every number."; }
    return;
  }

  // Colour-blind-safe palette (Okabe-Ito), in a fixed order so a series keeps its colour.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
  var RESOLUTION_COLOURS = { bot: "#009E73", agent: "#0072B2", unresolved: "#D55E00" };

  Chart.defaults.animation = false;
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  Chart.defaults.color = "#1b1f24";
  Chart.defaults.maintainAspectRatio = false;

  function draw(name, config) {
    var canvas = document.getElementById("chart-" + name);
    if (!canvas) { return null; }
    var existing = Chart.getChart(canvas);
    if (existing) { existing.destroy(); }
    return new Chart(canvas, config);
  }

  function stackedBars(labels, datasets, yTitle) {
    return {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: yTitle } }
        },
        plugins: { legend: { position: "bottom" } }
      }
    };
  }

  function render(d) {
    var days = d.daily.map(function (p) { return p.day; });

    var channels = [];
    d.daily.forEach(function (p) {
      Object.keys(p.by_channel).forEach(function (c) { if (channels.indexOf(c) < 0) { channels.push(c); } });
    });
    channels.sort();
    draw("volume_by_channel", stackedBars(days, channels.map(function (c, i) {
      return {
        label: c,
        data: d.daily.map(function (p) { return p.by_channel[c] || 0; }),
        backgroundColor: PALETTE[i % PALETTE.length]
      };
    }), "conversations"));

    draw("response_times", {
      type: "line",
      data: {
        labels: days,
        datasets: [["p50", "response_p50_ms", 0], ["p90", "response_p90_ms", 1], ["p99", "response_p99_ms", 5]].map(function (s) {
          return {
            label: s[0],
            data: d.daily.map(function (p) { return p[s[1]]; }),
            borderColor: PALETTE[s[2]],
            backgroundColor: PALETTE[s[2]],
            spanGaps: true,
            tension: 0.2
          };
        })
      },
      options: {
        scales: { y: { beginAtZero: true, title: { display: true, text: "milliseconds" } } },
        plugins: { legend: { position: "bottom" } }
      }
    });

    draw("resolution_mix", stackedBars(days, ["bot", "agent", "unresolved"].map(function (r) {
      return {
        label: { bot: "resolved by bot", agent: "resolved by staff", unresolved: "unresolved" }[r],
        data: d.daily.map(function (p) { return p.resolution[r]; }),
        backgroundColor: RESOLUTION_COLOURS[r]
      };
    }), "conversations"));

    var reasons = Object.keys(d.handoff_reasons);
    draw("handoffs_by_reason", {
      type: "bar",
      data: {
        labels: reasons.map(function (r) { return r.replace(/_/g, " "); }),
        datasets: [{
          label: "handoffs",
          data: reasons.map(function (r) { return d.handoff_reasons[r]; }),
          backgroundColor: PALETTE[0]
        }]
      },
      options: {
        indexAxis: "y",
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false } }
      }
    });

    root.dataset.chartsReady = "true";
    if (status) { status.textContent = "Charts updated."; }
  }

  fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (resp) {
      if (!resp.ok) { throw new Error("the metrics API answered " + resp.status); }
      return resp.json();
    })
    .then(render)
    .catch(function (err) {
      root.dataset.chartsReady = "error";
      if (status) { status.textContent = "Charts could not be drawn (" + err.message + "); the data tables show every number."; }
    });
}());
