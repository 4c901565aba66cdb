// The console's entry: views by the URL's hash (#/functions/NAME, #/invocations/REQUEST_ID, #/test/NAME,
// #/sources, #/failures), keyboard shortcuts, the token dialog, the live feed's status.

import { ApiError, get, setToken, token, whenAuthNeeded } from "./api.js";
import * as data from "./data.js";
import { $, $$ } from "./dom.js";
import { follow, on, reconnect } from "./live.js";
import { view as functions } from "./functions.js";
import { step, togglePause, view as invocations } from "./invocations.js";
import { view as test } from "./test.js";
import { view as sources } from "./sources.js";
import { view as failures } from "./failures.js";

const VIEWS = { functions, invocations, test, sources, failures };
const ORDER = Object.keys(VIEWS);
let current = null;

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  return { name: VIEWS[name] ? name : "functions", param: rest.length ? decodeURIComponent(rest.join("/")) : null, query: new URLSearchParams(query) };
}

async function show() {
  const { name, param, query } = parseHash();
  const next = VIEWS[name];
  if (current && current !== next) current.leave();
  const changed = current !== next;
  current = next;
  for (const section of $$("main > section")) section.hidden = section.dataset.view !== name;
  for (const link of $$(".top nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · router console`;
  try {
    await next.enter(param, query);
  } catch (e) {
    if (!(e instanceof ApiError && e.auth)) console.error(e);
  }
  if (changed && document.activeElement === document.body) $("#main").focus({ preventScroll: true });
}

// -- the token ------------------------------------------------------------------------------------------

function askToken(error) {
  const dialog = $("#token-dialog");
  $("#token-error").textContent = token() ? "That token was refused." : "";
  if (error?.type === "UnrecognizedClientException") setToken("");
  if (!dialog.open) dialog.showModal();
}

async function useToken(e) {
  e.preventDefault();
  const value = e.target.elements.token.value.trim();
  if (!value) return;
  setToken(value);
  try {
    await get("/console/api/functions");
  } catch (err) {
    if (err instanceof ApiError && err.auth) { $("#token-error").textContent = "That token was refused."; return; }
  }
  $("#token-dialog").close();
  e.target.reset();
  $("#token-button").hidden = false;
  data.forget();
  reconnect();
  show();
}

// -- keyboard -------------------------------------------------------------------------------------------

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]") !== null;
}

function onKey(e) {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === "Escape") {
    if (current === invocations && !$("#inv-detail").hidden) { e.preventDefault(); invocations.close(); }
    return;
  }
  if (typing(e.target) || document.querySelector("dialog[open]")) return;
  const n = ORDER[Number(e.key) - 1];
  if (n) { e.preventDefault(); location.hash = `#/${n}`; return; }
  if (e.key === "?") { e.preventDefault(); $("#help-dialog").showModal(); return; }
  if (e.key === "/") { e.preventDefault(); current?.first()?.focus(); return; }
  if (current === invocations) {
    if (e.key === "j") { e.preventDefault(); step(1); }
    else if (e.key === "k") { e.preventDefault(); step(-1); }
    else if (e.key === "p") { e.preventDefault(); togglePause(); }
  }
}

// -- start ----------------------------------------------------------------------------------------------

on("state", (state) => {
  const badge = $("#live");
  badge.textContent = state;
  badge.className = `badge ${state.replace(" ", "-")}${state === "needs token" ? " warn" : ""}`;
});

whenAuthNeeded(askToken);
$("#token-form").addEventListener("submit", useToken);
$("#token-button").hidden = !token();
$("#token-button").addEventListener("click", () => { setToken(""); location.reload(); });
$("#help-button").addEventListener("click", () => $("#help-dialog").showModal());
document.addEventListener("keydown", onKey);
window.addEventListener("hashchange", show);
show();
follow();
document.documentElement.dataset.ready = "1";
