// Scales and chart models for charts.js, as pure functions (no DOM), so node's test runner
// imports them (tests/console/unit_charts.test.mjs).

import { isoToMs } from './format.js';

// A linear scale from [d0, d1] to [r0, r1]; a zero-width domain maps everything to r0.
export function linearScale([d0, d1], [r0, r1]) {
  const span = d1 - d0;
  const f = (v) => (span === 0 ? r0 : r0 + ((v - d0) / span) * (r1 - r0));
  f.domain = [d0, d1];
  f.range = [r0, r1];
  return f;
}

// "Nice" round tick values covering [lo, hi]: steps of 1, 2 or 5 x 10^n, about `count` of them.
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) hi = lo === 0 ? 1 : lo * 2;
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const first = Math.floor(lo / step) * step;
  const ticks = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

const DURATION_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

// Ticks for a duration axis in seconds: below a second as niceTicks does; above, steps people
// read on a clock (15 s, 5 min, 1 h, 6 h, 1 d), about `count` of them, covering [0, hi].
export function durationTicks(hi, count = 5) {
  if (!Number.isFinite(hi) || hi <= 0) return [0];
  if (hi / count < 1) return niceTicks(0, hi, count);
  const raw = hi / count;
  const step = DURATION_STEPS.find((s) => s >= raw) ?? Math.ceil(raw / 604800) * 604800;
  const ticks = [];
  for (let v = 0; v < hi + step; v += step) {
    ticks.push(v);
    if (v >= hi) break;
  }
  return ticks;
}

// Evenly spaced bands for categories: {x(category) -> left edge, bandwidth}.
export function bandScale(categories, [r0, r1], padding = 0.2) {
  const n = Math.max(1, categories.length);
  const step = (r1 - r0) / n;
  const bandwidth = step * (1 - padding);
  const index = new Map(categories.map((c, i) => [c, i]));
  const f = (c) => r0 + (index.get(c) ?? 0) * step + (step - bandwidth) / 2;
  f.bandwidth = bandwidth;
  f.step = step;
  return f;
}

// One bar chart's data from a histogram of /api/v1/charts: a category per series (named by
// `labelOf(labels)`), p50 and p95, the SLA (`slaOf(labels)`, seconds or null), and its exemplars.
// Categories with no observations are left out; sorted by `sortKey` when given, else by p95 desc.
export function barSeries(histogram, { labelOf, slaOf = () => null, order = null } = {}) {
  if (!histogram) return [];
  const label = labelOf || ((labels) => Object.values(labels || {}).join(' / ') || '(all)');
  const rows = (histogram.series || [])
    .filter((s) => (s.count ?? 0) > 0)
    .map((s) => ({
      category: label(s.labels || {}),
      labels: s.labels || {},
      count: s.count ?? 0,
      p50: numOrNull(s.p50),
      p95: numOrNull(s.p95),
      sla: numOrNull(slaOf(s.labels || {})),
      exemplars: (s.exemplars || [])
        .filter((e) => e && e.trace_id && Number.isFinite(Number(e.value)))
        .map((e) => ({ traceId: e.trace_id, spanId: e.span_id || null, value: Number(e.value), at: e.at || null })),
    }));
  if (order) {
    const rank = new Map(order.map((c, i) => [c, i]));
    rows.sort((a, b) => (rank.get(a.category) ?? 1e9) - (rank.get(b.category) ?? 1e9) || a.category.localeCompare(b.category));
  } else {
    rows.sort((a, b) => (b.p95 ?? 0) - (a.p95 ?? 0));
  }
  return rows;
}

function numOrNull(v) {
  const n = Number(v);
  return v === null || v === undefined || !Number.isFinite(n) ? null : n;
}

// The largest value a bar chart must show: p95, SLA and exemplars of every row.
export function barMax(rows) {
  let max = 0;
  for (const r of rows) {
    for (const v of [r.p50, r.p95, r.sla, ...r.exemplars.map((e) => e.value)]) if (v !== null && v > max) max = v;
  }
  return max;
}

// Lines over time from /api/v1/charts `over_time.points`: [{key, points:[{t, v}]}] for the keys.
export function timeSeries(overTime, keys) {
  const points = (overTime?.points || []).map((p) => ({ ...p, t: isoToMs(p.at) })).filter((p) => p.t !== null);
  points.sort((a, b) => a.t - b.t);
  return keys.map((key) => ({ key, points: points.map((p) => ({ t: p.t, v: numOrNull(p[key]) ?? 0 })) }));
}

// An SVG path ("M x y L x y ...") through points already in pixels.
export function linePath(points) {
  return points.map((p, i) => `${i ? 'L' : 'M'}${round(p.x)} ${round(p.y)}`).join(' ');
}

function round(v) {
  return Math.round(v * 10) / 10;
}

// `text` cut to fit `maxPx` at about `charPx` pixels per character (SVG text does not wrap),
// ending in an ellipsis when cut; callers put the whole text in a <title> for the cut ones.
export function fitLabel(text, maxPx, charPx = 8.4) {
  const max = Math.max(4, Math.floor(maxPx / charPx));
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
