// The search box's lookup: an order id, then a trace id, then a partner id, as
// format.classifySearch orders them. No DOM access.
import { apiFind, enc } from './api.js';
import { classifySearch, normalizeTraceId } from './format.js';

// Searches an order id, then a trace id, then a partner id (format.classifySearch says which
// apply). Returns {kind:'order'|'trace', path} or {kind:'partner', orders} or {kind:'none'}.
export async function runSearch(input, signal) {
  const { query, attempts } = classifySearch(input);
  for (const attempt of attempts) {
    if (attempt === 'order') {
      const found = await apiFind(`/api/v1/orders/${enc(query)}`, { signal });
      if (found) return { kind: 'order', path: `/orders/${enc(found.order_id)}` };
    } else if (attempt === 'trace') {
      const id = normalizeTraceId(query);
      const found = await apiFind(`/api/traces/${id}`, { signal });
      if (found) return { kind: 'trace', path: `/traces/${id}` };
    } else if (attempt === 'partner') {
      const found = await apiFind(`/api/v1/orders?partner_id=${enc(query)}&limit=1000`, { signal });
      if (found && found.orders && found.orders.length) return { kind: 'partner', partner: query, orders: found.orders };
    }
  }
  return { kind: 'none', query };
}

