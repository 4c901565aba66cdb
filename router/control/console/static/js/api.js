// The router's API from the page: the token (kept in this tab's session), JSON calls, the live feed.

const KEY = "router.console.token";
const AUTH_ERRORS = new Set(["MissingAuthenticationTokenException", "UnrecognizedClientException"]);

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message || `${status} ${type || ""}`.trim());
    this.status = status;
    this.type = type;
    this.body = body;
  }
  get auth() { return AUTH_ERRORS.has(this.type); }
}

export const token = () => sessionStorage.getItem(KEY) || "";
export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const out = { ...extra };
  if (token()) out.Authorization = `Bearer ${token()}`;
  return out;
}

let onAuth = () => {};
export function whenAuthNeeded(callback) { onAuth = callback; }

async function failure(response) {
  const text = await response.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  const message = (body && (body.message || body.Message)) || text;
  const error = new ApiError(response.status, response.headers.get("x-amzn-ErrorType"), message, body);
  if (error.auth) onAuth(error);
  return error;
}

// One call; the raw Response with `raw`, else its JSON. Errors in Lambda's shape become ApiError.
export async function call(method, path, { body, extraHeaders = {}, raw = false } = {}) {
  const h = headers(extraHeaders);
  if (body !== undefined && typeof body !== "string") {
    body = JSON.stringify(body);
    h["Content-Type"] = "application/json";
  }
  const response = await fetch(path, { method, headers: h, body, cache: "no-store" });
  if (!response.ok) throw await failure(response);
  if (raw) return response;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, { body: body ?? {} });

// The live feed (GET /console/api/stream): server-sent events read through fetch, so the token travels in
// the Authorization header (EventSource cannot send one). Yields {event, id, data} until the stream ends.
export async function* feed(path, signal) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal, cache: "no-store" });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { event: "message", id: null, data: "" };
      for (const line of block.split("\n")) {
        const colon = line.indexOf(":");
        if (colon <= 0) continue;
        const field = line.slice(0, colon);
        const text = line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") message.event = text;
        else if (field === "id") message.id = text;
        else if (field === "data") message.data += text;
      }
      yield { ...message, data: message.data ? JSON.parse(message.data) : null };
    }
  }
}

export const quote = encodeURIComponent;
