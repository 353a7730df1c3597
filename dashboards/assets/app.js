// @ts-check
// The application shell: the menu of dashboards, the shared filter bar, the hash router
// (#/<dashboard>?from=..&to=..&holding=..&branch=..&manager=..&vs=..), the default period (the last
// complete month; "month to date" one click away), the drill-down dialog with the
// deals behind a number and a deal's card, the language switch and the token login.
"use strict";

import { AuthError, apiGet, clearCache, reportError, setToken, token } from "./client.js";
import { dims, setDimensions } from "./dimensions.js";
import { fmt } from "./format.js";
import { append, html, render } from "./html.js";
import { L, currentLang, setLang, tr, valueLabel } from "./i18n.js";
import { renderPanel } from "./panels.js";
import { filterParams, monthsOf, runsToDate } from "./requests.js";
import { ALL_PIPELINES, FILTERS, hashOf, readHash } from "./state.js";

/**
 * @typedef {import("./html.js").Html} Html
 * @typedef {import("./state.js").State} State
 * @typedef {import("./requests.js").Panel} Panel
 * @typedef {import("./requests.js").Row} Row
 * @typedef {import("./requests.js").Period} Period
 * @typedef {import("./i18n.js").Label} Label
 * @typedef {{ id: string, order: number, title: Label, description: Label, panels: Panel[] }} Dashboard
 */

/**
 * The element `sel` of the page (index.html has every one the shell uses).
 * @param {string} sel
 */
const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));
/** @param {string} sel */
const dialog = (sel) => /** @type {HTMLDialogElement} */ (document.querySelector(sel));
/** @param {string} sel */
const field = (sel) => /** @type {HTMLInputElement} */ (document.querySelector(sel));

/** @type {Dashboard[]} */
let dashboards = [];
/** @type {Map<string, Promise<Dashboard>>} */
const definitions = new Map();
let state = readHash();
let renderSeq = 0;

/** @param {{ message: string }} e */
function errorHtml(e) {
  return html`<p class="error" role="alert">${tr("error")}: ${e.message}</p>`;
}

// ---------------------------------------------------------------------------------------------
// Start

async function start() {
  const stored = (() => { try { return localStorage.getItem("dealhouse.lang"); } catch { return null; } })();
  setLang(state.lang || stored || "ru");
  state.lang = currentLang();
  wireStatic();
  try {
    const [list, d] = await Promise.all([apiGet("dashboards"), apiGet("dimensions")]);
    dashboards = list.dashboards || [];
    setDimensions(d);
  } catch (e) {
    return fail(/** @type {Error} */ (e));
  }
  window.addEventListener("hashchange", onHash);
  onHash();
}

/** @param {Error} e */
function fail(e) {
  if (e instanceof AuthError) return showLogin(e.message);
  render($("#content"), errorHtml(e));
  document.documentElement.dataset.rendered = String(++renderSeq);
}

/**
 * The default period: the last complete month (a month to date is one click away, and never the
 * default: its figures are partial), else the latest month with data.
 */
function defaultMonth() {
  if (dims.lastCompleteMonth && dims.months.includes(dims.lastCompleteMonth)) return dims.lastCompleteMonth;
  return dims.months.length ? dims.months[dims.months.length - 1] : new Date().toISOString().slice(0, 7);
}

/** Fills in what the URL leaves out (first dashboard, the last complete month) and renders. */
function onHash() {
  state = { ...readHash(), lang: currentLang() };
  const latest = defaultMonth();
  let fixed = false;
  if (!dashboards.some((d) => d.id === state.dashboard)) {
    state.dashboard = dashboards.length ? dashboards[0].id : "";
    fixed = true;
  }
  if (!state.to) { state.to = latest; fixed = true; }
  if (!state.from || state.from > state.to) { state.from = state.to; fixed = true; }
  if (fixed) {
    history.replaceState(null, "", hashOf(state));
  }
  // The filter bar is rebuilt: a keyboard user keeps their place in it.
  const focused = document.activeElement && document.activeElement.id;
  renderShell();
  const again = focused && focused.startsWith("f-") ? document.getElementById(focused) : null;
  if (again) again.focus();
  renderDashboard();
}

