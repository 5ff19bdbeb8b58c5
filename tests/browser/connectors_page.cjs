'use strict';

// Drives the Connectors page in Debian's headless Chromium: sign in, connect
// Datadog with its form, GitHub through the OAuth popup, add and remove a
// Kubernetes cluster, disconnect, the narrow layout, sign out, and a one-time
// connect link. Fails on any assertion, page error, console error or CSP
// violation. Run by tests/tests/connectors_page_end_to_end.rs (see README.md).

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

// Each action and wait gives up after this long; a whole step after STEP_LIMIT_MS.
const ACTION_TIMEOUT_MS = 15_000;
const STEP_LIMIT_MS = 60_000;
const POLL_MS = 100;

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const CATEGORY_HEADINGS = ['Cloud', 'Communication', 'Documentation', 'Observability', 'Orchestration'];

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`connectors page: ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

const config = {
  url: required('PATCHBAY_URL').replace(/\/$/, ''),
  apiKey: required('PATCHBAY_API_KEY'),
  connectLink: required('PATCHBAY_CONNECT_LINK'),
  datadogApiKey: required('DATADOG_API_KEY'),
  datadogAppKey: required('DATADOG_APP_KEY'),
  githubOrigin: required('GITHUB_AUTHORIZE_ORIGIN').replace(/\/$/, ''),
  githubFake: required('GITHUB_FAKE_URL').replace(/\/$/, ''),
  chromium: required('CHROMIUM_PATH'),
  screenshots: required('SCREENSHOT_DIR'),
};
const origin = new URL(config.url).origin;
const DATADOG_SITE = 'datadoghq.com';

// Secrets the script handles; every message it prints goes through redact().
const secrets = [
  config.apiKey,
  config.connectLink,
  new URL(config.connectLink).pathname.split('/').pop(),
  config.datadogApiKey,
  config.datadogAppKey,
];

function redact(text) {
  let safe = String(text);
  for (const secret of secrets) if (secret) safe = safe.split(secret).join('[secret]');
  // Random tokens the page shows once (webhook and agent tokens): long runs mixing
  // lower case letters and digits.
  return safe.replace(/(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{32,}/g, '[token]');
}

// ---- Failures the page reports by itself -------------------------------------

const problems = [];
// `${status} ${pathname}` of the error answers the page is expected to get; Chromium
// logs each as a "Failed to load resource" console error.
const expectedFailures = new Set();
const watchedPages = new WeakSet();

function expectFailure(status, pathname) {
  expectedFailures.add(`${status} ${pathname}`);
}

function watch(page, name) {
  if (watchedPages.has(page)) return;
  watchedPages.add(page);
  page.on('pageerror', (error) => problems.push(`${name}: uncaught ${error.name}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    const failed = /^Failed to load resource: the server responded with a status of (\d{3})/.exec(text);
    if (failed) {
      const where = message.location().url;
      const pathname = where ? new URL(where).pathname : '';
      if (expectedFailures.has(`${failed[1]} ${pathname}`)) return;
    }
    const kind = text.includes('Content Security Policy') ? 'CSP violation' : 'console error';
    problems.push(`${name}: ${kind}: ${text}`);
  });
}

// ---- Assertions ------------------------------------------------------------

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls until `check()` returns a truthy value; fails with `describe()` after the timeout.
async function eventually(check, describe) {
  const deadline = Date.now() + ACTION_TIMEOUT_MS;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(await describe());
    await sleep(POLL_MS);
  }
}

async function textOf(locator) {
  return ((await locator.textContent({ timeout: ACTION_TIMEOUT_MS })) ?? '').trim();
}

async function expectText(locator, pattern, what) {
  let seen = '';
  await eventually(
    async () => {
      seen = ((await locator.textContent({ timeout: POLL_MS * 5 })) ?? '').trim();
      return pattern.test(seen);
    },
    () => `${what}: expected ${pattern}, the page shows ${JSON.stringify(redact(seen.slice(0, 200)))}`,
  );
  return seen;
}

async function expectStatus(page, connector, status) {
  await expectText(page.getByTestId(`status-${connector}`), new RegExp(`^${status}$`), `${connector}'s card status`);
}

async function activeTestId(page) {
  return page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.id ?? '');
}

// ---- Screenshots -------------------------------------------------------------

let shots = 0;

async function screenshot(page, name, fullPage = false) {
  shots += 1;
  const file = path.join(config.screenshots, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage });
}

// ---- Browser -----------------------------------------------------------------

async function newContext(browser, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
  const page = await context.newPage();
  watch(page, name);
  context.on('page', (popup) => watch(popup, `${name} popup`));
  return { context, page };
}

