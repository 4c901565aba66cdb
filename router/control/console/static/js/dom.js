// Small DOM helpers: build elements without innerHTML (no markup from data ever reaches the parser).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export function json(value) {
  return h("pre", { class: "json" }, value === undefined ? "" : JSON.stringify(value, null, 2));
}

export function badge(text, cls = text) {
  return h("span", { class: `badge ${cls || ""}` }, text);
}

export function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function table(el, columns, rows, rowAttrs = () => ({})) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : "", scope: "col" }, c.label))));
  const body = h("tbody", {}, rows.map((row, i) => h("tr", rowAttrs(row, i),
    columns.map((c) => h("td", { class: [c.num ? "num" : "", c.cls || ""].join(" ").trim() || undefined }, c.cell(row))))));
  clear(el, head, body);
  return body;
}

export function ms(value) {
  if (value === null || value === undefined) return "—";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(value < 10 ? 2 : 1)} ms`;
}

export function age(seconds) {
  if (!seconds) return "—";
  if (seconds < 60) return `${seconds.toFixed(0)} s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function clock(iso) {
  return iso ? iso.replace("T", " ").replace("Z", "").slice(11) : "—";
}

export function options(select, values, keep = true) {
  const current = select.value;
  const fixed = keep ? [...select.options].filter((o) => o.dataset.fixed !== undefined || o.value === "") : [];
  select.replaceChildren(...fixed, ...values.map((v) => (typeof v === "string" ? h("option", { value: v }, v) : h("option", { value: v.value }, v.label))));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}
