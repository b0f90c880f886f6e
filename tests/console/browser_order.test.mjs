// The order page of an order stuck for real: order-sim lost its price request, so it
// stopped at SUBMITTED with the request in mes.price.requests. Its status, where it stopped, the
// timeline against the SLAs, its open gaps, and the waterfall of the real services' spans, where
// each RabbitMQ consume span is joined to its publish span; a span opens by click and by keyboard;
// and the page on a 390 px wide phone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiJson, assertNoProblems, attrList, attrValue, checked, gotoConsole, kSpanKind,
  launchBrowser, openPage, system, tabTo, tid, traceSpans,
} from './harness.mjs';

const kKindName = Object.fromEntries(Object.entries(kSpanKind).map(([k, v]) => [v, k]));

// The publish -> consume joins the contract asks for: a consumer span with a link (or a parent)
// pointing at a producer span. Returns [{from, to}] of span ids.
function messageJoins(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const joins = [];
  for (const s of spans) {
    if (s.kind !== kSpanKind.consumer) continue;
    const targets = new Set((s.links ?? []).map((l) => l.spanId));
    if (s.parentSpanId) targets.add(s.parentSpanId);
    for (const t of targets) {
      if (byId.get(t)?.kind === kSpanKind.producer) joins.push({ from: t, to: s.spanId });
    }
  }
  return joins;
}

// The critical path as the contract defines it: from each root, repeatedly the child or linked
// consumer that finishes last.
function criticalPath(spans) {
  const ids = new Set(spans.map((s) => s.spanId));
  const next = new Map(); // span id -> its children and the consumers linked to it
  for (const s of spans) {
    const from = new Set();
    if (s.parentSpanId && ids.has(s.parentSpanId)) from.add(s.parentSpanId);
    if (s.kind === kSpanKind.consumer) {
      for (const l of s.links ?? []) if (ids.has(l.spanId)) from.add(l.spanId);
    }
    for (const f of from) {
      if (!next.has(f)) next.set(f, []);
      next.get(f).push(s);
    }
  }
  const path = new Set();
  for (const root of spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId))) {
    let at = root;
    while (at && !path.has(at.spanId)) {
      path.add(at.spanId);
      const candidates = next.get(at.spanId) ?? [];
      at = candidates.reduce((best, s) => (
        !best || BigInt(s.endTimeUnixNano) > BigInt(best.endTimeUnixNano) ? s : best), null);
    }
  }
  return path;
}

