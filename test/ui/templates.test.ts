import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../../src/sending/worker.ts';
import { expectStatus } from '../support/harness.ts';
import { loginThroughUi, openBrowser, screenshot, startUiApp, type Browser, type UiApp } from '../support/browser.ts';

/*
 * The template screens in chromium: write a template with its live preview, preview it for a chosen
 * contact, save it, send a test and read the test in the development outbox; start from the built-in
 * re-permission template.
 */

let ui: UiApp;
let browser: Browser;
let worker: Worker;
let audienceId: string;

const api = (method: string, url: string, body?: unknown) => ui.app.request(method, url, { token: ui.org.apiKey, body });

beforeAll(async () => {
  ui = await startUiApp();
  browser = await openBrowser();
  worker = new Worker(ui.app.envoi.ctx, { smtpUrl: null, pollMs: { transactional: 50, bulk: 50 } }).start();
  const a = await api('POST', '/v1/audiences', { name: 'Salon 2027' });
  expectStatus(a, 201);
  audienceId = a.body.id;
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'ann@example.com', first_name: 'Ann', last_name: 'Archer', company: 'Acme' }), 201);
  // A name that is markup: it must show as text, in the preview as everywhere.
  expectStatus(await api('POST', `/v1/audiences/${audienceId}/contacts`, { email: 'xss@example.com', first_name: '<img src=x onerror=alert(1)>', last_name: 'Hacker' }), 201);
});
afterAll(async () => {
  await worker?.stop();
  await browser?.close();
  await ui?.close();
});

