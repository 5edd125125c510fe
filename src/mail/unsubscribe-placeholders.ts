/**
 * Unsubscribe placeholders as people coming from other platforms already type them.
 *
 * The bracket forms are rewritten in the template *source*, at compile time, into references to
 * Liquid variables. Doing it before Liquid (and before MJML) means the substitution only ever
 * touches what the template author wrote: a contact whose first name is "[UNSUBLINK]" is output as
 * that literal text, because Liquid never re-reads the values it outputs.
 */

export type UnsubscribeLanguage = 'fr' | 'en';

/**
 * The per-recipient unsubscribe link(s) given to the renderer: either one URL (the localised forms
 * then get a `lang=fr|en` query parameter), or a builder called with the wanted landing-page
 * language (`null`: the landing page chooses, e.g. from the contact's language).
 */
export type UnsubscribeLinks = string | ((language: UnsubscribeLanguage | null) => string);

/** The Liquid variables a template can use directly, and that the bracket forms become. */
export const UNSUBSCRIBE_VARIABLES = {
  default: 'unsubscribe_url',
  fr: 'unsubscribe_url_fr',
  en: 'unsubscribe_url_en',
} as const;

export type UnsubscribeVariables = Record<(typeof UNSUBSCRIBE_VARIABLES)[keyof typeof UNSUBSCRIBE_VARIABLES], string>;

// Also the percent-encoded form: WYSIWYG editors encode brackets when the placeholder is typed into
// a link's URL field, e.g. href="%5BUNSUBLINK%5D".
const BRACKET_FORM = /(?:\[|%5B)UNSUBLINK(?:_(FR|EN))?(?:\]|%5D)/gi;

/** Rewrites `[UNSUBLINK]`, `[UNSUBLINK_FR]`, `[UNSUBLINK_EN]` (any case) into Liquid variable references. */
export function replaceUnsubscribePlaceholders(source: string): string {
  return source.replace(BRACKET_FORM, (_match, lang: string | undefined) => {
    const key = lang ? (lang.toLowerCase() as UnsubscribeLanguage) : 'default';
    return `{{ ${UNSUBSCRIBE_VARIABLES[key]} }}`;
  });
}

/** True when the source uses any unsubscribe placeholder, bracket or Liquid form. */
export function usesUnsubscribePlaceholder(source: string): boolean {
  BRACKET_FORM.lastIndex = 0;
  return BRACKET_FORM.test(source) || /\{\{-?\s*unsubscribe_url(?:_fr|_en)?\b/.test(source);
}

/** The landing page in a given language: sets `lang` on the URL (replacing any previous value). */
export function localisedUnsubscribeUrl(url: string, language: UnsubscribeLanguage): string {
  try {
    const parsed = new URL(url);
    parsed.searchParams.set('lang', language);
    return parsed.toString();
  } catch {
    // Not an absolute URL (a relative link in a test or preview): append the parameter as text.
    const hash = url.indexOf('#');
    const [base, fragment] = hash === -1 ? [url, ''] : [url.slice(0, hash), url.slice(hash)];
    return `${base}${base.includes('?') ? '&' : '?'}lang=${language}${fragment}`;
  }
}

/** The three variables for one recipient, from their unsubscribe link or link builder. */
export function unsubscribeVariables(links: UnsubscribeLinks): UnsubscribeVariables {
  const build =
    typeof links === 'string'
      ? (language: UnsubscribeLanguage | null) => (language ? localisedUnsubscribeUrl(links, language) : links)
      : links;
  return {
    unsubscribe_url: build(null),
    unsubscribe_url_fr: build('fr'),
    unsubscribe_url_en: build('en'),
  };
}
