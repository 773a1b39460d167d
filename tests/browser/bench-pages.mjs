// Time to data on each dashboard page, in headless Chromium:
//   node bench-pages.mjs BASE_URL RUNS
// For each page, a fresh load of `BASE/#page` until the page's figures are
// drawn (its marker below), RUNS times; prints the median and the worst as
// JSON. Used by scripts/bench-pages (docs/benchmarks.md).
import { chromium } from "playwright-core";

const [base, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);
// What "the data is on the page" means for each page.
const pages = [
  ["overview", "#kpi-orders:not(:text-is('–'))"],
  ["sales", "#heatmap .legend, #heatmap p.muted"],
  ["sales-90d", "#heatmap .legend, #heatmap p.muted"],
  ["orders", "#orders-rows .vrow"],
  ["fraud", "#fraud-reasons tr"],
  ["inventory", "#stock-table tbody tr"],
  ["forecast", "#inv-count:not(:empty)"],
  ["system", "#light-service.ok, #light-service.warn, #light-service.bad"],
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const results = {};
try {
  for (const [name, marker] of pages) {
    const times = [];
    let ordersApi = [];
    for (let i = 0; i < runs; i++) {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      if (name === "orders") {
        page.on("response", async (r) => {
          if (r.url().includes("/api/admin/orders?")) {
            try { ordersApi.push(Number((await r.json()).elapsed_ms)); } catch { /* aborted */ }
          }
        });
      }
      const hash = name === "sales-90d" ? "sales" : name;
      const started = Date.now();
      await page.goto(`${base}/#${hash}`);
      if (name === "sales-90d") {
        await page.waitForSelector(marker, { timeout: 60000 });
        const again = Date.now();
        await page.evaluate(() => { document.getElementById("heatmap").innerHTML = ""; });
        await page.click('#sales-presets button[data-preset="90d"]');
        await page.waitForSelector(marker, { timeout: 60000 });
        times.push(Date.now() - again);
      } else {
        await page.waitForSelector(marker, { timeout: 60000 });
        times.push(Date.now() - started);
      }
      await page.close();
    }
    times.sort((a, b) => a - b);
    results[name] = { median_ms: times[Math.floor(times.length / 2)], max_ms: times[times.length - 1], runs };
    if (ordersApi.length) {
      ordersApi.sort((a, b) => a - b);
      results[name].first_page_api_median_ms = ordersApi[Math.floor(ordersApi.length / 2)];
    }
    console.error(`${name}: ${JSON.stringify(results[name])}`);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results, null, 2));
