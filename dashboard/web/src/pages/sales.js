// @ts-check
// Sales: gross sales per window (minute to month) against the period
// before, by category, the best sellers and the weekday × hour heatmap.
import { $, esc, epoch, int, money, pct } from "../lib/format.js";
import { api, csvLine, saveText } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { showState } from "../lib/toast.js";
import { operations } from "../lib/operations.js";

/** @type {uPlot|null} */
let chart = null;
/** @type {any} */
let shown = null;

/** @param {Date} d */
const localInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);

/** Fills from/to (and a fitting window) for a preset. @param {string} preset */
function applyPreset(preset) {
  const form = /** @type {HTMLFormElement} */ ($("sales-form"));
  const now = new Date();
  const start = new Date(now);
  const days = { "7d": 7, "30d": 30, "90d": 90 }[preset];
  if (preset === "today") start.setHours(0, 0, 0, 0);
  else if (days) start.setTime(now.getTime() - days * 86400000);
  else return;
  form.from.value = localInput(start);
  form.to.value = localInput(now);
  form.window.value = preset === "today" ? "1h" : preset === "90d" ? "1w" : "1d";
}

/** @param {string} v */
const isoFromLocal = (v) => (v ? new Date(v).toISOString() : "");

function clear() {
  for (const id of ["sales-current", "sales-previous", "sales-change"]) $(id).textContent = "–";
  $("sales-compare-note").textContent = "";
  $("sales-categories").innerHTML = "";
  $("category-bars").innerHTML = "";
  $("top-products").innerHTML = "";
  $("heatmap").innerHTML = "";
  if (chart) chart.setData([[], [], []]);
  shown = null;
}

async function load() {
  const f = /** @type {HTMLFormElement} */ ($("sales-form"));
  if (!f.from.value && !f.to.value) {
    f.from.value = localInput(new Date(Date.now() - 86400000));
    f.to.value = localInput(new Date());
  }
  const form = new FormData(f);
  const params = new URLSearchParams({ window: String(form.get("window")), currency: String(form.get("currency") || "USD") });
  if (form.get("from")) params.set("from", isoFromLocal(String(form.get("from"))));
  if (form.get("to")) params.set("to", isoFromLocal(String(form.get("to"))));
  showState($("sales-state"), "loading…", "muted");
  // The three answers are independent: asked side by side, over the range
  // the form shows (the last 24 hours until one is chosen).
  const range = new URLSearchParams({ currency: params.get("currency") || "USD" });
  for (const bound of ["from", "to"]) if (params.get(bound)) range.set(bound, params.get(bound));
  loadOperations(range);
  try {
    const [r, top, heat] = await Promise.all([
      api("/api/dashboard/revenue?" + params),
      api("/api/dashboard/top-products?" + range),
      api("/api/dashboard/heatmap?" + range),
    ]);
    const cur = r.currency;
    shown = r;
    $("sales-current").textContent = money(r.totals.current, cur);
    $("sales-previous").textContent = money(r.totals.previous, cur);
    $("sales-change").textContent = r.totals.change === null ? "n/a" : (r.totals.change >= 0 ? "+" : "") + pct(r.totals.change);
    $("sales-compare-note").textContent = r.comparison.note ? "Previous period: " + r.comparison.note : `against ${new Date(r.comparison.previous_from).toLocaleDateString()} – ${new Date(r.comparison.previous_to).toLocaleDateString()}`;
    const byWindow = new Map();
    /** @param {any[]} rows @param {number} idx */
    const add = (rows, idx) => rows.forEach((w) => {
      const t = epoch(w.window_start);
      const e = byWindow.get(t) || [0, 0];
      e[idx] += Number(w.revenue);
      byWindow.set(t, e);
    });
    add(r.windows, 0);
    add(r.previous, 1);
    const xs = [...byWindow.keys()].sort((a, b) => a - b);
    if (!chart) chart = lineChart($("chart-revenue"), ["this period", "previous period"], { height: 260 });
    chart.setData([xs, xs.map((x) => byWindow.get(x)[0]), xs.map((x) => byWindow.get(x)[1])]);
    // The axis spans the period asked for, however few windows have sales.
    chart.setScale("x", { min: epoch(r.from), max: epoch(r.to) });
    if (!r.windows.length) {
      showState($("sales-state"), `No sales in ${cur} between ${new Date(r.from).toLocaleString()} and ${new Date(r.to).toLocaleString()}.`, "muted");
    } else showState($("sales-state"), null);
    drawCategories(r.categories, cur, r.comparison.complete);
    $("top-products").innerHTML = top.products.map((/** @type {any} */ p) =>
      `<tr><td>${esc(p.name || p.product_id)}<div class="muted small">${esc(p.product_id)}</div></td><td>${esc(p.category || "uncategorized")}</td>` +
      `<td class="num">${int(p.units)}</td><td class="num">${esc(money(p.revenue, cur))}</td></tr>`).join("") ||
      '<tr><td colspan="4" class="muted">no sales in this range</td></tr>';
    drawHeatmap(heat.cells, cur);
  } catch (e) {
    clear();
    showState($("sales-state"), "Cannot show sales: " + e.message);
  }
}

