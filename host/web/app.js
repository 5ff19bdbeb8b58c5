'use strict';

// The Connectors page: sign in, see every connector by category, connect one
// through its generated form or an OAuth popup, read validation reports, and
// re-validate or disconnect connections. Everything goes through the JSON API, and
// server data reaches the page only as text nodes.

const CATEGORIES = [
  ['cloud', 'Cloud'],
  ['communication', 'Communication'],
  ['documentation', 'Documentation'],
  ['observability', 'Observability'],
  ['orchestration', 'Orchestration'],
];

// Card badges, worst first: a card shows the worst status among its connections.
const BADGES = {
  needs_reauth: 'Needs reauth',
  degraded: 'Degraded',
  connected: 'Connected',
  not_connected: 'Not connected',
  not_configured: 'Not configured',
  not_enabled: 'Not enabled',
};

const CONNECTION_BADGES = {
  active: 'connected',
  degraded: 'degraded',
  failed: 'needs_reauth',
  needs_reauth: 'needs_reauth',
};

const CHECK_OUTCOMES = {
  ok: { icon: '✓', text: 'Passed' },
  failed: { icon: '✗', text: 'Failed' },
  error: { icon: '!', text: 'Error' },
  skipped: { icon: '–', text: 'Skipped' },
};

// What the toggle of a connect form says, by the form's way of connecting, when
// the connector also offers OAuth.
const FORM_KINDS = {
  api_key: 'an API key',
  pat: 'a personal access token',
  basic: 'a user name and password',
  assume_role: 'a role',
  service_principal: 'a service principal',
  service_account_key: 'a service account key',
};

// What the OAuth callback's error kinds mean to a person.
const OAUTH_ERRORS = {
  auth_failed: 'the authorization was refused or its credentials failed validation',
  permission_denied: 'access was denied',
  invalid_input: 'the sign-in expired or was already used',
  unavailable: 'the provider could not be reached',
  unsupported: 'OAuth is not enabled for it',
};

// Words spelled as acronyms in labels made from field names (`api_key` → "API key").
const ACRONYMS = { api: 'API', url: 'URL', arn: 'ARN', id: 'ID', json: 'JSON', http: 'HTTP' };

const OAUTH_POPUP_FEATURES = 'popup,width=600,height=720';
// How often the page looks whether the OAuth popup was closed.
const POPUP_POLL_MS = 500;
// The callback page posts its result just before closing; a message may land just
// after the poll sees the window closed.
const POPUP_MESSAGE_GRACE_MS = 1500;
const COPIED_FEEDBACK_MS = 2000;

const state = {
  session: null,
  connectors: [],
  connections: [],
  cards: new Map(),
  oauth: null,
};

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// ---- DOM helpers -----------------------------------------------------------

const byId = (id) => document.getElementById(id);

// Creates an element: `class`, `text`, `on<event>` handlers and attributes from
// `props` (true becomes an empty attribute, null/false/undefined are skipped).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// Text with `backticked` spans shown as code, as the descriptors write them.
function richText(text) {
  return String(text)
    .split('`')
    .map((part, index) => (index % 2 === 1 ? el('code', { text: part }) : document.createTextNode(part)));
}

// Server messages as sentences: a capital first letter and a closing period.
function sentence(text) {
  const trimmed = String(text).trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?)]$/.test(capital) ? capital : `${capital}.`;
}

function plainText(text) {
  return String(text).replaceAll('`', '');
}

function formatTime(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : dateFormat.format(date);
}

function timeElement(value) {
  return el('time', { datetime: value, text: formatTime(value) });
}

function setBusy(button, busy, busyText) {
  if (busy) {
    button.dataset.idleText = button.textContent;
    button.textContent = busyText;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
  } else {
    button.textContent = button.dataset.idleText ?? button.textContent;
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---- The API -----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `Patchbay answered HTTP ${status}`);
    this.status = status;
    this.kind = error.kind ?? null;
    this.hint = error.hint ?? null;
    this.field = error.field ?? null;
    this.report = body?.report ?? null;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  // Cookie sessions refuse changes without this header, which other sites' pages cannot send.
  if (method !== 'GET' && method !== 'HEAD') headers['X-Requested-With'] = 'patchbay';
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, {
      error: { message: 'Patchbay could not be reached', hint: 'check the network connection, then try again' },
    });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && path !== '/api/session' && state.session) sessionEnded(error);
    throw error;
  }
  return data;
}

// ---- Notices -------------------------------------------------------------------

function notify(message, { error = false, hint = null } = {}) {
  const notice = byId('notice');
  notice.replaceChildren(el('p', { class: 'notice-message' }, richText(sentence(message))));
  if (hint) notice.append(el('p', { class: 'notice-hint' }, richText(sentence(hint))));
  notice.classList.toggle('is-error', error);
}

function notifyError(error) {
  notify(error.message, { error: true, hint: error.hint });
}

function clearNotice() {
  byId('notice').replaceChildren();
}

// An error shown inside a card or form: message, then hint.
function errorBlock(error, testid) {
  return el(
    'div',
    { class: 'error-block', role: 'alert', 'data-testid': testid },
    el('p', { class: 'error-message' }, richText(sentence(error.message))),
    error.hint ? el('p', { class: 'error-hint' }, richText(sentence(error.hint))) : null,
  );
}

