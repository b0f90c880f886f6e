// The API client: every request carries the session's token (sessionStorage `ordertrace.token`,
// never a URL), and every failure becomes an ApiError with the server's message. A 401 calls the
// handler the shell registers (it shows the login page). No DOM access here.

export const TOKEN_KEY = 'ordertrace.token';

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.path = path;
  }
}

function storage() {
  try {
    return globalThis.sessionStorage || null;
  } catch {
    return null;
  }
}

export function getToken() {
  return storage()?.getItem(TOKEN_KEY) || null;
}

export function setToken(token) {
  storage()?.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  storage()?.removeItem(TOKEN_KEY);
}

let onUnauthorized = null;
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// The message of an API error body: {"error":{"status","message"}} (ordertrace) or
// {"error": "...", "message": "..."}; else the HTTP status text.
export function errorMessage(body, fallback) {
  if (body && typeof body === 'object') {
    if (body.error && typeof body.error === 'object' && body.error.message) return String(body.error.message);
    if (body.message) return String(body.message);
    if (typeof body.error === 'string') return body.error;
  }
  return fallback;
}

// GET a JSON path. Throws ApiError (status 0 when the server could not be reached). A 401 also
// calls the unauthorized handler unless `quiet401` is set (the login page's own check).
export async function apiGet(path, { signal, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { headers, signal, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'ordertrace could not be reached; is it running?', path);
  }
  let body = null;
  const text = await res.text();
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const message =
      res.status === 403
        ? `Not allowed: ${errorMessage(body, 'your role may not read this')}`
        : errorMessage(body, `${res.status} ${res.statusText || ''}`.trim());
    const err = new ApiError(res.status, message, path);
    if (res.status === 401 && !quiet401 && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  if (body === null) throw new ApiError(res.status, 'the answer was not JSON', path);
  return body;
}

// Like apiGet, but a 404 answers null (an unknown order or trace is an answer, not an error).
export async function apiFind(path, options) {
  try {
    return await apiGet(path, options);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 400)) return null;
    throw e;
  }
}

export const enc = encodeURIComponent;
