import { useState } from 'react';
import { apiUrl } from '../../api.ts';
import { QueryStatus } from '../../components/Status.tsx';
import { useFormat, useT } from '../../i18n/index.tsx';
import { usePercent } from '../campaigns/shared/rules.tsx';
import { RANGES, seriesQuery, useClickers, useLinks, useSeries, type ClickerScope, type Figures, type RangeKey, type Scope, type Series } from './data.ts';
import { messages } from './messages.ts';
import { MEASURES, TrendChart } from './TrendChart.tsx';

function Totals({ totals }: { totals: Figures }) {
  const t = useT(messages);
  const fmt = useFormat();
  const pct = usePercent();
  const cells: [string, number, number | null | undefined][] = [
    ['sent', totals.sent, undefined],
    ['delivered', totals.delivered, totals.rates.delivered],
    ['opened_unique', totals.opened_unique, totals.rates.open],
    ['clicked_unique', totals.clicked_unique, totals.rates.click],
    ['bounced', totals.bounced, totals.rates.bounce],
    ['complained', totals.complained, totals.rates.complaint],
    ['unsubscribed', totals.unsubscribed, totals.rates.unsubscribe],
  ];
  return (
    <dl className="figures" aria-label={t('rep.totals')}>
      {cells.map(([k, n, rate]) => (
        <div key={k}>
          <dt>{t(`rep.m.${k as (typeof MEASURES)[number]}`)}</dt>
          <dd data-figure={k}>
            {fmt.number(n)}
            {rate !== undefined && <small aria-label={t('rep.rateOf', { rate: pct(rate) })}>{pct(rate)}</small>}
          </dd>
        </div>
      ))}
    </dl>
  );
}

