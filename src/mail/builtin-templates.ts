/**
 * The templates envoi ships, in French and English. An organisation can override any of them
 * later (the database layer looks up its own version first and falls back to these).
 */
import type { RenderData, TemplateSource } from './render.ts';
import { accountConfirmation } from './builtin/account-confirmation.ts';
import { doubleOptIn } from './builtin/double-opt-in.ts';
import { frenchSpacing, type BuiltinDefinition, type BuiltinLanguage } from './builtin/layout.ts';
import { passwordReset } from './builtin/password-reset.ts';
import { registrationConfirmation } from './builtin/registration-confirmation.ts';
import { rePermission } from './builtin/re-permission.ts';

export type { BuiltinLanguage } from './builtin/layout.ts';

export const BUILTIN_KINDS = [
  'account_confirmation',
  'password_reset',
  'registration_confirmation',
  'double_opt_in',
  're_permission',
] as const;
export type BuiltinKind = (typeof BUILTIN_KINDS)[number];

export const BUILTIN_LANGUAGES: readonly BuiltinLanguage[] = ['fr', 'en'];

export interface BuiltinTemplate extends TemplateSource {
  kind: BuiltinKind;
  language: BuiltinLanguage;
  format: 'mjml';
  preheader: string;
  /** Variables the template uses, with what each must hold: what the caller has to provide. */
  variables: Readonly<Record<string, string>>;
  /** Data that satisfies `variables`, for previews. */
  sample: RenderData;
}

const DEFINITIONS: Record<BuiltinKind, BuiltinDefinition> = {
  account_confirmation: accountConfirmation,
  password_reset: passwordReset,
  registration_confirmation: registrationConfirmation,
  double_opt_in: doubleOptIn,
  re_permission: rePermission,
};

/** 'fr', 'fr-CA', 'FR' -> 'fr'; 'en-GB' -> 'en'; anything else (or nothing) -> 'en'. */
export function builtinLanguage(language: string | null | undefined): BuiltinLanguage {
  const primary = (language ?? '').toLowerCase().split(/[-_]/)[0];
  return primary === 'fr' ? 'fr' : 'en';
}

export function isBuiltinKind(kind: string): kind is BuiltinKind {
  return (BUILTIN_KINDS as readonly string[]).includes(kind);
}

/**
 * The built-in template of a kind in a language (other languages get English). Each call returns
 * a fresh object, safe to modify.
 */
export function builtinTemplate(kind: BuiltinKind, language: string): BuiltinTemplate {
  const definition = DEFINITIONS[kind];
  if (!definition) throw new TypeError(`Unknown built-in template "${String(kind)}"`);
  const lang = builtinLanguage(language);
  const texts = definition.texts[lang];
  const typeset = lang === 'fr' ? frenchSpacing : (s: string) => s;
  return {
    kind,
    category: definition.category,
    language: lang,
    format: 'mjml',
    subject: typeset(texts.subject),
    preheader: typeset(texts.preheader),
    body: typeset(texts.body),
    text: null,
    // Confirmation, reset and consent links carry secrets and lead to envoi itself: no redirect through the click tracker.
    tracking: false,
    variables: { ...definition.variables },
    sample: structuredClone(definition.sample),
  };
}
