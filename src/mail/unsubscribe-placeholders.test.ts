import { describe, expect, it } from 'vitest';
import {
  localisedUnsubscribeUrl,
  replaceUnsubscribePlaceholders,
  unsubscribeVariables,
  usesUnsubscribePlaceholder,
} from './unsubscribe-placeholders.ts';

describe('unsubscribe placeholders', () => {
  it('rewrites every bracket form into a Liquid variable', () => {
    expect(replaceUnsubscribePlaceholders('[UNSUBLINK] [UNSUBLINK_FR] [UNSUBLINK_EN] [unsublink_fr] %5BUNSUBLINK_EN%5D')).toBe(
      '{{ unsubscribe_url }} {{ unsubscribe_url_fr }} {{ unsubscribe_url_en }} {{ unsubscribe_url_fr }} {{ unsubscribe_url_en }}',
    );
  });

  it('leaves lookalikes alone', () => {
    const text = '[UNSUBLINK_DE] [UNSUB] UNSUBLINK [ UNSUBLINK ] {{ unsubscribe_url }}';
    expect(replaceUnsubscribePlaceholders(text)).toBe(text);
  });

  it('tells whether a source links to the unsubscribe page', () => {
    expect(usesUnsubscribePlaceholder('x [UNSUBLINK_EN]')).toBe(true);
    expect(usesUnsubscribePlaceholder('<a href="{{unsubscribe_url}}">')).toBe(true);
    expect(usesUnsubscribePlaceholder('<a href="{{- unsubscribe_url_fr }}">')).toBe(true);
    expect(usesUnsubscribePlaceholder('{{ unsubscribe_urls }} [UNSUB]')).toBe(false);
    expect(usesUnsubscribePlaceholder('[unsublink]')).toBe(true); // the same regex twice in a row
  });

  it('localises the landing page with a lang parameter', () => {
    expect(localisedUnsubscribeUrl('https://u.example/u/t0k', 'fr')).toBe('https://u.example/u/t0k?lang=fr');
    expect(localisedUnsubscribeUrl('https://u.example/u/t0k?a=1&lang=de#f', 'en')).toBe('https://u.example/u/t0k?a=1&lang=en#f');
    expect(localisedUnsubscribeUrl('/u/t0k?a=1#f', 'fr')).toBe('/u/t0k?a=1&lang=fr#f');
  });

  it('builds the three variables from a URL or a builder', () => {
    expect(unsubscribeVariables('https://u.example/1')).toEqual({
      unsubscribe_url: 'https://u.example/1',
      unsubscribe_url_fr: 'https://u.example/1?lang=fr',
      unsubscribe_url_en: 'https://u.example/1?lang=en',
    });
    expect(unsubscribeVariables((lang) => `https://u.example/${lang ?? 'auto'}/1`)).toEqual({
      unsubscribe_url: 'https://u.example/auto/1',
      unsubscribe_url_fr: 'https://u.example/fr/1',
      unsubscribe_url_en: 'https://u.example/en/1',
    });
  });
});
