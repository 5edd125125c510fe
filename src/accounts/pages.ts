/** envoi's own pages behind the account emails' links: confirm an address, choose a new password. Every value is escaped here. */
import { escapeHtml, publicPage, type PageLanguage } from '../platform/public-page.ts';
import type { TokenProblem } from './rules.ts';

const TEXT = {
  fr: {
    confirmTitle: 'Confirmer votre adresse',
    confirmLead: 'Confirmez que cette adresse email est bien la vôtre pour activer votre compte.',
    confirmButton: 'Confirmer mon adresse',
    confirmed: 'Votre adresse est confirmée. Vous pouvez fermer cette page.',
    resetTitle: 'Nouveau mot de passe',
    password: 'Nouveau mot de passe (10 caractères au moins)',
    again: 'Le même, une seconde fois',
    resetButton: 'Enregistrer le mot de passe',
    reset: 'Votre mot de passe est changé. Vous pouvez vous connecter avec le nouveau.',
    mismatch: 'Les deux mots de passe ne sont pas identiques.',
    fix: 'Merci de corriger :',
    invalid_token: "Ce lien n'est pas valide, ou un lien plus récent l'a remplacé. Utilisez le dernier lien reçu par email, en entier.",
    token_used: 'Ce lien a déjà servi.',
    token_expired: 'Ce lien a expiré. Demandez-en un nouveau.',
  },
  en: {
    confirmTitle: 'Confirm your address',
    confirmLead: 'Confirm that this email address is yours to activate your account.',
    confirmButton: 'Confirm my address',
    confirmed: 'Your address is confirmed. You can close this page.',
    resetTitle: 'New password',
    password: 'New password (at least 10 characters)',
    again: 'The same again',
    resetButton: 'Save the password',
    reset: 'Your password is changed. You can log in with the new one.',
    mismatch: 'The two passwords are not the same.',
    fix: 'Please correct:',
    invalid_token: 'This link is not valid, or a newer link replaced it. Use the latest link from the email, in full.',
    token_used: 'This link has already been used.',
    token_expired: 'This link has expired. Ask for a new one.',
  },
} as const;

const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;

/** A button, not a confirmation on GET: mail scanners open links, only a person presses it. */
export function confirmPage(lang: PageLanguage, action: string, token: string): string {
  const x = TEXT[lang];
  return publicPage(lang, x.confirmTitle, `<p>${x.confirmLead}</p><form method="post" action="${escapeHtml(action)}">${hidden('token', token)}${hidden('lang', lang)}<button type="submit">${x.confirmButton}</button></form>`);
}

export function resetPage(lang: PageLanguage, action: string, token: string, problems: readonly string[] = []): string {
  const x = TEXT[lang];
  const errors = problems.length ? `<div role="alert"><p>${x.fix}</p><ul>${problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></div>` : '';
  return publicPage(
    lang,
    x.resetTitle,
    `${errors}<form method="post" action="${escapeHtml(action)}">${hidden('token', token)}${hidden('lang', lang)}
<label>${x.password} <input type="password" name="password" required minlength="10" maxlength="256" autocomplete="new-password"></label>
<label>${x.again} <input type="password" name="password_again" required minlength="10" maxlength="256" autocomplete="new-password"></label>
<button type="submit">${x.resetButton}</button></form>`,
  );
}

export const mismatchProblem = (lang: PageLanguage) => TEXT[lang].mismatch;

export function donePage(lang: PageLanguage, kind: 'confirmed' | 'reset'): string {
  const x = TEXT[lang];
  return publicPage(lang, kind === 'confirmed' ? x.confirmTitle : x.resetTitle, `<p role="status">${x[kind]}</p>`);
}

export function tokenProblemPage(lang: PageLanguage, kind: 'confirm' | 'reset', problem: TokenProblem): string {
  const x = TEXT[lang];
  return publicPage(lang, kind === 'confirm' ? x.confirmTitle : x.resetTitle, `<p role="alert">${x[problem]}</p>`);
}