// ---- Session -------------------------------------------------------------------

async function start() {
  byId('sign-in-form').addEventListener('submit', signIn);
  byId('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', applyRoute);
  window.addEventListener('message', oauthMessage);
  let session;
  try {
    session = await api('GET', '/api/session');
  } catch (error) {
    byId('starting').hidden = true;
    if (error.status === 401) showSignIn();
    else notifyError(error);
    return;
  }
  byId('starting').hidden = true;
  await enter(session);
}

function showSignIn() {
  state.session = null;
  byId('account').hidden = true;
  byId('connectors-view').hidden = true;
  byId('categories').replaceChildren();
  state.cards.clear();
  byId('sign-in-view').hidden = false;
  byId('api-key').focus();
}

function sessionEnded(error) {
  showSignIn();
  notify(`Your session has ended: ${error.message}`, { error: true, hint: error.hint });
}

async function signIn(event) {
  event.preventDefault();
  const input = byId('api-key');
  const message = byId('api-key-error');
  const button = event.currentTarget.querySelector('button[type="submit"]');
  setFieldError(input, message, null);
  const key = input.value.trim();
  if (!key) {
    setFieldError(input, message, { message: 'Enter your API key.' });
    input.focus();
    return;
  }
  setBusy(button, true, 'Signing in…');
  try {
    const session = await api('POST', '/api/session', { api_key: key });
    clearNotice();
    await enter(session);
  } catch (error) {
    setFieldError(input, message, error);
    input.focus();
  } finally {
    input.value = '';
    setBusy(button, false);
  }
}

async function signOut() {
  const button = byId('sign-out');
  setBusy(button, true, 'Signing out…');
  try {
    await api('DELETE', '/api/session');
    stopWatchingPopup();
    showSignIn();
    notify('Signed out.');
  } catch (error) {
    notifyError(error);
  } finally {
    setBusy(button, false);
  }
}

function linkConnector() {
  return state.session?.via === 'connect_link' ? state.session.connector : null;
}

async function enter(session) {
  state.session = session;
  byId('sign-in-view').hidden = true;
  const who = [session.user_id, session.org_id].filter(Boolean).join(' · ');
  byId('account').querySelector('.who').textContent = who;
  byId('account').hidden = false;
  byId('connectors-view').hidden = false;
  byId('categories').replaceChildren();
  state.cards.clear();
  await loadCatalogue();
  if (!routedConnector()) byId('connectors-title').focus();
}

async function loadCatalogue() {
  const status = byId('catalogue-status');
  status.replaceChildren(el('p', { class: 'loading', text: 'Loading connectors…' }));
  let catalogue;
  let listed;
  try {
    [catalogue, listed] = await Promise.all([api('GET', '/api/connectors'), api('GET', '/api/connections')]);
  } catch (error) {
    if (error.status === 401) return;
    status.replaceChildren(
      errorBlock(error, 'catalogue-error'),
      el('button', { type: 'button', onclick: loadCatalogue }, 'Try again'),
    );
    return;
  }
  status.replaceChildren();
  state.connectors = catalogue.connectors;
  state.connections = listed.connections;
  renderIntro();
  renderCatalogue();
  applyRoute();
}

function renderIntro() {
  const intro = byId('connectors-intro');
  const only = linkConnector();
  if (!only) {
    intro.textContent =
      'Connect the tools your incidents touch. Each connection is validated check by check; credentials are stored encrypted and never shown again.';
    return;
  }
  const name = state.connectors.find((connector) => connector.id === only)?.display_name ?? only;
  intro.replaceChildren(`This link lets ${state.session.user_id} connect ${name}.`);
  if (state.session.expires_at) {
    intro.append(' It works until ', timeElement(state.session.expires_at), '.');
  }
}

async function reloadConnections() {
  const listed = await api('GET', '/api/connections');
  state.connections = listed.connections;
  for (const card of state.cards.values()) refreshCard(card);
}

// ---- Routes ----------------------------------------------------------------------

