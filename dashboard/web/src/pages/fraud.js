// @ts-check
// Fraud review: the queue (highest risk first), an order opened beside the
// customer's usual orders with its risk breakdown, approve or reject (with
// a confirmation), the review log and what became of reviewed orders.
import { $, esc, int, money, pct, when, words } from "../lib/format.js";
import { api } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { Table } from "../lib/table.js";
import { showState, toast } from "../lib/toast.js";

/** @type {uPlot|null} */
let chart = null;
let timer = 0;
/** @type {Table|null} */
let queue = null;
let openId = "";

const PAST = { approve: "approved", reject: "rejected" };

function queueTable() {
  if (queue) return queue;
  queue = new Table($("fraud-queue-table"), [
    { key: "order_id", label: "order", html: (o) => `<span class="id">${esc(o.order_id)}</span>` },
    { key: "customer_id", label: "customer" },
    { key: "risk_score", label: "risk", num: true, html: (o) => `<b class="${o.risk_score >= 80 ? "bad" : ""}">${esc(o.risk_score)}</b>` },
    { key: "risk_reasons", label: "reasons", html: (o) => `<span class="reasons">${esc((o.risk_reasons || []).join("; "))}</span>`, value: (o) => (o.risk_reasons || []).join(";") },
    { key: "order_total", label: "total", num: true, html: (o) => esc(money(o.order_total, o.currency)) },
    { key: "flagged_at", label: "flagged", html: (o) => esc(when(o.flagged_at)) },
    { key: "decide", label: "decision", html: (o) =>
      `<span class="decide"><button class="ok" data-review="approve" data-id="${esc(o.order_id)}">Approve</button>` +
      `<button class="danger" data-review="reject" data-id="${esc(o.order_id)}">Reject</button></span>` },
  ], { empty: "Nothing to review.", onOpen: (o) => showContext(o.order_id), rowKey: (o) => o.order_id, rowClass: (o) => (o.order_id === openId ? "open" : "") });
  return queue;
}

async function load() {
  const stats = loadStats();
  try {
    const q = await api("/api/dashboard/fraud-queue");
    queueTable().set(q.orders);
    $("fraud-empty").hidden = q.orders.length > 0;
    showState($("fraud-state"), null);
  } catch (e) { showState($("fraud-state"), "Cannot read the review queue: " + e.message); }
  await stats;
}

async function loadStats() {
  try {
    const [s, audit] = await Promise.all([api("/api/dashboard/fraud-stats?bucket=day"), api("/api/dashboard/fraud-audit?days=30&limit=100")]);
    $("fraud-flagged-share").textContent = pct(s.totals.flagged_share);
    $("fraud-rate").textContent = pct(s.totals.fraud_rate);
    $("fraud-fp-rate").textContent = pct(s.totals.false_positive_rate);
    $("fraud-screened").textContent = int(s.totals.screened);
    if (!chart) chart = lineChart($("chart-fraud"), ["flagged share %", "fraud rate %", "false-positive rate %"]);
    const xs = s.series.map((/** @type {any} */ w) => Date.parse(w.window_start) / 1000);
    const v = (/** @type {string} */ key) => s.series.map((/** @type {any} */ w) => (w[key] === null ? null : Number(w[key]) * 100));
    chart.setData([xs, v("flagged_share"), v("fraud_rate"), v("false_positive_rate")]);
    chart.setScale("x", { min: Date.parse(s.from) / 1000, max: Date.parse(s.to) / 1000 });
    $("fraud-reasons").innerHTML = s.reasons.map((/** @type {any} */ r) =>
      `<tr><td>${esc(r.reason)}</td><td class="num">${int(r.orders)}</td><td class="num">${int(r.flagged)}</td></tr>`).join("") ||
      '<tr><td colspan="3" class="muted">no screened orders in 30 days</td></tr>';
    $("fraud-audit").innerHTML = audit.reviews.map((/** @type {any} */ r) =>
      `<tr data-order="${esc(r.order_id)}"><td>${esc(when(r.reviewed_at))}</td><td class="id">${esc(r.order_id)}</td><td>${esc(r.customer_id)}</td><td>${esc(r.review)}</td>` +
      `<td>${esc(r.reviewer || "–")}</td><td>${esc(r.review_note || "")}</td><td class="outcome">…</td></tr>`).join("") ||
      '<tr><td colspan="7" class="muted">no reviews in 30 days</td></tr>';
    outcomes(audit.reviews.slice(0, 20));
  } catch (e) { showState($("fraud-state"), "Cannot read the fraud figures: " + e.message); }
}

/** What became of the latest reviewed orders (an approved one may still be cancelled later, e.g. out of stock). @param {any[]} reviews */
async function outcomes(reviews) {
  await Promise.all(reviews.map(async (r) => {
    const cell = $("fraud-audit").querySelector(`tr[data-order="${CSS.escape(r.order_id)}"] .outcome`);
    try {
      const o = await api(`/api/orders/${encodeURIComponent(r.order_id)}`);
      if (cell) cell.innerHTML = `<span class="status ${esc(o.status)}">${esc(o.status)}</span>${o.cancel_reason ? ` (${esc(words(o.cancel_reason))})` : ""}`;
    } catch { if (cell) cell.textContent = "–"; }
  }));
}

