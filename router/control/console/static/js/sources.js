// Sources: each source's state (running, restarts, last error, last event), what it publishes about itself
// (stream mappings: lag and checkpoint per partition, counters), and its routes with their filters.

import * as data from "./data.js";
import { $, badge, clear, clock, h, json, kv } from "./dom.js";
import { keepFocus } from "./focus.js";

let timer = null;

function routes(list) {
  return h("div", { class: "table-wrap" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ["Functions", "HTTP", "Filter", "Batch", "On error", "Events", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, list.map((r) => h("tr", {},
      h("td", {}, r.functions.map((f) => [h("a", { href: `#/functions/${encodeURIComponent(f.split(":")[0])}` }, f), " "])),
      h("td", { class: "mono" }, r.http ? `${r.http.method} ${r.http.path}` : "—"),
      h("td", {}, r.filter ? json(r.filter) : "—"),
      h("td", { class: "mono" }, r.batch ? JSON.stringify(r.batch) : "—"),
      h("td", {}, r.on_error ? json(r.on_error) : "—"),
      h("td", { class: "mono" }, r.events ? r.events.join(", ") : "—"),
      h("td", {}, r.enabled ? "" : badge("disabled", "warn")),
    )))));
}

function partitions(part) {
  const names = [...new Set([...Object.keys(part.lag || {}), ...Object.keys(part.checkpoints || {})])].sort();
  if (!names.length) return null;
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Partition / shard"), h("th", { scope: "col", class: "num" }, "Lag"), h("th", { scope: "col" }, "Checkpoint (last settled)"))),
    h("tbody", {}, names.map((p) => h("tr", {}, h("td", { class: "mono" }, p), h("td", { class: "num" }, part.lag?.[p] ?? "—"), h("td", { class: "mono" }, part.checkpoints?.[p] ?? "—")))));
}

function status(s) {
  const parts = Object.entries(s.status || {});
  if (!parts.length) return null;
  return parts.map(([key, part]) => {
    const counters = Object.entries(part).filter(([, v]) => typeof v === "number");
    const lag = Object.values(part.lag || {}).reduce((a, b) => a + b, 0);
    return h("div", { class: "card" }, h("h4", {}, `Mapping to ${key}`, part.lag ? h("span", { class: "muted" }, ` · lag ${lag}`) : ""),
      part.error ? h("p", { class: "error" }, part.error) : null,
      kv(counters.map(([k, v]) => [k.replaceAll("_", " "), v])),
      partitions(part));
  });
}

function card(s) {
  const last = s.last_event;
  return h("article", { class: "card source", "aria-labelledby": `h-src-${s.name}`, dataset: { source: s.name } },
    h("header", {}, h("h3", { id: `h-src-${s.name}` }, s.name), badge(s.kind, ""), badge(s.state, s.state), s.mapping ? badge("event source mapping", "") : null),
    kv([["started", clock(s.started_at)], ["restarts", s.restarts], s.last_error ? ["last error", h("span", { class: "error" }, `${clock(s.last_error_at)} ${s.last_error}`)] : null,
      ["last event", last ? [`${clock(last.time)} → ${last.function} `, badge(last.outcome, last.outcome), " ", h("a", { href: `#/invocations/${encodeURIComponent(last.request_id)}` }, "open")] : "none recorded"]]),
    status(s),
    h("h4", {}, "Routes"), routes(s.routes),
    h("details", {}, h("summary", {}, "Settings"), json(s.settings)),
  );
}

async function load() {
  const list = await data.sources(true);
  keepFocus($("#view-sources"), () => {
    const open = new Set([...document.querySelectorAll("#sources-list details[open]")].map((d) => d.closest("[data-source]").dataset.source));
    clear($("#sources-list"), list.sources.length ? list.sources.map(card) : h("p", { class: "muted" }, "No sources."));
    for (const d of document.querySelectorAll("#sources-list details")) if (open.has(d.closest("[data-source]").dataset.source)) d.open = true;
  });
}

export const view = {
  name: "sources",
  async enter() {
    await load();
    clearInterval(timer);
    timer = setInterval(() => load().catch(() => {}), 5000);
  },
  leave() { clearInterval(timer); timer = null; },
  first: () => $("#sources-list a, #sources-list summary"),
};
