// One account: every field, an edit form that shows each change before it is saved, the
// actions of the admin API (each confirmed by name), the sessions, and the picture.

import * as api from './api.js';
import { confirmAction, diffTable, errorBox, field, fill, h, heading, json, notice, select, when } from './dom.js';

/** What an action answers when it took the admin elsewhere (the account is gone). */
const LEFT = Symbol('left the page');

export async function userPage(view, [id]) {
  const [user, sessions, stats] = await Promise.all([
    api.call('GET', `/admin/users/${id}`),
    api.call('GET', `/admin/users/${id}/sessions`),
    api.call('GET', '/admin/stats'),
  ]);
  const roles = Object.keys(stats.users.by_role);
  const status = h('div', { class: 'status', 'aria-live': 'polite' });
  /** Runs an action, then draws the account afresh with `done` as the message. */
  const act = async (request, done) => {
    try {
      if (await request() === LEFT) return;
    } catch (error) {
      fill(status, errorBox(error));
      return;
    }
    fill(view);
    try {
      await userPage(view, [id]);
      view.querySelector('.status').append(notice(done));
      view.querySelector('h1').focus();
    } catch (error) {
      view.append(notice(done), errorBox(error));
    }
  };
  view.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/users' }, '← Users'), ' · ',
      h('a', { href: `#/audit?user_id=${encodeURIComponent(user.id)}` }, 'Audit events of this account')),
    h('div', { class: 'account-head' }, picture(user), h('div', {},
      heading(displayName(user)),
      h('p', {}, h('span', { class: `badge ${user.status}` }, user.status.replace('_', ' ')), ' ',
        user.email, user.username ? ` · @${user.username}` : ''))),
    status,
    facts(user),
    editForm(user, roles, act),
    actions(user, act),
    sessionList(user, sessions, act));
}

function displayName(user) {
  return [user.first_name, user.last_name].filter(Boolean).join(' ') || user.email;
}

/** How confirmations name an account: its address, and its name when it has one. */
function accountName(user) {
  const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
  return name ? `${user.email} (${name})` : user.email;
}

/**
 * The picture. The service's own pictures load from this origin; a URL the owner set
 * elsewhere is shown as text, since the console's policy loads images from its origin only.
 */
function picture(user) {
  const url = user.profile.avatar_url;
  let own = null;
  try {
    const parsed = url && new URL(url, location.origin);
    if (parsed && parsed.pathname.startsWith('/avatars/')) own = parsed.pathname + parsed.search;
  } catch { /* not a URL: shown as text below */ }
  if (own) return h('img', { class: 'avatar', src: own, alt: `Picture of ${user.email}`, width: 96, height: 96 });
  const initials = (user.first_name[0] || user.email[0] || '?') + (user.last_name[0] || '');
  return h('div', { class: 'avatar placeholder', title: url ? `Picture elsewhere: ${url}` : 'No picture' },
    h('span', { 'aria-hidden': 'true' }, initials.toUpperCase()),
    h('span', { class: 'visually-hidden' }, url ? `Picture at ${url}, not loaded here` : 'No picture'));
}

function facts(user) {
  const rows = [
    ['ID', h('code', {}, user.id)],
    ['Email', user.email],
    ['Username', user.username ?? '—'],
    ['First name', user.first_name || '—'],
    ['Last name', user.last_name || '—'],
    ['Phone', user.phone_number ?? '—'],
    ['Role', user.role],
    ['Status', user.status],
    ['Address verified', user.is_verified ? 'yes' : 'no'],
    ['Active', user.is_active ? 'yes' : 'no'],
    ['Two-factor', user.mfa.enabled ? user.mfa.methods.join(', ') : 'off'],
    ['Profile complete', user.profile_complete ? 'yes' : 'no'],
    ['Bio', user.profile.bio || '—'],
    ['Date of birth', user.profile.date_of_birth ?? '—'],
    ['Picture URL', user.profile.avatar_url ?? '—'],
    ['Created', when(user.created_at)],
    ['Updated', when(user.updated_at)],
    ['Last sign-in', when(user.last_login_at)],
    ['Last seen', when(user.last_seen_at)],
    ['Deletion scheduled for', when(user.deletion_scheduled_for)],
    ['Live sessions', user.sessions],
    ['Locked out until', when(user.locked_until)],
    ['Failed sign-ins (current window)', user.failed_logins],
    ['Metadata', json(user.metadata)],
    ['App metadata', json(user.app_metadata)],
  ];
  return h('section', { 'aria-labelledby': 'facts-title' },
    h('h2', { id: 'facts-title' }, 'Account'),
    h('dl', { class: 'facts' }, rows.map(([label, value]) => h('div', {}, h('dt', {}, label), h('dd', {}, value)))));
}

