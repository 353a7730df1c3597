// The application shell: the menu of dashboards, the shared filter bar, the hash router
// (#/<dashboard>?from=..&to=..&holding=..&branch=..&manager=..), the drill-down dialog with the
// deals behind a number and a deal's card, the language switch and the token login.
"use strict";

import {
  AuthError, FILTERS, L, apiGet, clearCache, currentLang, dims, esc, fmt, hashOf, readHash, reportError,
  setDimensions, setLang, setToken, token, tr, valueLabel,
} from "./api.js";
import { filterParams, renderPanel } from "./panels.js";

const $ = (sel) => document.querySelector(sel);

let dashboards = [];
const definitions = new Map();
let state = readHash();
let renderSeq = 0;

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
    return fail(e);
  }
  window.addEventListener("hashchange", onHash);
  onHash();
}

function fail(e) {
  if (e instanceof AuthError) return showLogin(e.message);
  $("#content").innerHTML = `<p class="error" role="alert">${esc(tr("error"))}: ${esc(e.message)}</p>`;
  document.documentElement.dataset.rendered = String(++renderSeq);
}

/** Fills in what the URL leaves out (first dashboard, the latest month) and renders. */
function onHash() {
  state = { ...readHash(), lang: currentLang() };
  const latest = dims.months.length ? dims.months[dims.months.length - 1] : new Date().toISOString().slice(0, 7);
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
  if (focused && focused.startsWith("f-") && document.getElementById(focused)) document.getElementById(focused).focus();
  renderDashboard();
}

/** Changes the state; the URL carries it, so the view can be bookmarked and shared. */
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
    setToken($("#token").value.trim());
    $("#token").value = "";
    $("#login").close();
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
      fail(err);
    }
  });
  $("#drill-close").addEventListener("click", () => $("#drill").close());
}

function options(values, selected, allLabel) {
  return [`<option value="">${esc(allLabel)}</option>`]
    .concat(values.map(([v, label]) => `<option value="${esc(v)}"${selected === v ? " selected" : ""}>${esc(label)}</option>`))
    .join("");
}

function renderShell() {
  document.title = "dealhouse";
  $("#skip").textContent = tr("skip");
  $("#lang").textContent = currentLang() === "ru" ? "English" : "Русский";
  $("#lang").setAttribute("aria-label", `${tr("language")}: ${currentLang() === "ru" ? "English" : "Русский"}`);
  $("#logout").hidden = !token();
  $("#logout").textContent = tr("logout");
  $("#nav").setAttribute("aria-label", tr("menu"));
  $("#nav").innerHTML = dashboards.map((d) => {
    const current = d.id === state.dashboard ? ' aria-current="page"' : "";
    return `<a href="${esc(hashOf({ ...state, dashboard: d.id, cmp: "" }))}" data-dashboard="${esc(d.id)}"${current}>${esc(L(d.title, d.id))}</a>`;
  }).join("");

  const months = dims.months.map((m) => [m, fmt(m, "month")]);
  const one = (list) => (list.length === 1 ? list[0] : "");
  const branches = [...dims.branches.values()]
    .filter((b) => !state.holding.length || state.holding.includes(b.holding_id))
    .map((b) => [b.branch_id, b.name]);
  const managers = [...dims.managers.values()]
    .filter((m) => (!state.branch.length || state.branch.includes(m.branch_id))
      && (!state.holding.length || state.holding.includes(m.holding_id)))
    .map((m) => [m.manager_id, m.name]);
  $("#filters").innerHTML =
    `<fieldset class="period"><legend>${esc(tr("period"))}</legend>` +
    `<label>${esc(tr("from"))} <select id="f-from">${options(months, state.from, "—").replace(/^<option value="">—<\/option>/, "")}</select></label>` +
    `<label>${esc(tr("to"))} <select id="f-to">${options(months, state.to, "—").replace(/^<option value="">—<\/option>/, "")}</select></label></fieldset>` +
    `<label>${esc(tr("holding"))} <select id="f-holding">${options([...dims.holdings.values()].map((h) => [h.holding_id, h.name]), one(state.holding), tr("all"))}</select></label>` +
    `<label>${esc(tr("branch"))} <select id="f-branch">${options(branches, one(state.branch), tr("all"))}</select></label>` +
    `<label>${esc(tr("manager"))} <select id="f-manager">${options(managers, one(state.manager), tr("all"))}</select></label>` +
    `<button type="button" id="f-reset">${esc(tr("reset"))}</button>`;
  $("#f-from").addEventListener("change", (e) => {
    const from = e.target.value;
    setState({ from, to: state.to < from ? from : state.to });
  });
  $("#f-to").addEventListener("change", (e) => {
    const to = e.target.value;
    setState({ to, from: state.from > to ? to : state.from });
  });
  $("#f-holding").addEventListener("change", (e) => {
    const holding = e.target.value ? [e.target.value] : [];
    const keep = (b) => !holding.length || (dims.branches.get(b) && holding.includes(dims.branches.get(b).holding_id));
    const branch = state.branch.filter(keep);
    setState({ holding, branch, manager: state.manager.filter((m) => dims.managers.get(m) && keep(dims.managers.get(m).branch_id)) });
  });
  $("#f-branch").addEventListener("change", (e) => {
    const branch = e.target.value ? [e.target.value] : [];
    const manager = state.manager.filter((m) => !branch.length || (dims.managers.get(m) && branch.includes(dims.managers.get(m).branch_id)));
    setState({ branch, manager });
  });
  $("#f-manager").addEventListener("change", (e) => setState({ manager: e.target.value ? [e.target.value] : [] }));
  $("#f-reset").addEventListener("click", () => setState({ holding: [], branch: [], manager: [], cmp: "" }));
}

