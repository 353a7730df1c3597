// @ts-check
// The names behind ids (holdings, branches, managers), the months with data, the pipelines (the
// main one first), the stages, the data's today (the reference date: what a month to date runs
// through) and the reporting currency, from /api/v1/dimensions, loaded once at start and read by
// the filters, the periods and the formatting.
"use strict";

import { setMoneySymbol } from "./i18n.js";

/**
 * @typedef {{ holding_id: string, name: string }} Holding
 * @typedef {{ branch_id: string, holding_id: string, name: string, time_zone?: string }} Branch
 * @typedef {{ manager_id: string, branch_id: string, holding_id: string, name: string }} Manager
 * @typedef {{ stage: string, stage_order: number }} Stage
 * @typedef {{ pipeline: string, deals: number, open_deals: number }} Pipeline
 */

export const dims = {
  /** @type {Map<string, Holding>} */
  holdings: new Map(),
  /** @type {Map<string, Branch>} */
  branches: new Map(),
  /** @type {Map<string, Manager>} */
  managers: new Map(),
  /** @type {string[]} */
  months: [],
  /** @type {Pipeline[]} */
  pipelines: [],
  /** @type {Stage[]} */
  stages: [],
  /** The data's today, "YYYY-MM-DD" ("" without data). @type {string} */
  referenceDate: "",
  /** The month before the reference date's, "YYYY-MM": the default period. @type {string} */
  lastCompleteMonth: "",
  /** ISO 4217 code every money value of the API is in (`[reporting] currency`). */
  currency: "RUB",
};

/** @param {any} d the answer of /api/v1/dimensions */
export function setDimensions(d) {
  dims.holdings = new Map((d.holdings || []).map((/** @type {Holding} */ h) => [h.holding_id, h]));
  dims.branches = new Map((d.branches || []).map((/** @type {Branch} */ b) => [b.branch_id, b]));
  dims.managers = new Map((d.managers || []).map((/** @type {Manager} */ m) => [m.manager_id, m]));
  dims.months = d.months || [];
  dims.pipelines = d.pipelines || [];
  dims.stages = d.stages || [];
  dims.referenceDate = d.reference_date || "";
  dims.lastCompleteMonth = d.last_complete_month || "";
  dims.currency = d.currency || "RUB";
  const parts = new Intl.NumberFormat("ru", { style: "currency", currency: dims.currency, currencyDisplay: "narrowSymbol" })
    .formatToParts(0);
  setMoneySymbol((parts.find((p) => p.type === "currency") || { value: dims.currency }).value);
}

/**
 * The IANA zone a row's instants are shown in: its own, its branch's, else Moscow.
 * @param {Record<string, any> | null | undefined} row
 */
export function zoneOf(row) {
  if (row && row.time_zone) return row.time_zone;
  const b = row && (row.branch_id || row.branch);
  const branch = b && dims.branches.get(b);
  return (branch && branch.time_zone) || "Europe/Moscow";
}
