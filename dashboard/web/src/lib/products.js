// @ts-check
// The catalog, for names and categories: read once a minute at most.
import { api } from "./api.js";

/** @type {Promise<any[]>|null} */
let cached = null;
let at = 0;

/** Every product with its live stock: the first page says how many there are, the rest are asked side by side. */
async function fetchAll() {
  const first = await api("/api/products?page_size=500&page=1");
  const pages = Math.min(100, Math.ceil(first.total / 500));
  const rest = await Promise.all(Array.from({ length: Math.max(0, pages - 1) }, (_, i) => api(`/api/products?page_size=500&page=${i + 2}`)));
  return [first, ...rest].flatMap((r) => r.products);
}

/** The catalog, read again when `refresh` or older than a minute. @returns {Promise<any[]>} */
export function allProducts(refresh = false) {
  if (!cached || refresh || Date.now() - at > 60_000) {
    at = Date.now();
    cached = fetchAll();
    cached.catch(() => { cached = null; });
  }
  return cached;
}

/** @returns {Promise<Map<string, any>>} product id → product view (empty when the catalog cannot be read) */
export const productNames = () => allProducts().then((all) => new Map(all.map((p) => [p.product_id, p]))).catch(() => new Map());
