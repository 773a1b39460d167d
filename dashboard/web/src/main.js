// @ts-check
// The dashboard's entry: signs in with the key in the box, shows the pages
// that role may open, and routes `#page[/argument]` to a page module.
import { $ } from "./lib/format.js";
import { ApiError, api, apiKey, setApiKey, whenRefused } from "./lib/api.js";
import { connect } from "./lib/live.js";
import { setRole } from "./lib/session.js";
import { overview } from "./pages/overview.js";
import { sales } from "./pages/sales.js";
import { orders } from "./pages/orders.js";
import { fraud } from "./pages/fraud.js";
import { inventory } from "./pages/inventory.js";
import { customers } from "./pages/customers.js";
import { forecast } from "./pages/forecast.js";
import { system } from "./pages/system.js";
import { track } from "./pages/track.js";
import { newOrder } from "./pages/new-order.js";
import { loadTest } from "./pages/load-test.js";

/** @typedef {{enter: (arg?: string) => void, leave?: () => void, init?: () => void}} Page */
/** @type {Record<string, Page>} */
const pages = { overview, sales, orders, fraud, customers, inventory, forecast, system, track, "new-order": newOrder, "load-test": loadTest };

// Which pages each role may open (the server refuses the rest anyway).
/** @type {Record<string, string[]>} */
const PAGES_FOR = {
  admin: ["overview", "sales", "orders", "fraud", "customers", "inventory", "forecast", "system", "track", "new-order", "load-test"],
  analyst: ["overview", "sales", "customers", "inventory", "forecast", "system"],
  viewer: ["overview", "sales", "customers", "inventory", "forecast", "system"],
  producer: [],
};
/** @type {string|null} */
let role = null;
/** @type {string|null} */
let current = null;

/** The page and its argument from the hash: `#track/t1.…`. */
function route() {
  const [name, ...rest] = location.hash.slice(1).split("/");
  return { name, arg: rest.join("/") };
}

/** A tracking link opens its page without a key: the link is the credential. */
const isTrackingLink = () => route().name === "track" && route().arg.startsWith("t1.");

/** @param {string} name @param {string} [arg] */
function show(name, arg) {
  const allowed = isTrackingLink() ? ["track"] : PAGES_FOR[role] || [];
  if (!pages[name] || !allowed.includes(name)) {
    if (current && pages[current].leave) pages[current].leave();
    current = null;
    document.querySelectorAll(".page").forEach((p) => p.classList.remove("active"));
    if (allowed.length) show(allowed[0]);
    return;
  }
  document.querySelectorAll(".page").forEach((p) => p.classList.toggle("active", p.id === "page-" + name));
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", /** @type {HTMLElement} */ (a).dataset.page === name));
  if (current && pages[current].leave) pages[current].leave();
  current = name;
  pages[name].enter(arg);
  $("menu").classList.remove("open");
}

function signedOut(/** @type {string} */ why) {
  role = null;
  setRole(null);
  $("whoami").textContent = "signed out";
  $("signin").classList.remove("hidden");
  $("signin-why").textContent = why;
  document.querySelectorAll("nav a").forEach((a) => a.classList.add("denied"));
  if (isTrackingLink()) return show("track", route().arg);
  document.querySelectorAll(".page").forEach((p) => p.classList.remove("active"));
  connect(false);
}

let refusedShown = false;
// A refused key is said once, in the banner, not per request.
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
  role = me.role;
  setRole(role);
  document.body.classList.toggle("role-admin", role === "admin");
  $("whoami").textContent = me.open ? "open (no API keys)" : `${me.name} · ${me.role}`;
  const allowed = PAGES_FOR[role] || [];
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("denied", !allowed.includes(/** @type {HTMLElement} */ (a).dataset.page)));
  $("signin").classList.toggle("hidden", allowed.length > 0);
  if (!allowed.length) $("signin-why").textContent = `A ${role} key opens no dashboard page: use an admin, analyst or viewer key.`;
  connect(allowed.length > 0);
  const { name, arg } = route();
  show(name || allowed[0] || "overview", arg);
}

for (const page of Object.values(pages)) if (page.init) page.init();
window.addEventListener("hashchange", () => { const { name, arg } = route(); show(name, arg); });
$("menu-toggle").addEventListener("click", () => $("menu").classList.toggle("open"));
$("api-key").value = apiKey();
$("api-key").addEventListener("change", (/** @type {Event} */ e) => {
  setApiKey(/** @type {HTMLInputElement} */ (e.target).value);
  signIn();
});
signIn();
