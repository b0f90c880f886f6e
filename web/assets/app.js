// The console's shell: header, navigation, search box, session, and a small history router.
//
// Why no framework and no npm library: the console is six pages of tables, bars and one
// waterfall. Plain ES modules need no build step (a fresh clone serves them as they are), are
// served by ordertrace itself under a strict Content-Security-Policy (no inline script or style,
// no CDN), and keep the layout logic in pure modules that node's own test runner imports. A
// framework or a chart library would bring a lockfile, a copy step and more code than the
// console itself, for nothing these pages need.

import { apiGet, ApiError, clearToken, getToken, setUnauthorizedHandler, enc } from './api.js';
import { h, clear, errorBox } from './dom.js';
import * as home from './pages/home.js';
import * as order from './pages/order.js';
import * as trace from './pages/trace.js';
import * as gaps from './pages/gaps.js';
import * as charts from './pages/charts.js';
import * as login from './pages/login.js';

const ROUTES = [
  { pattern: /^\/$/, page: home, title: 'Search' },
  { pattern: /^\/orders\/(.+)$/, page: order, title: 'Order' },
  { pattern: /^\/traces\/([^/]+)$/, page: trace, title: 'Trace' },
  { pattern: /^\/gaps\/?$/, page: gaps, title: 'Stuck orders' },
  { pattern: /^\/charts\/?$/, page: charts, title: 'Charts' },
  { pattern: /^\/login\/?$/, page: login, title: 'Sign in' },
];

const state = {
  session: null, // whoami's answer
  abort: null, // aborts the current page's requests when the route changes
  afterLogin: '/',
};

const main = () => document.getElementById('main');

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
}

function matchRoute(pathname) {
  for (const r of ROUTES) {
    const m = r.pattern.exec(pathname);
    if (m) return { ...r, params: m.slice(1).map((p) => safeDecode(p)) };
  }
  return null;
}

function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

async function route() {
  if (state.abort) state.abort.abort();
  // This call's own controller: a later navigation aborts it, and this call then stops at its
  // next step instead of drawing a page over the newer one.
  const controller = new AbortController();
  state.abort = controller;
  const { pathname, search } = location;
  const found = matchRoute(pathname);
  const root = clear(main());
  if (!found) {
    document.title = 'Not found · ordertrace';
    root.append(h('div', { class: 'card', testid: 'not-found' }, h('h1', null, 'No such page'),
      h('p', null, 'Try the search above, or go to ', h('a', { href: '/' }, 'the start page'), '.')));
    return;
  }
  if (found.page !== login && !state.session) {
    const ok = await loadSession();
    if (!ok || controller.signal.aborted) return;
  }
  markNav(pathname);
  document.title = `${found.title} · ordertrace`;
  const ctx = {
    root,
    params: found.params,
    query: new URLSearchParams(search),
    session: state.session,
    signal: controller.signal,
    navigate,
    now: () => Date.now(),
    onLogin: (session) => {
      state.session = session;
      renderSession();
      navigate(state.afterLogin || '/', { replace: true });
    },
  };
  try {
    await found.page.render(ctx);
  } catch (e) {
    if (e && e.name === 'AbortError') return;
    if (e instanceof ApiError && e.status === 401) return; // the login page is on its way
    root.append(errorBox(e));
  }
  if (controller.signal.aborted) return;
  // Move focus to the page's heading so keyboard and screen-reader users land on the new page.
  const heading = root.querySelector('h1');
  if (heading && document.activeElement?.closest('#main') == null && !ctx.keepFocus) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

// whoami: 401 means tokens are on and we have none (or a bad one): the login page. A server
// without the endpoint (older builds) is taken as tokens off.
async function loadSession() {
  try {
    state.session = await apiGet('/api/v1/whoami', { quiet401: true });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      clearToken();
      toLogin();
      return false;
    }
    if (e instanceof ApiError && e.status === 404) {
      state.session = { auth: false, role: 'ops', partner_id: null, may: { orders: true, sla: true, charts: true, metrics: true } };
    } else {
      clear(main()).append(errorBox(e, 'the session'));
      return false;
    }
  }
  renderSession();
  return true;
}

function toLogin() {
  const here = location.pathname + location.search;
  if (!here.startsWith('/login')) state.afterLogin = here;
  state.session = null;
  renderSession();
  navigate('/login', { replace: true });
}

function renderSession() {
  const box = clear(document.getElementById('session'));
  const s = state.session;
  if (!s) return;
  const role = s.role || 'unknown';
  const who = h('span', { class: 'whoami', testid: 'whoami', title: s.token_name ? `token ${s.token_name}` : 'tokens are off' },
    h('span', { class: 'role' }, role), s.partner_id ? h('span', { class: 'partner' }, ` · partner ${s.partner_id}`) : null);
  box.append(who);
  if (s.auth || getToken()) {
    box.append(h('button', { type: 'button', class: 'link-button', testid: 'logout', onClick: () => {
      clearToken();
      state.afterLogin = '/';
      toLogin();
    } }, 'Sign out'));
  }
}

function markNav(pathname) {
  for (const a of document.querySelectorAll('.nav a')) {
    const href = a.getAttribute('href');
    const current = href === '/' ? pathname === '/' || pathname.startsWith('/orders') || pathname.startsWith('/traces') : pathname.startsWith(href);
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function shell() {
  const form = h('form', { class: 'search', role: 'search', testid: 'search-form', 'aria-label': 'Find an order' },
    h('label', { for: 'search-input', class: 'visually-hidden' }, 'Order id, trace id or partner id'),
    h('input', { id: 'search-input', type: 'search', name: 'q', testid: 'search-input', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'Order id, trace id or partner id', 'aria-keyshortcuts': '/' }),
    h('button', { type: 'submit', testid: 'search-submit' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = form.elements.q.value.trim();
    if (q) navigate(`/?q=${enc(q)}`);
  });
  const header = h('header', { class: 'top' },
    h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
    h('div', { class: 'top-row' },
      h('a', { href: '/', class: 'brand', 'aria-label': 'ordertrace, start page' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), 'ordertrace'),
      h('nav', { class: 'nav', 'aria-label': 'Main' },
        h('a', { href: '/', testid: 'nav-home' }, 'Search'),
        h('a', { href: '/gaps', testid: 'nav-gaps' }, 'Stuck orders'),
        h('a', { href: '/charts', testid: 'nav-charts' }, 'Charts')),
      h('div', { id: 'session', class: 'session' })),
    form);
  document.body.prepend(header);
}

function interceptLinks() {
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/assets/')) return;
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  // "/" focuses the search box, as in many consoles; not while typing in a field.
  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    e.preventDefault();
    document.getElementById('search-input')?.focus();
  });
}

function start() {
  shell();
  interceptLinks();
  setUnauthorizedHandler(() => toLogin());
  window.addEventListener('popstate', route);
  route();
}

start();
