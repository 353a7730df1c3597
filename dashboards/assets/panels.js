// @ts-check
// Panel renderers, one per chart type of the definitions (dashboards/src/definition.rs): each
// fetches the panel's rows (requests.js) and draws them, with a real <table> of the same rows
// behind every chart.
"use strict";

import { apiGet } from "./client.js";
import { barChart, heatColour, lineChart, sparkline } from "./charts.js";
import { dims } from "./dimensions.js";
import { fmt, rub } from "./format.js";
import { html, render } from "./html.js";
import { L, currentLang, tr, valueLabel } from "./i18n.js";
import { fetchRows, filterParams, monthsOf, periodOf, previousPeriod } from "./requests.js";
import { PLACE_FILTERS } from "./state.js";

/**
 * @typedef {import("./html.js").Html} Html
 * @typedef {import("./state.js").State} State
 * @typedef {import("./requests.js").Panel} Panel
 * @typedef {import("./requests.js").Field} Field
 * @typedef {import("./requests.js").Row} Row
 * @typedef {import("./requests.js").Period} Period
 * @typedef {object} Actions what a click in a panel does (app.js provides them)
 * @property {(panel: Panel, row: Row, period?: Period, state?: State) => void} drill
 * @property {(id: string) => void} openDeal
 * @property {(patch: Partial<State>) => void} setState
 * @property {(map: Record<string, string>, row: Row) => void} filterBy
 * @typedef {(panel: Panel, body: HTMLElement, state: State, actions: Actions) => Promise<void>} Renderer
 */

// ---------------------------------------------------------------------------------------------
// Shared pieces

/**
 * A field's label; `{key}` in it is the value of `key` in `row` (a window's days).
 * @param {Field} f
 * @param {Row} [row]
 */
function fieldLabel(f, row) {
  const label = L(f.label, f.key);
  return row ? label.replace(/\{(\w+)\}/g, (_, k) => (row[k] === null || row[k] === undefined ? "" : String(row[k]))) : label;
}

/**
 * Why `key` of `row` is null, when the API says (`<measure>_null_reason` from /metrics, the
 * churn endpoint's `rates_null_reason`); else null.
 * @param {Row} row
 * @param {string} key
 * @returns {string | null}
 */
function nullReason(row, key) {
  if (row[key] !== null && row[key] !== undefined) return null;
  return row[`${key}_null_reason`] || (/_rate$/.test(key) ? row.rates_null_reason : null) || null;
}

/**
 * A null reason in a few words: "not enough history", "immature cohort", else as the API says.
 * @param {string} reason
 */
function reasonText(reason) {
  const history = /^not enough history: (\d+) of (\d+) months/.exec(reason);
  if (history) return `${tr("noHistory")}: ${history[1]} ${tr("of")} ${history[2]} ${tr("monthsShort")}`;
  if (reason.startsWith("immature cohort")) return tr("immature");
  return reason;
}

/**
 * The note on an immature cohort's figure: how much of it is still open.
 * @param {Row} row
 */
function immatureNote(row) {
  const open = row.cohort_open_share;
  return open === null || open === undefined ? tr("immature") : `${tr("immature")}: ${fmt(open, "ratio")} ${tr("stillOpen")}`;
}

/** @param {unknown} v */
function num(v) {
  return v === null || v === undefined || v === "" ? null : Number(v);
}

/** @param {Field} f */
function isNumeric(f) {
  return ["count", "rub", "ratio", "days", "hours", "number"].includes(f.format);
}

/** @param {Field} f the class of its cells */
function numClass(f) {
  return isNumeric(f) ? "num" : "";
}

/**
 * A real table of `rows` by `fields`; rows are focusable buttons when `clickable`.
 * @param {Field[]} fields
 * @param {Row[]} rows
 * @param {string} caption
 * @param {boolean} clickable
 */
