import { Link } from 'react-router-dom';
import { useLang, useFormat, useT } from '../../../i18n/index.tsx';
import { messages } from './messages.ts';
import './shared.css';

export type Explanation = { fr: string; en: string };
/** The first recipients a dry run skipped under a rule, with the reason for each. */
export type Skipped = Array<{ contact_id: string; email: string; detail: string }>;

/**
 * "Blocked, by rule": each rule's count, its name, and why it blocks when the API explained it; with
 * `skipped` (a dry run's), who it skipped, each linked to the contact.
 */
export function RuleCounts({
  blocked,
  explanations,
  label,
  skipped,
  audienceId,
}: {
  blocked: Record<string, number>;
  explanations?: Record<string, Explanation>;
  label?: string;
  skipped?: Record<string, Skipped>;
  audienceId?: string;
}) {
  const t = useT(messages);
  const fmt = useFormat();
  const { lang } = useLang();
  const ruleName = useRuleName();
  const rules = Object.entries(blocked).filter(([, n]) => n > 0);
  const title = label ?? t('shr.rules');
  if (!rules.length) return <p className="muted">{t('shr.noneBlocked')}</p>;
  return (
    <table className="simple rule-counts" aria-label={title}>
      <caption className="visually-hidden">{title}</caption>
      <tbody>
        {rules.map(([rule, n]) => (
          <tr key={rule} data-rule={rule}>
            <th scope="row">
              {ruleName(rule)} <code className="muted">{rule}</code>
              {explanations?.[rule] && <div className="rule-why">{explanations[rule][lang]}</div>}
              {skipped?.[rule]?.length ? (
                <details className="rule-who">
                  <summary>{skipped[rule].length < n ? t('shr.whoFirst', { n: fmt.number(skipped[rule].length) }) : t('shr.who')}</summary>
                  <ul aria-label={t('shr.whoLabel', { rule: ruleName(rule) })}>
                    {skipped[rule].map((x) => (
                      // The rule's explanation above is the translated reason; the API's detail (English) is a tooltip.
                      <li key={x.contact_id} title={x.detail}>
                        {audienceId ? <Link to={`/audiences/${audienceId}/contacts/${x.contact_id}`}>{x.email}</Link> : x.email}
                      </li>
                    ))}
                  </ul>
                </details>
              ) : null}
            </th>
            <td className="num">{fmt.number(n)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

type RuleKey = Extract<keyof typeof messages.en, `shr.rule.${string}`>;
const isRuleKey = (k: string): k is RuleKey => k in messages.en;

/** A policy rule's name in the interface language (its code when this version does not know it). */
export function useRuleName() {
  const t = useT(messages);
  return (rule: string) => {
    const key = `shr.rule.${rule}`;
    return isRuleKey(key) ? t(key) : rule;
  };
}

/** A rate of 0..1 as a percentage in the interface language; a dash when there was nothing to divide by. */
export function usePercent() {
  const fmt = useFormat();
  const nf = new Intl.NumberFormat(fmt.locale, { style: 'percent', maximumFractionDigits: 1 });
  return (rate: number | null | undefined) => (typeof rate === 'number' ? nf.format(rate) : '–');
}
