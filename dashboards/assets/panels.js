// Panel renderers, one per chart type of the definitions (dashboards/src/definition.rs): each
// builds the panel's request from the shared filters, fetches it and draws it, with a real
// <table> of the same rows behind every chart.
"use strict";

import {
  FILTERS, L, addMonths, apiGet, currentLang, dims, esc, fmt, monthsBetween, rub, tr, valueLabel,
} from "./api.js";
import { barChart, heatColour, lineChart, sparkline } from "./charts.js";

// ---------------------------------------------------------------------------------------------
// Requests

/** The months a query covers under `state`: {from, to} or {} for state-now panels. */
export function periodOf(query, state) {
  if (query.period === "none" || !state.to) return {};
  if (query.period === "trend") {
    let from = addMonths(state.to, -11);
    if (dims.months.length && from < dims.months[0]) from = dims.months[0];
    if (from > state.to) from = state.to;
    return { from, to: state.to };
  }
  return { from: state.from, to: state.to };
}

/** The period of the same length just before `period`. */
export function previousPeriod(period) {
  if (!period.from || !period.to) return null;
  const n = monthsBetween(period.from, period.to);
  return { from: addMonths(period.from, -n), to: addMonths(period.from, -1) };
}

/** The shared filters a query takes, from `state`. */
export function filterParams(query, state) {
  const out = {};
  for (const f of query.filters) if (state[f] && state[f].length) out[f] = state[f];
  return out;
}

/** Every parameter of a panel's request. */
export function paramsFor(query, state, period) {
  const p = { ...query.params };
  if (query.measures.length) {
    p.measures = query.measures;
    if (query.by.length) p.by = query.by;
  }
  Object.assign(p, period || periodOf(query, state), filterParams(query, state));
  return p;
}

function endpointOf(query) {
  return query.measures.length ? "metrics" : query.endpoint;
}

/** The rows of an answer: `rows`, or the part `field` names (an object counts as one row). */
export function rowsOf(answer, query) {
  const part = query.field ? answer && answer[query.field] : answer && answer.rows;
  if (Array.isArray(part)) return part;
  return part && typeof part === "object" ? [part] : [];
}

/** Fetches a panel's rows under `state` (and an explicit period, for comparisons). */
export async function fetchRows(panel, state, period) {
  const answer = await apiGet(endpointOf(panel.query), paramsFor(panel.query, state, period));
  let rows = rowsOf(answer, panel.query);
  if (panel.rollup === "week" && panel.x) rows = rollupWeeks(rows, panel.x, panel.fields);
  const floors = Object.entries(panel.at_least || {});
  if (floors.length) rows = rows.filter((r) => floors.every(([k, min]) => Number(r[k]) >= min));
  if (panel.top) rows = rows.slice(0, panel.top);
  return { answer, rows };
}

function mondayOf(day) {
  const [y, m, d] = day.slice(0, 10).split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d));
  t.setUTCDate(t.getUTCDate() - ((t.getUTCDay() + 6) % 7));
  return t.toISOString().slice(0, 10);
}