/** The editable fields: label, how to read the current value, the control, how to read it back. */
function editableFields(user, roles) {
  const text = (name, value, attributes = {}) => h('input', { name, value: value ?? '', ...attributes });
  const orNull = (value) => (value.trim() === '' ? null : value.trim());
  const roleOptions = roles.includes(user.role) ? roles : [...roles, user.role];
  return [
    { key: 'email', label: 'Email', before: user.email, control: text('email', user.email, { type: 'email', required: true }), read: (v) => v.trim() },
    { key: 'username', label: 'Username', before: user.username, control: text('username', user.username), read: orNull },
    { key: 'first_name', label: 'First name', before: user.first_name, control: text('first_name', user.first_name), read: (v) => v.trim() },
    { key: 'last_name', label: 'Last name', before: user.last_name, control: text('last_name', user.last_name), read: (v) => v.trim() },
    { key: 'phone_number', label: 'Phone', before: user.phone_number, control: text('phone_number', user.phone_number, { type: 'tel' }), read: orNull },
    { key: 'role', label: 'Role', before: user.role, control: select({ name: 'role' }, roleOptions.map((role) => [role, role]), user.role), read: (v) => v },
    { key: 'is_verified', label: 'Address verified', before: user.is_verified, control: select({ name: 'is_verified' }, [['true', 'yes'], ['false', 'no']], String(user.is_verified)), read: (v) => v === 'true' },
    { key: 'profile.bio', label: 'Bio', before: user.profile.bio, control: h('textarea', { name: 'bio', rows: 2 }, user.profile.bio), read: (v) => v },
    { key: 'profile.date_of_birth', label: 'Date of birth', before: user.profile.date_of_birth, control: text('date_of_birth', user.profile.date_of_birth, { type: 'date' }), read: orNull },
    { key: 'metadata', label: 'Metadata (JSON)', before: user.metadata, control: h('textarea', { name: 'metadata', rows: 4, class: 'code', spellcheck: 'false' }, JSON.stringify(user.metadata, null, 2)), read: readObject('Metadata') },
    { key: 'app_metadata', label: 'App metadata (JSON)', before: user.app_metadata, control: h('textarea', { name: 'app_metadata', rows: 4, class: 'code', spellcheck: 'false' }, JSON.stringify(user.app_metadata, null, 2)), read: readObject('App metadata') },
  ];
}

