// What the console's browser tests share: the system run.sh started (CONSOLE_SYSTEM), Debian's
// chromium through playwright-core, pages that record every URL they visit and request and every
// script error, screenshots kept as artifacts, the API read the way the console reads it, and
// synthetic OTLP/JSON orders for the tests that need data of their own. Not a test file itself.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const kChromium = '/usr/bin/chromium';
// How long a page may take to show what the API already holds (a few fetches and a render).
export const kUiTimeoutMs = 15_000;

let systemCache;
// The system run.sh started: {api_url, otlp_http_url, truth, artifacts, ordertrace_bin,
// console_dir, stuck_orders[]}.
export function system() {
  if (!systemCache) {
    const file = process.env.CONSOLE_SYSTEM;
    if (!file) {
      throw new Error('CONSOLE_SYSTEM is not set: run these tests through tests/console/run.sh');
    }
    systemCache = JSON.parse(readFileSync(file, 'utf8'));
  }
  return systemCache;
}

// order-sim's ground truth, one record per order.
export function truth() {
  return readFileSync(system().truth, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

// A CSS selector for data-testid `id`, with optional attribute equalities.
export function tid(id, attrs = {}) {
  let sel = `[data-testid="${id}"]`;
  for (const [k, v] of Object.entries(attrs)) sel += `[${k}="${String(v).replace(/"/g, '\\"')}"]`;
  return sel;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: kChromium,
    args: ['--no-sandbox', '--headless=new'],
    timeout: 30_000,
  });
}

// A page in a fresh context (its own sessionStorage) that records what it did:
// page.visited (main-frame URLs), page.requested (every request URL), page.problems (uncaught
// errors, console errors, requests that left loopback).
export async function openPage(browser, { viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(kUiTimeoutMs);
  page.visited = [];
  page.requested = [];
  page.problems = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) page.visited.push(frame.url());
  });
  page.on('request', (req) => {
    page.requested.push(req.url());
    const url = new URL(req.url());
    if (!['127.0.0.1', 'localhost'].includes(url.hostname) && url.protocol !== 'data:') {
      page.problems.push(`request off loopback: ${req.url()}`);
    }
  });
  page.on('pageerror', (err) => page.problems.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    // A failed API fetch the test provoked (404 of an unknown order, 401 before login) is logged
    // by chromium as "Failed to load resource"; that is the console working, not a defect.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) {
      page.problems.push(`console error: ${msg.text()}`);
    }
  });
  return page;
}

// No script error, CSP refusal or request off loopback happened on `page`.
export function assertNoProblems(page) {
  assert.deepEqual(page.problems, [], `problems on ${page.url()}`);
}

// Saves a full-page screenshot as ARTIFACTS/NAME.png and returns its path.
export async function screenshot(page, name) {
  const dir = system().artifacts;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Loads `route` of the console at `base` (default: the system's API URL) and waits until the
// header's search box is there (the shell ran its script).
export async function gotoConsole(page, route, base = system().api_url) {
  const res = await page.goto(`${base}${route}`, { waitUntil: 'domcontentloaded' });
  assert.ok(res, `no response for ${route}`);
  assert.equal(res.status(), 200, `GET ${route} answered ${res.status()}`);
  return res;
}

// GET `p` on the API at `base` with an optional bearer token: {status, body (parsed JSON or
// null)}.
export async function apiGet(p, { base = system().api_url, token } = {}) {
  const res = await fetch(`${base}${p}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON.
  }
  return { status: res.status, body, text };
}

export async function apiJson(p, opts) {
  const res = await apiGet(p, opts);
  assert.equal(res.status, 200, `GET ${p} answered ${res.status}: ${res.text.slice(0, 300)}`);
  return res.body;
}

// Every open gap (following next_cursor), optionally filtered by query parameters.
export async function openGaps(params = {}, opts) {
  const gaps = [];
  let cursor = '';
  for (let i = 0; i < 50; ++i) {
    const q = new URLSearchParams({ state: 'open', limit: '500', ...params });
    if (cursor) q.set('cursor', cursor);
    const page = await apiJson(`/api/v1/gaps?${q}`, opts);
    gaps.push(...page.gaps);
    if (!page.next_cursor) return gaps;
    cursor = page.next_cursor;
  }
  throw new Error('more than 50 pages of gaps');
}

// The spans of an OTLP JSON trace answer, each with its service.name.
export function traceSpans(trace) {
  const out = [];
  for (const batch of trace.batches ?? []) {
    const service = (batch.resource?.attributes ?? []).find((a) => a.key === 'service.name')
      ?.value?.stringValue;
    for (const scope of batch.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) out.push({ ...span, service });
    }
  }
  return out;
}

// The value of attribute `key` in an OTLP JSON attribute list, as a string (or undefined).
export function attrValue(attributes, key) {
  const v = (attributes ?? []).find((a) => a.key === key)?.value;
  if (!v) return undefined;
  for (const k of ['stringValue', 'intValue', 'doubleValue', 'boolValue']) {
    if (k in v) return String(v[k]);
  }
  return JSON.stringify(v);
}

// OTLP span kinds by their JSON number.
export const kSpanKind = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };

// Presses Tab until the focused element matches `selector` (at most `limit` presses); returns
// a handle on it, or null.
export async function tabTo(page, selector, limit = 400) {
  for (let i = 0; i < limit; ++i) {
    await page.keyboard.press('Tab');
    const hit = await page.evaluate(
      (sel) => document.activeElement?.matches(sel) ?? false, selector);
    if (hit) return page.evaluateHandle(() => document.activeElement);
  }
  return null;
}

// OTLP/JSON export body for one service's spans.
export function exportBody(service, spans) {
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ scope: { name: 'console-browser-test' }, spans }],
    }],
  });
}

// One OTLP/JSON span with string attributes.
export function otlpSpan({ traceId, spanId, parentSpanId, name, kind = kSpanKind.server,
  startNs, durationNs = 5_000_000n, attrs = {}, links = [] }) {
  const span = {
    traceId,
    spanId,
    name,
    kind,
    startTimeUnixNano: String(startNs),
    endTimeUnixNano: String(startNs + durationNs),
    attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } })),
  };
  if (parentSpanId) span.parentSpanId = parentSpanId;
  if (links.length) span.links = links;
  return span;
}

// POSTs an OTLP/JSON body to `url` (…/v1/traces) with an optional bearer token.
export async function postSpans(url, body, token) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `OTLP export answered ${res.status}: ${text.slice(0, 300)}`);
}

// Runs `fn`, then keeps a screenshot of `page` as NAME.png; when `fn` throws, as
// NAME-FAILED.png (what the page showed when the check failed), and rethrows.
export async function checked(page, name, fn) {
  let result;
  try {
    result = await fn();
  } catch (e) {
    await screenshot(page, `${name}-FAILED`).catch(() => {});
    throw e;
  }
  await screenshot(page, name);
  return result;
}

// The data-order-id of every [data-testid=order-row] (or other testid) inside `container`.
export async function attrList(page, selector, attr) {
  return page.locator(selector).evaluateAll(
    (els, a) => els.map((e) => e.getAttribute(a)), attr);
}
