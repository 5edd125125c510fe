/*
 * How a text takes its values: `{name}` is replaced by `vars.name`, and `{name:one|other}` picks the
 * singular or the plural form for the number `vars.name` by the language's plural rules (French says
 * "0 ligne", English "0 lines"). The number may be given formatted ("1,234", "1 234").
 */
export type Vars = Record<string, string | number>;

const rules = new Map<string, Intl.PluralRules>();

/** The count a value stands for: a number, or a formatted integer with its group separators. */
function countOf(v: string | number): number {
  return typeof v === 'number' ? v : Number(v.replace(/[\s\u00a0\u202f,.'’]/g, ''));
}

export function interpolate(text: string, vars: Vars | undefined, lang: string): string {
  if (!vars) return text;
  return text.replace(/\{(\w+)(?::([^{}|]*)\|([^{}]*))?\}/g, (m, name: string, one: string | undefined, other: string | undefined) => {
    if (!(name in vars)) return m;
    if (one === undefined || other === undefined) return String(vars[name]);
    let pr = rules.get(lang);
    if (!pr) rules.set(lang, (pr = new Intl.PluralRules(lang)));
    const n = countOf(vars[name]!);
    return Number.isFinite(n) && pr.select(n) === 'one' ? one : other;
  });
}
