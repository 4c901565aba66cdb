// Invocations: the live list (as `router tail`), filtered by function, source and outcome; one opens with
// its event, its response or error, and its log (START/END/REPORT lines included).

import { get, quote } from "./api.js";
import * as data from "./data.js";
import { $, $$, badge, clear, clock, h, json, kv, ms, options } from "./dom.js";
import { live, on } from "./live.js";

const SHOWN = 500;
let active = false;
let paused = false;
let openId = null;
const form = () => $("#inv-filters");

function filters() {
  const f = new FormData(form());
  return { function: f.get("function"), source: f.get("source"), outcome: f.get("outcome"), text: (f.get("text") || "").toLowerCase() };
}

function matches(i, f) {
  if (f.function && i.function !== f.function) return false;
  if (f.source && (i.source || "") !== f.source) return false;
  if (f.outcome && i.outcome !== f.outcome) return false;
  if (f.text && ![i.request_id, i.error_type, i.report, i.function, i.source].some((v) => v && v.toLowerCase().includes(f.text))) return false;
  return true;
}

function kind(i) {
  return i.invocation_type === "Event" ? `async #${i.attempt}` : "sync";
}

function row(i) {
  const key = String(i.seq);
  return h("tr", { tabindex: "0", dataset: { seq: key, focusKey: `inv:${key}`, requestId: i.request_id }, class: key === openId ? "selected" : undefined,
    onclick: () => open(i), onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); open(i); } } },
    h("td", { class: "mono" }, clock(i.time)),
    h("td", {}, i.function),
    h("td", {}, i.source || "—"),
    h("td", {}, kind(i)),
    h("td", {}, badge(i.error_type ? `${i.outcome}: ${i.error_type}` : i.outcome, i.outcome), i.cold ? " " : "", i.cold ? badge("cold", "warn") : ""),
    h("td", { class: "num" }, ms(i.duration_ms)),
    h("td", { class: "report", title: i.report || "" }, i.report || "—"),
  );
}

const HEAD = ["Time (UTC)", "Function", "Source", "Type", "Outcome", "Duration", "REPORT"];

function render() {
  if (!active) return;
  const f = filters();
  const shown = [];
  for (let n = live.invocations.length - 1; n >= 0 && shown.length < SHOWN; n--) {
    if (matches(live.invocations[n], f)) shown.push(live.invocations[n]);
  }
  const focusKey = document.activeElement?.dataset?.focusKey;
  clear($("#inv-table"), h("thead", {}, h("tr", {}, HEAD.map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, shown.map(row)));
  if (focusKey) $(`#inv-table [data-focus-key="${CSS.escape(focusKey)}"]`)?.focus({ preventScroll: true });
  const note = live.inspect ? "" : " (inspect.enabled is off: nothing is recorded)";
  $("#inv-count").textContent = `${shown.length} shown of ${live.invocations.length} received${paused ? ", paused" : ""}${note}`;
  fillFilters();
}

function fillFilters() {
  const seen = (key) => [...new Set(live.invocations.map((i) => i[key]).filter(Boolean))].sort();
  data.functions().then((list) => {
    options(form().elements.function, [...new Set([...list.functions.map((f) => f.name), ...seen("function")])].sort());
  }).catch(() => {});
  options(form().elements.source, seen("source"));
}

function logLines(text) {
  return h("pre", { class: "log" }, (text || "").split("\n").map((line) => {
    const cls = line.startsWith("REPORT ") ? "report" : line.startsWith("START ") ? "start" : line.startsWith("END ") ? "end" : "";
    return [h("span", { class: cls || undefined }, line), "\n"];
  }));
}

function attempt(v) {
  return h("section", { class: "attempt" },
    h("h4", {}, `${kind(v)} at ${clock(v.time)} `, badge(v.outcome, v.outcome)),
    kv([["request id", v.request_id], ["duration", `${ms(v.duration_ms)} (billed ${v.billed_ms} ms)`], ["init", v.init_ms ? ms(v.init_ms) : "—"],
      ["memory", `${v.max_memory_mb} of ${v.memory_mb} MB`], ["error type", v.error_type], ["source", v.source], ["trace", v.trace],
      v.fault ? ["injected fault", v.fault] : null, v.replay_of ? ["replay of", v.replay_of] : null]),
    h("h5", {}, "Event"), json(v.event),
    h("h5", {}, v.outcome === "error" ? "Error" : "Response"), json(v.result),
    h("h5", {}, "Log"), logLines(v.log),
  );
}

async function open(i) {
  openId = String(i.seq);
  const aside = $("#inv-detail");
  aside.hidden = false;
  $$("#inv-table tr.selected").forEach((r) => r.classList.remove("selected"));
  $(`#inv-table tr[data-seq="${i.seq}"]`)?.classList.add("selected");
  clear(aside, h("h3", {}, `${i.function} `, badge(i.outcome, i.outcome)), h("p", { class: "muted" }, "Loading…"));
  if (!i.request_id) {
    clear(aside, h("h3", {}, `${i.function} `, badge(i.outcome, i.outcome)), kv(Object.entries(i)));
    return;
  }
  try {
    const found = await get(`/inspect/requests/${quote(i.request_id)}`);
    clear(aside,
      h("header", { class: "row" }, h("h3", {}, i.function), badge(i.outcome, i.outcome),
        h("button", { type: "button", onclick: close, "aria-label": "Close (Esc)" }, "Close")),
      kv([["request id", h("code", {}, found.request_id)], ["attempts", found.invocations.length],
        ...found.events.map((e) => [`accepted from ${e.source}`, `${clock(e.time)} ${e.mode}${e.position ? ` at ${JSON.stringify(e.position)}` : ""}`])]),
      found.invocations.map(attempt),
      h("p", {}, h("a", { href: `#/test/${quote(i.function)}`, onclick: () => sessionStorage.setItem("router.console.event", JSON.stringify(found.invocations.at(-1)?.event ?? {})) }, "Open this event in Test")),
    );
  } catch (e) {
    clear(aside, h("h3", {}, i.function), h("p", { class: "error" }, e.message));
  }
  aside.focus();
}

function close() {
  openId = null;
  $("#inv-detail").hidden = true;
  $$("#inv-table tr.selected").forEach((r) => r.classList.remove("selected"));
  $("#inv-table tbody tr")?.focus();
}

export function togglePause() {
  paused = !paused;
  $("#pause").setAttribute("aria-pressed", String(paused));
  $("#pause").textContent = paused ? "Resume" : "Pause";
  render();
}

// j/k: the next or previous row; from outside the list, the first one.
export function step(delta) {
  const rows = $$("#inv-table tbody tr");
  if (!rows.length) return;
  const at = rows.indexOf(document.activeElement);
  rows[Math.max(0, Math.min(rows.length - 1, at < 0 ? 0 : at + delta))].focus();
}

let pending = false;
function schedule() {
  // Many invocations a second render once a frame.
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(); });
}

on("invocation", () => { if (!paused && active) schedule(); });
on("state", () => render());

export const view = {
  name: "invocations",
  enter(param, query) {
    active = true;
    if (!form().dataset.bound) {
      form().dataset.bound = "1";
      form().addEventListener("input", render);
      form().addEventListener("submit", (e) => e.preventDefault());
      $("#pause").addEventListener("click", togglePause);
    }
    if (query.get("function")) { fillFilters(); options(form().elements.function, [query.get("function")]); form().elements.function.value = query.get("function"); }
    render();
    if (param) {
      const i = live.invocations.find((x) => x.request_id === param);
      if (i) open(i);
    }
  },
  leave() { active = false; },
  close,
  first: () => form().elements.function,
};
