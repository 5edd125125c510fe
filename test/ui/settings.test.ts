import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as orgs from '../../src/organisations/service.ts';
import { expectStatus } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

let ui: UiApp;
let browser: Browser;

beforeAll(async () => {
  ui = await startUiApp();
  browser = await openBrowser();
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ui.baseUrl });
});
afterAll(async () => {
  await browser?.close();
  await ui?.close();
});

const usersOfOrg = async () => (await ui.app.request('GET', '/v1/users', { token: ui.org.apiKey })).body.users as { email: string; name: string; role: string }[];

describe('settings: the team and the API keys, for owners', () => {
  it('an owner adds a user, changes their role, is refused demoting the last owner, and removes the user', async () => {
    const { page } = browser;
    await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    const team = page.getByRole('table', { name: 'Team' });
    await team.getByRole('row').filter({ hasText: ui.org.ownerEmail }).getByText('(you)').waitFor();

    // Adding: a short password is explained before the API is asked, then the user is added.
    await page.getByRole('button', { name: 'Add a user' }).click();
    const add = page.getByRole('dialog', { name: 'Add a user' });
    await add.locator(':focus').waitFor();
    await add.getByLabel('Email').fill('marie@example.com');
    await add.getByLabel('Name').fill('Marie Curie');
    await add.getByLabel('Role').selectOption('viewer');
    await add.getByLabel('Initial password').fill('short');
    await add.getByRole('button', { name: 'Add' }).click();
    await add.getByRole('alert').filter({ hasText: 'at least 10 characters' }).waitFor();
    await add.getByLabel('Initial password').fill('marie password 1');
    await add.getByRole('button', { name: 'Add' }).click();
    await add.waitFor({ state: 'detached' });
    const row = team.getByRole('row').filter({ hasText: 'marie@example.com' });
    await row.getByText('viewer').waitFor();
    expect((await usersOfOrg()).find((u) => u.email === 'marie@example.com')).toMatchObject({ name: 'Marie Curie', role: 'viewer' });

    // The same address again: the API's refusal shows in the dialog.
    await page.getByRole('button', { name: 'Add a user' }).click();
    await add.getByLabel('Email').fill('marie@example.com');
    await add.getByLabel('Initial password').fill('another password');
    await add.getByRole('button', { name: 'Add' }).click();
    await add.getByRole('alert').filter({ hasText: 'already exists' }).waitFor();
    await page.keyboard.press('Escape');
    await add.waitFor({ state: 'detached' });

    // The new user logs in with that password (a browser of their own).
    const marie = await openBrowser();
    try {
      await loginThroughUi(marie.page, ui.baseUrl, 'marie@example.com', 'marie password 1');
      await marie.page.getByText('Role: viewer').waitFor();
    } finally {
      await marie.close();
    }

    // Changing the role.
    await row.getByRole('button', { name: 'Edit marie@example.com' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit marie@example.com' });
    await edit.getByLabel('Role').selectOption('editor');
    await edit.getByRole('button', { name: 'Save' }).click();
    await edit.waitFor({ state: 'detached' });
    await row.getByText('editor').waitFor();
    expect((await usersOfOrg()).find((u) => u.email === 'marie@example.com')?.role).toBe('editor');

    // The last owner cannot stop being one, and the dialog says why.
    await team.getByRole('button', { name: `Edit ${ui.org.ownerEmail}` }).click();
    const self = page.getByRole('dialog', { name: `Edit ${ui.org.ownerEmail}` });
    await self.getByLabel('Role').selectOption('editor');
    await self.getByText('the Settings area will no longer be yours').waitFor();
    await self.getByRole('button', { name: 'Save' }).click();
    await self.getByRole('alert').filter({ hasText: "is the organisation's last owner" }).waitFor();
    await self.getByRole('button', { name: 'Cancel' }).click();
    await self.waitFor({ state: 'detached' });
    expect((await usersOfOrg()).find((u) => u.email === ui.org.ownerEmail)?.role).toBe('owner');

    // Removing, after a confirmation naming them; their session ends.
    const marieSession = (await orgs.login(ui.app.envoi.ctx, 'marie@example.com', 'marie password 1')).token;
    await row.getByRole('button', { name: 'Remove marie@example.com' }).click();
    const confirm = page.getByRole('dialog', { name: 'Remove Marie Curie (marie@example.com) from the team?' });
    await confirm.getByText('Marie Curie will be logged out at once').waitFor();
    // A destructive confirmation starts on Cancel.
    expect(await page.evaluate<string>('document.activeElement?.textContent')).toBe('Cancel');
    await confirm.getByRole('button', { name: 'Remove' }).click();
    await confirm.waitFor({ state: 'detached' });
    await row.waitFor({ state: 'detached' });
    expect((await usersOfOrg()).map((u) => u.email)).not.toContain('marie@example.com');
    expectStatus(await ui.app.request('GET', '/v1/me', { token: marieSession }), 401);
    expect(browser.problems.pageErrors).toEqual([]);
  });

  it('an owner creates a key limited to an audience, whose secret (shown once) works; revoked, it gets 401', async () => {
    const { page } = browser;
    const audience = await ui.app.request('POST', '/v1/audiences', { token: ui.org.apiKey, body: { name: 'Salon 2027' } });
    await ui.app.request('POST', '/v1/audiences', { token: ui.org.apiKey, body: { name: 'Other audience' } });
    await page.goto(`${ui.baseUrl}/settings/api-keys`);
    await page.getByRole('heading', { level: 2, name: 'API keys' }).waitFor();
    await page.getByRole('table', { name: 'API keys' }).getByRole('cell', { name: 'test key', exact: true }).waitFor();

    await page.getByRole('button', { name: 'Create an API key' }).click();
    const create = page.getByRole('dialog', { name: 'Create an API key' });
    await create.getByLabel('Name', { exact: true }).fill('CRM sync');
    await create.getByLabel('Role').selectOption('viewer');
    await create.getByRole('group', { name: 'Limit to these audiences (optional)' }).getByLabel('Salon 2027').check();
    await create.getByLabel('Rate limit per minute (optional)').fill('0');
    await create.getByRole('button', { name: 'Create' }).click();
    await create.getByRole('alert').filter({ hasText: 'A whole number from 1 to 1,000,000.' }).waitFor();
    await create.getByLabel('Rate limit per minute (optional)').fill('120');
    await create.getByRole('button', { name: 'Create' }).click();
    await create.waitFor({ state: 'detached' });

    const secretDialog = page.getByRole('dialog', { name: 'The key CRM sync' });
    await secretDialog.getByText('it will not be shown again').waitFor();
    const secret = await secretDialog.getByLabel('Secret key').inputValue();
    expect(secret).toMatch(/^ek_/);
    await secretDialog.getByRole('button', { name: 'Copy the key' }).click();
    await page.getByText('Key copied.').waitFor();
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(secret);
    await screenshot(page, 'settings-key-secret');

    // The secret works against the API, with the role and audiences chosen.
    const me = await ui.app.request('GET', '/v1/me', { token: secret });
    expectStatus(me, 200);
    expect(me.body).toMatchObject({ kind: 'key', role: 'viewer', audience_ids: [audience.body.id] });
    expect((await ui.app.request('GET', '/v1/audiences', { token: secret })).body.audiences.map((a: { name: string }) => a.name)).toEqual(['Salon 2027']);

    await secretDialog.getByRole('button', { name: 'I have copied it' }).click();
    await secretDialog.waitFor({ state: 'detached' });
    // Focus is back on the page, and the secret is nowhere in it any more.
    expect(await page.evaluate<string>('document.activeElement?.textContent')).toBe('Create an API key');
    expect(await page.content()).not.toContain(secret);
    const row = page.getByRole('table', { name: 'API keys' }).getByRole('row').filter({ hasText: 'CRM sync' });
    await row.getByText('120 / min').waitFor();
    await row.getByText('Salon 2027').waitFor();
    await row.getByText('viewer').waitFor();
    await row.getByText(secret.slice(0, 11)).waitFor();
    await page.getByRole('row').filter({ hasText: 'test key' }).getByText('300 / min').waitFor();

    await row.getByRole('button', { name: 'Revoke CRM sync' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke the key CRM sync?' });
    await confirm.getByRole('button', { name: 'Revoke' }).click();
    await confirm.waitFor({ state: 'detached' });
    await row.getByText(/^Revoked /).waitFor();
    expect(await row.getByRole('button', { name: 'Revoke CRM sync' }).count()).toBe(0);
    expectStatus(await ui.app.request('GET', '/v1/me', { token: secret }), 401);

    // In French too.
    await page.getByLabel('Language').selectOption('fr');
    await page.getByRole('link', { name: 'Paramètres' }).waitFor();
    await page.getByRole('button', { name: 'Créer une clé API' }).waitFor();
    await page.getByRole('link', { name: 'Équipe' }).click();
    await page.getByRole('button', { name: 'Ajouter un utilisateur' }).waitFor();
    await page.getByLabel('Langue').selectOption('en');
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });

  it('a viewer and an editor do not see Settings, and its address says it is for owners only', async () => {
    for (const role of ['viewer', 'editor'] as const) {
      const email = `${role}-settings@example.com`;
      await orgs.createUser(ui.app.envoi.ctx, ui.org.orgId, { email, password: `${role} password 123`, role });
      const other = await openBrowser();
      try {
        await loginThroughUi(other.page, ui.baseUrl, email, `${role} password 123`);
        const nav = other.page.getByRole('navigation', { name: 'Main' });
        await nav.getByRole('link', { name: 'Audiences' }).waitFor();
        expect(await nav.getByRole('link', { name: 'Settings' }).count()).toBe(0);
        await other.page.goto(`${ui.baseUrl}/settings/api-keys`);
        await other.page.getByRole('alert').filter({ hasText: `Only the owners of the organisation can open this page (your role: ${role})` }).waitFor();
        expect(await other.page.getByRole('button', { name: 'Create an API key' }).count()).toBe(0);
      } finally {
        await other.close();
      }
    }
  });
});
