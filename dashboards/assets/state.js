// @ts-check
// What the page shows, kept in the URL hash so a view can be bookmarked and shared:
// #/<dashboard>?from=2026-01&to=2026-03&holding=..&branch=msk&manager=..&pipeline=..&cmp=..&vs=year&lang=en
// and the month and day arithmetic on its periods ("YYYY-MM" months, "YYYY-MM-DD" days).
"use strict";

import { queryString } from "./client.js";

/** The shared filters, in the order of the filter bar. */
export const FILTERS = /** @type {const} */ (["holding", "branch", "manager", "pipeline"]);

/** The filters that say where (org units): what plans and client bases are kept by. */
export const PLACE_FILTERS = /** @type {const} */ (["holding", "branch", "manager"]);

/** `pipeline=*`: every pipeline, summed (the default is the main one: see `pipelineParam`). */
export const ALL_PIPELINES = "*";

/** @typedef {typeof FILTERS[number]} FilterName */

/**
 * @typedef {object} State
 * @property {string} dashboard  dashboard id
 * @property {string} from       first month, "YYYY-MM"
 * @property {string} to         last month
 * @property {string[]} holding  holding ids
 * @property {string[]} branch   branch ids
 * @property {string[]} manager  manager ids
 * @property {string[]} pipeline the chosen pipeline id, or ["*"] for all; [] = the main one
 * @property {string} cmp        the funnel's comparison: "", "prev" or "b:<branch>"
 * @property {string} vs         what KPIs compare with: "" (the previous period; its same days
 *                               when the period runs to date) or "year" (the same period last year)
 * @property {string} lang       "ru" or "en"
 */

/**
 * The state the URL describes.
 * @returns {State}
 */
export function readHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const q = new URLSearchParams(query || "");
  /** @param {string} k */
  const list = (k) => (q.get(k) || "").split(",").map((s) => s.trim()).filter(Boolean);
  return {
    dashboard: decodeURIComponent(path || ""),
    from: q.get("from") || "",
    to: q.get("to") || "",
    holding: list("holding"),
    branch: list("branch"),
    manager: list("manager"),
    pipeline: list("pipeline"),
    cmp: q.get("cmp") || "",
    vs: q.get("vs") === "year" ? "year" : "",
    lang: q.get("lang") || "",
  };
}

/**
 * The URL hash of `state`.
 * @param {State} state
 */
export function hashOf(state) {
  const q = {
    from: state.from, to: state.to, holding: state.holding, branch: state.branch,
    manager: state.manager, pipeline: state.pipeline, cmp: state.cmp, vs: state.vs, lang: state.lang === "ru" ? "" : state.lang,
  };
  return "#/" + encodeURIComponent(state.dashboard) + queryString(q);
}

/**
 * The month `n` months after `month` ("YYYY-MM").
 * @param {string} month
 * @param {number} n
 */
export function addMonths(month, n) {
  const [y, m] = month.split("-").map(Number);
  const d = new Date(Date.UTC(y, m - 1 + n, 1));
  return d.toISOString().slice(0, 7);
}

/**
 * How many months `from`..`to` spans, both included.
 * @param {string} from
 * @param {string} to
 */
export function monthsBetween(from, to) {
  const [fy, fm] = from.split("-").map(Number);
  const [ty, tm] = to.split("-").map(Number);
  return (ty - fy) * 12 + (tm - fm) + 1;
}

/**
 * The day `n` months after `day` ("YYYY-MM-DD"), on the same day of the month or that month's
 * last day when it is shorter (03-31 less a month is 02-28).
 * @param {string} day
 * @param {number} n
 */
export function addMonthsToDay(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  const last = new Date(Date.UTC(y, m - 1 + n + 1, 0)).getUTCDate();
  const t = new Date(Date.UTC(y, m - 1 + n, Math.min(d, last)));
  return t.toISOString().slice(0, 10);
}
