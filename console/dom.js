// Building the page from data. Every value goes in as a text node or an attribute, never as
// markup: a name like `<script>` shows as those characters.

/** An element with attributes (`on…` ones become listeners) and children (strings become text). */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  node.append(...texts(children));
  return node;
}

/** The same for SVG, whose elements live in another namespace. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttributes(node, attributes);
  node.append(...texts(children));
  return node;
}

function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
}

function texts(children) {
  return children.flat(Infinity)
    .filter((child) => child !== null && child !== undefined && child !== false)
    .map((child) => (child instanceof Node ? child : String(child)));
}

/** Replaces what `node` holds. */
export function fill(node, ...children) {
  node.replaceChildren(...texts(children));
  return node;
}

/** An API error (or any other) as a message people read, with each field's problems. */
export function errorBox(error) {
  const fields = Object.entries(error.fields || {});
  return h('div', { class: 'error', role: 'alert' },
    h('p', {}, error.message || String(error)),
    fields.length ? h('ul', {}, fields.map(([field, problems]) =>
      h('li', {}, h('code', {}, field), ': ', [].concat(problems).join('; ')))) : null);
}

/** A success note, announced to screen readers. */
export function notice(text) {
  return h('p', { class: 'notice', role: 'status' }, text);
}

/** `2026-12-03 13:28 UTC` from an RFC 3339 time; a dash for none. */
export function when(time) {
  if (!time) return '—';
  const date = new Date(time);
  if (Number.isNaN(date.getTime())) return String(time);
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** JSON shown as text, indented. */
export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

let controls = 0;

/** A form control with its label (and a hint the control is described by). */
export function field(label, control, hint) {
  controls += 1;
  control.id ||= `control-${controls}`;
  const note = hint ? h('small', { id: `${control.id}-hint` }, hint) : null;
  if (note) control.setAttribute('aria-describedby', note.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, note);
}

/** A select of `[value, text]` options with `selected` chosen. */
export function select(attributes, options, selected) {
  return h('select', attributes, options.map(([value, text]) =>
    h('option', { value, selected: value === selected }, text)));
}

/**
 * Asks before doing something to an account, naming it: a modal dialog the keyboard can
 * drive (Escape cancels). `extra` is any control to show (a reason, say); resolves to true
 * when confirmed.
 */
export function confirmAction({ title, text, confirm, danger = false, extra = null }) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-title' });
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    const cancel = h('button', { type: 'button', onclick: () => done(false) }, 'Cancel');
    dialog.append(
      h('h2', { id: 'confirm-title' }, title),
      h('p', {}, text),
      extra,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', onclick: () => done(true) }, confirm),
        cancel));
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
    // What cannot be undone is not one Enter away.
    if (danger) cancel.focus();
  });
}

/** The heading of a page, focused on arrival so keyboard and screen reader users start there. */
export function heading(text) {
  return h('h1', { tabindex: '-1' }, text);
}

/** A value in a before/after table: text as written, anything else as JSON. */
function shown(value) {
  if (value === undefined) return '(none)';
  if (value === null || value === '') return '(empty)';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Changes as a table of `[field, before, after]` rows. */
export function diffTable(rows) {
  return h('table', { class: 'diff' },
    h('thead', {}, h('tr', {}, ['Field', 'Before', 'After'].map((title) => h('th', { scope: 'col' }, title)))),
    h('tbody', {}, rows.map(([label, before, after]) => h('tr', {},
      h('th', { scope: 'row' }, label),
      h('td', {}, h('del', {}, shown(before))),
      h('td', {}, '→ ', h('ins', {}, shown(after)))))));
}
