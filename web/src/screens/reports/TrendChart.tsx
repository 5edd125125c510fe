import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useFormat, useT } from '../../i18n/index.tsx';
import type { Series } from './data.ts';
import { messages } from './messages.ts';

export const MEASURES = ['sent', 'delivered', 'opened_unique', 'clicked_unique', 'bounced', 'complained', 'unsubscribed'] as const;
export type Measure = (typeof MEASURES)[number];
// Distinct for the common kinds of colour blindness, in the order of the legend.
const COLOURS: Record<Measure, string> = { sent: '#2456c9', delivered: '#1d7a3a', opened_unique: '#8f5bd6', clicked_unique: '#e08a00', bounced: '#b3261e', complained: '#6b3f1f', unsubscribed: '#5b6474' };

/** The trend of a report: one line per measure, a point per bucket; the same numbers are in the data table below it. */
export function TrendChart({ series }: { series: Series }) {
  const t = useT(messages);
  const fmt = useFormat();
  const label = (start: string) => (series.bucket === 'hour' ? fmt.dateTime(start) : fmt.date(start));
  const data = series.buckets.map((b) => ({ label: label(b.start), ...Object.fromEntries(MEASURES.map((m) => [m, b[m]])) }));
  return (
    <figure className="trend" aria-label={t('rep.chart')}>
      <ResponsiveContainer width="100%" height={320}>
        <LineChart data={data} margin={{ top: 10, right: 20, bottom: 10, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e3e6ec" />
          <XAxis dataKey="label" minTickGap={28} tick={{ fontSize: 12 }} />
          <YAxis allowDecimals={false} tick={{ fontSize: 12 }} width={48} />
          <Tooltip formatter={(v) => fmt.number(Number(v))} />
          <Legend itemSorter={null} />
          {MEASURES.map((m) => (
            <Line key={m} type="monotone" dataKey={m} name={t(`rep.m.${m}`)} stroke={COLOURS[m]} strokeWidth={2} dot={false} isAnimationActive={false} />
          ))}
        </LineChart>
      </ResponsiveContainer>
      <figcaption className="visually-hidden">{t('rep.chartCaption')}</figcaption>
    </figure>
  );
}
