// Draws the report's charts as SVG from the figures embedded in #report-data.
// Kept small and dependency-free: the report must open from a mail attachment or a file share
// with no network. Every bar carries data-label and data-value so its figure can be checked.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var source = document.getElementById("report-data");
  if (!source) return;
  var figures = JSON.parse(source.textContent);

  function el(name, attrs, parent, text) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) node.setAttribute(key, String(attrs[key]));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // Width of a label in pixels at 12px: CJK characters are about twice as wide as Latin ones.
  function textWidth(s) {
    var w = 0;
    for (var i = 0; i < s.length; i++) w += s.charCodeAt(i) > 0x2e80 ? 12 : 7;
    return w;
  }

  function svgFor(chart, width, height) {
    return el("svg", {
      xmlns: NS,
      "data-chart": chart.id,
      role: "img",
      "aria-label": chart.title,
      viewBox: "0 0 " + width + " " + height,
      width: width,
      height: height,
      class: "chart-svg"
    });
  }

  function empty(chart) {
    var svg = svgFor(chart, 360, 32);
    el("text", { x: 8, y: 20, class: "empty" }, svg, "nothing to chart");
    return svg;
  }

  // Horizontal bars: long labels (rep pairs, Chinese team names) stay readable.
  function bars(chart) {
    var rows = chart.bars;
    if (!rows.length) return empty(chart);
    var labelW = 0, max = 0;
    rows.forEach(function (b) {
      labelW = Math.max(labelW, textWidth(b.label));
      max = Math.max(max, b.value);
    });
    labelW = Math.min(labelW + 12, 320);
    var plotW = 420, rowH = 22, width = labelW + plotW + 60;
    var svg = svgFor(chart, width, rows.length * rowH + 8);
    rows.forEach(function (b, i) {
      var y = 4 + i * rowH;
      var w = max > 0 ? Math.max(1, Math.round((b.value / max) * plotW)) : 1;
      var g = el("g", { class: "bar-row" }, svg);
      el("text", { x: labelW - 8, y: y + 15, "text-anchor": "end", class: "label" }, g, b.label);
      var rect = el("rect", {
        class: "bar",
        "data-label": b.label,
        "data-value": b.value,
        x: labelW, y: y + 3, width: w, height: rowH - 6, rx: 2
      }, g);
      el("title", {}, rect, b.label + (b.note ? " (" + b.note + ")" : "") + ": " + b.value);
      el("text", { x: labelW + w + 6, y: y + 15, class: "value" }, g, String(b.value));
    });
    return svg;
  }

  // Vertical columns in order along the x axis, for per-day counts.
  function columns(chart) {
    var cols = chart.bars;
    if (!cols.length) return empty(chart);
    var max = 0;
    cols.forEach(function (b) { max = Math.max(max, b.value); });
    var colW = Math.max(6, Math.min(36, Math.floor(860 / cols.length)));
    var plotH = 180, top = 18, bottom = 70, left = 36;
    var width = left + cols.length * colW + 12;
    var svg = svgFor(chart, width, top + plotH + bottom);
    el("line", { x1: left, y1: top + plotH, x2: width - 8, y2: top + plotH, class: "axis" }, svg);
    el("text", { x: left - 6, y: top + 4, "text-anchor": "end", class: "value" }, svg, String(max));
    el("text", { x: left - 6, y: top + plotH, "text-anchor": "end", class: "value" }, svg, "0");
    // Label at most ~30 days so the dates don't overlap; every column keeps its tooltip.
    var every = Math.max(1, Math.ceil(cols.length / 30));
    cols.forEach(function (b, i) {
      var h = max > 0 ? Math.round((b.value / max) * plotH) : 0;
      var x = left + i * colW + 1;
      var rect = el("rect", {
        class: "bar",
        "data-label": b.label,
        "data-value": b.value,
        x: x, y: top + plotH - h, width: colW - 2, height: h
      }, svg);
      el("title", {}, rect, b.label + ": " + b.value);
      if (i % every === 0) {
        var lx = x + colW / 2, ly = top + plotH + 12;
        el("text", {
          x: lx, y: ly, "text-anchor": "end", class: "label",
          transform: "rotate(-45 " + lx + " " + ly + ")"
        }, svg, b.label);
      }
    });
    return svg;
  }

  figures.charts.forEach(function (chart) {
    var holder = document.querySelector('[data-chart-for="' + chart.id + '"]');
    if (holder) holder.appendChild(chart.kind === "columns" ? columns(chart) : bars(chart));
  });
})();
