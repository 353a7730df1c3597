// @ts-check
// Numbers, money, dates and ids as the chosen language shows them (Intl, cached per language):
// `fmt(value, format, row)` for every `format` of the definitions (dashboards/src/definition.rs).
"use strict";

import { dims, zoneOf } from "./dimensions.js";
import { currentLang, valueLabel } from "./i18n.js";

/** @type {Map<string, Intl.NumberFormat | Intl.DateTimeFormat>} */
const formatters = new Map();

function locale() {
  return currentLang() === "en" ? "en-GB" : "ru-RU";
}

/**
 * @param {Intl.NumberFormatOptions} options
 * @returns {Intl.NumberFormat}
 */
function nf(options) {
  const key = currentLang() + JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.NumberFormat(locale(), options)));
  return /** @type {Intl.NumberFormat} */ (f);
}

/**
 * @param {Intl.DateTimeFormatOptions} options
 * @returns {Intl.DateTimeFormat}
 */
function df(options) {
  const key = "d" + currentLang() + JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.DateTimeFormat(locale(), options)));
  return /** @type {Intl.DateTimeFormat} */ (f);
}

/**
 * Money in the reporting currency (`dims.currency`): `1 234 567 ₽` in Russian for RUB. The API
 * sends money as decimal strings; Intl formats a string as the exact decimal it spells, so no
 * float rounding happens on the way.
 * @param {unknown} v
 */
export function rub(v) {
  const exact = typeof v === "string" ? /** @type {any} */ (v) : Number(v);
  return nf({ style: "currency", currency: dims.currency, currencyDisplay: "narrowSymbol", maximumFractionDigits: 0 })
    .format(exact);
}

/**
 * A short axis label: `1,2 млн`.
 * @param {number} v
 * @param {string} [format]
 */
export function compact(v, format) {
  const s = nf({ notation: "compact", maximumFractionDigits: 1 }).format(Number(v));
  if (format === "ratio") return nf({ style: "percent", maximumFractionDigits: 0 }).format(Number(v));
  return s;
}

/** @param {unknown} v "YYYY-MM..." */
function monthDate(v) {
  const [y, m] = String(v).slice(0, 7).split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, 1));
}

/**
 * `v` shown as `format` says; `row` gives the time zone of instants. Null shows a dash.
 * @param {any} v
 * @param {string} [format]
 * @param {Record<string, any> | null} [row]
 * @returns {string}
 */
export function fmt(v, format, row) {
  if (v === null || v === undefined || v === "") return "—";
  const en = currentLang() === "en";
  switch (format) {
    case "rub": return rub(v);
    case "count": return nf({ maximumFractionDigits: 0 }).format(Number(v));
    case "number": return nf({ maximumFractionDigits: 2 }).format(Number(v));
    case "ratio": return nf({ style: "percent", maximumFractionDigits: 1 }).format(Number(v));
    case "days": return nf({ maximumFractionDigits: 1 }).format(Number(v));
    case "hours": {
      const h = Number(v);
      return h >= 48 ? nf({ maximumFractionDigits: 1 }).format(h / 24) + (en ? " d" : " дн.")
        : nf({ maximumFractionDigits: 1 }).format(h) + (en ? " h" : " ч");
    }
    case "month": return df({ month: "short", year: "numeric", timeZone: "UTC" }).format(monthDate(v));
    case "short_month": {
      // "окт. 25": the month's short name and a two-digit year, for axes and grid headers.
      const d = monthDate(v);
      return `${df({ month: "short", timeZone: "UTC" }).format(d)} ${String(d.getUTCFullYear()).slice(2)}`;
    }
    case "date": {
      const [y, m, d] = String(v).slice(0, 10).split("-").map(Number);
      return df({ day: "2-digit", month: "2-digit", year: "numeric", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
    }
    case "datetime": {
      const t = new Date(String(v).replace(" ", "T").replace(/(\d{2}:\d{2}:\d{2}(\.\d+)?)$/, "$1Z"));
      if (Number.isNaN(t.getTime())) return String(v);
      return df({ dateStyle: "short", timeStyle: "short", timeZone: zoneOf(row) }).format(t);
    }
    case "branch": return dims.branches.get(v)?.name || String(v);
    case "holding": return dims.holdings.get(v)?.name || String(v);
    case "manager": return dims.managers.get(v)?.name || String(v);
    case "stage": return valueLabel(v);
    default: return String(v);
  }
}