/** @param {any[]} categories @param {string} cur @param {boolean} comparable */
function drawCategories(categories, cur, comparable) {
  $("sales-categories").innerHTML = categories.map((c) =>
    `<tr><td>${esc(c.category)}</td><td class="num">${esc(money(c.current, cur))}</td><td class="num">${esc(money(c.previous, cur))}</td>` +
    `<td class="num">${c.change === null ? (comparable ? "–" : "n/a") : esc(pct(c.change))}</td></tr>`).join("") ||
    '<tr><td colspan="4" class="muted">no sales in this range</td></tr>';
  const top = categories.slice(0, 12);
  const max = Math.max(1, ...top.map((c) => Number(c.current)));
  $("category-bars").innerHTML = top.map((c) =>
    `<div class="bar-row"><span class="bar-label">${esc(c.category)}</span><span class="bar" data-w="${(Number(c.current) / max * 100).toFixed(1)}"></span>` +
    `<span class="bar-value">${esc(money(c.current, cur))}</span></div>`).join("") +
    (categories.length > top.length ? `<p class="muted small">and ${categories.length - top.length} more in the table</p>` : "");
  // Widths through the DOM: the CSP allows no inline style attributes.
  $("category-bars").querySelectorAll(".bar").forEach((/** @type {HTMLElement} */ b) => { b.style.width = b.dataset.w + "%"; });
}

/** @param {any[]} cells @param {string} currency */
function drawHeatmap(cells, currency) {
  if (!cells.length) {
    $("heatmap").innerHTML = '<p class="muted">no sales in this range</p>';
    return;
  }
  const grid = Array.from({ length: 7 }, () => Array(24).fill(0));
  cells.forEach((c) => { grid[c.weekday][c.hour] = Number(c.revenue); });
  const max = Math.max(1, ...grid.flat());
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  let html = '<div class="scroll"><table class="heat"><tr><th></th>' + Array.from({ length: 24 }, (_, h) => `<th>${h}</th>`).join("") + "</tr>";
  grid.forEach((row, d) => {
    html += `<tr><th>${days[d]}</th>` + row.map((v, h) =>
      `<td title="${esc(days[d])} ${h}:00 · ${esc(money(v, currency))}" data-alpha="${(v / max).toFixed(2)}"></td>`).join("") + "</tr>";
  });
  html += "</table></div>" +
    `<div class="legend"><span>${esc(money(0, currency))}</span><span class="gradient"></span><span>${esc(money(max, currency))}</span><span class="muted small">per hour cell, UTC</span></div>`;
  $("heatmap").innerHTML = html;
  $("heatmap").querySelectorAll("td[data-alpha]").forEach((/** @type {HTMLElement} */ td) => { td.style.background = `rgba(36,87,214,${td.dataset.alpha})`; });
}

