// Built by scripts/build-web from dashboard/web/src/ (do not edit: edit the sources and rebuild).
(() => {
  // src/lib/format.js
  var $ = (id) => (
    /** @type {any} */
    document.getElementById(id)
  );
  var esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  var moneyFormats = /* @__PURE__ */ new Map();
  var intFormat = new Intl.NumberFormat(void 0, { maximumFractionDigits: 0 });
  function moneyFormat(currency) {
    let format = moneyFormats.get(currency);
    if (!format) {
      format = new Intl.NumberFormat(void 0, { style: "currency", currency, maximumFractionDigits: 2 });
      moneyFormats.set(currency, format);
    }
    return format;
  }
  function money(v, currency = "USD") {
    if (v === null || v === void 0 || v === "") return "–";
    const n = Number(v);
    if (!Number.isFinite(n)) return "–";
    try {
      return moneyFormat(currency).format(n);
    } catch {
      return `${n.toFixed(2)} ${currency}`;
    }
  }
  var int = (v) => v !== null && v !== void 0 && Number.isFinite(Number(v)) ? intFormat.format(Math.round(Number(v))) : "–";
  var pct = (v) => v === null || v === void 0 || !Number.isFinite(Number(v)) ? "–" : (Number(v) * 100).toFixed(1) + "%";
  var words = (v) => String(v ?? "").replace(/_/g, " ");
  var when = (t) => t ? new Date(t).toLocaleString() : "";
  var day = (t) => t ? new Date(t).toLocaleDateString() : "";
  var epoch = (t) => Date.parse(t) / 1e3;

  // src/lib/api.js
  var KEY_STORE = "orderstream-api-key";
  var apiKey = () => sessionStorage.getItem(KEY_STORE) || "";
  function setApiKey(key) {
    if (key) sessionStorage.setItem(KEY_STORE, key.trim());
    else sessionStorage.removeItem(KEY_STORE);
  }
  function withToken(path) {
    const key = apiKey();
    return key ? `${path}${path.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(key)}` : path;
  }
  function headers(extra = {}) {
    const key = apiKey();
    return key ? { ...extra, Authorization: "Bearer " + key } : extra;
  }
  var ApiError = class extends Error {
    /** @param {number} status @param {string} message @param {any} body */
    constructor(status, message, body) {
      super(`${status}: ${message}`);
      this.status = status;
      this.body = body;
      this.field = body && body.field;
    }
  };
  var onRefused = () => {
  };
  function whenRefused(f) {
    onRefused = f;
  }
  async function api(path, options = {}) {
    const init = { ...options, headers: headers(
      /** @type {Record<string,string>} */
      options.headers || {}
    ) };
    if (options.json !== void 0) {
      init.body = JSON.stringify(options.json);
      init.headers = { ...init.headers, "Content-Type": "application/json" };
      delete init.json;
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    if (!response.ok) {
      const message = body && body.message ? body.message : response.statusText;
      const error = new ApiError(response.status, message, body);
      if (response.status === 401) onRefused(error);
      throw error;
    }
    return body;
  }
  async function download(path, fallbackName) {
    const response = await fetch(path, { headers: headers() });
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = (await response.json()).message || message;
      } catch {
      }
      const error = new ApiError(response.status, message, null);
      if (response.status === 401) onRefused(error);
      throw error;
    }
    const disposition = response.headers.get("content-disposition") || "";
    const named = /filename="?([^";]+)"?/.exec(disposition);
    const blob = await response.blob();
    const name = named ? named[1] : fallbackName;
    saveBlob(name, blob);
    return { bytes: blob.size, name };
  }
  function saveBlob(name, blob) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1e4);
  }
  var saveText = (name, text) => saveBlob(name, new Blob([text], { type: "text/csv" }));
  var csvLine = (cells) => cells.map((c) => {
    const s = String(c ?? "");
    return /[",\n\r]/.test(s) || /^[=+\-@]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(",");

  // src/lib/live.js
  var latest = null;
  var listeners = /* @__PURE__ */ new Set();
  var socket = null;
  var wanted = false;
  function listen(f) {
    listeners.add(f);
    if (latest) f(latest);
  }
  var unlisten = (f) => listeners.delete(f);
  var socketTo = (path) => new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + withToken(path));
  function open() {
    const ws = socketTo("/api/dashboard/ws");
    socket = ws;
    ws.onopen = () => {
      $("ws-state").textContent = "live";
      $("ws-state").classList.add("up");
    };
    ws.onclose = () => {
      $("ws-state").textContent = wanted ? "reconnecting" : "offline";
      $("ws-state").classList.remove("up");
      if (socket === ws) socket = null;
      if (wanted) setTimeout(() => {
        if (wanted && !socket) open();
      }, 1e3);
    };
    ws.onmessage = (m) => {
      try {
        latest = JSON.parse(m.data);
      } catch {
        return;
      }
      listeners.forEach((f) => f(latest));
    };
  }
  function connect(on) {
    wanted = on;
    if (socket) socket.close();
    else if (on) open();
  }
  function followOrder(orderId, onEvent, onState = () => {
  }) {
    let stopped = false;
    let ws = null;
    const connect2 = () => {
      ws = socketTo(`/api/ws/orders?order_id=${encodeURIComponent(orderId)}`);
      ws.onopen = () => onState("live");
      ws.onmessage = () => onEvent();
      ws.onclose = () => {
        if (stopped) return;
        onState("reconnecting");
        setTimeout(() => {
          if (!stopped) connect2();
        }, 1e3);
      };
    };
    connect2();
    return () => {
      stopped = true;
      if (ws) ws.close();
    };
  }

  // src/lib/session.js
  var current = null;
  var role = () => current;
  var setRole = (r) => {
    current = r;
  };

  // src/lib/chart.js
  var COLORS = ["#2457d6", "#e67e22", "#1e8e3e", "#8e44ad", "#c0392b", "#16a085"];
  var charts = /* @__PURE__ */ new Set();
  function widthOf(el) {
    return Math.max(260, (el.clientWidth || (el.parentElement ? el.parentElement.clientWidth - 32 : 600)) - 4);
  }
  function lineChart(el, series2, options = {}) {
    el.innerHTML = "";
    const bars = options.bars && typeof /** @type {any} */
    uPlot.paths?.bars === "function" ? (
      /** @type {any} */
      uPlot.paths.bars({ size: [0.8, 40] })
    ) : void 0;
    const plot = new uPlot(
      {
        width: widthOf(el),
        height: options.height || 220,
        scales: { x: { time: options.xTime !== false } },
        series: [{}, ...series2.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, fill: bars ? COLORS[i % COLORS.length] + "99" : void 0, paths: bars }))],
        axes: [{ stroke: "#555" }, { size: 70, label: options.yLabel, stroke: "#555" }]
      },
      [[], ...series2.map(() => [])],
      el
    );
    charts.add({ plot, el });
    return plot;
  }
  var resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const { plot, el } of charts) {
        if (el.isConnected && el.offsetParent !== null) plot.setSize({ width: widthOf(el), height: plot.height || 220 });
      }
    }, 150);
  });

  // src/lib/toast.js
  function toast(message) {
    const t = $("toast");
    t.textContent = message;
    t.classList.add("show");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => t.classList.remove("show"), 5e3);
  }
  toast.timer = null;
  function showState(el, message, kind = "bad") {
    if (!el) return;
    el.textContent = message || "";
    el.className = "state " + (message ? kind : "");
    el.hidden = !message;
  }

  // src/pages/overview.js
  var chart = null;
  var timer = 0;
  function drawLive(snapshot) {
    $("kpi-rate").textContent = Number(snapshot.orders_per_s).toFixed(1);
    $("recent-orders").innerHTML = (snapshot.recent_orders || []).map((o) => `<tr data-order="${esc(o.order_id)}"><td class="id">${esc(o.order_id)}</td><td>${esc(o.customer_id ?? "–")}</td><td class="num">${esc(o.items)}</td><td class="num">${esc(money(o.total, o.currency))}</td><td>${esc(when(o.received_at))}</td></tr>`).join("") || '<tr><td colspan="5" class="muted">no orders yet: place one from the New order page</td></tr>';
    if (chart) {
      const rows = snapshot.per_second || [];
      chart.setData([rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])]);
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
  var overview = {
    enter() {
      if (!chart) chart = lineChart($("chart-live"), ["orders/s", "events/s"]);
      listen(drawLive);
      loadSummary();
      timer = window.setInterval(loadSummary, 5e3);
    },
    leave() {
      unlisten(drawLive);
      clearInterval(timer);
    }
  };

  // src/lib/operations.js
  var asked = /* @__PURE__ */ new Map();
  function operations(from, to, currency = "USD") {
    const key = `${from}/${to}/${currency}`;
    if (!asked.has(key)) {
      const answer = api(`/api/analytics/operations?${new URLSearchParams({ from, to, currency })}`);
      asked.set(key, answer);
      answer.then(() => setTimeout(() => asked.delete(key), 6e4), () => asked.delete(key));
    }
    return (
      /** @type {Promise<any>} */
      asked.get(key)
    );
  }
  function duration(h) {
    if (h === null || h === void 0 || !Number.isFinite(Number(h))) return "–";
    const v = Number(h);
    if (v < 1) return `${Math.round(v * 60)} min`;
    if (v < 48) return `${v.toFixed(1)} h`;
    return `${(v / 24).toFixed(1)} d`;
  }

  // src/pages/sales.js
  var chart2 = null;
  var shown = null;
  var localInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16);
  function applyPreset(preset) {
    const form2 = (
      /** @type {HTMLFormElement} */
      $("sales-form")
    );
    const now = /* @__PURE__ */ new Date();
    const start2 = new Date(now);
    const days = { "7d": 7, "30d": 30, "90d": 90 }[preset];
    if (preset === "today") start2.setHours(0, 0, 0, 0);
    else if (days) start2.setTime(now.getTime() - days * 864e5);
    else return;
    form2.from.value = localInput(start2);
    form2.to.value = localInput(now);
    form2.window.value = preset === "today" ? "1h" : preset === "90d" ? "1w" : "1d";
  }
  var isoFromLocal = (v) => v ? new Date(v).toISOString() : "";
  function clear() {
    for (const id of ["sales-current", "sales-previous", "sales-change"]) $(id).textContent = "–";
    $("sales-compare-note").textContent = "";
    $("sales-categories").innerHTML = "";
    $("category-bars").innerHTML = "";
    $("top-products").innerHTML = "";
    $("heatmap").innerHTML = "";
    if (chart2) chart2.setData([[], [], []]);
    shown = null;
  }
  async function load() {
    const f = (
      /** @type {HTMLFormElement} */
      $("sales-form")
    );
    if (!f.from.value && !f.to.value) {
      f.from.value = localInput(new Date(Date.now() - 864e5));
      f.to.value = localInput(/* @__PURE__ */ new Date());
    }
    const form2 = new FormData(f);
    const params = new URLSearchParams({ window: String(form2.get("window")), currency: String(form2.get("currency") || "USD") });
    if (form2.get("from")) params.set("from", isoFromLocal(String(form2.get("from"))));
    if (form2.get("to")) params.set("to", isoFromLocal(String(form2.get("to"))));
    showState($("sales-state"), "loading…", "muted");
    const range = new URLSearchParams({ currency: params.get("currency") || "USD" });
    for (const bound of ["from", "to"]) if (params.get(bound)) range.set(bound, params.get(bound));
    loadOperations(range);
    try {
      const [r, top, heat] = await Promise.all([
        api("/api/dashboard/revenue?" + params),
        api("/api/dashboard/top-products?" + range),
        api("/api/dashboard/heatmap?" + range)
      ]);
      const cur = r.currency;
      shown = r;
      $("sales-current").textContent = money(r.totals.current, cur);
      $("sales-previous").textContent = money(r.totals.previous, cur);
      $("sales-change").textContent = r.totals.change === null ? "n/a" : (r.totals.change >= 0 ? "+" : "") + pct(r.totals.change);
      $("sales-compare-note").textContent = r.comparison.note ? "Previous period: " + r.comparison.note : `against ${new Date(r.comparison.previous_from).toLocaleDateString()} – ${new Date(r.comparison.previous_to).toLocaleDateString()}`;
      const byWindow = /* @__PURE__ */ new Map();
      const add = (rows, idx) => rows.forEach((w) => {
        const t = epoch(w.window_start);
        const e = byWindow.get(t) || [0, 0];
        e[idx] += Number(w.revenue);
        byWindow.set(t, e);
      });
      add(r.windows, 0);
      add(r.previous, 1);
      const xs = [...byWindow.keys()].sort((a, b) => a - b);
      if (!chart2) chart2 = lineChart($("chart-revenue"), ["this period", "previous period"], { height: 260 });
      chart2.setData([xs, xs.map((x) => byWindow.get(x)[0]), xs.map((x) => byWindow.get(x)[1])]);
      chart2.setScale("x", { min: epoch(r.from), max: epoch(r.to) });
      if (!r.windows.length) {
        showState($("sales-state"), `No sales in ${cur} between ${new Date(r.from).toLocaleString()} and ${new Date(r.to).toLocaleString()}.`, "muted");
      } else showState($("sales-state"), null);
      drawCategories(r.categories, cur, r.comparison.complete);
      $("top-products").innerHTML = top.products.map((p) => `<tr><td>${esc(p.name || p.product_id)}<div class="muted small">${esc(p.product_id)}</div></td><td>${esc(p.category || "uncategorized")}</td><td class="num">${int(p.units)}</td><td class="num">${esc(money(p.revenue, cur))}</td></tr>`).join("") || '<tr><td colspan="4" class="muted">no sales in this range</td></tr>';
      drawHeatmap(heat.cells, cur);
    } catch (e) {
      clear();
      showState($("sales-state"), "Cannot show sales: " + e.message);
    }
  }
  function drawCategories(categories, cur, comparable) {
    $("sales-categories").innerHTML = categories.map((c) => `<tr><td>${esc(c.category)}</td><td class="num">${esc(money(c.current, cur))}</td><td class="num">${esc(money(c.previous, cur))}</td><td class="num">${c.change === null ? comparable ? "–" : "n/a" : esc(pct(c.change))}</td></tr>`).join("") || '<tr><td colspan="4" class="muted">no sales in this range</td></tr>';
    const top = categories.slice(0, 12);
    const max = Math.max(1, ...top.map((c) => Number(c.current)));
    $("category-bars").innerHTML = top.map((c) => `<div class="bar-row"><span class="bar-label">${esc(c.category)}</span><span class="bar" data-w="${(Number(c.current) / max * 100).toFixed(1)}"></span><span class="bar-value">${esc(money(c.current, cur))}</span></div>`).join("") + (categories.length > top.length ? `<p class="muted small">and ${categories.length - top.length} more in the table</p>` : "");
    $("category-bars").querySelectorAll(".bar").forEach((b) => {
      b.style.width = b.dataset.w + "%";
    });
  }
  function drawHeatmap(cells, currency) {
    if (!cells.length) {
      $("heatmap").innerHTML = '<p class="muted">no sales in this range</p>';
      return;
    }
    const grid = Array.from({ length: 7 }, () => Array(24).fill(0));
    cells.forEach((c) => {
      grid[c.weekday][c.hour] = Number(c.revenue);
    });
    const max = Math.max(1, ...grid.flat());
    const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let html = '<div class="scroll"><table class="heat"><tr><th></th>' + Array.from({ length: 24 }, (_, h) => `<th>${h}</th>`).join("") + "</tr>";
    grid.forEach((row, d) => {
      html += `<tr><th>${days[d]}</th>` + row.map((v, h) => `<td title="${esc(days[d])} ${h}:00 · ${esc(money(v, currency))}" data-alpha="${(v / max).toFixed(2)}"></td>`).join("") + "</tr>";
    });
    html += `</table></div><div class="legend"><span>${esc(money(0, currency))}</span><span class="gradient"></span><span>${esc(money(max, currency))}</span><span class="muted small">per hour cell, UTC</span></div>`;
    $("heatmap").innerHTML = html;
    $("heatmap").querySelectorAll("td[data-alpha]").forEach((td) => {
      td.style.background = `rgba(36,87,214,${td.dataset.alpha})`;
    });
  }
  var opsCharts = {};
  async function loadOperations(range) {
    const day2 = (t) => t ? new Date(t).toISOString().slice(0, 10) : (/* @__PURE__ */ new Date()).toISOString().slice(0, 10);
    const from = day2(range.get("from")), to = day2(range.get("to"));
    const cur = range.get("currency") || "USD";
    $("ops-state").textContent = `${from} to ${to} (UTC days)`;
    try {
      const o = await operations(from, to, cur);
      $("ops-aov").textContent = o.average_order == null ? "–" : money(o.average_order, cur);
      $("ops-cancel").textContent = pct(o.cancellation_rate);
      $("ops-payfail").textContent = pct(o.payment_failure_rate);
      const xs = o.days.map((d) => Date.parse(d.day + "T00:00:00Z") / 1e3);
      if (!opsCharts.aov) opsCharts.aov = lineChart($("chart-aov"), ["average order"], { yLabel: cur });
      opsCharts.aov.setData([xs, o.days.map((d) => d.average_order == null ? null : Number(d.average_order))]);
      const reasons = Object.keys(o.cancelled).sort();
      if (!opsCharts.cancel || opsCharts.cancelReasons !== reasons.join(",")) {
        if (opsCharts.cancel) opsCharts.cancel.destroy();
        opsCharts.cancel = lineChart($("chart-cancel"), reasons.map((r) => r.replace(/_/g, " ")), { yLabel: "% of orders" });
        opsCharts.cancelReasons = reasons.join(",");
      }
      opsCharts.cancel.setData([xs, ...reasons.map((r) => o.days.map((d) => d.orders ? 100 * (d.cancelled[r] || 0) / d.orders : null))]);
      $("chart-aov").dataset.drawn = String(o.days.length);
      $("ops-methods").innerHTML = o.payment_methods.map((m) => `<tr><td>${esc(m.method.replace(/_/g, " "))}</td><td class="num">${int(m.orders)}</td><td class="num">${pct(m.share)}</td><td class="num">${int(m.declined)}</td><td class="num">${pct(m.failure_rate)}</td></tr>`).join("") || '<tr><td colspan="5" class="muted">no orders in this range</td></tr>';
      $("ops-stock").innerHTML = o.out_of_stock.map((p) => `<tr><td class="id">${esc(p.product_id)}</td><td class="num">${int(p.lines)}</td><td class="num">${int(p.out_of_stock)}</td><td class="num">${pct(p.rate)}</td></tr>`).join("") || '<tr><td colspan="4" class="muted">no out-of-stock cancellations in this range</td></tr>';
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
  var sales = {
    enter() {
      load();
    },
    init() {
      $("sales-form").addEventListener("submit", (e) => {
        e.preventDefault();
        load();
      });
      $("sales-presets").addEventListener("click", (e) => {
        const preset = (
          /** @type {HTMLElement} */
          e.target.dataset.preset
        );
        if (!preset) return;
        $("sales-presets").querySelectorAll("button").forEach((b) => b.classList.toggle("active", b.dataset.preset === preset));
        if (preset === "custom") {
          $("sales-form").from.focus();
          return;
        }
        applyPreset(preset);
        load();
      });
      $("sales-export").addEventListener("click", exportCsv);
    }
  };

  // src/lib/contract.js
  var contract = null;
  async function loadContract() {
    if (!contract) contract = await api("/api/dashboard/statuses");
    return contract;
  }
  var allows = (action, status) => !!contract && (contract.actions[action] || []).includes(status);
  var statuses = () => contract ? contract.statuses.map((s) => s.status) : [];

  // src/lib/recommend.js
  var boughtTogether = (productId, limit = 8) => api(`/api/recommendations?product_id=${encodeURIComponent(productId)}&limit=${limit}`);
  var forCustomer = (customerId, limit = 6) => api(`/api/recommendations/personalized?customer_id=${encodeURIComponent(customerId)}&limit=${limit}`);
  function picksHtml(picks, empty) {
    if (!picks.length) return `<p class="muted small">${esc(empty)}</p>`;
    return '<ol class="recs">' + picks.map((p) => `<li data-product="${esc(p.product_id)}"><span>${esc(p.name || p.product_id)}</span><span class="muted small">${esc(p.product_id)}${p.category ? " · " + esc(p.category) : ""} · ${esc(words(p.reason))}${p.support ? ` · ${esc(p.support)} orders together` : ""}</span></li>`).join("") + "</ol>";
  }
  async function showPicks(el, ask, empty) {
    el.innerHTML = '<p class="muted small">loading…</p>';
    try {
      const r = await ask();
      el.innerHTML = picksHtml(r.recommendations, empty) + (r.as_of ? `<p class="muted small">model as of ${esc(r.as_of)}</p>` : "");
    } catch (e) {
      el.innerHTML = `<p class="muted small">${esc(e.message)}</p>`;
    }
  }

  // src/lib/products.js
  var cached = null;
  var at = 0;
  async function fetchAll() {
    const first = await api("/api/products?page_size=500&page=1");
    const pages2 = Math.min(100, Math.ceil(first.total / 500));
    const rest = await Promise.all(Array.from({ length: Math.max(0, pages2 - 1) }, (_, i) => api(`/api/products?page_size=500&page=${i + 2}`)));
    return [first, ...rest].flatMap((r) => r.products);
  }
  function allProducts(refresh = false) {
    if (!cached || refresh || Date.now() - at > 6e4) {
      at = Date.now();
      cached = fetchAll();
      cached.catch(() => {
        cached = null;
      });
    }
    return cached;
  }
  var productNames = () => allProducts().then((all2) => new Map(all2.map((p) => [p.product_id, p]))).catch(() => /* @__PURE__ */ new Map());

  // src/pages/orders.js
  var ROW = 32;
  var state = {
    /** @type {any[]} */
    rows: [],
    /** @type {string|null} */
    cursor: null,
    more: false,
    loading: false,
    /** @type {Set<string>} */
    selected: /* @__PURE__ */ new Set(),
    seq: 0,
    /** @type {Set<string>} */
    fresh: /* @__PURE__ */ new Set(),
    /** @type {any[]} */
    waiting: [],
    /** New orders shown highlighted, until the highlight fades. */
    newCount: 0
  };
  var follow = null;
  var openId = "";
  function form() {
    return (
      /** @type {HTMLFormElement} */
      $("orders-form")
    );
  }
  function validFilters() {
    const f = form();
    const min = f.min_total.value.trim(), max = f.max_total.value.trim();
    const amount = /^\d+(\.\d{1,2})?$/;
    let problem = "";
    if (min && !amount.test(min)) problem = "min total is a non-negative amount such as 25 or 19.99";
    else if (max && !amount.test(max)) problem = "max total is a non-negative amount such as 25 or 19.99";
    else if (min && max && Number(min) > Number(max)) problem = `min total ${min} is above max total ${max}: no order could match`;
    else if (f.from.value && f.to.value && f.from.value > f.to.value) problem = "from is after to";
    showState($("orders-state"), problem || null);
    return !problem;
  }
  function query() {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form()).entries()) if (v) params.set(k, String(v).trim());
    params.set("page_size", "100");
    return params;
  }
  async function load2(reset) {
    if (!reset && (state.loading || !state.more)) return;
    if (reset && !validFilters()) return;
    const seq = ++state.seq;
    state.loading = true;
    const params = query();
    if (reset) {
      Object.assign(state, { rows: [], cursor: null, more: false, waiting: [] });
      state.selected.clear();
      state.fresh.clear();
      $("orders-viewport").scrollTop = 0;
      badge();
      render();
    }
    if (state.cursor) params.set("cursor", state.cursor);
    try {
      const page = await api("/api/admin/orders?" + params);
      if (seq !== state.seq) return;
      state.rows.push(...page.orders);
      state.cursor = page.next_cursor;
      state.more = page.has_more;
      showState($("orders-state"), state.rows.length ? null : "No order matches these filters.", "muted");
      $("orders-info").textContent = `${state.rows.length}${state.more ? "+" : ""} orders · last page ${Number(page.elapsed_ms).toFixed(0)} ms`;
    } catch (e) {
      if (seq === state.seq) showState($("orders-state"), "Cannot search: " + e.message);
    }
    if (seq !== state.seq) return;
    state.loading = false;
    render();
    updateBulk();
  }
  function render() {
    const vp = $("orders-viewport");
    $("orders-spacer").style.height = state.rows.length * ROW + "px";
    const first = Math.max(0, Math.floor(vp.scrollTop / ROW) - 10);
    const last = Math.min(state.rows.length, first + Math.ceil(vp.clientHeight / ROW) + 20);
    let html = "";
    for (let i = first; i < last; i++) {
      const o = state.rows[i];
      const checked = state.selected.has(o.order_id) ? "checked" : "";
      const cls = "vrow" + (state.fresh.has(o.order_id) ? " fresh" : "") + (o.order_id === openId ? " open" : "");
      html += `<div class="${cls}" data-top="${i * ROW}" data-order="${esc(o.order_id)}" tabindex="0" role="row"><span><input type="checkbox" aria-label="select" data-select="${esc(o.order_id)}" ${checked}></span><span class="id">${esc(o.order_id)}</span><span>${esc(when(o.placed_at))}</span><span>${esc(o.customer_id)}</span><span><span class="status ${esc(o.status)}">${esc(o.status)}</span></span><span class="num">${esc(money(o.total, o.currency))}</span></div>`;
    }
    $("orders-rows").innerHTML = html;
    $("orders-rows").querySelectorAll(".vrow").forEach((row) => {
      row.style.top = row.dataset.top + "px";
    });
    if (state.more && last >= state.rows.length - 20) load2(false);
  }
  function applicable(action) {
    const byId = new Map(state.rows.map((o) => [o.order_id, o]));
    return [...state.selected].filter((id) => byId.has(id) && allows(action, byId.get(id).status));
  }
  function updateBulk() {
    const n = state.selected.size;
    const cancel = applicable("cancel").length, ship = applicable("mark_shipped").length;
    $("selected-count").textContent = `${n} selected`;
    $("bulk-cancel").disabled = cancel === 0;
    $("bulk-cancel").textContent = cancel && cancel < n ? `Cancel ${cancel} of them` : "Cancel selected";
    $("bulk-ship").disabled = ship === 0;
    $("bulk-ship").textContent = ship && ship < n ? `Mark ${ship} shipped` : "Mark shipped";
    const loaded = state.rows.slice(0, 100);
    $("select-all").checked = loaded.length > 0 && loaded.every((o) => state.selected.has(o.order_id));
  }
  async function bulk(action) {
    const ids = applicable(action).slice(0, 100);
    const verb = { cancel: "Cancel", mark_shipped: "Mark as shipped", mark_delivered: "Mark as delivered" }[action];
    const skipped = state.selected.size - ids.length;
    const note = skipped ? ` (${skipped} selected order${skipped > 1 ? "s are" : " is"} not in a state that allows it and will be left alone)` : "";
    if (!ids.length || !window.confirm(`${verb} ${ids.length} order${ids.length > 1 ? "s" : ""}?${note}${action === "cancel" ? " Paid orders are refunded. This cannot be undone." : ""}`)) return;
    try {
      const r = await api("/api/admin/orders/bulk", { method: "POST", json: { action, order_ids: ids } });
      const byId = new Map(r.results.map((x) => [x.order_id, x]));
      state.rows.forEach((o) => {
        const x = byId.get(o.order_id);
        if (x && x.result === "applied") o.status = x.status;
      });
      const refused = r.results.filter((x) => x.result === "rejected" || x.result === "failed");
      $("bulk-results").innerHTML = refused.length ? `<b>${refused.length} not applied:</b><ul>` + refused.slice(0, 20).map((x) => `<li><span class="id">${esc(x.order_id)}</span>: ${esc(x.message || x.result)}</li>`).join("") + "</ul>" : "";
      toast(`${action.replace("_", " ")}: ${r.applied} applied, ${r.rejected} refused, ${r.queued} queued`);
      state.selected.clear();
      render();
      updateBulk();
    } catch (e) {
      showState($("orders-state"), "Bulk action failed: " + e.message);
    }
  }
  var picksFor = /* @__PURE__ */ new Map();
  function customerPicks(customerId) {
    if (!picksFor.has(customerId)) {
      const answer = forCustomer(customerId);
      picksFor.set(customerId, answer);
      answer.catch(() => picksFor.delete(customerId));
    }
    return (
      /** @type {Promise<any>} */
      picksFor.get(customerId)
    );
  }
  async function openOrder(id) {
    openId = id;
    const panel = $("order-panel");
    panel.hidden = false;
    $("order-panel-body").innerHTML = '<p class="muted">loading…</p>';
    if (follow) follow();
    await drawPanel(id);
    follow = followOrder(id, () => {
      if (openId === id) drawPanel(id);
    }, (state2) => {
      const live = $("panel-live");
      if (live) live.textContent = state2 === "live" ? "live" : "live updates paused (reconnecting)";
    });
    render();
  }
  async function lakeOrder(id) {
    const d = await api(`/api/admin/orders/${encodeURIComponent(id)}/detail`);
    const steps = d.events.filter((e) => e.status);
    const last = steps[steps.length - 1];
    const risk = d.events.find((e) => e.risk_score != null);
    return {
      ...d.order,
      status: last ? last.status : "pending",
      cancel_reason: last && last.status === "cancelled" ? last.reason : null,
      risk_score: risk ? risk.risk_score : null,
      risk_reasons: risk ? risk.risk_reasons : [],
      items: d.items,
      history: steps.map((e) => ({ status: e.status, at: e.occurred_at })),
      actions: false
    };
  }
  async function orderView(id) {
    try {
      return await api(`/api/orders/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
      return lakeOrder(id);
    }
  }
  async function drawPanel(id) {
    try {
      const [o, names] = await Promise.all([orderView(id), productNames()]);
      if (openId !== id) return;
      const row = state.rows.find((r) => r.order_id === id);
      if (row && row.status !== o.status) {
        row.status = o.status;
        render();
      }
      const labels = { cancel: "Cancel order", mark_shipped: "Mark shipped", mark_delivered: "Mark delivered" };
      const actions = Object.keys(labels).filter((a) => o.actions !== false && allows(a, o.status)).map((a) => `<button data-action="${a}" data-id="${esc(id)}">${labels[a]}</button>`).join(" ");
      const reason = o.cancel_reason ? ` <span class="bad">(${esc(words(o.cancel_reason))})</span>` : "";
      $("order-panel-body").innerHTML = `<h3 class="id">${esc(o.order_id)}</h3><p><span class="status ${esc(o.status)}">${esc(o.status)}</span>${reason} <span id="panel-live" class="muted small">live</span></p><p>${esc(o.customer_id)} · ${esc(money(o.total, o.currency))} · ${esc(o.payment_method || "")} ${o.refunded ? "· refunded" : ""}</p>` + (o.risk_score != null ? `<p>risk ${esc(o.risk_score)}: ${esc((o.risk_reasons || []).join("; "))}</p>` : "") + `<h4>Items</h4><table>${o.items.map((i) => {
        const p = names.get(i.product_id);
        return `<tr><td>${esc(p ? p.name : i.product_id)}<div class="muted small">${esc(i.product_id)}${p ? " · " + esc(p.category) : ""}</div></td><td class="num">${esc(i.quantity)} ×</td><td class="num">${esc(money(i.line_total, o.currency))}</td></tr>`;
      }).join("")}</table><h4>Timeline</h4><ul class="timeline"><li>placed · ${esc(when(o.placed_at))}</li>` + (o.history || []).map((h) => `<li>${esc(h.status)} · ${esc(when(h.at))}</li>`).join("") + "</ul>" + (actions ? `<div class="actions">${actions}</div>` : "") + `<h4>Also for this customer</h4><div id="panel-recs"></div>`;
      showPicks($("panel-recs"), () => customerPicks(o.customer_id), "No picks for this customer yet.");
    } catch (e) {
      if (openId === id) $("order-panel-body").innerHTML = `<p class="bad">${esc(e.message)}</p>`;
    }
  }
  function arriving(snapshot) {
    const f = form();
    if (f.sort.value !== "-placed_at" || f.status.value && f.status.value !== "pending" || f.to.value) return;
    const min = Number(f.min_total.value || 0), max = f.max_total.value ? Number(f.max_total.value) : Infinity;
    const who = f.customer_id.value.trim(), q = f.q.value.trim();
    const known = new Set(state.rows.map((o) => o.order_id).concat(state.waiting.map((o) => o.order_id)));
    const newest = state.rows.length ? Date.parse(state.rows[0].placed_at) : 0;
    for (const o of (snapshot.recent_orders || []).slice().reverse()) {
      const total = Number(o.total);
      if (known.has(o.order_id) || Date.parse(o.received_at) < newest) continue;
      if (total < min || total > max || who && o.customer_id !== who || q && o.order_id !== q && o.customer_id !== q) continue;
      if (f.product_id.value.trim()) continue;
      state.waiting.unshift({ order_id: o.order_id, placed_at: o.received_at, customer_id: o.customer_id ?? "–", status: "pending", total: o.total, currency: o.currency });
    }
    if (state.waiting.length && $("orders-viewport").scrollTop < ROW) showNew();
    else badge();
  }
  function showNew() {
    for (const o of state.waiting) state.fresh.add(o.order_id);
    state.rows.unshift(...state.waiting);
    const n = state.waiting.length;
    state.waiting = [];
    state.newCount += n;
    badge();
    render();
    setTimeout(() => {
      state.fresh.clear();
      state.newCount = 0;
      badge();
      render();
    }, 8e3);
  }
  function badge() {
    const waiting = state.waiting.length, added = state.newCount;
    $("orders-new").hidden = !waiting && !added;
    $("orders-new").textContent = waiting ? `${waiting} new — show` : `${added} new`;
  }
  async function exportCsv2() {
    const params = query();
    params.delete("page_size");
    $("export-link").disabled = true;
    try {
      const saved = await download("/api/admin/orders/export?" + params, "orders.csv");
      toast(`saved ${saved.name} (${(saved.bytes / 1024).toFixed(0)} KiB)`);
    } catch (e) {
      showState($("orders-state"), "Export failed: " + e.message);
    }
    $("export-link").disabled = false;
  }
  async function exportAll() {
    const params = query();
    params.delete("page_size");
    try {
      const job = await api("/api/admin/exports", { method: "POST", json: Object.fromEntries(params) });
      toast("export started");
      const poll3 = async () => {
        try {
          const s = await api(job.status_url);
          $("orders-info").textContent = `export: ${s.status} · ${s.rows} rows`;
          if (s.status === "running") return void setTimeout(poll3, 1e3);
          if (s.status === "done") {
            const saved = await download(s.download_url, `orders-${s.id}.csv`);
            toast(`saved ${saved.name} (${s.rows} rows)`);
          } else showState($("orders-state"), `Export ${s.status}: ${s.error || ""}`);
        } catch (e) {
          showState($("orders-state"), "Export failed: " + e.message);
        }
      };
      poll3();
    } catch (e) {
      showState($("orders-state"), "Export failed: " + e.message);
    }
  }
  var orders = {
    /** @param {string} [arg] `customer=ID` shows that customer's orders. */
    async enter(arg) {
      await loadContract().catch(() => null);
      if (form().status.options.length <= 1) {
        for (const s of statuses()) {
          const option = document.createElement("option");
          option.value = option.textContent = s;
          form().status.appendChild(option);
        }
      }
      listen(arriving);
      const customer = arg && arg.startsWith("customer=") ? decodeURIComponent(arg.slice("customer=".length)) : "";
      if (customer) {
        form().reset();
        form().customer_id.value = customer;
        load2(true);
      } else if (!state.rows.length) load2(true);
    },
    leave() {
      picksFor.clear();
      unlisten(arriving);
      if (follow) follow();
      follow = null;
    },
    init() {
      form().addEventListener("submit", (e) => {
        e.preventDefault();
        load2(true);
      });
      $("orders-viewport").addEventListener("scroll", () => requestAnimationFrame(render));
      $("orders-rows").addEventListener("click", (e) => {
        const target = (
          /** @type {HTMLInputElement} */
          e.target
        );
        const id = target.dataset.select;
        if (id) {
          if (target.checked) state.selected.add(id);
          else state.selected.delete(id);
          updateBulk();
          return;
        }
        const row = (
          /** @type {HTMLElement} */
          target.closest(".vrow")
        );
        if (row) openOrder(row.dataset.order || "");
      });
      $("orders-rows").addEventListener("keydown", (e) => {
        const row = (
          /** @type {HTMLElement} */
          e.target
        );
        if (!row.classList || !row.classList.contains("vrow")) return;
        if (e.key === "Enter") openOrder(row.dataset.order || "");
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          const next = (
            /** @type {HTMLElement} */
            e.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling
          );
          if (next) next.focus();
          else $("orders-viewport").scrollTop += e.key === "ArrowDown" ? ROW : -ROW;
        }
        if (e.key === " ") {
          e.preventDefault();
          const id = row.dataset.order || "";
          if (state.selected.has(id)) state.selected.delete(id);
          else state.selected.add(id);
          render();
          updateBulk();
        }
      });
      $("select-all").addEventListener("change", (e) => {
        const on = (
          /** @type {HTMLInputElement} */
          e.target.checked
        );
        for (const o of state.rows.slice(0, 100)) {
          if (on) state.selected.add(o.order_id);
          else state.selected.delete(o.order_id);
        }
        render();
        updateBulk();
      });
      $("orders-new").addEventListener("click", () => {
        $("orders-viewport").scrollTop = 0;
        showNew();
      });
      $("panel-close").addEventListener("click", () => {
        $("order-panel").hidden = true;
        openId = "";
        if (follow) follow();
        follow = null;
        render();
      });
      $("order-panel-body").addEventListener("click", async (e) => {
        const button = (
          /** @type {HTMLButtonElement} */
          e.target
        );
        if (!button.dataset.action) return;
        state.selected = /* @__PURE__ */ new Set([button.dataset.id || ""]);
        await bulk(button.dataset.action);
        drawPanel(button.dataset.id || "");
      });
      $("bulk-cancel").addEventListener("click", () => bulk("cancel"));
      $("bulk-ship").addEventListener("click", () => bulk("mark_shipped"));
      $("export-link").addEventListener("click", exportCsv2);
      $("export-all").addEventListener("click", exportAll);
    }
  };

  // src/lib/table.js
  var Table = class {
    /**
     * @param {HTMLTableElement} table
     * @param {Column[]} columns
     * @param {{empty?: string, onOpen?: (row: any) => void, rowClass?: (row: any) => string, rowKey?: (row: any) => string, sortable?: boolean, pageSize?: number}} [options]
     */
    constructor(table2, columns, options = {}) {
      this.table = table2;
      this.columns = columns;
      this.options = options;
      this.rows = [];
      this.sort = null;
      const sortable = options.sortable !== false;
      table2.innerHTML = "<thead><tr>" + columns.map((c) => `<th class="${c.num ? "num" : ""}" data-key="${esc(c.key)}"${sortable ? ' tabindex="0" aria-sort="none"' : ""}>${esc(c.label)}</th>`).join("") + "</tr></thead><tbody></tbody>";
      this.body = /** @type {HTMLTableSectionElement} */
      table2.tBodies[0];
      if (sortable) {
        const onSort = (e) => {
          const th = (
            /** @type {HTMLElement} */
            e.target.closest("th[data-key]")
          );
          if (th) this.sortBy(
            /** @type {HTMLElement} */
            th.dataset.key || ""
          );
        };
        table2.tHead.addEventListener("click", onSort);
        table2.tHead.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            onSort(e);
          }
        });
      }
      if (options.onOpen) {
        const open3 = (e) => {
          const target = (
            /** @type {HTMLElement} */
            e.target
          );
          if (target.closest("button, input, a, select")) return;
          const tr = (
            /** @type {HTMLElement} */
            target.closest("tr[data-index]")
          );
          if (tr) options.onOpen(this.view[Number(tr.dataset.index)]);
        };
        this.body.addEventListener("click", open3);
        this.body.addEventListener("keydown", (e) => {
          if (e.key === "Enter" && /** @type {HTMLElement} */
          e.target.tagName === "TR") open3(e);
        });
      }
      this.view = [];
      this.shown = options.pageSize || Infinity;
      table2.addEventListener("click", (e) => {
        if (
          /** @type {HTMLElement} */
          e.target.dataset.more !== void 0
        ) {
          this.shown += options.pageSize || Infinity;
          this.render();
        }
      });
    }
    /** @param {any[]} rows */
    set(rows) {
      this.rows = rows;
      this.shown = this.options.pageSize || Infinity;
      this.render();
    }
    /** @param {string} key */
    sortBy(key) {
      this.sort = this.sort && this.sort.key === key ? { key, desc: !this.sort.desc } : { key, desc: false };
      this.table.tHead.querySelectorAll("th").forEach((th) => th.setAttribute("aria-sort", th.dataset.key === key ? this.sort.desc ? "descending" : "ascending" : "none"));
      this.render();
    }
    render() {
      let rows = this.rows;
      if (this.sort) {
        const column = this.columns.find((c) => c.key === this.sort.key);
        const value = column && column.value ? column.value : (r) => r[this.sort.key];
        const number = column && column.num;
        const sign = this.sort.desc ? -1 : 1;
        rows = [...rows].sort((a, b) => {
          const x = value(a), y = value(b);
          const order = number ? Number(x ?? -Infinity) - Number(y ?? -Infinity) : String(x ?? "").localeCompare(String(y ?? ""));
          return sign * order;
        });
      }
      this.view = rows;
      if (!rows.length) {
        this.body.innerHTML = `<tr class="empty"><td colspan="${this.columns.length}" class="muted">${esc(this.options.empty || "nothing to show")}</td></tr>`;
        return;
      }
      const focusable = this.options.onOpen ? ' tabindex="0"' : "";
      const more = rows.length > this.shown ? `<tr class="more"><td colspan="${this.columns.length}"><button type="button" data-more>Show more</button> <span class="muted">${this.shown} of ${rows.length} shown</span></td></tr>` : "";
      this.body.innerHTML = rows.slice(0, this.shown).map((row, i) => {
        const cls = this.options.rowClass ? this.options.rowClass(row) : "";
        const key = this.options.rowKey ? ` data-key="${esc(this.options.rowKey(row))}"` : "";
        return `<tr data-index="${i}"${key} class="${esc(cls)}"${focusable}>` + this.columns.map((c) => `<td class="${c.num ? "num" : ""}">${c.html ? c.html(row) : esc(row[c.key])}</td>`).join("") + "</tr>";
      }).join("") + more;
    }
  };

  // src/pages/fraud.js
  var chart3 = null;
  var timer2 = 0;
  var queue = null;
  var openId2 = "";
  var PAST = { approve: "approved", reject: "rejected" };
  function queueTable() {
    if (queue) return queue;
    queue = new Table($("fraud-queue-table"), [
      { key: "order_id", label: "order", html: (o) => `<span class="id">${esc(o.order_id)}</span>` },
      { key: "customer_id", label: "customer" },
      { key: "risk_score", label: "risk", num: true, html: (o) => `<b class="${o.risk_score >= 80 ? "bad" : ""}">${esc(o.risk_score)}</b>` },
      { key: "risk_reasons", label: "reasons", html: (o) => `<span class="reasons">${esc((o.risk_reasons || []).join("; "))}</span>`, value: (o) => (o.risk_reasons || []).join(";") },
      { key: "order_total", label: "total", num: true, html: (o) => esc(money(o.order_total, o.currency)) },
      { key: "flagged_at", label: "flagged", html: (o) => esc(when(o.flagged_at)) },
      { key: "decide", label: "decision", html: (o) => `<span class="decide"><button class="ok" data-review="approve" data-id="${esc(o.order_id)}">Approve</button><button class="danger" data-review="reject" data-id="${esc(o.order_id)}">Reject</button></span>` }
    ], { empty: "Nothing to review.", onOpen: (o) => showContext(o.order_id), rowKey: (o) => o.order_id, rowClass: (o) => o.order_id === openId2 ? "open" : "" });
    return queue;
  }
  async function load3() {
    const stats = loadStats();
    try {
      const q = await api("/api/dashboard/fraud-queue");
      queueTable().set(q.orders);
      $("fraud-empty").hidden = q.orders.length > 0;
      showState($("fraud-state"), null);
    } catch (e) {
      showState($("fraud-state"), "Cannot read the review queue: " + e.message);
    }
    await stats;
  }
  async function loadStats() {
    try {
      const [s, audit] = await Promise.all([api("/api/dashboard/fraud-stats?bucket=day"), api("/api/dashboard/fraud-audit?days=30&limit=100")]);
      $("fraud-flagged-share").textContent = pct(s.totals.flagged_share);
      $("fraud-rate").textContent = pct(s.totals.fraud_rate);
      $("fraud-fp-rate").textContent = pct(s.totals.false_positive_rate);
      $("fraud-screened").textContent = int(s.totals.screened);
      if (!chart3) chart3 = lineChart($("chart-fraud"), ["flagged share %", "fraud rate %", "false-positive rate %"]);
      const xs = s.series.map((w) => Date.parse(w.window_start) / 1e3);
      const v = (key) => s.series.map((w) => w[key] === null ? null : Number(w[key]) * 100);
      chart3.setData([xs, v("flagged_share"), v("fraud_rate"), v("false_positive_rate")]);
      chart3.setScale("x", { min: Date.parse(s.from) / 1e3, max: Date.parse(s.to) / 1e3 });
      $("fraud-reasons").innerHTML = s.reasons.map((r) => `<tr><td>${esc(r.reason)}</td><td class="num">${int(r.orders)}</td><td class="num">${int(r.flagged)}</td></tr>`).join("") || '<tr><td colspan="3" class="muted">no screened orders in 30 days</td></tr>';
      $("fraud-audit").innerHTML = audit.reviews.map((r) => `<tr data-order="${esc(r.order_id)}"><td>${esc(when(r.reviewed_at))}</td><td class="id">${esc(r.order_id)}</td><td>${esc(r.customer_id)}</td><td>${esc(r.review)}</td><td>${esc(r.reviewer || "–")}</td><td>${esc(r.review_note || "")}</td><td class="outcome">…</td></tr>`).join("") || '<tr><td colspan="7" class="muted">no reviews in 30 days</td></tr>';
      outcomes(audit.reviews.slice(0, 20));
    } catch (e) {
      showState($("fraud-state"), "Cannot read the fraud figures: " + e.message);
    }
  }
  async function outcomes(reviews) {
    await Promise.all(reviews.map(async (r) => {
      const cell = $("fraud-audit").querySelector(`tr[data-order="${CSS.escape(r.order_id)}"] .outcome`);
      try {
        const o = await api(`/api/orders/${encodeURIComponent(r.order_id)}`);
        if (cell) cell.innerHTML = `<span class="status ${esc(o.status)}">${esc(o.status)}</span>${o.cancel_reason ? ` (${esc(words(o.cancel_reason))})` : ""}`;
      } catch {
        if (cell) cell.textContent = "–";
      }
    }));
  }
  async function showContext(id) {
    openId2 = id;
    queueTable().render();
    $("fraud-context-panel").hidden = false;
    $("fraud-context").innerHTML = '<p class="muted">loading…</p>';
    try {
      const c = await api(`/api/dashboard/fraud-context/${encodeURIComponent(id)}`);
      const o = c.order, u = c.customer.usual || {}, cur = o.currency || "USD";
      const usualPlace = (c.customer.places || []).some((p) => p.address_key === o.address_key);
      const usualIp = (c.customer.ips || []).some((p) => p.client_ip === o.client_ip);
      const avg = Number(u.average_total);
      const reasons = c.screening ? c.screening.reasons || [] : [];
      $("fraud-context").innerHTML = `<div class="grid2"><div><h3>Order <span class="id">${esc(o.order_id)}</span></h3><p>${esc(money(o.total, cur))} · ${esc(when(o.placed_at))}</p><p>ships to ${esc(o.city)}, ${esc(o.country)} ${usualPlace ? "(a usual place)" : "<b>(new place)</b>"}</p><p>from IP ${esc(o.client_ip)} ${usualIp ? "(usual)" : "<b>(new IP)</b>"}</p><h4>Risk breakdown</h4>` + (c.screening ? `<p>score <b>${esc(c.screening.score)}</b> by model ${esc(c.screening.model_version)}</p><ul>${reasons.map((r) => `<li>${esc(r)}</li>`).join("") || "<li>no single reason</li>"}</ul>` : "<p>–</p>") + `</div><div><h3>The customer's usual</h3><p>${int(u.orders)} earlier orders, average ${esc(money(u.average_total, cur))}, largest ${esc(money(u.largest_total, cur))}${avg > 0 ? ` — this one is <b>${esc((Number(o.total) / avg).toFixed(1))}×</b> the average` : ""}</p><p>first order ${esc(when(u.first_order_at)) || "— this is the first"}</p><p>places: ${(c.customer.places || []).map((p) => `${esc(p.city)}, ${esc(p.country)} ×${int(p.orders)}`).join("; ") || "–"}</p><p>IPs: ${(c.customer.ips || []).map((p) => `${esc(p.client_ip)} ×${int(p.orders)}`).join("; ") || "–"}</p><h4>Earlier flags</h4><p>${(c.customer.earlier_flags || []).map((f) => `${esc(when(f.scored_at))} score ${esc(f.score)} → ${esc(f.review || "awaiting review")}`).join("<br>") || "none"}</p></div></div>`;
    } catch (e) {
      $("fraud-context").innerHTML = `<p class="bad">${esc(e.message)}</p>`;
    }
  }
  async function review(button) {
    const decision = (
      /** @type {"approve"|"reject"} */
      button.dataset.review
    );
    const id = button.dataset.id || "";
    const note = $("fraud-note").value.trim();
    if (decision === "reject" && !window.confirm(`Reject order ${id}? It is cancelled and its stock released.${note ? "" : " (No note given.)"}`)) return;
    button.disabled = true;
    const body = { decision, ...note ? { note } : {}, ...$("fraud-reviewer").value.trim() ? { reviewer: $("fraud-reviewer").value.trim() } : {} };
    try {
      const r = await api(`/api/admin/orders/${encodeURIComponent(id)}/review`, { method: "POST", json: body });
      const status = r.status || r.order && r.order.status || "";
      toast(`${id}: ${PAST[decision]}${status ? " → " + status : ""}`);
      const q = queueTable();
      q.set(q.rows.filter((o) => o.order_id !== id));
      $("fraud-empty").hidden = q.rows.length > 0;
      $("fraud-note").value = "";
      if (openId2 === id) {
        $("fraud-context-panel").hidden = true;
        openId2 = "";
      }
      loadStats();
    } catch (e) {
      showState($("fraud-state"), `Cannot ${decision} ${id}: ${e.message}`);
      button.disabled = false;
    }
  }
  var fraud = {
    enter() {
      load3();
      timer2 = window.setInterval(load3, 1e4);
    },
    leave() {
      clearInterval(timer2);
    },
    init() {
      $("fraud-queue-table").addEventListener("click", (e) => {
        const button = (
          /** @type {HTMLButtonElement} */
          e.target
        );
        if (button.dataset && button.dataset.review) review(button);
      });
      $("fraud-context-close").addEventListener("click", () => {
        $("fraud-context-panel").hidden = true;
        openId2 = "";
        queueTable().render();
      });
    }
  };

  // src/pages/inventory.js
  var table = null;
  var all = [];
  function stockTable() {
    if (table) return table;
    table = new Table($("stock-table"), [
      { key: "product_id", label: "product", html: (p) => `<span class="id">${esc(p.product_id)}</span>` },
      { key: "name", label: "name" },
      { key: "category", label: "category" },
      { key: "unit_price", label: "price", num: true, html: (p) => esc(money(p.unit_price, p.currency)) },
      { key: "available", label: "available", num: true, value: (p) => p.stock.available, html: (p) => `${int(p.stock.available)}${p.low_stock ? ' <span class="pill bad">low</span>' : ""}` },
      { key: "reserved", label: "reserved", num: true, value: (p) => p.stock.reserved, html: (p) => int(p.stock.reserved) },
      { key: "sold", label: "sold", num: true, value: (p) => p.stock.sold, html: (p) => int(p.stock.sold) },
      { key: "adjust", label: "", html: (p) => `<button data-adjust="${esc(p.product_id)}">Adjust</button>` }
    ], {
      empty: "No catalog products yet. Import a catalog with `orderstream catalog import FILE` (CSV: product_id,name,category,unit_price,stock).",
      rowClass: (p) => p.low_stock ? "low" : "",
      rowKey: (p) => p.product_id,
      pageSize: 200,
      onOpen: (p) => openProduct(p.product_id)
    });
    return table;
  }
  function filter() {
    const q = $("stock-q").value.trim().toLowerCase();
    const low = $("stock-low").checked;
    const rows = all.filter((p) => (!low || p.low_stock) && (!q || p.product_id.toLowerCase().includes(q) || String(p.name).toLowerCase().includes(q) || String(p.category).toLowerCase().includes(q)));
    stockTable().set(rows);
    const lowCount = all.filter((p) => p.low_stock).length;
    $("stock-count").textContent = `${int(rows.length)} of ${int(all.length)} products · ${int(lowCount)} low on stock`;
  }
  function openProduct(id) {
    const p = all.find((x) => x.product_id === id);
    $("product-detail").hidden = false;
    $("product-detail").dataset.product = id;
    $("product-detail-body").innerHTML = p ? `<h3>${esc(p.name)}</h3><p><span class="id">${esc(id)}</span> · ${esc(p.category)} · ${esc(money(p.unit_price, p.currency))} · ${int(p.stock.available)} available</p>` : `<h3 class="id">${esc(id)}</h3><p class="muted">not in the catalog</p>`;
    showPicks($("product-recs"), () => boughtTogether(id), "Nothing is bought with it often enough yet.");
  }
  async function load4() {
    try {
      all = await allProducts(true);
      showState($("inventory-state"), null);
      filter();
    } catch (e) {
      all = [];
      stockTable().set([]);
      showState($("inventory-state"), "Cannot read the stock: " + e.message);
    }
  }
  async function setStock(productId, change, reason) {
    return api(`/api/admin/products/${encodeURIComponent(productId)}/stock`, {
      method: "PUT",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      json: { ...change, ...reason ? { reason } : {} }
    });
  }
  function openAdjust(id) {
    const p = all.find((x) => x.product_id === id);
    if (!p) return;
    const f = (
      /** @type {HTMLFormElement} */
      $("adjust-form")
    );
    f.hidden = false;
    f.product_id.value = id;
    $("adjust-what").textContent = `${p.name} (${id}): ${int(p.stock.available)} available`;
    f.amount.value = "";
    f.reason.value = "";
    showState($("adjust-state"), null);
    f.amount.focus();
  }
  async function submitAdjust(e) {
    e.preventDefault();
    const f = (
      /** @type {HTMLFormElement} */
      $("adjust-form")
    );
    const amount = f.amount.value.trim();
    const mode = f.mode.value;
    if (!/^-?\d+$/.test(amount) || mode === "set" && amount.startsWith("-")) {
      showState($("adjust-state"), mode === "set" ? "the new level is a whole number, 0 or more" : "the change is a whole number such as 10 or -3");
      return;
    }
    if (!f.reason.value.trim()) {
      showState($("adjust-state"), "say why (kept with the stock change)");
      return;
    }
    try {
      const change = mode === "set" ? { quantity: Number(amount) } : { delta: Number(amount) };
      const r = await setStock(f.product_id.value, change, f.reason.value.trim());
      toast(r.after ? `${f.product_id.value}: ${r.before.available} → ${r.after.available} available` : `${f.product_id.value}: queued`);
      f.hidden = true;
      load4();
    } catch (err) {
      showState($("adjust-state"), err.message);
    }
  }
  function exportCsv3() {
    const lines = [csvLine(["product_id", "name", "category", "unit_price", "currency", "available", "reserved", "sold", "low_stock"])];
    for (const p of stockTable().view) lines.push(csvLine([p.product_id, p.name, p.category, p.unit_price, p.currency, p.stock.available, p.stock.reserved, p.stock.sold, p.low_stock]));
    saveText(`stock-${(/* @__PURE__ */ new Date()).toISOString().slice(0, 10)}.csv`, lines.join("\n") + "\n");
  }
  async function importCsv(file) {
    const text = await file.text();
    const lines = text.split(/\r?\n/).filter((l) => l.trim());
    const header = (lines.shift() || "").split(",").map((h) => h.trim().toLowerCase());
    const idCol = header.indexOf("product_id"), qtyCol = header.findIndex((h) => h === "available" || h === "quantity" || h === "stock");
    if (idCol < 0 || qtyCol < 0) {
      showState($("inventory-state"), "the CSV needs a header with product_id and available (or quantity, or stock)");
      return;
    }
    const known = new Set(all.map((p) => p.product_id));
    const problems = [];
    const changes = [];
    lines.forEach((line, i) => {
      const cells = line.split(",").map((c) => c.trim().replace(/^"|"$/g, ""));
      const id = cells[idCol], qty = cells[qtyCol];
      if (!known.has(id)) problems.push(`line ${i + 2}: unknown product ${id}`);
      else if (!/^\d+$/.test(qty)) problems.push(`line ${i + 2}: ${qty} is not a whole number of units`);
      else changes.push([id, Number(qty)]);
    });
    if (problems.length) {
      showState($("inventory-state"), `Nothing imported: ${problems.length} bad line(s). ${problems.slice(0, 5).join("; ")}`);
      return;
    }
    if (!window.confirm(`Set the available stock of ${changes.length} products from ${file.name}?`)) return;
    let done = 0;
    const failed = [];
    for (const [id, qty] of changes) {
      try {
        await setStock(String(id), { quantity: Number(qty) }, `CSV import ${file.name}`);
        done++;
      } catch (e) {
        failed.push(`${id}: ${e.message}`);
      }
    }
    showState($("inventory-state"), failed.length ? `${done} set, ${failed.length} failed: ${failed.slice(0, 5).join("; ")}` : null);
    toast(`stock import: ${done} products set`);
    load4();
  }
  var inventory = {
    enter() {
      load4();
    },
    init() {
      $("stock-q").addEventListener("input", filter);
      $("stock-low").addEventListener("change", filter);
      $("stock-table").addEventListener("click", (e) => {
        const id = (
          /** @type {HTMLElement} */
          e.target.dataset.adjust
        );
        if (id) openAdjust(id);
      });
      $("product-recs").addEventListener("click", (e) => {
        const li = (
          /** @type {HTMLElement} */
          /** @type {HTMLElement} */
          e.target.closest("li[data-product]")
        );
        if (li) openProduct(li.dataset.product || "");
      });
      $("product-detail-close").addEventListener("click", () => {
        $("product-detail").hidden = true;
      });
      $("adjust-form").addEventListener("submit", submitAdjust);
      $("adjust-cancel").addEventListener("click", () => {
        $("adjust-form").hidden = true;
      });
      $("stock-export").addEventListener("click", exportCsv3);
      $("stock-import").addEventListener("change", (e) => {
        const input = (
          /** @type {HTMLInputElement} */
          e.target
        );
        if (input.files && input.files[0]) importCsv(input.files[0]).finally(() => {
          input.value = "";
        });
      });
    }
  };

  // src/pages/customers.js
  var daysChart = null;
  function drawSegments(s) {
    const by = Object.fromEntries(s.segments.map((x) => [x.segment, x]));
    $("cust-total").textContent = int(s.customers);
    $("cust-high").textContent = int(by.high_value ? by.high_value.customers : 0);
    $("cust-churn").textContent = int(by.churn_risk ? by.churn_risk.customers : 0);
    $("cust-rules").textContent = `As of ${s.as_of}: ${s.rules}.`;
    $("cust-segments").innerHTML = s.segments.map((x) => `<tr data-segment="${esc(x.segment)}"><td><span class="status">${esc(words(x.segment))}</span></td><td class="num">${int(x.customers)}</td><td class="num">${pct(x.share)}</td><td class="num">${int(x.orders)}</td><td class="num">${esc(money(x.lifetime_value, s.currency))}</td><td class="num">${esc(money(x.average_lifetime_value, s.currency))}</td></tr>`).join("") || '<tr><td colspan="6" class="muted">no customers yet</td></tr>';
    $("cust-list-title").textContent = `${words(s.segment)}: most valuable first`;
    $("cust-list").innerHTML = s.list.map((c) => `<tr><td><a class="id" href="#orders/customer=${encodeURIComponent(c.customer_id)}">${esc(c.customer_id)}</a></td><td class="num">${int(c.orders)}</td><td class="num">${esc(money(c.lifetime_value, c.currency))}</td><td class="num">${esc(money(c.average_order_value, c.currency))}</td><td>${esc(c.last_order_at.slice(0, 10))}</td><td class="num">${int(c.days_since_last_order)}</td></tr>`).join("") || '<tr><td colspan="6" class="muted">no customers in this segment</td></tr>';
  }
  function drawClv(clv) {
    const max = Math.max(1, ...clv.buckets.map((b) => b.customers));
    const label = (b) => b.to ? `${money(b.from, clv.currency)} – ${money(b.to, clv.currency)}` : `${money(b.from, clv.currency)} +`;
    $("cust-clv").innerHTML = clv.buckets.map((b) => `<div class="bar-row"><span class="bar-label">${esc(label(b))}</span><span class="bar" data-w="${(b.customers / max * 100).toFixed(1)}"></span><span class="bar-value">${int(b.customers)}</span></div>`).join("");
    $("cust-clv").querySelectorAll(".bar").forEach((b) => {
      b.style.width = b.dataset.w + "%";
    });
    const m = (v) => v === null ? "–" : money(v, clv.currency);
    $("cust-clv-stats").textContent = `median ${m(clv.p50)} · p75 ${m(clv.p75)} · p90 ${m(clv.p90)} · p99 ${m(clv.p99)} · mean ${m(clv.mean)}`;
  }
  function drawCohorts(c) {
    const width = Math.max(0, ...c.cohorts.map((x) => x.retention.length));
    let html = '<div class="scroll"><table class="heat cohorts"><tr><th>cohort</th><th class="num">customers</th>' + Array.from({ length: width }, (_, k) => `<th>+${k}</th>`).join("") + "</tr>";
    for (const row of c.cohorts) {
      html += `<tr><th>${esc(row.cohort.slice(0, 7))}</th><td class="num">${int(row.customers)}</td>` + row.retention.map((r, k) => `<td title="${esc(row.cohort.slice(0, 7))} +${k}: ${int(row.active[k])} of ${int(row.customers)}" data-alpha="${k === 0 ? "0" : Math.min(1, r * 4).toFixed(2)}">${k === 0 ? "" : esc((r * 100).toFixed(1))}</td>`).join("") + "</tr>";
    }
    $("cust-cohorts").innerHTML = c.cohorts.length ? html + "</table></div>" : '<p class="muted">no cohorts yet</p>';
    $("cust-cohorts").querySelectorAll("td[data-alpha]").forEach((td) => {
      td.style.background = `rgba(36,87,214,${td.dataset.alpha})`;
    });
  }
  function drawDays(d) {
    if (!daysChart) daysChart = lineChart($("chart-new-returning"), ["new", "returning"], { bars: false });
    const xs = d.days.map((x) => Date.parse(x.day + "T00:00:00Z") / 1e3);
    daysChart.setData([xs, d.days.map((x) => x.new_customers), d.days.map((x) => x.returning_customers)]);
    const all2 = d.new_customers + d.returning_customers;
    $("cust-new-share").textContent = all2 ? pct(d.new_customers / all2) : "–";
    $("chart-new-returning").dataset.drawn = String(d.days.length);
  }
  async function load5() {
    const segment = $("cust-segment").value;
    showState($("customers-state"), "loading…", "muted");
    try {
      const [s, clv, cohorts, days] = await Promise.all([
        api(`/api/analytics/customers/segments?segment=${encodeURIComponent(segment)}&limit=50`),
        api("/api/analytics/customers/clv"),
        api("/api/analytics/customers/cohorts?months=12"),
        api("/api/analytics/customers/new-vs-returning")
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
  var customers = {
    enter() {
      load5();
    },
    init() {
      $("cust-segment").addEventListener("change", load5);
      $("cust-segments").addEventListener("click", (e) => {
        const row = (
          /** @type {HTMLElement} */
          /** @type {HTMLElement} */
          e.target.closest("tr[data-segment]")
        );
        if (row) {
          $("cust-segment").value = row.dataset.segment;
          load5();
        }
      });
    }
  };

  // src/pages/forecast.js
  var forecastChart = null;
  async function loadForecast() {
    const scope = $("fc-scope").value, key = $("fc-key").value.trim();
    const params = new URLSearchParams({ metric: $("fc-metric").value, horizon: $("fc-horizon").value || "30", currency: $("fc-currency").value || "USD" });
    if (scope === "product") {
      if (!key) {
        $("fc-model").textContent = "Type a product id.";
        return;
      }
      params.set("product_id", key);
    }
    if (scope === "category") {
      if (!key) {
        $("fc-model").textContent = "Type a category.";
        return;
      }
      params.set("category", key);
    }
    const el = $("chart-forecast");
    $("fc-model").className = "muted";
    $("fc-model").textContent = "forecasting…";
    try {
      const f = await api("/api/analytics/demand-forecast?" + params);
      const day2 = (d) => Date.parse(d + "T00:00:00Z") / 1e3;
      const nH = f.history.length;
      const xs = [...f.history.map((h) => day2(h.date)), ...f.points.map((p) => day2(p.date))];
      const history2 = [...f.history.map((h) => h.value), ...f.points.map(() => null)];
      const pick = (k) => [...f.history.map((h, i) => i === nH - 1 ? h.value : null), ...f.points.map((p) => p[k])];
      const data = [xs, history2, pick("forecast"), pick("hi95"), pick("lo95"), pick("hi80"), pick("lo80")];
      const b = f.backtest || {};
      const errors = b.folds ? `backtest WAPE ${pct(b.wape)}, MASE ${b.mase == null ? "–" : Number(b.mase).toFixed(2)} over ${b.folds} folds` : "too little history to backtest";
      $("fc-model").textContent = `${f.scope} ${f.key} · ${f.metric} (${f.currency}) · as of ${f.as_of} · model ${f.model} · ${errors}`;
      el.innerHTML = "";
      const width = Math.max(300, el.clientWidth || el.parentElement.clientWidth - 32);
      const band = (label) => ({ label, stroke: "rgba(36,87,214,.35)", width: 1 });
      forecastChart = new uPlot({
        width,
        height: 300,
        series: [
          {},
          { label: "actual", stroke: "#1d2330", width: 1.5 },
          { label: "forecast", stroke: "#2457d6", width: 2 },
          band("95% high"),
          band("95% low"),
          band("80% high"),
          band("80% low")
        ],
        bands: [{ series: [3, 4], fill: "rgba(36,87,214,.10)" }, { series: [5, 6], fill: "rgba(36,87,214,.22)" }],
        axes: [{}, { size: 70 }]
      }, data, el);
      el.dataset.drawn = String(f.points.length);
    } catch (e) {
      el.innerHTML = "";
      delete el.dataset.drawn;
      $("fc-model").className = "bad";
      $("fc-model").textContent = "No forecast: " + e.message;
    }
  }
  var plan = { page: 1, pages: 1 };
  async function loadPlan() {
    const params = new URLSearchParams({
      lead_time_days: $("inv-lead").value || "7",
      service_level: $("inv-sl").value || "0.95",
      sort: $("inv-sort").value,
      order: $("inv-order").value,
      page: String(plan.page),
      page_size: "50"
    });
    if ($("inv-q").value.trim()) params.set("q", $("inv-q").value.trim());
    if ($("inv-low").checked) params.set("low_stock", "true");
    try {
      const r = await api("/api/analytics/inventory?" + params);
      plan.pages = Math.max(1, Math.ceil(r.total / r.page_size));
      $("inv-count").className = "muted";
      $("inv-count").textContent = `${int(r.total)} products · demand as of ${r.as_of} · lead time ${r.lead_time_days} d at ${(r.service_level * 100).toFixed(1)}% service`;
      $("inv-page").textContent = `page ${r.page} of ${plan.pages}`;
      const num = (v, digits = 1) => v == null ? "–" : Number(v).toFixed(digits);
      $("inv-plan").innerHTML = r.products.map((p) => `<tr data-product="${esc(p.product_id)}" class="${p.low_stock ? "low" : ""}"><td>${esc(p.product_id)}</td><td>${esc(p.name)}</td><td class="num">${int(p.available)}</td><td class="num">${int(p.reserved)}</td><td class="num">${num(p.avg_daily_demand_30d, 2)}</td><td class="num">${num(p.days_of_cover)}</td><td>${esc(p.stockout_date || "–")}</td><td class="num">${num(p.reorder_point)}</td><td class="num">${int(p.suggested_order_qty)}</td><td class="num">${num(p.turnover_30d, 2)}</td><td class="num">${int(p.stockout_incidents_90d)}</td><td>${esc(p.model || "history only")}${p.overstock ? ' <span class="status">overstock</span>' : ""}</td></tr>`).join("") || '<tr><td colspan="12" class="muted">No catalog products match. Import a catalog with <code>orderstream catalog import FILE</code>.</td></tr>';
    } catch (e) {
      $("inv-count").className = "bad";
      $("inv-count").textContent = "No plan: " + e.message;
      $("inv-plan").innerHTML = "";
    }
  }
  var forecast = {
    enter() {
      if (!forecastChart) loadForecast();
      loadPlan();
    },
    init() {
      $("fc-form").addEventListener("submit", (e) => {
        e.preventDefault();
        loadForecast();
      });
      $("inv-form").addEventListener("submit", (e) => {
        e.preventDefault();
        plan.page = 1;
        loadPlan();
      });
      $("inv-prev").addEventListener("click", () => {
        if (plan.page > 1) {
          plan.page -= 1;
          loadPlan();
        }
      });
      $("inv-next").addEventListener("click", () => {
        if (plan.page < plan.pages) {
          plan.page += 1;
          loadPlan();
        }
      });
      $("inv-plan").addEventListener("click", (e) => {
        const row = (
          /** @type {HTMLElement} */
          /** @type {HTMLElement} */
          e.target.closest("tr[data-product]")
        );
        if (!row) return;
        $("fc-scope").value = "product";
        $("fc-key").value = row.dataset.product;
        loadForecast();
        window.scrollTo({ top: 0, behavior: "smooth" });
      });
    }
  };

  // src/lib/metrics.js
  function parse(text) {
    const out = [];
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
      out.push({ name: m[1], labels, value: Number(m[4]) });
    }
    return out;
  }
  function requestRates(before, now) {
    const key = (s) => `${s.labels.method} ${s.labels.route}|${s.labels.status}`;
    const was = new Map(before.filter((s) => s.name === "orderstream_http_requests_total").map((s) => [key(s), s.value]));
    const routes = /* @__PURE__ */ new Map();
    for (const s of now) {
      if (s.name !== "orderstream_http_requests_total") continue;
      const delta = s.value - (was.get(key(s)) || 0);
      if (delta <= 0) continue;
      const route2 = `${s.labels.method} ${s.labels.route}`;
      const r = routes.get(route2) || { route: route2, total: 0, client: 0, server: 0 };
      const status = Number(s.labels.status);
      r.total += delta;
      if (status >= 500) r.server += delta;
      else if (status >= 400) r.client += delta;
      routes.set(route2, r);
    }
    return [...routes.values()].sort((a, b) => b.total - a.total);
  }
  function latency(before, now, route2) {
    const name = "orderstream_http_request_duration_seconds_bucket";
    const was = new Map(before.filter((s) => s.name === name && s.labels.route === route2).map((s) => [s.labels.le, s.value]));
    const buckets = now.filter((s) => s.name === name && s.labels.route === route2).map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value - (was.get(s.labels.le) || 0) })).sort((a, b) => a.le - b.le);
    const total = buckets.length ? buckets[buckets.length - 1].count : 0;
    if (total <= 0) return null;
    const at2 = (q) => {
      const rank = q * total;
      let lower = 0, below = 0;
      for (const b of buckets) {
        if (b.count >= rank) {
          if (!Number.isFinite(b.le)) return lower * 1e3;
          const inside = b.count - below;
          return (lower + (b.le - lower) * (inside > 0 ? (rank - below) / inside : 1)) * 1e3;
        }
        lower = b.le;
        below = b.count;
      }
      return lower * 1e3;
    };
    return { p50: at2(0.5), p95: at2(0.95), p99: at2(0.99), count: total };
  }

  // src/pages/system.js
  var HISTORY = 300;
  var charts2 = { throughput: null, latency: null, lag: null };
  var history = {
    /** @type {number[]} */
    t: [],
    /** @type {(number|null)[][]} */
    lat: [[], [], [], [], []],
    /** @type {number[]} */
    lag: []
  };
  var lastMetrics = null;
  var confirmLatency = null;
  var timer3 = 0;
  function drawLive2(snapshot) {
    $("sys-orders").textContent = Number(snapshot.orders_per_s).toFixed(1);
    $("sys-events").textContent = Number(snapshot.events_per_s).toFixed(1);
    const l = snapshot.confirm_latency;
    confirmLatency = l;
    $("sys-latency").textContent = l ? `${l.p50_ms} / ${l.p95_ms} / ${l.p99_ms} ms` : "–";
    if (charts2.throughput) {
      const rows = snapshot.per_second || [];
      charts2.throughput.setData([rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])]);
    }
  }
  function light(id, level, text) {
    const el = $(id);
    el.className = "light " + level;
    el.querySelector("b").textContent = text;
  }
  async function poll() {
    const now = Date.now() / 1e3;
    const [health, ready, metricsText] = await Promise.all([
      api("/api/dashboard/health").catch((e) => ({ error: e.message })),
      fetch("/readyz").then((r) => r.json()).catch(() => null),
      fetch("/metrics").then((r) => r.ok ? r.text() : "").catch(() => "")
    ]);
    if (ready) {
      const failing = Object.entries(ready.components || {}).filter(([, c]) => (
        /** @type {any} */
        c.state === "failing"
      ));
      const degraded = Object.entries(ready.components || {}).filter(([, c]) => (
        /** @type {any} */
        c.state !== "running" && /** @type {any} */
        c.state !== "failing"
      ));
      light(
        "light-service",
        failing.length ? "bad" : degraded.length ? "warn" : "ok",
        failing.length ? "failing: " + failing.map(([n]) => n).join(", ") : degraded.length ? "starting: " + degraded.map(([n]) => n).join(", ") : "ready"
      );
      $("components").innerHTML = Object.entries(ready.components || {}).map(([name, c]) => `<tr><td>${esc(name)}</td><td><span class="dot ${/** @type {any} */
      c.state === "failing" ? "bad" : (
        /** @type {any} */
        c.state === "running" ? "ok" : "warn"
      )}"></span>${esc(
        /** @type {any} */
        c.state
      )}</td><td>${esc(
        /** @type {any} */
        c.detail || ""
      )}</td></tr>`).join("");
    } else light("light-service", "bad", "no answer from /readyz");
    light("light-nats", health.nats === "connected" ? "ok" : "bad", health.nats || "unknown");
    if (health.nats === "connected") {
      $("sys-dlq").textContent = int(health.dlq_size);
      const pending = health.consumers.reduce((n, c) => n + c.pending, 0);
      light("light-lag", pending > 1e4 ? "bad" : pending > 1e3 ? "warn" : "ok", `${int(pending)} pending`);
      light("light-dlq", health.dlq_size > 0 ? "warn" : "ok", `${int(health.dlq_size)} dead letters`);
      $("consumers").innerHTML = health.consumers.map((c) => `<tr><td>${esc(c.stream)}</td><td>${esc(c.consumer)}</td><td class="num">${int(c.pending)}</td><td class="num">${int(c.ack_pending)}</td><td class="num">${int(c.redelivered)}</td></tr>`).join("");
      history.lag.push(pending);
    } else {
      $("sys-dlq").textContent = "–";
      $("consumers").innerHTML = '<tr><td colspan="5" class="muted">NATS is unavailable: live figures, lag and the DLQ are unknown</td></tr>';
      light("light-lag", "bad", "unknown");
      history.lag.push(null);
    }
    const samples = metricsText ? parse(metricsText) : null;
    let ingestLatency = null;
    if (samples && lastMetrics) {
      const rates = requestRates(lastMetrics, samples);
      const errors = rates.reduce((n, r) => n + r.server, 0), total = rates.reduce((n, r) => n + r.total, 0);
      light("light-errors", errors === 0 ? "ok" : errors / total > 0.01 ? "bad" : "warn", total ? `${pct(errors / total)} 5xx` : "no requests");
      $("routes").innerHTML = rates.map((r) => `<tr class="${r.server ? "low" : ""}"><td>${esc(r.route)}</td><td class="num">${int(r.total)}</td><td class="num">${pct(r.client / r.total)}</td><td class="num">${pct(r.server / r.total)}</td></tr>`).join("") || '<tr><td colspan="4" class="muted">no requests in the last 2 s</td></tr>';
      ingestLatency = latency(lastMetrics, samples, "/api/orders");
    }
    if (samples) lastMetrics = samples;
    history.t.push(now);
    history.lat[0].push(ingestLatency ? ingestLatency.p50 : null);
    history.lat[1].push(ingestLatency ? ingestLatency.p95 : null);
    history.lat[2].push(ingestLatency ? ingestLatency.p99 : null);
    history.lat[3].push(confirmLatency ? Number(confirmLatency.p95_ms) : null);
    history.lat[4].push(confirmLatency ? Number(confirmLatency.p99_ms) : null);
    if (history.t.length > HISTORY) {
      history.t.shift();
      history.lag.shift();
      history.lat.forEach((s) => s.shift());
    }
    if (charts2.latency) charts2.latency.setData([history.t, ...history.lat]);
    if (charts2.lag) charts2.lag.setData([history.t, history.lag]);
  }
  async function loadDlq() {
    try {
      const d = await api("/api/admin/dlq?limit=20");
      $("dlq").innerHTML = d.dead_letters.map((l) => `<tr><td>${esc(when(l.dead_lettered_at))}</td><td>${esc(l.source)}</td><td>${esc(l.original_subject)}</td><td>${esc(l.reason)}</td><td><details><summary>payload</summary><pre>${esc(l.payload.slice(0, 2e3))}</pre></details></td><td><button data-retry="${esc(l.seq)}">Retry</button></td></tr>`).join("") || '<tr><td colspan="6" class="muted">no dead letters</td></tr>';
      $("recent-errors").innerHTML = d.dead_letters.slice(0, 5).map((l) => `<li>${esc(when(l.dead_lettered_at))}: ${esc(l.reason)}</li>`).join("") || '<li class="muted">none</li>';
    } catch (e) {
      showState($("system-state"), "Cannot read the dead letters: " + e.message);
    }
  }
  async function loadAudit() {
    try {
      const a = await api("/api/admin/audit?limit=20");
      $("audit").innerHTML = a.actions.map((x) => `<tr data-action="${esc(x.action)}" class="${x.status >= 400 ? "low" : ""}"><td>${esc(when(x.at))}</td><td>${esc(x.actor)}</td><td>${esc(x.action)}</td><td>${esc(x.target)}</td><td>${esc(x.status ?? "")}</td></tr>`).join("") || '<tr><td colspan="5" class="muted">no admin actions yet</td></tr>';
    } catch (e) {
      showState($("system-state"), "Cannot read the audit: " + e.message);
    }
  }
  async function loadFulfilment() {
    const to = (/* @__PURE__ */ new Date()).toISOString().slice(0, 10);
    const from = new Date(Date.now() - 29 * 864e5).toISOString().slice(0, 10);
    try {
      const o = await operations(from, to);
      $("fulfilment").innerHTML = o.fulfilment.map((f) => `<tr><td>${esc(f.status)}</td><td class="num">${int(f.orders)}</td><td class="num">${esc(duration(f.mean_hours))}</td><td class="num">${esc(duration(f.p50_hours))}</td><td class="num">${esc(duration(f.p90_hours))}</td></tr>`).join("") || '<tr><td colspan="5" class="muted">no orders confirmed in the last 30 days</td></tr>';
    } catch (e) {
      showState($("system-state"), "Cannot read the fulfilment times: " + e.message);
    }
  }
  var system = {
    enter() {
      const admin = role() === "admin";
      $("audit-panel").classList.toggle("hidden", !admin);
      $("dlq-panel").classList.toggle("hidden", !admin);
      if (admin) {
        loadAudit();
        loadDlq();
      }
      loadFulfilment();
      if (!charts2.throughput) {
        charts2.throughput = lineChart($("chart-system"), ["orders/s", "events/s"]);
        charts2.latency = lineChart($("chart-latency"), ["ingest p50", "ingest p95", "ingest p99", "confirm p95", "confirm p99"], { yLabel: "ms" });
        charts2.lag = lineChart($("chart-lag"), ["pending messages"]);
      }
      listen(drawLive2);
      poll();
      timer3 = window.setInterval(poll, 2e3);
    },
    leave() {
      unlisten(drawLive2);
      clearInterval(timer3);
    },
    init() {
      $("dlq").addEventListener("click", async (e) => {
        const seq = (
          /** @type {HTMLElement} */
          e.target.dataset.retry
        );
        if (!seq || !window.confirm(`Send dead letter ${seq} back to where it came from?`)) return;
        try {
          await api(`/api/admin/dlq/${seq}/retry`, { method: "POST" });
          toast(`dead letter ${seq} retried`);
          loadDlq();
        } catch (err) {
          showState($("system-state"), `Retry of ${seq} failed: ${err.message}`);
        }
      });
    }
  };

  // src/pages/track.js
  var STEPS = ["pending", "confirmed", "processing", "shipped", "delivered"];
  var DAYS_AFTER_SHIPPING = 2;
  var DAYS_AFTER_PLACING = 5;
  var follow2 = null;
  var following = null;
  function estimatedDelivery(o) {
    const at2 = (s) => (o.history || []).find((h) => h.status === s);
    if (o.status === "cancelled") return null;
    const delivered = at2("delivered");
    if (delivered) return { date: delivered.at, actual: true };
    const shipped = at2("shipped");
    const from = shipped ? Date.parse(shipped.at) : Date.parse(o.placed_at);
    const days = shipped ? DAYS_AFTER_SHIPPING : DAYS_AFTER_PLACING;
    return { date: new Date(from + days * 864e5).toISOString(), actual: false };
  }
  function draw(o) {
    const reached = new Map((o.history || []).map((h) => [h.status, h.at]));
    reached.set("pending", o.placed_at);
    const cancelled = o.status === "cancelled";
    const index = STEPS.indexOf(o.status);
    const eta = estimatedDelivery(o);
    $("track-result").innerHTML = `<h3>Order <span class="id">${esc(o.order_id)}</span></h3><p>${esc(money(o.total, o.currency))} · ${o.items.length} item${o.items.length === 1 ? "" : "s"} · placed ${esc(when(o.placed_at))}</p><ol class="steps${cancelled ? " cancelled" : ""}" data-status="${esc(o.status)}">` + STEPS.map((s, i) => {
      const done = reached.has(s) || !cancelled && i <= index;
      return `<li class="${done ? "done" : ""}${s === o.status ? " current" : ""}"><b>${esc(s)}</b><span>${esc(when(reached.get(s)))}</span></li>`;
    }).join("") + "</ol>" + (cancelled ? `<p class="bad">Cancelled${o.cancel_reason ? ": " + esc(words(o.cancel_reason)) : ""}${o.refunded ? " — refunded" : ""}.</p>` : `<p>${eta && eta.actual ? "Delivered" : "Estimated delivery"}: <b id="track-eta">${esc(day(eta && eta.date))}</b></p>`);
    $("track-status").textContent = o.status;
  }
  function stop() {
    if (follow2) follow2();
    follow2 = null;
  }
  async function open2(kind, key) {
    stop();
    following = { kind, key };
    showState($("track-state"), null);
    const path = kind === "token" ? `/api/track/${encodeURIComponent(key)}` : `/api/orders/${encodeURIComponent(key)}`;
    const refresh = async () => {
      try {
        draw(await api(path));
        $("track-live").textContent = "following live";
      } catch (e) {
        $("track-result").innerHTML = "";
        showState($("track-state"), e.status === 410 ? "This tracking link has expired." : e.status === 404 ? "No such order (or the link is not valid)." : e.message);
        stop();
      }
    };
    await refresh();
    if (!following || following.key !== key) return;
    const again = () => {
      if (following && following.key === key) refresh();
    };
    const shown2 = (state2) => {
      $("track-live").textContent = state2 === "live" ? "following live" : "reconnecting…";
    };
    if (kind === "order") {
      follow2 = followOrder(key, again, shown2);
    } else {
      const source = new EventSource(`${path}/stream`);
      source.addEventListener("status", again);
      source.onerror = () => shown2("reconnecting");
      follow2 = () => source.close();
    }
  }
  async function customerOrders(customer) {
    stop();
    try {
      const page = await api(`/api/orders?customer_id=${encodeURIComponent(customer)}&limit=50`);
      $("track-result").innerHTML = page.orders.length ? `<h3>Orders of ${esc(customer)}</h3><table><tbody>` + page.orders.map((o) => `<tr data-order="${esc(o.order_id)}" tabindex="0"><td class="id">${esc(o.order_id)}</td><td>${esc(when(o.placed_at))}</td><td><span class="status ${esc(o.status)}">${esc(o.status)}</span></td><td class="num">${esc(money(o.total, o.currency))}</td></tr>`).join("") + "</tbody></table>" : `<p class="muted">${esc(customer)} has no orders.</p>`;
      showState($("track-state"), null);
    } catch (e) {
      showState($("track-state"), e.message);
    }
  }
  var track = {
    /** @param {string} [arg] a tracking token from the link */
    enter(arg) {
      if (arg) open2("token", arg);
    },
    leave() {
      stop();
      following = null;
    },
    init() {
      $("track-form").addEventListener("submit", (e) => {
        e.preventDefault();
        const value = $("track-input").value.trim();
        if (!value) return showState($("track-state"), "type an order id, a customer id or paste a tracking link");
        const token = /t1\.[\w.-]+/.exec(value);
        if (token) open2("token", token[0]);
        else if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) open2("order", value);
        else customerOrders(value);
      });
      $("track-result").addEventListener("click", (e) => {
        const row = (
          /** @type {HTMLElement} */
          /** @type {HTMLElement} */
          e.target.closest("tr[data-order]")
        );
        if (row) open2("order", row.dataset.order || "");
      });
    }
  };

  // src/pages/new-order.js
  var pendingKey = "";
  async function fillProducts() {
    const products = [...(await productNames()).values()];
    const select = $("no-product");
    if (select.options.length === products.length && products.length) return;
    select.innerHTML = products.map((p) => `<option value="${esc(p.product_id)}" data-price="${esc(p.unit_price)}" data-currency="${esc(p.currency)}">${esc(p.name)} — ${esc(money(p.unit_price, p.currency))} (${esc(p.stock.available)} left)</option>`).join("") || '<option value="">no catalog products: import a catalog first</option>';
  }
  async function submit(e) {
    e.preventDefault();
    const f = (
      /** @type {HTMLFormElement} */
      $("new-order-form")
    );
    const option = f.product.selectedOptions[0];
    if (!option || !option.value) return showState($("new-order-state"), "choose a product (the catalog is empty?)");
    const quantity = Number(f.quantity.value);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > 1e3) return showState($("new-order-state"), "quantity is a whole number from 1 to 1000");
    if (!f.customer_id.value.trim()) return showState($("new-order-state"), "customer id is required");
    const order = {
      customer_id: f.customer_id.value.trim(),
      currency: option.dataset.currency,
      items: [{ product_id: option.value, quantity, unit_price: option.dataset.price }],
      payment_method: f.payment_method.value,
      shipping_address: { line1: f.line1.value.trim() || "1 Test Street", city: f.city.value.trim() || "Springfield", postal_code: f.postal_code.value.trim() || "00000", country: (f.country.value.trim() || "US").toUpperCase() }
    };
    pendingKey = pendingKey || crypto.randomUUID();
    try {
      const r = await api("/api/orders", { method: "POST", headers: { "Idempotency-Key": pendingKey }, json: order });
      pendingKey = "";
      showState($("new-order-state"), null);
      $("new-order-result").innerHTML = `<p>Accepted <span class="id">${esc(r.order_id)}</span>: ${esc(money(r.total, r.currency))} (tax ${esc(money(r.tax, r.currency))}), ${esc(r.status)}.</p><p><a href="#track/${esc(r.tracking_url ? r.tracking_url.split("/").pop() : "")}" id="new-order-track">Track this order</a></p>`;
      toast(`order ${r.order_id} placed`);
    } catch (err) {
      const field = err.body && err.body.field ? ` (${err.body.field})` : "";
      showState($("new-order-state"), err.message + field);
    }
  }
  var newOrder = {
    enter() {
      fillProducts().catch((e) => showState($("new-order-state"), "Cannot read the catalog: " + e.message));
    },
    init() {
      $("new-order-form").addEventListener("submit", submit);
      $("new-order-form").addEventListener("input", () => {
        pendingKey = "";
      });
    }
  };

  // src/pages/load-test.js
  var chart4 = null;
  var timer4 = 0;
  var series = {
    /** @type {number[]} */
    t: [],
    /** @type {number[]} */
    rps: [],
    /** @type {number[]} */
    p95: [],
    /** @type {number[]} */
    p99: []
  };
  var lastCompleted = 0;
  var lastAt = 0;
  function draw2(run) {
    const p = run.report ? run.report.latency_ms : run.progress.latency_ms;
    $("lt-status").textContent = run.status;
    $("lt-status").className = "pill " + (run.status === "running" ? "up" : run.status === "failed" ? "bad" : "");
    $("lt-throughput").textContent = `${Number(run.throughput_rps).toFixed(0)} /s`;
    $("lt-sent").textContent = `${int(run.progress.completed)} answered · ${int(run.progress.errors)} errors`;
    $("lt-latency").textContent = `${p.p50.toFixed(1)} / ${p.p95.toFixed(1)} / ${p.p99.toFixed(1)} ms`;
    $("lt-statuses").textContent = Object.entries(run.progress.statuses).map(([code, n]) => `${code}: ${int(n)}`).join(" · ") || "–";
    $("lt-error").textContent = run.error || "";
    const now = Date.now() / 1e3;
    if (run.status === "running" && lastAt) {
      series.t.push(now);
      series.rps.push((run.progress.completed - lastCompleted) / Math.max(1e-3, now - lastAt));
      series.p95.push(run.progress.latency_ms.p95);
      series.p99.push(run.progress.latency_ms.p99);
      if (chart4) chart4.setData([series.t, series.rps, series.p95, series.p99]);
    }
    lastCompleted = run.progress.completed;
    lastAt = now;
    $("lt-run").disabled = run.status === "running";
    $("lt-stop").disabled = run.status !== "running";
  }
  async function poll2() {
    try {
      const r = await api("/api/admin/load-test");
      const f = (
        /** @type {HTMLFormElement} */
        $("lt-form")
      );
      $("lt-limits").textContent = r.limits.enabled ? `This instance allows up to ${r.limits.max_rate} orders/s for ${r.limits.max_duration_secs} s over ${r.limits.max_connections} connections.` : "Load tests are off on this instance: start `orderstream up --load-test-max-rate 500` to allow them.";
      f.rate.max = String(r.limits.max_rate || 1);
      f.duration_secs.max = String(r.limits.max_duration_secs);
      $("lt-run").disabled = !r.limits.enabled;
      if (r.run) draw2(r.run);
      if (!r.run || r.run.status !== "running") {
        clearInterval(timer4);
        timer4 = 0;
      }
    } catch (e) {
      showState($("lt-state"), "Cannot read the load test: " + e.message);
    }
  }
  function watch() {
    if (!timer4) timer4 = window.setInterval(poll2, 500);
  }
  async function start(e) {
    e.preventDefault();
    const f = (
      /** @type {HTMLFormElement} */
      $("lt-form")
    );
    const body = { rate: Number(f.rate.value), duration_secs: Number(f.duration_secs.value), connections: Number(f.connections.value) };
    try {
      showState($("lt-state"), null);
      series.t = [];
      series.rps = [];
      series.p95 = [];
      series.p99 = [];
      lastCompleted = 0;
      lastAt = 0;
      if (!chart4) chart4 = lineChart($("chart-load"), ["answered/s", "p95 ms", "p99 ms"], { height: 240 });
      chart4.setData([[], [], [], []]);
      const run = await api("/api/admin/load-test", { method: "POST", json: body });
      toast(`load test ${run.id} started`);
      draw2(run);
      watch();
    } catch (err) {
      showState($("lt-state"), err.message + (err.field ? ` (${esc(err.field)})` : ""));
    }
  }
  var loadTest = {
    enter() {
      if (!chart4) chart4 = lineChart($("chart-load"), ["answered/s", "p95 ms", "p99 ms"], { height: 240 });
      poll2().then(() => {
        if ($("lt-status").textContent === "running") watch();
      });
    },
    leave() {
      clearInterval(timer4);
      timer4 = 0;
    },
    init() {
      $("lt-form").addEventListener("submit", start);
      $("lt-stop").addEventListener("click", async () => {
        try {
          await api("/api/admin/load-test", { method: "DELETE" });
          toast("stopping the load test");
        } catch (e) {
          showState($("lt-state"), e.message);
        }
      });
    }
  };

  // src/main.js
  var pages = { overview, sales, orders, fraud, customers, inventory, forecast, system, track, "new-order": newOrder, "load-test": loadTest };
  var PAGES_FOR = {
    admin: ["overview", "sales", "orders", "fraud", "customers", "inventory", "forecast", "system", "track", "new-order", "load-test"],
    analyst: ["overview", "sales", "customers", "inventory", "forecast", "system"],
    viewer: ["overview", "sales", "customers", "inventory", "forecast", "system"],
    producer: []
  };
  var role2 = null;
  var current2 = null;
  function route() {
    const [name, ...rest] = location.hash.slice(1).split("/");
    return { name, arg: rest.join("/") };
  }
  var isTrackingLink = () => route().name === "track" && route().arg.startsWith("t1.");
  function show(name, arg) {
    const allowed = isTrackingLink() ? ["track"] : PAGES_FOR[role2] || [];
    if (!pages[name] || !allowed.includes(name)) {
      if (current2 && pages[current2].leave) pages[current2].leave();
      current2 = null;
      document.querySelectorAll(".page").forEach((p) => p.classList.remove("active"));
      if (allowed.length) show(allowed[0]);
      return;
    }
    document.querySelectorAll(".page").forEach((p) => p.classList.toggle("active", p.id === "page-" + name));
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle(
      "active",
      /** @type {HTMLElement} */
      a.dataset.page === name
    ));
    if (current2 && pages[current2].leave) pages[current2].leave();
    current2 = name;
    pages[name].enter(arg);
    $("menu").classList.remove("open");
  }
  function signedOut(why) {
    role2 = null;
    setRole(null);
    $("whoami").textContent = "signed out";
    $("signin").classList.remove("hidden");
    $("signin-why").textContent = why;
    document.querySelectorAll("nav a").forEach((a) => a.classList.add("denied"));
    if (isTrackingLink()) return show("track", route().arg);
    document.querySelectorAll(".page").forEach((p) => p.classList.remove("active"));
    connect(false);
  }
  var refusedShown = false;
  whenRefused((error) => {
    if (refusedShown || isTrackingLink()) return;
    refusedShown = true;
    signedOut(apiKey() ? `The API key in the box was refused (${error.message}). Paste a valid admin, analyst or viewer key.` : "This orderstream needs an API key: paste an admin, analyst or viewer key above.");
  });
  async function signIn() {
    refusedShown = false;
    let me = null;
    try {
      me = await api("/api/whoami");
    } catch (e) {
      if (!refusedShown) signedOut(e instanceof ApiError && e.status === 401 ? "This orderstream needs an API key: paste an admin, analyst or viewer key above." : "Cannot sign in: " + e.message);
      return;
    }
    role2 = me.role;
    setRole(role2);
    document.body.classList.toggle("role-admin", role2 === "admin");
    $("whoami").textContent = me.open ? "open (no API keys)" : `${me.name} · ${me.role}`;
    const allowed = PAGES_FOR[role2] || [];
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("denied", !allowed.includes(
      /** @type {HTMLElement} */
      a.dataset.page
    )));
    $("signin").classList.toggle("hidden", allowed.length > 0);
    if (!allowed.length) $("signin-why").textContent = `A ${role2} key opens no dashboard page: use an admin, analyst or viewer key.`;
    connect(allowed.length > 0);
    const { name, arg } = route();
    show(name || allowed[0] || "overview", arg);
  }
  for (const page of Object.values(pages)) if (page.init) page.init();
  window.addEventListener("hashchange", () => {
    const { name, arg } = route();
    show(name, arg);
  });
  $("menu-toggle").addEventListener("click", () => $("menu").classList.toggle("open"));
  $("api-key").value = apiKey();
  $("api-key").addEventListener("change", (e) => {
    setApiKey(
      /** @type {HTMLInputElement} */
      e.target.value
    );
    signIn();
  });
  signIn();
})();
