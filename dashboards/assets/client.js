// @ts-check
// The API client: GET /api/v1/... as JSON with the bearer token kept in localStorage, one request
// per URL per render, and every failure recorded in window.__dealhouseErrors.
"use strict";

import { tr } from "./i18n.js";

/**
 * Errors the page ran into: browser tests read window.__dealhouseErrors (errors.js creates it).
 * @param {string} kind
 * @param {unknown} message
 */
export function reportError(kind, message) {
  const w = /** @type {any} */ (window);
  const list = w.__dealhouseErrors || (w.__dealhouseErrors = []);
  list.push({ kind, message: String(message), at: new Date().toISOString() });
}

const TOKEN_KEY = "dealhouse.token";

/** The stored bearer token, or "". */
export function token() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

/** @param {string} value the token to keep; "" forgets it */
export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives for this page only */ }
  cache.clear();
}

/** The API answered 401: the page asks for a token. */
export class AuthError extends Error {}

/** A failed request whose failure is already in window.__dealhouseErrors. */
export class ReportedError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.reported = true;
  }
}

/**
 * Answers of this render, by URL: panels that read the same answer share one request.
 * @type {Map<string, Promise<any>>}
 */
const cache = new Map();

export function clearCache() {
  cache.clear();
}

/**
 * @typedef {string | number | string[] | null | undefined} Param
 * @typedef {Record<string, Param>} Params
 */

/**
 * Query string of `params` (arrays joined by commas, empty values dropped).
 * @param {Params} params
 */
export function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    const value = Array.isArray(v) ? v.join(",") : v;
    if (value !== undefined && value !== null && value !== "") q.set(k, String(value));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

/**
 * GET /api/v1/<path> with `params`, as JSON. A 401 throws AuthError; other failures Error.
 * @param {string} path
 * @param {Params} [params]
 * @returns {Promise<any>}
 */
export function apiGet(path, params = {}) {
  const url = "/api/v1/" + path + queryString(params);
  let request = cache.get(url);
  if (!request) {
    /** @type {Record<string, string>} */
    const headers = {};
    const t = token();
    if (t) headers.authorization = "Bearer " + t;
    request = fetch(url, { headers }).then(async (r) => {
      if (r.status === 401) throw new AuthError(t ? tr("badToken") : tr("needToken"));
      let body = null;
      try { body = await r.json(); } catch { /* not JSON */ }
      if (!r.ok) {
        const message = (body && body.message) || r.statusText;
        reportError("http", `${r.status} ${url}: ${message}`);
        throw new ReportedError(message);
      }
      return body;
    }, (e) => {
      reportError("network", `${url}: ${e.message}`);
      e.reported = true;
      throw e;
    });
    // A failed answer is not kept: the next render asks again.
    request.catch(() => cache.delete(url));
    cache.set(url, request);
  }
  return request;
}