describe('order page of a stuck order', () => {
  let browser;
  let page;
  let orderId;
  let order;
  let gaps;
  let sla;
  let spans;

  before(async () => {
    orderId = system().stuck_orders[0];
    order = await apiJson(`/api/v1/orders/${encodeURIComponent(orderId)}`);
    gaps = (await apiJson(`/api/v1/gaps?order_id=${encodeURIComponent(orderId)}`)).gaps;
    sla = await apiJson('/api/v1/sla');
    spans = [];
    for (const t of order.trace_ids) spans.push(...traceSpans(await apiJson(`/api/traces/${t}`)));
    browser = await launchBrowser();
    page = await openPage(browser);
  });
  after(async () => {
    await browser?.close();
  });

  async function openOrder(p = page) {
    await gotoConsole(p, `/orders/${encodeURIComponent(orderId)}`);
    await p.locator(tid('order-status')).waitFor();
    await p.locator(`${tid('waterfall')} ${tid('span-row')}`).first().waitFor();
  }

  test('status, status since, last success and where it stopped', async () => {
    assert.ok(order.open_gaps.length >= 1, 'the API shows no open gap on the stuck order');
    assert.ok(order.where && (order.where.service || order.where.queue), 'the API has no where');
    await checked(page, 'order-stuck', async () => {
      await openOrder();
      assert.match(await page.locator(tid('order-id')).innerText(), new RegExp(orderId));
      assert.match(await page.locator(tid('order-status')).innerText(),
        new RegExp(`\\b${order.current_status}\\b`));
      // In UTC ISO: the date and the time to the minute at least.
      const since = await page.locator(tid('order-status-since')).innerText();
      assert.ok(since.includes(order.status_since.slice(0, 16)),
        `order-status-since "${since}" does not show ${order.status_since}`);
      const last = await page.locator(tid('order-last-success')).innerText();
      assert.ok(last.includes(order.last_success.span_name) && last.includes(order.last_success.service),
        `order-last-success "${last}" lacks ${order.last_success.span_name} / ${order.last_success.service}`);
      const stopped = await page.locator(tid('order-stopped-at')).innerText();
      assert.match(stopped, /stuck/i, `order-stopped-at "${stopped}" does not say stuck`);
      for (const v of [order.where.service, order.where.queue].filter(Boolean)) {
        assert.ok(stopped.includes(v), `order-stopped-at "${stopped}" lacks ${v}`);
      }
      if (order.last_error) {
        const err = await page.locator(tid('order-last-error')).innerText();
        assert.ok(err.includes(order.last_error.error_code) || err.includes(order.last_error.error_message),
          `order-last-error "${err}" shows neither the code nor the message`);
      }
    });
    assertNoProblems(page);
  });

  test('timeline: every stage, the stuck one over its SLA', async () => {
    const slaOf = new Map(sla.stages.map((s) => [s.stage, s.sla_seconds]));
    await checked(page, 'order-timeline', async () => {
      const stages = await page.locator(`${tid('timeline')} ${tid('timeline-stage')}`)
        .evaluateAll((els) => els.map((e) => ({
          status: e.getAttribute('data-status'), over: e.getAttribute('data-over-sla'),
        })));
      assert.deepEqual(stages.map((s) => s.status), order.timeline.map((t) => t.status),
        'timeline stages differ from the order\'s timeline');
      for (const [i, t] of order.timeline.entries()) {
        const limit = slaOf.get(t.status);
        let expected;
        if (t.current) {
          // An open missing-transition gap at this stage means its deadline has passed.
          expected = gaps.some((g) => g.state === 'open' && g.stage === t.status &&
            g.kind === 'missing_transition') ? 'true' : undefined;
        } else if (limit != null && t.duration_seconds != null) {
          expected = String(t.duration_seconds > limit);
        }
        if (expected !== undefined) {
          assert.equal(stages[i].over, expected,
            `stage ${t.status}: data-over-sla=${stages[i].over}, duration ${t.duration_seconds}s, SLA ${limit}s`);
        }
      }
      const current = order.timeline.find((t) => t.current);
      assert.equal(current.status, order.current_status);
      assert.equal(stages.find((s) => s.status === current.status).over, 'true',
        `the stuck stage ${current.status} is not marked over its SLA`);
    });
  });

  test('gaps: the open gaps of the order, by kind', async () => {
    const open = gaps.filter((g) => g.state === 'open');
    assert.ok(open.length >= 1);
    await checked(page, 'order-gaps', async () => {
      const rows = await page.locator(`${tid('order-gaps')} ${tid('gap-row')}`).evaluateAll(
        (els) => els.map((e) => ({ kind: e.getAttribute('data-gap-kind'), state: e.getAttribute('data-state') })));
      const shownOpen = rows.filter((r) => r.state === 'open').map((r) => r.kind).sort();
      assert.deepEqual(shownOpen, open.map((g) => g.kind).sort(),
        'open gap rows differ from GET /api/v1/gaps?order_id=');
      assert.equal(rows.length, gaps.length, 'gap rows (open and resolved) differ in number');
    });
  });

  test('waterfall: every span by service, RabbitMQ consume joined to its publish', async () => {
    const joins = messageJoins(spans);
    assert.ok(joins.length >= 1, 'the real services\' trace has no consume span linked to a publish');
    await checked(page, 'order-waterfall', async () => {
      const rows = await page.locator(`${tid('waterfall')} ${tid('span-row')}`).evaluateAll(
        (els) => els.map((e) => ({
          id: e.getAttribute('data-span-id'),
          service: e.getAttribute('data-service'),
          kind: e.getAttribute('data-kind'),
          critical: e.getAttribute('data-critical'),
          error: e.getAttribute('data-error'),
          group: e.closest('[data-testid="service-group"]')?.getAttribute('data-service') ?? null,
        })));
      assert.deepEqual(rows.map((r) => r.id).sort(), spans.map((s) => s.spanId).sort(),
        'span rows differ from the spans of GET /api/traces/{id}');
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const s of spans) {
        const r = byId.get(s.spanId);
        assert.equal(r.service, s.service, `span ${s.name} ${s.spanId}: data-service`);
        assert.equal(r.group, s.service, `span ${s.name} ${s.spanId}: not in its service-group`);
        assert.equal(r.kind, kKindName[s.kind], `span ${s.name} ${s.spanId}: data-kind`);
        assert.equal(r.error, String(s.status?.code === 2), `span ${s.name} ${s.spanId}: data-error`);
      }

      // Each publish -> consume join is drawn, and nothing else is.
      const links = await page.locator(`${tid('waterfall')} ${tid('message-link')}`).evaluateAll(
        (els) => els.map((e) => ({ from: e.getAttribute('data-from'), to: e.getAttribute('data-to') })));
      const key = (j) => `${j.from}->${j.to}`;
      assert.deepEqual(links.map(key).sort(), joins.map(key).sort(),
        'message-link joins differ from the consumer spans\' links to producer spans');
      // The consumer's row names the publish it came from.
      const byIdSpan = new Map(spans.map((s) => [s.spanId, s]));
      for (const j of joins) {
        const text = await page.locator(`${tid('span-row', { 'data-span-id': j.to })}`).innerText();
        assert.ok(text.includes(byIdSpan.get(j.from).name),
          `consumer row ${j.to} does not name its publish ${byIdSpan.get(j.from).name}: "${text}"`);
      }

      // The critical path: from the root, the child or linked consumer finishing last.
      const critical = criticalPath(spans);
      const shownCritical = rows.filter((r) => r.critical === 'true').map((r) => r.id).sort();
      assert.deepEqual(shownCritical, [...critical].sort(),
        `critical spans differ: expected ${[...critical].map((id) => byIdSpan.get(id).name).join(' > ')}`);
    });
    assertNoProblems(page);
  });

  // The attributes of `span` (keys and string values) all show in span-detail.
  async function assertDetailShows(span) {
    const detail = page.locator(tid('span-detail'));
    await detail.waitFor();
    const text = await detail.innerText();
    assert.ok(text.includes(span.name), `span-detail lacks the span's name ${span.name}`);
    for (const a of span.attributes ?? []) {
      const v = attrValue(span.attributes, a.key);
      assert.ok(text.includes(a.key), `span-detail of ${span.name} lacks attribute ${a.key}`);
      assert.ok(text.includes(v), `span-detail of ${span.name} lacks ${a.key}'s value ${v}`);
    }
    for (const l of span.links ?? []) {
      assert.ok(text.includes(l.spanId), `span-detail of ${span.name} lacks its link to ${l.spanId}`);
    }
  }

  test('clicking a span row opens span-detail with its attributes', async () => {
    const consumer = spans.find((s) => s.kind === kSpanKind.consumer && (s.links ?? []).length);
    await checked(page, 'order-span-detail-click', async () => {
      await page.locator(tid('span-row', { 'data-span-id': consumer.spanId })).click();
      await assertDetailShows(consumer);
    });
  });

  test('keyboard: Tab to a span row, Enter opens it', async () => {
    await checked(page, 'order-span-detail-keyboard', async () => {
      await openOrder();
      assert.equal(await page.locator(tid('span-detail')).count(), 0,
        'span-detail is open before any span was chosen');
      await page.locator('body').focus();
      const row = await tabTo(page, `${tid('span-row')}`);
      assert.ok(row, 'Tab never reaches a span row');
      const id = await row.evaluate((e) => e.getAttribute('data-span-id'));
      // Focus visible: an outline or a ring on the focused row.
      const focus = await row.evaluate((e) => {
        const st = getComputedStyle(e);
        return { outline: st.outlineStyle, width: st.outlineWidth, shadow: st.boxShadow };
      });
      assert.ok((focus.outline !== 'none' && focus.width !== '0px') || focus.shadow !== 'none',
        `the focused span row shows no focus (${JSON.stringify(focus)})`);
      await page.keyboard.press('Enter');
      await assertDetailShows(spans.find((s) => s.spanId === id));
    });
    assertNoProblems(page);
  });

  test('390 px wide: no horizontal overflow outside the waterfall', async () => {
    const phone = await openPage(browser, { viewport: { width: 390, height: 844 } });
    try {
      await checked(phone, 'order-390px', async () => {
        await openOrder(phone);
        const width = await phone.evaluate(() => ({
          doc: document.documentElement.scrollWidth,
          body: document.body.scrollWidth,
        }));
        assert.ok(width.doc <= 392 && width.body <= 392,
          `the page is ${width.doc}px (body ${width.body}px) wide at 390px`);
        // The waterfall scrolls sideways inside its own box instead.
        const wf = await phone.locator(tid('waterfall')).evaluate((e) => ({
          overflowX: getComputedStyle(e).overflowX, width: e.getBoundingClientRect().width,
        }));
        assert.ok(['auto', 'scroll'].includes(wf.overflowX) && wf.width <= 390,
          `the waterfall does not scroll inside the page at 390px (${JSON.stringify(wf)})`);
      });
      assertNoProblems(phone);
    } finally {
      await phone.context().close();
    }
  });
});