// The browser cannot reach GitHub: its authorize page is answered by the fake,
// whose redirect back to Patchbay's callback the popup then follows.
async function routeGitHubToFake(context) {
  await context.route(`${config.githubOrigin}/**`, async (route) => {
    const requested = new URL(route.request().url());
    const rewritten = `${config.githubFake}${requested.pathname}${requested.search}`;
    const response = await route.fetch({ url: rewritten, maxRedirects: 0 });
    await route.fulfill({ response });
  });
}

async function fillDatadogForm(form, apiKey, label) {
  await form.getByLabel('Label').fill(label);
  await form.getByLabel('API key', { exact: true }).fill(apiKey);
  await form.getByLabel('App key', { exact: true }).fill(config.datadogAppKey);
  await form.getByLabel(/^Site/).fill(DATADOG_SITE);
}

async function secretInputsAreEmpty(form) {
  return form.locator('input[type="password"]').evaluateAll((inputs) => inputs.length > 0 && inputs.every((input) => input.value === ''));
}

async function expectPassingReport(card) {
  const report = card.getByTestId('report');
  await eventually(async () => (await report.getAttribute('data-overall')) === 'ok', async () => `the report is ${await report.getAttribute('data-overall').catch(() => 'missing')}, not ok`);
  const outcomes = await report.locator('li').evaluateAll((rows) => rows.map((row) => row.dataset.outcome));
  assert(outcomes.length > 0 && outcomes.every((outcome) => outcome === 'ok'), `the report's lines are ${outcomes.join(', ')}, not all ok`);
}

// ---- Steps ---------------------------------------------------------------------

async function signIn({ page }) {
  expectFailure(401, '/api/session');
  await page.goto(`${config.url}/`);
  const field = page.getByLabel('API key', { exact: true });
  await field.waitFor();
  assert((await field.getAttribute('type')) === 'password', 'the API key field is not a password field');
  await screenshot(page, 'sign-in');

  await field.fill('pbk_not-a-key-the-page-test-knows');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const error = page.getByTestId('api-key-error');
  await expectText(error, /\S/, 'the error for a wrong key');
  const describedBy = (await field.getAttribute('aria-describedby')) ?? '';
  assert(describedBy.split(' ').includes(await error.getAttribute('id')), 'the wrong key error is not tied to the API key field');
  assert((await field.getAttribute('aria-invalid')) === 'true', 'the API key field is not marked invalid');
  assert((await field.inputValue()) === '', 'the wrong key stayed in the field');
  await screenshot(page, 'wrong-key');

  // Keyboard only: the field has focus after the error; type and press Enter.
  await eventually(async () => (await activeTestId(page)) === 'api-key', () => 'the API key field does not have focus after the error');
  await page.keyboard.type(config.apiKey);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Connectors' }).waitFor();
  await expectText(page.getByTestId('session-user'), /alice/, 'the signed-in user');
  await expectStatus(page, 'datadog', 'Not connected');
  await screenshot(page, 'connectors', true);
}

async function catalogue({ page }) {
  for (const name of CATEGORY_HEADINGS) {
    const count = await page.getByRole('heading', { level: 2, name, exact: true }).count();
    assert(count === 1, `${count} "${name}" category headings`);
  }
  await expectStatus(page, 'datadog', 'Not connected');
  await expectStatus(page, 'slack', 'Not enabled');
  await expectText(page.getByTestId('card-slack'), /NEXT_PUBLIC_ENABLE_SLACK/, "Slack's card");
}

