// The CRM reports (pipeline by stage, conversion per stage, win rate and sales cycle,
// activities per owner) as tables, each exportable as CSV with the same parameters.
import { useEffect, useState } from 'react'
import { Alert, Button, Loading, useToast } from '../../components/ui'
import { api, download } from '../../lib/api'
import { useAsync } from '../../lib/hooks'
import { humanize } from '../../lib/meta'
import { setSearch, useLocation } from '../../lib/router'
import { RefValue } from '../../records/FieldValue'
import { formatMoney } from './money'

const REPORTS = [
  { id: 'pipeline', label: 'Pipeline by stage', needsPipeline: true, range: false },
  { id: 'conversion', label: 'Conversion per stage', needsPipeline: true, range: true },
  { id: 'win-rate', label: 'Win rate and sales cycle', needsPipeline: false, range: true },
  { id: 'activities', label: 'Activities per owner', needsPipeline: false, range: true },
] as const

const MONEY = new Set(['amount', 'weighted'])
const HIDDEN = new Set(['stage_id', 'position'])

type Row = Record<string, unknown>

function Cell({ name, value, currency }: { name: string; value: unknown; currency?: string }) {
  if (name === 'owner_id') return value ? <RefValue refKey="identity.users" id={value} link={false} /> : <span className="muted">No owner</span>
  if (value === null || value === undefined) return <span className="subtle">—</span>
  if (MONEY.has(name) && currency) return <>{formatMoney(String(value), currency)}</>
  if (name.endsWith('_rate') && typeof value === 'number') return <>{(value * 100).toFixed(1)} %</>
  if (name === 'kind' || name === 'to') return <>{humanize(String(value))}</>
  return <>{String(value)}</>
}

export function Reports() {
  const { search } = useLocation()
  const toast = useToast()
  const report = REPORTS.find((r) => r.id === search.get('report')) ?? REPORTS[0]
  const [pipelines, setPipelines] = useState<{ id: string; name: string; is_default: boolean }[] | null>(null)
  const year = new Date().getFullYear()
  const from = search.get('from') ?? `${year}-01-01`
  const to = search.get('to') ?? new Date().toISOString().slice(0, 10)

  useEffect(() => {
    api
      .get<{ items: { id: string; name: string; is_default: boolean }[] }>('/api/v1/crm/pipelines?limit=200&sort=name')
      .then((p) => setPipelines(p.items), () => setPipelines([]))
  }, [])
  const pipelineId = search.get('pipeline') ?? pipelines?.find((p) => p.is_default)?.id ?? pipelines?.[0]?.id
  const q = new URLSearchParams()
  if (report.needsPipeline && pipelineId) q.set('pipeline_id', pipelineId)
  if (report.range) {
    q.set('from', from)
    q.set('to', to)
  }
  const ready = !report.needsPipeline || Boolean(pipelineId)
  const path = `/api/v1/crm/reports/${report.id}?${q}`
  const state = useAsync(
    (signal) => (ready ? api.get<{ rows: Row[]; totals?: Row; currency?: string }>(path, signal) : Promise.resolve(null)),
    ready ? path : 'waiting',
  )
  const data = state.data
  const columns = data?.rows[0] ? Object.keys(data.rows[0]).filter((k) => !HIDDEN.has(k)) : []

  return (
    <div className="stack">
      <div className="toolbar crm-toolbar">
        <label className="row small">
          Report
          <select className="select select-sm" aria-label="Report" value={report.id} onChange={(e) => setSearch({ report: e.target.value })}>
            {REPORTS.map((r) => (
              <option key={r.id} value={r.id}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        {report.needsPipeline && pipelines && pipelines.length > 0 && (
          <label className="row small">
            Pipeline
            <select className="select select-sm" aria-label="Pipeline" value={pipelineId ?? ''} onChange={(e) => setSearch({ pipeline: e.target.value })}>
              {pipelines.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
        )}
        {report.range && (
          <>
            <label className="row small">
              From
              <input className="input input-sm" type="date" aria-label="From" value={from} onChange={(e) => e.target.value && setSearch({ from: e.target.value })} />
            </label>
            <label className="row small">
              To
              <input className="input input-sm" type="date" aria-label="To" value={to} onChange={(e) => e.target.value && setSearch({ to: e.target.value })} />
            </label>
          </>
        )}
        <span className="spacer" />
        <Button
          size="sm"
          icon="download"
          disabled={!ready}
          onClick={() => {
            const csv = new URLSearchParams(q)
            csv.set('format', 'csv')
            download(`/api/v1/crm/reports/${report.id}?${csv}`, `crm-${report.id}.csv`).catch((err: Error) => toast(err.message, 'error'))
          }}
        >
          Export CSV
        </Button>
      </div>
      {pipelines && pipelines.length === 0 && report.needsPipeline && <Alert kind="info">Create a pipeline first.</Alert>}
      {state.error && <Alert title="Could not load the report">{state.error.message}</Alert>}
      {ready && !data && !state.error && <Loading label="Loading the report…" />}
      {data && (
        <div className="card table-wrap">
          <table className="table crm-forecast-table">
            <caption className="visually-hidden">{report.label}</caption>
            <thead>
              <tr>
                {columns.map((c) => (
                  <th key={c} scope="col" className={typeof data.rows[0]![c] === 'number' || MONEY.has(c) ? 'num' : undefined}>
                    {c === 'owner_id' ? 'Owner' : humanize(c.replace(/_days$/, ' (days)'))}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {data.rows.length === 0 && (
                <tr>
                  <td className="muted">Nothing in this range.</td>
                </tr>
              )}
              {data.rows.map((r, i) => (
                <tr key={i}>
                  {columns.map((c) => (
                    <td key={c} className={typeof r[c] === 'number' || MONEY.has(c) ? 'num' : undefined}>
                      <Cell name={c} value={r[c]} currency={data.currency} />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
            {data.totals && data.rows.length > 1 && (
              <tfoot>
                <tr>
                  {columns.map((c, i) => (
                    <td key={c} className={typeof data.totals![c] === 'number' ? 'num' : undefined}>
                      <strong>{i === 0 ? 'Total' : <Cell name={c} value={data.totals![c]} currency={data.currency} />}</strong>
                    </td>
                  ))}
                </tr>
              </tfoot>
            )}
          </table>
        </div>
      )}
    </div>
  )
}
