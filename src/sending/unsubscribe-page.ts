/**
 * The unsubscribe landing page, in French or English. Pure: the route gives what the page shows;
 * every value from the database is escaped here.
 */
import { escapeHtml, publicPage, type PageLanguage } from '../platform/public-page.ts';

export { pageLanguage } from '../platform/public-page.ts';

const TEXT = {
  fr: {
    title: 'Désabonnement',
    question: (aud: string, org: string) => `Ne plus recevoir les emails marketing de « ${aud} » (${org}) à l'adresse`,
    everything: (org: string) => `Ne plus recevoir aucun email marketing de ${org}, toutes listes confondues`,
    keep: 'Vous continuerez à recevoir les emails liés à vos inscriptions et à vos démarches (confirmations, informations pratiques).',
    confirm: 'Confirmer le désabonnement',
    done: (aud: string) => `C'est fait : vous ne recevrez plus d'emails marketing de « ${aud} ».`,
    doneAll: (org: string) => `C'est fait : vous ne recevrez plus aucun email marketing de ${org}.`,
    already: 'Vous êtes déjà désabonné(e) de ces emails.',
    invalid: "Ce lien de désabonnement n'est pas valide. Utilisez le lien reçu dans l'email, en entier.",
    invalidLink: "Ce lien n'est pas valide. Utilisez le lien reçu dans l'email, en entier.",
    linkTitle: 'Lien invalide',
  },
  en: {
    title: 'Unsubscribe',
    question: (aud: string, org: string) => `Stop marketing emails from "${aud}" (${org}) to`,
    everything: (org: string) => `Stop all marketing emails from ${org}, from every list`,
    keep: 'You will still receive the emails about your registrations and your own requests (confirmations, practical information).',
    confirm: 'Confirm unsubscribe',
    done: (aud: string) => `Done: you will no longer receive marketing emails from "${aud}".`,
    doneAll: (org: string) => `Done: you will no longer receive any marketing email from ${org}.`,
    already: 'You are already unsubscribed from these emails.',
    invalid: 'This unsubscribe link is not valid. Use the whole link from the email.',
    invalidLink: 'This link is not valid. Use the whole link from the email.',
    linkTitle: 'Invalid link',
  },
} as const;

function layout(lang: PageLanguage, body: string): string {
  return publicPage(lang, TEXT[lang].title, body);
}

export function confirmPage(lang: PageLanguage, t: { organisation: string; audience: string; maskedEmail: string; alreadyUnsubscribed: boolean; excluded: boolean }, action: string): string {
  const x = TEXT[lang];
  const org = escapeHtml(t.organisation);
  const aud = escapeHtml(t.audience);
  const lead = t.alreadyUnsubscribed ? `<p>${x.already}</p>` : `<p>${x.question(aud, org)} <strong>${escapeHtml(t.maskedEmail)}</strong>.</p>`;
  const everything = t.excluded ? '' : `<label><input type="checkbox" name="scope" value="organisation"> ${x.everything(org)}</label>`;
  const form = t.alreadyUnsubscribed && t.excluded ? '' : `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="lang" value="${lang}">${everything}<button type="submit">${x.confirm}</button></form>`;
  return layout(lang, `${lead}${form}<p class="note">${x.keep}</p>`);
}

export function donePage(lang: PageLanguage, t: { organisation: string; audience: string; everything: boolean }): string {
  const x = TEXT[lang];
  const msg = t.everything ? x.doneAll(escapeHtml(t.organisation)) : x.done(escapeHtml(t.audience));
  return layout(lang, `<p role="status">${msg}</p><p class="note">${x.keep}</p>`);
}

export function invalidPage(lang: PageLanguage, of: 'unsubscribe' | 'link' = 'unsubscribe'): string {
  const x = TEXT[lang];
  return of === 'link' ? publicPage(lang, x.linkTitle, `<p>${x.invalidLink}</p>`) : layout(lang, `<p>${x.invalid}</p>`);
}
