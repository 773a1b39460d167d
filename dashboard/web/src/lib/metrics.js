// @ts-check
// Reads the server's Prometheus text (`/metrics`) and turns two readings
// into rates: requests and errors by route and status, and latency
// percentiles from the histogram buckets' growth.

/** @typedef {{name: string, labels: Record<string,string>, value: number}} Sample */

/** @param {string} text @returns {Sample[]} */
export function parse(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    /** @type {Record<string,string>} */
    const labels = {};
    for (const l of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** Requests per route and status class between two readings. @param {Sample[]} before @param {Sample[]} now */
export function requestRates(before, now) {
  const key = (/** @type {Sample} */ s) => `${s.labels.method} ${s.labels.route}|${s.labels.status}`;
  const was = new Map(before.filter((s) => s.name === "orderstream_http_requests_total").map((s) => [key(s), s.value]));
  /** @type {Map<string, {route: string, total: number, client: number, server: number}>} */
  const routes = new Map();
  for (const s of now) {
    if (s.name !== "orderstream_http_requests_total") continue;
    const delta = s.value - (was.get(key(s)) || 0);
    if (delta <= 0) continue;
    const route = `${s.labels.method} ${s.labels.route}`;
    const r = routes.get(route) || { route, total: 0, client: 0, server: 0 };
    const status = Number(s.labels.status);
    r.total += delta;
    if (status >= 500) r.server += delta; else if (status >= 400) r.client += delta;
    routes.set(route, r);
  }
  return [...routes.values()].sort((a, b) => b.total - a.total);
}

/** p50/p95/p99 (ms) of a route's latency between two readings, from bucket growth. @param {Sample[]} before @param {Sample[]} now @param {string} route */
export function latency(before, now, route) {
  const name = "orderstream_http_request_duration_seconds_bucket";
  const was = new Map(before.filter((s) => s.name === name && s.labels.route === route).map((s) => [s.labels.le, s.value]));
  const buckets = now.filter((s) => s.name === name && s.labels.route === route)
    .map((s) => ({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le), count: s.value - (was.get(s.labels.le) || 0) }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.length ? buckets[buckets.length - 1].count : 0;
  if (total <= 0) return null;
  const at = (/** @type {number} */ q) => {
    const rank = q * total;
    let lower = 0, below = 0;
    for (const b of buckets) {
      if (b.count >= rank) {
        if (!Number.isFinite(b.le)) return lower * 1000;
        const inside = b.count - below;
        return (lower + (b.le - lower) * (inside > 0 ? (rank - below) / inside : 1)) * 1000;
      }
      lower = b.le; below = b.count;
    }
    return lower * 1000;
  };
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), count: total };
}