// ---------------------------------------------------------------------------------------------
// A dashboard

async function definition(id) {
  if (!definitions.has(id)) definitions.set(id, apiGet(`dashboards/${encodeURIComponent(id)}`));
  return definitions.get(id);
}

function visible(panel) {
  const one = state.manager.length === 1;
  return panel.show === "always" || (panel.show === "one_manager" ? one : !one);
}

const FILTER_NAMES = { holding: "holding", branch: "branch", manager: "manager" };

function ignoredFilters(panel) {
  return FILTERS.filter((f) => state[f].length && !panel.query.filters.includes(f)).map((f) => tr(FILTER_NAMES[f]).toLowerCase());
}

function periodNote(panel) {
  if (panel.query.period === "none") return tr("current");
  if (panel.query.period === "trend") return `${tr("months12")} ${fmt(state.to, "month")}`;
  return state.from === state.to ? fmt(state.from, "month") : `${fmt(state.from, "month")} – ${fmt(state.to, "month")}`;
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
    if (seq === renderSeq) fail(e);
    return;
  }
  if (seq !== renderSeq) return;
  const panels = def.panels.filter(visible);
  const managerPage = state.manager.length === 1 && def.panels.some((p) => p.show === "one_manager");
  const heading = managerPage ? `${L(def.title)}: ${fmt(state.manager[0], "manager")}` : L(def.title);
  content.innerHTML = `<h1 id="page-title">${esc(heading)}</h1><p class="description">${esc(L(def.description))}</p>` +
    `<div class="grid">${panels.map((p) => {
      const ignored = ignoredFilters(p);
      const note = [L(p.note), ignored.length ? `${tr("notFiltered")}: ${ignored.join(", ")}.` : ""].filter(Boolean).join(" ");
      return `<section class="panel w${p.width} chart-${p.chart}" id="panel-${esc(p.id)}" data-panel="${esc(p.id)}" data-state="loading" aria-labelledby="h-${esc(p.id)}">` +
        `<header><h2 id="h-${esc(p.id)}">${esc(L(p.title))}</h2><span class="period-note">${esc(periodNote(p))}</span></header>` +
        `<div class="body" aria-live="polite"><p class="muted">${esc(tr("loading"))}</p></div>` +
        (note ? `<p class="note">${esc(note)}</p>` : "") + "</section>";
    }).join("")}</div>`;
  const actions = { drill, openDeal, setState, filterBy };
  const results = await Promise.allSettled(panels.map(async (p) => {
    const section = content.querySelector(`#panel-${CSS.escape(p.id)}`);
    const body = section.querySelector(".body");
    try {
      await renderPanel(p, body, state, actions);
      section.dataset.state = "ready";
    } catch (e) {
      section.dataset.state = "error";
      if (e instanceof AuthError) throw e;
      if (!e || !e.reported) reportError("render", `${p.id}: ${e && e.stack ? e.stack : e}`);
      body.innerHTML = `<p class="error" role="alert">${esc(tr("error"))}: ${esc(e.message)}</p>`;
    }
  }));
  if (seq !== renderSeq) return;
  const auth = results.find((r) => r.status === "rejected" && r.reason instanceof AuthError);
  if (auth) showLogin(auth.reason.message);
  document.documentElement.dataset.busy = "false";
  document.documentElement.dataset.rendered = String(seq);
}

