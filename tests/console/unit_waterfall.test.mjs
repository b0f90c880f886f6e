// Unit tests of web/assets/waterfall.js: parsing Tempo/OTLP JSON, grouping by service, joining
// RabbitMQ publish and consume by their link, the critical path, and folding idle time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseTraces, kindName, anyValue, idToHex, groupByService, messageLinks, criticalPath,
  mergeIntervals, foldTime, layoutWaterfall, ROW_HEIGHT, GROUP_HEIGHT,
} from '../../web/assets/waterfall.js';

const T = 'a1'.repeat(16);
const BASE = 1765036800000n * 1000000n; // 2025-12-06T16:00:00Z in unix nanoseconds
const ms = (n) => String(BASE + BigInt(n) * 1000000n);
const sid = (n) => n.toString(16).padStart(16, '0');

function span(id, name, kind, startMs, endMs, extra = {}) {
  return {
    traceId: T, spanId: sid(id), parentSpanId: extra.parent ? sid(extra.parent) : '',
    name, kind, startTimeUnixNano: ms(startMs), endTimeUnixNano: ms(endMs),
    attributes: Object.entries(extra.attrs || {}).map(([key, v]) => ({
      key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v },
    })),
    links: (extra.links || []).map((l) => ({ traceId: T, spanId: sid(l) })),
    events: extra.events || [],
    status: extra.error ? { code: 2, message: 'boom' } : {},
  };
}

function batch(service, spans) {
  return { resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 'x' }, spans }] };
}

// An order: shop creates it (root 1), publishes the status event (3); MES consumes it (4, child of
// the root, linked to 3) 2 s later, calculates the price for 5 min and publishes (6); CRM consumes
// (7) a day later: a long idle stretch.
const DAY = 86_400_000;
function orderTrace() {
  return {
    batches: [
      batch('shop-api', [
        span(1, 'order.root', 1, 0, 10, { attrs: { order_id: 'ord-1' } }),
        span(2, 'shop.submit', 2, 10, 60, { parent: 1 }),
        span(3, 'mq.publish.status', 4, 50, 55, { parent: 2, attrs: { queue: 'status' } }),
      ]),
      batch('mes-api', [
        span(4, 'mq.consume.status', 5, 2055, 2060, { parent: 1, links: [3], attrs: { queue: 'status' } }),
        span(5, 'mes.price.calc', 1, 2060, 302060, { parent: 4 }),
        span(6, 'mq.publish.price', 4, 302060, 302070, { parent: 5, attrs: { queue: 'price' } }),
      ]),
      batch('crm-api', [
        span(7, 'mq.consume.price', 5, DAY + 302070, DAY + 302080, { parent: 1, links: [6], attrs: { queue: 'price' }, error: true }),
        span(8, 'crm.approve.manufacturing', 2, DAY + 302080, DAY + 302500, { parent: 7 }),
      ]),
    ],
  };
}

test('OTLP JSON values, kinds and ids', () => {
  assert.equal(kindName(5), 'consumer');
  assert.equal(kindName('SPAN_KIND_PRODUCER'), 'producer');
  assert.equal(kindName(0), 'unspecified' === kindName(0) ? 'unspecified' : kindName(0));
  assert.equal(kindName('nonsense'), 'internal');
  assert.equal(anyValue({ intValue: '42' }), 42);
  assert.equal(anyValue({ intValue: '9007199254740993' }), '9007199254740993');
  assert.equal(anyValue({ boolValue: true }), true);
  assert.deepEqual(anyValue({ arrayValue: { values: [{ stringValue: 'a' }, { doubleValue: 1.5 }] } }), ['a', 1.5]);
  assert.equal(idToHex('0123456789ABCDEF'), '0123456789abcdef');
  assert.equal(idToHex('AQIDBAUGBwg='), '0102030405060708');
});