// `#/` shows every card; `#/connect/<connector>` opens that connector's form.
function routedConnector() {
  const match = /^#\/connect\/([^/]+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

// A click opens or closes its form before the handler returns: the route is pushed
// without waiting for `hashchange`, which the browser fires only on a later task.
// Back and Forward still fire `hashchange`, which applies the route they restore.
function navigate(connector) {
  const hash = connector ? `#/connect/${encodeURIComponent(connector)}` : '#/';
  if (location.hash !== hash) history.pushState(null, '', hash);
  applyRoute();
}

function applyRoute() {
  if (!state.session || state.cards.size === 0) return;
  const wanted = routedConnector();
  for (const card of state.cards.values()) setPanelOpen(card, card.descriptor.id === wanted);
  if (!wanted) return;
  const card = state.cards.get(wanted);
  if (!card) {
    notify(`There is no connector named ${wanted} here.`, { error: true });
    return;
  }
  card.root.scrollIntoView({ block: 'start' });
  const target = card.panel && !card.panel.hidden ? card.panel.querySelector('input, select, textarea') : card.oauthButton;
  (target ?? card.heading).focus({ preventScroll: true });
}

// ---- Cards -------------------------------------------------------------------------

function renderCatalogue() {
  const root = byId('categories');
  root.replaceChildren();
  state.cards.clear();
  const only = linkConnector();
  const visible = state.connectors.filter((connector) => !only || connector.id === only);
  const known = new Map(CATEGORIES);
  const extra = [...new Set(visible.map((connector) => connector.category))].filter((category) => !known.has(category));
  const headings = [...CATEGORIES, ...extra.map((category) => [category, humanize(category)])];
  for (const [category, heading] of headings) {
    const members = visible.filter((connector) => connector.category === category);
    if (members.length === 0) continue;
    const headingId = `category-${category}`;
    const cards = members.map((descriptor) => {
      const card = buildCard(descriptor);
      state.cards.set(descriptor.id, card);
      refreshCard(card);
      return card.root;
    });
    root.append(
      el(
        'section',
        { class: 'category', 'aria-labelledby': headingId, 'data-testid': headingId },
        el('h2', { id: headingId, text: heading }),
        el('div', { class: 'cards' }, cards),
      ),
    );
  }
}

function canConnect(descriptor) {
  return descriptor.enabled && descriptor.configured;
}

function hasForm(descriptor) {
  return descriptor.auth_kinds.some((kind) => kind !== 'oauth2');
}

function oauthOffered(descriptor) {
  if (!descriptor.oauth || !descriptor.auth_kinds.includes('oauth2')) return false;
  // A connector with one OAuth client per region needs at least one configured.
  return !descriptor.oauth_regions || descriptor.oauth_regions.configured.length > 0;
}

function formToggleText(descriptor) {
  if (descriptor.auth_kinds.includes('agent_token')) return 'Add Cluster';
  if (!oauthOffered(descriptor)) return 'Connect';
  const kind = descriptor.auth_kinds.find((candidate) => FORM_KINDS[candidate]);
  return kind ? `Connect with ${FORM_KINDS[kind]}` : 'Connect with a form';
}

function buildCard(descriptor) {
  const id = descriptor.id;
  const headingId = `card-title-${id}`;
  const card = {
    descriptor,
    heading: el('h3', { id: headingId, tabindex: '-1', text: descriptor.display_name }),
    badge: el('span', { class: 'badge', 'data-testid': `status-${id}` }),
    note: el('p', { class: 'card-note', 'data-testid': `note-${id}`, hidden: true }),
    list: el('ul', { class: 'connections', 'aria-label': `${descriptor.display_name} connections`, 'data-testid': `connections-${id}` }),
    result: el('div', { class: 'result', 'data-testid': `result-${id}` }),
    toggle: null,
    panel: null,
    form: null,
    oauthButton: null,
  };
  const actions = el('div', { class: 'card-actions' });
  if (canConnect(descriptor)) {
    if (oauthOffered(descriptor)) {
      card.oauthButton = el('button', {
        type: 'button',
        class: 'primary',
        'data-testid': `oauth-${id}`,
        text: `Connect with ${descriptor.display_name}`,
        onclick: () => startOAuth(card),
      });
      actions.append(card.oauthButton);
    }
    if (hasForm(descriptor)) {
      const panelId = `connect-panel-${id}`;
      card.toggle = el('button', {
        type: 'button',
        class: card.oauthButton ? 'secondary' : 'primary',
        'aria-expanded': 'false',
        'aria-controls': panelId,
        'data-testid': `open-connect-${id}`,
        text: formToggleText(descriptor),
        onclick: () => navigate(card.panel.hidden ? id : null),
      });
      actions.append(card.toggle);
      card.panel = el('div', { id: panelId, class: 'connect-panel', hidden: true });
      card.form = buildConnectForm(card);
      card.panel.append(card.form);
    }
  }
  card.root = el(
    'article',
    { class: 'card', 'aria-labelledby': headingId, 'data-testid': `card-${id}` },
    el('div', { class: 'card-head' }, card.heading, card.badge),
    card.note,
    card.list,
    actions.childElementCount ? actions : null,
    card.panel,
    card.result,
  );
  return card;
}

function connectionsOf(connectorId) {
  return state.connections.filter((connection) => connection.connector === connectorId);
}

function cardStatus(descriptor, connections) {
  if (!descriptor.enabled) return 'not_enabled';
  if (connections.length > 0) {
    const badges = connections.map((connection) => CONNECTION_BADGES[connection.status] ?? 'needs_reauth');
    return Object.keys(BADGES).find((badge) => badges.includes(badge));
  }
  return descriptor.configured ? 'not_connected' : 'not_configured';
}

function refreshCard(card) {
  const { descriptor } = card;
  const connections = connectionsOf(descriptor.id);
  const status = cardStatus(descriptor, connections);
  card.badge.textContent = BADGES[status];
  card.badge.dataset.status = status;
  card.note.replaceChildren();
  card.note.hidden = true;
  if (!descriptor.enabled && descriptor.feature_flag) {
    card.note.append('Set ', el('code', { text: `${descriptor.feature_flag}=true` }), ' and restart Patchbay to enable it.');
    card.note.hidden = false;
  } else if (descriptor.enabled && !descriptor.configured) {
    const required = descriptor.env_vars.filter((variable) => variable.required).map((variable) => variable.name);
    card.note.append('Needs server settings: set ');
    required.forEach((name, index) => {
      if (index > 0) card.note.append(index === required.length - 1 ? ' and ' : ', ');
      card.note.append(el('code', { text: name }));
    });
    card.note.append(', then restart Patchbay.');
    card.note.hidden = false;
  }
  card.list.replaceChildren(...connections.map((connection) => connectionItem(card, connection)));
  card.list.hidden = connections.length === 0;
}

function connectionItem(card, connection) {
  const badge = CONNECTION_BADGES[connection.status] ?? 'needs_reauth';
  const meta = el('p', { class: 'connection-meta' });
  if (connection.validated_at) meta.append('Last validated ', timeElement(connection.validated_at));
  else meta.append('Not validated yet');
  if (connection.agent?.state) meta.append(` · Agent ${connection.agent.state}`);
  const revalidate = el('button', {
    type: 'button',
    'aria-label': `Re-validate ${connection.label}`,
    'data-testid': `revalidate-${connection.id}`,
    text: 'Re-validate',
  });
  revalidate.addEventListener('click', () => revalidateConnection(card, connection, revalidate));
  const actions = el('div', { class: 'connection-actions' }, revalidate);
  // A connect link's session may only connect: it offers no disconnect.
  if (!linkConnector()) {
    const disconnect = el('button', {
      type: 'button',
      class: 'danger-outline',
      'aria-label': `Disconnect ${connection.label}`,
      'data-testid': `disconnect-${connection.id}`,
      text: 'Disconnect',
    });
    disconnect.addEventListener('click', () => disconnectConnection(card, connection, disconnect));
    actions.append(disconnect);
  }
  return el(
    'li',
    { class: 'connection', 'data-testid': `connection-${connection.id}`, 'data-connection-label': connection.label },
    el(
      'div',
      { class: 'connection-head' },
      el('span', { class: 'connection-label', text: connection.label }),
      el('span', { class: 'badge small', 'data-status': badge, 'data-testid': `connection-status-${connection.id}`, text: BADGES[badge] }),
    ),
    meta,
    actions,
  );
}

// Replaces what the card shows below its form; focuses the result's heading so
// keyboard and screen reader users land on it.
function showResult(card, title, ...content) {
  const heading = el('h4', { tabindex: '-1', text: title });
  const dismiss = el('button', { type: 'button', class: 'link-button', text: 'Dismiss' });
  const block = el('section', { class: 'result-block', 'data-testid': 'result' }, el('div', { class: 'result-head' }, heading, dismiss), content);
  dismiss.addEventListener('click', () => {
    card.result.replaceChildren();
    card.heading.focus();
  });
  card.result.replaceChildren(block);
  heading.focus();
}

// ---- Connect forms ------------------------------------------------------------------

function humanize(name) {
  const words = name.split(/[_\s-]+/).filter(Boolean);
  return words
    .map((word, index) => {
      const lower = word.toLowerCase();
      if (ACRONYMS[lower]) return ACRONYMS[lower];
      return index === 0 ? lower.charAt(0).toUpperCase() + lower.slice(1) : lower;
    })
    .join(' ');
}

// Resolves `$ref` into `$defs`, and `anyOf: [X, null]` (an optional X) into X.
function resolveSchema(schema, root) {
  let current = schema;
  for (let depth = 0; depth < 8 && current; depth += 1) {
    if (current.$ref?.startsWith('#/$defs/')) {
      const target = root.$defs?.[current.$ref.slice('#/$defs/'.length)];
      current = { ...target, ...current, $ref: undefined };
    } else if (Array.isArray(current.anyOf)) {
      const options = current.anyOf.filter((option) => option.type !== 'null');
      if (options.length !== 1) break;
      current = { ...options[0], ...current, anyOf: undefined };
    } else {
      break;
    }
  }
  return current;
}

function schemaType(schema) {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.find((type) => type && type !== 'null') ?? 'string';
}

// The allowed values of an enumeration: `enum`, or `oneOf` constants with descriptions.
function choicesOf(schema) {
  if (Array.isArray(schema.enum)) return schema.enum.filter((value) => value !== null).map((value) => ({ value, text: String(value) }));
  if (Array.isArray(schema.oneOf) && schema.oneOf.every((option) => 'const' in option)) {
    return schema.oneOf.map((option) => ({
      value: option.const,
      text: option.description ? `${option.const} — ${plainText(option.description)}` : String(option.const),
    }));
  }
  return null;
}

// One input for a schema property: what to build, how to read it back, how to
// tell the person it is wrong.
function buildField(connectorId, name, rawSchema, root, required) {
  const schema = resolveSchema(rawSchema, root);
  const id = `${connectorId}-field-${name}`;
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const type = schemaType(schema);
  const choices = choicesOf(schema);
  const secret = schema.writeOnly === true;
  const described = [schema.description ? helpId : null, errorId].filter(Boolean).join(' ');
  const common = { id, name, 'aria-describedby': described, required, 'aria-required': required ? 'true' : null, 'data-testid': `field-${connectorId}-${name}` };
  let input;
  if (choices) {
    input = el('select', common);
    if (!required || schema.default === undefined) input.append(el('option', { value: '', text: required ? 'Choose…' : 'Default' }));
    for (const choice of choices) {
      input.append(el('option', { value: String(choice.value), text: choice.text, selected: choice.value === schema.default }));
    }
  } else if (type === 'boolean') {
    input = el('input', { ...common, type: 'checkbox', checked: schema.default === true });
  } else if (type === 'integer' || type === 'number') {
    input = el('input', {
      ...common,
      type: 'number',
      inputmode: type === 'integer' ? 'numeric' : 'decimal',
      step: type === 'integer' ? '1' : 'any',
      min: schema.minimum,
      max: schema.maximum,
      value: typeof schema.default === 'number' ? schema.default : null,
    });
  } else {
    input = el('input', {
      ...common,
      type: secret ? 'password' : 'text',
      autocomplete: 'off',
      spellcheck: 'false',
      value: !secret && typeof schema.default === 'string' ? schema.default : null,
    });
  }
  const label = el('label', { for: id, text: schema.title && schema.title !== name ? schema.title : humanize(name) });
  if (!required && type !== 'boolean') label.append(el('span', { class: 'optional', text: ' (optional)' }));
  const help = schema.description ? el('p', { id: helpId, class: 'help' }, richText(schema.description)) : null;
  const error = el('p', { id: errorId, class: 'field-error', hidden: true });
  const wrapper =
    type === 'boolean' && !choices
      ? el('div', { class: 'field field-check' }, el('div', { class: 'check-row' }, input, label), help, error)
      : el('div', { class: 'field' }, label, input, help, error);
  return {
    name,
    input,
    error,
    wrapper,
    required,
    secret,
    label: label.firstChild.textContent,
    isEmpty: () => type !== 'boolean' && input.value.trim() === '',
    // The field's JSON value, or undefined to leave it out (the server's default).
    read() {
      if (type === 'boolean' && !choices) return input.checked;
      const text = secret ? input.value : input.value.trim();
      if (text === '') return undefined;
      if (choices) return choices.find((choice) => String(choice.value) === text)?.value ?? text;
      if (type === 'integer' || type === 'number') return Number(text);
      if (type === 'array') return text.split(',').map((item) => item.trim()).filter(Boolean);
      return text;
    },
  };
}

function setFieldError(input, message, error) {
  if (!error) {
    message.replaceChildren();
    message.hidden = true;
    input.removeAttribute('aria-invalid');
    return;
  }
  message.replaceChildren(el('span', { class: 'error-message' }, richText(sentence(error.message))));
  if (error.hint) message.append(el('span', { class: 'error-hint' }, richText(sentence(error.hint))));
  message.hidden = false;
  input.setAttribute('aria-invalid', 'true');
}

function buildConnectForm(card) {
  const { descriptor } = card;
  const id = descriptor.id;
  const schema = descriptor.connect_schema ?? {};
  const required = new Set(schema.required ?? []);
  const properties = Object.entries(schema.properties ?? {});
  // Required fields first, each group in the schema's order.
  properties.sort(([a], [b]) => Number(required.has(b)) - Number(required.has(a)));
  const fields = properties.map(([name, property]) => buildField(id, name, property, schema, required.has(name)));
  const labelField = buildField(id, 'connection_label', { type: 'string', title: 'Label', description: `A name for this connection, e.g. prod. Defaults to ${descriptor.display_name}.` }, schema, false);
  const writesField = buildField(
    id,
    'allow_writes',
    { type: 'boolean', title: 'Allow write operations', description: 'Leave off to allow only read operations through this connection.' },
    schema,
    false,
  );
  const formError = el('div', { class: 'form-error', 'data-testid': `form-error-${id}` });
  const submit = el('button', { type: 'submit', class: 'primary', 'data-testid': `submit-${id}`, text: descriptor.auth_kinds.includes('agent_token') ? 'Add Cluster' : `Connect ${descriptor.display_name}` });
  const cancel = el('button', { type: 'button', text: 'Cancel', onclick: () => closePanel(card) });
  const onboarding = descriptor.auth_kinds.includes('assume_role') ? el('div', { class: 'onboarding', 'data-testid': `onboarding-${id}` }) : null;
  const form = el(
    'form',
    { class: 'connect-form', novalidate: true, 'aria-label': `Connect ${descriptor.display_name}`, 'data-testid': `connect-form-${id}` },
    onboarding,
    labelField.wrapper,
    fields.map((field) => field.wrapper),
    writesField.wrapper,
    formError,
    el('div', { class: 'actions' }, submit, cancel),
  );
  card.fields = fields;
  card.labelField = labelField;
  card.writesField = writesField;
  card.formError = formError;
  card.onboarding = onboarding;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitConnect(card, submit);
  });
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      closePanel(card);
    }
  });
  return form;
}

