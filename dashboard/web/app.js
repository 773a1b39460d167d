// orderstream dashboard: plain JavaScript over the dashboard API, charts by
// uPlot. Every value from the server is escaped before it reaches the DOM.
"use strict";

const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const money = (v, currency = "USD") => {
  const n = Number(v);
  return Number.isFinite(n) ? n.toLocaleString(undefined, { style: "currency", currency, maximumFractionDigits: 2 }) : "–";
};
const int = (v) => (Number.isFinite(Number(v)) ? Math.round(Number(v)).toLocaleString() : "–");
const pct = (v) => (v === null || v === undefined ? "–" : (Number(v) * 100).toFixed(1) + "%");
const when = (t) => (t ? new Date(t).toLocaleString() : "");
const STATUSES = ["pending", "flagged", "reserved", "confirmed", "processing", "shipped", "delivered", "cancelled"];

function toast(message) {
  const t = $("toast");
  t.textContent = message;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 5000);
}

// The API key lives for this browser tab only (sessionStorage).
const KEY_STORE = "orderstream-api-key";
const apiKey = () => sessionStorage.getItem(KEY_STORE) || "";
function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: "Bearer " + key } : extra;
}

// Which pages each role may open (the server refuses the rest anyway).
const PAGES_FOR = {
  admin: ["overview", "sales", "orders", "fraud", "inventory", "forecast", "system"],
  analyst: ["overview", "sales", "inventory", "forecast", "system"],
  viewer: ["overview", "sales", "inventory", "forecast", "system"],
  producer: [],
};
let role = null;

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) {
    const message = body && body.message ? body.message : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

// ---- pages -----------------------------------------------------------------
const pages = {};
let current = null;
function show(name) {
  if (!pages[name]) name = "overview";
  const allowed = PAGES_FOR[role] || [];
  if (!allowed.includes(name)) {
    document.querySelectorAll(".page").forEach((p) => p.classList.remove("active"));
    if (current && pages[current].leave) pages[current].leave();
    current = null;
    if (allowed.length) return show(allowed[0]);
    return;
  }
  document.querySelectorAll(".page").forEach((p) => p.classList.toggle("active", p.id === "page-" + name));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === name));
  if (current && pages[current].leave) pages[current].leave();
  current = name;
  pages[name].enter();
}
window.addEventListener("hashchange", () => show(location.hash.slice(1)));

function chart(el, title, series, height = 220) {
  const width = Math.max(300, el.clientWidth || el.parentElement.clientWidth - 32);
  const colors = ["#2457d6", "#e67e22", "#1e8e3e", "#8e44ad"];
  return new uPlot({
    title, width, height,
    series: [{}, ...series.map((label, i) => ({ label, stroke: colors[i % colors.length], width: 2 }))],
    axes: [{}, { size: 70 }],
  }, [[], ...series.map(() => [])], el);
}

// ---- live (WebSocket) ------------------------------------------------------
let live = null;
let liveSocket = null;
const liveListeners = new Set();
function connectLive() {
  if (!(PAGES_FOR[role] || []).length) { liveSocket = null; return; }
  // A browser cannot set headers on a WebSocket: the key rides in the query.
  const query = apiKey() ? "?access_token=" + encodeURIComponent(apiKey()) : "";
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/dashboard/ws" + query);
  liveSocket = ws;
  ws.onopen = () => { $("ws-state").textContent = "live"; $("ws-state").classList.add("up"); };
  ws.onclose = () => {
    $("ws-state").textContent = "reconnecting"; $("ws-state").classList.remove("up");
    setTimeout(connectLive, 1000);
  };
  ws.onmessage = (m) => {
    try { live = JSON.parse(m.data); } catch { return; }
    liveListeners.forEach((f) => f(live));
  };
}

