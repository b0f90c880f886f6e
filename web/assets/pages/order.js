// The order page: where the order is and since when, its last success and error, where it
// stopped, its stages against their SLA, its gaps, its RabbitMQ messages and the waterfall of
// all its traces.
import { apiGet, apiFind, enc } from '../api.js';
import { h, timeAgo, loading, errorBox, section } from '../dom.js';
import * as fmt from '../format.js';
import { parseTraces } from '../waterfall.js';
import { renderWaterfall } from '../waterfall_view.js';
import { statusPill } from './home.js';

function operation(op, now) {
  if (!op) return h('span', { class: 'muted' }, 'none recorded');
  return h('span', null, h('strong', null, op.span_name), ' in ', h('strong', null, op.service), ' · ', timeAgo(fmt.isoToMs(op.at), now, fmt));
}

function fact(label, testid, ...value) {
  return h('div', { class: 'fact' }, h('dt', null, label), h('dd', { testid }, ...value));
}

function glance(o, openGaps, now) {
  const since = fmt.isoToMs(o.status_since);
  const tone = fmt.statusTone({ status: o.current_status, openGaps: openGaps.length, hasError: !!o.last_error });
  const where = o.where || {};
  const place = [where.service && `service ${where.service}`, where.queue && `queue ${where.queue}`].filter(Boolean).join(', ');
  let stopped;
  if (openGaps.length) {
    const g = openGaps[0];
    stopped = [h('span', { class: 'pill tone-stuck' }, 'stuck'), ' at ', h('strong', null, g.stage || o.current_status || '?'),
      place ? ` (${place})` : g.service ? ` (service ${g.service})` : '',
      g.kind === 'message_not_consumed'
        ? ` — a message on ${g.queue || 'its queue'} not consumed since `
        : ` — waiting for ${[].concat(g.expected || []).join(' or ') || 'the next step'} since `,
      timeAgo(fmt.isoToMs(g.since), now, fmt),
      openGaps.length > 1 ? ` (+${openGaps.length - 1} more open gap${openGaps.length > 2 ? 's' : ''})` : ''];
  } else if (fmt.TERMINAL_STATUSES.has(o.current_status)) {
    stopped = [h('span', { class: 'pill tone-done' }, 'finished'), place ? ` last in ${place}` : ''];
  } else {
    stopped = [place ? `in ${place}` : 'unknown', where.queue ? ' (message published, not yet consumed)' : ''];
  }
  return h('section', { class: ['card', 'glance', `tone-${tone}-edge`], 'aria-labelledby': 'h-glance' },
    h('div', { class: 'glance-head' },
      h('h1', { id: 'h-glance' }, 'Order ', h('span', { class: 'mono', testid: 'order-id' }, o.order_id)),
      h('span', { class: ['pill', 'big', `tone-${tone}`], testid: 'order-status' }, o.current_status || 'no status')),
    h('dl', { class: 'facts grid' },
      fact('In this status since', 'order-status-since', timeAgo(since, now, fmt), since ? ` · for ${fmt.formatDuration((now - since) / 1000)}` : ''),
      fact('Where it stopped', 'order-stopped-at', ...stopped),
      fact('Last successful step', 'order-last-success', operation(o.last_success, now)),
      o.last_error
        ? fact('Last error', 'order-last-error', h('span', { class: 'bad' }, operation(o.last_error, now),
          h('br'), [o.last_error.error_code, o.last_error.error_message].filter(Boolean).join(': '),
          o.last_error.attempted_status ? ` (tried ${o.last_error.attempted_status})` : ''))
        : null,
      fact('Partner', null, o.partner_id || h('span', { class: 'muted' }, 'none (own order)')),
      fact('First seen', null, timeAgo(fmt.isoToMs(o.first_seen), now, fmt)),
      fact('Last seen', null, timeAgo(fmt.isoToMs(o.last_seen), now, fmt)),
      fact('Trace', null, ...(o.trace_ids || [o.trace_id]).flatMap((t, i) => [i ? ', ' : '', h('a', { href: `/traces/${t}`, class: 'mono' }, t)]))));
}

