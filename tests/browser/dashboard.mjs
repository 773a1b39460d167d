// The web dashboard in a real browser (Debian's headless Chromium, driven by
// playwright-core) against a running `orderstream up`:
//   node dashboard.mjs BASE_URL ARTIFACT_DIR
// Posts orders and sees them arrive live on Overview, checks the headline
// numbers against SQL over the same lake, filters Orders by status, sees a
// new order arrive highlighted and the side panel follow its order to
// shipped, exports CSV with the key, approves and rejects in Fraud review
// with the buttons inside a 1280×800 view, uses Sales presets, adjusts
// stock, places an order from the form and tracks it live, reads the
// System lights, reads Customers (segments, value, cohorts, a customer's
// orders and picks) and a product's "bought together", and checks a 390 px screen does not scroll sideways.
// Screenshots go to ARTIFACT_DIR.
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
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
  const dialogs = [];
  page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
  const sql = async (query) => {
    const res = await fetch(base + "/api/sql", { method: "POST", headers: { ...asAdmin, "content-type": "application/json", accept: "application/json" }, body: JSON.stringify({ sql: query }) });
    const body = await res.json();
    // A table not written yet answers 400 (unknown table): no rows yet.
    if (res.status === 400 && /not found|table/i.test(body.message || "")) return [{}];
    if (!res.ok) throw new Error(`sql: ${res.status} ${JSON.stringify(body)}`);
    return body.rows;
  };
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  // A failed request is reported by its URL (the console only says "Failed
  // to load resource"); the one the test provokes on purpose is expected.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console: ${m.text()}`); });
  // Expected failures: the unknown category the test asks for, and the
  // signed-out page asking who it is.
  // Also expected: a customer's picks before the first customers run (503
  // model_not_built, said in the panel), and the order engine's 404 for a
  // seeded order, which the panel then reads from the lake.
  const expected = (r) => r.url().includes("no-such-category") || (r.status() === 401 && r.url().endsWith("/api/whoami")) ||
    (r.status() === 503 && r.url().includes("/api/recommendations")) ||
    (r.status() === 404 && /\/api\/orders\/[0-9a-f-]{36}$/.test(r.url()));
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
  step("the headline numbers equal SQL over the same lake");
  const today = new Date().toISOString().slice(0, 10);
  let lastSql = "";
  await until("Overview's orders and payment success to match SQL", async () => {
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
    await sleep(500);
    // The tables appear with the analytics job's first batch.
    const [row] = await sql(`SELECT count(*) AS n FROM orders WHERE date = '${today}' AND currency = 'USD'`);
    const [pay] = await sql(`SELECT count(*) FILTER (WHERE status = 'confirmed') AS ok, count(*) FILTER (WHERE status = 'cancelled' AND reason = 'payment_declined') AS declined FROM order_events WHERE date = '${today}' AND currency = 'USD'`);
    const shown = Number((await page.textContent("#kpi-orders")).replace(/[^0-9]/g, ""));
    const success = await page.textContent("#kpi-success");
    const expected = Number(pay.ok) + Number(pay.declined) ? ((Number(pay.ok) / (Number(pay.ok) + Number(pay.declined))) * 100).toFixed(1) + "%" : "–";
    lastSql = `SQL ${row.n} orders, ${expected}; shown ${shown}, ${success}`;
    return Number(row.n) >= 5 && shown === Number(row.n) && success === expected;
  }).catch((e) => { throw new Error(`${e.message}: ${lastSql}`); });
  if ((await page.textContent("#kpi-net")) === "–") throw new Error("no net sales shown");
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
  if (!(await page.textContent("#order-panel")).includes("Desk lamp")) throw new Error("the panel names no product");
  const timeline = await page.textContent("#order-panel .timeline");
  if (!timeline.includes("confirmed")) throw new Error(`timeline without confirmed: ${timeline}`);
  step("a new matching order appears in Orders, highlighted");
  await page.selectOption('#orders-form select[name="status"]', "");
  await search(page);
  const arriving = await post("/api/orders", { customer_id: "browser-new", items: [{ product_id: "p-1", quantity: 1, unit_price: "19.99" }] });
  await page.waitForSelector(`#orders-rows .vrow.fresh[data-order="${arriving.order_id}"]`, { timeout: 15000 });
  if (!(await page.isVisible("#orders-new"))) throw new Error("no badge for the new order");

  step("the side panel follows its order: marked shipped, it says shipped");
  await page.click(`#orders-rows .vrow[data-order="${ids[1]}"] span:nth-child(2)`);
  await page.waitForSelector('#order-panel-body button[data-action="mark_shipped"]', { timeout: 15000 });
  await page.click('#order-panel-body button[data-action="mark_shipped"]');
  await page.waitForSelector("#order-panel-body .status.shipped", { timeout: 15000 });
  if (await page.$('#order-panel-body button[data-action="mark_shipped"]')) throw new Error("mark shipped still offered for a shipped order");
  if (!dialogs.some((d) => d.includes("Mark as shipped"))) throw new Error("no confirmation before marking shipped");
  // Delivered elsewhere (the API, as a carrier's feed would): the open panel follows on its own.
  await fetch(`${base}/api/admin/orders/bulk`, { method: "POST", headers: { ...asAdmin, "content-type": "application/json" }, body: JSON.stringify({ action: "mark_delivered", order_ids: [ids[1]] }) });
  await page.waitForSelector("#order-panel-body .status.delivered", { timeout: 15000 });

  step("filters a user gets wrong are said, not searched");
  await page.fill('#orders-form input[name="min_total"]', "-5");
  await page.click("#orders-form button");
  await page.waitForSelector("#orders-state.bad", { timeout: 5000 });
  await page.fill('#orders-form input[name="min_total"]', "50");
  await page.fill('#orders-form input[name="max_total"]', "10");
  await page.click("#orders-form button");
  if (!(await page.textContent("#orders-state")).includes("above max total")) throw new Error("min above max not explained");
  await page.fill('#orders-form input[name="min_total"]', "");
  await page.fill('#orders-form input[name="max_total"]', "");

  step("Export CSV carries the key and saves a file");
  const downloading = page.waitForEvent("download", { timeout: 15000 });
  await page.click("#export-link");
  const file = await downloading;
  await file.saveAs(`${out}/orders-export.csv`);
  const { readFileSync } = await import("node:fs");
  const csv = readFileSync(`${out}/orders-export.csv`, "utf8");
  if (!csv.startsWith("order_id") || !csv.includes(ids[0])) throw new Error(`the export: ${csv.slice(0, 200)}`);
  await page.screenshot({ path: `${out}/orders.png`, fullPage: true });

  step("approve the flagged order in Fraud review");
  await page.goto(base + "/#fraud");
  await page.setViewportSize({ width: 1280, height: 800 });
  const selector = `#fraud-queue-table button[data-review="approve"][data-id="${flagged.order_id}"]`;
  await until("the flagged order in the queue", async () => {
    if (await page.$(selector)) return true;
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
    return false;
  });
  step("the flagged order beside its customer's usual orders");
  await until("the order's context and screening", async () => {
    // The order reaches the lake within a second or two: ask again until then.
    await page.click(`#fraud-queue-table tr[data-key="${flagged.order_id}"] td:nth-child(2)`);
    await sleep(300);
    const text = await page.textContent("#fraud-context");
    return text.includes("lr-") && text.includes("first_order_amount") ? text : null;
  });
  const share = await page.textContent("#fraud-flagged-share");
  if (share === "–") throw new Error("no flagged share shown");
  await page.screenshot({ path: `${out}/fraud.png`, fullPage: true });
  for (const decision of ["approve", "reject"]) {
    const box = await page.locator(`#fraud-queue-table button[data-review="${decision}"][data-id="${flagged.order_id}"]`).boundingBox();
    if (!box || box.x + box.width > 1280) throw new Error(`${decision} is out of the 1280 px view: ${JSON.stringify(box)}`);
  }
  await page.fill("#fraud-reviewer", "browser-admin");
  await page.fill("#fraud-note", "a camera for the office");
  await page.click(selector);
  await page.waitForSelector(`#fraud-queue-table tr[data-key="${flagged.order_id}"]`, { state: "detached", timeout: 15000 });
  const status = await until("the approved order to leave flagged", async () => {
    const res = await fetch(`${base}/api/orders/${flagged.order_id}`, { headers: asAdmin });
    const view = await res.json();
    return view.status && view.status !== "flagged" ? view.status : null;
  });
  if (!["reserved", "confirmed"].includes(status)) throw new Error(`approved order is ${status}`);
  step("the review in the audit log, with who decided and why");
  await until("the review in the audit log", async () => {
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
    await sleep(500);
    const text = await page.textContent("#fraud-audit");
    return text.includes("browser-admin") && text.includes("a camera for the office") ? text : null;
  });
  await page.screenshot({ path: `${out}/fraud-approved.png`, fullPage: true });

  step("reject a second flagged order, after a confirmation");
  const second = await post("/api/orders", { customer_id: "browser-fraud-2", items: [{ product_id: "p-2", quantity: 1, unit_price: "3000.00" }] });
  const reject = `#fraud-queue-table button[data-review="reject"][data-id="${second.order_id}"]`;
  await until("the second flagged order in the queue", async () => {
    if (await page.$(reject)) return true;
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
    return false;
  });
  await page.click(reject);
  await page.waitForSelector(`#fraud-queue-table tr[data-key="${second.order_id}"]`, { state: "detached", timeout: 15000 });
  if (!dialogs.some((d) => d.startsWith(`Reject order ${second.order_id}`))) throw new Error("no confirmation before rejecting");
  await until("the rejected order cancelled", async () => {
    const view = await (await fetch(`${base}/api/orders/${second.order_id}`, { headers: asAdmin })).json();
    return view.status === "cancelled" && view.cancel_reason === "fraud_rejected";
  });
  await page.setViewportSize({ width: 1440, height: 1000 });

  step("Sales: a preset, the category chart, the heatmap legend, CSV");
  await page.goto(`${base}/#sales`);
  await page.click('#sales-presets button[data-preset="7d"]');
  await page.waitForSelector("#category-bars .bar-row", { timeout: 15000 });
  await page.waitForSelector("#heatmap .legend", { timeout: 15000 });
  const salesDownload = page.waitForEvent("download", { timeout: 10000 });
  await page.click("#sales-export");
  await salesDownload;
  await page.screenshot({ path: `${out}/sales.png`, fullPage: true });

  step("Inventory: search, low stock in red, a stock adjustment with a note");
  await page.goto(`${base}/#inventory`);
  await page.waitForSelector('#stock-table tr[data-key="p-1"]', { timeout: 15000 });
  if (!(await page.getAttribute('#stock-table tr[data-key="p-3"]', "class")).includes("low")) throw new Error("p-3 is not red");
  await page.fill("#stock-q", "camera");
  const shownProducts = await page.$$eval("#stock-table tbody tr[data-key]", (rows) => rows.map((r) => r.dataset.key));
  if (shownProducts.join() !== "p-2") throw new Error(`search for camera shows ${shownProducts}`);
  await page.fill("#stock-q", "");
  const before = await (await fetch(`${base}/api/products?page_size=500`, { headers: asAdmin })).json();
  const lamp = before.products.find((p) => p.product_id === "p-1").stock.available;
  await page.click('#stock-table button[data-adjust="p-1"]');
  await page.fill('#adjust-form input[name="amount"]', "7");
  await page.fill('#adjust-form input[name="reason"]', "recount in aisle 3");
  await page.click("#adjust-form button:not([type])");
  await until("the lamp's stock up by 7", async () => {
    const now = await (await fetch(`${base}/api/products?page_size=500`, { headers: asAdmin })).json();
    return now.products.find((p) => p.product_id === "p-1").stock.available === lamp + 7;
  });
  await page.screenshot({ path: `${out}/inventory.png`, fullPage: true });

  step("New order: placed from the form, then tracked live");
  await page.goto(`${base}/#new-order`);
  await page.waitForSelector('#no-product option[value="p-1"]', { state: "attached", timeout: 15000 });
  await page.selectOption("#no-product", "p-1");
  await page.click("#new-order-form button");
  await page.waitForSelector("#new-order-track", { timeout: 15000 });
  await page.click("#new-order-track");
  await page.waitForSelector('#page-track.active ol.steps li.done', { timeout: 15000 });
  await page.waitForSelector('ol.steps[data-status="confirmed"]', { timeout: 20000 });
  if (!(await page.textContent("#track-result")).includes("Estimated delivery")) throw new Error("no delivery estimate");
  const tracked = (await page.textContent("#track-result .id")).trim();
  step("the tracking page follows the order as it ships");
  await fetch(`${base}/api/admin/orders/bulk`, { method: "POST", headers: { ...asAdmin, "content-type": "application/json" }, body: JSON.stringify({ action: "mark_shipped", order_ids: [tracked] }) });
  await page.waitForSelector('ol.steps[data-status="shipped"]', { timeout: 20000 });
  await fetch(`${base}/api/admin/orders/bulk`, { method: "POST", headers: { ...asAdmin, "content-type": "application/json" }, body: JSON.stringify({ action: "mark_delivered", order_ids: [tracked] }) });
  await page.waitForSelector('ol.steps[data-status="delivered"]', { timeout: 20000 });
  if (!(await page.textContent("#track-result")).includes("Delivered")) throw new Error("delivered without its date");
  await page.screenshot({ path: `${out}/track.png`, fullPage: true });

  step("the tracking link works signed out");
  const link = await (await fetch(`${base}/api/orders`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer " + PRODUCER_KEY }, body: JSON.stringify({ customer_id: "browser-link", items: [{ product_id: "p-1", quantity: 1, unit_price: "19.99" }] }) })).json();
  const customerPage = await browser.newPage({ viewport: { width: 390, height: 800 } });
  customerPage.on("pageerror", (e) => errors.push(`customer page error: ${e.message}`));
  await customerPage.goto(`${base}/#track/${link.tracking_url.split("/").pop()}`);
  await customerPage.waitForSelector('ol.steps[data-status="confirmed"]', { timeout: 20000 });
  await customerPage.close();

  step("a small load test from the panel");
  await page.goto(`${base}/#load-test`);
  await until("the load test allowed", async () => !(await page.isDisabled("#lt-run")));
  await page.fill('#lt-form input[name="rate"]', "50");
  await page.fill('#lt-form input[name="duration_secs"]', "2");
  await page.click("#lt-run");
  await page.waitForFunction(() => document.getElementById("lt-status").textContent === "done", null, { timeout: 30000 });
  const throughput = Number((await page.textContent("#lt-throughput")).replace(/[^0-9.]/g, ""));
  if (!(throughput > 10)) throw new Error(`load test throughput ${throughput}`);
  if (!/202: 100/.test(await page.textContent("#lt-statuses"))) throw new Error(`load test answers: ${await page.textContent("#lt-statuses")}`);
  await page.screenshot({ path: `${out}/load-test.png`, fullPage: true });

  step("System: status lights, requests by route, dead letters");
  await page.goto(`${base}/#system`);
  await page.waitForSelector("#light-service.ok, #light-service.warn", { timeout: 15000 });
  await page.waitForSelector("#routes tr td", { timeout: 15000 });
  await page.waitForSelector("#dlq tr", { timeout: 15000 });
  await page.screenshot({ path: `${out}/system.png`, fullPage: true });

  step("a narrow screen (390 px) does not scroll sideways");
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(`${base}/#overview`);
  await sleep(800);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the page overflows a 390 px screen by ${overflow} px`);
  await page.screenshot({ path: `${out}/narrow.png`, fullPage: true });
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto(`${base}/#system`);

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

  step("customers: the run's segments, value, cohorts and days; a customer's orders and picks");
  // Three baskets of the lamp with the camera: a pair the model keeps.
  for (let k = 0; k < 3; k++) {
    await post("/api/orders", { customer_id: "browser-basket", items: [{ product_id: "p-1", quantity: 1, unit_price: "19.99" }, { product_id: "p-2", quantity: 1, unit_price: "3000.00" }] });
  }
  await until("the baskets in the lake", async () => {
    const r = await fetch(`${base}/api/sql`, { method: "POST", headers: { ...asAdmin, "content-type": "application/json", accept: "application/json" }, body: JSON.stringify({ sql: "SELECT count(DISTINCT order_id) AS n FROM order_items WHERE customer_id = 'browser-basket'" }) });
    const body = await r.json();
    return JSON.stringify(body).includes('"n":3');
  });
  execFileSync(bin, ["customers", "--data", lake]);
  await sleep(4000); // the dashboard registers new tables every 3 s
  await page.goto(`${base}/#customers`);
  await page.waitForSelector('#cust-segments tr[data-segment="returning"]', { timeout: 15000 });
  await page.waitForSelector("#cust-clv .bar-row", { timeout: 15000 });
  await page.waitForSelector("#cust-cohorts table.cohorts td[data-alpha]", { timeout: 15000 });
  await page.waitForSelector("#chart-new-returning[data-drawn] canvas", { timeout: 15000 });
  await page.click('#cust-segments tr[data-segment="returning"]');
  await page.waitForFunction(() => document.getElementById("cust-list-title").textContent.startsWith("returning"), null, { timeout: 15000 });
  const regular = (await page.textContent("#cust-list tr:first-child a")).trim();
  await page.screenshot({ path: `${out}/customers.png`, fullPage: true });
  await page.click("#cust-list tr:first-child a");
  await page.waitForSelector("#page-orders.active .vrow", { timeout: 15000 });
  if ((await page.inputValue('#orders-form input[name="customer_id"]')) !== regular) throw new Error("the customer's link did not filter Orders");
  await page.click("#orders-rows .vrow");
  await page.waitForSelector("#panel-recs ol.recs li[data-product]", { timeout: 15000 });
  await page.screenshot({ path: `${out}/orders-picks.png`, fullPage: true });
  await page.goto(`${base}/#inventory`);
  await page.click('#stock-table tr[data-key="p-1"] td');
  await page.waitForSelector('#product-recs li[data-product="p-2"]', { timeout: 15000 });
  await page.screenshot({ path: `${out}/product-detail.png`, fullPage: true });

  step("operations: average order, cancellations and payments on Sales; fulfilment times on System");
  await page.goto(`${base}/#sales`);
  await page.click('#sales-presets button[data-preset="30d"]');
  await page.waitForSelector("#chart-aov[data-drawn] canvas", { timeout: 15000 });
  await page.waitForSelector("#ops-methods tr td.num", { timeout: 15000 });
  await page.goto(`${base}/#system`);
  await page.waitForSelector("#fulfilment tr td.num", { timeout: 15000 });


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