// ---- Overview --------------------------------------------------------------
let liveChart = null;
function drawLive(snapshot) {
  $("kpi-rate").textContent = Number(snapshot.orders_per_s).toFixed(1);
  $("recent-orders").innerHTML = (snapshot.recent_orders || []).map((o) =>
    `<tr data-order="${esc(o.order_id)}"><td>${esc(o.order_id)}</td><td>${esc(o.customer_id ?? "–")}</td><td class="num">${esc(o.items)}</td>` +
    `<td class="num">${esc(money(o.total, o.currency))}</td><td>${esc(when(o.received_at))}</td></tr>`).join("");
  if (liveChart) {
    const rows = snapshot.per_second || [];
    liveChart.setData([rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])]);
  }
}
async function loadSummary() {
  try {
    const s = await api("/api/dashboard/summary");
    $("kpi-revenue").textContent = money(s.revenue, s.currency);
    $("kpi-orders").textContent = int(s.orders);
    $("kpi-aov").textContent = s.aov === null ? "–" : money(s.aov, s.currency);
    $("kpi-success").textContent = pct(s.success_rate);
  } catch (e) { toast("summary: " + e.message); }
}
pages.overview = {
  enter() {
    if (!liveChart) liveChart = chart($("chart-live"), "", ["orders/s", "events/s"]);
    liveListeners.add(drawLive);
    if (live) drawLive(live);
    loadSummary();
    this.timer = setInterval(loadSummary, 5000);
  },
  leave() { liveListeners.delete(drawLive); clearInterval(this.timer); },
};

// ---- Sales -----------------------------------------------------------------
let revenueChart = null;
function isoFromLocal(v) { return v ? new Date(v).toISOString() : ""; }
async function loadSales() {
  const form = new FormData($("sales-form"));
  const params = new URLSearchParams({ window: form.get("window"), currency: form.get("currency") || "USD" });
  if (form.get("from")) params.set("from", isoFromLocal(form.get("from")));
  if (form.get("to")) params.set("to", isoFromLocal(form.get("to")));
  try {
    const r = await api("/api/dashboard/revenue?" + params);
    const cur = r.currency;
    $("sales-current").textContent = money(r.totals.current, cur);
    $("sales-previous").textContent = money(r.totals.previous, cur);
    $("sales-change").textContent = pct(r.totals.change);
    const byWindow = new Map();
    const add = (rows, idx) => rows.forEach((w) => {
      const t = Date.parse(w.window_start) / 1000;
      const e = byWindow.get(t) || [0, 0];
      e[idx] += Number(w.revenue);
      byWindow.set(t, e);
    });
    add(r.windows, 0); add(r.previous, 1);
    const xs = [...byWindow.keys()].sort((a, b) => a - b);
    if (!revenueChart) revenueChart = chart($("chart-revenue"), "", ["this period", "previous period"], 260);
    revenueChart.setData([xs, xs.map((x) => byWindow.get(x)[0]), xs.map((x) => byWindow.get(x)[1])]);
    const cats = new Map();
    r.windows.forEach((w) => { const c = cats.get(w.category) || [0, 0]; c[0] += Number(w.revenue); cats.set(w.category, c); });
    r.previous.forEach((w) => { const c = cats.get(w.category) || [0, 0]; c[1] += Number(w.revenue); cats.set(w.category, c); });
    $("sales-categories").innerHTML = [...cats.entries()].sort((a, b) => b[1][0] - a[1][0]).map(([c, [now, before]]) =>
      `<tr><td>${esc(c)}</td><td class="num">${esc(money(now, cur))}</td><td class="num">${esc(money(before, cur))}</td>` +
      `<td class="num">${before > 0 ? esc(pct((now - before) / before)) : "–"}</td></tr>`).join("");
    const range = new URLSearchParams({ from: r.from, to: r.to, currency: cur });
    const [top, heat] = await Promise.all([api("/api/dashboard/top-products?" + range), api("/api/dashboard/heatmap?" + range)]);
    $("top-products").innerHTML = top.products.map((p) =>
      `<tr><td>${esc(p.name || p.product_id)}</td><td>${esc(p.category)}</td><td class="num">${int(p.units)}</td><td class="num">${esc(money(p.revenue, cur))}</td></tr>`).join("");
    drawHeatmap(heat.cells, cur);
  } catch (e) { toast("sales: " + e.message); }
}
function drawHeatmap(cells, currency) {
  const grid = Array.from({ length: 7 }, () => Array(24).fill(0));
  cells.forEach((c) => { grid[c.weekday][c.hour] = Number(c.revenue); });
  const max = Math.max(1, ...grid.flat());
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  let html = '<table class="heat"><tr><th></th>' + Array.from({ length: 24 }, (_, h) => `<th>${h}</th>`).join("") + "</tr>";
  grid.forEach((row, d) => {
    html += `<tr><th>${days[d]}</th>` + row.map((v) => {
      const a = (v / max).toFixed(2);
      return `<td title="${esc(money(v, currency))}" data-alpha="${a}"></td>`;
    }).join("") + "</tr>";
  });
  $("heatmap").innerHTML = html + "</table>";
  // Styles set through the DOM, not in markup: the page's CSP has no inline styles.
  $("heatmap").querySelectorAll("td[data-alpha]").forEach((td) => { td.style.background = `rgba(36,87,214,${td.dataset.alpha})`; });
}
pages.sales = { enter() { loadSales(); } };
$("sales-form").addEventListener("submit", (e) => { e.preventDefault(); loadSales(); });

