// @ts-check
// Overview: today's sales (net beside gross), payment success, and the
// live rates and newest orders.
import { $, esc, int, money, pct, when, words } from "../lib/format.js";
import { api } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { listen, unlisten } from "../lib/live.js";
import { showState } from "../lib/toast.js";

/** @type {uPlot|null} */
let chart = null;
let timer = 0;

/** @param {any} snapshot */
function drawLive(snapshot) {
  $("kpi-rate").textContent = Number(snapshot.orders_per_s).toFixed(1);
  $("recent-orders").innerHTML = (snapshot.recent_orders || []).map((/** @type {any} */ o) =>
    `<tr data-order="${esc(o.order_id)}"><td class="id">${esc(o.order_id)}</td><td>${esc(o.customer_id ?? "–")}</td><td class="num">${esc(o.items)}</td>` +
    `<td class="num">${esc(money(o.total, o.currency))}</td><td>${esc(when(o.received_at))}</td></tr>`).join("") ||
    '<tr><td colspan="5" class="muted">no orders yet: place one from the New order page</td></tr>';
  if (chart) {
    const rows = snapshot.per_second || [];
    chart.setData([rows.map((/** @type {number[]} */ r) => r[0]), rows.map((/** @type {number[]} */ r) => r[1]), rows.map((/** @type {number[]} */ r) => r[2])]);
  }
}

async function loadSummary() {
  try {
    const s = await api("/api/dashboard/summary");
    showState($("overview-state"), null);
    const c = s.currency;
    $("kpi-net").textContent = money(s.net_sales, c);
    $("kpi-net-note").textContent = `${int(s.confirmed)} paid${Number(s.refunds) > 0 ? `, ${money(s.refunds, c)} refunded` : ""}`;
    $("kpi-gross").textContent = money(s.gross_sales, c);
    $("kpi-orders").textContent = int(s.orders);
    $("kpi-aov").textContent = s.average_order === null ? "–" : money(s.average_order, c);
    $("kpi-success").textContent = pct(s.payment_success_rate);
    $("kpi-success-note").textContent = `${int(s.payments_approved)} approved, ${int(s.payments_declined)} declined`;
    const cancelled = Object.entries(s.cancelled || {}).map(([why, n]) => `${words(why)} ${int(n)}`).join(", ");
    $("kpi-cancelled").textContent = cancelled || "none";
    $("overview-date").textContent = `${s.date} (UTC), ${c}`;
  } catch (e) {
    showState($("overview-state"), "Today's figures are unavailable: " + e.message);
    for (const id of ["kpi-net", "kpi-gross", "kpi-orders", "kpi-aov", "kpi-success"]) $(id).textContent = "–";
  }
}

export const overview = {
  enter() {
    if (!chart) chart = lineChart($("chart-live"), ["orders/s", "events/s"]);
    listen(drawLive);
    loadSummary();
    timer = window.setInterval(loadSummary, 5000);
  },
  leave() {
    unlisten(drawLive);
    clearInterval(timer);
  },
};
