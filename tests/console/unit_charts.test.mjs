// Unit tests of web/assets/scales.js: scales, ticks, and the chart models built from /api/v1/charts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearScale, niceTicks, bandScale, barSeries, barMax, timeSeries, linePath } from '../../web/assets/scales.js';

test('linearScale maps the domain onto the range, inverted ranges too', () => {
  const y = linearScale([0, 10], [200, 0]);
  assert.equal(y(0), 200);
  assert.equal(y(5), 100);
  assert.equal(y(10), 0);
  assert.equal(linearScale([3, 3], [0, 100])(3), 0);
});

test('niceTicks gives round steps that cover the range', () => {
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0, 0.37, 4), [0, 0.1, 0.2, 0.3, 0.4]);
  assert.deepEqual(niceTicks(0, 1700, 4), [0, 500, 1000, 1500, 2000]);
  assert.deepEqual(niceTicks(0, 0, 4), [0, 0.5, 1]);
  assert.deepEqual(niceTicks(NaN, 1), []);
});

test('bandScale spaces categories evenly with padding', () => {
  const x = bandScale(['a', 'b'], [0, 100], 0.2);
  assert.equal(x.bandwidth, 40);
  assert.equal(x('a'), 5);
  assert.equal(x('b'), 55);
});

const histogram = {
  name: 'stage_duration_seconds',
  label_names: ['from_status', 'to_status'],
  series: [
    { labels: { from_status: 'SUBMITTED', to_status: 'PRICE_CALCULATION_STARTED' }, count: 10, sum: 30, p50: 2, p95: 9,
      exemplars: [{ trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), value: 8.5, at: '2026-12-06T10:00:00Z' }, { trace_id: null, value: 1 }] },
    { labels: { from_status: 'INITIATED', to_status: 'FILE_UPLOADED' }, count: 4, sum: 4, p50: 1, p95: null, exemplars: [] },
    { labels: { from_status: 'PACKAGING', to_status: 'SHIPPED' }, count: 0, p50: null, p95: null },
  ],
};

test('barSeries keeps observed series, their SLA and valid exemplars, in the given order', () => {
  const rows = barSeries(histogram, {
    labelOf: (l) => l.from_status,
    slaOf: (l) => ({ SUBMITTED: 600 })[l.from_status] ?? null,
    order: ['INITIATED', 'SUBMITTED'],
  });
  assert.deepEqual(rows.map((r) => r.category), ['INITIATED', 'SUBMITTED']);
  assert.equal(rows[1].sla, 600);
  assert.equal(rows[0].sla, null);
  assert.equal(rows[0].p95, null);
  assert.equal(rows[1].exemplars.length, 1);
  assert.equal(rows[1].exemplars[0].traceId, 'ab'.repeat(16));
  assert.equal(barMax(rows), 600);
  assert.deepEqual(barSeries(null), []);
  assert.deepEqual(barSeries(histogram).map((r) => r.p95), [9, null]);
});

test('timeSeries sorts points by time and reads each key, missing as 0', () => {
  const lines = timeSeries({ points: [
    { at: '2026-12-06T10:01:00Z', gaps_detected: 2, open_gaps: 5 },
    { at: '2026-12-06T10:00:00Z', gaps_detected: 1 },
    { at: null, gaps_detected: 9 },
  ] }, ['gaps_detected', 'open_gaps']);
  assert.deepEqual(lines[0].points.map((p) => p.v), [1, 2]);
  assert.deepEqual(lines[1].points.map((p) => p.v), [0, 5]);
  assert.ok(lines[0].points[0].t < lines[0].points[1].t);
  assert.deepEqual(timeSeries(undefined, ['x']), [{ key: 'x', points: [] }]);
});

test('linePath writes an SVG path', () => {
  assert.equal(linePath([{ x: 0, y: 1 }, { x: 2.25, y: 3 }]), 'M0 1 L2.3 3');
});

test('durationTicks steps on clock units above a second', async () => {
  const { durationTicks } = await import('../../web/assets/scales.js');
  assert.deepEqual(durationTicks(1800, 4), [0, 600, 1200, 1800]);
  assert.deepEqual(durationTicks(1700, 5), [0, 600, 1200, 1800]);
  assert.deepEqual(durationTicks(2.2, 4), [0, 1, 2, 3]);
  assert.deepEqual(durationTicks(0.004, 4), [0, 0.001, 0.002, 0.003, 0.004]);
  assert.deepEqual(durationTicks(0), [0]);
  assert.deepEqual(durationTicks(3 * 86400, 3), [0, 86400, 172800, 259200]);
});

test('fitLabel cuts a long label to its column with an ellipsis and keeps a short one', async () => {
  const { fitLabel } = await import('../../web/assets/scales.js');
  assert.equal(fitLabel('PACKAGING → SHIPPED', 400), 'PACKAGING → SHIPPED');
  const cut = fitLabel('MANUFACTURING_STARTED → MANUFACTURING_COMPLETED', 384);
  assert.ok(cut.endsWith('…'), cut);
  assert.ok(cut.length * 8.4 <= 384, `${cut} is wider than its column`);
  assert.equal(fitLabel('abcdefgh', 10), 'abc…'); // never shorter than four characters
});
