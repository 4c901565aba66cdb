// What several views read: the functions, the sources, the event templates (fetched once, refreshed on demand).

import { get } from "./api.js";

const cache = {};

async function cached(key, path, fresh) {
  if (fresh || !cache[key]) cache[key] = get(path).catch((e) => { delete cache[key]; throw e; });
  return cache[key];
}

export const functions = (fresh = false) => cached("functions", "/console/api/functions", fresh);
export const sources = (fresh = false) => cached("sources", "/console/api/sources", fresh);
export const templates = () => cached("templates", "/console/api/templates", false);
export const history = (fresh = true) => cached("history", "/console/api/history", fresh);

export function forget() {
  for (const key of Object.keys(cache)) delete cache[key];
}
