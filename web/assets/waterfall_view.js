// Draws the waterfall that waterfall.js lays out: one row per span grouped by service, bars on a
// folded time axis, RabbitMQ hops as SVG paths between rows, the critical path marked, and a
// detail panel (attributes, resource, events, links, status) for the span chosen by click or
// Enter. Arrow keys move between rows.
import { h, svg, clear } from './dom.js';
import { layoutWaterfall, ROW_HEIGHT, GROUP_HEIGHT } from './waterfall.js';
import { formatDuration, formatUtc } from './format.js';
import { enc } from './api.js';

const AXIS_HEIGHT = 28;

function durationText(span) {
  return formatDuration((span.end - span.start) / 1000);
}

function sinceStart(ms, start) {
  return '+' + formatDuration((ms - start) / 1000);
}

function pct(x) {
  return `${(x * 100).toFixed(3)}%`;
}

// `spans` from waterfall.parseTraces. Returns the element; `options.orderLinks` adds a link to
// each order named by an order_id attribute in the detail panel.
export function renderWaterfall(spans, options = {}) {
  const wrap = h('div', { class: 'waterfall-wrap' });
  if (!spans.length) {
    wrap.append(h('div', { testid: 'waterfall', class: 'waterfall empty' }, h('p', { class: 'muted' }, 'No spans stored for this trace (they may have been sampled out or expired).')));
    return wrap;
  }
  const layout = layoutWaterfall(spans, options.layout);
  const { axis } = layout;
  const totalMs = axis.end - axis.start;
  const foldedMs = axis.folds.reduce((s, f) => s + f.durationMs, 0);

  const summary = h('p', { class: 'wf-summary' },
    `${spans.length} spans in ${layout.groups.length} services over ${formatDuration(totalMs / 1000)}`,
    axis.folds.length ? `, ${axis.folds.length} idle stretch${axis.folds.length > 1 ? 'es' : ''} (${formatDuration(foldedMs / 1000)}) folded` : '',
    `. Starts ${formatUtc(axis.start)}. `,
    h('span', { class: 'legend' },
      h('span', { class: 'swatch crit', 'aria-hidden': 'true' }), ' critical path ',
      h('span', { class: 'swatch err', 'aria-hidden': 'true' }), ' error ',
      h('span', { class: 'swatch msg', 'aria-hidden': 'true' }), ' RabbitMQ message'));

  const detail = h('div', { class: 'span-detail-slot' });
  const body = h('div', { class: 'wf-body', role: 'list', 'aria-label': 'Spans by service' });
  body.style.height = `${layout.height + AXIS_HEIGHT}px`;

  // Time axis and folds.
  const track = h('div', { class: 'wf-track-layer', 'aria-hidden': 'true' });
  track.style.height = `${layout.height + AXIS_HEIGHT}px`;
  for (const t of layout.ticks) {
    const tick = h('span', { class: 'wf-tick' }, sinceStart(t.ms, axis.start));
    tick.style.left = pct(t.x);
    if (t.x > 0.9) tick.classList.add('right');
    track.append(tick);
  }
  for (const f of axis.folds) {
    const fold = h('div', { class: 'wf-fold', testid: 'time-fold', 'data-duration-ms': Math.round(f.durationMs), title: `${formatDuration(f.durationMs / 1000)} with no span running, folded` },
      h('span', null, `⋯ ${formatDuration(f.durationMs / 1000)}`));
    fold.style.left = pct(f.x0);
    fold.style.width = pct(f.x1 - f.x0);
    fold.removeAttribute('aria-hidden');
    track.append(fold);
  }
  body.append(track);

  // Message links: one SVG over the track column, x in 0..1000, y in px.
  const links = svg('svg', { class: 'wf-links', viewBox: `0 0 1000 ${layout.height}`, preserveAspectRatio: 'none', 'aria-hidden': 'true', focusable: 'false' });
  links.style.top = `${AXIS_HEIGHT}px`;
  links.style.height = `${layout.height}px`;
  for (const l of layout.links) {
    const x0 = l.x0 * 1000;
    const x1 = l.x1 * 1000;
    const mid = (l.y0 + l.y1) / 2;
    const d = `M${x0.toFixed(1)} ${l.y0} C${x0.toFixed(1)} ${mid} ${x1.toFixed(1)} ${mid} ${x1.toFixed(1)} ${l.y1}`;
    const crit = layout.critical.has(l.from) && layout.critical.has(l.to);
    links.append(svg('path', { d, class: crit ? 'msg-link crit' : 'msg-link', testid: 'message-link', 'data-from': l.from, 'data-to': l.to, 'vector-effect': 'non-scaling-stroke' },
      svg('title', null, `${l.producerName} → ${l.queue ? 'queue ' + l.queue + ', ' : ''}waited ${formatDuration(l.waitedMs / 1000)}`)));
  }
  body.append(links);

  const rowsEls = [];
  let selected = null;
  const select = (row, el) => {
    if (selected) selected.setAttribute('aria-expanded', 'false');
    if (selected === el) {
      selected = null;
      clear(detail);
      return;
    }
    selected = el;
    el.setAttribute('aria-expanded', 'true');
    clear(detail).append(spanDetail(row, layout, axis.start, options, () => {
      el.setAttribute('aria-expanded', 'false');
      selected = null;
      clear(detail);
      el.focus();
    }));
  };

  for (const g of layout.groups) {
    const group = h('div', { class: 'wf-group', role: 'listitem', testid: 'service-group', 'data-service': g.service });
    const head = h('div', { class: 'wf-group-head' }, h('h3', null, g.service), h('span', { class: 'muted' }, `${g.rows.length} span${g.rows.length > 1 ? 's' : ''}`));
    head.style.top = `${g.y + AXIS_HEIGHT}px`;
    group.append(head);
    const list = h('div', { role: 'list', 'aria-label': `Spans of ${g.service}` });
    for (const row of g.rows) {
      const s = row.span;
      const note = row.incoming
        ? `from publish ${row.incoming.producerName}${row.incoming.queue ? ` on ${row.incoming.queue}` : ''}, waited ${formatDuration(row.incoming.waitedMs / 1000)}`
        : null;
      const label = `${s.name}, ${s.service}, ${s.kind}, ${durationText(s)}, starts ${sinceStart(s.start, axis.start)}` +
        `${s.error ? ', error' : ''}${row.critical ? ', on the critical path' : ''}${note ? ', ' + note : ''}`;
      const bar = h('span', { class: ['wf-bar', `kind-${s.kind}`, row.critical && 'crit', s.error && 'err'] });
      bar.style.left = pct(row.x0);
      bar.style.width = `max(2px, ${pct(row.x1 - row.x0)})`;
      const barLabel = h('span', { class: 'wf-bar-label' }, durationText(s));
      if (row.x1 > 0.8) {
        barLabel.classList.add('before');
        barLabel.style.right = pct(1 - row.x0);
      } else {
        barLabel.style.left = pct(row.x1);
      }
      const el = h('div', {
        class: ['wf-row', row.critical && 'crit', s.error && 'err'], role: 'button', tabindex: 0, 'aria-expanded': 'false', 'aria-label': label,
        testid: 'span-row', 'data-span-id': s.spanId, 'data-service': s.service, 'data-kind': s.kind,
        'data-critical': String(row.critical), 'data-error': String(s.error),
      },
      h('div', { class: 'wf-label' },
        h('span', { class: 'wf-name' }, row.critical ? h('span', { class: 'crit-mark', title: 'critical path' }, '▍') : null, s.name,
          s.error ? h('span', { class: 'err-mark' }, ' ✖ error') : null),
        h('span', { class: 'wf-sub' }, h('span', { class: `kind-badge kind-${s.kind}` }, s.kind), ' ', durationText(s),
          note ? h('span', { class: 'wf-note' }, ` · ${note}`) : null)),
      h('div', { class: 'wf-track' }, bar, barLabel));
      el.style.top = `${row.y + AXIS_HEIGHT}px`;
      el.addEventListener('click', () => select(row, el));
      el.addEventListener('keydown', (e) => {
        const i = rowsEls.indexOf(el);
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          select(row, el);
        } else if (e.key === 'ArrowDown' && i < rowsEls.length - 1) {
          e.preventDefault();
          rowsEls[i + 1].focus();
        } else if (e.key === 'ArrowUp' && i > 0) {
          e.preventDefault();
          rowsEls[i - 1].focus();
        } else if (e.key === 'Home') {
          e.preventDefault();
          rowsEls[0].focus();
        } else if (e.key === 'End') {
          e.preventDefault();
          rowsEls[rowsEls.length - 1].focus();
        } else if (e.key === 'Escape' && selected) {
          select(row, selected);
        }
      });
      rowsEls.push(el);
      list.append(el);
    }
    group.append(list);
    body.append(group);
  }

  const scroller = h('div', { class: 'wf-scroll', testid: 'waterfall', tabindex: -1 }, h('div', { class: 'wf-inner' }, body));
  wrap.append(summary, h('p', { class: 'muted small' }, 'Click a span, or focus it and press Enter, for its attributes; ↑/↓ move between spans.'), scroller, detail);
  return wrap;
}

