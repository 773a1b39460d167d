// @ts-check
// Inventory: the live stock of every catalog product, searchable and
// sortable, low stock in red; stock adjusted with a note (kept with the
// stock event), and stock exported or imported as CSV.
import { $, esc, int, money } from "../lib/format.js";
import { api, csvLine, saveText } from "../lib/api.js";
import { Table } from "../lib/table.js";
import { showState, toast } from "../lib/toast.js";
import { allProducts } from "../lib/products.js";
import { boughtTogether, showPicks } from "../lib/recommend.js";

/** @type {Table|null} */
let table = null;
/** @type {any[]} */
let all = [];


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
    { key: "adjust", label: "", html: (p) => `<button data-adjust="${esc(p.product_id)}">Adjust</button>` },
  ], {
    empty: "No catalog products yet. Import a catalog with `orderstream catalog import FILE` (CSV: product_id,name,category,unit_price,stock).",
    rowClass: (p) => (p.low_stock ? "low" : ""),
    rowKey: (p) => p.product_id,
    pageSize: 200,
    onOpen: (p) => openProduct(p.product_id),
  });
  return table;
}

function filter() {
  const q = $("stock-q").value.trim().toLowerCase();
  const low = $("stock-low").checked;
  const rows = all.filter((p) => (!low || p.low_stock) &&
    (!q || p.product_id.toLowerCase().includes(q) || String(p.name).toLowerCase().includes(q) || String(p.category).toLowerCase().includes(q)));
  stockTable().set(rows);
  const lowCount = all.filter((p) => p.low_stock).length;
  $("stock-count").textContent = `${int(rows.length)} of ${int(all.length)} products · ${int(lowCount)} low on stock`;
}

/** A product's detail: its stock and what is bought with it. @param {string} id */
function openProduct(id) {
  const p = all.find((x) => x.product_id === id);
  $("product-detail").hidden = false;
  $("product-detail").dataset.product = id;
  $("product-detail-body").innerHTML = p
    ? `<h3>${esc(p.name)}</h3><p><span class="id">${esc(id)}</span> · ${esc(p.category)} · ${esc(money(p.unit_price, p.currency))} · ${int(p.stock.available)} available</p>`
    : `<h3 class="id">${esc(id)}</h3><p class="muted">not in the catalog</p>`;
  showPicks($("product-recs"), () => boughtTogether(id), "Nothing is bought with it often enough yet.");
}

async function load() {
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

/** @param {string} productId @param {{quantity?: number, delta?: number}} change @param {string} reason */
async function setStock(productId, change, reason) {
  return api(`/api/admin/products/${encodeURIComponent(productId)}/stock`, {
    method: "PUT",
    headers: { "Idempotency-Key": crypto.randomUUID() },
    json: { ...change, ...(reason ? { reason } : {}) },
  });
}

/** @param {string} id */
function openAdjust(id) {
  const p = all.find((x) => x.product_id === id);
  if (!p) return;
  const f = /** @type {HTMLFormElement} */ ($("adjust-form"));
  f.hidden = false;
  f.product_id.value = id;
  $("adjust-what").textContent = `${p.name} (${id}): ${int(p.stock.available)} available`;
  f.amount.value = "";
  f.reason.value = "";
  showState($("adjust-state"), null);
  f.amount.focus();
}

async function submitAdjust(/** @type {Event} */ e) {
  e.preventDefault();
  const f = /** @type {HTMLFormElement} */ ($("adjust-form"));
  const amount = f.amount.value.trim();
  const mode = f.mode.value;
  if (!/^-?\d+$/.test(amount) || (mode === "set" && amount.startsWith("-"))) {
    showState($("adjust-state"), mode === "set" ? "the new level is a whole number, 0 or more" : "the change is a whole number such as 10 or -3");
    return;
  }
  if (!f.reason.value.trim()) { showState($("adjust-state"), "say why (kept with the stock change)"); return; }
  try {
    const change = mode === "set" ? { quantity: Number(amount) } : { delta: Number(amount) };
    const r = await setStock(f.product_id.value, change, f.reason.value.trim());
    toast(r.after ? `${f.product_id.value}: ${r.before.available} → ${r.after.available} available` : `${f.product_id.value}: queued`);
    f.hidden = true;
    load();
  } catch (err) { showState($("adjust-state"), err.message); }
}

function exportCsv() {
  const lines = [csvLine(["product_id", "name", "category", "unit_price", "currency", "available", "reserved", "sold", "low_stock"])];
  for (const p of stockTable().view) lines.push(csvLine([p.product_id, p.name, p.category, p.unit_price, p.currency, p.stock.available, p.stock.reserved, p.stock.sold, p.low_stock]));
  saveText(`stock-${new Date().toISOString().slice(0, 10)}.csv`, lines.join("\n") + "\n");
}

/** Sets each listed product's available stock: `product_id,available` (a header line first). @param {File} file */
async function importCsv(file) {
  const text = await file.text();
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  const header = (lines.shift() || "").split(",").map((h) => h.trim().toLowerCase());
  const idCol = header.indexOf("product_id"), qtyCol = header.findIndex((h) => h === "available" || h === "quantity" || h === "stock");
  if (idCol < 0 || qtyCol < 0) { showState($("inventory-state"), "the CSV needs a header with product_id and available (or quantity, or stock)"); return; }
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
    try { await setStock(String(id), { quantity: Number(qty) }, `CSV import ${file.name}`); done++; } catch (e) { failed.push(`${id}: ${e.message}`); }
  }
  showState($("inventory-state"), failed.length ? `${done} set, ${failed.length} failed: ${failed.slice(0, 5).join("; ")}` : null);
  toast(`stock import: ${done} products set`);
  load();
}

export const inventory = {
  enter() { load(); },
  init() {
    $("stock-q").addEventListener("input", filter);
    $("stock-low").addEventListener("change", filter);
    $("stock-table").addEventListener("click", (/** @type {Event} */ e) => {
      const id = /** @type {HTMLElement} */ (e.target).dataset.adjust;
      if (id) openAdjust(id);
    });
    $("product-recs").addEventListener("click", (/** @type {Event} */ e) => {
      const li = /** @type {HTMLElement} */ (/** @type {HTMLElement} */ (e.target).closest("li[data-product]"));
      if (li) openProduct(li.dataset.product || "");
    });
    $("product-detail-close").addEventListener("click", () => { $("product-detail").hidden = true; });
    $("adjust-form").addEventListener("submit", submitAdjust);
    $("adjust-cancel").addEventListener("click", () => { $("adjust-form").hidden = true; });
    $("stock-export").addEventListener("click", exportCsv);
    $("stock-import").addEventListener("change", (/** @type {Event} */ e) => {
      const input = /** @type {HTMLInputElement} */ (e.target);
      if (input.files && input.files[0]) importCsv(input.files[0]).finally(() => { input.value = ""; });
    });
  },
};
