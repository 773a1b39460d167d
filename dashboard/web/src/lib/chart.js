// @ts-check
// Charts by uPlot (vendored), sized to their panel and redrawn on resize.

const COLORS = ["#2457d6", "#e67e22", "#1e8e3e", "#8e44ad", "#c0392b", "#16a085"];
const charts = new Set();

/** @param {HTMLElement} el */
function widthOf(el) {
  return Math.max(260, (el.clientWidth || (el.parentElement ? el.parentElement.clientWidth - 32 : 600)) - 4);
}

/**
 * A line chart with `series` labels; x is seconds since the epoch.
 * @param {HTMLElement} el
 * @param {string[]} series
 * @param {{height?: number, bars?: boolean, yLabel?: string, xTime?: boolean}} [options]
 */
export function lineChart(el, series, options = {}) {
  el.innerHTML = "";
  const bars = options.bars && typeof (/** @type {any} */ (uPlot)).paths?.bars === "function" ? (/** @type {any} */ (uPlot)).paths.bars({ size: [0.8, 40] }) : undefined;
  const plot = new uPlot(
    {
      width: widthOf(el),
      height: options.height || 220,
      scales: { x: { time: options.xTime !== false } },
      series: [{}, ...series.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, fill: bars ? COLORS[i % COLORS.length] + "99" : undefined, paths: bars }))],
      axes: [{ stroke: "#555" }, { size: 70, label: options.yLabel, stroke: "#555" }],
    },
    [[], ...series.map(() => [])],
    el,
  );
  charts.add({ plot, el });
  return plot;
}

let resizing = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => {
    for (const { plot, el } of charts) {
      if (el.isConnected && el.offsetParent !== null) plot.setSize({ width: widthOf(el), height: plot.height || 220 });
    }
  }, 150);
});
