// @ts-check
// A panel's request: its endpoint and parameters from the definition's query and the shared
// filters, the months it covers, and the rows of the answer (rolled up, filtered, cut) as the
// definition asks (dashboards/src/definition.rs documents every key).
"use strict";

import { apiGet } from "./client.js";
import { dims } from "./dimensions.js";
import { ALL_PIPELINES, addMonths, addMonthsToDay, monthsBetween } from "./state.js";

/**
 * @typedef {import("./i18n.js").Label} Label
 * @typedef {import("./state.js").State} State
 * @typedef {import("./client.js").Params} Params
 * @typedef {Record<string, any>} Row one row of an answer
 * @typedef {{ from?: string, to?: string, through?: string }} Period "YYYY-MM" months, or {} for
 *   state-now panels; `through` ("YYYY-MM-DD") ends a period that runs to date at that day
 * @typedef {{ key: string, label?: Label | null, format: string, mature?: string | null }} Field
 * @typedef {object} Query
 * @property {string[]} measures
 * @property {string[]} by
 * @property {string | null} [endpoint]
 * @property {string | null} [field]
 * @property {Record<string, string>} params
 * @property {"selected" | "trend" | "none"} period
 * @property {readonly string[]} filters
 * @typedef {object} Panel
 * @property {string} id
 * @property {Label} title
 * @property {string} chart
 * @property {number} width
 * @property {Query} query
 * @property {Field[]} fields
 * @property {string | null} [x]
 * @property {string | null} [y]
 * @property {string | null} [group]
 * @property {string | null} [spark]
 * @property {string | null} [plan]
 * @property {"up" | "down"} better
 * @property {"previous_period" | "choice" | null} [compare]
 * @property {Record<string, string> | null} [drill]
 * @property {Record<string, string>} click_filter
 * @property {"always" | "one_manager" | "not_one_manager"} show
 * @property {Label | null} [note]
 * @property {"week" | null} [rollup]
 * @property {Record<string, number>} at_least
 * @property {number | null} [top]
 */

/**
 * The months a query covers under `state`: {from, to} (with `through`, the reference date, for a
 * measures query whose period runs to date), or {} for state-now panels.
 * @param {Pick<Query, "period"> & Partial<Pick<Query, "measures">>} query
 * @param {State} state
 * @returns {Period}
 */
export function periodOf(query, state) {
  if (query.period === "none" || !state.to) return {};
  if (query.period === "trend") {
    let from = addMonths(state.to, -11);
    if (dims.months.length && from < dims.months[0]) from = dims.months[0];
    if (from > state.to) from = state.to;
    return { from, to: state.to };
  }
  // A period ending in the reference month runs to date: measures are asked for up to the
  // reference day, so that its comparison can be cut at the same day.
  const through = query.measures && query.measures.length && runsToDate(state.to) ? { through: dims.referenceDate } : {};
  return { from: state.from, to: state.to, ...through };
}

/**
 * Whether the period ending in `to` ("YYYY-MM") is still running: the reference date is in it.
 * @param {string | undefined} to
 */
export function runsToDate(to) {
  return !!to && !!dims.referenceDate && dims.referenceDate.slice(0, 7) === to;
}

/**
 * What `period` is compared with: the period of the same length just before it, or (`vs` =
 * "year") the same months a year earlier. A period to date is compared with the same days: its
 * `through` moves by as many months (the 6th of this month: the 6th of the previous one).
 * @param {Period} period
 * @param {string} [vs]
 * @returns {Period | null}
 */
export function previousPeriod(period, vs = "") {
  if (!period.from || !period.to) return null;
  const n = vs === "year" ? 12 : monthsBetween(period.from, period.to);
  const out = { from: addMonths(period.from, -n), to: addMonths(period.to, -n) };
  return period.through ? { ...out, through: addMonthsToDay(period.through, -n) } : out;
}

