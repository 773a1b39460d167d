// @ts-check
// The catalog, for names and categories: read once a minute at most.
import { api } from "./api.js";

/** @type {Promise<Map<string, any>>|null} */
let cached = null;
let at = 0;

/** @returns {Promise<Map<string, any>>} product id → product view */
export function productNames(refresh = false) {
  if (!cached || refresh || Date.now() - at > 60_000) {
    at = Date.now();
    cached = api("/api/products?page_size=500").then((r) => new Map(r.products.map((/** @type {any} */ p) => [p.product_id, p]))).catch(() => new Map());
  }
  return cached;
}
