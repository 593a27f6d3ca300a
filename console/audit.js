// The audit log: filters kept in the address (`#/audit?user_id=…`, so an account links to
// its own events), newest first, a page at a time, each edit's changes, and Revert.

import * as api from './api.js';
import { confirmAction, diffTable, errorBox, field, fill, h, heading, json, notice, when } from './dom.js';

const PAGE_SIZE = 25;
/** The events the service records (contract §8, §10, §11), offered as suggestions. */
const EVENTS = [
  'registration', 'verification', 'login', 'login_failed', 'lockout', 'login_unlocked',
  'refresh_reuse', 'password_reset', 'password_reset_requested', 'password_change',
  'password_change_failed', 'session_revocation', 'account_created', 'account_updated',
  'email_change_requested', 'email_change_failed', 'email_changed', 'avatar_changed',
  'deletion_requested', 'deletion_failed', 'deletion_cancelled', 'account_purged',
  'account_disabled', 'account_enabled', 'account_anonymized', 'mfa_enabled', 'mfa_disabled',
  'mfa_challenge_failed', 'mfa_reset', 'recovery_code_used', 'device_trusted', 'device_revoked',
];
const FILTERS = ['user_id', 'actor_id', 'event', 'since', 'until'];

export async function auditPage(view, _, query) {
  const status = h('div', { class: 'status', 'aria-live': 'polite' });
  const list = h('div', { class: 'events' });
  const pager = h('div', { class: 'pager' });
  const inputs = {
    user_id: h('input', { name: 'user_id', value: query.get('user_id') || '', placeholder: 'account id', spellcheck: 'false' }),
    actor_id: h('input', { name: 'actor_id', value: query.get('actor_id') || '', placeholder: 'admin id', spellcheck: 'false' }),
    event: h('input', { name: 'event', value: query.get('event') || '', list: 'audit-events', autocomplete: 'off' }),
    since: h('input', { name: 'since', type: 'datetime-local', value: localInput(query.get('since')) }),
    until: h('input', { name: 'until', type: 'datetime-local', value: localInput(query.get('until')) }),
  };
  const form = h('form', { class: 'filters', role: 'search' },
    field('Account id', inputs.user_id),
    field('Actor id', inputs.actor_id),
    field('Event', inputs.event),
    h('datalist', { id: 'audit-events' }, EVENTS.map((name) => h('option', { value: name }))),
    field('From (UTC)', inputs.since),
    field('Until (UTC)', inputs.until),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Filter'),
      h('a', { href: '#/audit' }, 'Clear')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = {};
    for (const name of FILTERS) {
      const value = inputs[name].value.trim();
      values[name] = (name === 'since' || name === 'until') && value ? `${value}:00Z` : value;
    }
    location.hash = api.withQuery('#/audit', values);
  });

  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || '']));
  const cursors = [];
  let cursor = '';
  async function load() {
    try {
      const page = await api.call('GET', api.withQuery('/admin/audit', { ...filters, limit: PAGE_SIZE, cursor }));
      const accounts = await addressesOf(page.events);
      fill(list, page.events.length ? page.events.map((event) => entry(event, accounts, status, load))
        : h('p', {}, 'No event matches.'));
      fill(pager,
        h('button', { type: 'button', disabled: cursors.length === 0, onclick: () => { cursor = cursors.pop(); load(); } }, '← Newer'),
        h('span', {}, `Page ${cursors.length + 1}`),
        h('button', { type: 'button', disabled: !page.next_cursor, onclick: () => { cursors.push(cursor); cursor = page.next_cursor; load(); } }, 'Older →'));
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  view.append(heading('Audit log'), form, status, list, pager);
  await load();
}

/** A `datetime-local` value (taken as UTC) from an RFC 3339 time. */
function localInput(time) {
  const date = time ? new Date(time) : null;
  return date && !Number.isNaN(date.getTime()) ? date.toISOString().slice(0, 16) : '';
}

/** The address of each account the events name; null for one that is gone (purged). */
async function addressesOf(events) {
  const ids = [...new Set(events.flatMap((event) => [event.user_id, event.actor_id]).filter(Boolean))];
  return new Map(await Promise.all(ids.map(async (id) => {
    try {
      return [id, (await api.call('GET', `/admin/users/${id}`)).email];
    } catch (error) {
      if (error.status === 404) return [id, null];
      throw error;
    }
  })));
}

function entry(event, accounts, status, reload) {
  const who = (label, id) => {
    if (!id) return null;
    const email = accounts.get(id);
    return h('span', {}, `${label} `, email
      ? h('a', { href: `#/users/${encodeURIComponent(id)}` }, email)
      : [h('code', {}, id), ' (deleted)']);
  };
  const changes = event.changes && Object.keys(event.changes).length ? event.changes : null;
  return h('article', { class: 'event card' },
    h('header', {},
      h('strong', {}, event.event), ' ',
      h('time', { datetime: event.at }, when(event.at))),
    h('p', { class: 'meta' },
      who('account', event.user_id), ' ',
      event.actor_id && event.actor_id === event.user_id ? 'by its owner' : who('by', event.actor_id), ' ',
      event.ip ? `from ${event.ip}` : '', ' ',
      event.user_agent ? h('small', {}, event.user_agent) : null),
    Object.keys(event.details).length ? h('details', {}, h('summary', {}, 'Details'), json(event.details)) : null,
    changes ? diffTable(Object.entries(changes).map(([name, change]) => [name, change?.before, change?.after])) : null,
    changes ? h('div', { class: 'actions' }, h('button', {
      type: 'button',
      onclick: async () => {
        const confirmed = await confirmAction({
          title: 'Revert this change',
          text: `Write back the values from before this ${event.event} of ${when(event.at)} (${Object.keys(changes).join(', ')}), as a new audited change?`,
          confirm: 'Revert',
        });
        if (!confirmed) return;
        try {
          const user = await api.call('POST', `/admin/audit/${event.id}/revert`);
          await reload();
          fill(status, notice(`Reverted: ${user.email} has its earlier ${Object.keys(changes).join(', ')} again.`));
        } catch (error) {
          fill(status, errorBox(error));
        }
      },
    }, 'Revert')) : null);
}
