// Test: invoke a function with an event from a template of every source shape (the builders of
// `router events`), edited here, sync or async; or inject an event into a source's routes.

import { call, post, quote } from "./api.js";
import * as data from "./data.js";
import { $, badge, clear, h, json, kv, options } from "./dom.js";

const TITLES = {
  s3: "S3 object created", dynamodb: "DynamoDB stream record", kafka: "Kafka records", kinesis: "Kinesis records",
  sqs: "SQS messages", sns: "SNS notification", ses: "SES email received", schedule: "EventBridge schedule",
  http: "API Gateway HTTP request (2.0)",
};
const EVENT_KEY = "router.console.event"; // an event handed over from an opened invocation

let ready = false;
let kinds = {};
let sourceList = [];

function routedShape(fn) {
  // The shape of the first source routed to this function: its events look like that.
  for (const s of sourceList) if (s.routes.some((r) => r.functions.some((f) => f.split(":")[0] === fn))) return s.shape;
  return "";
}

function useTemplate(form, kind) {
  form.elements.event.value = JSON.stringify(kind ? kinds[kind] : {}, null, 2);
}

function parse(form, out) {
  try {
    return JSON.parse(form.elements.event.value || "{}");
  } catch (e) {
    clear(out, h("p", { class: "error", role: "alert" }, `The event is not valid JSON: ${e.message}`));
    form.elements.event.focus();
    return undefined;
  }
}

function decodeLog(b64) {
  if (!b64) return "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function logLines(text) {
  return h("pre", { class: "log" }, text.split("\n").map((line) => [h("span", { class: line.startsWith("REPORT ") ? "report" : line.match(/^(START|END) /) ? "start" : undefined }, line), "\n"]));
}

async function invoke(e) {
  e.preventDefault();
  const form = $("#invoke-form");
  const out = $("#invoke-result");
  const event = parse(form, out);
  if (event === undefined) return;
  const fn = form.elements.function.value;
  const mode = form.elements.mode.value;
  clear(out, h("p", { class: "muted" }, "Invoking…"));
  try {
    const response = await call("POST", `/2015-03-31/functions/${quote(fn)}/invocations`, {
      body: JSON.stringify(event), raw: true,
      extraHeaders: { "Content-Type": "application/json", "X-Amz-Invocation-Type": mode, ...(mode === "RequestResponse" ? { "X-Amz-Log-Type": "Tail" } : {}) },
    });
    const text = await response.text();
    let body = text;
    try { body = text ? JSON.parse(text) : null; } catch { /* text */ }
    const error = response.headers.get("X-Amz-Function-Error");
    const rid = response.headers.get("x-amzn-RequestId");
    const log = decodeLog(response.headers.get("X-Amz-Log-Result"));
    clear(out,
      h("div", { class: "result-head" }, badge(mode === "Event" ? "queued" : error ? "error" : "success", error ? "error" : "success"),
        h("span", {}, `HTTP ${response.status}`), h("a", { href: `#/invocations/${quote(rid)}`, id: "invoke-request-id" }, rid)),
      kv([["executed version", response.headers.get("X-Amz-Executed-Version")], error ? ["function error", error] : null]),
      mode === "Event" ? h("p", { class: "muted" }, "Accepted: the event is in the durable queue; watch it run in Invocations.") : [h("h4", {}, error ? "Error" : "Response"), json(body)],
      log ? [h("h4", {}, "Log"), logLines(log)] : null,
    );
  } catch (err) {
    clear(out, h("p", { class: "error", role: "alert" }, `${err.type || "Error"}: ${err.message}`));
  }
}

async function inject(e) {
  e.preventDefault();
  const form = $("#inject-form");
  const out = $("#inject-result");
  const event = parse(form, out);
  if (event === undefined) return;
  const body = { event };
  if (form.elements.function.value) body.function = form.elements.function.value;
  clear(out, h("p", { class: "muted" }, "Injecting…"));
  try {
    const answer = await post(`/inspect/sources/${quote(form.elements.source.value)}/inject`, body);
    clear(out, h("div", { class: "result-head" }, badge(answer.mode, "ok")), json(answer));
  } catch (err) {
    clear(out, h("p", { class: "error", role: "alert" }, `${err.type || "Error"}: ${err.message}`));
  }
}

function pickSource(form) {
  const s = sourceList.find((x) => x.name === form.elements.source.value);
  if (!s) return;
  const fns = [...new Set(s.routes.flatMap((r) => r.functions))];
  options(form.elements.function, fns);
  form.elements.event.value = JSON.stringify(kinds[s.shape] ?? {}, null, 2);
}

async function setup() {
  const [t, fns, srcs] = await Promise.all([data.templates(), data.functions(), data.sources()]);
  kinds = t.kinds;
  sourceList = srcs.sources;
  const form = $("#invoke-form");
  options(form.elements.function, fns.functions.filter((f) => f.origin).map((f) => f.name), false);
  options(form.elements.template, [{ value: "", label: "empty {}" }, ...Object.keys(kinds).map((k) => ({ value: k, label: `${k}: ${TITLES[k] || k}` }))], false);
  if (!ready) {
    ready = true;
    form.addEventListener("submit", invoke);
    form.elements.template.addEventListener("change", () => useTemplate(form, form.elements.template.value));
    form.elements.function.addEventListener("change", () => {
      form.elements.template.value = routedShape(form.elements.function.value);
      useTemplate(form, form.elements.template.value);
    });
    form.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) invoke(e); });
    const inj = $("#inject-form");
    inj.addEventListener("submit", inject);
    inj.elements.source.addEventListener("change", () => pickSource(inj));
  }
  const inj = $("#inject-form");
  options(inj.elements.source, sourceList.map((s) => ({ value: s.name, label: `${s.name} (${s.kind})` })), false);
  pickSource(inj);
}

export const view = {
  name: "test",
  async enter(param) {
    await setup();
    const form = $("#invoke-form");
    if (param) form.elements.function.value = param;
    const handed = sessionStorage.getItem(EVENT_KEY);
    if (handed) {
      sessionStorage.removeItem(EVENT_KEY);
      form.elements.template.value = "";
      form.elements.event.value = JSON.stringify(JSON.parse(handed), null, 2);
    } else if (!form.elements.event.value || param) {
      form.elements.template.value = routedShape(form.elements.function.value);
      useTemplate(form, form.elements.template.value);
    }
  },
  leave() {},
  first: () => $("#invoke-form").elements.function,
};
