// Functions: every function with its settings, concurrency and instances, and graphs of its last hour.

import * as data from "./data.js";
import { $, age, badge, clear, h, kv, table } from "./dom.js";
import { chart, dense, spark } from "./charts.js";
import { live, on } from "./live.js";
import { keepFocus } from "./focus.js";

let list = null; // GET /console/api/functions
let series = null; // GET /console/api/history
let selected = null;
let active = false;

const F = (name) => (series ? series.fields.indexOf(name) : -1);

// Buckets of the last hour, oldest first, ending with the open one.
function buckets(name, field) {
  const step = series.step_s;
  const count = Math.round(series.span_s / step) + 1;
  const points = series.functions[name] || [];
  const opened = points.length ? points[points.length - 1][0] : Math.floor(series.now / step) * step;
  return dense(points, F(field), opened - (count - 1) * step, step, count);
}

function merge(stats) {
  // The live feed's numbers into what was fetched: the stats of each function, the open bucket's point.
  if (!list || !series) return;
  let unknown = false;
  for (const f of list.functions) if (stats.functions[f.name]) f.stats = stats.functions[f.name];
  for (const name of Object.keys(stats.functions)) if (!list.functions.some((f) => f.name === name)) unknown = true;
  list.account = stats.account;
  let rolled = false;
  for (const [name, point] of Object.entries(stats.points)) {
    const points = (series.functions[name] ||= []);
    const last = points[points.length - 1];
    if (last && last[0] === point[0]) points[points.length - 1] = point;
    else { points.push(point); rolled = true; }
  }
  if (unknown) refresh();
  else if (rolled) data.history().then((s) => { series = s; render(); });
}

async function refresh() {
  [list, series] = await Promise.all([data.functions(true), data.history()]);
  render();
}

const concurrency = (f) => {
  const s = f.stats || {};
  const parts = [`${s.in_use ?? 0} in use`];
  if (f.reserved_concurrency !== null && f.reserved_concurrency !== undefined) parts.push(`reserved ${f.reserved_concurrency}`);
  if (f.provisioned_concurrency) parts.push(`provisioned ${s.provisioned ?? 0}/${f.provisioned_concurrency}`);
  return parts.join(" · ");
};

const COLUMNS = [
  { label: "Function", cell: (f) => h("a", { href: `#/functions/${encodeURIComponent(f.name)}`, class: "name-button", dataset: { focusKey: `fn:${f.name}` } }, f.name) },
  { label: "Origin", cell: (f) => f.origin ?? "deleted" },
  { label: "Runtime", cell: (f) => f.runtime ?? "—" },
  { label: "Memory", num: true, cell: (f) => (f.memory_mb ? `${f.memory_mb} MB` : "—") },
  { label: "Timeout", num: true, cell: (f) => (f.timeout_s ? `${f.timeout_s} s` : "—") },
  { label: "Concurrency", cell: concurrency },
  { label: "Instances idle / busy", num: true, cell: (f) => `${f.stats?.idle ?? 0} / ${f.stats?.busy ?? 0}` + (f.stats?.launching ? ` (+${f.stats.launching})` : "") },
  { label: "Cold starts", num: true, cell: (f) => f.stats?.cold_starts ?? 0 },
  { label: "Invocations", num: true, cell: (f) => f.stats?.invocations ?? 0 },
  { label: "Errors", num: true, cell: (f) => f.stats?.errors ?? 0 },
  { label: "Throttles", num: true, cell: (f) => f.stats?.throttles ?? 0 },
  { label: "Last hour", cell: (f) => spark(buckets(f.name, "invocations")) },
];