function setPanelOpen(card, open) {
  if (!card.panel || card.panel.hidden === !open) return;
  card.panel.hidden = !open;
  card.toggle.setAttribute('aria-expanded', String(open));
  card.toggle.classList.toggle('is-open', open);
  if (open && card.onboarding && !card.onboarding.dataset.loaded) loadOnboarding(card);
}

function closePanel(card) {
  navigate(null);
  card.toggle.focus();
}

// AWS: the account to trust, the ExternalId and the trust policy, before the role ARN.
async function loadOnboarding(card) {
  const box = card.onboarding;
  box.replaceChildren(el('p', { class: 'loading', text: 'Loading what to set up first…' }));
  let answer;
  try {
    answer = await api('GET', `/api/connectors/${encodeURIComponent(card.descriptor.id)}/onboarding`);
  } catch (error) {
    box.replaceChildren(errorBlock(error, `onboarding-error-${card.descriptor.id}`));
    return;
  }
  box.dataset.loaded = 'true';
  const rows = Object.entries(answer.onboarding ?? {}).map(([name, value]) =>
    typeof value === 'string' || typeof value === 'number'
      ? valueRow(humanize(name), String(value), `onboarding-${name}`)
      : preBlock(humanize(name), JSON.stringify(value, null, 2), `onboarding-${name}`),
  );
  box.replaceChildren(
    el('h4', { text: 'Before you connect' }),
    el('p', { text: 'Create the role in your account with these values, then enter its ARN below.' }),
    ...rows,
  );
}