function readObject(label) {
  return (text) => {
    let value;
    try {
      value = JSON.parse(text || '{}');
    } catch {
      throw new Error(`${label} is not valid JSON.`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${label} must be a JSON object.`);
    return value;
  };
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The changes the form holds, as shown (one line per field or metadata key) and as sent:
 * metadata merges key by key, so a key taken out is sent as `null`.
 */
function changesOf(fields) {
  const lines = [];
  const body = {};
  for (const { key, label, before, control, read } of fields) {
    const after = read(control.value);
    if (same(before, after)) continue;
    if (key === 'metadata' || key === 'app_metadata') {
      const patch = {};
      for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
        if (same(before[name], after[name])) continue;
        patch[name] = name in after ? after[name] : null;
        lines.push([`${label.replace(' (JSON)', '')}: ${name}`, before[name], after[name]]);
      }
      body[key] = patch;
    } else if (key.startsWith('profile.')) {
      body.profile = { ...body.profile, [key.slice(8)]: after };
      lines.push([label, before, after]);
    } else {
      body[key] = after;
      lines.push([label, before, after]);
    }
  }
  return { lines, body };
}

function editForm(user, roles, act) {
  const fields = editableFields(user, roles);
  const review = h('div', { class: 'review', 'aria-live': 'polite' });
  const form = h('form', { class: 'card edit', 'aria-labelledby': 'edit-title' },
    h('h2', { id: 'edit-title' }, 'Edit'),
    h('div', { class: 'grid' }, fields.map(({ label, control }) => field(label, control))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Review changes')),
    review);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    let changes;
    try {
      changes = changesOf(fields);
    } catch (error) {
      fill(review, errorBox(error));
      return;
    }
    if (!changes.lines.length) {
      fill(review, notice('Nothing changed.'));
      return;
    }
    const save = h('button', { type: 'button', class: 'primary' }, 'Save');
    save.addEventListener('click', () => act(
      () => api.call('PATCH', `/admin/users/${user.id}`, changes.body),
      `Saved: ${changes.lines.map(([label]) => label).join(', ')}.`));
    fill(review,
      h('h3', {}, `Changes to ${accountName(user)}`),
      diffTable(changes.lines),
      h('div', { class: 'actions' }, save,
        h('button', { type: 'button', onclick: () => fill(review) }, 'Keep editing')));
    save.focus();
  });
  return form;
}

/** Every action of the admin API on one account, each asking first. */
function actions(user, act) {
  const name = accountName(user);
  const path = `/admin/users/${user.id}`;
  const button = (label, { title, text, confirm = label, danger = false, extra = null, request, done }) =>
    h('button', {
      type: 'button', class: danger ? 'danger' : null,
      onclick: async () => {
        if (await confirmAction({ title, text, confirm, danger, extra })) act(request, done);
      },
    }, label);
  const reason = h('input', { name: 'reason', maxlength: 500 });
  const disabled = user.status === 'disabled';
  return h('section', { class: 'card', 'aria-labelledby': 'actions-title' },
    h('h2', { id: 'actions-title' }, 'Actions'),
    h('div', { class: 'action-list' },
      disabled
        ? button('Enable', {
          title: 'Enable account', text: `Enable ${name}? They can sign in again.`,
          request: () => api.call('POST', `${path}/enable`), done: 'Enabled.',
        })
        : button('Disable', {
          title: 'Disable account', text: `Disable ${name}? Their sessions end and they cannot sign in.`,
          danger: true, extra: field('Reason (optional, kept in the audit log)', reason),
          request: () => api.call('POST', `${path}/disable`, reason.value.trim() ? { reason: reason.value.trim() } : {}),
          done: 'Disabled; every session ended.',
        }),
      user.profile.avatar_url ? button('Remove picture', {
        title: 'Remove the picture', text: `Remove the picture of ${name}?`,
        danger: true, request: () => api.call('PATCH', path, { profile: { avatar_url: null } }),
        done: 'Picture removed.',
      }) : null,
      button('Sign out everywhere', {
        title: 'Sign out everywhere', text: `End every session of ${name}?`,
        request: () => api.call('POST', `${path}/logout`), done: 'Every session ended.',
      }),
      button('Unlock', {
        title: 'Lift the login lockout', text: `Forget the failed sign-ins of ${name}?`,
        request: () => api.call('POST', `${path}/unlock`), done: 'The lockout is lifted.',
      }),
      button('Send password reset', {
        title: 'Send a password reset code', text: `Mail a password reset code to ${name}?`,
        request: () => api.call('POST', `${path}/password-reset`), done: 'A reset code is on its way.',
      }),
      button('Reset two-factor', {
        title: 'Reset two-factor sign-in', text: `Remove every second factor, recovery code and trusted device of ${name}? They are told by mail.`,
        danger: true, request: () => api.call('POST', `${path}/mfa/reset`), done: 'Second factors removed.',
      }),
      button('Schedule deletion', {
        title: 'Schedule deletion', text: `Schedule ${name} for deletion after the grace period? They are signed out and can restore the account until then.`,
        danger: true, request: () => api.call('DELETE', `${path}?grace=true`), done: 'Deletion scheduled.',
      }),
      button('Delete now', {
        title: 'Delete now', text: `Delete ${name} now, for good? This cannot be undone.`,
        danger: true, request: async () => {
          await api.call('DELETE', path);
          location.hash = '#/users';
          return LEFT;
        },
        done: 'Deleted.',
      }),
      button('Anonymise', {
        title: 'Anonymise account', text: `Anonymise ${name}? The id stays; the address, names, username, metadata, profile and picture are erased, and the account is disabled. This cannot be undone.`,
        danger: true, request: () => api.call('POST', `${path}/anonymize`), done: 'Anonymised.',
      })));
}

function sessionList(user, sessions, act) {
  const name = accountName(user);
  return h('section', { 'aria-labelledby': 'sessions-title' },
    h('h2', { id: 'sessions-title' }, `Sessions (${sessions.length})`),
    sessions.length === 0 ? h('p', {}, 'No live session.') : h('div', { class: 'scroll' },
      h('table', { class: 'rows sessions' },
        h('thead', {}, h('tr', {}, ['Started', 'Last used', 'Expires', 'Device', 'IP', '']
          .map((title) => h('th', { scope: 'col' }, title)))),
        h('tbody', {}, sessions.map((session) => h('tr', {},
          h('td', {}, when(session.created_at)),
          h('td', {}, when(session.last_used_at)),
          h('td', {}, when(session.expires_at)),
          h('td', {}, session.user_agent || '—'),
          h('td', {}, session.ip || '—'),
          h('td', {}, h('button', {
            type: 'button',
            'aria-label': `Revoke the session started ${when(session.created_at)}`,
            onclick: async () => {
              const confirmed = await confirmAction({
                title: 'Revoke session',
                text: `End the session of ${name} started ${when(session.created_at)} (${session.user_agent || 'unknown device'})?`,
                confirm: 'Revoke', danger: true,
              });
              if (confirmed) act(() => api.call('DELETE', `/admin/users/${user.id}/sessions/${session.id}`), 'Session revoked.');
            },
          }, 'Revoke'))))))));
}
