// @ts-check
import { $ } from "./format.js";

/** A passing message (saved, applied); errors belong beside their figures. @param {string} message */
export function toast(message) {
  const t = $("toast");
  t.textContent = message;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 5000);
}
/** @type {any} */
toast.timer = null;

/**
 * Shows an error where the figures are, and clears what they showed.
 * @param {HTMLElement} el a `.state` element beside the figures
 * @param {string|null} message null clears it
 */
export function showState(el, message, kind = "bad") {
  if (!el) return;
  el.textContent = message || "";
  el.className = "state " + (message ? kind : "");
  el.hidden = !message;
}