/**
 * Changes the state; the URL carries it, so the view can be bookmarked and shared.
 * @param {Partial<State>} patch
 */
function setState(patch) {
  const next = { ...state, ...patch };
  const hash = hashOf(next);
  if (hash === location.hash) renderDashboard(); else location.hash = hash;
}

// ---------------------------------------------------------------------------------------------
// Menu and filters

function wireStatic() {
  $("#lang").addEventListener("click", () => {
    const next = currentLang() === "ru" ? "en" : "ru";
    try { localStorage.setItem("dealhouse.lang", next); } catch { /* ignore */ }
    setLang(next);
    setState({ lang: next });
  });
  $("#logout").addEventListener("click", () => {
    setToken("");
    location.reload();
  });
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    document.documentElement.dataset.busy = "true";
    setToken(field("#token").value.trim());
    field("#token").value = "";
    dialog("#login").close();
    delete document.documentElement.dataset.login;
    clearCache();
    try {
      const [list, d] = await Promise.all([apiGet("dashboards"), apiGet("dimensions")]);
      dashboards = list.dashboards || [];
      setDimensions(d);
      window.removeEventListener("hashchange", onHash);
      window.addEventListener("hashchange", onHash);
      onHash();
    } catch (err) {
      fail(/** @type {Error} */ (err));
    }
  });
  $("#drill-close").addEventListener("click", () => dialog("#drill").close());
}

/**
 * The options of a filter's <select>.
 * @param {[string, string][]} values id and name
 * @param {string} selected
 * @param {string | null} allLabel the first option, "any value"; null for none
 */
function options(values, selected, allLabel) {
  return [
    allLabel === null ? null : html`<option value="">${allLabel}</option>`,
    ...values.map(([v, label]) => html`<option value="${v}"${selected === v ? html` selected` : null}>${label}</option>`),
  ];
}

/**
 * A filter's value on the event's <select>.
 * @param {Event} e
 */
function chosen(e) {
  return /** @type {HTMLSelectElement} */ (e.target).value;
}