test('parseTraces flattens batches, keeps service, times in ms, errors, and drops duplicates', () => {
  const spans = parseTraces([orderTrace(), orderTrace()]);
  assert.equal(spans.length, 8);
  const consume = spans.find((s) => s.name === 'mq.consume.price');
  assert.equal(consume.service, 'crm-api');
  assert.equal(consume.kind, 'consumer');
  assert.equal(consume.error, true);
  assert.equal(typeof consume.endNs, 'bigint');
  assert.equal(consume.start, 1765036800000 + DAY + 302070);
  assert.equal(consume.attributes.queue, 'price');
  assert.equal(consume.links[0].spanId, sid(6));
  assert.equal(spans.find((s) => s.name === 'order.root').error, false);
});

test('groupByService: groups by first span, spans by start', () => {
  const groups = groupByService(parseTraces(orderTrace()));
  assert.deepEqual(groups.map((g) => g.service), ['shop-api', 'mes-api', 'crm-api']);
  assert.deepEqual(groups[0].spans.map((s) => s.name), ['order.root', 'shop.submit', 'mq.publish.status']);
});

test('messageLinks joins each consume to its publish by the link, with queue and wait', () => {
  const links = messageLinks(parseTraces(orderTrace()));
  assert.deepEqual(links.map((l) => [l.from, l.to, l.queue]), [[sid(3), sid(4), 'status'], [sid(6), sid(7), 'price']]);
  assert.equal(links[0].waitedMs, 2005);
  assert.equal(links[0].producerName, 'mq.publish.status');
});

test('messageLinks joins a consumer whose parent is the producer; only consumers, only to producers', () => {
  const spans = parseTraces({ batches: [batch('a', [
    span(1, 'publish', 4, 0, 1),
    span(2, 'consume', 5, 5, 6, { parent: 1 }),
    span(3, 'consume', 5, 5, 6, { links: [99] }),
    span(4, 'server linking a publish', 2, 5, 6, { links: [1] }),
    span(5, 'consume linking a server span', 5, 7, 8, { links: [4] }),
  ])] });
  assert.deepEqual(messageLinks(spans).map((l) => [l.from, l.to]), [[sid(1), sid(2)]]);
});

test('criticalPath: from the root, the child or linked consumer finishing last, repeatedly', () => {
  // The consumes are children of the root: the last one (a day later) is the root's last child.
  const path = criticalPath(parseTraces(orderTrace()));
  assert.deepEqual([...path], [1, 7, 8].map(sid));
  // Without the parent, a consume continues its publish's chain through the link.
  const t = orderTrace();
  for (const b of t.batches) for (const s of b.scopeSpans[0].spans) if (s.name.startsWith('mq.consume')) s.parentSpanId = '';
  const linked = criticalPath(parseTraces(t));
  assert.ok(linked.has(sid(7)) && linked.has(sid(8)) && linked.has(sid(6)) && linked.has(sid(5)), [...linked].join(','));
});

test('criticalPath unites the paths of every root and compares ends in nanoseconds', () => {
  const spans = parseTraces({ batches: [batch('a', [
    span(1, 'root a', 2, 0, 10),
    span(2, 'child a', 1, 1, 5, { parent: 1 }),
    span(3, 'root b', 2, 20, 30),
  ])] });
  assert.deepEqual([...criticalPath(spans)].sort(), [sid(1), sid(2), sid(3)]);
  const close = parseTraces({ batches: [batch('a', [
    span(1, 'root', 2, 0, 10),
    { ...span(2, 'ends 1 ns earlier', 1, 1, 5, { parent: 1 }), endTimeUnixNano: String(BASE + 5_000_000n) },
    { ...span(3, 'ends 1 ns later', 1, 1, 5, { parent: 1 }), endTimeUnixNano: String(BASE + 5_000_001n) },
  ])] });
  assert.deepEqual([...criticalPath(close)], [sid(1), sid(3)]);
});

test('criticalPath picks the branch finishing last and survives cycles', () => {
  const spans = parseTraces({ batches: [batch('a', [
    span(1, 'root', 2, 0, 100),
    span(2, 'fast', 1, 10, 20, { parent: 1 }),
    span(3, 'slow', 1, 5, 90, { parent: 1 }),
    span(4, 'slow.child', 1, 50, 95, { parent: 3 }),
  ])] });
  assert.deepEqual([...criticalPath(spans)], [sid(1), sid(3), sid(4)]);
  const cyclic = parseTraces({ batches: [batch('a', [span(1, 'x', 1, 0, 1, { parent: 2 }), span(2, 'y', 1, 0, 2, { parent: 1 })])] });
  assert.equal(criticalPath(cyclic).size, 0); // no root: nothing to start from, and no endless walk
  assert.equal(criticalPath([]).size, 0);
});

