// The trace page: one trace's waterfall, and links to the orders its spans name.
import { apiFind } from '../api.js';
import { h, loading, section } from '../dom.js';
import { parseTraces } from '../waterfall.js';
import { renderWaterfall } from '../waterfall_view.js';
import { normalizeTraceId } from '../format.js';
import { orderLink } from './home.js';

export async function render(ctx) {
  const raw = ctx.params[0];
  const id = /^[0-9a-fA-F]{1,32}$/.test(raw) ? normalizeTraceId(raw) : raw;
  ctx.root.append(loading(`Loading trace ${id}…`));
  const body = await apiFind(`/api/traces/${encodeURIComponent(id)}`, { signal: ctx.signal });
  ctx.root.lastChild.remove();
  if (!body) {
    ctx.root.append(h('div', { class: 'card', testid: 'not-found' }, h('h1', null, 'Trace not found'),
      h('p', null, 'No trace ', h('strong', { class: 'mono' }, id), ' is stored (or you may not see it). Traces are kept 14 days.')));
    return;
  }
  const spans = parseTraces(body);
  const orders = [...new Set(spans.map((s) => s.attributes.order_id).filter((v) => typeof v === 'string' && v))].sort();
  ctx.root.append(h('section', { class: 'card', 'aria-labelledby': 'h-trace' },
    h('h1', { id: 'h-trace' }, 'Trace ', h('span', { class: 'mono' }, id)),
    orders.length
      ? h('p', { testid: 'trace-orders' }, orders.length === 1 ? 'Order: ' : 'Orders: ', orders.flatMap((o, i) => [i ? ', ' : '', orderLink(o)]))
      : h('p', { class: 'muted' }, 'No span of this trace names an order.')));
  ctx.root.append(section('Waterfall', { class: 'card waterfall-card' }, renderWaterfall(spans, { orderLinks: true })));
}