export function dataTable(fields, rows, caption, clickable) {
  const head = fields.map((f) => html`<th scope="col" class="${numClass(f)}">${fieldLabel(f, rows[0])}</th>`);
  const body = rows.map((r, i) => {
    const attrs = clickable ? html` tabindex="0" class="clickable" data-row="${i}" title="${tr("drillHint")}"` : null;
    const cells = fields.map((f, fi) => {
      const reason = nullReason(r, f.key);
      if (reason) {
        return html`<td class="${numClass(f)} muted" data-key="${f.key}" data-value="" data-null-reason="${reason}" title="${reason}">${reasonText(reason)}</td>`;
      }
      const text = fmt(r[f.key], f.format, r);
      const value = r[f.key] ?? "";
      return fi === 0 && !isNumeric(f)
        ? html`<th scope="row" class="${numClass(f)}" data-key="${f.key}" data-value="${value}">${text}</th>`
        : html`<td class="${numClass(f)}" data-key="${f.key}" data-value="${value}">${text}</td>`;
    });
    return html`<tr${attrs}>${cells}</tr>`;
  });
  return html`<table class="data"><caption class="sr-only">${caption}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/**
 * Wires click and Enter/Space on `[data-row]`/`[data-index]` elements of `el` to `handler(i)`.
 * @param {ParentNode} el
 * @param {string} selector
 * @param {(i: number) => void} handler
 */
function onActivate(el, selector, handler) {
  el.querySelectorAll(selector).forEach((node) => {
    const data = /** @type {HTMLElement} */ (node).dataset;
    const i = Number(data.row ?? data.index);
    node.addEventListener("click", () => handler(i));
    node.addEventListener("keydown", (e) => {
      const key = /** @type {KeyboardEvent} */ (e).key;
      if (key === "Enter" || key === " ") {
        e.preventDefault();
        handler(i);
      }
    });
  });
}

/**
 * A chart with its data table behind a "show data" toggle.
 * @param {HTMLElement} body
 * @param {Html} chart
 * @param {Html} table
 * @param {string} panelId
 */
function withData(body, chart, table, panelId) {
  const id = `data-${panelId}`;
  render(body, html`${chart}<button type="button" class="toggle" aria-expanded="false" aria-controls="${id}">${tr("showData")}</button><div id="${id}" class="table-wrap" hidden>${table}</div>`);
  const button = /** @type {HTMLButtonElement} */ (body.querySelector(".toggle"));
  const wrap = /** @type {HTMLElement} */ (body.querySelector(`#${CSS.escape(id)}`));
  button.addEventListener("click", () => {
    const open = wrap.hidden;
    wrap.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? tr("hideData") : tr("showData");
  });
}

/**
 * An axis or row label for the value `v` of `key`.
 * @param {any} v
 * @param {string | null | undefined} key
 * @param {boolean} [short] months as "окт. 25"
 */
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

/** @param {string} stage */
function stageRank(stage) {
  const s = dims.stages.find((x) => x.stage === stage);
  return s ? s.stage_order : 99;
}

/**
 * What a click on a row does: drill to its deals, else set the panel's click filters.
 * @param {Panel} panel
 * @param {Actions} actions
 * @param {Period} period
 * @returns {((row: Row) => void) | null}
 */