function filterBy(map, row) {
  const patch = {};
  for (const [filter, key] of Object.entries(map)) {
    const v = row[key];
    if (v !== null && v !== undefined && v !== "") patch[filter] = [String(v)];
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

function substitute(template, row) {
  return String(template).replace(/\{(\w+)\}/g, (_, k) => (row && row[k] !== undefined && row[k] !== null ? String(row[k]) : ""));
}

/** Opens the deals behind `row` of `panel`: its drill parameters, the period it shows, the filters. */
function drill(panel, row, period, st = state) {
  const spec = {};
  for (const [k, v] of Object.entries(panel.drill || {})) spec[k] = substitute(v, row);
  if (spec.deal) return openDeal(spec.deal);
  const params = { ...filterParams(panel.query, st), ...(period || {}), ...spec };
  for (const [k, v] of Object.entries(params)) if (v === "" || (Array.isArray(v) && !v.length)) delete params[k];
  openDeals(L(panel.title), params);
}

async function openDeals(title, params, offset = 0, append = false) {
  const dialog = $("#drill");
  const body = $("#drill-body");
  $("#drill-title").textContent = `${tr("deals")}: ${title}`;
  if (!append) body.innerHTML = `<p class="muted">${esc(tr("loading"))}</p>`;
  if (!dialog.open) dialog.showModal();
  try {
    const page = await apiGet("deals", { ...params, limit: 50, offset });
    const rows = page.rows || [];
    const table = body.querySelector("tbody");
    const html = rows.map((r) => `<tr tabindex="0" class="clickable" data-deal="${esc(r.deal_id)}">${DEAL_FIELDS.map((f, i) => {
      const tag = i === 0 ? "th scope=\"row\"" : "td";
      return `<${tag} class="${["rub"].includes(f.format) ? "num" : ""}">${esc(fmt(r[f.key], f.format, r))}</${tag.split(" ")[0]}>`;
    }).join("")}</tr>`).join("");
    if (append && table) {
      table.insertAdjacentHTML("beforeend", html);
    } else {
      body.innerHTML = `<p class="drill-total" data-total="${esc(page.total)}" data-amount="${esc(page.total_amount ?? "")}">${esc(tr("total"))}: ${esc(fmt(page.total, "count"))} · ${esc(fmt(page.total_amount, "rub"))}</p>` +
        `<div class="table-wrap scroll"><table class="data"><caption class="sr-only">${esc(title)}</caption><thead><tr>${DEAL_FIELDS.map((f) => `<th scope="col">${esc(tr(f.label))}</th>`).join("")}</tr></thead><tbody>${html}</tbody></table></div>` +
        `<button type="button" id="drill-more">${esc(tr("more"))}</button>`;
    }
    body.querySelectorAll("tr[data-deal]:not([data-wired])").forEach((tr_) => {
      tr_.dataset.wired = "1";
      const open = () => openDeal(tr_.dataset.deal, () => openDeals(title, params));
      tr_.addEventListener("click", open);
      tr_.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    });
    const more = body.querySelector("#drill-more");
    const shown = body.querySelectorAll("tbody tr").length;
    more.hidden = shown >= page.total;
    more.onclick = () => openDeals(title, params, shown, true);
  } catch (e) {
    if (e instanceof AuthError) { dialog.close(); return showLogin(e.message); }
    body.innerHTML = `<p class="error" role="alert">${esc(tr("error"))}: ${esc(e.message)}</p>`;
  }
}

async function openDeal(id, back) {
  const dialog = $("#drill");
  const body = $("#drill-body");
  $("#drill-title").textContent = tr("deal");
  body.innerHTML = `<p class="muted">${esc(tr("loading"))}</p>`;
  if (!dialog.open) dialog.showModal();
  try {
    const card = await apiGet("deal-card", { deal: id });
    const d = card.deal;
    if (!d) {
      body.innerHTML = `<p>${esc(tr("dealNotFound"))}</p>`;
      return;
    }
    $("#drill-title").textContent = `${tr("deal")}: ${d.title || d.deal_id}`;
    const facts = [
      ["client", d.client_name], ["manager", fmt(d.manager_id, "manager")], ["branch", fmt(d.branch_id, "branch")],
      ["stage", valueLabel(d.stage)], ["status", valueLabel(d.status)], ["amount", fmt(d.amount, "rub", d)],
      ["commission", fmt(d.commission, "rub", d)], ["created", fmt(d.created_at, "datetime", d)],
      ["closed", fmt(d.closed_at, "datetime", d)], ["lostReason", d.lost_reason || "—"],
    ].map(([k, v]) => `<dt>${esc(tr(k))}</dt><dd>${esc(v ?? "—")}</dd>`).join("");
    const stages = (card.stages || []).map((s) => `<tr><th scope="row">${esc(valueLabel(s.stage))}</th><td>${esc(fmt(s.entered_at, "datetime", d))}</td><td>${esc(fmt(s.left_at, "datetime", d))}</td><td class="num">${esc(fmt(s.days_in_stage, "days"))}</td></tr>`).join("");
    const acts = (card.activities || []).map((a) => `<tr><td>${esc(fmt(a.at, "datetime", d))}</td><th scope="row">${esc(valueLabel(a.activity_type))}</th><td>${esc(fmt(a.manager_id, "manager"))}</td><td>${esc(a.result || "")}</td></tr>`).join("");
    body.innerHTML = (back ? `<button type="button" id="deal-back">← ${esc(tr("deals"))}</button>` : "") +
      `<dl class="facts" data-deal="${esc(d.deal_id)}">${facts}</dl>` +
      `<h3>${esc(tr("history"))}</h3><table class="data"><thead><tr><th scope="col">${esc(tr("stage"))}</th><th scope="col">${esc(tr("entered"))}</th><th scope="col">${esc(tr("left"))}</th><th scope="col">${esc(tr("days"))}</th></tr></thead><tbody>${stages}</tbody></table>` +
      `<h3>${esc(tr("activities"))}</h3><div class="table-wrap scroll"><table class="data"><thead><tr><th scope="col">${esc(tr("when"))}</th><th scope="col">${esc(tr("type"))}</th><th scope="col">${esc(tr("manager"))}</th><th scope="col">${esc(tr("result"))}</th></tr></thead><tbody>${acts}</tbody></table></div>`;
    if (back) body.querySelector("#deal-back").addEventListener("click", back);
  } catch (e) {
    if (e instanceof AuthError) { dialog.close(); return showLogin(e.message); }
    body.innerHTML = `<p class="error" role="alert">${esc(tr("error"))}: ${esc(e.message)}</p>`;
  }
}

// ---------------------------------------------------------------------------------------------
// Login: shown when the API answers 401 (tokens configured); the token stays in localStorage.

function showLogin(message) {
  const dialog = $("#login");
  $("#login-title").textContent = tr("loginTitle");
  $("#login-message").textContent = message || "";
  $("#token-label").textContent = tr("tokenLabel");
  $("#login-hint").textContent = tr("loginHint");
  $("#login-submit").textContent = tr("login");
  $("#content").innerHTML = `<p class="muted">${esc(message || tr("needToken"))}</p>`;
  document.documentElement.dataset.busy = "false";
  document.documentElement.dataset.rendered = String(++renderSeq);
  document.documentElement.dataset.login = "true";
  if (!dialog.open) dialog.showModal();
  $("#token").focus();
}

start();
