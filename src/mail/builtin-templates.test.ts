import { Liquid } from 'liquidjs';
import { describe, expect, it } from 'vitest';
import { BUILTIN_KINDS, BUILTIN_LANGUAGES, builtinLanguage, builtinTemplate, isBuiltinKind } from './builtin-templates.ts';
import { compileTemplate, render, TemplateError } from './render.ts';

const cases = BUILTIN_KINDS.flatMap((kind) => BUILTIN_LANGUAGES.map((lang) => [kind, lang] as const));

describe('built-in templates', () => {
  it.each(cases)('%s (%s) compiles and previews with its documented variables', async (kind, lang) => {
    const template = builtinTemplate(kind, lang);
    expect(template.language).toBe(lang);
    const compiled = await compileTemplate(template);
    expect(compiled.textMode).toBe('derived');
    // Preview is strict: any variable the sample (built from the documentation) lacks would throw.
    const out = render(compiled, template.sample, 'preview');
    for (const part of [out.subject, out.preheader, out.html, out.text]) {
      expect(part).not.toMatch(/\{\{|\{%|\[UNSUBLINK/);
    }
    expect(out.subject.length).toBeGreaterThan(5);
    expect(out.preheader.length).toBeGreaterThan(5);
    expect(out.html).toContain(`<html lang="${lang}"`);
    expect(out.html).toContain('class="envoi-preheader"');
    expect(out.text).toContain(lang === 'fr' ? 'Bonjour Ada,' : 'Hello Ada,');
    expect(out.text).toContain('Rencontres Numériques');
    // Every link of the sample ends up in the mail.
    for (const value of Object.values(template.sample.vars ?? {})) {
      if (typeof value === 'string' && value.startsWith('https://')) expect(out.text).toContain(value);
    }
  });

  it.each(cases)('%s (%s) uses only documented variables', (kind, lang) => {
    const template = builtinTemplate(kind, lang);
    const analysis = new Liquid().parseAndAnalyzeSync([template.subject, template.preheader, template.body].join('\n'));
    const used = new Set(
      Object.values(analysis.globals)
        .flat()
        .map((v) => v.segments.join('.')),
    );
    const documented = new Set(Object.keys(template.variables));
    expect([...used].filter((name) => !documented.has(name))).toEqual([]);
    // And the documentation lists nothing the template does not use.
    expect([...documented].filter((name) => !used.has(name))).toEqual([]);
  });

  it.each(cases)('%s (%s) fails in preview without a required link', async (kind, lang) => {
    const template = builtinTemplate(kind, lang);
    const link = Object.keys(template.variables).find((name) => name.endsWith('_url') && !/optional/.test(template.variables[name]!));
    if (!link) return; // registration confirmation: its only link is optional
    const compiled = await compileTemplate(template);
    const vars = { ...template.sample.vars };
    delete vars[link];
    try {
      render(compiled, { ...template.sample, vars }, 'preview');
      expect.unreachable(`preview without ${link} should fail`);
    } catch (err) {
      expect(err).toBeInstanceOf(TemplateError);
      expect((err as TemplateError).variable).toBe(link);
    }
  });

  it('greets without a name when the first name is unknown, in send mode', async () => {
    const template = builtinTemplate('password_reset', 'fr');
    const compiled = await compileTemplate(template);
    const out = render(compiled, { ...template.sample, contact: { email: 'x@example.com', first_name: null } }, 'send');
    expect(out.text).toMatch(/^Bonjour,/);
  });

  it('shows event dates in the event zone, in each language', async () => {
    const fr = builtinTemplate('registration_confirmation', 'fr');
    const en = builtinTemplate('registration_confirmation', 'en');
    const frOut = render(await compileTemplate(fr), fr.sample, 'send');
    const enOut = render(await compileTemplate(en), en.sample, 'send');
    expect(frOut.subject).toBe('Inscription confirmée\u00a0: Rencontres Numériques 2026');
    expect(frOut.text).toContain('mercredi 3 juin 2026 à 09h30');
    expect(frOut.text).toContain('jeudi 4 juin 2026 à 18h00');
    expect(enOut.text).toContain('Wednesday 3 June 2026, 09:30');
    // Without the optional manage link, its sentence disappears.
    const { manage_url: _drop, ...vars } = fr.sample.vars!;
    expect(render(await compileTemplate(fr), { ...fr.sample, vars }, 'preview').text).not.toContain('gérer mon inscription');
  });

  it('asks for re-permission with two clear buttons and a deadline', async () => {
    for (const lang of BUILTIN_LANGUAGES) {
      const template = builtinTemplate('re_permission', lang);
      const out = render(await compileTemplate(template), template.sample, 'preview');
      expect(out.html).toMatch(/href="https:\/\/envoi\.example\/consent\/yes\?token=sample"[^>]*>\s*(OUI|YES)/);
      expect(out.html).toMatch(/href="https:\/\/envoi\.example\/consent\/no\?token=sample"[^>]*>\s*(NON|NO)/);
      expect(out.text).toContain(lang === 'fr' ? 'avant le 30 juin 2026' : 'by June 30, 2026');
    }
  });

  it('falls back to English for other languages and accepts regional tags', () => {
    expect(builtinTemplate('double_opt_in', 'de').language).toBe('en');
    expect(builtinTemplate('double_opt_in', 'fr-CA').language).toBe('fr');
    expect(builtinLanguage(null)).toBe('en');
    expect(builtinLanguage('FR_be')).toBe('fr');
    expect(isBuiltinKind('password_reset')).toBe(true);
    expect(isBuiltinKind('newsletter')).toBe(false);
  });

  it('returns a fresh copy each time, with tracking off for links that carry secrets', () => {
    const a = builtinTemplate('account_confirmation', 'en');
    a.sample.vars!.confirm_url = 'changed';
    expect(builtinTemplate('account_confirmation', 'en').sample.vars!.confirm_url).not.toBe('changed');
    for (const [kind, lang] of cases) expect(builtinTemplate(kind, lang).tracking).toBe(false);
  });

  it('keeps transactional kinds transactional', () => {
    for (const kind of ['account_confirmation', 'password_reset', 'registration_confirmation', 'double_opt_in'] as const) {
      expect(builtinTemplate(kind, 'fr').category).toBe('transactional');
    }
  });
});