function renderShell() {
  document.title = "dealhouse";
  $("#skip").textContent = tr("skip");
  $("#lang").textContent = currentLang() === "ru" ? "English" : "Русский";
  $("#lang").setAttribute("aria-label", `${tr("language")}: ${currentLang() === "ru" ? "English" : "Русский"}`);
  $("#logout").hidden = !token();
  $("#logout").textContent = tr("logout");
  $("#nav").setAttribute("aria-label", tr("menu"));
  render($("#nav"), html`${dashboards.map((d) => {
    const current = d.id === state.dashboard ? html` aria-current="page"` : null;
    return html`<a href="${hashOf({ ...state, dashboard: d.id, cmp: "" })}" data-dashboard="${d.id}"${current}>${L(d.title, d.id)}</a>`;
  })}`);

  /** @type {[string, string][]} */
  const months = dims.months.map((m) => [m, fmt(m, "month")]);
  /** @param {string[]} list */
  const one = (list) => (list.length === 1 ? list[0] : "");
  /** @type {[string, string][]} */
  const holdings = [...dims.holdings.values()].map((h) => [h.holding_id, h.name]);
  /** @type {[string, string][]} */
  const branches = [...dims.branches.values()]
    .filter((b) => !state.holding.length || state.holding.includes(b.holding_id))
    .map((b) => [b.branch_id, b.name]);
  /** @type {[string, string][]} */
  const managers = [...dims.managers.values()]
    .filter((m) => (!state.branch.length || state.branch.includes(m.branch_id))
      && (!state.holding.length || state.holding.includes(m.holding_id)))
    .map((m) => [m.manager_id, m.name]);
  // One pipeline (a CRM's default) needs no choice; with several, the stage panels show the
  // main one (most deals) unless another one, or all of them summed, is chosen.
  /** @type {[string, string][]} */
  const pipelines = dims.pipelines.map((p, i) => [p.pipeline, i === 0 ? `${p.pipeline} (${tr("mainPipeline")})` : p.pipeline]);
  pipelines.push([ALL_PIPELINES, tr("allPipelines")]);
  const pipeline = state.pipeline.length === 1 ? state.pipeline[0] : (dims.pipelines[0] || { pipeline: "" }).pipeline;
  render($("#filters"), html`${[
    html`<fieldset class="period"><legend>${tr("period")}</legend>`,
    html`<label>${tr("from")} <select id="f-from">${options(months, state.from, null)}</select></label>`,
    html`<label>${tr("to")} <select id="f-to">${options(months, state.to, null)}</select></label>`,
    mtdButton(),
    html`<label>${tr("compare")} <select id="f-vs">${options([["", tr("vsPrevOption")], ["year", tr("vsYearOption")]], state.vs, null)}</select></label></fieldset>`,
    html`<label>${tr("holding")} <select id="f-holding">${options(holdings, one(state.holding), tr("all"))}</select></label>`,
    html`<label>${tr("branch")} <select id="f-branch">${options(branches, one(state.branch), tr("all"))}</select></label>`,
    html`<label>${tr("manager")} <select id="f-manager">${options(managers, one(state.manager), tr("all"))}</select></label>`,
    dims.pipelines.length > 1
      ? html`<label>${tr("pipeline")} <select id="f-pipeline">${options(pipelines, pipeline, null)}</select></label>`
      : null,
    html`<button type="button" id="f-reset">${tr("reset")}</button>`,
  ]}`);
  $("#f-from").addEventListener("change", (e) => {
    const from = chosen(e);
    setState({ from, to: state.to < from ? from : state.to });
  });
  $("#f-to").addEventListener("change", (e) => {
    const to = chosen(e);
    setState({ to, from: state.from > to ? to : state.from });
  });
  const mtd = document.getElementById("f-mtd");
  if (mtd) mtd.addEventListener("click", () => setState({ from: dims.referenceDate.slice(0, 7), to: dims.referenceDate.slice(0, 7) }));
  $("#f-vs").addEventListener("change", (e) => setState({ vs: chosen(e) }));
  $("#f-holding").addEventListener("change", (e) => {
    const holding = chosen(e) ? [chosen(e)] : [];
    /** @param {string} b */
    const keep = (b) => {
      const where = dims.branches.get(b);
      return !holding.length || (where !== undefined && holding.includes(where.holding_id));
    };
    const branch = state.branch.filter(keep);
    const manager = state.manager.filter((m) => {
      const who = dims.managers.get(m);
      return who !== undefined && keep(who.branch_id);
    });
    setState({ holding, branch, manager });
  });
  $("#f-branch").addEventListener("change", (e) => {
    const branch = chosen(e) ? [chosen(e)] : [];
    const manager = state.manager.filter((m) => {
      const who = dims.managers.get(m);
      return !branch.length || (who !== undefined && branch.includes(who.branch_id));
    });
    setState({ branch, manager });
  });
  $("#f-manager").addEventListener("change", (e) => setState({ manager: chosen(e) ? [chosen(e)] : [] }));
  const pick = document.querySelector("#f-pipeline");
  if (pick) pick.addEventListener("change", (e) => setState({ pipeline: [chosen(e)] }));
  $("#f-reset").addEventListener("click", () => setState({ holding: [], branch: [], manager: [], pipeline: [], cmp: "" }));
}

/** The "month to date" button: the reference month, up to the data's today. */
function mtdButton() {
  if (!dims.referenceDate) return null;
  const month = dims.referenceDate.slice(0, 7);
  const on = state.from === month && state.to === month;
  return html`<button type="button" id="f-mtd" aria-pressed="${String(on)}" title="${tr("mtdHint")} ${fmt(dims.referenceDate, "date")}">${tr("mtd")}</button>`;
}

// ---------------------------------------------------------------------------------------------
// A dashboard

/** @param {string} id */
async function definition(id) {
  let d = definitions.get(id);
  if (!d) definitions.set(id, (d = apiGet(`dashboards/${encodeURIComponent(id)}`)));
  return d;
}

/** @param {Panel} panel */
function visible(panel) {
  const one = state.manager.length === 1;
  return panel.show === "always" || (panel.show === "one_manager" ? one : !one);
}

