// Small DOM builders. Text always goes in as text nodes (never innerHTML): order ids, attributes
// and error messages are untrusted. Listeners are attached with addEventListener and styles set
// through classes or the CSSOM, as the server's Content-Security-Policy requires.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'style' && typeof value === 'object') {
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v);
    } else if (key === 'testid') {
      el.setAttribute('data-testid', value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// h('a', {href: '/gaps', testid: 'nav-gaps', onClick: fn}, 'Stuck orders')
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A <time> with the UTC ISO instant and "x ago" beside it.
// In tables (`compact`) the instant is written to the second, "x ago" on its own line.
export function timeAgo(ms, nowMs, format, { compact = false } = {}) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '—');
  const iso = format.formatUtc(ms);
  return h('span', { class: compact ? 'when compact' : 'when' },
    h('time', { datetime: iso, title: iso }, compact ? iso.replace(/\.\d+Z$/, 'Z') : iso),
    ' ', h('span', { class: 'ago' }, `(${format.formatAgo(ms, nowMs)})`));
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

// The visible error box every page uses; `error` may be an ApiError.
export function errorBox(error, what) {
  const status = error && error.status ? ` (HTTP ${error.status})` : '';
  return h('div', { class: 'error-box', role: 'alert', testid: 'error' },
    h('strong', null, what ? `Could not load ${what}${status}: ` : `Error${status}: `),
    error && error.message ? error.message : String(error));
}

export function section(title, attrs, ...children) {
  const id = 'h-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return h('section', { class: 'card', 'aria-labelledby': id, ...attrs }, h('h2', { id }, title), ...children);
}
