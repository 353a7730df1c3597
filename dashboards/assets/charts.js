// @ts-check
// Charts drawn as inline SVG templates: lines, grouped bars, sparklines, heatmap cells. No library:
// the UI works offline. Every chart has role="img" and a label; its numbers are also in the
// panel's data table.
"use strict";

import { compact, fmt } from "./format.js";
import { html } from "./html.js";

/** @typedef {import("./html.js").Html} Html */

/**
 * One line or bar series; a point with a note (an immature cohort) is drawn hollow, the note in its
 * tooltip.
 * @typedef {{ name: string, format: string, values: (number | null)[], notes?: (string | null)[] }} Series
 */

/** Series colours: distinguishable and at least 3:1 against white. */
export const PALETTE = ["#1f5f99", "#c2571a", "#2b7a3d", "#8a3ca3", "#a8323e", "#5c6670"];

const W = 560;
const H = 240;
const PAD = { left: 64, right: 12, top: 12, bottom: 40 };

/**
 * The top of an axis over `v` with four round steps (0, 250, 500, 750, 1 000).
 * @param {number} v
 */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const raw = v / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return 4 * m * p;
  return 40 * p;
}

/** @param {number | null} v */
function missing(v) {
  return v === null || Number.isNaN(v);
}

/**
 * Grid lines with their values, and the category labels under the plot.
 * @param {number} maxY
 * @param {number} minY
 * @param {string} format
 * @param {string[]} labels
 * @param {number} plotW
 * @param {number} plotH
 */
function axes(maxY, minY, format, labels, plotW, plotH) {
  /** @type {Html[]} */
  const out = [];
  for (let i = 0; i <= 4; i += 1) {
    const v = minY + ((maxY - minY) * i) / 4;
    const y = PAD.top + plotH - (plotH * i) / 4;
    out.push(html`<line x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${y}" y2="${y}" class="grid"/>`);
    out.push(html`<text x="${PAD.left - 6}" y="${y + 4}" text-anchor="end" class="tick">${compact(v, format)}</text>`);
  }
  // Labels fit their band: short ones are all shown, long ones every n-th, truncated if still long.
  const band = plotW / Math.max(1, labels.length);
  const longest = Math.max(1, ...labels.map((l) => String(l).length));
  const step = Math.max(1, Math.ceil((longest * 6.2 + 8) / band));
  const room = Math.max(4, Math.floor((band * step - 8) / 6.2));
  labels.forEach((l, i) => {
    if (i % step) return;
    const text = String(l).length > room ? `${String(l).slice(0, room - 1)}…` : String(l);
    const x = PAD.left + (labels.length === 1 ? plotW / 2 : (plotW * (i + 0.5)) / labels.length);
    out.push(html`<text x="${x}" y="${H - PAD.bottom + 16}" text-anchor="middle" class="tick">${text}</text>`);
  });
  return html`${out}`;
}

/** @param {Series[]} series */
function legend(series) {
  if (series.length < 2) return html``;
  const items = series.map((s, i) => html`<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${s.name}</span>`);
  return html`<div class="legend">${items}</div>`;
}

/**
 * Lines over categories. `series`: a second format (ratios next to money) gets its own scale,
 * labelled on the right.
 * @param {string[]} labels
 * @param {Series[]} series
 * @param {string} label
 * @param {unknown} onPoint points are focusable controls when set
 */