/**
 * The shared filters set now that `panel` cannot honour, as words.
 * @param {Panel} panel
 */
function ignoredFilters(panel) {
  /** @param {typeof FILTERS[number]} f */
  const set = (f) => state[f].length > 0 && !(f === "pipeline" && state.pipeline.includes(ALL_PIPELINES));
  return FILTERS.filter((f) => set(f) && !panel.query.filters.includes(f)).map((f) => tr(f).toLowerCase());
}

/** @param {Panel} panel */
function periodNote(panel) {
  if (panel.query.period === "none") return tr("current");
  if (panel.query.period === "trend") return `${tr("months12")} ${fmt(state.to, "month")}`;
  const months = state.from === state.to ? fmt(state.from, "month") : `${fmt(state.from, "month")} – ${fmt(state.to, "month")}`;
  return runsToDate(state.to) ? `${months}, ${tr("toDate")} ${fmt(dims.referenceDate, "date")}` : months;
}

/** @param {Panel} p the panel's frame, drawn while its rows load */
function panelFrame(p) {
  const ignored = ignoredFilters(p);
  const note = [L(p.note), ignored.length ? `${tr("notFiltered")}: ${ignored.join(", ")}.` : ""].filter(Boolean).join(" ");
  return html`<section class="panel w${p.width} chart-${p.chart}" id="panel-${p.id}" data-panel="${p.id}" data-state="loading" aria-labelledby="h-${p.id}">${[
    html`<header><h2 id="h-${p.id}">${L(p.title)}</h2><span class="period-note">${periodNote(p)}</span></header>`,
    html`<div class="body" aria-live="polite"><p class="muted">${tr("loading")}</p></div>`,
    note ? html`<p class="note">${note}</p>` : null,
  ]}</section>`;
}

async function renderDashboard() {
  const seq = ++renderSeq;
  clearCache();
  document.documentElement.dataset.busy = "true";
  const content = $("#content");
  let def;
  try {
    def = await definition(state.dashboard);
  } catch (e) {
    if (seq === renderSeq) fail(/** @type {Error} */ (e));
    return;
  }
  if (seq !== renderSeq) return;
  const panels = def.panels.filter(visible);
  const managerPage = state.manager.length === 1 && def.panels.some((p) => p.show === "one_manager");
  const heading = managerPage ? `${L(def.title)}: ${fmt(state.manager[0], "manager")}` : L(def.title);
  render(content, html`<h1 id="page-title">${heading}</h1><p class="description">${L(def.description)}</p><div class="grid">${panels.map(panelFrame)}</div>`);
  const actions = { drill, openDeal, setState, filterBy };
  const results = await Promise.allSettled(panels.map(async (p) => {
    const section = /** @type {HTMLElement} */ (content.querySelector(`#panel-${CSS.escape(p.id)}`));
    const body = /** @type {HTMLElement} */ (section.querySelector(".body"));
    try {
      await renderPanel(p, body, state, actions);
      section.dataset.state = "ready";
    } catch (err) {
      const e = /** @type {any} */ (err);
      section.dataset.state = "error";
      if (e instanceof AuthError) throw e;
      if (!e || !e.reported) reportError("render", `${p.id}: ${e && e.stack ? e.stack : e}`);
      render(body, errorHtml(e));
    }
  }));
  if (seq !== renderSeq) return;
  const auth = results.find((r) => r.status === "rejected" && r.reason instanceof AuthError);
  if (auth && auth.status === "rejected") showLogin(auth.reason.message);
  document.documentElement.dataset.busy = "false";
  document.documentElement.dataset.rendered = String(seq);
}

/**
 * Sets the shared filters `map` names from the clicked `row`.
 * @param {Record<string, string>} map filter -> row key
 * @param {Row} row
 */
function filterBy(map, row) {
  /** @type {Partial<State>} */
  const patch = {};
  for (const [filter, key] of Object.entries(map)) {
    const v = row[key];
    if (v !== null && v !== undefined && v !== "" && (filter === "holding" || filter === "branch" || filter === "manager")) {
      patch[filter] = [String(v)];
    }
  }
  if (patch.holding) { patch.branch = []; patch.manager = []; }
  if (patch.branch) patch.manager = [];
  setState(patch);
}