function timeline(o, slaByStage, now) {
  const bars = fmt.stageBars(o.timeline, slaByStage, now);
  if (!bars.length) return h('p', { class: 'muted' }, 'No status reported yet.');
  const noSla = !slaByStage;
  return h('ol', { class: 'timeline', testid: 'timeline' }, bars.map((b, i) => {
    const t = o.timeline[i];
    const fill = h('span', { class: ['tl-fill', b.over && 'over', b.current && 'current'] });
    fill.style.width = `${(b.barFraction * 100).toFixed(2)}%`;
    const track = h('span', { class: 'tl-track', 'aria-hidden': 'true' }, fill);
    if (b.slaFraction !== null) {
      const mark = h('span', { class: 'tl-sla', title: `SLA ${fmt.formatDuration(b.slaSeconds)}` });
      mark.style.left = `${(b.slaFraction * 100).toFixed(2)}%`;
      track.append(mark);
    }
    const spent = `${fmt.formatDuration(b.seconds)}${b.current ? ' so far' : ''}`;
    const against = b.slaSeconds !== null ? ` of ${fmt.formatDuration(b.slaSeconds)} SLA` : noSla ? '' : ' (no SLA)';
    return h('li', { class: ['tl-stage', b.current && 'current', b.over && 'over'], testid: 'timeline-stage', 'data-status': b.status, 'data-over-sla': String(b.over) },
      h('div', { class: 'tl-head' },
        h('span', { class: 'tl-status' }, b.status),
        b.current ? h('span', { class: 'pill tone-active small' }, 'current') : null,
        b.over ? h('span', { class: 'pill tone-stuck small' }, 'over SLA') : null),
      h('div', { class: 'tl-meta' },
        h('time', { datetime: t.reached_at }, fmt.formatUtc(fmt.isoToMs(t.reached_at))),
        ` · ${t.service || '?'} · ${t.span_name || ''}`),
      track,
      h('div', { class: ['tl-text', b.over && 'bad'] }, spent, against));
  }));
}

export function gapRows(gaps, now) {
  if (!gaps.length) return h('p', { class: 'muted ok' }, 'No gaps: every expected step came within its SLA.');
  return h('ul', { class: 'gap-list', testid: 'order-gaps' }, gaps.map((g) => h('li', {
    class: ['gap', g.state === 'open' ? 'open' : 'resolved'], testid: 'gap-row', 'data-gap-kind': g.kind, 'data-state': g.state,
    'data-stage': g.stage, 'data-order-id': g.order_id,
  },
  h('div', { class: 'gap-head' },
    h('span', { class: ['pill', g.state === 'open' ? 'tone-stuck' : 'tone-done'] }, g.state),
    h('strong', null, fmt.gapKindLabel(g.kind)), ' at ', h('strong', null, g.stage || '—'),
    g.expected && [].concat(g.expected).length ? ` · expected ${[].concat(g.expected).join(' or ')}` : ''),
  g.detail ? h('p', { class: 'gap-detail' }, g.detail) : null,
  h('dl', { class: 'facts grid small' },
    h('div', { class: 'fact' }, h('dt', null, 'Since'), h('dd', null, timeAgo(fmt.isoToMs(g.since), now, fmt))),
    h('div', { class: 'fact' }, h('dt', null, 'Deadline'), h('dd', null, timeAgo(fmt.isoToMs(g.deadline), now, fmt))),
    h('div', { class: 'fact' }, h('dt', null, 'Detected'), h('dd', null, timeAgo(fmt.isoToMs(g.detected_at), now, fmt), g.paged ? ' · paged' : ' · not paged')),
    g.state === 'resolved'
      ? h('div', { class: 'fact' }, h('dt', null, 'Resolved'), h('dd', null, timeAgo(fmt.isoToMs(g.resolved_at), now, fmt), g.resolved_by ? ` by ${g.resolved_by}` : ''))
      : null,
    g.service || g.queue ? h('div', { class: 'fact' }, h('dt', null, 'Where'), h('dd', null, [g.service && `service ${g.service}`, g.queue && `queue ${g.queue}`, g.message_id && `message ${g.message_id}`].filter(Boolean).join(', '))) : null,
    g.last_success ? h('div', { class: 'fact' }, h('dt', null, 'Last success'), h('dd', null, `${g.last_success.span_name} in ${g.last_success.service}`)) : null))));
}

