// The console with tokens on (docs/console.md, "Signing in"), against an ordertrace of its own
// started with auth.tokens (docs/security.md) and fed synthetic orders of two partners over
// OTLP/JSON with the ingest token: the login form, a wrong token, the token kept in sessionStorage
// and never in a URL, logout, and a partner who cannot reach the other partner's order or trace
// by URL or by search, and who sees its own SLA figures instead of the global charts. Synthetic
// data is enough here: what is tested is the scoping, which the real services do not change.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startOrdertrace } from '../e2e/ordertrace_process.mjs';
import {
  apiGet, apiJson, assertNoProblems, attrList, checked, exportBody, gotoConsole, kSpanKind,
  launchBrowser, openPage, otlpSpan, postSpans, system, tid,
} from './harness.mjs';

const kPartnerA = 'partner-acme';
const kPartnerB = 'partner-globex';
const kTokens = {
  ops: { role: 'ops', secret: `ops-console-${randomBytes(8).toString('hex')}` },
  acme: { role: 'partner_readonly', partner: kPartnerA, secret: `acme-${randomBytes(12).toString('hex')}` },
  globex: { role: 'partner_readonly', partner: kPartnerB, secret: `globex-${randomBytes(12).toString('hex')}` },
  exporters: { role: 'ingest', secret: `ingest-${randomBytes(12).toString('hex')}` },
};
const kDayNs = 86_400n * 1_000_000_000n;

function hex(bytes) {
  return randomBytes(bytes).toString('hex');
}

