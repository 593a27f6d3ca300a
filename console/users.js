// The accounts: search as you type, filters, sort, and pages that follow each other by
// cursor. The filters outlive a visit to an account, so "back" finds the list as it was.

import * as api from './api.js';
import { errorBox, field, fill, h, heading, select, when } from './dom.js';

const PAGE_SIZE = 25;
/** Wait this long after the last keystroke before searching. */
const TYPING_PAUSE_MS = 250;

const ANY = ['', 'Any'];
const filters = { q: '', role: '', status: '', verified: '', mfa: '', sort: '-created_at' };
/** The cursors of the pages before this one (the first page has none). */
let cursors = [];
let cursor = '';

export async function usersPage(view) {
  const roles = Object.keys((await api.call('GET', '/admin/stats')).users.by_role);
  const total = h('p', { class: 'total', 'aria-live': 'polite' });
  const body = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div');

  const search = h('input', { type: 'search', name: 'q', value: filters.q, placeholder: 'email, username or name', autocomplete: 'off' });
  const controls = {
    role: select({ name: 'role' }, [ANY, ...roles.map((role) => [role, role])], filters.role),
    status: select({ name: 'status' }, [ANY, ['active', 'Active'], ['disabled', 'Disabled'], ['pending_deletion', 'Pending deletion']], filters.status),
    verified: select({ name: 'verified' }, [ANY, ['true', 'Verified'], ['false', 'Not verified']], filters.verified),
    mfa: select({ name: 'mfa' }, [ANY, ['true', 'On'], ['false', 'Off']], filters.mfa),
    sort: select({ name: 'sort' }, [
      ['-created_at', 'Newest first'], ['created_at', 'Oldest first'],
      ['email', 'Email'], ['-last_login_at', 'Last sign-in'],
    ], filters.sort),
  };

  /** Answers can overtake each other while the admin types: only the latest is shown. */
  let latest = 0;
  async function load() {
    latest += 1;
    const mine = latest;
    try {
      const page = await api.call('GET', api.withQuery('/admin/users', { ...filters, limit: PAGE_SIZE, cursor }));
      if (mine !== latest) return;
      fill(status);
      fill(total, `${page.total} ${page.total === 1 ? 'account' : 'accounts'}`);
      fill(body, page.users.length ? page.users.map(row)
        : h('tr', {}, h('td', { colspan: 7 }, 'No account matches.')));
      fill(pager,
        h('button', { type: 'button', disabled: cursors.length === 0, onclick: () => { cursor = cursors.pop(); load(); } }, '← Previous'),
        h('span', {}, `Page ${cursors.length + 1}`),
        h('button', { type: 'button', disabled: !page.next_cursor, onclick: () => { cursors.push(cursor); cursor = page.next_cursor; load(); } }, 'Next →'));
    } catch (error) {
      if (mine === latest) fill(status, errorBox(error));
    }
  }

  /** A change of filters starts from the first page. */
  function refilter() {
    filters.q = search.value.trim();
    for (const [name, control] of Object.entries(controls)) filters[name] = control.value;
    cursors = [];
    cursor = '';
    load();
  }

  let typing = null;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(refilter, TYPING_PAUSE_MS);
  });
  for (const control of Object.values(controls)) control.addEventListener('change', refilter);

  view.append(
    heading('Users'),
    h('form', { class: 'filters', role: 'search', onsubmit: (event) => { event.preventDefault(); refilter(); } },
      field('Search', search),
      field('Role', controls.role),
      field('Status', controls.status),
      field('Address', controls.verified),
      field('Two-factor', controls.mfa),
      field('Sort', controls.sort)),
    status,
    total,
    h('div', { class: 'scroll' },
      h('table', { class: 'rows accounts' },
        h('thead', {}, h('tr', {}, ['Email', 'Name', 'Role', 'Status', 'Verified', 'Two-factor', 'Created']
          .map((title) => h('th', { scope: 'col' }, title)))),
        body)),
    pager);
  await load();
}

/** One account; the whole row opens it, the address is the link keyboards reach. */
function row(user) {
  const link = `#/users/${encodeURIComponent(user.id)}`;
  const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
  return h('tr', { class: 'link-row', onclick: (event) => { if (event.target.tagName !== 'A') location.hash = link; } },
    h('td', {}, h('a', { href: link }, user.email), user.username ? h('small', { class: 'sub' }, `@${user.username}`) : null),
    h('td', {}, name || '—'),
    h('td', {}, user.role),
    h('td', {}, h('span', { class: `badge ${user.status}` }, user.status.replace('_', ' '))),
    h('td', {}, user.is_verified ? 'yes' : 'no'),
    h('td', {}, user.mfa.enabled ? user.mfa.methods.join(', ') : 'off'),
    h('td', {}, when(user.created_at)));
}
