// @ts-check
// The one way the UI writes markup: the `html` tagged template escapes every interpolated value
// unless it is itself a template (a nested `html`, an array of them), so text from the API or a
// definition can never become markup. `render` and `append` are the only places that hand markup
// to the DOM.
"use strict";

/** @type {Record<string, string>} */
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Markup that is safe to mount: only `html` makes it, from literal text and escaped values. */
export class Html {
  /** @param {string} markup */
  constructor(markup) {
    /** @readonly */
    this.markup = markup;
  }

  toString() {
    return this.markup;
  }
}

/**
 * What a template takes: templates (kept), arrays of values (joined), null and undefined
 * (nothing: `${cond ? html`...` : null}`), anything else as escaped text (`false` included, so a
 * data value shows as the API sent it).
 * @typedef {Html | string | number | boolean | null | undefined | readonly unknown[]} Value
 */

/**
 * @param {unknown} value a Value (arrays hold Values)
 * @returns {string}
 */
function part(value) {
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(part).join("");
  if (value === null || value === undefined) return "";
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * Markup from a template literal; every `${value}` is escaped for text and quoted attributes.
 * @param {TemplateStringsArray} strings
 * @param {...Value} values
 * @returns {Html}
 */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => {
    out += part(v) + strings[i + 1];
  });
  return new Html(out);
}

/**
 * Replaces the children of `target` with `template`.
 * @param {Element} target
 * @param {Html} template
 */
export function render(target, template) {
  target.innerHTML = checked(template);
}

/**
 * Adds `template` after the last child of `target` (a "show more" page of rows).
 * @param {Element} target
 * @param {Html} template
 */
export function append(target, template) {
  target.insertAdjacentHTML("beforeend", checked(template));
}

/** @param {Html} template */
function checked(template) {
  // A plain string here would be unescaped markup: refuse it instead of trusting it.
  if (!(template instanceof Html)) throw new TypeError("render() takes an html`...` template, not a string");
  return template.markup;
}