// ---- Orders: a virtualised table over keyset pages ------------------------
const ROW = 32;
const orders = { rows: [], cursor: null, more: false, loading: false, selected: new Set(), seq: 0 };
function ordersQuery() {
  const form = new FormData($("orders-form"));
  const params = new URLSearchParams();
  for (const [k, v] of form.entries()) if (v) params.set(k, v);
  params.set("page_size", "100");
  return params;
}
// A new search supersedes one in flight (its answer is dropped); scrolling
// loads the next page only when nothing is loading.
async function loadOrders(reset) {
  if (!reset && (orders.loading || !orders.more)) return;
  const seq = ++orders.seq;
  orders.loading = true;
  const params = ordersQuery();
  if (reset) { orders.rows = []; orders.cursor = null; orders.more = false; orders.selected.clear(); $("orders-viewport").scrollTop = 0; renderOrders(); }
  if (orders.cursor) params.set("cursor", orders.cursor);
  try {
    const page = await api("/api/admin/orders?" + params);
    if (seq !== orders.seq) return;
    orders.rows.push(...page.orders);
    orders.cursor = page.next_cursor;
    orders.more = page.has_more;
    $("orders-info").textContent = `${orders.rows.length}${orders.more ? "+" : ""} orders · last page ${Number(page.elapsed_ms).toFixed(0)} ms`;
  } catch (e) {
    if (seq === orders.seq) toast("orders: " + e.message);
  }
  if (seq !== orders.seq) return;
  orders.loading = false;
  renderOrders();
  updateBulk();
}
function renderOrders() {
  const vp = $("orders-viewport");
  $("orders-spacer").style.height = orders.rows.length * ROW + "px";
  const first = Math.max(0, Math.floor(vp.scrollTop / ROW) - 10);
  const last = Math.min(orders.rows.length, first + Math.ceil(vp.clientHeight / ROW) + 20);
  let html = "";
  for (let i = first; i < last; i++) {
    const o = orders.rows[i];
    const checked = orders.selected.has(o.order_id) ? "checked" : "";
    html += `<div class="vrow" data-top="${i * ROW}" data-order="${esc(o.order_id)}">` +
      `<span><input type="checkbox" data-select="${esc(o.order_id)}" ${checked}></span><span>${esc(o.order_id)}</span>` +
      `<span>${esc(when(o.placed_at))}</span><span>${esc(o.customer_id)}</span>` +
      `<span><span class="status ${esc(o.status)}">${esc(o.status)}</span></span><span class="num">${esc(money(o.total, o.currency))}</span></div>`;
  }
  $("orders-rows").innerHTML = html;
  $("orders-rows").querySelectorAll(".vrow").forEach((row) => { row.style.top = row.dataset.top + "px"; });
  if (orders.more && last >= orders.rows.length - 20) loadOrders(false);
}
function updateBulk() {
  const n = orders.selected.size;
  $("selected-count").textContent = `${n} selected`;
  $("bulk-cancel").disabled = n === 0;
  $("bulk-ship").disabled = n === 0;
  const params = ordersQuery(); params.delete("page_size");
  $("export-link").href = "/api/admin/orders/export?" + params;
}
async function bulk(action) {
  const ids = [...orders.selected].slice(0, 100);
  try {
    const r = await api("/api/admin/orders/bulk", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ action, order_ids: ids }) });
    toast(`${action}: ${r.applied} applied, ${r.rejected} rejected, ${r.queued} queued`);
    const byId = new Map(r.results.map((x) => [x.order_id, x]));
    orders.rows.forEach((o) => { const x = byId.get(o.order_id); if (x && x.result === "applied") o.status = x.status; });
    orders.selected.clear();
    renderOrders(); updateBulk();
  } catch (e) { toast("bulk: " + e.message); }
}
async function openOrder(id) {
  const panel = $("order-panel");
  panel.hidden = false;
  $("order-panel-body").innerHTML = '<p class="muted">loading…</p>';
  try {
    const d = await api(`/api/admin/orders/${encodeURIComponent(id)}/detail`);
    const o = d.order;
    $("order-panel-body").innerHTML = `<h3>${esc(o.order_id)}</h3>` +
      `<p>${esc(o.customer_id)} · ${esc(money(o.total, o.currency))} · ${esc(o.payment_method || "")} · ${esc(o.city || "")} ${esc(o.country || "")}</p>` +
      `<h4>Items</h4><table>${d.items.map((i) => `<tr><td>${esc(i.product_id)}</td><td>${esc(i.category)}</td><td class="num">${esc(i.quantity)}</td><td class="num">${esc(money(i.line_total, i.currency))}</td></tr>`).join("")}</table>` +
      `<h4>Timeline</h4><ul class="timeline"><li>placed · ${esc(when(o.placed_at))}</li>` +
      d.events.map((e) => `<li>${esc(e.status || e.kind)}${e.reason ? " (" + esc(e.reason) + ")" : ""} · ${esc(when(e.occurred_at))}</li>`).join("") + "</ul>";
  } catch (e) { $("order-panel-body").innerHTML = `<p>${esc(e.message)}</p>`; }
}
pages.orders = { enter() { if (!orders.rows.length) loadOrders(true); } };
STATUSES.forEach((s) => { const o = document.createElement("option"); o.value = s; o.textContent = s; $("orders-form").status.appendChild(o); });
$("orders-form").addEventListener("submit", (e) => { e.preventDefault(); loadOrders(true); });
$("orders-viewport").addEventListener("scroll", () => requestAnimationFrame(renderOrders));
$("orders-rows").addEventListener("click", (e) => {
  const id = e.target.dataset.select;
  if (id) { if (e.target.checked) orders.selected.add(id); else orders.selected.delete(id); updateBulk(); return; }
  const row = e.target.closest(".vrow");
  if (row) openOrder(row.dataset.order);
});
$("panel-close").addEventListener("click", () => { $("order-panel").hidden = true; });
$("bulk-cancel").addEventListener("click", () => bulk("cancel"));
$("bulk-ship").addEventListener("click", () => bulk("mark_shipped"));
$("export-all").addEventListener("click", async () => {
  const filters = Object.fromEntries(ordersQuery()); delete filters.page_size;
  try {
    const job = await api("/api/admin/exports", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(filters) });
    toast("export started");
    const poll = async () => {
      const s = await api(job.status_url);
      if (s.status === "running") { $("orders-info").textContent = `exporting… ${int(s.rows)} rows`; setTimeout(poll, 1000); return; }
      if (s.status === "done") { $("orders-info").innerHTML = `export ready: <a href="${esc(s.download_url)}">${int(s.rows)} rows</a>`; }
      else toast("export failed: " + s.error);
    };
    poll();
  } catch (e) { toast("export: " + e.message); }
});

