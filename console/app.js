// The console's shell: hash routes (`#/users/ID`), so the server serves one page and the
// browser's back button still works, and the header with the signed-in admin.

import * as api from './api.js';
import { errorBox, fill, h } from './dom.js';
import { signInPage } from './sign_in.js';
import { dashboardPage } from './dashboard.js';
import { usersPage } from './users.js';
import { userPage } from './user.js';
import { auditPage } from './audit.js';

const ROUTES = [
  [/^\/$/, dashboardPage],
  [/^\/users$/, usersPage],
  [/^\/users\/([0-9a-f-]{36})$/, userPage],
  [/^\/audit$/, auditPage],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signOutButton = document.getElementById('sign-out');
/** Why the last session ended, shown on the sign-in page. */
let farewell = null;

/** The page the hash names; the sign-in page while nobody is signed in. */
async function route() {
  const hash = location.hash.slice(1) || '/';
  if (!hash.startsWith('/')) return; // an in-page link such as "skip to content"
  const [path, query = ''] = hash.split('?');
  const signedIn = api.signedIn();
  nav.hidden = !signedIn;
  signOutButton.hidden = !signedIn;
  fill(who, signedIn ? api.claims().email || '' : '');
  for (const link of nav.querySelectorAll('a')) {
    const current = link.getAttribute('href').slice(1) === path
      || (path.startsWith('/users/') && link.getAttribute('href') === '#/users');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Each visit draws into a fresh view: a page still loading when the admin moves on fills
  // a view that is no longer shown.
  const view = h('div', { class: 'view' });
  main.replaceChildren(view);
  try {
    if (!signedIn) {
      signInPage(view, { farewell, onSignedIn: () => { farewell = null; route(); } });
    } else {
      const match = ROUTES.map(([pattern, page]) => [path.match(pattern), page])
        .find(([found]) => found);
      if (!match) throw new Error('There is no such page in the console.');
      await match[1](view, match[0].slice(1), new URLSearchParams(query));
    }
  } catch (error) {
    view.append(errorBox(error));
  }
  if (signedIn && view.isConnected) view.querySelector('h1')?.focus();
}

api.whenSessionEnds((error) => {
  farewell = error.status === 403 ? error.message : 'Your session ended. Sign in again.';
  route();
});

signOutButton.addEventListener('click', async () => {
  await api.signOut();
  farewell = 'You are signed out.';
  location.hash = '#/';
  route();
});

window.addEventListener('hashchange', route);
route();