function clearFormErrors(card) {
  for (const field of [card.labelField, ...card.fields]) setFieldError(field.input, field.error, null);
  card.formError.replaceChildren();
}

function clearSecrets(card) {
  for (const field of card.fields) if (field.secret) field.input.value = '';
}

async function submitConnect(card, submit) {
  const { descriptor } = card;
  clearFormErrors(card);
  const missing = card.fields.filter((field) => field.required && field.isEmpty());
  if (missing.length > 0) {
    for (const field of missing) setFieldError(field.input, field.error, { message: `${field.label} is required.` });
    missing[0].input.focus();
    return;
  }
  const fields = {};
  for (const field of card.fields) {
    const value = field.read();
    if (value !== undefined) fields[field.name] = value;
  }
  const body = { connector: descriptor.id, fields, allow_writes: card.writesField.read() };
  const label = card.labelField.read();
  if (label) body.label = label;
  setBusy(submit, true, 'Connecting…');
  try {
    const answer = await api('POST', '/api/connections', body);
    card.form.reset();
    navigate(null);
    showConnected(card, answer);
    await reloadConnections();
  } catch (error) {
    connectFailed(card, error);
  } finally {
    clearSecrets(card);
    setBusy(submit, false);
  }
}

function connectFailed(card, error) {
  const { descriptor } = card;
  if (error.status === 401) return;
  if (error.report) {
    showResult(card, `${descriptor.display_name} was not connected`, el('p', {}, richText(sentence(error.message))), reportView(error.report));
    notify(`${descriptor.display_name} was not connected: the validation failed.`, { error: true });
    return;
  }
  const field = [card.labelField, ...card.fields].find((candidate) => candidate.name === error.field);
  if (field) {
    setFieldError(field.input, field.error, error);
    field.input.focus();
  } else {
    card.formError.replaceChildren(errorBlock(error, `connect-error-${descriptor.id}`));
  }
  notify(`${descriptor.display_name} was not connected: ${error.message}`, { error: true });
}