test('mergeIntervals merges overlaps and touching intervals', () => {
  assert.deepEqual(mergeIntervals([[5, 6], [0, 2], [1, 3], [3, 4]]), [[0, 4], [5, 6]]);
});

test('foldTime folds long idle stretches to a small width and keeps busy time to scale', () => {
  const axis = foldTime([[0, 100], [100, 200], [10_000, 10_100], [10_150, 10_200]], { minFoldMs: 1000, foldWidth: 0.05 });
  assert.equal(axis.folds.length, 1);
  assert.equal(axis.folds[0].durationMs, 9800);
  assert.ok(Math.abs(axis.folds[0].x1 - axis.folds[0].x0 - 0.05) < 1e-9);
  assert.equal(axis.toX(0), 0);
  assert.equal(axis.toX(10_200), 1);
  // The 50 ms idle stretch (below the threshold) is kept to scale.
  const busyShare = 0.95 / 400; // 350 ms busy + the 50 ms stretch kept
  assert.ok(Math.abs(axis.toX(200) - 200 * busyShare) < 1e-9);
  assert.ok(Math.abs(axis.toX(10_000) - (200 * busyShare + 0.05)) < 1e-9);
  assert.ok(axis.toX(10_100) < axis.toX(10_150));
  // Monotonic everywhere.
  let last = -1;
  for (let t = 0; t <= 10_200; t += 50) {
    const x = axis.toX(t);
    assert.ok(x >= last);
    last = x;
  }
});

test('foldTime without idle stretches is a plain linear axis', () => {
  const axis = foldTime([[0, 1000], [500, 2000]]);
  assert.equal(axis.folds.length, 0);
  assert.equal(axis.toX(1000), 0.5);
  assert.deepEqual(foldTime([]).folds, []);
});

test('layoutWaterfall: spans a day apart stay readable, rows at fixed heights, links between rows', () => {
  const layout = layoutWaterfall(parseTraces(orderTrace()));
  assert.equal(layout.groups.length, 3);
  assert.equal(layout.rows.length, 8);
  assert.equal(layout.height, 3 * GROUP_HEIGHT + 8 * ROW_HEIGHT);
  assert.ok(layout.axis.folds.some((f) => f.durationMs > 86_000_000));
  const calc = layout.rows.find((r) => r.span.name === 'mes.price.calc');
  assert.ok(calc.x1 - calc.x0 > 0.3, `price calc bar is ${calc.x1 - calc.x0} of the axis`);
  const approve = layout.rows.find((r) => r.span.name === 'crm.approve.manufacturing');
  assert.ok(approve.x1 - approve.x0 > 0.0005);
  assert.equal(layout.links.length, 2);
  const l = layout.links[1];
  assert.equal(l.y1, layout.rows.find((r) => r.span.name === 'mq.consume.price').y + ROW_HEIGHT / 2);
  assert.ok(l.x1 >= l.x0);
  const consumeRow = layout.rows.find((r) => r.span.name === 'mq.consume.price');
  assert.equal(consumeRow.incoming.queue, 'price');
  assert.equal(consumeRow.critical, true);
  assert.ok(layout.ticks.length >= 2);
});

test('foldTime gives a short burst after a long fold a readable share of the axis', () => {
  // 10 minutes of work, 2 hours idle, then 1 second of work.
  const axis = foldTime([[0, 600_000], [7_800_000, 7_801_000]], { minClusterShare: 0.15, foldWidth: 0.04 });
  assert.equal(axis.folds.length, 1);
  const burst = axis.toX(7_801_000) - axis.toX(7_800_000);
  assert.ok(burst >= 0.14, `the burst takes ${burst} of the axis`);
  assert.ok(axis.toX(600_000) > 0.75);
  assert.equal(axis.toX(7_801_000), 1);
});