/** Sums count fields by ISO week of `x`. */
export function rollupWeeks(rows, x, fields) {
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

// ---------------------------------------------------------------------------------------------
// Shared pieces

function fieldLabel(f) {
  return L(f.label, f.key);
}

function num(v) {
  return v === null || v === undefined || v === "" ? null : Number(v);
}

/** A real table of `rows` by `fields`; rows are focusable buttons when `clickable`. */
export function dataTable(fields, rows, caption, clickable, extra) {
  const head = fields.map((f) => `<th scope="col" class="${isNumeric(f) ? "num" : ""}">${esc(fieldLabel(f))}</th>`).join("");
  const extraHead = extra ? `<th scope="col">${esc(extra.label)}</th>` : "";
  const body = rows.map((r, i) => {
    const attrs = clickable ? ` tabindex="0" class="clickable" data-row="${i}" title="${esc(tr("drillHint"))}"` : "";
    const cells = fields.map((f, fi) => {
      const text = esc(fmt(r[f.key], f.format, r));
      const tag = fi === 0 && !isNumeric(f) ? "th scope=\"row\"" : "td";
      return `<${tag} class="${isNumeric(f) ? "num" : ""}" data-key="${esc(f.key)}" data-value="${esc(r[f.key] ?? "")}">${text}</${tag.split(" ")[0]}>`;
    }).join("");
    return `<tr${attrs}>${cells}${extra ? `<td>${extra.cell(r)}</td>` : ""}</tr>`;
  }).join("");
  return `<table class="data"><caption class="sr-only">${esc(caption)}</caption><thead><tr>${head}${extraHead}</tr></thead><tbody>${body}</tbody></table>`;
}

function isNumeric(f) {
  return ["count", "rub", "ratio", "days", "hours", "number"].includes(f.format);
}

/** Wires click and Enter/Space on `[data-row]`/`[data-index]` elements of `el` to `handler(i)`. */
function onActivate(el, selector, handler) {
  el.querySelectorAll(selector).forEach((node) => {
    const i = Number(node.dataset.row ?? node.dataset.index);
    node.addEventListener("click", () => handler(i));
    node.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        handler(i);
      }
    });
  });
}

/** A chart with its data table behind a "show data" toggle. */
function withData(body, chartHtml, tableHtml, panelId) {
  const id = `data-${panelId}`;
  body.innerHTML = `${chartHtml}<button type="button" class="toggle" aria-expanded="false" aria-controls="${id}">${esc(tr("showData"))}</button>` +
    `<div id="${id}" class="table-wrap" hidden>${tableHtml}</div>`;
  const button = body.querySelector(".toggle");
  const wrap = body.querySelector(`#${CSS.escape(id)}`);
  button.addEventListener("click", () => {
    const open = wrap.hidden;
    wrap.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? tr("hideData") : tr("showData");
  });
}

function xLabel(v, key, short) {
  if (v === null || v === undefined) return "—";
  if (key === "month" || key === "cohort_month") return fmt(v, short ? "short_month" : "month");
  if (key === "day" || key === "local_date") return fmt(v, "date");
  if (key === "stage" || key === "state") return valueLabel(v);
  if (key === "holding" || key === "holding_id") return fmt(v, "holding");
  if (key === "branch" || key === "branch_id") return fmt(v, "branch");
  if (key === "manager" || key === "manager_id") return fmt(v, "manager");
  return String(v);
}

function stageRank(stage) {
  const s = dims.stages.find((x) => x.stage === stage);
  return s ? s.stage_order : 99;
}