function writeConfig(dir) {
  const lines = ['auth:', '  tokens:'];
  for (const [name, t] of Object.entries(kTokens)) {
    const sha = createHash('sha256').update(t.secret).digest('hex');
    lines.push(`    - {name: ${name}, role: ${t.role}, sha256: ${sha}` +
      `${t.partner ? `, partner_id: ${t.partner}` : ''}}`);
  }
  lines.push('sampling:', '  enabled: false');
  if (system().console_dir) lines.push('console:', `  dir: ${system().console_dir}`);
  const file = path.join(dir, 'ordertrace.yaml');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

// One order as a trace: INITIATED at `startNs`, then each later status `stepNs` apart, with a
// publish of the last status and its consume (linked), as the services send them.
function orderTrace({ orderId, partner, traceId, startNs, stepNs, statuses }) {
  const rootId = hex(8);
  const base = { order_id: orderId, partner_id: partner };
  const spans = [otlpSpan({ traceId, spanId: rootId, name: 'order.root', kind: kSpanKind.internal,
    startNs, durationNs: 1_000_000n, attrs: base })];
  statuses.forEach((status, i) => {
    const attrs = { ...base, new_status: status };
    if (i > 0) attrs.prev_status = statuses[i - 1];
    spans.push(otlpSpan({ traceId, spanId: hex(8), parentSpanId: rootId, name: `shop.${status.toLowerCase()}`,
      startNs: startNs + BigInt(i) * stepNs, attrs }));
  });
  return spans;
}

describe('console with tokens: login and partner scoping', () => {
  let server;
  let work;
  let browser;
  let page;
  const orders = {};

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'ordertrace-console-auth-'));
    process.env.ORDERTRACE_BIN = system().ordertrace_bin;
    server = await startOrdertrace({ config: writeConfig(work) });
    const now = BigInt(Date.now()) * 1_000_000n;
    const suffix = hex(4);
    const defs = [
      { key: 'a', orderId: `A-order-${suffix}`, partner: kPartnerA, startNs: now - 60_000_000_000n,
        stepNs: 2_000_000_000n, statuses: ['INITIATED', 'FILE_UPLOADED', 'SUBMITTED'] },
      // Spans three days apart: the waterfall folds the idle stretch.
      { key: 'aSlow', orderId: `A-slow-${suffix}`, partner: kPartnerA, startNs: now - 3n * kDayNs,
        stepNs: 3n * kDayNs - 30_000_000_000n, statuses: ['INITIATED', 'FILE_UPLOADED'] },
      { key: 'b', orderId: `B-order-${suffix}`, partner: kPartnerB, startNs: now - 50_000_000_000n,
        stepNs: 2_000_000_000n, statuses: ['INITIATED', 'FILE_UPLOADED', 'SUBMITTED'] },
    ];
    for (const d of defs) {
      const traceId = hex(16);
      orders[d.key] = { ...d, traceId };
      await postSpans(server.otlpHttpUrl, exportBody('shop-api', orderTrace({ ...d, traceId })),
        kTokens.exporters.secret);
    }
    // Until each order is readable by ops (ingest is asynchronous).
    for (const o of Object.values(orders)) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const res = await apiGet(`/api/v1/orders/${o.orderId}`,
          { base: server.apiUrl, token: kTokens.ops.secret });
        if (res.status === 200) break;
        assert.ok(Date.now() < deadline, `order ${o.orderId} not readable: ${res.status} ${res.text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    browser = await launchBrowser();
    page = await openPage(browser);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const go = (route) => gotoConsole(page, route, server.apiUrl);

  async function login(secret) {
    await page.locator(`form${tid('login-form')}`).waitFor();
    await page.locator(`input${tid('login-token')}`).fill(secret);
    await page.locator(`button${tid('login-submit')}`).click();
  }

  test('the console asks for a token; a wrong one shows login-error', async () => {
    await checked(page, 'auth-login-form', async () => {
      await go('/');
      await page.locator(`form${tid('login-form')}`).waitFor();
      assert.equal(await page.locator(`input${tid('login-token')}`).getAttribute('type'), 'password');
      assert.equal(await page.locator(`${tid('recent-orders')} ${tid('order-row')}`).count(), 0,
        'orders are shown before login');
    });
    await checked(page, 'auth-login-error', async () => {
      await login(`wrong-${hex(8)}`);
      await page.locator(tid('login-error')).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ordertrace.token')), null,
        'a wrong token was kept in sessionStorage');
    });
  });

  test('partner A logs in: its role, its orders only, the token in sessionStorage', async () => {
    const mine = (await apiJson('/api/v1/orders?limit=20',
      { base: server.apiUrl, token: kTokens.acme.secret })).orders.map((o) => o.order_id);
    assert.deepEqual([...mine].sort(), [orders.a.orderId, orders.aSlow.orderId].sort());
    await checked(page, 'auth-partner-home', async () => {
      await go('/');
      await login(kTokens.acme.secret);
      await page.locator(tid('whoami')).waitFor();
      const who = await page.locator(tid('whoami')).innerText();
      assert.ok(/partner/i.test(who) && who.includes(kPartnerA), `whoami shows "${who}"`);
      await page.locator(`${tid('recent-orders')} ${tid('order-row')}`).first().waitFor();
      const shown = await attrList(page, `${tid('recent-orders')} ${tid('order-row')}`, 'data-order-id');
      assert.deepEqual([...shown].sort(), [...mine].sort(), 'partner A\'s recent orders');
      assert.ok(!(await page.content()).includes(orders.b.orderId), 'partner B\'s order on A\'s page');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ordertrace.token')),
        kTokens.acme.secret, 'the token is not in sessionStorage under ordertrace.token');
      const elsewhere = await page.evaluate(() => JSON.stringify(
        { local: { ...localStorage }, cookie: document.cookie }));
      assert.ok(!elsewhere.includes(kTokens.acme.secret), 'the token is kept outside sessionStorage');
    });
    assertNoProblems(page);
  });

  test('partner A\'s own order page, and the days-apart spans folded', async () => {
    await checked(page, 'auth-partner-own-order', async () => {
      await go(`/orders/${orders.aSlow.orderId}`);
      await page.locator(`${tid('waterfall')} ${tid('span-row')}`).first().waitFor();
      assert.match(await page.locator(tid('order-id')).innerText(), new RegExp(orders.aSlow.orderId));
      assert.ok(await page.locator(`${tid('waterfall')} ${tid('time-fold')}`).count() >= 1,
        'spans three days apart are not folded (no time-fold)');
    });
    assertNoProblems(page);
  });

  test('partner A cannot reach partner B\'s order or trace by URL', async () => {
    await checked(page, 'auth-partner-other-order', async () => {
      await go(`/orders/${orders.b.orderId}`);
      await page.locator(tid('not-found')).waitFor();
      assert.equal(await page.locator(tid('span-row')).count(), 0);
      assert.ok(!(await page.locator('main, body').first().innerText()).includes(kPartnerB),
        'partner B\'s id shows on A\'s page');
    });
    await checked(page, 'auth-partner-other-trace', async () => {
      await go(`/traces/${orders.b.traceId}`);
      await page.locator(`${tid('not-found')}, ${tid('error')}`).first().waitFor();
      assert.equal(await page.locator(tid('span-row')).count(), 0, 'B\'s spans shown to A');
      assert.ok(!(await page.content()).includes(orders.b.orderId), 'B\'s order id shown to A');
    });
  });

  test('partner A cannot find partner B\'s order by search', async () => {
    for (const [what, text] of [['order', orders.b.orderId], ['trace', orders.b.traceId],
      ['partner', kPartnerB]]) {
      await checked(page, `auth-partner-search-other-${what}`, async () => {
        await go('/');
        const input = page.locator(`input${tid('search-input')}`);
        await input.fill(text);
        await input.press('Enter');
        await page.locator(tid('search-empty')).waitFor();
        assert.equal(await page.locator(`${tid('search-results')} a${tid('order-link')}`).count(), 0);
        assert.ok(!/\/(orders|traces)\//.test(new URL(page.url()).pathname),
          `searching B's ${what} opened ${page.url()}`);
      });
    }
    // Its own order is found the same way (the search works for partners).
    await checked(page, 'auth-partner-search-own', async () => {
      await go('/');
      const input = page.locator(`input${tid('search-input')}`);
      await input.fill(orders.a.orderId);
      await input.press('Enter');
      await page.waitForURL(`**/orders/${orders.a.orderId}`);
    });
  });

  test('a partner\'s charts page shows its own SLA figures, not the global charts', async () => {
    await checked(page, 'auth-partner-charts', async () => {
      await go('/charts');
      await page.locator(tid('partner-sla')).waitFor();
      for (const id of ['chart-stage-duration', 'chart-price-calc', 'chart-queue-latency', 'chart-over-time']) {
        assert.equal(await page.locator(tid(id)).count(), 0, `${id} is shown to a partner`);
      }
    });
  });

  test('logout clears the session', async () => {
    await checked(page, 'auth-logout', async () => {
      await go('/');
      await page.locator(`button${tid('logout')}`).click();
      await page.locator(`form${tid('login-form')}`).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ordertrace.token')), null,
        'logout left the token in sessionStorage');
      // A fresh load stays logged out.
      await go('/');
      await page.locator(`form${tid('login-form')}`).waitFor();
    });
    assertNoProblems(page);
  });

  test('partner A\'s token was never in a URL the browser visited or requested', () => {
    const secret = kTokens.acme.secret;
    const urls = [...page.visited, ...page.requested];
    assert.ok(page.requested.some((u) => u.includes('/api/v1/orders')), 'no API request recorded');
    for (const u of urls) {
      assert.ok(!u.includes(secret) && !u.includes(encodeURIComponent(secret)),
        `the token is in a URL the browser used: ${u}`);
    }
    assertNoProblems(page);
  });

  test('ops logs in: sees partner B\'s order and the global charts', async () => {
    const ops = await openPage(browser);
    try {
      await checked(ops, 'auth-ops-other-order', async () => {
        await gotoConsole(ops, `/orders/${orders.b.orderId}`, server.apiUrl);
        await ops.locator(`form${tid('login-form')}`).waitFor();
        await ops.locator(`input${tid('login-token')}`).fill(kTokens.ops.secret);
        await ops.locator(`button${tid('login-submit')}`).click();
        await ops.locator(tid('whoami')).waitFor();
        if (!new URL(ops.url()).pathname.startsWith('/orders/')) {
          await gotoConsole(ops, `/orders/${orders.b.orderId}`, server.apiUrl);
        }
        await ops.locator(tid('order-status')).waitFor();
        assert.match(await ops.locator(tid('order-id')).innerText(), new RegExp(orders.b.orderId));
      });
      await checked(ops, 'auth-ops-charts', async () => {
        await gotoConsole(ops, '/charts', server.apiUrl);
        await ops.locator(`${tid('chart-stage-duration')} svg`).first().waitFor();
        assert.equal(await ops.locator(tid('partner-sla')).count(), 0);
      });
      for (const u of [...ops.visited, ...ops.requested]) {
        assert.ok(!u.includes(kTokens.ops.secret), `the ops token is in a URL: ${u}`);
      }
      assertNoProblems(ops);
    } finally {
      await ops.context().close();
    }
  });
});