// ---- Fraud review ------------------------------------------------------------
let fraudChart = null;
async function loadFraud() {
  try {
    const q = await api("/api/dashboard/fraud-queue");
    $("fraud-empty").hidden = q.orders.length > 0;
    $("fraud-queue").innerHTML = q.orders.map((o) =>
      `<tr data-order="${esc(o.order_id)}"><td><a href="#fraud" data-context="${esc(o.order_id)}">${esc(o.order_id)}</a></td><td>${esc(o.customer_id)}</td><td class="num">${esc(o.risk_score)}</td>` +
      `<td>${esc((o.risk_reasons || []).join("; "))}</td><td class="num">${esc(money(o.order_total, o.currency || "USD"))}</td><td>${esc(when(o.flagged_at))}</td>` +
      `<td><button class="primary" data-review="approve" data-id="${esc(o.order_id)}">Approve</button> ` +
      `<button class="reject" data-review="reject" data-id="${esc(o.order_id)}">Reject</button></td></tr>`).join("");
  } catch (e) { toast("fraud queue: " + e.message); }
  loadFraudStats();
}
async function loadFraudStats() {
  try {
    const [s, audit] = await Promise.all([api("/api/dashboard/fraud-stats?bucket=day"), api("/api/dashboard/fraud-audit?days=30&limit=100")]);
    $("fraud-flagged-share").textContent = pct(s.totals.flagged_share);
    $("fraud-rate").textContent = pct(s.totals.fraud_rate);
    $("fraud-fp-rate").textContent = pct(s.totals.false_positive_rate);
    $("fraud-screened").textContent = int(s.totals.screened);
    if (!fraudChart) fraudChart = chart($("chart-fraud"), "", ["flagged share", "fraud rate", "false-positive rate"]);
    const xs = s.series.map((w) => Date.parse(w.window_start) / 1000);
    const v = (key) => s.series.map((w) => (w[key] === null ? null : Number(w[key]) * 100));
    fraudChart.setData([xs, v("flagged_share"), v("fraud_rate"), v("false_positive_rate")]);
    $("fraud-reasons").innerHTML = s.reasons.map((r) =>
      `<tr><td>${esc(r.reason)}</td><td class="num">${int(r.orders)}</td><td class="num">${int(r.flagged)}</td></tr>`).join("");
    $("fraud-audit").innerHTML = audit.reviews.map((r) =>
      `<tr><td>${esc(when(r.reviewed_at))}</td><td>${esc(r.order_id)}</td><td>${esc(r.customer_id)}</td><td>${esc(r.review)}</td>` +
      `<td>${esc(r.reviewer || "–")}</td><td>${esc(r.review_note || "")}</td></tr>`).join("");
  } catch (e) { toast("fraud stats: " + e.message); }
}
async function showFraudContext(id) {
  try {
    const c = await api(`/api/dashboard/fraud-context/${encodeURIComponent(id)}`);
    const o = c.order, u = c.customer.usual || {}, cur = o.currency || "USD";
    const usualPlace = (c.customer.places || []).some((p) => p.address_key === o.address_key);
    const usualIp = (c.customer.ips || []).some((p) => p.client_ip === o.client_ip);
    const avg = Number(u.average_total);
    $("fraud-context").innerHTML =
      `<table><thead><tr><th></th><th>this order</th><th>the customer's usual</th></tr></thead><tbody>` +
      `<tr><td>value</td><td class="num">${esc(money(o.total, cur))}</td><td class="num">${int(u.orders)} earlier orders, average ${esc(money(u.average_total, cur))}, largest ${esc(money(u.largest_total, cur))}` +
      `${avg > 0 ? ` (this one ${esc((Number(o.total) / avg).toFixed(1))}×)` : ""}</td></tr>` +
      `<tr><td>ships to</td><td>${esc(o.city)}, ${esc(o.country)} ${usualPlace ? "(a usual place)" : "<b>(new place)</b>"}</td>` +
      `<td>${(c.customer.places || []).map((p) => `${esc(p.city)}, ${esc(p.country)} ×${int(p.orders)}`).join("; ") || "–"}</td></tr>` +
      `<tr><td>from IP</td><td>${esc(o.client_ip)} ${usualIp ? "(usual)" : "<b>(new IP)</b>"}</td>` +
      `<td>${(c.customer.ips || []).map((p) => `${esc(p.client_ip)} ×${int(p.orders)}`).join("; ") || "–"}</td></tr>` +
      `<tr><td>first order</td><td>${esc(when(o.placed_at))}</td><td>${esc(when(u.first_order_at)) || "this is the first"}</td></tr>` +
      `<tr><td>screening</td><td colspan="2">${c.screening ? `score ${esc(c.screening.score)} by model ${esc(c.screening.model_version)}: ${esc((c.screening.reasons || []).join("; "))}` : "–"}</td></tr>` +
      `<tr><td>earlier flags</td><td colspan="2">${(c.customer.earlier_flags || []).map((f) => `${esc(when(f.scored_at))} score ${esc(f.score)} → ${esc(f.review || "awaiting review")}`).join("<br>") || "none"}</td></tr>` +
      `</tbody></table>`;
    $("fraud-context-panel").hidden = false;
  } catch (e) { toast("order context: " + e.message); }
}
$("fraud-queue").addEventListener("click", async (e) => {
  if (e.target.dataset.context) { e.preventDefault(); showFraudContext(e.target.dataset.context); return; }
  const decision = e.target.dataset.review;
  if (!decision) return;
  const id = e.target.dataset.id;
  e.target.disabled = true;
  const body = { decision };
  if ($("fraud-reviewer").value.trim()) body.reviewer = $("fraud-reviewer").value.trim();
  if ($("fraud-note").value.trim()) body.note = $("fraud-note").value.trim();
  try {
    const r = await api(`/api/admin/orders/${encodeURIComponent(id)}/review`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const status = r.status || (r.order && r.order.status) || "";
    toast(`${id}: ${decision}d${status ? " → " + status : ""}`);
    e.target.closest("tr").remove();
    $("fraud-empty").hidden = $("fraud-queue").children.length > 0;
    $("fraud-note").value = "";
  } catch (err) { toast("review: " + err.message); e.target.disabled = false; }
});
pages.fraud = { enter() { loadFraud(); this.timer = setInterval(loadFraud, 10000); }, leave() { clearInterval(this.timer); } };

// ---- Inventory ---------------------------------------------------------------
async function loadInventory() {
  try {
    const [low, all] = await Promise.all([api("/api/dashboard/low-stock"), api("/api/products?page_size=500")]);
    const row = (p, full) => `<tr><td>${esc(p.product_id)}</td><td>${esc(p.name)}</td>` +
      (full ? `<td>${esc(p.category)}</td><td class="num">${esc(money(p.unit_price, p.currency))}</td>` : "") +
      `<td class="num">${int(p.stock.available)}</td><td class="num">${int(p.stock.reserved)}</td>` + (full ? `<td class="num">${int(p.stock.sold)}</td>` : "") + "</tr>";
    $("low-stock").innerHTML = low.products.map((p) => row(p, false)).join("") || '<tr><td colspan="4" class="muted">no product is low</td></tr>';
    $("stock").innerHTML = all.products.map((p) => row(p, true)).join("");
  } catch (e) { toast("inventory: " + e.message); }
}
pages.inventory = { enter() { loadInventory(); } };

// ---- Forecast & inventory --------------------------------------------------------
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
$("fc-form").addEventListener("submit", (e) => { e.preventDefault(); loadForecast(); });

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
$("inv-form").addEventListener("submit", (e) => { e.preventDefault(); plan.page = 1; loadPlan(); });
$("inv-prev").addEventListener("click", () => { if (plan.page > 1) { plan.page -= 1; loadPlan(); } });
$("inv-next").addEventListener("click", () => { if (plan.page < plan.pages) { plan.page += 1; loadPlan(); } });
$("inv-plan").addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-product]");
  if (!row) return;
  $("fc-scope").value = "product"; $("fc-key").value = row.dataset.product;
  loadForecast(); window.scrollTo({ top: 0, behavior: "smooth" });
});
pages.forecast = { enter() { if (!forecastChart) loadForecast(); loadPlan(); } };