/** @type {Record<string, any>} */
const opsCharts = {};
/** The operations figures of the range's days (UTC). @param {URLSearchParams} range */
async function loadOperations(range) {
  const day = (/** @type {string|null} */ t) => (t ? new Date(t).toISOString().slice(0, 10) : new Date().toISOString().slice(0, 10));
  const from = day(range.get("from")), to = day(range.get("to"));
  const cur = range.get("currency") || "USD";
  $("ops-state").textContent = `${from} to ${to} (UTC days)`;
  try {
    const o = await operations(from, to, cur);
    $("ops-aov").textContent = o.average_order == null ? "–" : money(o.average_order, cur);
    $("ops-cancel").textContent = pct(o.cancellation_rate);
    $("ops-payfail").textContent = pct(o.payment_failure_rate);
    const xs = o.days.map((/** @type {any} */ d) => Date.parse(d.day + "T00:00:00Z") / 1000);
    if (!opsCharts.aov) opsCharts.aov = lineChart($("chart-aov"), ["average order"], { yLabel: cur });
    opsCharts.aov.setData([xs, o.days.map((/** @type {any} */ d) => (d.average_order == null ? null : Number(d.average_order)))]);
    const reasons = Object.keys(o.cancelled).sort();
    if (!opsCharts.cancel || opsCharts.cancelReasons !== reasons.join(",")) {
      if (opsCharts.cancel) opsCharts.cancel.destroy();
      opsCharts.cancel = lineChart($("chart-cancel"), reasons.map((r) => r.replace(/_/g, " ")), { yLabel: "% of orders" });
      opsCharts.cancelReasons = reasons.join(",");
    }
    opsCharts.cancel.setData([xs, ...reasons.map((r) => o.days.map((/** @type {any} */ d) => (d.orders ? (100 * (d.cancelled[r] || 0)) / d.orders : null)))]);
    $("chart-aov").dataset.drawn = String(o.days.length);
    $("ops-methods").innerHTML = o.payment_methods.map((/** @type {any} */ m) =>
      `<tr><td>${esc(m.method.replace(/_/g, " "))}</td><td class="num">${int(m.orders)}</td><td class="num">${pct(m.share)}</td><td class="num">${int(m.declined)}</td><td class="num">${pct(m.failure_rate)}</td></tr>`).join("") ||
      '<tr><td colspan="5" class="muted">no orders in this range</td></tr>';
    $("ops-stock").innerHTML = o.out_of_stock.map((/** @type {any} */ p) =>
      `<tr><td class="id">${esc(p.product_id)}</td><td class="num">${int(p.lines)}</td><td class="num">${int(p.out_of_stock)}</td><td class="num">${pct(p.rate)}</td></tr>`).join("") ||
      '<tr><td colspan="4" class="muted">no out-of-stock cancellations in this range</td></tr>';
  } catch (e) {
    $("ops-state").textContent = "No operations figures: " + e.message;
  }
}

function exportCsv() {
  if (!shown) return;
  const lines = [csvLine(["period", "window_start", "category", "revenue", "units", "currency"])];
  for (const [period, rows] of [["current", shown.windows], ["previous (shifted)", shown.previous]]) {
    for (const w of rows) lines.push(csvLine([period, w.window_start, w.category, w.revenue, w.units, shown.currency]));
  }
  saveText(`sales-${shown.window}-${shown.from.slice(0, 10)}.csv`, lines.join("\n") + "\n");
}

export const sales = {
  enter() { load(); },
  init() {
    $("sales-form").addEventListener("submit", (/** @type {Event} */ e) => { e.preventDefault(); load(); });
    $("sales-presets").addEventListener("click", (/** @type {Event} */ e) => {
      const preset = /** @type {HTMLElement} */ (e.target).dataset.preset;
      if (!preset) return;
      $("sales-presets").querySelectorAll("button").forEach((/** @type {HTMLElement} */ b) => b.classList.toggle("active", b.dataset.preset === preset));
      if (preset === "custom") { $("sales-form").from.focus(); return; }
      applyPreset(preset);
      load();
    });
    $("sales-export").addEventListener("click", exportCsv);
  },
};
