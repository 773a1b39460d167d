// @ts-check
// The one way the page talks to the server: every request carries the API
// key from this tab (sessionStorage), every error is the API's JSON
// message, and a refused key is said once, in the sign-in banner.

const KEY_STORE = "orderstream-api-key";

export const apiKey = () => sessionStorage.getItem(KEY_STORE) || "";

/** @param {string} key */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORE, key.trim());
  else sessionStorage.removeItem(KEY_STORE);
}

/**
 * `path` with the key in its query, for what cannot send a header (a
 * WebSocket, an EventSource).
 * @param {string} path
 */
export function withToken(path) {
  const key = apiKey();
  return key ? `${path}${path.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(key)}` : path;
}

/** @param {Record<string,string>} [extra] */
export function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: "Bearer " + key } : extra;
}

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {any} body */
  constructor(status, message, body) {
    super(`${status}: ${message}`);
    this.status = status;
    this.body = body;
    this.field = body && body.field;
  }
}

/** @type {(error: ApiError) => void} */
let onRefused = () => {};
/** Called once per refused key (401), e.g. to open the sign-in banner. @param {(error: ApiError) => void} f */
export function whenRefused(f) {
  onRefused = f;
}

/**
 * @param {string} path
 * @param {RequestInit & {json?: unknown}} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  const init = { ...options, headers: headers(/** @type {Record<string,string>} */ (options.headers || {})) };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    delete init.json;
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : response.statusText;
    const error = new ApiError(response.status, message, body);
    if (response.status === 401) onRefused(error);
    throw error;
  }
  return body;
}

/**
 * Downloads `path` with the key in the header (a plain link cannot carry
 * it) and saves the answer under its server-given name.
 * @param {string} path
 * @param {string} fallbackName
 */
export async function download(path, fallbackName) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).message || message;
    } catch {
      /* not JSON */
    }
    const error = new ApiError(response.status, message, null);
    if (response.status === 401) onRefused(error);
    throw error;
  }
  const disposition = response.headers.get("content-disposition") || "";
  const named = /filename="?([^";]+)"?/.exec(disposition);
  const blob = await response.blob();
  const name = named ? named[1] : fallbackName;
  saveBlob(name, blob);
  return { bytes: blob.size, name };
}

/** Hands `blob` to the browser as a file named `name`. @param {string} name @param {Blob} blob */
function saveBlob(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Saves text the page made itself (a CSV of what it shows). @param {string} name @param {string} text */
export const saveText = (name, text) => saveBlob(name, new Blob([text], { type: "text/csv" }));

/** One CSV line, quoted where needed. @param {unknown[]} cells */
export const csvLine = (cells) =>
  cells.map((c) => {
    const s = String(c ?? "");
    return /[",\n\r]/.test(s) || /^[=+\-@]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(",");
