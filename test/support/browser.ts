/**
 * Browser tests: Debian's chromium driven by playwright-core (no browser download), against a real
 * listening envoi serving the built UI from web/dist.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { AddressInfo } from 'node:net';
import { startTestApp, type TestApp, type TestOrg } from './harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS = join(ROOT, 'test-artifacts');
export const OWNER_PASSWORD = 'correct horse battery staple';
export const CHROMIUM = process.env.ENVOI_TEST_CHROMIUM ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds web/dist when it is missing or older than a file of web/src (the vitest globalSetup of the browser project). */
export function ensureWebBuilt() {
  // For a UI built some other way (a CI artefact, a partial build while another screen is half-written).
  if (process.env.ENVOI_TEST_WEB_PREBUILT === '1') return;
  const index = join(ROOT, 'web/dist/index.html');
  const sources = Math.max(newestMtime(join(ROOT, 'web/src')), statSync(join(ROOT, 'web/index.html')).mtimeMs, statSync(join(ROOT, 'web/vite.config.ts')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const r = spawnSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('building the web UI (vite build) failed');
}

export function setup() {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Debian's chromium at ${CHROMIUM} (apt-get install chromium)`);
  ensureWebBuilt();
}

export interface UiApp {
  app: TestApp;
  org: TestOrg;
  baseUrl: string;
  close(): Promise<void>;
}

/** A fresh envoi (database of the project's kind) listening on a free port, with one organisation. */
export async function startUiApp(): Promise<UiApp> {
  const app = await startTestApp();
  const org = await app.createOrg('Browser Org');
  await app.envoi.http.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.envoi.http.server.address() as AddressInfo).port;
  return { app, org, baseUrl: `http://127.0.0.1:${port}`, close: () => app.close() };
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** uncaught page errors, console errors other than HTTP statuses (CSP violations among them) and any alert/confirm/prompt the page opened */
  problems: { pageErrors: string[]; consoleErrors: string[]; dialogs: string[] };
  close(): Promise<void>;
}

/** Chromium with a fresh profile; dialogs are dismissed and recorded, so a test can assert none fired. */
export async function openBrowser(): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'envoi-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
    locale: 'en-GB',
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = { pageErrors: [] as string[], consoleErrors: [] as string[], dialogs: [] as string[] };
  page.on('pageerror', (e) => problems.pageErrors.push(String(e)));
  page.on('console', (m) => {
    // An HTTP error status is the API answering (a 401 before login): the tests assert those themselves.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.consoleErrors.push(m.text());
  });
  page.on('dialog', (d) => {
    problems.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss().catch(() => {});
  });
  return {
    context,
    page,
    problems,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Logs in through the login screen and waits for the navigation of the back office. */
export async function loginThroughUi(page: Page, baseUrl: string, email: string, password = OWNER_PASSWORD) {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel(/^(Email|E-mail)$/).fill(email);
  await page.getByLabel(/^(Password|Mot de passe)$/).fill(password);
  await page.getByRole('button', { name: /^(Log in|Se connecter)$/ }).click();
  await page.getByRole('navigation').waitFor();
}

/** Saves a full-page screenshot under test-artifacts/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
