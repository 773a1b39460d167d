// @ts-check
// Orders: search with keyset pages in a virtualised table, new matching
// orders arriving live, bulk actions only where the state machine allows,
// and a side panel that follows its order.
import { $, esc, money, when, words } from "../lib/format.js";
import { ApiError, api, download } from "../lib/api.js";
import { allows, loadContract, statuses } from "../lib/contract.js";
import { forCustomer, showPicks } from "../lib/recommend.js";
import { followOrder, listen, unlisten } from "../lib/live.js";
import { showState, toast } from "../lib/toast.js";
import { productNames } from "../lib/products.js";

const ROW = 32;
const state = {
  /** @type {any[]} */ rows: [],
  /** @type {string|null} */ cursor: null,
  more: false,
  loading: false,
  /** @type {Set<string>} */ selected: new Set(),
  seq: 0,
  /** @type {Set<string>} */ fresh: new Set(),
  /** @type {any[]} */ waiting: [],
  /** New orders shown highlighted, until the highlight fades. */
  newCount: 0,
};
/** Stops following the open order. @type {(() => void)|null} */
let follow = null;
let openId = "";

function form() {
  return /** @type {HTMLFormElement} */ ($("orders-form"));
}

/** Checks the filters before asking; a wrong one is said beside it. */
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

/** A new search supersedes one in flight; scrolling loads the next page. @param {boolean} reset */
async function load(reset) {
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
    html += `<div class="${cls}" data-top="${i * ROW}" data-order="${esc(o.order_id)}" tabindex="0" role="row">` +
      `<span><input type="checkbox" aria-label="select" data-select="${esc(o.order_id)}" ${checked}></span><span class="id">${esc(o.order_id)}</span>` +
      `<span>${esc(when(o.placed_at))}</span><span>${esc(o.customer_id)}</span>` +
      `<span><span class="status ${esc(o.status)}">${esc(o.status)}</span></span><span class="num">${esc(money(o.total, o.currency))}</span></div>`;
  }
  $("orders-rows").innerHTML = html;
  $("orders-rows").querySelectorAll(".vrow").forEach((/** @type {HTMLElement} */ row) => { row.style.top = row.dataset.top + "px"; });
  if (state.more && last >= state.rows.length - 20) load(false);
}

