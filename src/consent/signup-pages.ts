/** The public pages of a signup form, in the form's language. Every value is escaped here. */
import { escapeHtml, publicPage, type PageLanguage } from '../platform/public-page.ts';

const TEXT = {
  fr: {
    title: 'Abonnement',
    email: 'Adresse email',
    firstName: 'Prénom (facultatif)',
    submit: "S'abonner",
    inbox: "Merci ! Un email de confirmation vient de vous être envoyé. Cliquez sur le lien qu'il contient pour confirmer votre abonnement : sans cela, nous ne vous enverrons rien.",
    confirmed: 'Votre abonnement est confirmé. Merci !',
    already: 'Votre abonnement était déjà confirmé.',
    invalid: "Ce lien de confirmation n'est pas valide. Utilisez le lien reçu par email, en entier.",
    expired: "Ce lien de confirmation a expiré. Abonnez-vous à nouveau pour en recevoir un autre.",
    fix: 'Merci de corriger :',
    confirmLead: 'Un dernier pas : confirmez votre abonnement.',
    confirmButton: 'Je confirme mon abonnement',
  },
  en: {
    title: 'Subscribe',
    email: 'Email address',
    firstName: 'First name (optional)',
    submit: 'Subscribe',
    inbox: 'Thank you! A confirmation email is on its way. Click the link in it to confirm your subscription: until then we send you nothing.',
    confirmed: 'Your subscription is confirmed. Thank you!',
    already: 'Your subscription was already confirmed.',
    invalid: 'This confirmation link is not valid. Use the whole link from the email.',
    expired: 'This confirmation link has expired. Subscribe again to get a new one.',
    fix: 'Please correct:',
    confirmLead: 'One last step: confirm your subscription.',
    confirmButton: 'Confirm my subscription',
  },
} as const;

export function formPage(lang: PageLanguage, form: { name: string; wording: string }, action: string, problems: readonly string[] = [], email = ''): string {
  const x = TEXT[lang];
  const errors = problems.length ? `<div role="alert"><p>${x.fix}</p><ul>${problems.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></div>` : '';
  return publicPage(
    lang,
    form.name || x.title,
    `${errors}<form method="post" action="${escapeHtml(action)}">
<label>${x.email} <input type="email" name="email" required autocomplete="email" value="${escapeHtml(email)}"></label>
<label>${x.firstName} <input type="text" name="first_name" autocomplete="given-name"></label>
<label><input type="checkbox" name="consent" value="yes" required> ${escapeHtml(form.wording)}</label>
<input class="hp" type="text" name="website" value="" tabindex="-1" autocomplete="off" aria-hidden="true">
<button type="submit">${x.submit}</button></form>`,
  );
}

/** The page the confirmation link opens: the button posts back to the same address. */
export function confirmPage(lang: PageLanguage, form: { name: string; wording: string }, action: string): string {
  const x = TEXT[lang];
  return publicPage(lang, form.name || x.title, `<p>${x.confirmLead}</p><p class="note">« ${escapeHtml(form.wording)} »</p><form method="post" action="${escapeHtml(action)}"><button type="submit">${x.confirmButton}</button></form>`);
}

export function messagePage(lang: PageLanguage, kind: 'inbox' | 'confirmed' | 'already' | 'invalid' | 'expired'): string {
  const x = TEXT[lang];
  return publicPage(lang, x.title, `<p role="status">${x[kind]}</p>`);
}
