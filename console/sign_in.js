// Signing in: the password, then the second factor when the account has one. Only accounts
// holding `admin` get in; anyone else is told so, and the session their password opened is
// ended at once.

import * as api from './api.js';
import { errorBox, field, fill, h, notice, select } from './dom.js';

const METHOD_NAMES = {
  totp: 'Authenticator app',
  email: 'Code by mail',
  recovery_code: 'Recovery code',
};

/** Draws the sign-in form into `view`; `onSignedIn` runs once an admin is in. */
export function signInPage(view, { farewell, onSignedIn }) {
  const status = h('div', { class: 'status', 'aria-live': 'polite' });
  const loginInput = h('input', { name: 'login', autocomplete: 'username', required: true });
  const passwordInput = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    h('p', {}, 'The console is for accounts holding the admin role.'),
    field('Email or username', loginInput),
    field('Password', passwordInput),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
    status);
  if (farewell) status.append(notice(farewell));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    fill(status, notice('Signing in…'));
    try {
      await admit(await api.login(loginInput.value.trim(), passwordInput.value), status, onSignedIn);
    } catch (error) {
      if (error.code === 'mfa_required' && error.body.mfa_token) {
        secondStep(view, error.body, onSignedIn);
      } else {
        fill(status, errorBox(error));
      }
    }
  });
  fill(view, form);
  loginInput.focus();
}

/** The second step: a code from one of the account's methods. */
function secondStep(view, { mfa_token: mfaToken, methods }, onSignedIn) {
  const status = h('div', { class: 'status', 'aria-live': 'polite' });
  const method = select({ name: 'method' }, methods.map((name) => [name, METHOD_NAMES[name] || name]), methods[0]);
  const code = h('input', { name: 'code', autocomplete: 'one-time-code', required: true, spellcheck: 'false' });
  const mailButton = h('button', { type: 'button' }, 'Mail me a code');
  const showMailButton = () => { mailButton.hidden = method.value !== 'email'; };
  method.addEventListener('change', showMailButton);
  showMailButton();
  mailButton.addEventListener('click', async () => {
    try {
      await api.mailCode(mfaToken);
      fill(status, notice('A code is on its way to the account’s address.'));
    } catch (error) {
      fill(status, errorBox(error));
    }
  });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'second-step-title' },
    h('h1', { id: 'second-step-title' }, 'Second factor'),
    h('p', {}, 'This account has two-factor sign-in. Enter a code to finish.'),
    field('Method', method),
    field('Code', code, 'Six digits from the app or the mail, or a recovery code (xxxxx-xxxxx).'),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Verify'), mailButton,
      h('a', { href: '#/', onclick: () => signInPage(view, { onSignedIn }) }, 'Start over')),
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    fill(status, notice('Checking the code…'));
    try {
      await admit(await api.verifySecondFactor(mfaToken, method.value, code.value.trim()), status, onSignedIn);
    } catch (error) {
      fill(status, errorBox(error));
    }
  });
  fill(view, form);
  code.focus();
}

/** Lets the holder of these tokens in when the account holds `admin`; else ends the session. */
async function admit(tokens, status, onSignedIn) {
  api.start(tokens);
  let me;
  try {
    me = await api.call('GET', '/auth/me');
  } catch (error) {
    await api.signOut();
    throw error;
  }
  if (me.role !== 'admin') {
    await api.signOut();
    fill(status, errorBox({
      message: `${me.email} is not an administrator: the console is only for accounts holding the admin role.`,
    }));
    return;
  }
  onSignedIn();
}