describe('templates in chromium', () => {
  it('writes a template with its live preview, previews it for a contact, saves it, sends a test and shows it in the outbox', async () => {
    const { page } = browser;
    await loginThroughUi(page, ui.baseUrl, ui.org.ownerEmail);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Templates' }).click();
    await page.getByRole('heading', { level: 1, name: 'Templates' }).waitFor();
    await page.getByText('No template in this audience yet.').waitFor();
    await page.getByRole('link', { name: 'New template' }).click();
    await page.getByRole('heading', { level: 1, name: 'New template' }).waitFor();

    const form = page.getByRole('form', { name: 'Template' });
    // A new template starts in the interface language, and nothing is previewed (nor refused) before it has a subject.
    expect(await form.getByLabel('Language').inputValue()).toBe('en');
    expect(await form.getByLabel('Source (HTML)').inputValue()).toBe('<p>Hello {{ first_name }},</p>\n\n<p>…</p>\n\n<p><a href="[UNSUBLINK]">Unsubscribe</a></p>\n');
    const preview = page.getByRole('region', { name: 'Preview' });
    await preview.getByText('The preview shows here once the template has a subject.').waitFor();
    await page.waitForTimeout(1500);
    expect(await preview.getByRole('alert').count()).toBe(0);
    expect(await preview.getByText('The preview failed').count()).toBe(0);
    await form.getByLabel('Name', { exact: true }).fill('March newsletter');
    await form.getByLabel('Language').fill('en');
    await form.getByLabel('Subject').fill('News for {{ first_name }}');
    await form.getByLabel('Source (HTML)').fill('<h1 style="color:#2456c9">Hello {{ first_name }} from {{ contact.company | default: "nowhere" }}</h1><p><a href="https://example.org/news">Read</a> · <a href="[UNSUBLINK]">Unsubscribe</a></p>');

    // The preview renders the unsaved source for the sample person, in a sandboxed frame of its own.
    await preview.getByTestId('preview-subject').filter({ hasText: 'News for Camille' }).waitFor();
    const frame = preview.locator('iframe[title="Rendered email"]');
    expect(await frame.getAttribute('sandbox')).toBe('');
    expect(await frame.getAttribute('srcdoc')).toBeNull();
    await page.frameLocator('iframe[title="Rendered email"]').getByRole('heading', { name: 'Hello Camille from Example' }).waitFor();
    // The email keeps its own inline style (the frame's document has its own policy).
    await expect
      .poll(() => page.frameLocator('iframe[title="Rendered email"]').locator('h1').evaluate((h) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(h).color), { timeout: 20_000 })
      .toBe('rgb(36, 86, 201)');

    // For a chosen contact.
    await preview.getByLabel('Preview for a contact').fill('Ann');
    await preview.getByRole('button', { name: 'Preview for Ann Archer (ann@example.com)' }).click();
    await preview.getByText('For Ann Archer (ann@example.com).').waitFor();
    await preview.getByTestId('preview-subject').filter({ hasText: 'News for Ann' }).waitFor();
    await page.frameLocator('iframe[title="Rendered email"]').getByRole('heading', { name: 'Hello Ann from Acme' }).waitFor();

    // A contact whose name is markup shows as text.
    await preview.getByLabel('Preview for a contact').fill('Hacker');
    await preview.getByRole('button', { name: /^Preview for <img src=x onerror=alert\(1\)> Hacker/ }).click();
    await preview.getByTestId('preview-subject').filter({ hasText: 'News for <img src=x onerror=alert(1)>' }).waitFor();
    await page.frameLocator('iframe[title="Rendered email"]').getByRole('heading', { name: 'Hello <img src=x onerror=alert(1)> from nowhere' }).waitFor();
    expect(await page.frameLocator('iframe[title="Rendered email"]').locator('img[src="x"]').count()).toBe(0);

    // A mistake in the source is named, and the preview comes back once it is fixed.
    await form.getByLabel('Source (HTML)').fill('<p>Hello {{ first_name }</p>');
    await preview.getByRole('alert').filter({ hasText: 'The preview failed' }).waitFor();
    await form.getByLabel('Source (HTML)').fill('<h1>Hello {{ first_name }}</h1><p><a href="https://example.org/news">Read</a> <a href="[UNSUBLINK]">Unsubscribe</a></p>');
    await page.frameLocator('iframe[title="Rendered email"]').getByRole('heading', { name: 'Hello <img src=x onerror=alert(1)>', exact: true }).waitFor();
    expect(await preview.getByRole('alert').count()).toBe(0);

    // Saved: a test can be sent only of a saved version.
    const testButton = page.getByRole('button', { name: 'Send a test' });
    expect(await testButton.isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { level: 1, name: 'March newsletter' }).waitFor();
    await page.getByText('version 1', { exact: true }).waitFor();
    await expect.poll(() => page.url()).toMatch(new RegExp(`/templates/${audienceId}/[0-9a-f-]{36}$`));
    const stored = (await api('GET', `/v1/audiences/${audienceId}/templates`)).body.templates;
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ name: 'March newsletter', category: 'marketing', language: 'en', format: 'html', subject: 'News for {{ first_name }}' });

    await testButton.click();
    const dialog = page.getByRole('dialog', { name: 'Send a test of “March newsletter”' });
    await dialog.getByLabel('Send to').fill('ann@example.com');
    await dialog.getByRole('button', { name: 'Send a test' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('status').getByText('Test sent to ann@example.com.').waitFor();

    // The test in the development outbox, as a mailbox.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Outbox' }).click();
    await page.getByRole('heading', { level: 1, name: 'Outbox' }).waitFor();
    await page.getByRole('list', { name: 'Messages' }).getByRole('link', { name: /\[Test\] News for Ann/ }).click({ timeout: 30_000 });
    const mail = page.getByRole('article', { name: '[Test] News for Ann' });
    await mail.getByText('ann@example.com').first().waitFor();
    const mailFrame = mail.locator('iframe');
    expect(await mailFrame.getAttribute('sandbox')).toBe('');
    await page.frameLocator('iframe[title="Message: [Test] News for Ann"]').getByRole('heading', { name: 'Hello Ann' }).waitFor();
    await mail.getByText('All headers').click();
    await mail.getByRole('row', { name: /x-envoi-delivery/i }).waitFor();
    await mail.getByRole('button', { name: 'Text' }).click();
    await mail.locator('pre').filter({ hasText: 'Hello Ann' }).waitFor();
    await screenshot(page, 'outbox');

    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
    expect(browser.problems.dialogs).toEqual([]);
  });

  it('creates a template from the built-in re-permission one, previewed with sample answer links', async () => {
    const { page } = browser;
    await page.goto(`${ui.baseUrl}/templates?audience=${audienceId}`);
    await page.getByRole('button', { name: 'From a built-in template' }).click();
    const dialog = page.getByRole('dialog', { name: 'From a built-in template' });
    await dialog.getByLabel('Built-in template').selectOption('re_permission');
    await dialog.getByLabel('Language').selectOption('en');
    // Left unnamed, it is named in the interface language (placeholder shows it), not by the kind's code.
    expect(await dialog.getByLabel('Name (optional)').getAttribute('placeholder')).toBe('Re-permission (en)');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { level: 1, name: 'Re-permission (en)' }).waitFor();
    const form = page.getByRole('form', { name: 'Template' });
    expect(await form.getByRole('radio', { name: 'MJML' }).isChecked()).toBe(true);
    expect(await form.getByLabel('Category').inputValue()).toBe('marketing');
    // The variables the campaign will give get sample values, so the preview renders at once.
    const preview = page.getByRole('region', { name: 'Preview' });
    expect(await preview.getByLabel('Variables given at send time (JSON)').inputValue()).toContain('yes_url');
    await preview.getByTestId('preview-subject').filter({ hasText: 'Would you like to keep receiving our emails?' }).waitFor();
    await page.frameLocator('iframe[title="Rendered email"]').getByRole('link', { name: /YES/ }).first().waitFor();
    await screenshot(page, 'template-editor');
    expect(browser.problems.pageErrors).toEqual([]);
    expect(browser.problems.consoleErrors).toEqual([]);
  });
});
