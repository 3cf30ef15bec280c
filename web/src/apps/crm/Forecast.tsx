// The forecast: open deals by expected close date and won deals by close date, per month or
// quarter, by owner or pipeline, in the org currency. Weighted = Σ amount × probability;
// committed = won + open deals their owner committed. A table with a column per period, a
// bar per period (weighted against committed), and the same numbers as CSV.
import { useEffect, useMemo, useState } from 'react'
import { Alert, Button, Loading, useToast } from '../../components/ui'
import { api, download } from '../../lib/api'
import { useAsync } from '../../lib/hooks'
import { setSearch, useLocation } from '../../lib/router'
import { RefValue } from '../../records/FieldValue'
import { formatMoney, fromCents, toCents } from './money'
import type { ForecastData, ForecastRow } from './types'

type Measure = 'weighted' | 'committed' | 'pipeline' | 'won'
const MEASURES: { id: Measure; label: string; hint: string }[] = [
  { id: 'weighted', label: 'Weighted', hint: 'Open amount × probability' },
  { id: 'committed', label: 'Committed', hint: 'Won, plus open deals their owner committed' },
  { id: 'pipeline', label: 'Pipeline', hint: 'Open amount' },
  { id: 'won', label: 'Won', hint: 'Closed won' },
]

export function forecastQuery(period: string, group: string, pipelineId?: string): URLSearchParams {
  const q = new URLSearchParams({ period, group_by: group === 'none' ? '' : group })
  if (pipelineId) q.set('pipeline_id', pipelineId)
  return q
}

/** The period label of a day, as the server names them (rules.period_of). */
export function periodOf(year: number, month: number, period: 'month' | 'quarter', fiscalStart = 1): string {
  if (period === 'month') return `${year}-${String(month).padStart(2, '0')}`
  const shifted = (((month - fiscalStart) % 12) + 12) % 12
  return `${month >= fiscalStart ? year : year - 1}-Q${Math.floor(shifted / 3) + 1}`
}

/** Every period from `from` to `to` (ISO dates), empty ones included, in order. */
export function periodsBetween(from: string, to: string, period: 'month' | 'quarter', fiscalStart = 1): string[] {
  const out: string[] = []
  let y = Number(from.slice(0, 4))
  let m = Number(from.slice(5, 7))
  const endY = Number(to.slice(0, 4))
  const endM = Number(to.slice(5, 7))
  for (let guard = 0; guard < 240 && (y < endY || (y === endY && m <= endM)); guard++) {
    const p = periodOf(y, m, period, fiscalStart)
    if (out[out.length - 1] !== p) out.push(p)
    m += 1
    if (m > 12) {
      m = 1
      y += 1
    }
  }
  return out
}

/** Rows of the pivot: one per owner / pipeline (or one "All deals"), cents per period. */
export function pivot(data: ForecastData, group: string, measure: Measure, fiscalStart = 1) {
  const periods = [...new Set([...periodsBetween(data.from, data.to, data.period, fiscalStart), ...data.rows.map((r) => r.period)])].sort()
  const key = (r: ForecastRow) => (group === 'owner' ? (r.owner_id ?? '') : group === 'pipeline' ? (r.pipeline_id ?? '') : '')
  const groups = new Map<string, Map<string, number>>()
  for (const r of data.rows) {
    const g = groups.get(key(r)) ?? new Map<string, number>()
    g.set(r.period, (g.get(r.period) ?? 0) + toCents(r[measure]))
    groups.set(key(r), g)
  }
  const rows = [...groups.entries()].map(([id, cells]) => ({ id, cells, total: [...cells.values()].reduce((a, b) => a + b, 0) }))
  rows.sort((a, b) => b.total - a.total)
  const perPeriod = new Map(periods.map((p) => [p, rows.reduce((acc, r) => acc + (r.cells.get(p) ?? 0), 0)]))
  return { periods, rows, perPeriod }
}