// ---- Results --------------------------------------------------------------------------

function reportSummary(report) {
  const total = report.checks.length;
  const passed = report.checks.filter((check) => check.outcome === 'ok').length;
  if (report.overall === 'ok') return total === 1 ? 'The check passed.' : `All ${total} checks passed.`;
  const prefix = report.overall === 'degraded' ? 'Usable, with warnings' : 'Validation failed';
  return `${prefix}: ${passed} of ${total} checks passed.`;
}

function reportView(report) {
  const rows = report.checks.map((check) => {
    const outcome = CHECK_OUTCOMES[check.outcome] ?? CHECK_OUTCOMES.error;
    const passed = check.outcome === 'ok';
    return el(
      'li',
      { class: `check check-${check.outcome}`, 'data-outcome': check.outcome, 'data-testid': `check-${check.id}` },
      el('span', { class: 'check-icon', 'aria-hidden': 'true', text: outcome.icon }),
      el(
        'div',
        { class: 'check-body' },
        el('p', { class: 'check-title' }, el('strong', { class: 'check-outcome', text: `${outcome.text}:` }), ' ', richText(check.description)),
        check.detail ? el('p', { class: passed ? 'check-detail' : 'check-hint' }, richText(check.detail)) : null,
      ),
    );
  });
  return el(
    'div',
    { class: 'report', 'data-overall': report.overall, 'data-testid': 'report' },
    el('p', { class: 'report-summary' }, reportSummary(report), report.validated_at ? [' Validated ', timeElement(report.validated_at), '.'] : null),
    el('ul', { class: 'checks' }, rows),
  );
}

// A value with its Copy button; the button says "Copied" for a moment.
function copyButton(what, value, testid) {
  const button = el('button', { type: 'button', class: 'copy', 'aria-label': `Copy ${what}`, 'data-testid': testid, text: 'Copy' });
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      notify(`Could not copy the ${what}: select it and copy it by hand.`, { error: true });
      return;
    }
    button.textContent = 'Copied';
    notify(`Copied the ${what}.`);
    setTimeout(() => {
      button.textContent = 'Copy';
    }, COPIED_FEEDBACK_MS);
  });
  return button;
}

function valueRow(label, value, testid) {
  return el(
    'div',
    { class: 'value-row' },
    el('span', { class: 'value-label', text: label }),
    el('code', { class: 'value', 'data-testid': testid, text: value }),
    copyButton(label, value, `copy-${testid}`),
  );
}

