// @ts-check
// Order tracking, as the customer sees it: the timeline pending →
// confirmed → processing → shipped → delivered, followed live, with an
// estimated delivery date. Opened by a tracking link (`#track/t1.…`,
// no key needed: the link is the credential) or, for an admin, by order id
// or by customer.
import { $, day, esc, money, when, words } from "../lib/format.js";
import { api } from "../lib/api.js";
import { followOrder } from "../lib/live.js";
import { showState } from "../lib/toast.js";

const STEPS = ["pending", "confirmed", "processing", "shipped", "delivered"];
// The estimate the page promises (docs/dashboard.md): two days after
// shipping, five after placing until then.
const DAYS_AFTER_SHIPPING = 2;
const DAYS_AFTER_PLACING = 5;

/** Stops following the order shown. @type {(() => void)|null} */
let follow = null;
/** @type {{kind: "token"|"order", key: string}|null} */
let following = null;

/** @param {any} o */
export function estimatedDelivery(o) {
  const at = (/** @type {string} */ s) => (o.history || []).find((/** @type {any} */ h) => h.status === s);
  if (o.status === "cancelled") return null;
  const delivered = at("delivered");
  if (delivered) return { date: delivered.at, actual: true };
  const shipped = at("shipped");
  const from = shipped ? Date.parse(shipped.at) : Date.parse(o.placed_at);
  const days = shipped ? DAYS_AFTER_SHIPPING : DAYS_AFTER_PLACING;
  return { date: new Date(from + days * 86400000).toISOString(), actual: false };
}

/** @param {any} o */
function draw(o) {
  const reached = new Map((o.history || []).map((/** @type {any} */ h) => [h.status, h.at]));
  reached.set("pending", o.placed_at);
  const cancelled = o.status === "cancelled";
  const index = STEPS.indexOf(o.status);
  const eta = estimatedDelivery(o);
  $("track-result").innerHTML =
    `<h3>Order <span class="id">${esc(o.order_id)}</span></h3>` +
    `<p>${esc(money(o.total, o.currency))} · ${o.items.length} item${o.items.length === 1 ? "" : "s"} · placed ${esc(when(o.placed_at))}</p>` +
    `<ol class="steps${cancelled ? " cancelled" : ""}" data-status="${esc(o.status)}">` +
    STEPS.map((s, i) => {
      const done = reached.has(s) || (!cancelled && i <= index);
      return `<li class="${done ? "done" : ""}${s === o.status ? " current" : ""}"><b>${esc(s)}</b><span>${esc(when(reached.get(s)))}</span></li>`;
    }).join("") + "</ol>" +
    (cancelled
      ? `<p class="bad">Cancelled${o.cancel_reason ? ": " + esc(words(o.cancel_reason)) : ""}${o.refunded ? " — refunded" : ""}.</p>`
      : `<p>${eta && eta.actual ? "Delivered" : "Estimated delivery"}: <b id="track-eta">${esc(day(eta && eta.date))}</b></p>`);
  $("track-status").textContent = o.status;
}

function stop() {
  if (follow) follow();
  follow = null;
}

/** @param {"token"|"order"} kind @param {string} key */
async function open(kind, key) {
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
  const again = () => { if (following && following.key === key) refresh(); };
  const shown = (/** @type {string} */ state) => { $("track-live").textContent = state === "live" ? "following live" : "reconnecting…"; };
  if (kind === "order") {
    // An admin follows the order's own events.
    follow = followOrder(key, again, shown);
  } else {
    // A customer's link: the link's stream says each new status.
    const source = new EventSource(`${path}/stream`);
    source.addEventListener("status", again);
    source.onerror = () => shown("reconnecting");
    follow = () => source.close();
  }
}

/** A customer's orders (admins), each opening its timeline. @param {string} customer */
async function customerOrders(customer) {
  stop();
  try {
    const page = await api(`/api/orders?customer_id=${encodeURIComponent(customer)}&limit=50`);
    $("track-result").innerHTML = page.orders.length
      ? `<h3>Orders of ${esc(customer)}</h3><table><tbody>` + page.orders.map((/** @type {any} */ o) =>
        `<tr data-order="${esc(o.order_id)}" tabindex="0"><td class="id">${esc(o.order_id)}</td><td>${esc(when(o.placed_at))}</td><td><span class="status ${esc(o.status)}">${esc(o.status)}</span></td><td class="num">${esc(money(o.total, o.currency))}</td></tr>`).join("") + "</tbody></table>"
      : `<p class="muted">${esc(customer)} has no orders.</p>`;
    showState($("track-state"), null);
  } catch (e) { showState($("track-state"), e.message); }
}

export const track = {
  /** @param {string} [arg] a tracking token from the link */
  enter(arg) {
    if (arg) open("token", arg);
  },
  leave() { stop(); following = null; },
  init() {
    $("track-form").addEventListener("submit", (/** @type {Event} */ e) => {
      e.preventDefault();
      const value = $("track-input").value.trim();
      if (!value) return showState($("track-state"), "type an order id, a customer id or paste a tracking link");
      const token = /t1\.[\w.-]+/.exec(value);
      if (token) open("token", token[0]);
      else if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) open("order", value);
      else customerOrders(value);
    });
    $("track-result").addEventListener("click", (/** @type {Event} */ e) => {
      const row = /** @type {HTMLElement} */ (/** @type {HTMLElement} */ (e.target).closest("tr[data-order]"));
      if (row) open("order", row.dataset.order || "");
    });
  },
};
