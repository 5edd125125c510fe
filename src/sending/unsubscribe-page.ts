/**
 * The unsubscribe landing page, in French or English. Pure: the route gives what the page shows;
 * every value from the database is escaped here.
 */
export type PageLanguage = 'fr' | 'en';

export function pageLanguage(lang: unknown, acceptLanguage: string | undefined): PageLanguage {
  if (lang === 'fr' || lang === 'en') return lang;
  // The first of fr / en in the browser's preference order; English otherwise.
  for (const part of (acceptLanguage ?? '').split(',')) {
    const tag = part.split(';')[0]!.trim().toLowerCase();
    if (tag.startsWith('fr')) return 'fr';
    if (tag.startsWith('en')) return 'en';
  }
  return 'en';
}

export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

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
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${TEXT[lang].title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222;line-height:1.5}button{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:0;background:#1f5fbf;color:#fff;cursor:pointer}label{display:block;margin:1rem 0}p.note{color:#555;font-size:.9rem}</style></head><body><main>${body}</main></body></html>`;
}

export function confirmPage(lang: PageLanguage, t: { organisation: string; audience: string; maskedEmail: string; alreadyUnsubscribed: boolean; excluded: boolean }, action: string): string {
  const x = TEXT[lang];
  const org = escapeHtml(t.organisation);
  const aud = escapeHtml(t.audience);
  const lead = t.alreadyUnsubscribed ? `<p>${x.already}</p>` : `<p>${x.question(aud, org)} <strong>${escapeHtml(t.maskedEmail)}</strong>.</p>`;
  const everything = t.excluded ? '' : `<label><input type="checkbox" name="scope" value="organisation"> ${x.everything(org)}</label>`;
  const form = t.alreadyUnsubscribed && t.excluded ? '' : `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="lang" value="${lang}">${everything}<button type="submit">${x.confirm}</button></form>`;
  return layout(lang, `<h1>${x.title}</h1>${lead}${form}<p class="note">${x.keep}</p>`);
}

export function donePage(lang: PageLanguage, t: { organisation: string; audience: string; everything: boolean }): string {
  const x = TEXT[lang];
  const msg = t.everything ? x.doneAll(escapeHtml(t.organisation)) : x.done(escapeHtml(t.audience));
  return layout(lang, `<h1>${x.title}</h1><p role="status">${msg}</p><p class="note">${x.keep}</p>`);
}

export function invalidPage(lang: PageLanguage, of: 'unsubscribe' | 'link' = 'unsubscribe'): string {
  const x = TEXT[lang];
  return of === 'link' ? layout(lang, `<h1>${x.linkTitle}</h1><p>${x.invalidLink}</p>`) : layout(lang, `<h1>${x.title}</h1><p>${x.invalid}</p>`);
}
