// @ts-check
// System: service status, throughput, error rate by route, ingest and
// confirm latency over time, consumer lag history, the dead letters with
// retry, recent errors, and the admin audit.
import { $, esc, int, pct, when } from "../lib/format.js";
import { api } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { listen, unlisten } from "../lib/live.js";
import { latency, parse, requestRates } from "../lib/metrics.js";
import { showState, toast } from "../lib/toast.js";
import { role } from "../lib/session.js";
import { duration, operations } from "../lib/operations.js";

const HISTORY = 300; // points kept (10 minutes at one every 2 s)
/** @type {{throughput: uPlot|null, latency: uPlot|null, lag: uPlot|null}} */
const charts = { throughput: null, latency: null, lag: null };
const history = { /** @type {number[]} */ t: [], /** @type {(number|null)[][]} */ lat: [[], [], [], [], []], /** @type {number[]} */ lag: [] };
/** @type {any[]|null} */
let lastMetrics = null;
/** The live feed's latest confirm latency, for the latency history. @type {any} */
let confirmLatency = null;
let timer = 0;

/** @param {any} snapshot */
function drawLive(snapshot) {
  $("sys-orders").textContent = Number(snapshot.orders_per_s).toFixed(1);
  $("sys-events").textContent = Number(snapshot.events_per_s).toFixed(1);
  const l = snapshot.confirm_latency;
  confirmLatency = l;
  $("sys-latency").textContent = l ? `${l.p50_ms} / ${l.p95_ms} / ${l.p99_ms} ms` : "–";
  if (charts.throughput) {
    const rows = snapshot.per_second || [];
    charts.throughput.setData([rows.map((/** @type {number[]} */ r) => r[0]), rows.map((/** @type {number[]} */ r) => r[1]), rows.map((/** @type {number[]} */ r) => r[2])]);
  }
}

/** green, yellow or red, with why. @param {string} id @param {"ok"|"warn"|"bad"} level @param {string} text */
function light(id, level, text) {
  const el = $(id);
  el.className = "light " + level;
  el.querySelector("b").textContent = text;
}

async function poll() {
  const now = Date.now() / 1000;
  const [health, ready, metricsText] = await Promise.all([
    api("/api/dashboard/health").catch((e) => ({ error: e.message })),
    fetch("/readyz").then((r) => r.json()).catch(() => null),
    fetch("/metrics").then((r) => (r.ok ? r.text() : "")).catch(() => ""),
  ]);
  // Service status.
  if (ready) {
    const failing = Object.entries(ready.components || {}).filter(([, c]) => /** @type {any} */ (c).state === "failing");
    const degraded = Object.entries(ready.components || {}).filter(([, c]) => /** @type {any} */ (c).state !== "running" && /** @type {any} */ (c).state !== "failing");
    light("light-service", failing.length ? "bad" : degraded.length ? "warn" : "ok",
      failing.length ? "failing: " + failing.map(([n]) => n).join(", ") : degraded.length ? "starting: " + degraded.map(([n]) => n).join(", ") : "ready");
    $("components").innerHTML = Object.entries(ready.components || {}).map(([name, c]) =>
      `<tr><td>${esc(name)}</td><td><span class="dot ${(/** @type {any} */ (c)).state === "failing" ? "bad" : (/** @type {any} */ (c)).state === "running" ? "ok" : "warn"}"></span>${esc((/** @type {any} */ (c)).state)}</td><td>${esc((/** @type {any} */ (c)).detail || "")}</td></tr>`).join("");
  } else light("light-service", "bad", "no answer from /readyz");
  light("light-nats", health.nats === "connected" ? "ok" : "bad", health.nats || "unknown");
  // Lag and dead letters.
  if (health.nats === "connected") {
    $("sys-dlq").textContent = int(health.dlq_size);
    const pending = health.consumers.reduce((/** @type {number} */ n, /** @type {any} */ c) => n + c.pending, 0);
    light("light-lag", pending > 10000 ? "bad" : pending > 1000 ? "warn" : "ok", `${int(pending)} pending`);
    light("light-dlq", health.dlq_size > 0 ? "warn" : "ok", `${int(health.dlq_size)} dead letters`);
    $("consumers").innerHTML = health.consumers.map((/** @type {any} */ c) =>
      `<tr><td>${esc(c.stream)}</td><td>${esc(c.consumer)}</td><td class="num">${int(c.pending)}</td><td class="num">${int(c.ack_pending)}</td><td class="num">${int(c.redelivered)}</td></tr>`).join("");
    history.lag.push(pending);
  } else {
    $("sys-dlq").textContent = "–";
    $("consumers").innerHTML = '<tr><td colspan="5" class="muted">NATS is unavailable: live figures, lag and the DLQ are unknown</td></tr>';
    light("light-lag", "bad", "unknown");
    history.lag.push(null);
  }
  // Requests and latency from two readings of /metrics.
  const samples = metricsText ? parse(metricsText) : null;
  let ingestLatency = null;
  if (samples && lastMetrics) {
    const rates = requestRates(lastMetrics, samples);
    const errors = rates.reduce((n, r) => n + r.server, 0), total = rates.reduce((n, r) => n + r.total, 0);
    light("light-errors", errors === 0 ? "ok" : errors / total > 0.01 ? "bad" : "warn", total ? `${pct(errors / total)} 5xx` : "no requests");
    $("routes").innerHTML = rates.map((r) =>
      `<tr class="${r.server ? "low" : ""}"><td>${esc(r.route)}</td><td class="num">${int(r.total)}</td><td class="num">${pct(r.client / r.total)}</td><td class="num">${pct(r.server / r.total)}</td></tr>`).join("") ||
      '<tr><td colspan="4" class="muted">no requests in the last 2 s</td></tr>';
    ingestLatency = latency(lastMetrics, samples, "/api/orders");
  }
  if (samples) lastMetrics = samples;
  history.t.push(now);
  history.lat[0].push(ingestLatency ? ingestLatency.p50 : null);
  history.lat[1].push(ingestLatency ? ingestLatency.p95 : null);
  history.lat[2].push(ingestLatency ? ingestLatency.p99 : null);
  history.lat[3].push(confirmLatency ? Number(confirmLatency.p95_ms) : null);
  history.lat[4].push(confirmLatency ? Number(confirmLatency.p99_ms) : null);
  if (history.t.length > HISTORY) { history.t.shift(); history.lag.shift(); history.lat.forEach((s) => s.shift()); }
  if (charts.latency) charts.latency.setData([history.t, ...history.lat]);
  if (charts.lag) charts.lag.setData([history.t, history.lag]);
}

