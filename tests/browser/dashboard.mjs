// The web dashboard in a real browser (Debian's headless Chromium, driven by
// playwright-core) against a running `orderstream up`:
//   node dashboard.mjs BASE_URL ARTIFACT_DIR
// Posts orders and sees them arrive live on Overview, filters Orders by
// status, opens an order's timeline, approves a flagged order in Fraud
// review, and visits every other page. Screenshots go to ARTIFACT_DIR.
// Exits non-zero on any failed step or any script error in the page.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";

// The binary and the lake let the forecast step seed history at the end,
// after the steps that count orders by status.
const [base, out, bin, lake] = process.argv.slice(2);
// Keys made by `orderstream keys create` before the page opens: the page
// signs in with the admin's, orders come from the producer's, and the
// viewer's must show only the pages a viewer may open.
const { ADMIN_KEY, PRODUCER_KEY, VIEWER_KEY } = process.env;
if (!ADMIN_KEY || !PRODUCER_KEY || !VIEWER_KEY) {
  console.error("set ADMIN_KEY, PRODUCER_KEY and VIEWER_KEY");
  process.exit(2);
}
const asAdmin = { authorization: "Bearer " + ADMIN_KEY };
if (!base || !out) {
  console.error("usage: node dashboard.mjs BASE_URL ARTIFACT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const step = (name) => console.log(`step: ${name}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function post(path, body) {
  const res = await fetch(base + path, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer " + PRODUCER_KEY }, body: JSON.stringify(body) });
  const json = await res.json();
  if (res.status !== 202 && res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// Clicks Search and waits for its answer to be drawn.
async function search(page) {
  const answered = page.waitForResponse((r) => r.url().includes("/api/admin/orders?"), { timeout: 15000 });
  await page.click("#orders-form button");
  await answered;
  await sleep(150);
}

async function until(what, check, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  // A failed request is reported by its URL (the console only says "Failed
  // to load resource"); the one the test provokes on purpose is expected.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console: ${m.text()}`); });
  // Expected failures: the unknown category the test asks for, and the
  // signed-out page asking who it is.
  const expected = (r) => r.url().includes("no-such-category") || (r.status() === 401 && r.url().endsWith("/api/whoami"));
  page.on("response", (r) => { if (r.status() >= 400 && !expected(r)) errors.push(`HTTP ${r.status()} for ${r.url()}`); });

  step("signed out, the page asks for a key and shows no page");
  await page.goto(base + "/#overview");
  await page.waitForSelector("#signin:not(.hidden)", { timeout: 15000 });
  if (await page.isVisible('nav a[data-page="overview"]')) throw new Error("a signed-out page shows its navigation");

  step("signed in with an admin key");
  await page.fill("#api-key", ADMIN_KEY);
  await page.dispatchEvent("#api-key", "change");
  await until("the admin signed in", async () => (await page.textContent("#whoami")).includes("admin"));
  if (!(await page.isVisible('nav a[data-page="fraud"]'))) throw new Error("an admin does not see Fraud review");

  step("overview connects live");
  await page.waitForSelector("#ws-state.up", { timeout: 15000 });

  step("posted orders arrive live on Overview");
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const order = await post("/api/orders", { customer_id: `browser-${i}`, items: [{ product_id: "p-1", quantity: 1 + i, unit_price: "19.99" }] });
    ids.push(order.order_id);
  }
  for (const id of ids) await page.waitForSelector(`#recent-orders tr[data-order="${id}"]`, { timeout: 15000 });
  const rate = await page.textContent("#kpi-rate");
  if (rate === "–") throw new Error("no live rate shown");
  await page.screenshot({ path: `${out}/overview.png`, fullPage: true });

  step("a high-value first order is flagged for review");
  const flagged = await post("/api/orders", { customer_id: "browser-fraud", items: [{ product_id: "p-2", quantity: 1, unit_price: "3000.00" }] });

  step("Orders filtered by status");
  await page.goto(base + "/#orders");
  await page.selectOption('#orders-form select[name="status"]', "confirmed");
  await until("the posted orders to show as confirmed", async () => {
    await search(page);
    const rows = await page.$$eval("#orders-rows .vrow", (els) => els.map((e) => ({ id: e.dataset.order, status: e.querySelector(".status").textContent })));
    if (rows.some((r) => r.status !== "confirmed")) throw new Error(`a non-confirmed row under status=confirmed: ${JSON.stringify(rows)}`);
    return ids.every((id) => rows.some((r) => r.id === id));
  });
  await page.selectOption('#orders-form select[name="status"]', "flagged");
  let lastRows = [];
  await until("the flagged order under status=flagged", async () => {
    await search(page);
    lastRows = await page.$$eval("#orders-rows .vrow", (els) => els.map((e) => e.dataset.order));
    return lastRows.length === 1 && lastRows[0] === flagged.order_id;
  }).catch(async (e) => {
    const view = await (await fetch(`${base}/api/orders/${flagged.order_id}`, { headers: asAdmin })).json();
    throw new Error(`${e.message}: rows ${JSON.stringify(lastRows)}, the order: ${JSON.stringify(view)}`);
  });
  await page.selectOption('#orders-form select[name="status"]', "confirmed");
  await search(page);
  await page.waitForSelector(`#orders-rows .vrow[data-order="${ids[0]}"]`);
  await page.click(`#orders-rows .vrow[data-order="${ids[0]}"] span:nth-child(2)`);
  await page.waitForSelector("#order-panel .timeline li:nth-child(3)", { timeout: 10000 });
  const timeline = await page.textContent("#order-panel .timeline");
  if (!timeline.includes("confirmed")) throw new Error(`timeline without confirmed: ${timeline}`);
  await page.screenshot({ path: `${out}/orders.png`, fullPage: true });

  step("approve the flagged order in Fraud review");
  await page.goto(base + "/#fraud");
  const selector = `#fraud-queue button[data-review="approve"][data-id="${flagged.order_id}"]`;
  await until("the flagged order in the queue", async () => {
    if (await page.$(selector)) return true;
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
    return false;
  });
  step("the flagged order beside its customer's usual orders");
  await until("the order's context and screening", async () => {
    // The order reaches the lake within a second or two: ask again until then.
    await page.click(`#fraud-queue a[data-context="${flagged.order_id}"]`);
    await sleep(300);
    const text = await page.textContent("#fraud-context");
    return text.includes("lr-") && text.includes("first_order_amount") ? text : null;
  });
  const share = await page.textContent("#fraud-flagged-share");
  if (share === "–") throw new Error("no flagged share shown");
  await page.screenshot({ path: `${out}/fraud.png`, fullPage: true });
  await page.fill("#fraud-reviewer", "browser-admin");
  await page.fill("#fraud-note", "a camera for the office");
  await page.click(selector);
  await page.waitForSelector(`#fraud-queue tr[data-order="${flagged.order_id}"]`, { state: "detached", timeout: 15000 });
  const status = await until("the approved order to leave flagged", async () => {
    const res = await fetch(`${base}/api/orders/${flagged.order_id}`, { headers: asAdmin });
    const view = await res.json();
    return view.status && view.status !== "flagged" ? view.status : null;
  });
  if (!["reserved", "confirmed"].includes(status)) throw new Error(`approved order is ${status}`);
  step("the review in the audit log, with who decided and why");
  await until("the review in the audit log", async () => {
    await page.evaluate(() => loadFraudStats());
    const text = await page.textContent("#fraud-audit");
    return text.includes("browser-admin") && text.includes("a camera for the office") ? text : null;
  });
  await page.screenshot({ path: `${out}/fraud-approved.png`, fullPage: true });

  for (const name of ["sales", "inventory", "system"]) {
    step(`page ${name}`);
    await page.goto(`${base}/#${name}`);
    await sleep(1500);
    await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
  }

  step("the review is in the admin actions, with the key that made it");
  await page.waitForSelector('#audit tr[data-action="review"]', { timeout: 15000 });
  const who = await page.textContent('#audit tr[data-action="review"]');
  if (!who.includes("browser-admin")) throw new Error(`the review's record: ${who}`);
  step("forecast & inventory: the total's forecast drawn with its bands, the plan with low stock in red");
  // Sixty days of history before today, appended to the running lake.
  const yesterday = new Date(Date.now() - 86400000).toISOString().slice(0, 10);
  execFileSync(bin, ["seed", "--append", "--orders", "3000", "--days", "60", "--end", yesterday, "--no-progress", "--output", lake]);
  await sleep(4000); // the dashboard registers new tables every 3 s
  await page.goto(`${base}/#forecast`);
  await page.waitForSelector("#chart-forecast[data-drawn] canvas", { timeout: 30000 });
  const drawn = await page.getAttribute("#chart-forecast", "data-drawn");
  if (Number(drawn) !== 30) throw new Error(`forecast drew ${drawn} days`);
  const model = await page.textContent("#fc-model");
  if (!/model \w+/.test(model) || !model.includes("backtest WAPE")) throw new Error(`forecast caption: ${model}`);
  await page.waitForSelector('#inv-plan tr[data-product="p-3"]', { timeout: 15000 });
  const lowRow = await page.getAttribute('#inv-plan tr[data-product="p-3"]', "class");
  if (!lowRow.includes("low")) throw new Error(`p-3 (5 units) is not marked low: ${lowRow}`);
  await page.selectOption("#fc-scope", "category");
  await page.fill("#fc-key", "no-such-category");
  await page.click('#fc-form button[type="submit"]');
  await page.waitForSelector("#fc-model.bad", { timeout: 15000 });
  const missing = await page.textContent("#fc-model");
  if (!missing.includes("404")) throw new Error(`an unknown category says: ${missing}`);
  await page.selectOption("#fc-scope", "total");
  await page.click('#fc-form button[type="submit"]');
  await page.waitForSelector("#chart-forecast[data-drawn] canvas", { timeout: 30000 });
  await page.screenshot({ path: `${out}/forecast.png`, fullPage: true });

  const stock = await page.$$eval("#stock tr", (rows) => rows.length);
  if (stock === 0) throw new Error("inventory shows no products");

  step("a viewer key shows only the viewer's pages");
  await page.fill("#api-key", VIEWER_KEY);
  await page.dispatchEvent("#api-key", "change");
  await until("the viewer signed in", async () => (await page.textContent("#whoami")).includes("viewer"));
  for (const denied of ["orders", "fraud"]) {
    if (await page.isVisible(`nav a[data-page="${denied}"]`)) throw new Error(`a viewer sees ${denied}`);
  }
  if (!(await page.isVisible('nav a[data-page="overview"]'))) throw new Error("a viewer does not see Overview");
  await page.goto(`${base}/#fraud`);
  await page.waitForSelector("#page-overview.active", { timeout: 15000 });
  await page.waitForSelector("#ws-state.up", { timeout: 15000 });
  await page.waitForSelector("#recent-orders tr[data-order]", { timeout: 15000 });
  const customers = await page.$$eval("#recent-orders tr[data-order]", (rows) => rows.map((r) => r.textContent));
  if (customers.some((text) => text.includes("browser-"))) throw new Error(`a viewer sees customer ids: ${customers[0]}`);
  await page.screenshot({ path: `${out}/viewer.png`, fullPage: true });

  if (errors.length) throw new Error(errors.join("\n"));
  console.log("browser test passed");
} catch (e) {
  console.error(`browser test failed: ${e.message}`);
  if (errors.length) console.error(errors.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
