import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/app.ts';
import { buildHttpApp } from '../../src/platform/http.ts';
import * as orgs from '../../src/organisations/service.ts';
import { expectStatus } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

let ui: UiApp;
let browser: Browser;

beforeAll(async () => {
  ui = await startUiApp();
  browser = await openBrowser();
});
afterAll(async () => {
  await browser?.close();
  await ui?.close();
});

describe('the back-office shell in chromium', () => {
  it('serves the UI with its security headers, and index.html for a client route', async () => {
    const res = await fetch(`${ui.baseUrl}/audiences`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<div id="root">');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    // The API keeps answering JSON 404s, and a missing asset is no HTML page.
    const api = await fetch(`${ui.baseUrl}/v1/nope`, { headers: { accept: 'text/html' } });
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toContain('json');
    expect((await fetch(`${ui.baseUrl}/assets/missing.js`)).status).toBe(404);
  });

  it('says how to build the UI when web/dist is missing, and the API still works', async () => {
    const app = await buildHttpApp(ui.app.envoi.ctx, { routes: ROUTES, webDist: '/nonexistent/envoi-web-dist' });
    try {
      for (const url of ['/', '/audiences/x/contacts']) {
        const r = await app.inject({ method: 'GET', url, headers: { accept: 'text/html' } });
        expect(r.statusCode).toBe(503);
        expect(r.body).toContain('npm run build:web');
        expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      }
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('refuses a wrong password with the API message, then logs in, navigates and logs out', async () => {
    const { page } = browser;
    await page.goto(`${ui.baseUrl}/`);
    await page.getByLabel('Email').fill(ui.org.ownerEmail);
    await page.getByLabel('Password').fill('not the password at all');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'wrong email or password' }).waitFor();

    await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Audiences' }).waitFor();
    expect(page.url()).toMatch(/\/audiences$/);
    await page.getByRole('heading', { level: 1, name: 'Audiences' }).waitFor();

    // The session survives a reload (HttpOnly cookie, not readable by scripts).
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Audiences' }).waitFor();
    expect(await page.evaluate<string>('document.cookie')).not.toContain('envoi_session');

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to envoi' }).waitFor();
    // The session is over on the server too: the cookie no longer opens the API.
    await page.reload();
    await page.getByRole('heading', { name: 'Log in to envoi' }).waitFor();
    expect(browser.problems.pageErrors).toEqual([]);
  });

  it('creates an audience, an event and a community through dialogs, in French after switching language', async () => {
    const { page } = browser;
    await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
    await page.getByRole('button', { name: 'New audience' }).click();
    const dialog = page.getByRole('dialog', { name: 'New audience' });
    // Focus starts inside the dialog.
    await dialog.locator(':focus').waitFor();
    await dialog.getByLabel('Name').fill('Salon 2027');
    await dialog.getByRole('button', { name: 'New audience' }).click();
    await dialog.waitFor({ state: 'detached' });
    const card = page.getByRole('region', { name: 'Salon 2027' });
    await card.waitFor();

    await card.getByRole('button', { name: 'New event' }).click();
    const ev = page.getByRole('dialog', { name: 'New event' });
    await ev.getByLabel('Event name').fill('Paris day');
    await ev.getByRole('button', { name: 'Create' }).click();
    await ev.waitFor({ state: 'detached' });
    await card.getByRole('list', { name: /Events/ }).getByText('Paris day').waitFor();

    await card.getByRole('button', { name: 'New community' }).click();
    const cm = page.getByRole('dialog', { name: 'New community' });
    await cm.getByLabel('Name').fill('Exhibitors');
    // Escape closes without creating; focus goes back to the button.
    await page.keyboard.press('Escape');
    await cm.waitFor({ state: 'detached' });
    await card.getByRole('button', { name: 'New community' }).click();
    await cm.getByLabel('Name').fill('Exhibitors');
    await page.keyboard.press('Enter');
    await cm.waitFor({ state: 'detached' });
    await card.getByRole('list', { name: /Communities/ }).getByText('Exhibitors').waitFor();

    await page.getByLabel('Language').selectOption('fr');
    await page.getByRole('link', { name: 'Consentement' }).or(page.getByRole('link', { name: 'Audiences' })).first().waitFor();
    await page.getByRole('button', { name: 'Nouvelle audience' }).waitFor();
    await page.reload();
    await page.getByRole('button', { name: 'Se déconnecter' }).waitFor();
    await page.getByLabel('Langue').selectOption('en');
    await screenshot(page, 'audiences');
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });

  it('refuses a second organisation from the login screen with the API reason when signup is closed', async () => {
    ui.app.envoi.ctx.config.allowSignup = false;
    const other = await openBrowser();
    try {
      const { page } = other;
      await page.goto(`${ui.baseUrl}/`);
      await page.getByRole('button', { name: 'First time on this server? Create your organisation' }).click();
      await page.getByLabel('Organisation name').fill('Intruder Ltd');
      await page.getByLabel('Email').fill('intruder@example.com');
      await page.getByLabel('Password').fill('intruder password');
      await page.getByRole('button', { name: 'Create and log in' }).click();
      await page.getByRole('alert').filter({ hasText: 'Could not create the organisation: organisation signup is closed' }).waitFor();
    } finally {
      ui.app.envoi.ctx.config.allowSignup = true;
      await other.close();
    }
  });

  it('creates an organisation from the login screen (signup open, as on a fresh server) and logs its owner in', async () => {
    const other = await openBrowser();
    try {
      const { page } = other;
      await page.goto(`${ui.baseUrl}/`);
      await page.getByRole('button', { name: 'First time on this server? Create your organisation' }).click();
      await page.getByRole('heading', { name: 'Create your organisation' }).waitFor();
      await page.getByLabel('Organisation name').fill('Festival du Livre');
      await page.getByLabel('Email').fill('founder@example.com');
      await page.getByLabel('Password').fill('founder password 1');
      await page.getByRole('button', { name: 'Create and log in' }).click();
      await page.getByRole('navigation', { name: 'Main' }).waitFor();
      await page.getByText('Festival du Livre', { exact: true }).waitFor();
      await page.getByText('Role: owner').waitFor();
    } finally {
      await other.close();
    }
  });

  it('shows a viewer no write buttons', async () => {
    await orgs.createUser(ui.app.envoi.ctx, ui.org.orgId, { email: 'viewer@example.com', password: 'viewer password 123', role: 'viewer' });
    const other = await openBrowser();
    try {
      await loginThroughUi(other.page, ui.baseUrl, 'viewer@example.com', 'viewer password 123');
      await other.page.getByRole('region', { name: 'Salon 2027' }).waitFor();
      await other.page.getByText('Role: viewer').waitFor();
      expect(await other.page.getByRole('button', { name: 'New audience' }).count()).toBe(0);
      expect(await other.page.getByRole('button', { name: 'New event' }).count()).toBe(0);
      // Nor in the contacts grid: reading, filtering and exporting only.
      const audienceId = (await ui.app.request('GET', '/v1/audiences', { token: ui.org.apiKey })).body.audiences[0].id;
      expectStatus(await ui.app.request('POST', `/v1/audiences/${audienceId}/contacts`, { token: ui.org.apiKey, body: { email: 'someone@example.com', first_name: 'Some', last_name: 'One' } }), 201);
      await other.page.getByRole('link', { name: 'Contacts of Salon 2027' }).click();
      await other.page.getByRole('link', { name: 'someone@example.com' }).waitFor();
      await other.page.getByRole('button', { name: 'Filters' }).waitFor();
      await other.page.getByRole('link', { name: 'Export (CSV)' }).waitFor();
      for (const name of ['Import CSV', 'More actions', 'Save as a view', 'Delete Some One'])
        expect(await other.page.getByRole('button', { name }).count(), name).toBe(0);
      await other.page.getByRole('link', { name: 'someone@example.com' }).click();
      await other.page.getByRole('heading', { level: 1, name: 'Some One' }).waitFor();
      expect(await other.page.getByRole('button', { name: 'Delete the contact' }).count()).toBe(0);
    } finally {
      await other.close();
    }
  });
});
