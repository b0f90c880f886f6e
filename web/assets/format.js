// Pure formatting and classification helpers shared by the pages. No DOM access here, so node's
// test runner imports this module as it is (tests/console/unit_format.test.mjs).

const NANOS_PER_MS = 1000000n;

// Milliseconds since the epoch (fraction kept to the microsecond) from OTLP's unix nanoseconds,
// given as a decimal string, a number or a bigint. Unix nanoseconds exceed a double's exact range,
// so the division happens in bigint. Returns null for missing, zero or malformed input.
export function nanosToMs(nanos) {
  if (nanos === null || nanos === undefined || nanos === '') return null;
  let n;
  try {
    n = typeof nanos === 'bigint' ? nanos : BigInt(typeof nanos === 'number' ? Math.trunc(nanos) : String(nanos));
  } catch {
    return null;
  }
  if (n <= 0n) return null;
  const whole = n / NANOS_PER_MS;
  const micros = (n % NANOS_PER_MS) / 1000n;
  return Number(whole) + Number(micros) / 1000;
}

// Milliseconds since the epoch from an RFC 3339 time as the API writes it (nanosecond fraction).
export function isoToMs(iso) {
  if (!iso) return null;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (!m) {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : t;
  }
  const base = Date.parse(m[1] + 'Z');
  const frac = m[2] ? Number('0.' + m[2]) * 1000 : 0;
  return base + frac;
}

// "2026-12-06T16:04:12.345Z": UTC, to the millisecond.
export function formatUtc(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return new Date(Math.floor(ms)).toISOString();
}

// A duration in seconds as people read it: "850 µs", "12 ms", "4.2 s", "3 min 20 s", "2 h 5 min",
// "3 d 4 h". Negative durations keep their sign; null gives "—".
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 0) return '-' + formatDuration(-seconds);
  if (seconds === 0) return '0 s';
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)} µs`;
  if (seconds < 1) {
    const ms = seconds * 1000;
    return `${ms < 10 ? trim(ms.toFixed(1)) : Math.round(ms)} ms`;
  }
  if (seconds < 60) return `${seconds < 10 ? trim(seconds.toFixed(1)) : Math.round(seconds)} s`;
  const total = Math.round(seconds);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  return s > 0 ? `${m} min ${s} s` : `${m} min`;
}

function trim(text) {
  return text.replace(/\.0$/, '');
}

// "5 min ago", "in 2 h" (a time ahead of now, e.g. a deadline), "just now".
export function formatAgo(ms, nowMs) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  const diff = (nowMs - ms) / 1000;
  if (Math.abs(diff) < 1) return 'just now';
  const text = formatDuration(Math.abs(diff) < 60 ? Math.round(Math.abs(diff)) : Math.abs(diff));
  return diff > 0 ? `${text} ago` : `in ${text}`;
}

// What a search box entry may be, in the order to try it: an order id always first (order ids
// are free text), then a trace id when it is 1 to 32 hex digits (not all zero), then a partner id.
// Empty input gives no attempt. Ids cannot hold control characters (the API refuses them).
export function classifySearch(input) {
  const q = String(input ?? '').trim();
  if (q === '' || /[\u0000-\u001f\u007f]/.test(q)) return { query: q, attempts: [] };
  const attempts = ['order'];
  if (/^[0-9a-fA-F]{1,32}$/.test(q) && !/^0+$/.test(q)) attempts.push('trace');
  attempts.push('partner');
  return { query: q, attempts };
}

// A trace id as the API names it: 32 lower-case hex digits (shorter ids are left-padded, as
// OTLP's 64-bit ids from older tracers are).
export function normalizeTraceId(text) {
  const t = String(text).trim().toLowerCase();
  return t.padStart(32, '0');
}

// The lifecycle's statuses, in order, and which of them end an order. Used for the class (and
// so the colour) of a status; unknown statuses get the neutral class.
export const TERMINAL_STATUSES = new Set(['CLOSED']);
export const LATE_STATUSES = new Set(['SHIPPED', 'CLOSED']);

// The CSS class of a status pill: "done" for a terminal status, "stuck" when the order has an open
// gap, "error" when its last operation failed, else "active".
export function statusTone({ status, openGaps = 0, hasError = false }) {
  if (!status) return 'unknown';
  if (openGaps > 0) return 'stuck';
  if (TERMINAL_STATUSES.has(status)) return 'done';
  if (hasError) return 'error';
  return 'active';
}

// Gap kinds as the gap detector names them (docs/gaps.md), with words for people.
export const GAP_KINDS = [
  ['missing_transition', 'Missing transition'],
  ['calculation_overdue', 'Price calculation overdue'],
  ['message_not_consumed', 'Message not consumed'],
  ['forbidden_transition', 'Forbidden transition'],
  ['skipped_status', 'Skipped status'],
  ['status_backwards', 'Status went backwards'],
  ['status_disagreement', 'Status disagreement'],
  ['source_silent', 'Service silent'],
];

export function gapKindLabel(kind) {
  const found = GAP_KINDS.find(([k]) => k === kind);
  return found ? found[1] : kind;
}

// Open gaps sorted oldest first (longest stuck on top); equal `since` by order id for a stable page.
export function sortGapsByAge(gaps) {
  return [...gaps].sort((a, b) => {
    const ta = isoToMs(a.since) ?? Infinity;
    const tb = isoToMs(b.since) ?? Infinity;
    if (ta !== tb) return ta - tb;
    return String(a.order_id).localeCompare(String(b.order_id));
  });
}

// Gaps per stage, biggest first: [{stage, count}]. An incident (many orders stuck at one stage)
// shows as one large count. A gap without a stage (a silent service) counts under "".
export function countPerStage(gaps) {
  const counts = new Map();
  for (const g of gaps) {
    const stage = g.stage || '';
    counts.set(stage, (counts.get(stage) || 0) + 1);
  }
  return [...counts.entries()]
    .map(([stage, count]) => ({ stage, count }))
    .sort((a, b) => b.count - a.count || a.stage.localeCompare(b.stage));
}

// The stages of an order's timeline drawn against their SLA. `slaByStage` maps a status to its
// SLA in seconds; the current stage lasts until `nowMs`. Each bar's scale is its own stage's
// max(duration, SLA), so a stage far over its SLA shows a full bar with the SLA mark early in it.
export function stageBars(timeline, slaByStage, nowMs) {
  return (timeline || []).map((stage) => {
    const reached = isoToMs(stage.reached_at);
    let seconds = Number(stage.duration_seconds) || 0;
    if (stage.current && reached !== null && Number.isFinite(nowMs)) {
      seconds = Math.max(0, (nowMs - reached) / 1000);
    }
    const sla = slaByStage && Number.isFinite(slaByStage[stage.status]) ? slaByStage[stage.status] : null;
    const scale = Math.max(seconds, sla ?? 0) || 1;
    return {
      status: stage.status,
      current: !!stage.current,
      seconds,
      slaSeconds: sla,
      over: sla !== null && seconds > sla,
      barFraction: Math.min(1, seconds / scale),
      slaFraction: sla === null ? null : Math.min(1, sla / scale),
    };
  });
}
