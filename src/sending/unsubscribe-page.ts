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

const ANSWER = {
  fr: {
    title: 'Vos emails',
    yesQuestion: (aud: string, org: string) => `Oui, je souhaite continuer à recevoir les emails d'information de « ${aud} » (${org}).`,
    noQuestion: (aud: string, org: string) => `Non, je ne souhaite plus recevoir les emails d'information de « ${aud} » (${org}).`,
    yesButton: 'Oui, je confirme',
    noButton: 'Non merci, je me désabonne',
    yesDone: 'Merci pour votre confirmation : vous continuerez à recevoir nos emails.',
    noDone: "C'est noté : vous ne recevrez plus nos emails d'information.",
    invalid: "Ce lien n'est pas valide. Utilisez le lien reçu dans l'email, en entier.",
  },
  en: {
    title: 'Your emails',
    yesQuestion: (aud: string, org: string) => `Yes, I want to keep receiving the newsletter emails of "${aud}" (${org}).`,
    noQuestion: (aud: string, org: string) => `No, I no longer want the newsletter emails of "${aud}" (${org}).`,
    yesButton: 'Yes, I confirm',
    noButton: 'No thanks, unsubscribe me',
    yesDone: 'Thank you for confirming: you will keep receiving our emails.',
    noDone: 'Noted: you will no longer receive our newsletter emails.',
    invalid: 'This link is not valid. Use the whole link from the email.',
  },
} as const;

/** The sentence a YES confirms: recorded in the ledger as the wording of the consent. */
export function answerWording(lang: PageLanguage, answer: 'yes' | 'no', t: { organisation: string; audience: string }): string {
  return answer === 'yes' ? ANSWER[lang].yesQuestion(t.audience, t.organisation) : ANSWER[lang].noQuestion(t.audience, t.organisation);
}

/**
 * The page a YES or NO link opens: the answer is recorded by its button (a POST), not by the GET,
 * so that a mail scanner opening links cannot answer for the person.
 */
export function answerPage(lang: PageLanguage, answer: 'yes' | 'no', t: { organisation: string; audience: string; maskedEmail: string }, action: string): string {
  const x = ANSWER[lang];
  const sentence = escapeHtml(answerWording(lang, answer, t));
  return publicPage(
    lang,
    x.title,
    `<p>${sentence}</p><p class="note">${escapeHtml(t.maskedEmail)}</p><form method="post" action="${escapeHtml(action)}"><input type="hidden" name="lang" value="${lang}"><button type="submit">${answer === 'yes' ? x.yesButton : x.noButton}</button></form>`,
  );
}

export function answerDonePage(lang: PageLanguage, answer: 'yes' | 'no'): string {
  const x = ANSWER[lang];
  return publicPage(lang, x.title, `<p role="status">${answer === 'yes' ? x.yesDone : x.noDone}</p>`);
}

export function answerInvalidPage(lang: PageLanguage): string {
  return publicPage(lang, ANSWER[lang].title, `<p>${ANSWER[lang].invalid}</p>`);
}