function messagesTable(messages, now) {
  if (!messages || !messages.length) return h('p', { class: 'muted' }, 'No RabbitMQ messages recorded for this order.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'list', testid: 'order-messages' },
    h('caption', { class: 'visually-hidden' }, 'RabbitMQ messages of this order'),
    h('thead', null, h('tr', null, ['Queue', 'Message', 'Published', 'Consumed', 'Waited', 'Retries'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, messages.map((m) => h('tr', { class: m.state === 'published' ? 'pending' : null },
      h('td', { 'data-label': 'Queue' }, m.queue || '—'),
      h('td', { 'data-label': 'Message', class: 'mono' }, m.message_id),
      h('td', { 'data-label': 'Published' }, timeAgo(fmt.isoToMs(m.published_at), now, fmt)),
      h('td', { 'data-label': 'Consumed' }, m.consumed_at ? timeAgo(fmt.isoToMs(m.consumed_at), now, fmt) : h('span', { class: 'pill tone-stuck small' }, 'not consumed')),
      h('td', { 'data-label': 'Waited' }, m.publish_to_consume_seconds !== undefined ? fmt.formatDuration(m.publish_to_consume_seconds) : '—'),
      h('td', { 'data-label': 'Retries' }, String(m.retry_count ?? 0)))))));
}

async function slaFor(o, ctx) {
  // The API gives each stage the SLA that applies to this order's partner; older servers did
  // not, and then the lifecycle's figures from /api/v1/sla stand in.
  if ((o.timeline || []).some((s) => 'sla_seconds' in s)) {
    const out = {};
    for (const s of o.timeline) if (s.sla_seconds !== null && s.sla_seconds !== undefined) out[s.status] = Number(s.sla_seconds);
    return out;
  }
  if (ctx.session?.may && ctx.session.may.sla === false) return null;
  try {
    const path = o.partner_id ? `/api/v1/sla?partner_id=${enc(o.partner_id)}` : '/api/v1/sla';
    const report = await apiGet(path, { signal: ctx.signal });
    const out = {};
    for (const s of report.stages || []) if (s.sla_seconds !== null && s.sla_seconds !== undefined) out[s.stage] = Number(s.sla_seconds);
    return out;
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return null;
  }
}

export async function render(ctx) {
  const id = ctx.params[0];
  ctx.root.append(loading(`Loading order ${id}…`));
  let o;
  try {
    o = await apiFind(`/api/v1/orders/${enc(id)}`, { signal: ctx.signal });
  } finally {
    ctx.root.lastChild?.remove();
  }
  if (!o) {
    ctx.root.append(h('div', { class: 'card', testid: 'not-found' }, h('h1', null, 'Order not found'),
      h('p', null, 'No order ', h('strong', { class: 'mono' }, id), ' is known to ordertrace',
        ctx.session?.partner_id ? ' among your orders' : '', '. Check the id (case matters), or search for its trace id.')));
    return;
  }
  document.title = `Order ${o.order_id} · ordertrace`;
  const now = fmt.isoToMs(o.as_of) ?? ctx.now();
  const [gapsRes, sla] = await Promise.all([
    apiGet(`/api/v1/gaps?order_id=${enc(o.order_id)}&state=all&limit=200`, { signal: ctx.signal }).then((r) => r.gaps, (e) => e),
    slaFor(o, ctx),
  ]);
  const gapsList = gapsRes instanceof Error ? (o.open_gaps || []) : gapsRes;
  const open = gapsList.filter((g) => g.state === 'open');
  const sorted = [...open, ...gapsList.filter((g) => g.state !== 'open')];

  ctx.root.append(glance(o, open, now));
  ctx.root.append(h('div', { class: 'two-col wide-left' },
    section('Statuses against their SLA', { class: 'card' }, timeline(o, sla, now),
      sla ? null : h('p', { class: 'muted small' }, 'SLA figures could not be read; times are shown without them.')),
    section('Gaps', null, gapsRes instanceof Error ? errorBox(gapsRes, 'the gap history') : null, gapRows(sorted, now))));
  ctx.root.append(section('RabbitMQ messages', null, messagesTable(o.messages, now)));

  const wf = section('Trace waterfall', { class: 'card waterfall-card' }, loading('Loading the trace…'));
  ctx.root.append(wf);
  const ids = [...new Set([...(o.trace_ids || []), o.trace_id].filter(Boolean))];
  const bodies = await Promise.all(ids.map((t) => apiFind(`/api/traces/${t}`, { signal: ctx.signal }).catch((e) => e)));
  wf.lastChild.remove();
  const failed = bodies.find((b) => b instanceof Error);
  if (failed && failed.name === 'AbortError') return;
  if (failed) wf.append(errorBox(failed, 'a trace'));
  const spans = parseTraces(bodies.filter((b) => b && !(b instanceof Error)));
  wf.append(renderWaterfall(spans, { orderLinks: false }));
}