// ---- System --------------------------------------------------------------------
let systemChart = null;
function drawSystem(snapshot) {
  $("sys-orders").textContent = Number(snapshot.orders_per_s).toFixed(1);
  $("sys-events").textContent = Number(snapshot.events_per_s).toFixed(1);
  const l = snapshot.confirm_latency;
  $("sys-latency").textContent = l ? `${l.p50_ms} / ${l.p95_ms} / ${l.p99_ms} ms` : "–";
  if (systemChart) {
    const rows = snapshot.per_second || [];
    systemChart.setData([rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])]);
  }
}
async function loadHealth() {
  try {
    const h = await api("/api/dashboard/health");
    if (h.nats !== "connected") {
      // The tables answer without NATS; what only NATS knows is unknown.
      $("sys-dlq").textContent = "–";
      $("consumers").innerHTML = '<tr><td colspan="5" class="muted">NATS is unavailable: live figures, lag and the DLQ are unknown</td></tr>';
      return;
    }
    $("sys-dlq").textContent = int(h.dlq_size);
    $("consumers").innerHTML = h.consumers.map((c) =>
      `<tr><td>${esc(c.stream)}</td><td>${esc(c.consumer)}</td><td class="num">${int(c.pending)}</td><td class="num">${int(c.ack_pending)}</td><td class="num">${int(c.redelivered)}</td></tr>`).join("");
  } catch (e) { toast("health: " + e.message); }
}
// Who did what as an admin (admins only: the route refuses the rest).
async function loadAudit() {
  $("audit-panel").classList.toggle("hidden", role !== "admin");
  if (role !== "admin") return;
  try {
    const a = await api("/api/admin/audit?limit=20");
    $("audit").innerHTML = a.actions.map((x) =>
      `<tr data-action="${esc(x.action)}"><td>${esc(when(x.at))}</td><td>${esc(x.actor)}</td><td>${esc(x.action)}</td><td>${esc(x.target)}</td><td>${esc(x.status ?? "")}</td></tr>`).join("")
      || '<tr><td colspan="5" class="muted">no admin actions yet</td></tr>';
  } catch (e) { toast("audit: " + e.message); }
}
pages.system = {
  enter() {
    loadAudit();
    if (!systemChart) systemChart = chart($("chart-system"), "", ["orders/s", "events/s"]);
    liveListeners.add(drawSystem); if (live) drawSystem(live);
    loadHealth(); this.timer = setInterval(loadHealth, 2000);
  },
  leave() { liveListeners.delete(drawSystem); clearInterval(this.timer); },
};

