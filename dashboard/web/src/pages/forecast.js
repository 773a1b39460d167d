// @ts-check
// Forecast & inventory plan: a series' forecast with its intervals and
// backtest errors, and the reorder plan per product.
import { $, esc, int, pct } from "../lib/format.js";
import { api } from "../lib/api.js";

/** @type {uPlot|null} */
let forecastChart = null;
async function loadForecast() {
  const scope = $("fc-scope").value, key = $("fc-key").value.trim();
  const params = new URLSearchParams({ metric: $("fc-metric").value, horizon: $("fc-horizon").value || "30", currency: $("fc-currency").value || "USD" });
  if (scope === "product") { if (!key) { $("fc-model").textContent = "Type a product id."; return; } params.set("product_id", key); }
  if (scope === "category") { if (!key) { $("fc-model").textContent = "Type a category."; return; } params.set("category", key); }
  const el = $("chart-forecast");
  $("fc-model").className = "muted";
  $("fc-model").textContent = "forecasting…";
  try {
    const f = await api("/api/analytics/demand-forecast?" + params);
    const day = (d) => Date.parse(d + "T00:00:00Z") / 1000;
    const nH = f.history.length;
    const xs = [...f.history.map((h) => day(h.date)), ...f.points.map((p) => day(p.date))];
    const history = [...f.history.map((h) => h.value), ...f.points.map(() => null)];
    // The forecast line starts at the last actual day, so the two join.
    const pick = (k) => [...f.history.map((h, i) => (i === nH - 1 ? h.value : null)), ...f.points.map((p) => p[k])];
    const data = [xs, history, pick("forecast"), pick("hi95"), pick("lo95"), pick("hi80"), pick("lo80")];
    const b = f.backtest || {};
    const errors = b.folds ? `backtest WAPE ${pct(b.wape)}, MASE ${b.mase == null ? "–" : Number(b.mase).toFixed(2)} over ${b.folds} folds` : "too little history to backtest";
    $("fc-model").textContent = `${f.scope} ${f.key} · ${f.metric} (${f.currency}) · as of ${f.as_of} · model ${f.model} · ${errors}`;
    el.innerHTML = "";
    const width = Math.max(300, el.clientWidth || el.parentElement.clientWidth - 32);
    const band = (label) => ({ label, stroke: "rgba(36,87,214,.35)", width: 1 });
    forecastChart = new uPlot({
      width, height: 300,
      series: [{}, { label: "actual", stroke: "#1d2330", width: 1.5 }, { label: "forecast", stroke: "#2457d6", width: 2 },
        band("95% high"), band("95% low"), band("80% high"), band("80% low")],
      bands: [{ series: [3, 4], fill: "rgba(36,87,214,.10)" }, { series: [5, 6], fill: "rgba(36,87,214,.22)" }],
      axes: [{}, { size: 70 }],
    }, data, el);
    el.dataset.drawn = String(f.points.length);
  } catch (e) {
    el.innerHTML = ""; delete el.dataset.drawn;
    $("fc-model").className = "bad";
    $("fc-model").textContent = "No forecast: " + e.message;
  }
}

const plan = { page: 1, pages: 1 };
async function loadPlan() {
  const params = new URLSearchParams({
    lead_time_days: $("inv-lead").value || "7", service_level: $("inv-sl").value || "0.95",
    sort: $("inv-sort").value, order: $("inv-order").value, page: String(plan.page), page_size: "50",
  });
  if ($("inv-q").value.trim()) params.set("q", $("inv-q").value.trim());
  if ($("inv-low").checked) params.set("low_stock", "true");
  try {
    const r = await api("/api/analytics/inventory?" + params);
    plan.pages = Math.max(1, Math.ceil(r.total / r.page_size));
    $("inv-count").className = "muted";
    $("inv-count").textContent = `${int(r.total)} products · demand as of ${r.as_of} · lead time ${r.lead_time_days} d at ${(r.service_level * 100).toFixed(1)}% service`;
    $("inv-page").textContent = `page ${r.page} of ${plan.pages}`;
    const num = (v, digits = 1) => (v == null ? "–" : Number(v).toFixed(digits));
    $("inv-plan").innerHTML = r.products.map((p) =>
      `<tr data-product="${esc(p.product_id)}" class="${p.low_stock ? "low" : ""}"><td>${esc(p.product_id)}</td><td>${esc(p.name)}</td>` +
      `<td class="num">${int(p.available)}</td><td class="num">${int(p.reserved)}</td><td class="num">${num(p.avg_daily_demand_30d, 2)}</td>` +
      `<td class="num">${num(p.days_of_cover)}</td><td>${esc(p.stockout_date || "–")}</td><td class="num">${num(p.reorder_point)}</td>` +
      `<td class="num">${int(p.suggested_order_qty)}</td><td class="num">${num(p.turnover_30d, 2)}</td><td class="num">${int(p.stockout_incidents_90d)}</td>` +
      `<td>${esc(p.model || "history only")}${p.overstock ? ' <span class="status">overstock</span>' : ""}</td></tr>`).join("") ||
      '<tr><td colspan="12" class="muted">No catalog products match. Import a catalog with <code>orderstream catalog import FILE</code>.</td></tr>';
  } catch (e) {
    $("inv-count").className = "bad";
    $("inv-count").textContent = "No plan: " + e.message;
    $("inv-plan").innerHTML = "";
  }
}
export const forecast = {
  enter() { if (!forecastChart) loadForecast(); loadPlan(); },
  init() {
    $("fc-form").addEventListener("submit", (/** @type {Event} */ e) => { e.preventDefault(); loadForecast(); });
    $("inv-form").addEventListener("submit", (/** @type {Event} */ e) => { e.preventDefault(); plan.page = 1; loadPlan(); });
    $("inv-prev").addEventListener("click", () => { if (plan.page > 1) { plan.page -= 1; loadPlan(); } });
    $("inv-next").addEventListener("click", () => { if (plan.page < plan.pages) { plan.page += 1; loadPlan(); } });
    $("inv-plan").addEventListener("click", (/** @type {Event} */ e) => {
      const row = /** @type {HTMLElement} */ (/** @type {HTMLElement} */ (e.target).closest("tr[data-product]"));
      if (!row) return;
      $("fc-scope").value = "product"; $("fc-key").value = row.dataset.product;
      loadForecast(); window.scrollTo({ top: 0, behavior: "smooth" });
    });
  },
};

