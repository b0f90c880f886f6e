// The trace waterfall's layout, as pure functions on plain data: parse Tempo/OTLP JSON into
// spans, group them by service, fold long idle stretches of time, mark the critical path, and join
// RabbitMQ producer and consumer spans by their links. No DOM here (waterfall_view.js draws), so
// node's test runner imports it (tests/console/unit_waterfall.test.mjs).

import { nanosToMs } from './format.js';

const KIND_NAMES = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

// OTLP JSON writes a kind as a number (1..5) or as "SPAN_KIND_SERVER".
export function kindName(kind) {
  if (typeof kind === 'number') return KIND_NAMES[kind] || 'internal';
  if (typeof kind === 'string') {
    const k = kind.replace(/^SPAN_KIND_/, '').toLowerCase();
    if (/^\d+$/.test(k)) return KIND_NAMES[Number(k)] || 'internal';
    return KIND_NAMES.includes(k) ? (k === 'unspecified' ? 'internal' : k) : 'internal';
  }
  return 'internal';
}

// One OTLP AnyValue as a plain JS value (ints stay strings past 2^53, arrays and maps recurse).
export function anyValue(v) {
  if (v === null || v === undefined) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : String(v.intValue);
  }
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return !!v.boolValue;
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return (v.arrayValue.values || []).map(anyValue);
  if ('kvlistValue' in v) return attributesToObject(v.kvlistValue.values);
  return null;
}

export function attributesToObject(list) {
  const out = {};
  for (const kv of list || []) out[kv.key] = anyValue(kv.value);
  return out;
}

// OTLP JSON ids are hex (as ordertrace writes them); base64 (the proto3 JSON mapping) is accepted too.
export function idToHex(id) {
  if (!id) return '';
  if (/^[0-9a-fA-F]+$/.test(id) && (id.length === 16 || id.length === 32)) return id.toLowerCase();
  try {
    const bin = atob(id);
    let hex = '';
    for (let i = 0; i < bin.length; i++) hex += bin.charCodeAt(i).toString(16).padStart(2, '0');
    return hex;
  } catch {
    return String(id).toLowerCase();
  }
}

function toBigInt(v) {
  try {
    return BigInt(v ?? 0);
  } catch {
    return 0n;
  }
}

function isErrorStatus(status) {
  if (!status) return false;
  return status.code === 2 || status.code === 'STATUS_CODE_ERROR';
}

// The spans of one or more traces (`{batches:[ResourceSpans]}` from /api/traces/{id}, or the v2
// `{trace:{resourceSpans}}`), flattened. Times are ms since the epoch; a span whose end is before
// its start ends at its start. Duplicate span ids (the same trace fetched twice) are kept once.
export function parseTraces(bodies) {
  const spans = [];
  const seen = new Set();
  for (const body of [].concat(bodies || [])) {
    const batches = body?.batches || body?.trace?.resourceSpans || body?.resourceSpans || [];
    for (const rs of batches) {
      const resource = attributesToObject(rs.resource?.attributes);
      const service = String(resource['service.name'] ?? 'unknown service');
      for (const ss of rs.scopeSpans || rs.instrumentationLibrarySpans || []) {
        for (const s of ss.spans || []) {
          const spanId = idToHex(s.spanId);
          const traceId = idToHex(s.traceId);
          const key = traceId + '/' + spanId;
          if (seen.has(key)) continue;
          seen.add(key);
          const start = nanosToMs(s.startTimeUnixNano) ?? 0;
          const end = Math.max(start, nanosToMs(s.endTimeUnixNano) ?? start);
          const attributes = attributesToObject(s.attributes);
          const status = s.status || {};
          spans.push({
            traceId,
            spanId,
            parentSpanId: idToHex(s.parentSpanId),
            name: s.name || '(unnamed)',
            kind: kindName(s.kind),
            service,
            resource,
            scope: ss.scope?.name || '',
            start,
            end,
            attributes,
            events: (s.events || []).map((e) => ({
              name: e.name,
              time: nanosToMs(e.timeUnixNano),
              attributes: attributesToObject(e.attributes),
            })),
            links: (s.links || []).map((l) => ({
              traceId: idToHex(l.traceId),
              spanId: idToHex(l.spanId),
              attributes: attributesToObject(l.attributes),
            })),
            status: { code: status.code ?? 0, message: status.message || '' },
            // An error is what the span's status says; an error_code attribute alone is shown in
            // the detail, not counted (the order record reads the same status).
            error: isErrorStatus(status),
            endNs: toBigInt(s.endTimeUnixNano),
          });
        }
      }
    }
  }
  return spans;
}

// Spans grouped by service: groups in the order of their first span, spans in a group by start
// time (then by tree depth, so a parent stays above a child that starts with it).
export function groupByService(spans) {
  const depth = depthOf(spans);
  const groups = new Map();
  const sorted = [...spans].sort(
    (a, b) => a.start - b.start || (depth.get(a.spanId) ?? 0) - (depth.get(b.spanId) ?? 0) || a.spanId.localeCompare(b.spanId),
  );
  for (const s of sorted) {
    if (!groups.has(s.service)) groups.set(s.service, []);
    groups.get(s.service).push(s);
  }
  return [...groups.entries()].map(([service, list]) => ({ service, spans: list }));
}

