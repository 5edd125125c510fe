import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { en, type CommonKey } from './en.ts';
import { fr } from './fr.ts';
import { interpolate, type Vars } from './interpolate.ts';

export type Lang = 'en' | 'fr';
export const LANGS: Lang[] = ['en', 'fr'];
const STORAGE_KEY = 'envoi.lang';

export type Messages = Record<string, string>;
/** A screen's own words: English is the reference, French must have every key (checked by tsc). */
export interface Dictionary<M extends Messages> {
  en: M;
  fr: { [K in keyof M]: string };
}
export function defineMessages<const M extends Messages>(d: Dictionary<M>): Dictionary<M> {
  return d;
}

export type { Vars };
export type Translate<K extends string = CommonKey> = (key: K, vars?: Vars) => string;

const COMMON: Record<Lang, Record<string, string>> = { en, fr };


function initialLang(): Lang {
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  if (saved === 'en' || saved === 'fr') return saved;
  return /^fr\b/i.test(globalThis.navigator?.language ?? '') ? 'fr' : 'en';
}

const LangContext = createContext<{ lang: Lang; setLang(l: Lang): void }>({ lang: 'en', setLang: () => {} });

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const setLang = useCallback((l: Lang) => {
    localStorage.setItem(STORAGE_KEY, l);
    setLangState(l);
  }, []);
  const value = useMemo(() => ({ lang, setLang }), [lang, setLang]);
  return <LangContext.Provider value={value}>{children}</LangContext.Provider>;
}

export function useLang() {
  return useContext(LangContext);
}

/**
 * `t(key, vars)` over the shared words plus, when given, a screen's own dictionary;
 * `{name}` in a text is replaced by `vars.name`, and `{name:line|lines}` is the singular or the
 * plural for the number `vars.name` (interpolate.ts).
 */
export function useT<M extends Messages = Record<never, string>>(dict?: Dictionary<M>): Translate<CommonKey | (keyof M & string)> {
  const { lang } = useLang();
  return useCallback(
    (key: string, vars?: Vars) => {
      const own = dict?.[lang] as Record<string, string> | undefined;
      const text = own?.[key] ?? COMMON[lang][key] ?? (dict?.en as Record<string, string> | undefined)?.[key] ?? COMMON.en[key] ?? key;
      return interpolate(text, vars, lang);
    },
    [lang, dict],
  );
}

/** Dates and numbers in the interface language. */
export function useFormat() {
  const { lang } = useLang();
  return useMemo(() => {
    const locale = lang === 'fr' ? 'fr-FR' : 'en-GB';
    const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'short', timeStyle: 'short' });
    const date = new Intl.DateTimeFormat(locale, { dateStyle: 'medium' });
    const number = new Intl.NumberFormat(locale);
    const parse = (v: unknown) => (v instanceof Date ? v : typeof v === 'string' || typeof v === 'number' ? new Date(v) : null);
    return {
      locale,
      dateTime: (v: unknown) => {
        const d = parse(v);
        return d && !Number.isNaN(d.getTime()) ? dateTime.format(d) : '';
      },
      /** In a named zone (an event's), not the browser's; the browser's when the zone is unknown. */
      dateTimeIn: (v: unknown, timeZone: string) => {
        const d = parse(v);
        if (!d || Number.isNaN(d.getTime())) return '';
        try {
          return new Intl.DateTimeFormat(locale, { dateStyle: 'short', timeStyle: 'short', timeZone }).format(d);
        } catch {
          return dateTime.format(d);
        }
      },
      date: (v: unknown) => {
        const d = parse(v);
        return d && !Number.isNaN(d.getTime()) ? date.format(d) : '';
      },
      number: (n: number | null | undefined) => (typeof n === 'number' ? number.format(n) : ''),
    };
  }, [lang]);
}