// ---- start ---------------------------------------------------------------------
// Signs in with the key in the box: asks the server who that is, then shows
// only the pages that role may open.
async function signIn() {
  let me = null;
  try {
    me = await api("/api/whoami");
  } catch (e) {
    role = null;
    $("whoami").textContent = "signed out";
    $("signin").classList.remove("hidden");
    $("signin-why").textContent = e.message.startsWith("401")
      ? "This orderstream needs an API key: paste an admin, analyst or viewer key above. (" + e.message + ")"
      : "Cannot sign in: " + e.message;
    document.querySelectorAll("nav a").forEach((a) => a.classList.add("denied"));
    document.querySelectorAll(".page").forEach((p) => p.classList.remove("active"));
    return;
  }
  role = me.role;
  $("whoami").textContent = me.open ? "open (no API keys)" : `${me.name} · ${me.role}`;
  const allowed = PAGES_FOR[role] || [];
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("denied", !allowed.includes(a.dataset.page)));
  $("signin").classList.toggle("hidden", allowed.length > 0);
  if (!allowed.length) $("signin-why").textContent = `A ${role} key opens no dashboard page: use an admin, analyst or viewer key.`;
  // (Re)connect the live feed with this key.
  if (liveSocket) liveSocket.close(); else connectLive();
  show(location.hash.slice(1) || allowed[0] || "overview");
}
$("api-key").value = apiKey();
$("api-key").addEventListener("change", (e) => {
  if (e.target.value) sessionStorage.setItem(KEY_STORE, e.target.value.trim());
  else sessionStorage.removeItem(KEY_STORE);
  signIn();
});
signIn();
