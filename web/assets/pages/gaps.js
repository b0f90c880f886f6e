// Stuck orders: open gaps filtered by kind, stage and partner (kept in the URL), oldest first,
// with a count per stage so an incident (many orders stuck at one stage) is seen as one.
import { apiGet, enc } from '../api.js';
import { h, timeAgo, loading, errorBox } from '../dom.js';
import * as fmt from '../format.js';
import { orderLink } from './home.js';

const MAX_GAPS = 2000;

// The lifecycle's statuses in order (from /api/v1/sla), for the stage filter; none when they
// cannot be read (the filter then offers the stages the gaps name).
async function lifecycleStages(signal) {
  try {
    const report = await apiGet('/api/v1/sla', { signal });
    return (report.stages || []).map((s) => s.stage);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return [];
  }
}

// Open gaps matching `filters` counted per stage by the server (however many there are), or
// null when it cannot count them (the page then counts the gaps it listed).
async function countOpenGaps(filters, signal) {
  const params = new URLSearchParams({ state: 'open' });
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  try {
    return await apiGet(`/api/v1/gaps/counts?${params}`, { signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return null;
  }
}

// Every open gap matching `filters`, following next_cursor up to MAX_GAPS.
export async function fetchOpenGaps(filters, signal) {
  const params = new URLSearchParams({ state: 'open', limit: '500' });
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  const all = [];
  let cursor = null;
  let truncated = false;
  do {
    if (cursor) params.set('cursor', cursor);
    const page = await apiGet(`/api/v1/gaps?${params}`, { signal });
    all.push(...page.gaps);
    cursor = page.next_cursor;
    if (all.length >= MAX_GAPS && cursor) {
      truncated = true;
      break;
    }
  } while (cursor);
  return { gaps: all.slice(0, MAX_GAPS), truncated };
}

function select(testid, label, name, options, value) {
  const id = `f-${name}`;
  return h('div', { class: 'field' }, h('label', { for: id }, label),
    h('select', { id, name, testid }, h('option', { value: '' }, 'all'),
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
}

export async function render(ctx) {
  const filters = { kind: ctx.query.get('kind') || '', stage: ctx.query.get('stage') || '', partner_id: ctx.query.get('partner_id') || '' };
  ctx.root.append(h('h1', null, 'Stuck orders'),
    h('p', { class: 'lead' }, 'Open gaps: orders whose next status did not come within its SLA, messages not consumed, statuses that disagree. Longest stuck first.'));
  const stages = new Set(await lifecycleStages(ctx.signal).catch(() => []));
  if (filters.stage) stages.add(filters.stage);
  const partnerLocked = !!ctx.session?.partner_id;
  const form = h('form', { class: 'filters', 'aria-label': 'Filter stuck orders' },
    select('filter-kind', 'Kind', 'kind', fmt.GAP_KINDS, filters.kind),
    select('filter-stage', 'Stage', 'stage', [...stages].map((s) => [s, s]), filters.stage),
    h('div', { class: 'field' }, h('label', { for: 'f-partner' }, 'Partner'),
      h('input', { id: 'f-partner', name: 'partner_id', testid: 'filter-partner', type: 'search', value: partnerLocked ? ctx.session.partner_id : filters.partner_id,
        placeholder: 'any partner', disabled: partnerLocked, autocomplete: 'off' })),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', class: 'link-button', onClick: () => ctx.navigate('/gaps') }, 'Clear filters'));
  const apply = () => {
    const p = new URLSearchParams();
    for (const name of ['kind', 'stage', 'partner_id']) {
      const v = form.elements[name].value.trim();
      if (v && !(name === 'partner_id' && partnerLocked)) p.set(name, v);
    }
    const qs = p.toString();
    ctx.navigate(`/gaps${qs ? '?' + qs : ''}`, { replace: true });
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); apply(); });
  form.elements.kind.addEventListener('change', apply);
  form.elements.stage.addEventListener('change', apply);
  ctx.root.append(form);

  const out = h('div', { 'aria-live': 'polite' }, loading('Loading open gaps…'));
  ctx.root.append(out);
  let result;
  let serverCounts;
  try {
    [result, serverCounts] = await Promise.all([fetchOpenGaps(filters, ctx.signal), countOpenGaps(filters, ctx.signal)]);
  } catch (e) {
    if (e.name === 'AbortError') return;
    out.replaceChildren(errorBox(e, 'the open gaps'));
    return;
  }
  const now = ctx.now();
  const gaps = fmt.sortGapsByAge(result.gaps);
  const stageSelect = form.elements.stage;
  for (const g of gaps) {
    if (g.stage && !stages.has(g.stage)) {
      stages.add(g.stage);
      stageSelect.append(h('option', { value: g.stage }, g.stage));
    }
  }
  // The server's counts cover every open gap, also past the MAX_GAPS listed here.
  const counts = serverCounts ? serverCounts.by_stage : fmt.countPerStage(gaps);
  const total = serverCounts ? serverCounts.total : gaps.length;
  const orderCount = serverCounts ? serverCounts.orders : new Set(gaps.map((g) => g.order_id).filter(Boolean)).size;
  const more = serverCounts ? !serverCounts.complete : result.truncated;
  const max = counts.length ? counts[0].count : 1;
  out.replaceChildren();
  out.append(h('section', { class: 'card', 'aria-labelledby': 'h-per-stage' },
    h('h2', { id: 'h-per-stage' }, `${total}${more ? '+' : ''} open gap${total === 1 ? '' : 's'} of ${orderCount} order${orderCount === 1 ? '' : 's'}, per stage`),
    counts.length
      ? h('ul', { class: 'stage-counts', testid: 'gaps-per-stage' }, counts.map((c) => {
        const bar = h('span', { class: 'sc-bar', 'aria-hidden': 'true' });
        bar.style.width = `${Math.max(2, (c.count / max) * 100)}%`;
        const params = new URLSearchParams(ctx.query);
        params.set('stage', c.stage);
        return h('li', { testid: 'stage-count', 'data-stage': c.stage, 'data-count': c.count },
          h('a', { href: `/gaps?${params}`, 'aria-label': `${c.count} gaps${c.orders !== undefined ? ` of ${c.orders} orders` : ''} at ${c.stage || 'no stage'}: show only these` },
            h('span', { class: 'sc-stage' }, c.stage || '(no stage: a service)'), h('span', { class: 'sc-track' }, bar), h('span', { class: 'sc-count' }, String(c.count),
              c.orders !== undefined && c.orders !== c.count ? h('span', { class: 'muted small' }, ` (${c.orders} order${c.orders === 1 ? '' : 's'})`) : null)));
      }))
      : h('p', { class: 'muted ok', testid: 'gaps-per-stage' }, 'Nothing is stuck.')));
  if (result.truncated) out.append(h('p', { class: 'warn' }, `Showing the first ${MAX_GAPS} open gaps; narrow the filters to see the rest.`));

  const table = h('table', { class: 'list gaps', testid: 'gaps-table' },
    h('caption', { class: 'visually-hidden' }, 'Open gaps, oldest first'),
    h('thead', null, h('tr', null, ['Order', 'Stuck at', 'Kind', 'Waiting for', 'Stuck for', 'Deadline', 'Where', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, gaps.map((g) => {
      const since = fmt.isoToMs(g.since);
      return h('tr', { testid: 'gap-row', 'data-order-id': g.order_id || '', 'data-stage': g.stage || '', 'data-gap-kind': g.kind, 'data-state': g.state },
        h('th', { scope: 'row', 'data-label': 'Order' }, g.order_id ? orderLink(g.order_id) : h('span', { class: 'muted' }, '(service)'),
          g.partner_id ? h('div', { class: 'muted small' }, `partner ${g.partner_id}`) : null),
        h('td', { 'data-label': 'Stuck at' }, h('span', { class: 'pill tone-stuck' }, g.stage || '—')),
        h('td', { 'data-label': 'Kind' }, fmt.gapKindLabel(g.kind)),
        h('td', { 'data-label': 'Waiting for' }, [].concat(g.expected || []).join(', ') || '—'),
        h('td', { 'data-label': 'Stuck for' }, h('strong', null, since ? fmt.formatDuration((now - since) / 1000) : '—'),
          h('div', { class: 'small' }, timeAgo(since, now, fmt, { compact: true }))),
        h('td', { 'data-label': 'Deadline' }, timeAgo(fmt.isoToMs(g.deadline), now, fmt, { compact: true })),
        h('td', { 'data-label': 'Where' }, [g.service && `service ${g.service}`, g.queue && `queue ${g.queue}`].filter(Boolean).join(', ') || '—'),
        h('td', { 'data-label': 'Detail', class: 'detail' }, g.detail || ''));
    })));
  out.append(h('section', { class: 'card', 'aria-label': 'Open gaps' }, gaps.length ? h('div', { class: 'table-wrap' }, table) : [h('p', { class: 'muted' }, 'No open gap matches these filters.'), table]));
}
