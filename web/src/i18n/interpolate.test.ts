import { describe, expect, it } from 'vitest';
import { interpolate } from './interpolate.ts';

describe('interpolate', () => {
  it('puts the values in', () => {
    expect(interpolate('Hello {name}, {missing}', { name: 'Ann' }, 'en')).toBe('Hello Ann, {missing}');
    expect(interpolate('no vars {x}', undefined, 'en')).toBe('no vars {x}');
  });

  it('picks the singular or plural by the language rules, numbers formatted or not', () => {
    const en = '{rows} {rows:line|lines} read';
    expect(interpolate(en, { rows: 1 }, 'en')).toBe('1 line read');
    expect(interpolate(en, { rows: '0' }, 'en')).toBe('0 lines read');
    expect(interpolate(en, { rows: '1,234' }, 'en')).toBe('1,234 lines read');
    const fr = '{rows} {rows:ligne lue|lignes lues}';
    expect(interpolate(fr, { rows: 1 }, 'fr')).toBe('1 ligne lue');
    expect(interpolate(fr, { rows: 0 }, 'fr')).toBe('0 ligne lue');
    expect(interpolate(fr, { rows: '2' }, 'fr')).toBe('2 lignes lues');
    expect(interpolate(fr, { rows: '1\u202f234' }, 'fr')).toBe('1\u202f234 lignes lues');
  });
});