async function loadDlq() {
  try {
    const d = await api("/api/admin/dlq?limit=20");
    $("dlq").innerHTML = d.dead_letters.map((/** @type {any} */ l) =>
      `<tr><td>${esc(when(l.dead_lettered_at))}</td><td>${esc(l.source)}</td><td>${esc(l.original_subject)}</td><td>${esc(l.reason)}</td>` +
      `<td><details><summary>payload</summary><pre>${esc(l.payload.slice(0, 2000))}</pre></details></td><td><button data-retry="${esc(l.seq)}">Retry</button></td></tr>`).join("") ||
      '<tr><td colspan="6" class="muted">no dead letters</td></tr>';
    $("recent-errors").innerHTML = d.dead_letters.slice(0, 5).map((/** @type {any} */ l) => `<li>${esc(when(l.dead_lettered_at))}: ${esc(l.reason)}</li>`).join("") || "<li class=\"muted\">none</li>";
  } catch (e) { showState($("system-state"), "Cannot read the dead letters: " + e.message); }
}

async function loadAudit() {
  try {
    const a = await api("/api/admin/audit?limit=20");
    $("audit").innerHTML = a.actions.map((/** @type {any} */ x) =>
      `<tr data-action="${esc(x.action)}" class="${x.status >= 400 ? "low" : ""}"><td>${esc(when(x.at))}</td><td>${esc(x.actor)}</td><td>${esc(x.action)}</td><td>${esc(x.target)}</td><td>${esc(x.status ?? "")}</td></tr>`).join("")
      || '<tr><td colspan="5" class="muted">no admin actions yet</td></tr>';
  } catch (e) { showState($("system-state"), "Cannot read the audit: " + e.message); }
}

/** Accepted to confirmed, shipped and delivered over the last 30 days. */
async function loadFulfilment() {
  const to = new Date().toISOString().slice(0, 10);
  const from = new Date(Date.now() - 29 * 86400000).toISOString().slice(0, 10);
  try {
    const o = await operations(from, to);
    $("fulfilment").innerHTML = o.fulfilment.map((/** @type {any} */ f) =>
      `<tr><td>${esc(f.status)}</td><td class="num">${int(f.orders)}</td><td class="num">${esc(duration(f.mean_hours))}</td>` +
      `<td class="num">${esc(duration(f.p50_hours))}</td><td class="num">${esc(duration(f.p90_hours))}</td></tr>`).join("") ||
      '<tr><td colspan="5" class="muted">no orders confirmed in the last 30 days</td></tr>';
  } catch (e) { showState($("system-state"), "Cannot read the fulfilment times: " + e.message); }
}

export const system = {
  enter() {
    const admin = role() === "admin";
    $("audit-panel").classList.toggle("hidden", !admin);
    $("dlq-panel").classList.toggle("hidden", !admin);
    if (admin) { loadAudit(); loadDlq(); }
    loadFulfilment();
    if (!charts.throughput) {
      charts.throughput = lineChart($("chart-system"), ["orders/s", "events/s"]);
      charts.latency = lineChart($("chart-latency"), ["ingest p50", "ingest p95", "ingest p99", "confirm p95", "confirm p99"], { yLabel: "ms" });
      charts.lag = lineChart($("chart-lag"), ["pending messages"]);
    }
    listen(drawLive);
    poll();
    timer = window.setInterval(poll, 2000);
  },
  leave() { unlisten(drawLive); clearInterval(timer); },
  init() {
    $("dlq").addEventListener("click", async (/** @type {Event} */ e) => {
      const seq = /** @type {HTMLElement} */ (e.target).dataset.retry;
      if (!seq || !window.confirm(`Send dead letter ${seq} back to where it came from?`)) return;
      try {
        await api(`/api/admin/dlq/${seq}/retry`, { method: "POST" });
        toast(`dead letter ${seq} retried`);
        loadDlq();
      } catch (err) { showState($("system-state"), `Retry of ${seq} failed: ${err.message}`); }
    });
  },
};