function preBlock(label, text, testid) {
  return el(
    'div',
    { class: 'pre-block' },
    el('div', { class: 'pre-head' }, el('span', { class: 'value-label', text: label }), copyButton(label, text, `copy-${testid}`)),
    el('pre', { 'data-testid': testid, tabindex: '0' }, el('code', { text })),
  );
}

function webhookView(descriptor, webhook) {
  const credential = webhook.token ? 'token' : webhook.secret ? 'secret' : null;
  const block = el('section', { class: 'secret-block', 'data-testid': 'webhook' }, el('h5', { text: 'Webhook' }));
  if (credential) {
    block.append(el('p', { class: 'once', 'data-testid': 'shown-once' }, `Copy the ${credential} now: it is shown only this once and will not be shown again.`));
  }
  block.append(valueRow('Webhook URL', webhook.url, 'webhook-url'));
  if (webhook.header) block.append(valueRow('Header', webhook.header, 'webhook-header'));
  if (webhook.token) block.append(valueRow('Token', webhook.token, 'webhook-token'));
  if (webhook.secret) block.append(valueRow('Secret', webhook.secret, 'webhook-secret'));
  if (webhook.note) block.append(el('p', { class: 'help' }, richText(sentence(webhook.note))));
  const setup = webhook.setup;
  if (setup) {
    const settings = (setup.fields ?? [])
      .filter((field) => typeof field.value === 'string')
      .map((field) => el('li', {}, el('span', { class: 'value-label', text: field.name }), el('code', { class: 'value', text: field.value }), copyButton(field.name, field.value, null)));
    block.append(
      el('h6', {}, `In ${descriptor.display_name}: `, richText(setup.location ?? '')),
      el('ul', { class: 'setup-fields' }, settings),
      setup.steps?.length ? el('ol', { class: 'setup-steps' }, setup.steps.map((step) => el('li', {}, richText(step)))) : null,
    );
  }
  return block;
}

function agentView(agent) {
  const install = agent.install ?? {};
  return el(
    'section',
    { class: 'secret-block', 'data-testid': 'agent-install' },
    el('h5', { text: 'Install the agent in the cluster' }),
    el('p', { class: 'once', 'data-testid': 'shown-once' }, 'Save the token and values.yaml now: they are shown only this once and will not be shown again.'),
    valueRow('Agent token', agent.token, 'agent-token'),
    agent.expires_at ? el('p', { class: 'help' }, 'The token stops working on ', timeElement(agent.expires_at), '.') : null,
    preBlock('values.yaml', agent.values_yaml, 'values-yaml'),
    install.helm_install ? preBlock('Install command', install.helm_install, 'helm-install') : null,
    install.verify ? preBlock('Check the agent', install.verify, 'agent-verify') : null,
  );
}

function showConnected(card, answer) {
  const { descriptor } = card;
  const { connection, report } = answer;
  showResult(
    card,
    `${descriptor.display_name} connected as “${connection.label}”`,
    reportView(report),
    answer.webhook ? webhookView(descriptor, answer.webhook) : null,
    answer.agent ? agentView(answer.agent) : null,
  );
  notify(`${descriptor.display_name} connected as ${connection.label}. ${reportSummary(report)}`);
}

async function revalidateConnection(card, connection, button) {
  setBusy(button, true, 'Validating…');
  try {
    const answer = await api('POST', `/api/connections/${encodeURIComponent(connection.id)}/validate`);
    await reloadConnections();
    showResult(card, `Re-validated “${connection.label}”`, reportView(answer.report));
    notify(`Re-validated ${connection.label}. ${reportSummary(answer.report)}`);
  } catch (error) {
    if (error.status === 401) return;
    showResult(card, `Could not re-validate “${connection.label}”`, errorBlock(error, 'revalidate-error'));
    notifyError(error);
  } finally {
    if (button.isConnected) setBusy(button, false);
  }
}

// Asks with the native modal dialog (focus trapped, Escape cancels); true to go on.
function confirmDisconnect(card, connection) {
  const dialog = byId('disconnect-dialog');
  const cluster = card.descriptor.auth_kinds.includes('agent_token');
  byId('disconnect-title').textContent = `Disconnect “${connection.label}”?`;
  byId('disconnect-detail').textContent = cluster
    ? 'Patchbay revokes the cluster’s agent token, closes its connection and forgets the cluster. This cannot be undone.'
    : `Patchbay deletes the stored ${card.descriptor.display_name} credentials of this connection; queries and alerts through it stop. This cannot be undone.`;
  dialog.returnValue = '';
  dialog.showModal();
  byId('disconnect-cancel').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
  });
}

function revokeNote(descriptor, revoke) {
  if (revoke === 'revoked') return el('p', { text: `${descriptor.display_name} revoked the grant as well.` });
  if (revoke && typeof revoke === 'object' && revoke.failed) {
    return el('p', { class: 'warning' }, `${descriptor.display_name} did not confirm revoking the grant (`, richText(revoke.failed), '): revoke it in its settings.');
  }
  return null;
}