async function connectDatadog({ page }) {
  const card = page.getByTestId('card-datadog');
  const toggle = card.getByTestId('open-connect-datadog');
  await toggle.click();
  assert((await toggle.getAttribute('aria-expanded')) === 'true', "the Datadog form's button is not expanded");
  assert(new URL(page.url()).hash === '#/connect/datadog', 'opening the Datadog form did not route to it');
  // The form is a route: Back closes it and Forward opens it again.
  await page.goBack();
  await eventually(async () => (await toggle.getAttribute('aria-expanded')) === 'false', () => 'Back did not close the Datadog form');
  await page.goForward();
  await eventually(async () => (await toggle.getAttribute('aria-expanded')) === 'true', () => 'Forward did not open the Datadog form again');
  const form = page.getByTestId('connect-form-datadog');
  await form.waitFor();
  for (const label of ['API key', 'App key']) {
    const input = form.getByLabel(label, { exact: true });
    assert((await input.getAttribute('type')) === 'password', `${label} is not a password field`);
    assert((await input.getAttribute('autocomplete')) === 'off', `${label} may be autocompleted`);
  }

  expectFailure(422, '/api/connections');
  await fillDatadogForm(form, 'wrong-datadog-api-key-for-the-page', 'prod');
  await form.getByRole('button', { name: 'Connect Datadog' }).click();
  const failedLine = card.locator('[data-testid="report"] li[data-outcome="failed"]').first();
  await failedLine.waitFor();
  await expectText(failedLine.locator('.check-hint'), /\S/, "the failed check's hint");
  assert(await secretInputsAreEmpty(form), 'the key fields kept their values after a refused connect');
  await screenshot(page, 'datadog-rejected');

  await fillDatadogForm(form, config.datadogApiKey, 'prod');
  await form.getByRole('button', { name: 'Connect Datadog' }).click();
  await expectText(card.getByTestId('result').locator('h4'), /Datadog connected as “prod”/, "Datadog's result");
  await expectPassingReport(card);
  const url = await textOf(card.getByTestId('webhook-url'));
  assert(url.startsWith(config.url), `the webhook URL does not start with ${config.url}`);
  const credential = card.locator('[data-testid="webhook-token"], [data-testid="webhook-secret"]');
  const shownOnce = await textOf(credential);
  assert(shownOnce.length > 0, 'no webhook token or secret is shown');
  secrets.push(shownOnce);
  assert(
    (await card.locator('[data-testid="copy-webhook-token"], [data-testid="copy-webhook-secret"]').count()) === 1,
    'the webhook credential has no Copy button',
  );
  await expectText(card.getByTestId('shown-once'), /will not be shown again/, 'the shown-once note');
  const copy = card.getByTestId('copy-webhook-url');
  await copy.click();
  await expectText(copy, /^Copied$/, "the Copy button's feedback");
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert(copied === url, 'the clipboard does not hold the webhook URL');
  assert(await secretInputsAreEmpty(form), 'the key fields kept their values after connecting');
  await screenshot(page, 'datadog-connected', true);

  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Connectors' }).waitFor();
  await expectStatus(page, 'datadog', 'Connected');
  const text = await page.evaluate(() => document.documentElement.outerHTML);
  assert(!text.includes(shownOnce), 'the webhook credential is still shown after a reload');
}

async function revalidateDatadog({ page }) {
  const card = page.getByTestId('card-datadog');
  await card.getByRole('button', { name: 'Re-validate prod', exact: true }).click();
  await expectText(card.getByTestId('result').locator('h4'), /Re-validated “prod”/, "the re-validation's result");
  await expectPassingReport(card);
  await screenshot(page, 'datadog-revalidated');
}

async function connectGitHub({ context, page }) {
  const card = page.getByTestId('card-github');
  const [popup] = await Promise.all([context.waitForEvent('page'), card.getByRole('button', { name: 'Connect with GitHub' }).click()]);
  if (!popup.isClosed()) await popup.waitForEvent('close');
  await expectStatus(page, 'github', 'Connected');
  await expectText(card.getByTestId('result').locator('h4'), /GitHub connected as/, "GitHub's result");
  await card.getByTestId('report').waitFor();
  await screenshot(page, 'github-connected');
}

async function addAndRemoveCluster({ page }) {
  const card = page.getByTestId('card-kubernetes');
  await card.getByTestId('open-connect-kubernetes').click();
  const form = page.getByTestId('connect-form-kubernetes');
  await form.getByLabel('Cluster name').fill('prod-eu');
  await form.getByTestId('submit-kubernetes').click();
  const token = await expectText(card.getByTestId('agent-token'), /^pbk8s_/, 'the agent token');
  secrets.push(token);
  await expectText(card.getByTestId('values-yaml'), /agentToken/, 'values.yaml');
  assert((await textOf(card.getByTestId('values-yaml'))).includes(token), 'values.yaml does not hold the agent token');
  await expectText(card.getByTestId('helm-install'), /^helm install /, 'the install command');
  for (const testid of ['copy-agent-token', 'copy-values-yaml', 'copy-helm-install']) {
    assert((await card.getByTestId(testid).count()) === 1, `no ${testid} button`);
  }
  await expectText(card.getByTestId('shown-once'), /will not be shown again/, 'the shown-once note');
  await screenshot(page, 'cluster-added', true);

  await card.locator('[data-testid^="disconnect-"]').click();
  const dialog = page.getByTestId('disconnect-dialog');
  await dialog.waitFor();
  await dialog.getByTestId('disconnect-confirm').click();
  await expectText(card.getByTestId('helm-uninstall'), /^helm uninstall /, 'the uninstall command');
  await expectStatus(page, 'kubernetes', 'Not connected');
  assert(!(await page.evaluate((shown) => document.body.textContent.includes(shown), token)), 'the agent token is still shown');
  await screenshot(page, 'cluster-removed');
}

