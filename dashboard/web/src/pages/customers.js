// @ts-check
// Customers: segments with their lifetime value, the value distribution,
// cohort retention by month of first order, new against returning
// customers per day, and each segment's most valuable customers linked to
// their orders. All from the customers run (`orderstream customers`, and
// hourly inside `up`).
import { $, esc, int, money, pct, words } from "../lib/format.js";
import { api } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { showState } from "../lib/toast.js";

/** @type {any} */
let daysChart = null;

/** @param {any} s */
function drawSegments(s) {
  const by = Object.fromEntries(s.segments.map((/** @type {any} */ x) => [x.segment, x]));
  $("cust-total").textContent = int(s.customers);
  $("cust-high").textContent = int(by.high_value ? by.high_value.customers : 0);
  $("cust-churn").textContent = int(by.churn_risk ? by.churn_risk.customers : 0);
  $("cust-rules").textContent = `As of ${s.as_of}: ${s.rules}.`;
  $("cust-segments").innerHTML = s.segments.map((/** @type {any} */ x) =>
    `<tr data-segment="${esc(x.segment)}"><td><span class="status">${esc(words(x.segment))}</span></td><td class="num">${int(x.customers)}</td>` +
    `<td class="num">${pct(x.share)}</td><td class="num">${int(x.orders)}</td><td class="num">${esc(money(x.lifetime_value, s.currency))}</td>` +
    `<td class="num">${esc(money(x.average_lifetime_value, s.currency))}</td></tr>`).join("") ||
    '<tr><td colspan="6" class="muted">no customers yet</td></tr>';
  $("cust-list-title").textContent = `${words(s.segment)}: most valuable first`;
  $("cust-list").innerHTML = s.list.map((/** @type {any} */ c) =>
    `<tr><td><a class="id" href="#orders/customer=${encodeURIComponent(c.customer_id)}">${esc(c.customer_id)}</a></td>` +
    `<td class="num">${int(c.orders)}</td><td class="num">${esc(money(c.lifetime_value, c.currency))}</td>` +
    `<td class="num">${esc(money(c.average_order_value, c.currency))}</td><td>${esc(c.last_order_at.slice(0, 10))}</td>` +
    `<td class="num">${int(c.days_since_last_order)}</td></tr>`).join("") ||
    '<tr><td colspan="6" class="muted">no customers in this segment</td></tr>';
}

/** @param {any} clv */
function drawClv(clv) {
  const max = Math.max(1, ...clv.buckets.map((/** @type {any} */ b) => b.customers));
  const label = (/** @type {any} */ b) => b.to ? `${money(b.from, clv.currency)} – ${money(b.to, clv.currency)}` : `${money(b.from, clv.currency)} +`;
  $("cust-clv").innerHTML = clv.buckets.map((/** @type {any} */ b) =>
    `<div class="bar-row"><span class="bar-label">${esc(label(b))}</span><span class="bar" data-w="${(b.customers / max * 100).toFixed(1)}"></span>` +
    `<span class="bar-value">${int(b.customers)}</span></div>`).join("");
  $("cust-clv").querySelectorAll(".bar").forEach((/** @type {HTMLElement} */ b) => { b.style.width = b.dataset.w + "%"; });
  const m = (/** @type {number|null} */ v) => (v === null ? "–" : money(v, clv.currency));
  $("cust-clv-stats").textContent = `median ${m(clv.p50)} · p75 ${m(clv.p75)} · p90 ${m(clv.p90)} · p99 ${m(clv.p99)} · mean ${m(clv.mean)}`;
}

/** @param {any} c */
function drawCohorts(c) {
  const width = Math.max(0, ...c.cohorts.map((/** @type {any} */ x) => x.retention.length));
  let html = '<div class="scroll"><table class="heat cohorts"><tr><th>cohort</th><th class="num">customers</th>' +
    Array.from({ length: width }, (_, k) => `<th>+${k}</th>`).join("") + "</tr>";
  for (const row of c.cohorts) {
    html += `<tr><th>${esc(row.cohort.slice(0, 7))}</th><td class="num">${int(row.customers)}</td>` +
      row.retention.map((/** @type {number} */ r, /** @type {number} */ k) =>
        `<td title="${esc(row.cohort.slice(0, 7))} +${k}: ${int(row.active[k])} of ${int(row.customers)}" data-alpha="${k === 0 ? "0" : Math.min(1, r * 4).toFixed(2)}">${k === 0 ? "" : esc((r * 100).toFixed(1))}</td>`).join("") + "</tr>";
  }
  $("cust-cohorts").innerHTML = c.cohorts.length ? html + "</table></div>" : '<p class="muted">no cohorts yet</p>';
  $("cust-cohorts").querySelectorAll("td[data-alpha]").forEach((/** @type {HTMLElement} */ td) => { td.style.background = `rgba(36,87,214,${td.dataset.alpha})`; });
}

/** @param {any} d */
function drawDays(d) {
  if (!daysChart) daysChart = lineChart($("chart-new-returning"), ["new", "returning"], { bars: false });
  const xs = d.days.map((/** @type {any} */ x) => Date.parse(x.day + "T00:00:00Z") / 1000);
  daysChart.setData([xs, d.days.map((/** @type {any} */ x) => x.new_customers), d.days.map((/** @type {any} */ x) => x.returning_customers)]);
  const all = d.new_customers + d.returning_customers;
  $("cust-new-share").textContent = all ? pct(d.new_customers / all) : "–";
  $("chart-new-returning").dataset.drawn = String(d.days.length);
}

async function load() {
  const segment = $("cust-segment").value;
  showState($("customers-state"), "loading…", "muted");
  try {
    const [s, clv, cohorts, days] = await Promise.all([
      api(`/api/analytics/customers/segments?segment=${encodeURIComponent(segment)}&limit=50`),
      api("/api/analytics/customers/clv"),
      api("/api/analytics/customers/cohorts?months=12"),
      api("/api/analytics/customers/new-vs-returning"),
    ]);
    showState($("customers-state"), null);
    drawSegments(s);
    drawClv(clv);
    drawCohorts(cohorts);
    drawDays(days);
  } catch (e) {
    showState($("customers-state"), "No customer figures: " + e.message);
  }
}

export const customers = {
  enter() { load(); },
  init() {
    $("cust-segment").addEventListener("change", load);
    $("cust-segments").addEventListener("click", (/** @type {Event} */ e) => {
      const row = /** @type {HTMLElement} */ (/** @type {HTMLElement} */ (e.target).closest("tr[data-segment]"));
      if (row) { $("cust-segment").value = row.dataset.segment; load(); }
    });
  },
};
