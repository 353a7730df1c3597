// The API client, the shared filters kept in the URL, the UI texts in both languages and the
// formatting of numbers and dates for the chosen locale.
"use strict";

// ---------------------------------------------------------------------------------------------
// Errors the page ran into: browser tests read window.__dealhouseErrors (errors.js creates it).

export function reportError(kind, message) {
  const list = window.__dealhouseErrors || (window.__dealhouseErrors = []);
  list.push({ kind, message: String(message), at: new Date().toISOString() });
}

// ---------------------------------------------------------------------------------------------
// API client

const TOKEN_KEY = "dealhouse.token";

export function token() {
  try { return localStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives for this page only */ }
  cache.clear();
}

/** The API answered 401: the page asks for a token. */
export class AuthError extends Error {}

/** Answers of this render, by URL: panels that read the same answer share one request. */
const cache = new Map();

export function clearCache() {
  cache.clear();
}

/** Query string of `params` (arrays joined by commas, empty values dropped). */
export function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    const value = Array.isArray(v) ? v.join(",") : v;
    if (value !== undefined && value !== null && value !== "") q.set(k, value);
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

/** GET /api/v1/<path> with `params`, as JSON. A 401 throws AuthError; other failures Error. */
export function apiGet(path, params = {}) {
  const url = "/api/v1/" + path + queryString(params);
  if (!cache.has(url)) {
    const headers = {};
    const t = token();
    if (t) headers.authorization = "Bearer " + t;
    const request = fetch(url, { headers }).then(async (r) => {
      if (r.status === 401) throw new AuthError(t ? tr("badToken") : tr("needToken"));
      let body = null;
      try { body = await r.json(); } catch { /* not JSON */ }
      if (!r.ok) {
        const message = (body && body.message) || r.statusText;
        reportError("http", `${r.status} ${url}: ${message}`);
        const err = new Error(message);
        err.reported = true;
        throw err;
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
  return cache.get(url);
}

// ---------------------------------------------------------------------------------------------
// Shared filters, in the URL hash: #/<dashboard>?from=2026-01&to=2026-03&branch=msk&lang=en

export const FILTERS = ["holding", "branch", "manager"];

/** The state the URL describes. */
export function readHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const q = new URLSearchParams(query || "");
  const list = (k) => (q.get(k) || "").split(",").map((s) => s.trim()).filter(Boolean);
  return {
    dashboard: decodeURIComponent(path || ""),
    from: q.get("from") || "",
    to: q.get("to") || "",
    holding: list("holding"),
    branch: list("branch"),
    manager: list("manager"),
    cmp: q.get("cmp") || "",
    lang: q.get("lang") || "",
  };
}

/** The URL hash of `state`. */
export function hashOf(state) {
  const q = {
    from: state.from, to: state.to, holding: state.holding, branch: state.branch,
    manager: state.manager, cmp: state.cmp, lang: state.lang === "ru" ? "" : state.lang,
  };
  return "#/" + encodeURIComponent(state.dashboard) + queryString(q);
}

// ---------------------------------------------------------------------------------------------
// Months: "YYYY-MM" strings

export function addMonths(month, n) {
  const [y, m] = month.split("-").map(Number);
  const d = new Date(Date.UTC(y, m - 1 + n, 1));
  return d.toISOString().slice(0, 7);
}

export function monthsBetween(from, to) {
  const [fy, fm] = from.split("-").map(Number);
  const [ty, tm] = to.split("-").map(Number);
  return (ty - fy) * 12 + (tm - fm) + 1;
}

// ---------------------------------------------------------------------------------------------
// Language

let lang = "ru";

export function setLang(l) {
  lang = l === "en" ? "en" : "ru";
  document.documentElement.lang = lang;
}

export function currentLang() {
  return lang;
}

/** A definition's {ru, en} label in the current language. */
export function L(label, fallback = "") {
  if (!label) return fallback;
  return label[lang] || label.ru || fallback;
}

const TEXTS = {
  ru: {
    period: "Период", from: "с", to: "по", holding: "Холдинг", branch: "Филиал", manager: "Менеджер",
    all: "все", allF: "все", reset: "Сбросить фильтры", showData: "Показать данные", hideData: "Скрыть данные",
    loading: "Загрузка…", noData: "Нет данных за выбранный период", error: "Не удалось загрузить",
    vsPrev: "к пред. периоду", plan: "план", planDone: "выполнено", noPlan: "план не задан",
    of: "из", deals: "Сделки", close: "Закрыть", more: "Показать ещё", total: "Всего",
    needToken: "Для доступа нужен токен", badToken: "Токен не принят", login: "Войти", logout: "Выйти",
    tokenLabel: "Токен доступа", loginTitle: "Вход", loginHint: "Токен выдаёт администратор dealhouse.",
    notFiltered: "Не фильтруется по", compare: "Сравнить с", none: "—", prevPeriod: "предыдущим периодом",
    allDeals: "все сделки", stalled: "зависла", daysInStage: "дн. на этапе", weighted: "прогноз",
    deal: "Сделка", client: "Клиент", stage: "Этап", status: "Статус", amount: "Сумма", commission: "Комиссия",
    created: "Создана", closed: "Закрыта", history: "Этапы", activities: "Активности", entered: "Вход",
    left: "Выход", days: "Дней", type: "Тип", when: "Когда", result: "Результат", dealNotFound: "Сделка не найдена",
    months12: "12 мес. по", language: "Язык", menu: "Дашборды", drillHint: "Нажмите, чтобы увидеть сделки",
    lostReason: "Причина проигрыша", skip: "Перейти к содержимому", current: "сейчас", selected: "выбрано",
  },
  en: {
    period: "Period", from: "from", to: "to", holding: "Holding", branch: "Branch", manager: "Manager",
    all: "all", allF: "all", reset: "Reset filters", showData: "Show data", hideData: "Hide data",
    loading: "Loading…", noData: "No data for the selected period", error: "Could not load",
    vsPrev: "vs previous period", plan: "plan", planDone: "done", noPlan: "no plan set",
    of: "of", deals: "Deals", close: "Close", more: "Show more", total: "Total",
    needToken: "A token is needed", badToken: "The token was not accepted", login: "Sign in", logout: "Sign out",
    tokenLabel: "Access token", loginTitle: "Sign in", loginHint: "Your dealhouse administrator issues tokens.",
    notFiltered: "Not filtered by", compare: "Compare with", none: "—", prevPeriod: "the previous period",
    allDeals: "all deals", stalled: "stalled", daysInStage: "days in stage", weighted: "forecast",
    deal: "Deal", client: "Client", stage: "Stage", status: "Status", amount: "Amount", commission: "Commission",
    created: "Created", closed: "Closed", history: "Stages", activities: "Activities", entered: "Entered",
    left: "Left", days: "Days", type: "Type", when: "When", result: "Result", dealNotFound: "No such deal",
    months12: "12 months to", language: "Language", menu: "Dashboards", drillHint: "Click to see the deals",
    lostReason: "Lost because", skip: "Skip to content", current: "now", selected: "selected",
  },
};

/** A UI text in the current language. */
export function tr(key) {
  return (TEXTS[lang] && TEXTS[lang][key]) || TEXTS.ru[key] || key;
}

const VALUE_LABELS = {
  ru: {
    new: "Новая", contact: "Контакт", proposal: "КП отправлено", negotiation: "Переговоры", contract: "Договор",
    won: "Выиграна", lost: "Проиграна", open: "В работе", active: "Активные", at_risk: "Под угрозой",
    churned: "Ушедшие", reactivated: "Вернувшиеся", in_progress: "В работе", done: "Выполнена",
    rejected: "Отклонена", won_amount: "Выиграно, ₽", commission: "Комиссия, ₽", deals_won: "Выиграно сделок",
    calls: "Звонки", meetings: "Встречи", new_clients: "Новые клиенты", call: "Звонок", meeting: "Встреча",
    email: "Письмо", proposal_sent: "КП", contract_signed: "Договор", task: "Задача",
  },
  en: {
    new: "New", contact: "Contact", proposal: "Proposal sent", negotiation: "Negotiation", contract: "Contract",
    won: "Won", lost: "Lost", open: "Open", active: "Active", at_risk: "At risk", churned: "Churned",
    reactivated: "Came back", in_progress: "In progress", done: "Done", rejected: "Rejected",
    won_amount: "Won, ₽", commission: "Commission, ₽", deals_won: "Deals won", calls: "Calls",
    meetings: "Meetings", new_clients: "New clients", call: "Call", meeting: "Meeting", email: "Email",
    proposal_sent: "Proposal", contract_signed: "Contract", task: "Task",
  },
};

/** A stage, state, status or metric id as words. */
export function valueLabel(v) {
  return (VALUE_LABELS[lang] && VALUE_LABELS[lang][v]) || v;
}

// ---------------------------------------------------------------------------------------------
// Names from /api/v1/dimensions

export const dims = { holdings: new Map(), branches: new Map(), managers: new Map(), months: [], stages: [] };

export function setDimensions(d) {
  dims.holdings = new Map((d.holdings || []).map((h) => [h.holding_id, h]));
  dims.branches = new Map((d.branches || []).map((b) => [b.branch_id, b]));
  dims.managers = new Map((d.managers || []).map((m) => [m.manager_id, m]));
  dims.months = d.months || [];
  dims.stages = d.stages || [];
}

/** The IANA zone a row's instants are shown in: its own, its branch's, else Moscow. */
export function zoneOf(row) {
  if (row && row.time_zone) return row.time_zone;
  const b = row && (row.branch_id || row.branch);
  return (b && dims.branches.get(b) && dims.branches.get(b).time_zone) || "Europe/Moscow";
}

// ---------------------------------------------------------------------------------------------
// Formatting

const formatters = new Map();

function nf(options) {
  const key = lang + JSON.stringify(options);
  if (!formatters.has(key)) {
    formatters.set(key, new Intl.NumberFormat(lang === "en" ? "en-GB" : "ru-RU", options));
  }
  return formatters.get(key);
}

function df(options) {
  const key = "d" + lang + JSON.stringify(options);
  if (!formatters.has(key)) {
    formatters.set(key, new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "ru-RU", options));
  }
  return formatters.get(key);
}

/** Money: `1 234 567 ₽` in Russian. */
export function rub(v) {
  return nf({ style: "currency", currency: "RUB", currencyDisplay: "narrowSymbol", maximumFractionDigits: 0 })
    .format(Number(v));
}

/** A short axis label: `1,2 млн`. */
export function compact(v, format) {
  const s = nf({ notation: "compact", maximumFractionDigits: 1 }).format(Number(v));
  if (format === "ratio") return nf({ style: "percent", maximumFractionDigits: 0 }).format(Number(v));
  return s;
}

function monthDate(v) {
  const [y, m] = String(v).slice(0, 7).split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, 1));
}

