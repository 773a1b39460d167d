// @ts-check
// New order: places a test order through the same API producers use
// (with an Idempotency-Key, so a double click is one order), then links to
// its tracking page.
import { $, esc, money } from "../lib/format.js";
import { api } from "../lib/api.js";
import { productNames } from "../lib/products.js";
import { showState, toast } from "../lib/toast.js";

let pendingKey = "";

async function fillProducts() {
  const products = [...(await productNames()).values()];
  const select = $("no-product");
  if (select.options.length === products.length && products.length) return;
  select.innerHTML = products.map((p) => `<option value="${esc(p.product_id)}" data-price="${esc(p.unit_price)}" data-currency="${esc(p.currency)}">${esc(p.name)} — ${esc(money(p.unit_price, p.currency))} (${esc(p.stock.available)} left)</option>`).join("") ||
    '<option value="">no catalog products: import a catalog first</option>';
}

async function submit(/** @type {Event} */ e) {
  e.preventDefault();
  const f = /** @type {HTMLFormElement} */ ($("new-order-form"));
  const option = f.product.selectedOptions[0];
  if (!option || !option.value) return showState($("new-order-state"), "choose a product (the catalog is empty?)");
  const quantity = Number(f.quantity.value);
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > 1000) return showState($("new-order-state"), "quantity is a whole number from 1 to 1000");
  if (!f.customer_id.value.trim()) return showState($("new-order-state"), "customer id is required");
  const order = {
    customer_id: f.customer_id.value.trim(),
    currency: option.dataset.currency,
    items: [{ product_id: option.value, quantity, unit_price: option.dataset.price }],
    payment_method: f.payment_method.value,
    shipping_address: { line1: f.line1.value.trim() || "1 Test Street", city: f.city.value.trim() || "Springfield", postal_code: f.postal_code.value.trim() || "00000", country: (f.country.value.trim() || "US").toUpperCase() },
  };
  // One key per filled form: a retry (or a double click) is the same order.
  pendingKey = pendingKey || crypto.randomUUID();
  try {
    const r = await api("/api/orders", { method: "POST", headers: { "Idempotency-Key": pendingKey }, json: order });
    pendingKey = "";
    showState($("new-order-state"), null);
    $("new-order-result").innerHTML = `<p>Accepted <span class="id">${esc(r.order_id)}</span>: ${esc(money(r.total, r.currency))} (tax ${esc(money(r.tax, r.currency))}), ${esc(r.status)}.</p>` +
      `<p><a href="#track/${esc(r.tracking_url ? r.tracking_url.split("/").pop() : "")}" id="new-order-track">Track this order</a></p>`;
    toast(`order ${r.order_id} placed`);
  } catch (err) {
    const field = err.body && err.body.field ? ` (${err.body.field})` : "";
    showState($("new-order-state"), err.message + field);
  }
}

export const newOrder = {
  enter() { fillProducts().catch((e) => showState($("new-order-state"), "Cannot read the catalog: " + e.message)); },
  init() {
    $("new-order-form").addEventListener("submit", submit);
    $("new-order-form").addEventListener("input", () => { pendingKey = ""; });
  },
};
