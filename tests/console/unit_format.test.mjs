// Unit tests of web/assets/format.js: durations, times, search classification, gap ordering,
// stage bars against the SLA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  nanosToMs, isoToMs, formatUtc, formatDuration, formatAgo, classifySearch, normalizeTraceId,
  statusTone, sortGapsByAge, countPerStage, stageBars, gapKindLabel,
} from '../../web/assets/format.js';

test('nanosToMs keeps microseconds of a unix nano timestamp beyond double precision', () => {
  assert.equal(nanosToMs('1765036800123456789'), 1765036800123.456);
  assert.equal(nanosToMs(0), null);
  assert.equal(nanosToMs('0'), null);
  assert.equal(nanosToMs(''), null);
  assert.equal(nanosToMs('garbage'), null);
  assert.equal(nanosToMs(null), null);
  assert.equal(nanosToMs(1765036800123456789n), 1765036800123.456);
});

test('isoToMs reads the API nanosecond times', () => {
  assert.equal(isoToMs('2026-12-06T16:04:12.500000000Z'), Date.UTC(2026, 11, 6, 16, 4, 12, 500));
  assert.equal(isoToMs('2026-12-06T16:04:12Z'), Date.UTC(2026, 11, 6, 16, 4, 12));
  assert.equal(isoToMs(null), null);
  assert.equal(isoToMs('not a time'), null);
});

test('formatUtc prints ISO UTC, a dash for nothing', () => {
  assert.equal(formatUtc(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), '2026-01-02T03:04:05.006Z');
  assert.equal(formatUtc(null), '—');
});

test('formatDuration picks the unit a person reads', () => {
  assert.equal(formatDuration(0), '0 s');
  assert.equal(formatDuration(0.00085), '850 µs');
  assert.equal(formatDuration(0.0042), '4.2 ms');
  assert.equal(formatDuration(0.25), '250 ms');
  assert.equal(formatDuration(4.24), '4.2 s');
  assert.equal(formatDuration(4), '4 s');
  assert.equal(formatDuration(42.4), '42 s');
  assert.equal(formatDuration(200), '3 min 20 s');
  assert.equal(formatDuration(180), '3 min');
  assert.equal(formatDuration(7500), '2 h 5 min');
  assert.equal(formatDuration(3 * 86400 + 4 * 3600 + 59), '3 d 4 h');
  assert.equal(formatDuration(-90), '-1 min 30 s');
  assert.equal(formatDuration(null), '—');
  assert.equal(formatDuration(NaN), '—');
});

test('formatAgo says ago for the past and in for the future', () => {
  const now = 1_000_000_000;
  assert.equal(formatAgo(now - 5 * 60_000, now), '5 min ago');
  assert.equal(formatAgo(now + 2 * 3600_000, now), 'in 2 h');
  assert.equal(formatAgo(now - 200, now), 'just now');
  assert.equal(formatAgo(now - 30_400, now), '30 s ago');
  assert.equal(formatAgo(null, now), '');
});

test('classifySearch tries order, then trace for hex, then partner', () => {
  assert.deepEqual(classifySearch('  ord-42 ').attempts, ['order', 'partner']);
  assert.equal(classifySearch('  ord-42 ').query, 'ord-42');
  assert.deepEqual(classifySearch('4bf92f3577b34da6a3ce929d0e0e4736').attempts, ['order', 'trace', 'partner']);
  assert.deepEqual(classifySearch('abc').attempts, ['order', 'trace', 'partner']);
  assert.deepEqual(classifySearch('0000').attempts, ['order', 'partner']);
  assert.deepEqual(classifySearch('4bf92f3577b34da6a3ce929d0e0e47361').attempts, ['order', 'partner']);
  assert.deepEqual(classifySearch('').attempts, []);
  assert.deepEqual(classifySearch('a\u0001b').attempts, []);
});

test('normalizeTraceId pads and lowercases', () => {
  assert.equal(normalizeTraceId('ABC'), '0'.repeat(29) + 'abc');
});

test('statusTone: stuck beats done beats error', () => {
  assert.equal(statusTone({ status: 'SUBMITTED', openGaps: 1 }), 'stuck');
  assert.equal(statusTone({ status: 'CLOSED' }), 'done');
  assert.equal(statusTone({ status: 'SUBMITTED', hasError: true }), 'error');
  assert.equal(statusTone({ status: 'SUBMITTED' }), 'active');
  assert.equal(statusTone({ status: null }), 'unknown');
  assert.equal(gapKindLabel('message_not_consumed'), 'Message not consumed');
  assert.equal(gapKindLabel('new_kind'), 'new_kind');
});

test('sortGapsByAge puts the longest stuck first', () => {
  const gaps = [
    { order_id: 'b', since: '2026-12-06T10:00:00.000000000Z' },
    { order_id: 'a', since: '2026-12-05T10:00:00.000000000Z' },
    { order_id: 'c', since: null },
    { order_id: 'a2', since: '2026-12-06T10:00:00.000000000Z' },
  ];
  assert.deepEqual(sortGapsByAge(gaps).map((g) => g.order_id), ['a', 'a2', 'b', 'c']);
});

test('countPerStage shows an incident as one large count', () => {
  const gaps = [{ stage: 'SUBMITTED' }, { stage: 'PACKAGING' }, { stage: 'SUBMITTED' }, { stage: 'SUBMITTED' }, {}];
  assert.deepEqual(countPerStage(gaps), [
    { stage: 'SUBMITTED', count: 3 },
    { stage: '', count: 1 },
    { stage: 'PACKAGING', count: 1 },
  ]);
});

test('stageBars: done stage within SLA, current stage over SLA counted to now', () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0);
  const timeline = [
    { status: 'SUBMITTED', reached_at: '2026-12-06T10:00:00Z', duration_seconds: 300, current: false },
    { status: 'PRICE_CALCULATION_STARTED', reached_at: '2026-12-06T11:00:00Z', duration_seconds: 0, current: true },
    { status: 'CLOSED', reached_at: '2026-12-06T11:00:00Z', duration_seconds: 5, current: false },
  ];
  const bars = stageBars(timeline, { SUBMITTED: 600, PRICE_CALCULATION_STARTED: 1800 }, now);
  assert.equal(bars[0].over, false);
  assert.equal(bars[0].barFraction, 0.5);
  assert.equal(bars[0].slaFraction, 1);
  assert.equal(bars[1].seconds, 3600);
  assert.equal(bars[1].over, true);
  assert.equal(bars[1].barFraction, 1);
  assert.equal(bars[1].slaFraction, 0.5);
  assert.equal(bars[2].slaSeconds, null);
  assert.equal(bars[2].over, false);
  assert.equal(bars[2].slaFraction, null);
});
