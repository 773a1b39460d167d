// @ts-check
// Formatting for display. Money arrives as exact decimal strings; it is
// turned into a number only here, to be shown, never to be added.

/** @param {string} id */
export const $ = (id) => /** @type {any} */ (document.getElementById(id));

/** Escapes a value for HTML. @param {unknown} v */
export const esc = (v) =>
  String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// One formatter per currency: building one per call (what toLocaleString
// does) cost ~0.1 ms each, most of drawing a 2,000-row table.
/** @type {Map<string, Intl.NumberFormat>} */
const moneyFormats = new Map();
const intFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** @param {string} currency */
function moneyFormat(currency) {
  let format = moneyFormats.get(currency);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { style: "currency", currency, maximumFractionDigits: 2 });
    moneyFormats.set(currency, format);
  }
  return format;
}

/** @param {string|number|null|undefined} v @param {string} [currency] */
export function money(v, currency = "USD") {
  if (v === null || v === undefined || v === "") return "–";
  const n = Number(v);
  if (!Number.isFinite(n)) return "–";
  try {
    return moneyFormat(currency).format(n);
  } catch {
    return `${n.toFixed(2)} ${currency}`;
  }
}

/** @param {unknown} v */
export const int = (v) => (v !== null && v !== undefined && Number.isFinite(Number(v)) ? intFormat.format(Math.round(Number(v))) : "–");

/** A share (0..1) as a percentage. @param {number|null|undefined} v */
export const pct = (v) => (v === null || v === undefined || !Number.isFinite(Number(v)) ? "–" : (Number(v) * 100).toFixed(1) + "%");

/** A code such as `out_of_stock` in words. @param {unknown} v */
export const words = (v) => String(v ?? "").replace(/_/g, " ");

/** @param {string|null|undefined} t */
export const when = (t) => (t ? new Date(t).toLocaleString() : "");

/** @param {string|null|undefined} t */
export const day = (t) => (t ? new Date(t).toLocaleDateString() : "");

/** Seconds since the epoch, for charts. @param {string} t */
export const epoch = (t) => Date.parse(t) / 1000;
