// Failures: the async queue (depth, oldest event, retries in the last hour), the failure destinations with
// their newest records and a redrive button each, and replay of recorded events.

import { get, post } from "./api.js";
import * as data from "./data.js";
import { $, age, badge, clear, h, json, options, table } from "./dom.js";
import { on } from "./live.js";

let active = false;
let retries = {};

const dest = (d) => (d ? `${d.kind}: ${d.target}` : "—");
const more = (summary) => h("details", {}, h("summary", {}, "Details"), json(summary));

function queue(list) {
  table($("#queue-table"), [
    { label: "Function", cell: (f) => h("a", { href: `#/functions/${encodeURIComponent(f.name)}` }, f.name) },
    { label: "Queued", num: true, cell: (f) => f.stats?.queue_depth ?? 0 },
    { label: "Oldest", num: true, cell: (f) => age(f.stats?.oldest_age_s) },
    { label: "Retries (last hour)", num: true, cell: (f) => retries[f.name] ?? 0 },
    { label: "Max retries", num: true, cell: (f) => f.async?.max_retries ?? "—" },
    { label: "Max event age", num: true, cell: (f) => age(f.async?.max_event_age_s) },
    { label: "On failure", cell: (f) => dest(f.async?.on_failure) },
    { label: "Dead letter", cell: (f) => dest(f.async?.dead_letter) },
  ], list.functions);
}

async function redrive(owner, dryRun, out) {
  clear(out, h("p", { class: "muted" }, dryRun ? "Checking…" : "Redriving…"));
  try {
    const summary = await post("/inspect/redrive", { destination: owner, dry_run: dryRun });
    clear(out, h("p", {}, dryRun ? `${summary.would_send} would be sent.` : `${summary.succeeded} succeeded, ${summary.failed} failed, ${summary.skipped} skipped.`), more(summary));
    if (!dryRun) load();
  } catch (e) {
    clear(out, h("p", { class: "error", role: "alert" }, e.message));
  }
}

function destination(d) {
  const out = h("div", { "aria-live": "polite" });
  const readable = d.records !== null && d.records !== undefined;
  return h("article", { class: "card", dataset: { owner: d.owner } },
    h("h4", {}, h("code", {}, d.owner), " ", badge(d.kind, ""), " ", d.error ? badge("unreadable", "error") : badge(`${d.count ?? "?"} held`, d.count ? "warn" : "ok")),
    h("p", { class: "mono" }, d.target, d.source ? ` (source ${d.source})` : "", ` → ${d.functions.join(", ")}`),
    d.error ? h("p", { class: "error" }, d.error) : null,
    readable ? h("div", { class: "row" },
      h("button", { type: "button", onclick: () => redrive(d.owner, true, out) }, "Redrive: dry run"),
      h("button", { type: "button", class: "primary", disabled: !d.count, onclick: () => redrive(d.owner, false, out) }, "Redrive")) : h("p", { class: "muted" }, "Records went into a function's queue."),
    readable && d.records.length ? h("details", {}, h("summary", {}, `Newest ${d.records.length} records`), d.records.map((r) => [h("p", { class: "mono" }, r.id), json(r.record ?? r.error)])) : null,
    out);
}

async function replay(e) {
  e.preventDefault();
  const form = $("#replay-form");
  const out = $("#replay-result");
  const f = form.elements;
  const plan = { since: f.since.value || undefined, mode: f.mode.value, dry_run: f.dry_run.checked };
  if (f.function.value) plan.function = f.function.value;
  else if (f.source.value) plan.source = f.source.value;
  if (f.outcome.value) plan.outcome = f.outcome.value;
  clear(out, h("p", { class: "muted" }, "Replaying…"));
  try {
    const summary = await post("/inspect/replay", plan);
    clear(out, h("p", {}, `${summary.total} selected, ${summary.replayed} replayed, ${summary.same} same result, ${summary.different} different, ${summary.errors} errors.`), more(summary));
  } catch (err) {
    clear(out, h("p", { class: "error", role: "alert" }, err.message));
  }
}

async function load() {
  const [list, series, failures, srcs] = await Promise.all([data.functions(true), data.history(), get("/inspect/failures"), data.sources()]);
  const at = series.fields.indexOf("retries");
  retries = Object.fromEntries(Object.entries(series.functions).map(([n, points]) => [n, points.reduce((a, p) => a + p[at], 0)]));
  if (!active) return;
  queue(list);
  clear($("#destinations"), failures.destinations.length ? failures.destinations.map(destination) : h("p", { class: "muted" }, "No failure destinations are configured."));
  const f = $("#replay-form").elements;
  options(f.function, list.functions.filter((x) => x.origin).map((x) => x.name));
  options(f.source, srcs.sources.map((s) => s.name));
}

on("stats", (stats) => {
  if (!active || !$("#queue-table tbody")) return;
  data.functions().then((list) => {
    for (const fn of list.functions) if (stats.functions[fn.name]) fn.stats = stats.functions[fn.name];
    queue(list);
  });
});

export const view = {
  name: "failures",
  async enter() {
    active = true;
    const form = $("#replay-form");
    if (!form.dataset.bound) { form.dataset.bound = "1"; form.addEventListener("submit", replay); }
    await load();
  },
  leave() { active = false; },
  first: () => $("#queue-table a"),
};