function rowAction(panel, actions, period) {
  if (panel.drill) return (row) => actions.drill(panel, row, period);
  if (Object.keys(panel.click_filter || {}).length) return (row) => actions.filterBy(panel.click_filter, row);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Renderers

/** @type {Renderer} */
async function kpi(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const field = panel.fields[0];
  const prev = panel.compare === "previous_period" ? previousPeriod(period, state.vs) : null;
  const [{ answer, rows }, before, plan] = await Promise.all([
    fetchRows(panel, state, period),
    prev ? fetchRows(panel, state, prev).catch(() => null) : Promise.resolve(null),
    panel.plan && period.from
      ? apiGet("metrics", {
        measures: "plan,plan_completion", metric: panel.plan, level: "manager", ...monthsOf(period),
        ...filterParams({ filters: PLACE_FILTERS }, state),
      }).catch(() => null)
      : Promise.resolve(null),
  ]);
  const row = rows[0] || {};
  const raw = row[field.key];
  const reason = nullReason(row, field.key);
  /** @type {Html[]} */
  const parts = [reason
    ? html`<div class="kpi-value muted" data-value="" data-null-reason="${reason}" title="${reason}">${reasonText(reason)}</div>`
    : html`<div class="kpi-value" data-value="${raw ?? ""}">${fmt(raw, field.format, row)}</div>`];
  if (field.mature && row[field.mature] === false) {
    parts.push(html`<div class="kpi-note immature" data-immature="true">${immatureNote(row)}</div>`);
  }
  if (panel.fields[1]) {
    const f2 = panel.fields[1];
    parts.push(html`<div class="kpi-sub">${tr("of")} ${fmt(row[f2.key], f2.format, row)}</div>`);
  }
  const old = before && before.rows[0] ? num(before.rows[0][field.key]) : null;
  const now = num(raw);
  // A period to date is compared with the same days of the other one; a measure the API could
  // not cut by day (monthly client figures, cohorts) is not compared at all.
  const notCut = !!period.through && Array.isArray(answer && answer.not_cut) && answer.not_cut.includes(field.key);
  const vsLabel = state.vs === "year" ? tr("vsYear") : period.through ? tr("vsSameDays") : tr("vsPrev");
  if (prev && notCut) {
    parts.push(html`<div class="kpi-delta partial" data-partial="true">— ${tr("partial")}</div>`);
  } else if (prev) {
    if (old === null || now === null || (old === 0 && field.format !== "ratio")) {
      parts.push(html`<div class="kpi-delta">— ${vsLabel}</div>`);
    } else {
      const diff = now - old;
      const good = panel.better === "down" ? diff < 0 : diff > 0;
      const cls = diff === 0 ? "flat" : good ? "good" : "bad";
      const arrow = diff > 0 ? "▲" : diff < 0 ? "▼" : "■";
      const text = field.format === "ratio"
        ? `${diff > 0 ? "+" : ""}${fmt(diff * 100, "number")} ${currentLang() === "en" ? "pp" : "п.п."}`
        : `${diff > 0 ? "+" : ""}${fmt(diff / Math.abs(old), "ratio")}`;
      parts.push(html`<div class="kpi-delta ${cls}" data-previous="${old}"><span aria-hidden="true">${arrow}</span> ${text} ${vsLabel}</div>`);
    }
  }
  if (panel.plan) {
    const p = plan && plan.rows && plan.rows[0];
    const done = Math.min(100, Math.round(100 * ((p && p.plan_completion) || 0)));
    parts.push(p && p.plan !== null
      ? html`<div class="kpi-plan" data-plan="${p.plan}">${tr("plan")} ${fmt(p.plan, field.format === "rub" ? "rub" : "count")} · ${tr("planDone")} ${fmt(p.plan_completion, "ratio")}<span class="meter" aria-hidden="true"><span style="width:${done}%"></span></span></div>`
      : html`<div class="kpi-plan muted">${tr("noPlan")}</div>`);
  }
  render(body, html`${parts}`);
  if (panel.drill) {
    const value = /** @type {HTMLElement} */ (body.querySelector(".kpi-value"));
    value.classList.add("clickable");
    value.tabIndex = 0;
    value.setAttribute("role", "button");
    value.title = tr("drillHint");
    const open = () => actions.drill(panel, row, period);
    value.addEventListener("click", open);
    value.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
  }
}

/** @type {Renderer} line and bar */
async function series(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const x = String(panel.x);
  let { rows } = await fetchRows(panel, state, period);
  if (x === "stage") rows = [...rows].sort((a, b) => stageRank(a.stage) - stageRank(b.stage));
  if (!rows.length) return empty(body);
  const labels = rows.map((r) => xLabel(r[x], x, true));
  const ss = panel.fields.map((f) => ({
    name: fieldLabel(f, rows[0]),
    format: f.format,
    values: rows.map((r) => num(r[f.key])),
    // Points of immature cohorts are drawn hollow, with a note in their tooltip.
    notes: rows.map((r) => (f.mature && r[f.mature] === false ? immatureNote(r) : null)),
  }));
  const action = rowAction(panel, actions, period);
  const title = L(panel.title);
  // Nothing to draw because no month has a base (rates before the history covers the look-back):
  // say so rather than show empty axes.
  const reasons = rows.flatMap((r) => panel.fields.map((f) => nullReason(r, f.key))).filter((r) => r !== null);
  const last = reasons.length ? String(reasons[reasons.length - 1]) : null;
  const blank = ss.every((one) => one.values.every((v) => v === null));
  const chart = blank && last
    ? html`<p class="no-history" data-null-reason="${last}" title="${last}">${reasonText(last)}</p>`
    : panel.chart === "line" ? lineChart(labels, ss, title, action) : barChart(labels, ss, title, action);
  const xf = { key: x, label: { ru: "", en: "" }, format: "text" };
  const tableRows = rows.map((r) => ({ ...r, [x]: xLabel(r[x], x) }));
  withData(body, chart, dataTable([xf, ...panel.fields], tableRows, title, !!action), panel.id);
  if (action) {
    onActivate(body, "svg [data-index]", (i) => action(rows[i]));
    onActivate(body, "tr[data-row]", (i) => action(rows[i]));
  }
}

/** @type {Renderer} */
async function table(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const { rows } = await fetchRows(panel, state, period);
  if (!rows.length) return empty(body);
  const action = rowAction(panel, actions, period);
  render(body, html`<div class="table-wrap scroll">${dataTable(panel.fields, rows, L(panel.title), !!action)}</div>`);
  if (action) onActivate(body, "tr[data-row]", (i) => action(rows[i]));
}

/** @type {Renderer} */
async function heatmap(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const { rows } = await fetchRows(panel, state, period);
  if (!rows.length) return empty(body);
  const f = panel.fields[0];
  const px = String(panel.x);
  const py = String(panel.y);
  const xs = [...new Set(rows.map((r) => r[px]))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  // Rows in the order a reader looks for them: months in time order, names alphabetically.
  /** @param {any} v */
  const yKey = (v) => (/month/.test(py) ? String(v) : xLabel(v, py));
  const ys = [...new Set(rows.map((r) => r[py]))].sort((a, b) => yKey(a).localeCompare(yKey(b), currentLang()));
  const cell = new Map(rows.map((r) => [`${r[py]}|${r[px]}`, r]));
  const max = Math.max(1e-9, ...rows.map((r) => num(r[f.key]) || 0));
  const action = rowAction(panel, actions, period);
  const head = xs.map((x) => html`<th scope="col">${xLabel(x, px, true)}</th>`);
  const lines = ys.map((y, yi) => {
    const cells = xs.map((x) => {
      const r = cell.get(`${y}|${x}`);
      if (!r) return html`<td class="hm empty"></td>`;
      const v = num(r[f.key]);
      const c = heatColour((v || 0) / max);
      const tip = panel.fields.map((g) => `${fieldLabel(g)}: ${fmt(r[g.key], g.format, r)}`).join("; ");
      return html`<td class="hm" style="background:${c.bg};color:${c.fg}" title="${tip}">${fmt(v, f.format, r)}</td>`;
    });
    const attrs = action ? html` tabindex="0" class="clickable" data-row="${yi}"` : null;
    return html`<tr${attrs}><th scope="row">${xLabel(y, py)}</th>${cells}</tr>`;
  });
  const grid = html`<div class="table-wrap scroll"><table class="heatmap" aria-label="${L(panel.title)}"><thead><tr><th></th>${head}</tr></thead><tbody>${lines}</tbody></table></div>`;
  const long = [{ key: py, format: "text", label: null }, { key: px, format: "text", label: null }, ...panel.fields];
  const tableRows = rows.map((r) => ({ ...r, [py]: xLabel(r[py], py), [px]: xLabel(r[px], px) }));
  withData(body, grid, dataTable(long, tableRows, L(panel.title), false), panel.id);
  if (action) onActivate(body, ".heatmap tr[data-row]", (i) => action({ [py]: ys[i] }));
}

/** @type {Renderer} */
async function sparklineTable(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  const { rows } = await fetchRows(panel, state, period);
  if (!rows.length) return empty(body);
  const [seriesKey, valueKey] = String(panel.spark).split(".");
  const action = rowAction(panel, actions, period);
  /** @type {Map<any, [Row, number][]>} */
  const groups = new Map();
  rows.forEach((r, i) => {
    const g = panel.group ? r[panel.group] : "";
    let members = groups.get(g);
    if (!members) groups.set(g, (members = []));
    members.push([r, i]);
  });
  const head = panel.fields.map((f) => html`<th scope="col" class="${numClass(f)}">${fieldLabel(f)}</th>`);
  /** @type {Html[]} */
  const lines = [];
  for (const [g, members] of groups) {
    if (panel.group) {
      const sum = members.reduce((s, [r]) => s + (Number(r.won_amount) || 0), 0);
      lines.push(html`<tr class="group"><th scope="rowgroup" colspan="${panel.fields.length + 1}">${fmt(g, "holding")} · ${rub(sum)}</th></tr>`);
    }
    for (const [r, i] of members) {
      const cells = panel.fields.map((f) => html`<td class="${numClass(f)}" data-key="${f.key}" data-value="${r[f.key] ?? ""}">${fmt(r[f.key], f.format, r)}</td>`);
      const values = (r[seriesKey] || []).map((/** @type {Row} */ p) => p[valueKey]);
      const attrs = action ? html` tabindex="0" class="clickable" data-row="${i}" title="${tr("drillHint")}"` : null;
      lines.push(html`<tr${attrs}>${cells}<td>${sparkline(values, fmt(r.branch_id, "branch"))}</td></tr>`);
    }
  }
  render(body, html`<div class="table-wrap scroll tall"><table class="data"><caption class="sr-only">${L(panel.title)}</caption><thead><tr>${head}<th scope="col">${tr("months12")} ${fmt(state.to, "month")}</th></tr></thead><tbody>${lines}</tbody></table></div>`);
  if (action) onActivate(body, "tr[data-row]", (i) => action(rows[i]));
}

/**
 * One funnel: a bar per stage with deals, money and conversions.
 * @param {Row[]} rows
 * @param {Panel} panel
 * @param {string} heading
 */
function funnelHtml(rows, panel, heading) {
  const max = Math.max(1, ...rows.map((r) => Number(r.deals_reached) || 0));
  const items = rows.map((r, i) => {
    const w = Math.max(2, Math.round((100 * (Number(r.deals_reached) || 0)) / max));
    return html`<li class="stage clickable" tabindex="0" role="button" data-index="${i}" data-stage="${r.stage}" title="${tr("drillHint")}">${[
      html`<span class="stage-name">${valueLabel(r.stage)}</span>`,
      html`<span class="stage-bar"><span style="width:${w}%"></span></span>`,
      html`<span class="stage-deals num" data-value="${r.deals_reached}">${fmt(r.deals_reached, "count")}</span>`,
      html`<span class="stage-amount num">${fmt(r.amount_reached, "rub")}</span>`,
      html`<span class="stage-conv num">${i ? fmt(r.conversion_from_previous, "ratio") : ""}</span>`,
      html`<span class="stage-start num">${fmt(r.conversion_from_start, "ratio")}</span>`,
    ]}</li>`;
  });
  const legend = html`<div class="funnel-head" aria-hidden="true"><span></span><span></span>${panel.fields.slice(0, 4).map((f) => html`<span>${fieldLabel(f)}</span>`)}</div>`;
  return html`<div class="funnel-col"><h3>${heading}</h3>${legend}<ol class="funnel" aria-label="${heading}">${items}</ol></div>`;
}

/**
 * "Санкт-Петербург, март 2026": whose figures and which months.
 * @param {State} state
 * @param {Period} period
 */
function selectionLabel(state, period) {
  const who = state.branch.length ? state.branch.map((b) => fmt(b, "branch")).join(", ")
    : state.holding.length ? state.holding.map((h) => fmt(h, "holding")).join(", ") : (currentLang() === "en" ? "All branches" : "Все филиалы");
  const when = period.from === period.to ? fmt(period.from, "month") : `${fmt(period.from, "month")} – ${fmt(period.to, "month")}`;
  return `${who}, ${when}`;
}

/** @type {Renderer} */
async function funnel(panel, body, state, actions) {
  const period = periodOf(panel.query, state);
  /** @type {{ state: State, period: Period, label: string } | null} */
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
  let controls = null;
  if (panel.compare === "choice") {
    const options = [
      html`<option value="">${tr("none")}</option>`,
      html`<option value="prev">${tr("prevPeriod")}</option>`,
      ...[...dims.branches.values()].map((b) => html`<option value="b:${b.branch_id}">${b.name}</option>`),
    ];
    controls = html`<label class="inline">${tr("compare")} <select class="compare">${options}</select></label>`;
  }
  const cols = [funnelHtml(main.rows, panel, selectionLabel(state, period))];
  if (cmp && other) cols.push(funnelHtml(cmp.rows, panel, other.label));
  const tableRows = main.rows.map((r) => ({ ...r, stage: valueLabel(r.stage) }));
  const stageField = { key: "stage", label: { ru: "Этап", en: "Stage" }, format: "text" };
  withData(body, html`${controls}<div class="funnels">${cols}</div>`, dataTable([stageField, ...panel.fields], tableRows, L(panel.title), false), panel.id);
  const select = /** @type {HTMLSelectElement | null} */ (body.querySelector("select.compare"));
  if (select) {
    select.value = state.cmp || "";
    select.addEventListener("change", () => actions.setState({ cmp: select.value }));
  }
  const columns = body.querySelectorAll(".funnel-col");
  onActivate(columns[0], "[data-index]", (i) => actions.drill(panel, main.rows[i], period));
  if (cmp && other && columns[1]) {
    const o = other;
    onActivate(columns[1], "[data-index]", (i) => actions.drill(panel, cmp.rows[i], o.period, o.state));
  }
}

/** @type {Renderer} */
async function kanban(panel, body, state, actions) {
  const filters = filterParams(panel.query, state);
  const [pipe, board] = await Promise.all([
    apiGet("pipeline", { ...filters, limit: 100 }),
    fetchRows(panel, state, {}),
  ]);
  /** @type {Row[]} */
  const stages = pipe.rows || [];
  const cards = board.rows;
  const cols = stages.map((s) => {
    const mine = cards.filter((c) => c.stage === s.stage);
    const items = mine.map((c) => html`<li><button type="button" class="deal-card${c.stalled ? " stalled" : ""}" data-deal="${c.deal_id}">${[
      html`<span class="card-title">${c.client_name || c.title || c.deal_id}</span>`,
      html`<span class="card-amount">${fmt(c.amount, "rub")}</span>`,
      html`<span class="card-meta">${fmt(c.manager_id, "manager")} · ${fmt(c.branch_id, "branch")}</span>`,
      html`<span class="card-meta">${fmt(c.days_in_stage, "count")} ${tr("daysInStage")}${c.stalled ? html` · <strong class="badge">${tr("stalled")}</strong>` : null}</span>`,
    ]}</button></li>`);
    return html`<section class="kanban-col" aria-label="${valueLabel(s.stage)}">${[
      html`<header><h3>${valueLabel(s.stage)} <span class="count">${fmt(s.open_deals, "count")}</span></h3>`,
      html`<div class="col-amount" data-value="${s.open_amount}">${fmt(s.open_amount, "rub")}</div>`,
      html`<div class="col-weighted">${tr("weighted")} ${fmt(s.weighted_amount, "rub")}</div></header>`,
      html`<ul>${items}</ul>`,
      html`<button type="button" class="link" data-stage="${s.stage}">${tr("allDeals")} (${fmt(s.open_deals, "count")}) →</button>`,
    ]}</section>`;
  });
  const pf = [
    { key: "stage", label: { ru: "Этап", en: "Stage" }, format: "stage" },
    { key: "open_deals", label: { ru: "Сделок", en: "Deals" }, format: "count" },
    { key: "open_amount", label: { ru: "Сумма", en: "Amount" }, format: "rub" },
    { key: "weighted_amount", label: { ru: "Прогноз", en: "Forecast" }, format: "rub" },
    { key: "stage_win_rate", label: { ru: "Вероятность", en: "Win rate" }, format: "ratio" },
  ];
  withData(body, html`<div class="kanban">${cols}</div>`, dataTable(pf, stages, L(panel.title), false), panel.id);
  body.querySelectorAll("button[data-deal]").forEach((b) => {
    const id = String(/** @type {HTMLElement} */ (b).dataset.deal);
    b.addEventListener("click", () => actions.openDeal(id));
  });
  body.querySelectorAll("button[data-stage]").forEach((b) => {
    const stage = /** @type {HTMLElement} */ (b).dataset.stage;
    b.addEventListener("click", () => actions.drill(panel, { stage }, {}));
  });
}

/** @param {HTMLElement} body */
function empty(body) {
  render(body, html`<p class="muted empty">${tr("noData")}</p>`);
}

/** @type {Record<string, Renderer>} */
const RENDERERS = {
  kpi, line: series, bar: series, table, heatmap, "sparkline-table": sparklineTable, funnel, kanban,
};

/**
 * Draws `panel` into `body`.
 * @param {Panel} panel
 * @param {HTMLElement} body
 * @param {State} state
 * @param {Actions} actions
 */
export function renderPanel(panel, body, state, actions) {
  const draw = RENDERERS[panel.chart];
  if (!draw) throw new Error(`unknown chart type ${panel.chart}`);
  return draw(panel, body, state, actions);
}
