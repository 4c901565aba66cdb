// SVG charts of the router's own history (GET /console/api/history): no library, one <svg> per chart.

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 360, H = 120, LEFT = 34, RIGHT = 4, TOP = 6, BOTTOM = 14;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

// Sparse points ([t, ...fields]) -> one value per bucket from `start`, `count` buckets of `step` seconds.
export function dense(points, index, start, step, count) {
  const values = new Array(count).fill(0);
  for (const p of points) {
    const i = Math.round((p[0] - start) / step);
    if (i >= 0 && i < count) values[i] = p[index];
  }
  return values;
}

function label(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

// A chart: `series` [{label, values, kind: "bar"|"line"}], all of the same length (buckets, oldest first).
export function chart({ title, unit = "", series, minutes = 60, name }) {
  const count = series[0].values.length;
  const top = Math.max(1, ...series.flatMap((x) => x.values));
  const plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
  const x = (i) => LEFT + (i / count) * plotW;
  const y = (v) => TOP + plotH - (v / top) * plotH;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", preserveAspectRatio: "none" });
  svg.append(
    s("line", { class: "axis", x1: LEFT, y1: TOP + plotH, x2: W - RIGHT, y2: TOP + plotH }),
    s("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: TOP + plotH }),
    s("text", { x: LEFT - 4, y: TOP + 8, "text-anchor": "end" }, label(top)),
    s("text", { x: LEFT - 4, y: TOP + plotH, "text-anchor": "end" }, "0"),
    s("text", { x: LEFT, y: H - 2 }, `-${minutes} min`),
    s("text", { x: W - RIGHT, y: H - 2, "text-anchor": "end" }, "now"),
  );
  const barW = Math.max(0.6, plotW / count / series.filter((x) => x.kind === "bar").length);
  let bar = 0;
  series.forEach((one, n) => {
    if (one.kind === "bar") {
      const offset = bar++ * barW;
      one.values.forEach((v, i) => {
        if (v > 0) svg.append(s("rect", { class: `s${n}`, x: x(i) + offset, y: y(v), width: barW, height: TOP + plotH - y(v) }));
      });
    } else {
      // `gaps`: a zero is "no data" (no call in that bucket), not a value: the line breaks, calls show as dots.
      let d = "", pen = false;
      one.values.forEach((v, i) => {
        if (one.gaps && !v) { pen = false; return; }
        const at = `${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`;
        d += `${pen ? "L" : "M"}${at}`;
        pen = true;
        if (one.gaps) svg.append(s("circle", { class: `s${n}`, cx: x(i + 0.5), cy: y(v), r: 1.6 }));
      });
      if (d) svg.append(s("path", { class: `line s${n}`, d }));
    }
  });
  const sums = series.map((one) => one.values.reduce((a, b) => a + b, 0));
  const peak = Math.max(...series.flatMap((x) => x.values));
  const now = series.map((one) => one.values[count - 1]);
  svg.setAttribute("aria-label", `${title}: ${series.map((one, n) => `${one.label} ${label(one.kind === "bar" ? sums[n] : Math.max(...one.values))}${unit}`).join(", ")} in the last hour`);
  // Counts sum over the hour; levels (durations, memory, instances) show their peak.
  const peaks = series.map((one) => Math.max(...one.values));
  const summary = series.map((one, n) => (one.kind === "bar" ? `${label(sums[n])}` : `peak ${label(peaks[n])}${unit}`)).join(" / ");
  return h("figure", { class: "chart", dataset: { chart: name, sum: sums[0], peak, now: now[0] } },
    h("h4", {}, h("span", {}, title), h("span", { class: "muted" }, summary)),
    svg,
    h("figcaption", { class: "legend" }, series.map((one, n) => h("span", {}, h("i", { class: `s${n}` }), one.label))),
  );
}

// A tiny bar chart of one series, for table rows.
export function spark(values) {
  const top = Math.max(1, ...values);
  const w = 120 / values.length;
  const svg = s("svg", { class: "spark", viewBox: "0 0 120 22", preserveAspectRatio: "none", "aria-hidden": "true" });
  values.forEach((v, i) => { if (v > 0) svg.append(s("rect", { x: i * w, y: 22 - (v / top) * 22, width: Math.max(w, 0.8), height: (v / top) * 22 })); });
  return svg;
}
