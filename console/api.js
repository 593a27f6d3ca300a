// The public API, as the console calls it: the signed-in admin's tokens (kept in this tab's
// sessionStorage, gone when the tab closes), refreshed before they expire, and every error
// as the API's `{error, message, fields}`.

const STORAGE_KEY = 'authgate-console';
/** Refresh this long before the access token expires, so a request never carries a dead one. */
const REFRESH_MARGIN_MS = 30_000;

/** An answer that was not a success: the API's code, message and field problems. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `The server answered ${status}.`);
    this.status = status;
    this.code = body.error || 'unknown';
    this.fields = body.fields || {};
    this.body = body;
  }
}

let session = load();
let refreshing = null;
/** Called when the session ends on its own (refresh refused, role lost). */
let onSessionEnded = () => {};

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function store(tokens) {
  session = tokens && {
    access: tokens.access,
    refresh: tokens.refresh,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  };
  if (session) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORAGE_KEY);
}

export function signedIn() {
  return session !== null;
}

export function whenSessionEnds(callback) {
  onSessionEnded = callback;
}

/** The claims of the current access token (it is verified by the API, not here). */
export function claims() {
  if (!session) return {};
  try {
    const payload = session.access.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/** One request. `body` is sent as JSON; the answer's JSON (or null) is returned. */
async function send(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, { error: 'network', message: 'The server cannot be reached. Check the connection and try again.' });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: `The server answered ${response.status} with something other than JSON.` };
  }
  if (!response.ok) throw new ApiError(response.status, data || {});
  return data;
}

/** Signs in; resolves to the tokens, or throws (403 `mfa_required` carries `mfa_token`). */
export async function login(login, password) {
  return send('POST', '/auth/login', { body: { login, password } });
}

export async function mailCode(mfaToken) {
  return send('POST', '/auth/mfa/challenge', { body: { mfa_token: mfaToken, method: 'email' } });
}

export async function verifySecondFactor(mfaToken, method, code) {
  return send('POST', '/auth/mfa/verify', { body: { mfa_token: mfaToken, method, code } });
}

/** Keeps a token pair for this tab. */
export function start(tokens) {
  store(tokens);
}

/** Ends the session at the server (the refresh token is revoked), then here. */
export async function signOut() {
  const refresh = session?.refresh;
  store(null);
  if (refresh) await send('POST', '/auth/logout', { body: { refresh } }).catch(() => {});
}

/** One refresh at a time: rotated tokens must not be presented twice. */
async function refresh() {
  if (!refreshing) {
    refreshing = send('POST', '/auth/token/refresh', { body: { refresh: session.refresh } })
      .then((tokens) => {
        store(tokens);
        if (claims().role !== 'admin') {
          throw new ApiError(403, { error: 'forbidden', message: 'This account no longer holds the admin role.' });
        }
      })
      .catch((error) => {
        store(null);
        onSessionEnded(error);
        throw error;
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** A request as the signed-in admin: refreshes first when the token is about to expire. */
export async function call(method, path, body) {
  if (!session) throw new ApiError(401, { error: 'unauthorized', message: 'Sign in first.' });
  if (Date.now() > session.expiresAt - REFRESH_MARGIN_MS) await refresh();
  try {
    return await send(method, path, { body, token: session.access });
  } catch (error) {
    // The token may have been refused for its age alone (a sleeping laptop): one retry.
    if (error.status !== 401 || !session) throw error;
    await refresh();
    return send(method, path, { body, token: session.access });
  }
}

/** `path?query` with the non-empty values of `params`. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== '' && value !== null && value !== undefined) query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