function DataTable({ series }: { series: Series }) {
  const t = useT(messages);
  const fmt = useFormat();
  const pct = usePercent();
  const rows = series.buckets.filter((b) => MEASURES.some((m) => b[m] > 0));
  return (
    <details>
      <summary>{t('rep.table')}</summary>
      {rows.length === 0 ? (
        <p className="muted">{t('rep.nothing')}</p>
      ) : (
        <table className="simple">
          <caption className="visually-hidden">{t('rep.table')}</caption>
          <thead>
            <tr>
              <th scope="col">{t(series.bucket === 'hour' ? 'rep.hour' : 'rep.day')}</th>
              {MEASURES.map((m) => (
                <th key={m} scope="col" className="num">
                  {t(`rep.m.${m}`)}
                </th>
              ))}
              <th scope="col" className="num">
                {t('rep.openRate')}
              </th>
              <th scope="col" className="num">
                {t('rep.clickRate')}
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((b) => (
              <tr key={b.start}>
                <th scope="row">{series.bucket === 'hour' ? fmt.dateTime(b.start) : fmt.date(b.start)}</th>
                {MEASURES.map((m) => (
                  <td key={m} className="num">
                    {fmt.number(b[m])}
                  </td>
                ))}
                <td className="num">{pct(b.rates.open)}</td>
                <td className="num">{pct(b.rates.click)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </details>
  );
}

function Links({ scope, clickersOf }: { scope: Scope; clickersOf?: ClickerScope }) {
  const t = useT(messages);
  const fmt = useFormat();
  const links = useLinks(scope);
  const [url, setUrl] = useState<string | null>(null);
  return (
    <section className="card" aria-labelledby="rep-links-title">
      <h2 id="rep-links-title">{t('rep.links')}</h2>
      <QueryStatus query={links}>
        {links.data?.length ? (
          <table className="simple" aria-label={t('rep.linkTable')}>
            <thead>
              <tr>
                <th scope="col">{t('rep.link')}</th>
                <th scope="col" className="num">
                  {t('rep.clicks')}
                </th>
                <th scope="col" className="num">
                  {t('rep.clickers')}
                </th>
                {clickersOf && <th scope="col">{t('rep.who')}</th>}
              </tr>
            </thead>
            <tbody>
              {links.data.map((l) => (
                <tr key={l.url}>
                  <td className="url">{l.url}</td>
                  <td className="num">{fmt.number(l.clicks)}</td>
                  <td className="num">{fmt.number(l.unique_clickers)}</td>
                  {clickersOf && (
                    <td>
                      <button type="button" className="link" aria-pressed={url === l.url} onClick={() => setUrl(url === l.url ? null : l.url)}>
                        {t('rep.whoClicked')}
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">{t('rep.noClicks')}</p>
        )}
      </QueryStatus>
      {/* Keyed on the link: another link starts at its first page, not at the offset reached on this one. */}
      {clickersOf && <Clickers key={`${JSON.stringify(clickersOf)} ${url ?? ''}`} of={clickersOf} url={url} />}
    </section>
  );
}

function Clickers({ of, url }: { of: ClickerScope; url: string | null }) {
  const t = useT(messages);
  const fmt = useFormat();
  const [offset, setOffset] = useState(0);
  const clickers = useClickers(of, url, offset);
  return (
    <div className="clickers">
      <div className="subhead">
        <h3>{url ? t('rep.whoClickedUrl', { url }) : t('rep.whoClickedAll')}</h3>
        <a href={apiUrl('/v1/reports/clickers', { ...of, url, format: 'csv' })} download>
          {t('rep.exportClickers')}
        </a>
      </div>
      <QueryStatus query={clickers}>
        {clickers.data?.length ? (
          <>
            <table className="simple" aria-label={t('rep.clickerList')}>
              <thead>
                <tr>
                  <th scope="col">{t('rep.email')}</th>
                  <th scope="col">{t('rep.link')}</th>
                  <th scope="col">{t('rep.firstClick')}</th>
                  <th scope="col" className="num">
                    {t('rep.clicks')}
                  </th>
                </tr>
              </thead>
              <tbody>
                {clickers.data.map((c) => (
                  <tr key={`${c.delivery_id} ${c.url}`}>
                    <td>{c.email}</td>
                    <td className="url">{c.url}</td>
                    <td>{fmt.dateTime(c.first_click_at)}</td>
                    <td className="num">{fmt.number(c.clicks)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {(offset > 0 || clickers.data.length === 50) && (
              <div className="toolbar">
                <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 50))}>
                  {t('rep.previous')}
                </button>
                <button type="button" disabled={clickers.data.length < 50} onClick={() => setOffset(offset + 50)}>
                  {t('rep.next')}
                </button>
              </div>
            )}
          </>
        ) : (
          <p className="muted">{t('rep.nobodyClicked')}</p>
        )}
      </QueryStatus>
    </div>
  );
}

/** A report: totals with their rates, the trend over time, the links, who clicked (campaigns), and CSV exports. */
export function ReportView({ scope, clickersOf, defaultRange = '30d' }: { scope: Scope; clickersOf?: ClickerScope; defaultRange?: RangeKey }) {
  const t = useT(messages);
  const [range, setRange] = useState<RangeKey>(defaultRange);
  const series = useSeries(scope, range);
  return (
    <>
      <section className="card" aria-labelledby="rep-trend-title">
        <div className="card-head">
          <h2 id="rep-trend-title">{t('rep.trend')}</h2>
          <div className="toolbar">
            <label>
              <span className="visually-hidden">{t('rep.range')}</span>
              <select aria-label={t('rep.range')} value={range} onChange={(e) => setRange(e.target.value as RangeKey)}>
                {(Object.keys(RANGES) as RangeKey[]).map((r) => (
                  <option key={r} value={r}>
                    {t(`rep.range.${r}`)}
                  </option>
                ))}
              </select>
            </label>
            <a className="button" href={apiUrl('/v1/reports/series', { ...seriesQuery(scope, range), format: 'csv' })} download>
              {t('rep.exportSeries')}
            </a>
          </div>
        </div>
        <QueryStatus query={series}>
          {series.data && (
            <>
              <Totals totals={series.data.totals} />
              <TrendChart series={series.data} />
              <DataTable series={series.data} />
            </>
          )}
        </QueryStatus>
      </section>
      <Links scope={scope} clickersOf={clickersOf} />
    </>
  );
}
