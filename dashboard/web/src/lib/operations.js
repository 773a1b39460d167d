// @ts-check
// The operations figures (average order, cancellations, fulfilment times,
// payment methods, out of stock) for a range of days, asked once per range.
import { api } from "./api.js";

/** @type {Map<string, Promise<any>>} */
const asked = new Map();

/** @param {string} from YYYY-MM-DD @param {string} to @param {string} [currency] */
export function operations(from, to, currency = "USD") {
  const key = `${from}/${to}/${currency}`;
  if (!asked.has(key)) {
    const answer = api(`/api/analytics/operations?${new URLSearchParams({ from, to, currency })}`);
    asked.set(key, answer);
    // Kept a minute (as the server keeps it); a failure is asked again.
    answer.then(() => setTimeout(() => asked.delete(key), 60000), () => asked.delete(key));
  }
  return /** @type {Promise<any>} */ (asked.get(key));
}

/** Hours as words: 45 min, 6.5 h, 3.2 d. @param {number|null|undefined} h */
export function duration(h) {
  if (h === null || h === undefined || !Number.isFinite(Number(h))) return "–";
  const v = Number(h);
  if (v < 1) return `${Math.round(v * 60)} min`;
  if (v < 48) return `${v.toFixed(1)} h`;
  return `${(v / 24).toFixed(1)} d`;
}