function periodLabel(p: string, fiscalStart = 1): string {
  const q = /^(\d{4})-Q(\d)$/.exec(p)
  if (q) return fiscalStart === 1 ? `Q${q[2]} ${q[1]}` : `Q${q[2]} FY${q[1]}`
  const m = /^(\d{4})-(\d{2})$/.exec(p)
  if (m) return new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric', timeZone: 'UTC' }).format(new Date(Date.UTC(+m[1]!, +m[2]! - 1, 1)))
  return p
}

function Bars({ data, fiscal }: { data: ForecastData; fiscal: number }) {
  const w = pivot(data, 'none', 'weighted', fiscal)
  const c = pivot(data, 'none', 'committed', fiscal)
  const periods = w.periods
  const max = Math.max(1, ...periods.map((p) => Math.max(w.perPeriod.get(p) ?? 0, c.perPeriod.get(p) ?? 0)))
  if (!periods.length) return null
  return (
    <figure className="crm-bars" aria-label="Weighted and committed by period">
      <div className="crm-bars-plot">
        {periods.map((p) => {
          const wv = w.perPeriod.get(p) ?? 0
          const cv = c.perPeriod.get(p) ?? 0
          return (
            <div key={p} className="crm-bar-group">
              <div className="crm-bar-pair">
                <span className="crm-bar weighted" style={{ height: `${(wv / max) * 100}%` }} title={`Weighted ${formatMoney(fromCents(wv), data.currency)}`} />
                <span className="crm-bar committed" style={{ height: `${(cv / max) * 100}%` }} title={`Committed ${formatMoney(fromCents(cv), data.currency)}`} />
              </div>
              <span className="small muted">{periodLabel(p, fiscal)}</span>
            </div>
          )
        })}
      </div>
      <figcaption className="row small muted">
        <span className="crm-swatch weighted" /> Weighted <span className="crm-swatch committed" /> Committed
      </figcaption>
    </figure>
  )
}