function detail(f) {
  const a = f.async || {};
  const dest = (d) => (d ? `${d.kind}: ${d.target}` : "—");
  const charts = [
    chart({ name: "invocations", title: "Invocations", series: [{ label: "invocations", kind: "bar", values: buckets(f.name, "invocations") }] }),
    chart({ name: "errors", title: "Errors and throttles", series: [
      { label: "errors", kind: "bar", values: buckets(f.name, "errors") },
      { label: "throttles", kind: "bar", values: buckets(f.name, "throttles") }] }),
    chart({ name: "duration", title: "Duration", unit: " ms", series: [
      { label: "p50", kind: "line", gaps: true, values: buckets(f.name, "p50_ms") },
      { label: "p99", kind: "line", gaps: true, values: buckets(f.name, "p99_ms") }] }),
    chart({ name: "memory", title: "Max memory used", unit: " MB", series: [
      { label: "max memory", kind: "line", gaps: true, values: buckets(f.name, "max_memory_mb") }] }),
    chart({ name: "instances", title: "Instances", series: [
      { label: "idle", kind: "line", values: buckets(f.name, "idle") },
      { label: "busy", kind: "line", values: buckets(f.name, "busy") },
      { label: "cold starts", kind: "bar", values: buckets(f.name, "cold_starts") }] }),
    chart({ name: "queue", title: "Async queue", series: [
      { label: "queued", kind: "line", values: buckets(f.name, "queue_depth") },
      { label: "retries", kind: "bar", values: buckets(f.name, "retries") }] }),
  ];
  return h("article", { class: "card", "aria-labelledby": "h-fn-detail" },
    h("h3", { id: "h-fn-detail" }, f.name, " ", badge(f.origin ?? "deleted", "")),
    f.description ? h("p", {}, f.description) : null,
    h("div", { class: "columns" },
      kv([["runtime", f.runtime], ["handler", f.handler], ["memory", `${f.memory_mb} MB`], ["timeout", `${f.timeout_s} s`],
        ["event format", f.event_format], ["revision", f.revision], ["last modified", f.last_modified || "—"]]),
      kv([["reserved concurrency", f.reserved_concurrency ?? "unreserved"], ["provisioned", `${f.stats?.provisioned ?? 0} of ${f.provisioned_concurrency}`],
        ["in use", f.stats?.in_use ?? 0], ["idle timeout", `${f.idle_timeout_s} s`],
        ["versions", f.versions?.length ? f.versions.join(", ") : "—"],
        ["aliases", Object.keys(f.aliases || {}).length ? Object.entries(f.aliases).map(([k, v]) => `${k} → ${v}`).join(", ") : "—"]]),
      kv([["async retries", a.max_retries], ["max event age", age(a.max_event_age_s)], ["on failure", dest(a.on_failure)],
        ["on success", dest(a.on_success)], ["dead letter", dest(a.dead_letter)],
        ["queued", `${f.stats?.queue_depth ?? 0} (oldest ${age(f.stats?.oldest_age_s)})`]]),
    ),
    h("div", { class: "charts", "aria-label": `Last hour of ${f.name}`, role: "group" }, charts),
    h("p", {}, h("a", { href: `#/test/${encodeURIComponent(f.name)}` }, "Test this function"), " · ",
      h("a", { href: `#/invocations?function=${encodeURIComponent(f.name)}` }, "Its invocations")),
  );
}

function render() {
  if (!active || !list) return;
  keepFocus($("#view-functions"), () => {
    const acc = list.account;
    $("#account").textContent = `Account: ${acc.in_use} of ${acc.concurrency} concurrent executions in use (unreserved ${acc.unreserved_in_use} of ${acc.unreserved_limit}); ${acc.queue_depth} queued async events.`;
    table($("#functions-table"), COLUMNS, list.functions, (f) => ({ class: f.name === selected ? "selected" : undefined }));
    const f = list.functions.find((x) => x.name === selected && x.origin);
    clear($("#function-detail"), f ? detail(f) : h("p", { class: "muted" }, "Choose a function to see its graphs."));
  });
}

on("stats", (stats) => { merge(stats); render(); });

export const view = {
  name: "functions",
  async enter(param) {
    active = true;
    selected = param || selected || null;
    await refresh();
    if (!selected && list.functions.length) { selected = list.functions[0].name; render(); }
  },
  leave() { active = false; },
  first: () => $("#functions-table a"),
};