/** Which of the selected orders each action would apply to. */
function applicable(/** @type {string} */ action) {
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

/** @param {string} action */
async function bulk(action) {
  const ids = applicable(action).slice(0, 100);
  const verb = { cancel: "Cancel", mark_shipped: "Mark as shipped", mark_delivered: "Mark as delivered" }[action];
  const skipped = state.selected.size - ids.length;
  const note = skipped ? ` (${skipped} selected order${skipped > 1 ? "s are" : " is"} not in a state that allows it and will be left alone)` : "";
  if (!ids.length || !window.confirm(`${verb} ${ids.length} order${ids.length > 1 ? "s" : ""}?${note}${action === "cancel" ? " Paid orders are refunded. This cannot be undone." : ""}`)) return;
  try {
    const r = await api("/api/admin/orders/bulk", { method: "POST", json: { action, order_ids: ids } });
    const byId = new Map(r.results.map((/** @type {any} */ x) => [x.order_id, x]));
    state.rows.forEach((o) => { const x = byId.get(o.order_id); if (x && x.result === "applied") o.status = x.status; });
    const refused = r.results.filter((/** @type {any} */ x) => x.result === "rejected" || x.result === "failed");
    $("bulk-results").innerHTML = refused.length
      ? `<b>${refused.length} not applied:</b><ul>` + refused.slice(0, 20).map((/** @type {any} */ x) => `<li><span class="id">${esc(x.order_id)}</span>: ${esc(x.message || x.result)}</li>`).join("") + "</ul>"
      : "";
    toast(`${action.replace("_", " ")}: ${r.applied} applied, ${r.rejected} refused, ${r.queued} queued`);
    state.selected.clear();
    render();
    updateBulk();
  } catch (e) { showState($("orders-state"), "Bulk action failed: " + e.message); }
}

/** @type {Map<string, Promise<any>>} */
const picksFor = new Map();
/** A customer's picks, asked once while the page is open. @param {string} customerId */
function customerPicks(customerId) {
  if (!picksFor.has(customerId)) {
    const answer = forCustomer(customerId);
    picksFor.set(customerId, answer);
    answer.catch(() => picksFor.delete(customerId));
  }
  return /** @type {Promise<any>} */ (picksFor.get(customerId));
}

/** The order's live view (the processor's), its lines named, and actions. @param {string} id */
async function openOrder(id) {
  openId = id;
  const panel = $("order-panel");
  panel.hidden = false;
  $("order-panel-body").innerHTML = '<p class="muted">loading…</p>';
  if (follow) follow();
  await drawPanel(id);
  // Follows the order: every event of it redraws the panel and its row.
  follow = followOrder(id, () => { if (openId === id) drawPanel(id); }, (state) => {
    const live = $("panel-live");
    if (live) live.textContent = state === "live" ? "live" : "live updates paused (reconnecting)";
  });
  render();
}

/**
 * An order the order engine does not hold (seeded or imported history) as
 * the lake has it, in the engine's shape; `actions: false`, since no
 * command can reach it.
 * @param {string} id
 */
async function lakeOrder(id) {
  const d = await api(`/api/admin/orders/${encodeURIComponent(id)}/detail`);
  const steps = d.events.filter((/** @type {any} */ e) => e.status);
  const last = steps[steps.length - 1];
  const risk = d.events.find((/** @type {any} */ e) => e.risk_score != null);
  return {
    ...d.order,
    status: last ? last.status : "pending",
    cancel_reason: last && last.status === "cancelled" ? last.reason : null,
    risk_score: risk ? risk.risk_score : null,
    risk_reasons: risk ? risk.risk_reasons : [],
    items: d.items,
    history: steps.map((/** @type {any} */ e) => ({ status: e.status, at: e.occurred_at })),
    actions: false,
  };
}

/** The engine's view of an order, or the lake's when the engine has none. @param {string} id */
async function orderView(id) {
  try {
    return await api(`/api/orders/${encodeURIComponent(id)}`);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    return lakeOrder(id);
  }
}

/** @param {string} id */
async function drawPanel(id) {
  try {
    const [o, names] = await Promise.all([orderView(id), productNames()]);
    if (openId !== id) return;
    const row = state.rows.find((r) => r.order_id === id);
    if (row && row.status !== o.status) { row.status = o.status; render(); }
    const labels = { cancel: "Cancel order", mark_shipped: "Mark shipped", mark_delivered: "Mark delivered" };
    const actions = Object.keys(labels).filter((a) => o.actions !== false && allows(a, o.status))
      .map((a) => `<button data-action="${a}" data-id="${esc(id)}">${labels[a]}</button>`).join(" ");
    const reason = o.cancel_reason ? ` <span class="bad">(${esc(words(o.cancel_reason))})</span>` : "";
    $("order-panel-body").innerHTML = `<h3 class="id">${esc(o.order_id)}</h3>` +
      `<p><span class="status ${esc(o.status)}">${esc(o.status)}</span>${reason} <span id="panel-live" class="muted small">live</span></p>` +
      `<p>${esc(o.customer_id)} · ${esc(money(o.total, o.currency))} · ${esc(o.payment_method || "")} ${o.refunded ? "· refunded" : ""}</p>` +
      (o.risk_score != null ? `<p>risk ${esc(o.risk_score)}: ${esc((o.risk_reasons || []).join("; "))}</p>` : "") +
      `<h4>Items</h4><table>${o.items.map((/** @type {any} */ i) => {
        const p = names.get(i.product_id);
        return `<tr><td>${esc(p ? p.name : i.product_id)}<div class="muted small">${esc(i.product_id)}${p ? " · " + esc(p.category) : ""}</div></td><td class="num">${esc(i.quantity)} ×</td><td class="num">${esc(money(i.line_total, o.currency))}</td></tr>`;
      }).join("")}</table>` +
      `<h4>Timeline</h4><ul class="timeline"><li>placed · ${esc(when(o.placed_at))}</li>` +
      (o.history || []).map((/** @type {any} */ h) => `<li>${esc(h.status)} · ${esc(when(h.at))}</li>`).join("") + "</ul>" +
      (actions ? `<div class="actions">${actions}</div>` : "") +
      `<h4>Also for this customer</h4><div id="panel-recs"></div>`;
    showPicks($("panel-recs"), () => customerPicks(o.customer_id), "No picks for this customer yet.");
  } catch (e) {
    if (openId === id) $("order-panel-body").innerHTML = `<p class="bad">${esc(e.message)}</p>`;
  }
}

/** New orders from the live feed that match the filters: on top (newest first) with a badge. @param {any} snapshot */
function arriving(snapshot) {
  const f = form();
  if (f.sort.value !== "-placed_at" || (f.status.value && f.status.value !== "pending") || f.to.value) return;
  const min = Number(f.min_total.value || 0), max = f.max_total.value ? Number(f.max_total.value) : Infinity;
  const who = f.customer_id.value.trim(), q = f.q.value.trim();
  const known = new Set(state.rows.map((o) => o.order_id).concat(state.waiting.map((o) => o.order_id)));
  const newest = state.rows.length ? Date.parse(state.rows[0].placed_at) : 0;
  for (const o of (snapshot.recent_orders || []).slice().reverse()) {
    const total = Number(o.total);
    if (known.has(o.order_id) || Date.parse(o.received_at) < newest) continue;
    if (total < min || total > max || (who && o.customer_id !== who) || (q && o.order_id !== q && o.customer_id !== q)) continue;
    if (f.product_id.value.trim()) continue; // the feed does not carry the lines
    state.waiting.unshift({ order_id: o.order_id, placed_at: o.received_at, customer_id: o.customer_id ?? "–", status: "pending", total: o.total, currency: o.currency });
  }
  // At the top of the list they go straight in; further down the badge waits.
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
  setTimeout(() => { state.fresh.clear(); state.newCount = 0; badge(); render(); }, 8000);
}

function badge() {
  const waiting = state.waiting.length, added = state.newCount;
  $("orders-new").hidden = !waiting && !added;
  $("orders-new").textContent = waiting ? `${waiting} new — show` : `${added} new`;
}

async function exportCsv() {
  const params = query();
  params.delete("page_size");
  $("export-link").disabled = true;
  try {
    const saved = await download("/api/admin/orders/export?" + params, "orders.csv");
    toast(`saved ${saved.name} (${(saved.bytes / 1024).toFixed(0)} KiB)`);
  } catch (e) { showState($("orders-state"), "Export failed: " + e.message); }
  $("export-link").disabled = false;
}

async function exportAll() {
  const params = query();
  params.delete("page_size");
  try {
    const job = await api("/api/admin/exports", { method: "POST", json: Object.fromEntries(params) });
    toast("export started");
    const poll = async () => {
      try {
        const s = await api(job.status_url);
        $("orders-info").textContent = `export: ${s.status} · ${s.rows} rows`;
        if (s.status === "running") return void setTimeout(poll, 1000);
        if (s.status === "done") {
          const saved = await download(s.download_url, `orders-${s.id}.csv`);
          toast(`saved ${saved.name} (${s.rows} rows)`);
        } else showState($("orders-state"), `Export ${s.status}: ${s.error || ""}`);
      } catch (e) { showState($("orders-state"), "Export failed: " + e.message); }
    };
    poll();
  } catch (e) { showState($("orders-state"), "Export failed: " + e.message); }
}

export const orders = {
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
      load(true);
    } else if (!state.rows.length) load(true);
  },

  leave() {
    picksFor.clear();
    unlisten(arriving);
    if (follow) follow();
    follow = null;
  },
  init() {
    form().addEventListener("submit", (/** @type {Event} */ e) => { e.preventDefault(); load(true); });
    $("orders-viewport").addEventListener("scroll", () => requestAnimationFrame(render));
    $("orders-rows").addEventListener("click", (/** @type {Event} */ e) => {
      const target = /** @type {HTMLInputElement} */ (e.target);
      const id = target.dataset.select;
      if (id) { if (target.checked) state.selected.add(id); else state.selected.delete(id); updateBulk(); return; }
      const row = /** @type {HTMLElement} */ (target.closest(".vrow"));
      if (row) openOrder(row.dataset.order || "");
    });
    $("orders-rows").addEventListener("keydown", (/** @type {KeyboardEvent} */ e) => {
      const row = /** @type {HTMLElement} */ (e.target);
      if (!row.classList || !row.classList.contains("vrow")) return;
      if (e.key === "Enter") openOrder(row.dataset.order || "");
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const next = /** @type {HTMLElement} */ (e.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling);
        if (next) next.focus();
        else $("orders-viewport").scrollTop += e.key === "ArrowDown" ? ROW : -ROW;
      }
      if (e.key === " ") {
        e.preventDefault();
        const id = row.dataset.order || "";
        if (state.selected.has(id)) state.selected.delete(id); else state.selected.add(id);
        render(); updateBulk();
      }
    });
    $("select-all").addEventListener("change", (/** @type {Event} */ e) => {
      const on = /** @type {HTMLInputElement} */ (e.target).checked;
      for (const o of state.rows.slice(0, 100)) { if (on) state.selected.add(o.order_id); else state.selected.delete(o.order_id); }
      render(); updateBulk();
    });
    $("orders-new").addEventListener("click", () => { $("orders-viewport").scrollTop = 0; showNew(); });
    $("panel-close").addEventListener("click", () => { $("order-panel").hidden = true; openId = ""; if (follow) follow(); follow = null; render(); });
    $("order-panel-body").addEventListener("click", async (/** @type {Event} */ e) => {
      const button = /** @type {HTMLButtonElement} */ (e.target);
      if (!button.dataset.action) return;
      state.selected = new Set([button.dataset.id || ""]);
      await bulk(button.dataset.action);
      drawPanel(button.dataset.id || "");
    });
    $("bulk-cancel").addEventListener("click", () => bulk("cancel"));
    $("bulk-ship").addEventListener("click", () => bulk("mark_shipped"));
    $("export-link").addEventListener("click", exportCsv);
    $("export-all").addEventListener("click", exportAll);
  },
};
