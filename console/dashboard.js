// The front page: the figures of `GET /admin/stats` and sign-ups per day as a bar chart.

import * as api from './api.js';
import { h, heading, svg } from './dom.js';

/** Drawn at the width it is shown at, so its text keeps its size on a phone and on a desk. */
const CHART = { height: 200, top: 20, bottom: 26, side: 24, labelSpacing: 56 };

export async function dashboardPage(view) {
  const stats = await api.call('GET', '/admin/stats');
  const { users } = stats;
  view.append(
    heading('Dashboard'),
    h('section', { 'aria-labelledby': 'accounts-title' },
      h('h2', { id: 'accounts-title' }, 'Accounts'),
      figures([
        ['Total', users.total, '#/users'],
        ['Verified', users.verified],
        ['Disabled', users.disabled],
        ['Pending deletion', users.pending_deletion],
        ['Two-factor on', users.mfa_enabled],
        ...Object.entries(users.by_role).map(([role, count]) => [`Role ${role}`, count]),
      ])),
    h('section', { 'aria-labelledby': 'activity-title' },
      h('h2', { id: 'activity-title' }, 'Activity'),
      figures([
        ['Sign-ins, 24 h', stats.logins_24h.succeeded],
        ['Failed sign-ins, 24 h', stats.logins_24h.failed],
        ['Active sessions', stats.active_sessions],
        ['Online now', stats.online_now],
      ])),
    h('section', { 'aria-labelledby': 'signups-title' },
      h('h2', { id: 'signups-title' }, 'Sign-ups, last 30 days'),
      chart(stats.signups_by_day, view.clientWidth),
      h('details', {},
        h('summary', {}, 'As a table'),
        h('table', {},
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'), h('th', { scope: 'col' }, 'Sign-ups'))),
          h('tbody', {}, stats.signups_by_day.map(({ date, count }) =>
            h('tr', {}, h('td', {}, date), h('td', { class: 'number' }, count))))))));
}

function figures(items) {
  return h('dl', { class: 'figures' }, items.map(([label, value, link]) =>
    h('div', { class: 'figure' },
      h('dt', {}, label),
      h('dd', {}, link ? h('a', { href: link }, value) : value))));
}

/** One bar per day, drawn with SVG elements (no library, nothing inline for CSP to refuse). */
function chart(days, shownWidth) {
  const width = Math.max(280, shownWidth || 720);
  const most = Math.max(1, ...days.map((day) => day.count));
  const slot = (width - 2 * CHART.side) / days.length;
  const labelEvery = Math.ceil(CHART.labelSpacing / slot);
  const plot = CHART.height - CHART.top - CHART.bottom;
  const total = days.reduce((sum, day) => sum + day.count, 0);
  const picture = svg('svg', {
    class: 'chart', viewBox: `0 0 ${width} ${CHART.height}`, role: 'img',
    'aria-label': `${total} sign-ups in the last ${days.length} days; at most ${most} in one day`,
  });
  days.forEach(({ date, count }, index) => {
    const height = (count / most) * plot;
    const x = CHART.side + index * slot;
    picture.append(svg('rect', {
      class: 'bar', x: x + slot * 0.15, width: slot * 0.7,
      y: CHART.top + plot - height, height: Math.max(height, count ? 1 : 0),
    }, svg('title', {}, `${date}: ${count}`)));
    if (count) {
      picture.append(svg('text', { class: 'count', x: x + slot / 2, y: CHART.top + plot - height - 3 }, count));
    }
    if ((days.length - 1 - index) % labelEvery === 0) {
      picture.append(svg('text', { class: 'day', x: x + slot / 2, y: CHART.height - 6 }, date.slice(5)));
    }
  });
  picture.append(svg('line', { class: 'axis', x1: CHART.side, x2: width - CHART.side, y1: CHART.top + plot, y2: CHART.top + plot }));
  return picture;
}