async function disconnectConnection(card, connection, button) {
  if (!(await confirmDisconnect(card, connection))) {
    button.focus();
    return;
  }
  setBusy(button, true, 'Disconnecting…');
  try {
    const answer = await api('DELETE', `/api/connections/${encodeURIComponent(connection.id)}`);
    await reloadConnections();
    const uninstall = answer.agent?.helm_uninstall;
    showResult(
      card,
      `Disconnected “${connection.label}”`,
      el('p', { text: 'Its stored credentials were deleted.' }),
      revokeNote(card.descriptor, answer.revoke),
      uninstall
        ? el(
            'section',
            { class: 'secret-block', 'data-testid': 'agent-uninstall' },
            el('p', { text: 'The agent token is revoked. Remove the agent from the cluster with:' }),
            preBlock('Uninstall command', uninstall, 'helm-uninstall'),
          )
        : null,
    );
    notify(`Disconnected ${connection.label}.`);
  } catch (error) {
    if (error.status === 401) return;
    if (button.isConnected) setBusy(button, false);
    showResult(card, `Could not disconnect “${connection.label}”`, errorBlock(error, 'disconnect-error'));
    notifyError(error);
  }
}

// ---- OAuth popup ------------------------------------------------------------------------

// Start options (a region, a subscription) are read from the open form's fields
// of the same name, with the form's label.
function oauthStartBody(card) {
  const body = {};
  const open = card.panel && !card.panel.hidden;
  if (!open) return body;
  const label = card.labelField.read();
  if (label) body.label = label;
  const options = {};
  for (const name of card.descriptor.oauth.start_options ?? []) {
    const value = card.fields.find((field) => field.name === name)?.read();
    if (value !== undefined) options[name] = value;
  }
  if (Object.keys(options).length > 0) body.options = options;
  return body;
}

async function startOAuth(card) {
  const { descriptor } = card;
  const button = card.oauthButton;
  stopWatchingPopup();
  setBusy(button, true, 'Starting…');
  let started;
  try {
    started = await api('POST', `/api/connections/oauth/${encodeURIComponent(descriptor.id)}/start`, oauthStartBody(card));
  } catch (error) {
    if (error.status !== 401) {
      showResult(card, `Could not start connecting ${descriptor.display_name}`, errorBlock(error, 'oauth-error'));
      notifyError(error);
    }
    return;
  } finally {
    setBusy(button, false);
  }
  const popup = window.open(started.begin_url, 'patchbay-oauth', OAUTH_POPUP_FEATURES);
  if (popup) {
    watchPopup(card, popup);
    return;
  }
  // Blocked: a link the person opens themselves still reports back to this page.
  const link = el('a', { href: started.begin_url, target: 'patchbay-oauth', rel: 'opener', 'data-testid': 'oauth-link', text: `Open the ${descriptor.display_name} sign-in` });
  link.addEventListener('click', (event) => {
    const opened = window.open(started.begin_url, 'patchbay-oauth', OAUTH_POPUP_FEATURES);
    if (opened) {
      event.preventDefault();
      watchPopup(card, opened);
    }
  });
  showResult(card, 'The sign-in window was blocked', el('p', {}, 'The browser blocked the popup. ', link, ' to continue; it works once.'));
}

function watchPopup(card, popup) {
  const watch = { card, popup, timer: null, grace: null };
  watch.timer = setInterval(() => {
    if (!popup.closed) return;
    clearInterval(watch.timer);
    watch.grace = setTimeout(() => {
      if (state.oauth !== watch) return;
      state.oauth = null;
      const name = card.descriptor.display_name;
      showResult(card, `${name} was not connected`, el('p', { text: `The sign-in window was closed before ${name} was connected. Start again when you are ready.` }));
      notify(`The ${name} sign-in window was closed before it finished.`, { error: true });
    }, POPUP_MESSAGE_GRACE_MS);
  }, POPUP_POLL_MS);
  state.oauth = watch;
  notify(`Finish connecting ${card.descriptor.display_name} in the window that opened.`);
}

function stopWatchingPopup() {
  if (!state.oauth) return;
  clearInterval(state.oauth.timer);
  clearTimeout(state.oauth.grace);
  state.oauth = null;
}

async function oauthMessage(event) {
  const data = event.data;
  if (event.origin !== location.origin || !data || typeof data !== 'object' || data.source !== 'patchbay') return;
  stopWatchingPopup();
  if (!state.session) return;
  const card = state.cards.get(data.connector);
  const name = card?.descriptor.display_name ?? data.connector;
  if (data.status !== 'connected') {
    const reason = OAUTH_ERRORS[data.error] ?? 'the sign-in did not finish';
    const message = `${name} was not connected: ${reason} (${data.error}).`;
    if (card) showResult(card, `${name} was not connected`, errorBlock({ message, hint: 'Try again, or use another way to connect.' }, 'oauth-error'));
    notify(message, { error: true });
    return;
  }
  try {
    await reloadConnections();
  } catch (error) {
    if (error.status !== 401) notifyError(error);
    return;
  }
  const connection = state.connections.find((candidate) => candidate.id === data.connection_id);
  if (!card || !connection) {
    notify(`${name} connected.`);
    return;
  }
  showResult(card, `${name} connected as “${connection.label}”`, connection.last_report ? reportView(connection.last_report) : null);
  notify(`${name} connected as ${connection.label}.${connection.last_report ? ` ${reportSummary(connection.last_report)}` : ''}`);
}

start();