function depthOf(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const depth = new Map();
  const visit = (s, guard) => {
    if (depth.has(s.spanId)) return depth.get(s.spanId);
    const parent = byId.get(s.parentSpanId);
    const d = parent && !guard.has(parent.spanId) ? visit(parent, guard.add(s.spanId)) + 1 : 0;
    depth.set(s.spanId, d);
    return d;
  };
  for (const s of spans) visit(s, new Set());
  return depth;
}

// RabbitMQ hops: a CONSUMER span that links to (or is the child of) a PRODUCER span in the set.
// Each: {from: producer span id, to: consumer span id, queue, waitedMs (consume start minus
// publish start), producerName}. A link to a span not fetched, or to a span of another kind, is
// not a hop.
export function messageLinks(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const out = [];
  const seen = new Set();
  for (const s of spans) {
    if (s.kind !== 'consumer') continue;
    const targets = [...s.links.map((l) => l.spanId), s.parentSpanId].filter(Boolean);
    for (const t of targets) {
      const producer = byId.get(t);
      const key = t + '>' + s.spanId;
      if (!producer || producer.kind !== 'producer' || producer === s || seen.has(key)) continue;
      seen.add(key);
      out.push({
        from: producer.spanId,
        to: s.spanId,
        queue: queueOf(s) ?? queueOf(producer),
        waitedMs: Math.max(0, s.start - producer.start),
        producerName: producer.name,
      });
    }
  }
  return out;
}

function queueOf(span) {
  const a = span.attributes;
  const q = a.queue ?? a['messaging.rabbitmq.destination.routing_key'] ?? a['messaging.destination.name'];
  return q === undefined || q === null || q === '' ? null : String(q);
}

// The critical path, as the console's contract defines it: from each root (a span whose parent
// is not in the set), repeatedly the child or linked consumer that finishes last, until a span
// with none (or one already on the path). A consumer counts as the next step of both its parent
// and the producers it links to. Returns the set of span ids on it.
export function criticalPath(spans) {
  const ids = new Set(spans.map((s) => s.spanId));
  const next = new Map();
  for (const s of spans) {
    const from = new Set();
    if (s.parentSpanId && ids.has(s.parentSpanId)) from.add(s.parentSpanId);
    if (s.kind === 'consumer') for (const l of s.links) if (ids.has(l.spanId)) from.add(l.spanId);
    for (const f of from) {
      if (!next.has(f)) next.set(f, []);
      next.get(f).push(s);
    }
  }
  const endOf = (s) => (typeof s.endNs === 'bigint' ? s.endNs : BigInt(Math.round(s.end * 1000)) * 1000n);
  const path = new Set();
  for (const root of spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId))) {
    let at = root;
    while (at && !path.has(at.spanId)) {
      path.add(at.spanId);
      at = (next.get(at.spanId) || []).reduce((best, s) => (!best || endOf(s) > endOf(best) ? s : best), null);
    }
  }
  return path;
}

// Busy time: the spans' [start, end] intervals merged, sorted.
export function mergeIntervals(intervals) {
  const sorted = intervals.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b)).map(([a, b]) => [a, Math.max(a, b)]).sort((x, y) => x[0] - y[0]);
  const out = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