/** `v` shown as `format` says; `row` gives the time zone of instants. Null shows a dash. */
export function fmt(v, format, row) {
  if (v === null || v === undefined || v === "") return "—";
  switch (format) {
    case "rub": return rub(v);
    case "count": return nf({ maximumFractionDigits: 0 }).format(Number(v));
    case "number": return nf({ maximumFractionDigits: 2 }).format(Number(v));
    case "ratio": return nf({ style: "percent", maximumFractionDigits: 1 }).format(Number(v));
    case "days": return nf({ maximumFractionDigits: 1 }).format(Number(v));
    case "hours": {
      const h = Number(v);
      return h >= 48 ? nf({ maximumFractionDigits: 1 }).format(h / 24) + (lang === "en" ? " d" : " дн.")
        : nf({ maximumFractionDigits: 1 }).format(h) + (lang === "en" ? " h" : " ч");
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
    case "branch": return (dims.branches.get(v) && dims.branches.get(v).name) || String(v);
    case "holding": return (dims.holdings.get(v) && dims.holdings.get(v).name) || String(v);
    case "manager": return (dims.managers.get(v) && dims.managers.get(v).name) || String(v);
    case "stage": return valueLabel(v);
    default: return String(v);
  }
}

/** Escapes text for HTML. */
export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
