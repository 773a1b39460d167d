// @ts-check
// The recommendation lists: "bought together" on a product's detail and
// "also for this customer" on an order's panel, each pick named, with why.
import { esc, words } from "./format.js";
import { api } from "./api.js";

/** @param {string} productId @param {number} [limit] */
export const boughtTogether = (productId, limit = 8) =>
  api(`/api/recommendations?product_id=${encodeURIComponent(productId)}&limit=${limit}`);

/** @param {string} customerId @param {number} [limit] */
export const forCustomer = (customerId, limit = 6) =>
  api(`/api/recommendations/personalized?customer_id=${encodeURIComponent(customerId)}&limit=${limit}`);

/**
 * A list of picks; each item carries `data-product` so a page can open it.
 * @param {any[]} picks @param {string} empty
 */
export function picksHtml(picks, empty) {
  if (!picks.length) return `<p class="muted small">${esc(empty)}</p>`;
  return '<ol class="recs">' + picks.map((p) =>
    `<li data-product="${esc(p.product_id)}"><span>${esc(p.name || p.product_id)}</span>` +
    `<span class="muted small">${esc(p.product_id)}${p.category ? " · " + esc(p.category) : ""} · ${esc(words(p.reason))}` +
    `${p.support ? ` · ${esc(p.support)} orders together` : ""}</span></li>`).join("") + "</ol>";
}

/** Fills `el` with `ask()`'s picks, or says why there are none. @param {HTMLElement} el @param {() => Promise<any>} ask @param {string} empty */
export async function showPicks(el, ask, empty) {
  el.innerHTML = '<p class="muted small">loading…</p>';
  try {
    const r = await ask();
    el.innerHTML = picksHtml(r.recommendations, empty) + (r.as_of ? `<p class="muted small">model as of ${esc(r.as_of)}</p>` : "");
  } catch (e) {
    el.innerHTML = `<p class="muted small">${esc(e.message)}</p>`;
  }
}