// A time axis on which idle stretches (no span running) longer than a threshold are folded to a
// small fixed width, so spans minutes or days apart stay readable. The threshold is
// max(minFoldMs, foldShare x the busy time); a folded stretch takes foldWidth of the axis, and
// each busy stretch between folds at least minClusterShare.
// Returns {start, end, folds:[{fromMs, toMs, durationMs, x0, x1}], toX(ms) -> 0..1, segments}.
export function foldTime(intervals, { minFoldMs = 1000, foldShare = 0.1, foldWidth = 0.04, minClusterShare = 0.15 } = {}) {
  const busy = mergeIntervals(intervals);
  if (!busy.length) return { start: 0, end: 0, folds: [], segments: [], toX: () => 0 };
  const start = busy[0][0];
  const end = busy[busy.length - 1][1];
  const busyMs = busy.reduce((sum, [a, b]) => sum + (b - a), 0);
  const threshold = Math.max(minFoldMs, foldShare * busyMs);

  // Pieces of the axis: real stretches (kept to scale) and folded ones.
  const pieces = [];
  let cursor = start;
  for (let i = 0; i < busy.length; i++) {
    const [a, b] = busy[i];
    if (a > cursor) {
      const gap = a - cursor;
      pieces.push({ from: cursor, to: a, folded: gap > threshold });
    }
    pieces.push({ from: Math.max(a, cursor), to: b, folded: false });
    cursor = Math.max(cursor, b);
  }
  // Busy clusters (the pieces between folds) keep their time to scale inside, but each gets at
  // least minClusterShare of the axis, so a second of work after a two-hour fold is not a hair.
  const foldCount = pieces.filter((p) => p.folded).length;
  const foldTotal = Math.min(0.5, foldCount * foldWidth);
  const realWidth = 1 - foldTotal;
  const each = foldCount ? foldTotal / foldCount : 0;
  const clusters = [];
  for (const p of pieces) {
    if (p.folded) continue;
    const last = clusters[clusters.length - 1];
    const prev = pieces[pieces.indexOf(p) - 1];
    if (last && prev && !prev.folded) last.ms += p.to - p.from, last.pieces.push(p);
    else clusters.push({ ms: p.to - p.from, pieces: [p] });
  }
  const realMs = clusters.reduce((sum, c) => sum + c.ms, 0);
  const minShare = clusters.length > 1 ? Math.min(minClusterShare, 1 / clusters.length) : 0;
  const share = clusters.map((c) => (realMs > 0 ? c.ms / realMs : 1 / clusters.length));
  const small = share.map((v) => v < minShare);
  const smallCount = small.filter(Boolean).length;
  const bigShare = share.reduce((sum, v, i) => sum + (small[i] ? 0 : v), 0);
  clusters.forEach((c, i) => {
    const fraction = small[i] ? minShare : bigShare > 0 ? (share[i] / bigShare) * (1 - smallCount * minShare) : 0;
    c.width = fraction * realWidth;
  });
  const widthOf = new Map();
  for (const c of clusters) {
    for (const p of c.pieces) {
      widthOf.set(p, c.ms > 0 ? ((p.to - p.from) / c.ms) * c.width : c.width / c.pieces.length);
    }
  }
  let x = 0;
  const segments = pieces.map((p) => {
    const w = p.folded ? each : widthOf.get(p);
    const seg = { fromMs: p.from, toMs: p.to, folded: p.folded, x0: x, x1: x + w };
    x += w;
    return seg;
  });
  if (segments.length) segments[segments.length - 1].x1 = 1;
  const toX = (ms) => {
    if (ms <= start) return 0;
    if (ms >= end) return 1;
    for (const s of segments) {
      if (ms <= s.toMs) {
        const span = s.toMs - s.fromMs;
        return span > 0 ? s.x0 + ((ms - s.fromMs) / span) * (s.x1 - s.x0) : s.x0;
      }
    }
    return 1;
  };
  const folds = segments
    .filter((s) => s.folded)
    .map((s) => ({ fromMs: s.fromMs, toMs: s.toMs, durationMs: s.toMs - s.fromMs, x0: s.x0, x1: s.x1 }));
  return { start, end, folds, segments, toX, thresholdMs: threshold };
}

export const ROW_HEIGHT = 40;
export const GROUP_HEIGHT = 30;

// Everything the view needs to draw: groups with rows at fixed y (px), bars as fractions of the
// time axis, folds, message links with both rows' y, the critical path, and axis ticks.
export function layoutWaterfall(spans, options = {}) {
  const groups = groupByService(spans);
  const axis = foldTime(spans.map((s) => [s.start, s.end]), options);
  const links = messageLinks(spans);
  const critical = criticalPath(spans);
  const incoming = new Map(links.map((l) => [l.to, l]));
  const rows = [];
  const rowOf = new Map();
  let y = 0;
  const outGroups = groups.map((g) => {
    const top = y;
    y += GROUP_HEIGHT;
    const gRows = g.spans.map((s) => {
      const x0 = axis.toX(s.start);
      const x1 = Math.max(axis.toX(s.end), x0);
      const row = { span: s, y, x0, x1, critical: critical.has(s.spanId), incoming: incoming.get(s.spanId) || null };
      rows.push(row);
      rowOf.set(s.spanId, row);
      y += ROW_HEIGHT;
      return row;
    });
    return { service: g.service, y: top, rows: gRows };
  });
  const joined = links
    .filter((l) => rowOf.has(l.from) && rowOf.has(l.to))
    .map((l) => {
      const a = rowOf.get(l.from);
      const b = rowOf.get(l.to);
      return { ...l, x0: a.x1, y0: a.y + ROW_HEIGHT / 2, x1: b.x0, y1: b.y + ROW_HEIGHT / 2 };
    });
  return { groups: outGroups, rows, links: joined, critical, axis, height: y, ticks: axisTicks(axis) };
}

// A handful of labelled instants along the folded axis: its start, end, and both ends of each fold.
export function axisTicks(axis, maxTicks = 6) {
  if (!axis.segments.length) return [];
  const ticks = [{ ms: axis.start, x: 0 }];
  for (const s of axis.segments) {
    if (s.folded) ticks.push({ ms: s.fromMs, x: s.x0 }, { ms: s.toMs, x: s.x1 });
  }
  ticks.push({ ms: axis.end, x: 1 });
  // Drop ticks too close to the previous one.
  const kept = [];
  for (const t of ticks) {
    if (!kept.length || t.x - kept[kept.length - 1].x >= 1 / (maxTicks * 2)) kept.push(t);
  }
  return kept;
}
