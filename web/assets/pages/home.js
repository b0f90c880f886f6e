// The start page: search results (when the URL has ?q=), recent orders and stuck orders.
import { apiGet, enc } from '../api.js';
import { h, timeAgo, loading, errorBox, section } from '../dom.js';
import * as fmt from '../format.js';
import { runSearch } from '../search.js';
import { fetchOpenGaps } from './gaps.js';

export function orderLink(id) {
  return h('a', { href: `/orders/${enc(id)}`, testid: 'order-link', 'data-order-id': id, class: 'mono' }, id);
}

export function statusPill(status, tone) {
  return h('span', { class: ['pill', `tone-${tone}`] }, status || 'no status');
}

function ordersTable(orders, now, { caption, stuckIds = new Set() }) {
  if (!orders.length) return h('p', { class: 'muted' }, 'None.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Order'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Since'),
      h('th', { scope: 'col' }, 'Partner'), h('th', { scope: 'col' }, 'Last seen'))),
    h('tbody', null, orders.map((o) => h('tr', { testid: 'order-row', 'data-order-id': o.order_id },
      h('th', { scope: 'row', 'data-label': 'Order' }, orderLink(o.order_id)),
      h('td', { 'data-label': 'Status' }, statusPill(o.current_status, fmt.statusTone({ status: o.current_status, openGaps: stuckIds.has(o.order_id) ? 1 : 0 }))),
      h('td', { 'data-label': 'Since' }, timeAgo(fmt.isoToMs(o.status_since), now, fmt, { compact: true })),
      h('td', { 'data-label': 'Partner' }, o.partner_id || h('span', { class: 'muted' }, '—')),
      h('td', { 'data-label': 'Last seen' }, timeAgo(fmt.isoToMs(o.last_seen), now, fmt, { compact: true })))))));
}

function stuckTable(gaps, now) {
  if (!gaps.length) return h('p', { class: 'muted ok' }, 'No open gaps: no order is stuck.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
    h('caption', { class: 'visually-hidden' }, 'Stuck orders, longest stuck first'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Order'), h('th', { scope: 'col' }, 'Stuck at'), h('th', { scope: 'col' }, 'Waiting for'),
      h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Since'))),
    h('tbody', null, gaps.map((g) => h('tr', { testid: 'order-row', 'data-order-id': g.order_id },
      h('th', { scope: 'row', 'data-label': 'Order' }, g.order_id ? orderLink(g.order_id) : h('span', { class: 'muted' }, g.service || '—')),
      h('td', { 'data-label': 'Stuck at' }, h('span', { class: 'pill tone-stuck' }, g.stage || '—'), g.queue ? h('span', { class: 'muted' }, ` queue ${g.queue}`) : null),
      h('td', { 'data-label': 'Waiting for' }, [].concat(g.expected || []).join(', ') || '—'),
      h('td', { 'data-label': 'Kind' }, fmt.gapKindLabel(g.kind)),
      h('td', { 'data-label': 'Since' }, timeAgo(fmt.isoToMs(g.since), now, fmt, { compact: true })))))));
}

async function searchBlock(ctx, q) {
  const box = h('section', { class: 'card', 'aria-labelledby': 'h-results', 'aria-live': 'polite' },
    h('h2', { id: 'h-results' }, `Search: “${q}”`), loading('Searching…'));
  ctx.root.append(box);
  const input = document.getElementById('search-input');
  if (input) input.value = q;
  const result = await runSearch(q, ctx.signal);
  box.lastChild.remove();
  if (result.kind === 'order' || result.kind === 'trace') {
    ctx.navigate(result.path, { replace: true });
    return;
  }
  if (result.kind === 'partner') {
    box.append(h('p', null, `${result.orders.length} order(s) of partner `, h('strong', null, result.partner), ', newest first.'),
      h('div', { testid: 'search-results' }, ordersTable(result.orders, ctx.now(), { caption: `Orders of partner ${result.partner}` })));
    return;
  }
  box.append(h('p', { testid: 'search-empty', class: 'empty' },
    'Nothing found: no order, trace or partner has the id ', h('strong', { class: 'mono' }, q),
    '. Order ids are exact (case matters); a trace id is 32 hex digits.'));
}

export async function render(ctx) {
  const q = (ctx.query.get('q') || '').trim();
  ctx.root.append(h('h1', { class: q ? 'visually-hidden' : null }, 'Find an order'));
  if (!q) {
    ctx.root.append(h('p', { class: 'lead' },
      'Type an order id, a trace id or a partner id in the search box (press ', h('kbd', null, '/'), ' to jump there). ',
      'Below: the newest orders and the orders stuck right now.'));
  }
  if (q) await searchBlock(ctx, q);
  if (ctx.signal.aborted) return;

  const recent = section('Recent orders', { testid: 'recent-orders' }, loading());
  const stuck = section('Stuck orders', { testid: 'stuck-orders' }, loading());
  ctx.root.append(stuck, recent);
  const now = ctx.now();
  const [orders, gaps] = await Promise.allSettled([
    apiGet('/api/v1/orders?limit=20', { signal: ctx.signal }),
    fetchOpenGaps({}, ctx.signal),
  ]);
  if (ctx.signal.aborted) return;
  const openIds = new Set(gaps.status === 'fulfilled' ? gaps.value.gaps.map((g) => g.order_id) : []);
  const seen = new Set();
  recent.lastChild.remove();
  if (orders.status === 'fulfilled') {
    const list = orders.value.orders; // newest first, as the API sorts them
    recent.append(ordersTable(list, now, { caption: 'Newest orders', stuckIds: openIds }));
  } else {
    recent.append(errorBox(orders.reason, 'the orders'));
  }
  stuck.lastChild.remove();
  if (gaps.status === 'fulfilled') {
    // One row per order: its oldest open gap.
    const list = fmt.sortGapsByAge(gaps.value.gaps).filter((g) => !seen.has(g.order_id) && seen.add(g.order_id));
    if (list.length) stuck.append(h('p', { class: 'muted' }, `${list.length} order${list.length === 1 ? '' : 's'} stuck, longest first. `, h('a', { href: '/gaps' }, 'Filter them, with counts per stage →')));
    stuck.append(stuckTable(list, now));
  } else {
    stuck.append(errorBox(gaps.reason, 'the stuck orders'));
  }
}
