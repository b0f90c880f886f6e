// The login page: a token typed once, kept in sessionStorage for this tab only, checked with
// /api/v1/whoami. Never in a URL.
import { apiGet, setToken, clearToken, ApiError } from '../api.js';
import { h } from '../dom.js';

export async function render(ctx) {
  ctx.keepFocus = true;
  const error = h('p', { class: 'error-box', role: 'alert', testid: 'login-error', hidden: true });
  const input = h('input', { id: 'login-token', type: 'password', name: 'token', testid: 'login-token', required: true,
    autocomplete: 'current-password', 'aria-describedby': 'login-help' });
  const submit = h('button', { type: 'submit', testid: 'login-submit' }, 'Sign in');
  const form = h('form', { class: 'login-form', testid: 'login-form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in to ordertrace'),
    h('p', { id: 'login-help', class: 'muted' },
      'Paste the API token you were given (support, dev, ops or a partner token). It stays in this browser tab ' +
      'until you sign out or close the tab.'),
    h('label', { for: 'login-token' }, 'Token'),
    input, error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    submit.disabled = true;
    error.hidden = true;
    setToken(token);
    try {
      const session = await apiGet('/api/v1/whoami', { quiet401: true });
      input.value = '';
      ctx.onLogin(session);
    } catch (err) {
      clearToken();
      error.textContent = err instanceof ApiError && err.status === 401
        ? 'That token is not valid here. Check it and try again.'
        : `Could not sign in: ${err.message}`;
      error.hidden = false;
      input.focus();
      input.select();
    } finally {
      submit.disabled = false;
    }
  });
  ctx.root.append(h('div', { class: 'card narrow' }, form));
  input.focus();
}
