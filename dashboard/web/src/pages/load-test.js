// @ts-check
// Load test: runs the built-in open-loop generator against this instance
// (`POST /api/admin/load-test`, admins only, off unless `up` was started
// with --load-test-max-rate) and shows throughput and latency as it runs.
import { $, esc, int } from "../lib/format.js";
import { api } from "../lib/api.js";
import { lineChart } from "../lib/chart.js";
import { showState, toast } from "../lib/toast.js";

/** @type {uPlot|null} */
let chart = null;
let timer = 0;
const series = { /** @type {number[]} */ t: [], /** @type {number[]} */ rps: [], /** @type {number[]} */ p95: [], /** @type {number[]} */ p99: [] };
let lastCompleted = 0, lastAt = 0;

/** @param {any} run */
function draw(run) {
  const p = run.report ? run.report.latency_ms : run.progress.latency_ms;
  $("lt-status").textContent = run.status;
  $("lt-status").className = "pill " + (run.status === "running" ? "up" : run.status === "failed" ? "bad" : "");
  $("lt-throughput").textContent = `${Number(run.throughput_rps).toFixed(0)} /s`;
  $("lt-sent").textContent = `${int(run.progress.completed)} answered · ${int(run.progress.errors)} errors`;
  $("lt-latency").textContent = `${p.p50.toFixed(1)} / ${p.p95.toFixed(1)} / ${p.p99.toFixed(1)} ms`;
  $("lt-statuses").textContent = Object.entries(run.progress.statuses).map(([code, n]) => `${code}: ${int(n)}`).join(" · ") || "–";
  $("lt-error").textContent = run.error || "";
  const now = Date.now() / 1000;
  if (run.status === "running" && lastAt) {
    series.t.push(now);
    series.rps.push((run.progress.completed - lastCompleted) / Math.max(0.001, now - lastAt));
    series.p95.push(run.progress.latency_ms.p95);
    series.p99.push(run.progress.latency_ms.p99);
    if (chart) chart.setData([series.t, series.rps, series.p95, series.p99]);
  }
  lastCompleted = run.progress.completed;
  lastAt = now;
  $("lt-run").disabled = run.status === "running";
  $("lt-stop").disabled = run.status !== "running";
}

async function poll() {
  try {
    const r = await api("/api/admin/load-test");
    const f = /** @type {HTMLFormElement} */ ($("lt-form"));
    $("lt-limits").textContent = r.limits.enabled
      ? `This instance allows up to ${r.limits.max_rate} orders/s for ${r.limits.max_duration_secs} s over ${r.limits.max_connections} connections.`
      : "Load tests are off on this instance: start `orderstream up --load-test-max-rate 500` to allow them.";
    f.rate.max = String(r.limits.max_rate || 1);
    f.duration_secs.max = String(r.limits.max_duration_secs);
    $("lt-run").disabled = !r.limits.enabled;
    if (r.run) draw(r.run);
    if (!r.run || r.run.status !== "running") { clearInterval(timer); timer = 0; }
  } catch (e) { showState($("lt-state"), "Cannot read the load test: " + e.message); }
}

function watch() {
  if (!timer) timer = window.setInterval(poll, 500);
}

async function start(/** @type {Event} */ e) {
  e.preventDefault();
  const f = /** @type {HTMLFormElement} */ ($("lt-form"));
  const body = { rate: Number(f.rate.value), duration_secs: Number(f.duration_secs.value), connections: Number(f.connections.value) };
  try {
    showState($("lt-state"), null);
    series.t = []; series.rps = []; series.p95 = []; series.p99 = [];
    lastCompleted = 0; lastAt = 0;
    if (!chart) chart = lineChart($("chart-load"), ["answered/s", "p95 ms", "p99 ms"], { height: 240 });
    chart.setData([[], [], [], []]);
    const run = await api("/api/admin/load-test", { method: "POST", json: body });
    toast(`load test ${run.id} started`);
    draw(run);
    watch();
  } catch (err) {
    showState($("lt-state"), err.message + (err.field ? ` (${esc(err.field)})` : ""));
  }
}

export const loadTest = {
  enter() {
    if (!chart) chart = lineChart($("chart-load"), ["answered/s", "p95 ms", "p99 ms"], { height: 240 });
    poll().then(() => { if ($("lt-status").textContent === "running") watch(); });
  },
  leave() { clearInterval(timer); timer = 0; },
  init() {
    $("lt-form").addEventListener("submit", start);
    $("lt-stop").addEventListener("click", async () => {
      try { await api("/api/admin/load-test", { method: "DELETE" }); toast("stopping the load test"); } catch (e) { showState($("lt-state"), e.message); }
    });
  },
};