export function Forecast() {
  const { search } = useLocation()
  const toast = useToast()
  const period = search.get('period') === 'month' ? 'month' : 'quarter'
  const group = ['owner', 'pipeline', 'none'].includes(search.get('group') ?? '') ? search.get('group')! : 'owner'
  const pipelineId = search.get('pipeline') ?? undefined
  const [measure, setMeasure] = useState<Measure>('weighted')
  const [pipelines, setPipelines] = useState<{ id: string; name: string }[]>([])
  const [fiscal, setFiscal] = useState(1)
  const q = forecastQuery(period, group, pipelineId)
  const state = useAsync((signal) => api.get<ForecastData>(`/api/v1/crm/forecast?${q}`, signal), q.toString())

  useEffect(() => {
    api
      .get<{ items: { id: string; name: string }[] }>('/api/v1/crm/pipelines?limit=200&sort=name')
      .then((p) => setPipelines(p.items))
      .catch(() => setPipelines([]))
    api
      .get<{ fiscal_year_start_month: number }>('/api/v1/crm/settings')
      .then((s) => setFiscal(s.fiscal_year_start_month || 1))
      .catch(() => setFiscal(1))
  }, [])
  const pipelineName = useMemo(() => new Map(pipelines.map((p) => [p.id, p.name])), [pipelines])

  const data = state.data
  const table = data ? pivot(data, group, measure, fiscal) : null

  return (
    <div className="stack">
      <div className="toolbar crm-toolbar">
        <label className="row small">
          Period
          <select className="select select-sm" aria-label="Period" value={period} onChange={(e) => setSearch({ period: e.target.value === 'quarter' ? null : e.target.value })}>
            <option value="quarter">Quarter</option>
            <option value="month">Month</option>
          </select>
        </label>
        <label className="row small">
          Group by
          <select className="select select-sm" aria-label="Group by" value={group} onChange={(e) => setSearch({ group: e.target.value === 'owner' ? null : e.target.value })}>
            <option value="owner">Owner</option>
            <option value="pipeline">Pipeline</option>
            <option value="none">Nothing</option>
          </select>
        </label>
        {pipelines.length > 1 && (
          <label className="row small">
            Pipeline
            <select className="select select-sm" aria-label="Pipeline" value={pipelineId ?? ''} onChange={(e) => setSearch({ pipeline: e.target.value || null })}>
              <option value="">All pipelines</option>
              {pipelines.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <div className="seg" role="radiogroup" aria-label="Figure shown in the table">
          {MEASURES.map((m) => (
            <button key={m.id} type="button" role="radio" aria-checked={measure === m.id} className="seg-btn" title={m.hint} onClick={() => setMeasure(m.id)}>
              {m.label}
            </button>
          ))}
        </div>
        <span className="spacer" />
        <Button
          size="sm"
          icon="download"
          onClick={() => {
            const csv = new URLSearchParams(q)
            csv.set('format', 'csv')
            download(`/api/v1/crm/forecast?${csv}`, 'crm-forecast.csv').catch((err: Error) => toast(err.message, 'error'))
          }}
        >
          Export CSV
        </Button>
      </div>
      {state.error && <Alert title="Could not load the forecast">{state.error.message}</Alert>}
      {!data && !state.error && <Loading label="Loading the forecast…" />}
      {data && table && (
        <>
          {data.unconverted.length > 0 && (
            <Alert kind="warning">No exchange rate is stored for {data.unconverted.join(', ')}: those deals are left out of the totals.</Alert>
          )}
          <div className="crm-kpis">
            {MEASURES.map((m) => (
              <div key={m.id} className="card card-pad crm-kpi" title={m.hint}>
                <span className="small muted">{m.label}</span>
                <strong className="crm-figure" data-testid={`forecast-${m.id}`}>
                  {formatMoney(data.totals[m.id], data.currency)}
                </strong>
              </div>
            ))}
          </div>
          <div className="card card-pad">
            <Bars data={data} fiscal={fiscal} />
          </div>
          <div className="card table-wrap">
            <table className="table crm-forecast-table">
              <caption className="visually-hidden">
                {MEASURES.find((m) => m.id === measure)!.label} by {period} in {data.currency}
              </caption>
              <thead>
                <tr>
                  <th scope="col">{group === 'owner' ? 'Owner' : group === 'pipeline' ? 'Pipeline' : ''}</th>
                  {table.periods.map((p) => (
                    <th key={p} scope="col" className="num">
                      {periodLabel(p, fiscal)}
                    </th>
                  ))}
                  <th scope="col" className="num">
                    Total
                  </th>
                </tr>
              </thead>
              <tbody>
                {table.rows.length === 0 && (
                  <tr>
                    <td colSpan={table.periods.length + 2} className="muted">
                      No open deals close in these periods, and none were won.
                    </td>
                  </tr>
                )}
                {table.rows.map((r) => (
                  <tr key={r.id || 'none'}>
                    <th scope="row">
                      {group === 'owner' ? (
                        r.id ? <RefValue refKey="identity.users" id={r.id} link={false} /> : <span className="muted">No owner</span>
                      ) : group === 'pipeline' ? (
                        (pipelineName.get(r.id) ?? <RefValue refKey="crm.pipelines" id={r.id} link={false} />)
                      ) : (
                        'All deals'
                      )}
                    </th>
                    {table.periods.map((p) => (
                      <td key={p} className="num">
                        {r.cells.has(p) ? formatMoney(fromCents(r.cells.get(p)!), data.currency) : <span className="subtle">—</span>}
                      </td>
                    ))}
                    <td className="num">
                      <strong>{formatMoney(fromCents(r.total), data.currency)}</strong>
                    </td>
                  </tr>
                ))}
              </tbody>
              {table.rows.length > 1 && (
                <tfoot>
                  <tr>
                    <th scope="row">Total</th>
                    {table.periods.map((p) => (
                      <td key={p} className="num">
                        <strong>{formatMoney(fromCents(table.perPeriod.get(p) ?? 0), data.currency)}</strong>
                      </td>
                    ))}
                    <td className="num">
                      <strong>{formatMoney(data.totals[measure], data.currency)}</strong>
                    </td>
                  </tr>
                </tfoot>
              )}
            </table>
          </div>
          <p className="small subtle">
            From {data.from} to {data.to}. Open deals count in the period of their expected close date, won deals in the period they were won.
          </p>
        </>
      )}
    </div>
  )
}