export function lineChart(labels, series, label, onPoint) {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const formats = [...new Set(series.map((s) => s.format))];
  const scale = new Map(formats.map((f) => {
    const vals = series.filter((s) => s.format === f).flatMap((s) => s.values).filter((v) => !missing(v));
    return [f, niceMax(Math.max(0, .../** @type {number[]} */ (vals)))];
  }));
  /** @param {number} i */
  const x = (i) => PAD.left + (labels.length === 1 ? plotW / 2 : (plotW * (i + 0.5)) / labels.length);
  /** @param {number} v @param {string} f */
  const y = (v, f) => PAD.top + plotH - (plotH * v) / (scale.get(f) || 1);
  const body = [axes(scale.get(formats[0]) || 1, 0, formats[0], labels, plotW, plotH)];
  series.forEach((s, si) => {
    const colour = PALETTE[si % PALETTE.length];
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || missing(v)) return;
      d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(v, s.format).toFixed(1)}`;
    });
    const dash = s.format !== formats[0] ? html` stroke-dasharray="6 4"` : null;
    body.push(html`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2.5"${dash}/>`);
    s.values.forEach((v, i) => {
      if (v === null || missing(v)) return;
      const note = s.notes && s.notes[i];
      const cls = note ? "point immature" : "point";
      const clickable = onPoint ? html` class="${cls}" tabindex="0" role="button" data-index="${i}"` : html` class="${cls}"`;
      const fill = note ? html` fill="#fff" stroke="${colour}" stroke-width="2"` : html` fill="${colour}"`;
      const tip = note ? ` (${note})` : "";
      body.push(html`<circle cx="${x(i).toFixed(1)}" cy="${y(v, s.format).toFixed(1)}" r="4"${fill}${clickable}><title>${labels[i]}: ${s.name} ${fmt(v, s.format)}${tip}</title></circle>`);
    });
  });
  if (formats.length > 1) {
    const f = formats[1];
    for (let i = 0; i <= 4; i += 1) {
      const yy = PAD.top + plotH - (plotH * i) / 4;
      body.push(html`<text x="${W - 2}" y="${yy - 2}" text-anchor="end" class="tick alt">${compact(((scale.get(f) || 1) * i) / 4, f)}</text>`);
    }
  }
  return html`<svg viewBox="0 0 ${W} ${H}" ${roleOf(onPoint)} aria-label="${label}" class="chart">${body}</svg>${legend(series)}`;
}

/**
 * A chart with focusable points is a group of controls; one without is a picture.
 * @param {unknown} clickable
 */
function roleOf(clickable) {
  return clickable ? html`role="group"` : html`role="img"`;
}

/**
 * Grouped bars over categories; `series` as for lineChart, one scale.
 * @param {string[]} labels
 * @param {Series[]} series
 * @param {string} label
 * @param {unknown} onBar bars are focusable controls when set
 */
export function barChart(labels, series, label, onBar) {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const vals = /** @type {number[]} */ (series.flatMap((s) => s.values).filter((v) => !missing(v)));
  const max = niceMax(Math.max(0, ...vals));
  const format = series[0] ? series[0].format : "count";
  const body = [axes(max, 0, format, labels, plotW, plotH)];
  const band = plotW / Math.max(1, labels.length);
  const bw = Math.max(2, (band * 0.8) / Math.max(1, series.length));
  labels.forEach((l, i) => {
    series.forEach((s, si) => {
      const v = s.values[i];
      if (v === null || missing(v)) return;
      const h = (plotH * v) / max;
      const xx = PAD.left + band * i + band * 0.1 + bw * si;
      const clickable = onBar ? html` tabindex="0" role="button" data-index="${i}" class="bar clickable"` : html` class="bar"`;
      body.push(html`<rect x="${xx.toFixed(1)}" y="${(PAD.top + plotH - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"${clickable}><title>${l}: ${s.name} ${fmt(v, s.format)}</title></rect>`);
    });
  });
  return html`<svg viewBox="0 0 ${W} ${H}" ${roleOf(onBar)} aria-label="${label}" class="chart">${body}</svg>${legend(series)}`;
}

/**
 * A small line of `values` (nulls as zero), for table rows.
 * @param {unknown[]} values
 * @param {string} label
 */
export function sparkline(values, label) {
  const w = 120;
  const h = 28;
  const nums = values.map((v) => Number(v) || 0);
  const max = Math.max(1e-9, ...nums);
  /** @param {number} i */
  const x = (i) => (nums.length === 1 ? w / 2 : 2 + ((w - 4) * i) / (nums.length - 1));
  /** @param {number} v */
  const y = (v) => h - 3 - ((h - 6) * v) / max;
  const d = nums.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const last = nums.length ? html`<circle cx="${x(nums.length - 1).toFixed(1)}" cy="${y(nums[nums.length - 1]).toFixed(1)}" r="2.5" fill="${PALETTE[0]}"/>` : null;
  return html`<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${label}" class="spark"><path d="${d}" fill="none" stroke="${PALETTE[0]}" stroke-width="1.8"/>${last}</svg>`;
}

/**
 * Background and text colour of a heatmap cell at `share` (0..1) of the largest value.
 * @param {number} share
 */
export function heatColour(share) {
  const s = Math.max(0, Math.min(1, share));
  // From a pale blue to the palette's dark blue; text turns white where the cell is dark.
  /** @param {number} a @param {number} b */
  const mix = (a, b) => Math.round(a + (b - a) * s);
  const bg = `rgb(${mix(235, 31)},${mix(242, 95)},${mix(250, 153)})`;
  return { bg, fg: s > 0.55 ? "#fff" : "#1b1f24" };
}