/** The order beside the customer's usual orders, with its risk breakdown. @param {string} id */
async function showContext(id) {
  openId = id;
  queueTable().render();
  $("fraud-context-panel").hidden = false;
  $("fraud-context").innerHTML = '<p class="muted">loading…</p>';
  try {
    const c = await api(`/api/dashboard/fraud-context/${encodeURIComponent(id)}`);
    const o = c.order, u = c.customer.usual || {}, cur = o.currency || "USD";
    const usualPlace = (c.customer.places || []).some((/** @type {any} */ p) => p.address_key === o.address_key);
    const usualIp = (c.customer.ips || []).some((/** @type {any} */ p) => p.client_ip === o.client_ip);
    const avg = Number(u.average_total);
    const reasons = c.screening ? (c.screening.reasons || []) : [];
    $("fraud-context").innerHTML =
      `<div class="grid2"><div><h3>Order <span class="id">${esc(o.order_id)}</span></h3>` +
      `<p>${esc(money(o.total, cur))} · ${esc(when(o.placed_at))}</p>` +
      `<p>ships to ${esc(o.city)}, ${esc(o.country)} ${usualPlace ? "(a usual place)" : "<b>(new place)</b>"}</p>` +
      `<p>from IP ${esc(o.client_ip)} ${usualIp ? "(usual)" : "<b>(new IP)</b>"}</p>` +
      `<h4>Risk breakdown</h4>` + (c.screening
        ? `<p>score <b>${esc(c.screening.score)}</b> by model ${esc(c.screening.model_version)}</p><ul>${reasons.map((/** @type {string} */ r) => `<li>${esc(r)}</li>`).join("") || "<li>no single reason</li>"}</ul>`
        : "<p>–</p>") +
      `</div><div><h3>The customer's usual</h3>` +
      `<p>${int(u.orders)} earlier orders, average ${esc(money(u.average_total, cur))}, largest ${esc(money(u.largest_total, cur))}` +
      `${avg > 0 ? ` — this one is <b>${esc((Number(o.total) / avg).toFixed(1))}×</b> the average` : ""}</p>` +
      `<p>first order ${esc(when(u.first_order_at)) || "— this is the first"}</p>` +
      `<p>places: ${(c.customer.places || []).map((/** @type {any} */ p) => `${esc(p.city)}, ${esc(p.country)} ×${int(p.orders)}`).join("; ") || "–"}</p>` +
      `<p>IPs: ${(c.customer.ips || []).map((/** @type {any} */ p) => `${esc(p.client_ip)} ×${int(p.orders)}`).join("; ") || "–"}</p>` +
      `<h4>Earlier flags</h4><p>${(c.customer.earlier_flags || []).map((/** @type {any} */ f) => `${esc(when(f.scored_at))} score ${esc(f.score)} → ${esc(f.review || "awaiting review")}`).join("<br>") || "none"}</p>` +
      `</div></div>`;
  } catch (e) { $("fraud-context").innerHTML = `<p class="bad">${esc(e.message)}</p>`; }
}

/** @param {HTMLButtonElement} button */
async function review(button) {
  const decision = /** @type {"approve"|"reject"} */ (button.dataset.review);
  const id = button.dataset.id || "";
  const note = $("fraud-note").value.trim();
  if (decision === "reject" && !window.confirm(`Reject order ${id}? It is cancelled and its stock released.${note ? "" : " (No note given.)"}`)) return;
  button.disabled = true;
  const body = { decision, ...(note ? { note } : {}), ...($("fraud-reviewer").value.trim() ? { reviewer: $("fraud-reviewer").value.trim() } : {}) };
  try {
    const r = await api(`/api/admin/orders/${encodeURIComponent(id)}/review`, { method: "POST", json: body });
    const status = r.status || (r.order && r.order.status) || "";
    toast(`${id}: ${PAST[decision]}${status ? " → " + status : ""}`);
    const q = queueTable();
    q.set(q.rows.filter((o) => o.order_id !== id));
    $("fraud-empty").hidden = q.rows.length > 0;
    $("fraud-note").value = "";
    if (openId === id) { $("fraud-context-panel").hidden = true; openId = ""; }
    loadStats();
  } catch (e) {
    showState($("fraud-state"), `Cannot ${decision} ${id}: ${e.message}`);
    button.disabled = false;
  }
}

export const fraud = {
  enter() { load(); timer = window.setInterval(load, 10000); },
  leave() { clearInterval(timer); },
  init() {
    $("fraud-queue-table").addEventListener("click", (/** @type {Event} */ e) => {
      const button = /** @type {HTMLButtonElement} */ (e.target);
      if (button.dataset && button.dataset.review) review(button);
    });
    $("fraud-context-close").addEventListener("click", () => { $("fraud-context-panel").hidden = true; openId = ""; queueTable().render(); });
  },
};
