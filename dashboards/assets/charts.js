// Charts drawn as inline SVG strings: lines, grouped bars, sparklines, heatmap cells. No library:
// the UI works offline. Every chart has role="img" and a label; its numbers are also in the
// panel's data table.
"use strict";

import { compact, esc, fmt } from "./api.js";

/** Series colours: distinguishable and at least 3:1 against white. */
export const PALETTE = ["#1f5f99", "#c2571a", "#2b7a3d", "#8a3ca3", "#a8323e", "#5c6670"];

const W = 560;
const H = 240;
const PAD = { left: 64, right: 12, top: 12, bottom: 40 };

/** The top of an axis over `v` with four round steps (0, 250, 500, 750, 1 000). */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const raw = v / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return 4 * m * p;
  return 40 * p;
}

function axes(maxY, minY, format, labels, plotW, plotH) {
  let out = "";
  for (let i = 0; i <= 4; i += 1) {
    const v = minY + ((maxY - minY) * i) / 4;
    const y = PAD.top + plotH - (plotH * i) / 4;
    out += `<line x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${y}" y2="${y}" class="grid"/>`;
    out += `<text x="${PAD.left - 6}" y="${y + 4}" text-anchor="end" class="tick">${esc(compact(v, format))}</text>`;
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
    out += `<text x="${x}" y="${H - PAD.bottom + 16}" text-anchor="middle" class="tick">${esc(text)}</text>`;
  });
  return out;
}

function legend(series) {
  if (series.length < 2) return "";
  return `<div class="legend">${series
    .map((s, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${esc(s.name)}</span>`)
    .join("")}</div>`;
}

/**
 * Lines over categories. `series`: [{name, format, values: [number|null]}]; a second format
 * (ratios next to money) gets its own scale, labelled on the right.
 */
export function lineChart(labels, series, label, onPoint) {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const formats = [...new Set(series.map((s) => s.format))];
  const scale = new Map(formats.map((f) => {
    const vals = series.filter((s) => s.format === f).flatMap((s) => s.values).filter((v) => v !== null && !Number.isNaN(v));
    return [f, niceMax(Math.max(0, ...vals))];
  }));
  const x = (i) => PAD.left + (labels.length === 1 ? plotW / 2 : (plotW * (i + 0.5)) / labels.length);
  const y = (v, f) => PAD.top + plotH - (plotH * v) / scale.get(f);
  let body = axes(scale.get(formats[0]), 0, formats[0], labels, plotW, plotH);
  series.forEach((s, si) => {
    const colour = PALETTE[si % PALETTE.length];
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || Number.isNaN(v)) return;
      d += `${d ? "L" : "M"}${x(i).toFixed(1)},${y(v, s.format).toFixed(1)}`;
    });
    const dash = s.format !== formats[0] ? ' stroke-dasharray="6 4"' : "";
    body += `<path d="${d}" fill="none" stroke="${colour}" stroke-width="2.5"${dash}/>`;
    s.values.forEach((v, i) => {
      if (v === null || Number.isNaN(v)) return;
      const clickable = onPoint ? ` class="point" tabindex="0" role="button" data-index="${i}"` : ' class="point"';
      body += `<circle cx="${x(i).toFixed(1)}" cy="${y(v, s.format).toFixed(1)}" r="4" fill="${colour}"${clickable}>` +
        `<title>${esc(labels[i])}: ${esc(s.name)} ${esc(fmt(v, s.format))}</title></circle>`;
    });
  });
  if (formats.length > 1) {
    const f = formats[1];
    for (let i = 0; i <= 4; i += 1) {
      const yy = PAD.top + plotH - (plotH * i) / 4;
      body += `<text x="${W - 2}" y="${yy - 2}" text-anchor="end" class="tick alt">${esc(compact((scale.get(f) * i) / 4, f))}</text>`;
    }
  }
  return `<svg viewBox="0 0 ${W} ${H}" ${roleOf(onPoint)} aria-label="${esc(label)}" class="chart">${body}</svg>${legend(series)}`;
}

/** A chart with focusable points is a group of controls; one without is a picture. */
function roleOf(clickable) {
  return clickable ? 'role="group"' : 'role="img"';
}

/** Grouped bars over categories; `series` as for lineChart, one scale. */
export function barChart(labels, series, label, onBar) {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const vals = series.flatMap((s) => s.values).filter((v) => v !== null && !Number.isNaN(v));
  const max = niceMax(Math.max(0, ...vals));
  const format = series[0] ? series[0].format : "count";
  let body = axes(max, 0, format, labels, plotW, plotH);
  const band = plotW / Math.max(1, labels.length);
  const bw = Math.max(2, (band * 0.8) / Math.max(1, series.length));
  labels.forEach((l, i) => {
    series.forEach((s, si) => {
      const v = s.values[i];
      if (v === null || Number.isNaN(v)) return;
      const h = (plotH * v) / max;
      const xx = PAD.left + band * i + band * 0.1 + bw * si;
      const clickable = onBar ? ` tabindex="0" role="button" data-index="${i}" class="bar clickable"` : ' class="bar"';
      body += `<rect x="${xx.toFixed(1)}" y="${(PAD.top + plotH - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"${clickable}>` +
        `<title>${esc(l)}: ${esc(s.name)} ${esc(fmt(v, s.format))}</title></rect>`;
    });
  });
  return `<svg viewBox="0 0 ${W} ${H}" ${roleOf(onBar)} aria-label="${esc(label)}" class="chart">${body}</svg>${legend(series)}`;
}

/** A small line of `values` (nulls as zero), for table rows. */
export function sparkline(values, label) {
  const w = 120;
  const h = 28;
  const nums = values.map((v) => Number(v) || 0);
  const max = Math.max(1e-9, ...nums);
  const x = (i) => (nums.length === 1 ? w / 2 : 2 + ((w - 4) * i) / (nums.length - 1));
  const y = (v) => h - 3 - ((h - 6) * v) / max;
  const d = nums.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const last = nums.length ? `<circle cx="${x(nums.length - 1).toFixed(1)}" cy="${y(nums[nums.length - 1]).toFixed(1)}" r="2.5" fill="${PALETTE[0]}"/>` : "";
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(label)}" class="spark">` +
    `<path d="${d}" fill="none" stroke="${PALETTE[0]}" stroke-width="1.8"/>${last}</svg>`;
}

/** Background and text colour of a heatmap cell at `share` (0..1) of the largest value. */
export function heatColour(share) {
  const s = Math.max(0, Math.min(1, share));
  // From a pale blue to the palette's dark blue; text turns white where the cell is dark.
  const mix = (a, b) => Math.round(a + (b - a) * s);
  const bg = `rgb(${mix(235, 31)},${mix(242, 95)},${mix(250, 153)})`;
  return { bg, fg: s > 0.55 ? "#fff" : "#1b1f24" };
}
