// The live feed's state, shared by every view: recent invocations, the latest stats, the connection.

import { ApiError, feed } from "./api.js";

const KEEP = 1000; // invocations held in the page
const listeners = new Map();

export const live = {
  invocations: [], // oldest first, at most KEEP
  stats: null, // the latest `stats` event
  cursor: null, // the seq of the newest invocation received
  connected: false,
  inspect: true,
  step: 10,
  fields: [],
  state: "connecting",
};

export function on(event, callback) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(callback);
}

function emit(event, data) {
  for (const callback of listeners.get(event) || []) {
    try { callback(data); } catch (e) { console.error(e); }
  }
}

function setState(state) {
  live.state = state;
  emit("state", state);
}

function receive({ event, id, data }) {
  if (event === "hello") {
    live.connected = true;
    live.inspect = data.inspect;
    live.step = data.step_s;
    live.fields = data.fields;
    if (live.cursor === null) live.cursor = data.cursor;
    setState("live");
  } else if (event === "invocation") {
    live.cursor = Math.max(live.cursor ?? 0, Number(id));
    live.invocations.push(data);
    if (live.invocations.length > KEEP) live.invocations.splice(0, live.invocations.length - KEEP);
    emit("invocation", data);
  } else if (event === "stats") {
    live.stats = data;
    emit("stats", data);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let wake = null; // resolves the wait after an auth failure once a token is given

export function reconnect() {
  if (wake) wake();
}

// Follow the feed forever: reconnect with backoff, resume after the last invocation received.
export async function follow() {
  let delay = 500;
  for (;;) {
    const after = live.cursor === null ? "" : `&after=${live.cursor}`;
    try {
      for await (const message of feed(`/console/api/stream?backlog=300${after}`)) {
        delay = 500;
        receive(message);
      }
    } catch (e) {
      if (e instanceof ApiError && e.auth) {
        setState("needs token");
        await new Promise((resolve) => { wake = resolve; });
        continue;
      }
    }
    live.connected = false;
    setState("offline");
    await sleep(delay);
    delay = Math.min(delay * 2, 5000);
  }
}
