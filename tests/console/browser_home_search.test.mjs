// The console's first page and its search (docs/console.md), in headless chromium against the whole
// system run.sh started: recent orders as the API lists them, the stuck orders order-sim made,
// and a search by order id, trace id, partner id and an unknown id.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiJson, assertNoProblems, attrList, checked, gotoConsole, launchBrowser, openGaps, openPage,
  system, tid, traceSpans,
} from './harness.mjs';

describe('console home and search', () => {
  let browser;
  let page;

  before(async () => {
    browser = await launchBrowser();
    page = await openPage(browser);
  });
  after(async () => {
    await browser?.close();
  });

  test('/ loads with its title, nav, recent orders and the stuck orders', async () => {
    const recent = await apiJson('/api/v1/orders?limit=20');
    const gaps = await openGaps();
    const stuckIds = [...new Set(gaps.map((g) => g.order_id))].sort();
    for (const id of system().stuck_orders) {
      assert.ok(stuckIds.includes(id), `the API lists no open gap for stuck order ${id}`);
    }

    await checked(page, 'home', async () => {
      const res = await gotoConsole(page, '/');
      // The server's Content-Security-Policy, as the contract gives it.
      const csp = (await res.allHeaders())['content-security-policy'] ?? '';
      for (const part of ["default-src 'self'", "script-src 'self'", "style-src 'self'",
        "object-src 'none'", "frame-ancestors 'none'"]) {
        assert.ok(csp.includes(part), `the console's CSP lacks ${part}: "${csp}"`);
      }
      await page.locator(`${tid('recent-orders')} ${tid('order-row')}`).first().waitFor();
      await page.locator(`${tid('stuck-orders')} ${tid('order-row')}`).first().waitFor();

      assert.ok((await page.title()).trim().length > 0, 'the page has no title');
      for (const [id, href] of [['nav-home', '/'], ['nav-gaps', '/gaps'], ['nav-charts', '/charts']]) {
        const link = page.locator(`a${tid(id)}`);
        await link.waitFor();
        assert.equal(new URL(await link.getAttribute('href'), page.url()).pathname, href,
          `${id} does not point at ${href}`);
      }
      for (const id of ['search-form', 'search-input', 'search-submit']) {
        assert.equal(await page.locator(tid(id)).count(), 1, `no single ${id} on /`);
      }

      // Recent orders: the API's list, newest first, each row with its link.
      const recentIds = await attrList(page, `${tid('recent-orders')} ${tid('order-row')}`,
        'data-order-id');
      assert.deepEqual(recentIds, recent.orders.map((o) => o.order_id),
        'recent orders differ from GET /api/v1/orders?limit=20 (or from its order)');
      for (const id of recentIds) {
        const link = page.locator(
          `${tid('recent-orders')} ${tid('order-row', { 'data-order-id': id })} a${tid('order-link')}`);
        assert.equal(await link.count(), 1, `recent order ${id} has no order-link`);
        assert.equal(new URL(await link.getAttribute('href'), page.url()).pathname,
          `/orders/${encodeURIComponent(id)}`);
      }

      // Stuck orders: exactly the orders with open gaps, the faulted ones among them.
      const shownStuck = await attrList(page, `${tid('stuck-orders')} ${tid('order-row')}`,
        'data-order-id');
      assert.deepEqual([...new Set(shownStuck)].sort(), stuckIds,
        'stuck orders differ from the orders of GET /api/v1/gaps?state=open');
    });
    assertNoProblems(page);
  });

  test('a stuck order\'s link on / opens its order page', async () => {
    const id = system().stuck_orders[0];
    await checked(page, 'home-stuck-link', async () => {
      await gotoConsole(page, '/');
      await page.locator(
        `${tid('stuck-orders')} ${tid('order-row', { 'data-order-id': id })} a${tid('order-link')}`)
        .first().click();
      await page.waitForURL(`**/orders/${id}`);
      await page.locator(tid('order-id')).waitFor();
      assert.match(await page.locator(tid('order-id')).innerText(), new RegExp(id));
    });
    assertNoProblems(page);
  });

  async function search(text) {
    await gotoConsole(page, '/');
    const input = page.locator(`input${tid('search-input')}`);
    await input.fill(text);
    await input.press('Enter');
  }

  test('search by order id opens /orders/{id}', async () => {
    const id = system().stuck_orders[0];
    await checked(page, 'search-order-id', async () => {
      await search(id);
      await page.waitForURL(`**/orders/${id}`);
      await page.locator(tid('order-id')).waitFor();
      assert.match(await page.locator(tid('order-id')).innerText(), new RegExp(id));
    });
    assertNoProblems(page);
  });

  test('search by trace id opens /traces/{id} with its waterfall', async () => {
    // A closed order's trace: a different order from the one above.
    const { orders } = await apiJson('/api/v1/orders?limit=20');
    const closed = orders.find((o) => o.current_status === 'CLOSED');
    assert.ok(closed, 'order-sim closed no order');
    const traceId = closed.trace_id;
    const spans = traceSpans(await apiJson(`/api/traces/${traceId}`));
    await checked(page, 'search-trace-id', async () => {
      await search(traceId);
      await page.waitForURL(`**/traces/${traceId}`);
      await page.locator(`${tid('waterfall')} ${tid('span-row')}`).first().waitFor();
      const shown = await attrList(page, `${tid('waterfall')} ${tid('span-row')}`, 'data-span-id');
      assert.deepEqual([...shown].sort(), spans.map((s) => s.spanId).sort(),
        `the trace page's span rows differ from GET /api/traces/${traceId}`);
    });
    assertNoProblems(page);
  });

  test('search by partner id lists that partner\'s orders', async () => {
    const { orders } = await apiJson('/api/v1/orders?limit=20');
    const partner = orders.find((o) => o.partner_id)?.partner_id;
    assert.ok(partner, 'order-sim made no partner order');
    const expected = (await apiJson(
      `/api/v1/orders?partner_id=${encodeURIComponent(partner)}&limit=1000`)).orders
      .map((o) => o.order_id).sort();
    await checked(page, 'search-partner-id', async () => {
      await search(partner);
      await page.locator(`${tid('search-results')} a${tid('order-link')}`).first().waitFor();
      const shown = await attrList(page, `${tid('search-results')} a${tid('order-link')}`,
        'data-order-id');
      assert.deepEqual([...shown].sort(), expected,
        `search results for ${partner} differ from GET /api/v1/orders?partner_id=${partner}`);
      assert.equal(await page.locator(tid('search-empty')).count(), 0);
    });
    assertNoProblems(page);
  });

  test('search for an unknown id shows search-empty', async () => {
    const unknown = `no-such-order-${Date.now()}`;
    await checked(page, 'search-unknown', async () => {
      await search(unknown);
      await page.locator(tid('search-empty')).waitFor();
      assert.equal(await page.locator(`${tid('search-results')} a${tid('order-link')}`).count(), 0);
      assert.ok(!page.url().includes('/orders/'), `an unknown id opened ${page.url()}`);
    });
    assertNoProblems(page);
  });
});
