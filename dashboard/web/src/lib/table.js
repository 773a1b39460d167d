// @ts-check
// A table over rows in memory: sortable by a click (or Enter) on a header,
// rows reachable by Tab and opened by Enter or a click, an explanation
// when empty. Every cell is escaped unless its column renders HTML from
// escaped parts.
import { esc } from "./format.js";

/**
 * @typedef {object} Column
 * @property {string} key
 * @property {string} label
 * @property {boolean} [num] right-aligned, sorted as a number
 * @property {(row: any) => string} [html] the cell's HTML (escape inside)
 * @property {(row: any) => any} [value] the value to sort by (default row[key])
 */

export class Table {
  /**
   * @param {HTMLTableElement} table
   * @param {Column[]} columns
   * @param {{empty?: string, onOpen?: (row: any) => void, rowClass?: (row: any) => string, rowKey?: (row: any) => string, sortable?: boolean, pageSize?: number}} [options]
   */
  constructor(table, columns, options = {}) {
    this.table = table;
    this.columns = columns;
    this.options = options;
    /** @type {any[]} */
    this.rows = [];
    /** @type {{key: string, desc: boolean}|null} */
    this.sort = null;
    const sortable = options.sortable !== false;
    table.innerHTML =
      "<thead><tr>" +
      columns.map((c) => `<th class="${c.num ? "num" : ""}" data-key="${esc(c.key)}"${sortable ? ' tabindex="0" aria-sort="none"' : ""}>${esc(c.label)}</th>`).join("") +
      "</tr></thead><tbody></tbody>";
    this.body = /** @type {HTMLTableSectionElement} */ (table.tBodies[0]);
    if (sortable) {
      const onSort = (/** @type {Event} */ e) => {
        const th = /** @type {HTMLElement} */ (e.target).closest("th[data-key]");
        if (th) this.sortBy(/** @type {HTMLElement} */ (th).dataset.key || "");
      };
      table.tHead.addEventListener("click", onSort);
      table.tHead.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSort(e); } });
    }
    if (options.onOpen) {
      const open = (/** @type {Event} */ e) => {
        const target = /** @type {HTMLElement} */ (e.target);
        if (target.closest("button, input, a, select")) return;
        const tr = /** @type {HTMLElement} */ (target.closest("tr[data-index]"));
        if (tr) options.onOpen(this.view[Number(tr.dataset.index)]);
      };
      this.body.addEventListener("click", open);
      this.body.addEventListener("keydown", (e) => { if (e.key === "Enter" && /** @type {HTMLElement} */ (e.target).tagName === "TR") open(e); });
    }
    /** @type {any[]} */
    this.view = [];
    // Long tables draw a page of rows and more on request: drawing
    // thousands of rows at once is what made a page slow.
    this.shown = options.pageSize || Infinity;
    table.addEventListener("click", (e) => {
      if (/** @type {HTMLElement} */ (e.target).dataset.more !== undefined) {
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
    this.table.tHead.querySelectorAll("th").forEach((th) =>
      th.setAttribute("aria-sort", th.dataset.key === key ? (this.sort.desc ? "descending" : "ascending") : "none"));
    this.render();
  }

  render() {
    let rows = this.rows;
    if (this.sort) {
      const column = this.columns.find((c) => c.key === this.sort.key);
      const value = column && column.value ? column.value : (/** @type {any} */ r) => r[this.sort.key];
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
    const more = rows.length > this.shown
      ? `<tr class="more"><td colspan="${this.columns.length}"><button type="button" data-more>Show more</button> <span class="muted">${this.shown} of ${rows.length} shown</span></td></tr>`
      : "";
    this.body.innerHTML = rows
      .slice(0, this.shown)
      .map((row, i) => {
        const cls = this.options.rowClass ? this.options.rowClass(row) : "";
        const key = this.options.rowKey ? ` data-key="${esc(this.options.rowKey(row))}"` : "";
        return `<tr data-index="${i}"${key} class="${esc(cls)}"${focusable}>` +
          this.columns.map((c) => `<td class="${c.num ? "num" : ""}">${c.html ? c.html(row) : esc(row[c.key])}</td>`).join("") + "</tr>";
      })
      .join("") + more;
  }
}