function valueText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function kvTable(obj, caption, options) {
  const entries = Object.entries(obj || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h('p', { class: 'muted' }, `No ${caption.toLowerCase()}.`);
  return h('table', { class: 'kv' }, h('caption', null, caption),
    h('tbody', null, entries.map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k),
      h('td', null, k === 'order_id' && options.orderLinks && typeof v === 'string'
        ? h('a', { href: `/orders/${enc(v)}`, testid: 'order-link', 'data-order-id': v }, v)
        : valueText(v))))));
}

function spanDetail(row, layout, start, options, onClose) {
  const s = row.span;
  const byId = new Map(layout.rows.map((r) => [r.span.spanId, r.span]));
  const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close span detail' }, '×');
  close.addEventListener('click', onClose);
  const panel = h('section', { class: ['span-detail', s.error && 'err'], testid: 'span-detail', 'aria-label': `Span ${s.name}`, tabindex: -1 },
    h('div', { class: 'detail-head' }, h('h3', null, s.name), close),
    h('dl', { class: 'facts' },
      h('dt', null, 'Service'), h('dd', null, s.service),
      h('dt', null, 'Kind'), h('dd', null, s.kind),
      h('dt', null, 'Start'), h('dd', null, `${formatUtc(s.start)} (${sinceStart(s.start, start)})`),
      h('dt', null, 'Duration'), h('dd', null, durationText(s)),
      h('dt', null, 'Status'), h('dd', { class: s.error ? 'bad' : null }, s.error ? `error${s.status.message ? ': ' + s.status.message : ''}` : s.status.code === 1 ? 'ok' : 'unset'),
      s.attributes.error_message ? [h('dt', null, 'Error'), h('dd', { class: 'bad' }, `${s.attributes.error_code ?? ''} ${s.attributes.error_message}`.trim())] : null,
      h('dt', null, 'Trace'), h('dd', null, h('a', { href: `/traces/${s.traceId}`, class: 'mono' }, s.traceId)),
      h('dt', null, 'Span id'), h('dd', { class: 'mono' }, s.spanId),
      s.parentSpanId ? [h('dt', null, 'Parent'), h('dd', null, byId.get(s.parentSpanId)?.name ?? '(not stored)', ' ', h('span', { class: 'mono muted' }, s.parentSpanId))] : null,
      row.critical ? [h('dt', null, 'Critical path'), h('dd', null, 'yes: this span is on the chain that decides when the work ended')] : null),
    kvTable(s.attributes, 'Attributes', options),
    s.events.length
      ? h('table', { class: 'kv' }, h('caption', null, 'Events'), h('tbody', null, s.events.map((e) =>
        h('tr', null, h('th', { scope: 'row' }, e.name), h('td', null, `${formatUtc(e.time)} (${sinceStart(e.time, start)}) `, valueText(Object.keys(e.attributes).length ? e.attributes : ''))))))
      : h('p', { class: 'muted' }, 'No events.'),
    s.links.length
      ? h('table', { class: 'kv' }, h('caption', null, 'Links'), h('tbody', null, s.links.map((l) => {
        const target = byId.get(l.spanId);
        return h('tr', null, h('th', { scope: 'row' }, target ? `${target.name} (${target.service})` : 'span not stored'),
          h('td', { class: 'mono' }, `${l.traceId}/${l.spanId}`, Object.keys(l.attributes).length ? ' ' + valueText(l.attributes) : ''));
      })))
      : h('p', { class: 'muted' }, 'No links.'),
    kvTable(s.resource, 'Resource', options));
  queueMicrotask(() => panel.focus({ preventScroll: false }));
  return panel;
}