async function disconnectDatadog({ page }) {
  const card = page.getByTestId('card-datadog');
  const disconnect = card.getByRole('button', { name: 'Disconnect prod', exact: true });
  const dialog = page.getByTestId('disconnect-dialog');
  await disconnect.click();
  await dialog.waitFor();
  assert((await activeTestId(page)) === 'disconnect-cancel', 'the dialog does not focus its safe button');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  await expectStatus(page, 'datadog', 'Connected');
  assert((await card.getByRole('button', { name: 'Disconnect prod', exact: true }).count()) === 1, 'Escape disconnected Datadog');

  await disconnect.click();
  await dialog.waitFor();
  await screenshot(page, 'disconnect-dialog');
  await dialog.getByTestId('disconnect-confirm').click();
  await expectStatus(page, 'datadog', 'Not connected');
  await screenshot(page, 'datadog-disconnected');
}

async function narrowWindow({ page }) {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
  await screenshot(page, 'narrow', true);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert(width <= 390, `the page scrolls sideways on a narrow window (${width}px wide)`);
  await page.setViewportSize({ width: 1280, height: 800 });
}

async function signOut({ page }) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sign in to Patchbay' }).waitFor();
  await page.getByTestId('api-key').waitFor();
  assert((await page.getByTestId('connectors').isHidden()), 'the connectors are still shown after signing out');
  await screenshot(page, 'signed-out');
}

async function connectLink({ browser }) {
  const link = await newContext(browser, 'connect link');
  try {
    const { page } = link;
    await page.goto(config.connectLink);
    const form = page.getByTestId('connect-form-datadog');
    await form.waitFor();
    assert(new URL(page.url()).hash === '#/connect/datadog', 'the link did not open at Datadog');
    await expectText(page.getByTestId('session-user'), /bob/, 'the link session user');
    const cards = await page.locator('[data-testid^="card-"]').evaluateAll((nodes) => nodes.map((node) => node.dataset.testid));
    assert(cards.length === 1 && cards[0] === 'card-datadog', `the link session shows ${cards.join(', ')}`);
    await fillDatadogForm(form, config.datadogApiKey, 'bob-prod');
    await form.getByRole('button', { name: 'Connect Datadog' }).click();
    const card = page.getByTestId('card-datadog');
    await expectText(card.getByTestId('result').locator('h4'), /Datadog connected as “bob-prod”/, "bob's result");
    await expectPassingReport(card);
    await expectStatus(page, 'datadog', 'Connected');
    assert((await card.locator('[data-testid^="disconnect-"]').count()) === 0, 'a link session offers Disconnect');
    await screenshot(page, 'connect-link', true);
  } finally {
    await link.context.close();
  }

  const again = await newContext(browser, 'used link');
  try {
    const { page } = again;
    expectFailure(410, new URL(config.connectLink).pathname);
    // The server's page for a used link names no icon, so Chromium asks for the default one.
    expectFailure(404, '/favicon.ico');
    const response = await page.goto(config.connectLink);
    assert(response && response.status() === 410, `a used link answered ${response && response.status()}, not 410`);
    await expectText(page.locator('body'), /already used|expired/i, 'the used link page');
    await screenshot(page, 'link-used');
  } finally {
    await again.context.close();
  }
}

const STEPS = [
  ['sign in', signIn],
  ['catalogue', catalogue],
  ['connect Datadog', connectDatadog],
  ['re-validate Datadog', revalidateDatadog],
  ['connect GitHub through OAuth', connectGitHub],
  ['add and remove a cluster', addAndRemoveCluster],
  ['disconnect Datadog', disconnectDatadog],
  ['narrow window', narrowWindow],
  ['sign out', signOut],
  ['connect link', connectLink],
];

async function runStep(name, run, session) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${STEP_LIMIT_MS / 1000} s`)), STEP_LIMIT_MS);
  });
  try {
    await Promise.race([run(session), limit]);
  } finally {
    clearTimeout(timer);
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
}

async function main() {
  fs.mkdirSync(config.screenshots, { recursive: true });
  const browser = await chromium.launch({ executablePath: config.chromium, headless: true, args: CHROMIUM_ARGS });
  let current = 'start';
  let session = null;
  try {
    session = { browser, ...(await newContext(browser, 'alice')) };
    await routeGitHubToFake(session.context);
    for (const [name, run] of STEPS) {
      current = name;
      await runStep(name, run, session);
    }
  } catch (error) {
    if (session && !session.page.isClosed()) {
      await session.page.screenshot({ path: path.join(config.screenshots, 'failure.png'), fullPage: true }).catch(() => {});
    }
    process.stderr.write(redact(`connectors page: step "${current}" failed: ${error.message}\n`));
    process.exitCode = 1;
    return;
  } finally {
    await browser.close();
  }
  process.stdout.write(`connectors page: ok, ${shots} screenshots in ${config.screenshots}\n`);
}

main().catch((error) => {
  process.stderr.write(redact(`connectors page: ${error.stack ?? error}\n`));
  process.exitCode = 1;
});
