// @ts-check
// The live feed: one WebSocket (`/api/dashboard/ws`) per tab, its latest
// snapshot shared with whichever pages listen. A browser cannot put a
// header on a WebSocket, so the key rides in the query.
import { $ } from "./format.js";
import { withToken } from "./api.js";

/** @type {any} */
export let latest = null;
/** @type {Set<(snapshot: any) => void>} */
const listeners = new Set();
/** @type {WebSocket|null} */
let socket = null;
let wanted = false;

/** @param {(snapshot: any) => void} f */
export function listen(f) {
  listeners.add(f);
  if (latest) f(latest);
}
/** @param {(snapshot: any) => void} f */
export const unlisten = (f) => listeners.delete(f);

/** A WebSocket to `path` on this server, with the key. @param {string} path */
const socketTo = (path) => new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + withToken(path));

function open() {
  const ws = socketTo("/api/dashboard/ws");
  socket = ws;
  ws.onopen = () => { $("ws-state").textContent = "live"; $("ws-state").classList.add("up"); };
  ws.onclose = () => {
    $("ws-state").textContent = wanted ? "reconnecting" : "offline";
    $("ws-state").classList.remove("up");
    if (socket === ws) socket = null;
    if (wanted) setTimeout(() => { if (wanted && !socket) open(); }, 1000);
  };
  ws.onmessage = (m) => {
    try { latest = JSON.parse(m.data); } catch { return; }
    listeners.forEach((f) => f(latest));
  };
}

/** (Re)connects with the current key; `on` false closes it. @param {boolean} on */
export function connect(on) {
  wanted = on;
  if (socket) socket.close();
  else if (on) open();
}

/**
 * Calls `onEvent` for every event of one order (status changes, refunds,
 * refusals) from the processor's feed, `onState` with "live" or
 * "reconnecting"; reconnects until the returned function is called.
 * @param {string} orderId
 * @param {() => void} onEvent
 * @param {(state: string) => void} [onState]
 */
export function followOrder(orderId, onEvent, onState = () => {}) {
  let stopped = false;
  /** @type {WebSocket|null} */
  let ws = null;
  const connect = () => {
    ws = socketTo(`/api/ws/orders?order_id=${encodeURIComponent(orderId)}`);
    ws.onopen = () => onState("live");
    ws.onmessage = () => onEvent();
    ws.onclose = () => {
      if (stopped) return;
      onState("reconnecting");
      setTimeout(() => { if (!stopped) connect(); }, 1000);
    };
  };
  connect();
  return () => { stopped = true; if (ws) ws.close(); };
}