// ---------------------------------------------------------------------------------------------
// Drill-down: the deals behind a number, and one deal's card

const DEAL_FIELDS = [
  { key: "title", label: "deal", format: "text" },
  { key: "client_name", label: "client", format: "text" },
  { key: "manager_id", label: "manager", format: "manager" },
  { key: "branch_id", label: "branch", format: "branch" },
  { key: "stage", label: "stage", format: "stage" },
  { key: "amount", label: "amount", format: "rub" },
  { key: "commission", label: "commission", format: "rub" },
  { key: "created_at", label: "created", format: "datetime" },
  { key: "closed_at", label: "closed", format: "datetime" },
];

/**
 * `template` with every `{key}` replaced by the row's value.
 * @param {string} template
 * @param {Row} row
 */
function substitute(template, row) {
  return String(template).replace(/\{(\w+)\}/g, (_, k) => (row && row[k] !== undefined && row[k] !== null ? String(row[k]) : ""));
}

/**
 * Opens the deals behind `row` of `panel`: its drill parameters, the period it shows, the filters.
 * @param {Panel} panel
 * @param {Row} row
 * @param {Period} [period]
 * @param {State} [st]
 */
function drill(panel, row, period, st = state) {
  /** @type {Record<string, string>} */
  const spec = {};
  for (const [k, v] of Object.entries(panel.drill || {})) spec[k] = substitute(v, row);
  if (spec.deal) return openDeal(spec.deal);
  /** @type {import("./client.js").Params} */
  const params = { ...filterParams(panel.query, st), ...monthsOf(period || {}), ...spec };
  for (const [k, v] of Object.entries(params)) if (v === "" || (Array.isArray(v) && !v.length)) delete params[k];
  openDeals(L(panel.title), params);
}

/**
 * The deals list in the drill dialog, 50 at a time.
 * @param {string} title
 * @param {import("./client.js").Params} params
 * @param {number} [offset]
 * @param {boolean} [more] add the rows to those shown
 */
async function openDeals(title, params, offset = 0, more = false) {
  const box = dialog("#drill");
  const body = $("#drill-body");
  $("#drill-title").textContent = `${tr("deals")}: ${title}`;
  if (!more) render(body, html`<p class="muted">${tr("loading")}</p>`);
  if (!box.open) box.showModal();
  try {
    const page = await apiGet("deals", { ...params, limit: 50, offset });
    /** @type {Row[]} */
    const rows = page.rows || [];
    const table = body.querySelector("tbody");
    const lines = rows.map((r) => html`<tr tabindex="0" class="clickable" data-deal="${r.deal_id}">${DEAL_FIELDS.map((f, i) => {
      const cls = f.format === "rub" ? "num" : "";
      const text = fmt(r[f.key], f.format, r);
      return i === 0 ? html`<th scope="row" class="${cls}">${text}</th>` : html`<td class="${cls}">${text}</td>`;
    })}</tr>`);
    if (more && table) {
      append(table, html`${lines}`);
    } else {
      render(body, html`${[
        html`<p class="drill-total" data-total="${page.total}" data-amount="${page.total_amount ?? ""}">${tr("total")}: ${fmt(page.total, "count")} · ${fmt(page.total_amount, "rub")}</p>`,
        html`<div class="table-wrap scroll"><table class="data"><caption class="sr-only">${title}</caption><thead><tr>${DEAL_FIELDS.map((f) => html`<th scope="col">${tr(f.label)}</th>`)}</tr></thead><tbody>${lines}</tbody></table></div>`,
        html`<button type="button" id="drill-more">${tr("more")}</button>`,
      ]}`);
    }
    body.querySelectorAll("tr[data-deal]:not([data-wired])").forEach((node) => {
      const row = /** @type {HTMLElement} */ (node);
      row.dataset.wired = "1";
      const open = () => openDeal(String(row.dataset.deal), () => openDeals(title, params));
      row.addEventListener("click", open);
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    });
    const button = /** @type {HTMLButtonElement} */ (body.querySelector("#drill-more"));
    const shown = body.querySelectorAll("tbody tr").length;
    button.hidden = shown >= page.total;
    button.onclick = () => openDeals(title, params, shown, true);
  } catch (e) {
    if (e instanceof AuthError) { box.close(); return showLogin(e.message); }
    render(body, errorHtml(/** @type {Error} */ (e)));
  }
}