/**
 * A period as a drill-down or endpoint takes it: months only (deal lists are not cut by day).
 * @param {Period} period
 * @returns {Period}
 */
export function monthsOf(period) {
  const { through: _, ...months } = period;
  return months;
}

/**
 * The pipelines a stage panel shows under `state`: the chosen one, none for all of them, else the
 * main one (most deals), so two sales processes are never summed into one funnel unasked.
 * @param {State} state
 * @returns {string[]}
 */
export function pipelineParam(state) {
  if (state.pipeline.includes(ALL_PIPELINES)) return [];
  if (state.pipeline.length) return state.pipeline;
  return dims.pipelines.length > 1 ? [dims.pipelines[0].pipeline] : [];
}

/**
 * The shared filters a query takes, from `state`.
 * @param {Pick<Query, "filters">} query
 * @param {State} state
 * @returns {Params}
 */
export function filterParams(query, state) {
  /** @type {Params} */
  const out = {};
  for (const f of query.filters) {
    const v = f === "pipeline" ? pipelineParam(state) : /** @type {Record<string, any>} */ (state)[f];
    if (v && v.length) out[f] = v;
  }
  return out;
}

/**
 * Every parameter of a panel's request.
 * @param {Query} query
 * @param {State} state
 * @param {Period} [period]
 * @returns {Params}
 */
export function paramsFor(query, state, period) {
  /** @type {Params} */
  const p = { ...query.params };
  if (query.measures.length) {
    p.measures = query.measures;
    if (query.by.length) p.by = query.by;
  }
  Object.assign(p, period || periodOf(query, state), filterParams(query, state));
  return p;
}

/** @param {Query} query */
function endpointOf(query) {
  return query.measures.length ? "metrics" : String(query.endpoint);
}

/**
 * The rows of an answer: `rows`, or the part `field` names (an object counts as one row).
 * @param {any} answer
 * @param {Query} query
 * @returns {Row[]}
 */
export function rowsOf(answer, query) {
  const part = query.field ? answer && answer[query.field] : answer && answer.rows;
  if (Array.isArray(part)) return part;
  return part && typeof part === "object" ? [part] : [];
}

/**
 * Fetches a panel's rows under `state` (and an explicit period, for comparisons).
 * @param {Panel} panel
 * @param {State} state
 * @param {Period} [period]
 * @returns {Promise<{ answer: any, rows: Row[] }>}
 */
export async function fetchRows(panel, state, period) {
  const answer = await apiGet(endpointOf(panel.query), paramsFor(panel.query, state, period));
  let rows = rowsOf(answer, panel.query);
  if (panel.rollup === "week" && panel.x) rows = rollupWeeks(rows, panel.x, panel.fields);
  const floors = Object.entries(panel.at_least || {});
  if (floors.length) rows = rows.filter((r) => floors.every(([k, min]) => Number(r[k]) >= min));
  if (panel.top) rows = rows.slice(0, panel.top);
  return { answer, rows };
}

/** @param {string} day "YYYY-MM-DD..." */
function mondayOf(day) {
  const [y, m, d] = day.slice(0, 10).split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d));
  t.setUTCDate(t.getUTCDate() - ((t.getUTCDay() + 6) % 7));
  return t.toISOString().slice(0, 10);
}

/**
 * Sums count fields by ISO week of `x`.
 * @param {Row[]} rows
 * @param {string} x
 * @param {Field[]} fields
 * @returns {Row[]}
 */
export function rollupWeeks(rows, x, fields) {
  /** @type {Map<string, Row>} */
  const weeks = new Map();
  for (const r of rows) {
    const w = mondayOf(String(r[x]));
    const acc = weeks.get(w) || { [x]: w };
    for (const f of fields) {
      if (f.key === x) continue;
      acc[f.key] = (acc[f.key] || 0) + (Number(r[f.key]) || 0);
    }
    weeks.set(w, acc);
  }
  return [...weeks.values()].sort((a, b) => (a[x] < b[x] ? 1 : -1));
}