/** What a click on a row does: drill to its deals, else set the panel's click filters. */
function rowAction(panel, actions, period) {
  if (panel.drill) return (row) => actions.drill(panel, row, period);
  if (Object.keys(panel.click_filter || {}).length) return (row) => actions.filterBy(panel.click_filter, row);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Renderers

async function kpi(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const field = panel.fields[0];
  const tasks = [fetchRows(panel, state, period)];
  const prev = panel.compare === "previous_period" ? previousPeriod(period) : null;
  tasks.push(prev ? fetchRows(panel, state, prev).catch(() => null) : Promise.resolve(null));
  tasks.push(panel.plan && period.from
    ? apiGet("metrics", {
      measures: "plan,plan_completion", metric: panel.plan, level: "manager", ...period,
      ...filterParams({ filters: FILTERS }, state),
    }).catch(() => null)
    : Promise.resolve(null));
  const [{ rows }, before, plan] = await Promise.all(tasks);
  const row = rows[0] || {};
  const raw = row[field.key];
  let html = `<div class="kpi-value" data-value="${esc(raw ?? "")}">${esc(fmt(raw, field.format, row))}</div>`;
  if (panel.fields[1]) {
    const f2 = panel.fields[1];
    html += `<div class="kpi-sub">${esc(tr("of"))} ${esc(fmt(row[f2.key], f2.format, row))}</div>`;
  }
  const old = before && before.rows[0] ? num(before.rows[0][field.key]) : null;
  const now = num(raw);
  if (prev) {
    if (old === null || now === null || (old === 0 && field.format !== "ratio")) {
      html += `<div class="kpi-delta">— ${esc(tr("vsPrev"))}</div>`;
    } else {
      const diff = now - old;
      const good = panel.better === "down" ? diff < 0 : diff > 0;
      const cls = diff === 0 ? "flat" : good ? "good" : "bad";
      const arrow = diff > 0 ? "▲" : diff < 0 ? "▼" : "■";
      const text = field.format === "ratio"
        ? `${diff > 0 ? "+" : ""}${fmt(diff * 100, "number")} ${currentLang() === "en" ? "pp" : "п.п."}`
        : `${diff > 0 ? "+" : ""}${fmt(diff / Math.abs(old), "ratio")}`;
      html += `<div class="kpi-delta ${cls}" data-previous="${esc(old)}"><span aria-hidden="true">${arrow}</span> ${esc(text)} ${esc(tr("vsPrev"))}</div>`;
    }
  }
  if (panel.plan) {
    const p = plan && plan.rows && plan.rows[0];
    html += p && p.plan !== null
      ? `<div class="kpi-plan" data-plan="${esc(p.plan)}">${esc(tr("plan"))} ${esc(fmt(p.plan, field.format === "rub" ? "rub" : "count"))} · ${esc(tr("planDone"))} ${esc(fmt(p.plan_completion, "ratio"))}` +
        `<span class="meter" aria-hidden="true"><span style="width:${Math.min(100, Math.round(100 * (p.plan_completion || 0)))}%"></span></span></div>`
      : `<div class="kpi-plan muted">${esc(tr("noPlan"))}</div>`;
  }
  body.innerHTML = html;
  if (panel.drill) {
    const value = body.querySelector(".kpi-value");
    value.classList.add("clickable");
    value.tabIndex = 0;
    value.setAttribute("role", "button");
    value.title = tr("drillHint");
    const open = () => actions.drill(panel, row, period);
    value.addEventListener("click", open);
    value.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
  }
}

async function series(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  let { rows } = await fetchRows(panel, state, period);
  if (panel.x === "stage") rows = [...rows].sort((a, b) => stageRank(a.stage) - stageRank(b.stage));
  if (!rows.length) return empty(body);
  const labels = rows.map((r) => xLabel(r[panel.x], panel.x, true));
  const ss = panel.fields.map((f) => ({ name: fieldLabel(f), format: f.format, values: rows.map((r) => num(r[f.key])) }));
  const action = rowAction(panel, actions, period);
  const title = L(panel.title);
  const chart = panel.chart === "line" ? lineChart(labels, ss, title, action) : barChart(labels, ss, title, action);
  const xf = { key: panel.x, label: { ru: "", en: "" }, format: "text" };
  const tableRows = rows.map((r) => ({ ...r, [panel.x]: xLabel(r[panel.x], panel.x) }));
  withData(body, chart, dataTable([xf, ...panel.fields], tableRows, title, !!action), panel.id);
  if (action) {
    onActivate(body, "svg [data-index]", (i) => action(rows[i]));
    onActivate(body, "tr[data-row]", (i) => action(rows[i]));
  }
}

async function table(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const { rows } = await fetchRows(panel, state, period);
  if (!rows.length) return empty(body);
  const action = rowAction(panel, actions, period);
  body.innerHTML = `<div class="table-wrap scroll">${dataTable(panel.fields, rows, L(panel.title), !!action)}</div>`;
  if (action) onActivate(body, "tr[data-row]", (i) => action(rows[i]));
}

async function heatmap(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const { rows } = await fetchRows(panel, state, period);
  if (!rows.length) return empty(body);
  const f = panel.fields[0];
  const xs = [...new Set(rows.map((r) => r[panel.x]))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // Rows in the order a reader looks for them: months in time order, names alphabetically.
  const yKey = (v) => (/month/.test(panel.y) ? String(v) : xLabel(v, panel.y));
  const ys = [...new Set(rows.map((r) => r[panel.y]))].sort((a, b) => yKey(a).localeCompare(yKey(b), currentLang()));
  const cell = new Map(rows.map((r) => [`${r[panel.y]}|${r[panel.x]}`, r]));
  const max = Math.max(1e-9, ...rows.map((r) => num(r[f.key]) || 0));
  const action = rowAction(panel, actions, period);
  const head = xs.map((x) => `<th scope="col">${esc(xLabel(x, panel.x, true))}</th>`).join("");
  const body_ = ys.map((y, yi) => {
    const cells = xs.map((x) => {
      const r = cell.get(`${y}|${x}`);
      if (!r) return "<td class=\"hm empty\"></td>";
      const v = num(r[f.key]);
      const c = heatColour((v || 0) / max);
      const tip = panel.fields.map((g) => `${fieldLabel(g)}: ${fmt(r[g.key], g.format, r)}`).join("; ");
      return `<td class="hm" style="background:${c.bg};color:${c.fg}" title="${esc(tip)}">${esc(fmt(v, f.format, r))}</td>`;
    }).join("");
    const attrs = action ? ` tabindex="0" class="clickable" data-row="${yi}"` : "";
    return `<tr${attrs}><th scope="row">${esc(xLabel(y, panel.y))}</th>${cells}</tr>`;
  }).join("");
  const grid = `<div class="table-wrap scroll"><table class="heatmap" aria-label="${esc(L(panel.title))}"><thead><tr><th></th>${head}</tr></thead><tbody>${body_}</tbody></table></div>`;
  const long = [{ key: panel.y, format: "text", label: null }, { key: panel.x, format: "text", label: null }, ...panel.fields];
  const tableRows = rows.map((r) => ({ ...r, [panel.y]: xLabel(r[panel.y], panel.y), [panel.x]: xLabel(r[panel.x], panel.x) }));
  withData(body, grid, dataTable(long, tableRows, L(panel.title), false), panel.id);
  if (action) onActivate(body, ".heatmap tr[data-row]", (i) => action({ [panel.y]: ys[i] }));
}

async function sparklineTable(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const { rows } = await fetchRows(panel, state, period);
  if (!rows.length) return empty(body);
  const [seriesKey, valueKey] = panel.spark.split(".");
  const action = rowAction(panel, actions, period);
  const groups = new Map();
  rows.forEach((r, i) => {
    const g = panel.group ? r[panel.group] : "";
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push([r, i]);
  });
  const head = panel.fields.map((f) => `<th scope="col" class="${isNumeric(f) ? "num" : ""}">${esc(fieldLabel(f))}</th>`).join("");
  let bodyHtml = "";
  for (const [g, members] of groups) {
    if (panel.group) {
      const sum = members.reduce((s, [r]) => s + (Number(r.won_amount) || 0), 0);
      bodyHtml += `<tr class="group"><th scope="rowgroup" colspan="${panel.fields.length + 1}">${esc(fmt(g, "holding"))} · ${esc(rub(sum))}</th></tr>`;
    }
    for (const [r, i] of members) {
      const cells = panel.fields.map((f) => `<td class="${isNumeric(f) ? "num" : ""}" data-key="${esc(f.key)}" data-value="${esc(r[f.key] ?? "")}">${esc(fmt(r[f.key], f.format, r))}</td>`).join("");
      const values = (r[seriesKey] || []).map((p) => p[valueKey]);
      const attrs = action ? ` tabindex="0" class="clickable" data-row="${i}" title="${esc(tr("drillHint"))}"` : "";
      bodyHtml += `<tr${attrs}>${cells}<td>${sparkline(values, fmt(r.branch_id, "branch"))}</td></tr>`;
    }
  }
  body.innerHTML = `<div class="table-wrap scroll tall"><table class="data"><caption class="sr-only">${esc(L(panel.title))}</caption>` +
    `<thead><tr>${head}<th scope="col">${esc(tr("months12"))} ${esc(fmt(state.to, "month"))}</th></tr></thead><tbody>${bodyHtml}</tbody></table></div>`;
  if (action) onActivate(body, "tr[data-row]", (i) => action(rows[i]));
}

function funnelHtml(rows, panel, heading) {
  const max = Math.max(1, ...rows.map((r) => Number(r.deals_reached) || 0));
  const items = rows.map((r, i) => {
    const w = Math.max(2, Math.round((100 * (Number(r.deals_reached) || 0)) / max));
    return `<li class="stage clickable" tabindex="0" role="button" data-index="${i}" data-stage="${esc(r.stage)}" title="${esc(tr("drillHint"))}">` +
      `<span class="stage-name">${esc(valueLabel(r.stage))}</span>` +
      `<span class="stage-bar"><span style="width:${w}%"></span></span>` +
      `<span class="stage-deals num" data-value="${esc(r.deals_reached)}">${esc(fmt(r.deals_reached, "count"))}</span>` +
      `<span class="stage-amount num">${esc(fmt(r.amount_reached, "rub"))}</span>` +
      `<span class="stage-conv num">${i ? esc(fmt(r.conversion_from_previous, "ratio")) : ""}</span>` +
      `<span class="stage-start num">${esc(fmt(r.conversion_from_start, "ratio"))}</span></li>`;
  }).join("");
  const legend = `<div class="funnel-head" aria-hidden="true"><span></span><span></span><span>${esc(fieldLabel(panel.fields[0]))}</span>` +
    `<span>${esc(fieldLabel(panel.fields[1]))}</span><span>${esc(fieldLabel(panel.fields[2]))}</span><span>${esc(fieldLabel(panel.fields[3]))}</span></div>`;
  return `<div class="funnel-col"><h3>${esc(heading)}</h3>${legend}<ol class="funnel" aria-label="${esc(heading)}">${items}</ol></div>`;
}

function selectionLabel(state, period) {
  const who = state.branch.length ? state.branch.map((b) => fmt(b, "branch")).join(", ")
    : state.holding.length ? state.holding.map((h) => fmt(h, "holding")).join(", ") : (currentLang() === "en" ? "All branches" : "Все филиалы");
  const when = period.from === period.to ? fmt(period.from, "month") : `${fmt(period.from, "month")} – ${fmt(period.to, "month")}`;
  return `${who}, ${when}`;
}

async function funnel(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  let other = null;
  if (panel.compare === "choice" && state.cmp) {
    if (state.cmp === "prev") {
      const prev = previousPeriod(period);
      if (prev) other = { state, period: prev, label: selectionLabel(state, prev) };
    } else if (state.cmp.startsWith("b:")) {
      const b = state.cmp.slice(2);
      const s2 = { ...state, branch: [b], manager: [] };
      other = { state: s2, period, label: selectionLabel(s2, period) };
    }
  }
  const [main, cmp] = await Promise.all([
    fetchRows(panel, state, period),
    other ? fetchRows(panel, other.state, other.period) : Promise.resolve(null),
  ]);
  let controls = "";
  if (panel.compare === "choice") {
    const options = [`<option value="">${esc(tr("none"))}</option>`, `<option value="prev">${esc(tr("prevPeriod"))}</option>`]
      .concat([...dims.branches.values()].map((b) => `<option value="b:${esc(b.branch_id)}">${esc(b.name)}</option>`));
    controls = `<label class="inline">${esc(tr("compare"))} <select class="compare">${options.join("")}</select></label>`;
  }
  const cols = [funnelHtml(main.rows, panel, selectionLabel(state, period))];
  if (cmp) cols.push(funnelHtml(cmp.rows, panel, other.label));
  const tableRows = main.rows.map((r) => ({ ...r, stage: valueLabel(r.stage) }));
  const stageField = { key: "stage", label: { ru: "Этап", en: "Stage" }, format: "text" };
  withData(body, `${controls}<div class="funnels">${cols.join("")}</div>`, dataTable([stageField, ...panel.fields], tableRows, L(panel.title), false), panel.id);
  const select = body.querySelector("select.compare");
  if (select) {
    select.value = state.cmp || "";
    select.addEventListener("change", () => actions.setState({ cmp: select.value }));
  }
  const cols_ = body.querySelectorAll(".funnel-col");
  onActivate(cols_[0], "[data-index]", (i) => actions.drill(panel, main.rows[i], period));
  if (cmp && cols_[1]) onActivate(cols_[1], "[data-index]", (i) => actions.drill(panel, cmp.rows[i], other.period, other.state));
}

async function kanban(panel, body, state, actions) {
  const filters = filterParams(panel.query, state);
  const [pipe, board] = await Promise.all([
    apiGet("pipeline", { ...filters, limit: 100 }),
    fetchRows(panel, state, {}),
  ]);
  const stages = pipe.rows || [];
  const cards = board.rows;
  const cols = stages.map((s) => {
    const mine = cards.filter((c) => c.stage === s.stage);
    const items = mine.map((c) => `<li><button type="button" class="deal-card${c.stalled ? " stalled" : ""}" data-deal="${esc(c.deal_id)}">` +
      `<span class="card-title">${esc(c.client_name || c.title || c.deal_id)}</span>` +
      `<span class="card-amount">${esc(fmt(c.amount, "rub"))}</span>` +
      `<span class="card-meta">${esc(fmt(c.manager_id, "manager"))} · ${esc(fmt(c.branch_id, "branch"))}</span>` +
      `<span class="card-meta">${esc(fmt(c.days_in_stage, "count"))} ${esc(tr("daysInStage"))}` +
      `${c.stalled ? ` · <strong class="badge">${esc(tr("stalled"))}</strong>` : ""}</span></button></li>`).join("");
    return `<section class="kanban-col" aria-label="${esc(valueLabel(s.stage))}">` +
      `<header><h3>${esc(valueLabel(s.stage))} <span class="count">${esc(fmt(s.open_deals, "count"))}</span></h3>` +
      `<div class="col-amount" data-value="${esc(s.open_amount)}">${esc(fmt(s.open_amount, "rub"))}</div>` +
      `<div class="col-weighted">${esc(tr("weighted"))} ${esc(fmt(s.weighted_amount, "rub"))}</div></header>` +
      `<ul>${items}</ul>` +
      `<button type="button" class="link" data-stage="${esc(s.stage)}">${esc(tr("allDeals"))} (${esc(fmt(s.open_deals, "count"))}) →</button></section>`;
  }).join("");
  const pf = [
    { key: "stage", label: { ru: "Этап", en: "Stage" }, format: "stage" },
    { key: "open_deals", label: { ru: "Сделок", en: "Deals" }, format: "count" },
    { key: "open_amount", label: { ru: "Сумма", en: "Amount" }, format: "rub" },
    { key: "weighted_amount", label: { ru: "Прогноз", en: "Forecast" }, format: "rub" },
    { key: "stage_win_rate", label: { ru: "Вероятность", en: "Win rate" }, format: "ratio" },
  ];
  withData(body, `<div class="kanban">${cols}</div>`, dataTable(pf, stages, L(panel.title), false), panel.id);
  body.querySelectorAll("button[data-deal]").forEach((b) => b.addEventListener("click", () => actions.openDeal(b.dataset.deal)));
  body.querySelectorAll("button[data-stage]").forEach((b) => b.addEventListener("click", () => actions.drill(panel, { stage: b.dataset.stage }, {})));
}

function empty(body) {
  body.innerHTML = `<p class="muted empty">${esc(tr("noData"))}</p>`;
}

const RENDERERS = {
  kpi, line: series, bar: series, table, heatmap, "sparkline-table": sparklineTable, funnel, kanban,
};

/** Draws `panel` into `body`. */
export function renderPanel(panel, body, state, actions) {
  const render = RENDERERS[panel.chart];
  if (!render) throw new Error(`unknown chart type ${panel.chart}`);
  return render(panel, body, state, actions);
}