/**
 * One deal's card in the drill dialog: facts, stage history, activities.
 * @param {string} id
 * @param {() => void} [back] returns to the list the deal was opened from
 */
async function openDeal(id, back) {
  const box = dialog("#drill");
  const body = $("#drill-body");
  $("#drill-title").textContent = tr("deal");
  render(body, html`<p class="muted">${tr("loading")}</p>`);
  if (!box.open) box.showModal();
  try {
    const card = await apiGet("deal-card", { deal: id });
    const d = card.deal;
    if (!d) {
      render(body, html`<p>${tr("dealNotFound")}</p>`);
      return;
    }
    $("#drill-title").textContent = `${tr("deal")}: ${d.title || d.deal_id}`;
    const facts = [
      ["client", d.client_name], ["manager", fmt(d.manager_id, "manager")], ["branch", fmt(d.branch_id, "branch")],
      ["stage", valueLabel(d.stage)], ["status", valueLabel(d.status)], ["amount", fmt(d.amount, "rub", d)],
      ["commission", fmt(d.commission, "rub", d)], ["created", fmt(d.created_at, "datetime", d)],
      ["closed", fmt(d.closed_at, "datetime", d)], ["lostReason", d.lost_reason || "—"],
    ].map(([k, v]) => html`<dt>${tr(k)}</dt><dd>${v ?? "—"}</dd>`);
    const stages = (card.stages || []).map((/** @type {Row} */ s) => html`<tr><th scope="row">${valueLabel(s.stage)}</th><td>${fmt(s.entered_at, "datetime", d)}</td><td>${fmt(s.left_at, "datetime", d)}</td><td class="num">${fmt(s.days_in_stage, "days")}</td></tr>`);
    const acts = (card.activities || []).map((/** @type {Row} */ a) => html`<tr><td>${fmt(a.at, "datetime", d)}</td><th scope="row">${valueLabel(a.activity_type)}</th><td>${fmt(a.manager_id, "manager")}</td><td>${a.result || ""}</td></tr>`);
    /** @param {string[]} keys */
    const head = (keys) => html`<thead><tr>${keys.map((k) => html`<th scope="col">${tr(k)}</th>`)}</tr></thead>`;
    render(body, html`${[
      back ? html`<button type="button" id="deal-back">← ${tr("deals")}</button>` : null,
      html`<dl class="facts" data-deal="${d.deal_id}">${facts}</dl>`,
      html`<h3>${tr("history")}</h3><table class="data">${head(["stage", "entered", "left", "days"])}<tbody>${stages}</tbody></table>`,
      html`<h3>${tr("activities")}</h3><div class="table-wrap scroll"><table class="data">${head(["when", "type", "manager", "result"])}<tbody>${acts}</tbody></table></div>`,
    ]}`);
    if (back) $("#deal-back").addEventListener("click", back);
  } catch (e) {
    if (e instanceof AuthError) { box.close(); return showLogin(e.message); }
    render(body, errorHtml(/** @type {Error} */ (e)));
  }
}

// ---------------------------------------------------------------------------------------------
// Login: shown when the API answers 401 (tokens configured); the token stays in localStorage.

/** @param {string} message */
function showLogin(message) {
  const box = dialog("#login");
  $("#login-title").textContent = tr("loginTitle");
  $("#login-message").textContent = message || "";
  $("#token-label").textContent = tr("tokenLabel");
  $("#login-hint").textContent = tr("loginHint");
  $("#login-submit").textContent = tr("login");
  render($("#content"), html`<p class="muted">${message || tr("needToken")}</p>`);
  document.documentElement.dataset.busy = "false";
  document.documentElement.dataset.rendered = String(++renderSeq);
  document.documentElement.dataset.login = "true";
  if (!box.open) box.showModal();
  field("#token").focus();
}

start();
