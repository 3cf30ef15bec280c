// A contact, company or deal: its key fields, its timeline with a quick log, and for a deal
// the stage path (click a stage to move it), its stage history and won / lost / reopen.
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react'
import { Icon } from '../../components/Icon'
import { Alert, Badge, Button, Dialog, Loading, useToast } from '../../components/ui'
import { ApiError, api, etagOf, request } from '../../lib/api'
import { formatDateTime, formatShortDate } from '../../lib/format'
import { useDocumentTitle } from '../../lib/hooks'
import type { ResourceMeta } from '../../lib/meta'
import { humanize, recordTitle } from '../../lib/meta'
import { Link, navigate } from '../../lib/router'
import { NotFound, PropertyList, useRecord } from '../../records/DetailView'
import { RefValue } from '../../records/FieldValue'
import { RecordForm } from '../../records/RecordForm'
import { formatMoney } from './money'
import { QuickLog, Timeline, type Subject, type TimelineHandle } from './Timeline'
import type { Deal, Stage, StageVisit } from './types'

const KEY_FIELDS: Record<Subject, string[]> = {
  deals: ['amount', 'probability', 'expected_close_date', 'owner_id', 'company_id', 'contact_id', 'pipeline_id', 'committed', 'tags', 'description'],
  contacts: ['email', 'phone', 'job_title', 'company_id', 'owner_id', 'address', 'tags'],
  companies: ['domain', 'website', 'industry', 'phone', 'parent_id', 'owner_id', 'address', 'tags'],
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  if (d > 0) return `${d} d ${h} h`
  if (h > 0) return `${h} h ${m} min`
  return m > 0 ? `${m} min` : 'under a minute'
}

function StagePath({ deal, stages, onMove }: { deal: Deal; stages: Stage[]; onMove: (s: Stage) => void }) {
  const open = stages.filter((s) => s.kind === 'open')
  const at = open.findIndex((s) => s.id === deal.stage_id)
  return (
    <ol className="crm-path" aria-label="Stages">
      {open.map((s, i) => (
        <li key={s.id} className={`${i < at || deal.status === 'won' ? 'done' : ''}${s.id === deal.stage_id ? ' current' : ''}`}>
          <button type="button" disabled={s.id === deal.stage_id} aria-current={s.id === deal.stage_id ? 'step' : undefined} title={`Move to ${s.name} (${s.probability}%)`} onClick={() => onMove(s)}>
            {s.name}
          </button>
        </li>
      ))}
    </ol>
  )
}

function StageHistory({ dealId, tick }: { dealId: string; tick: number }) {
  const [items, setItems] = useState<StageVisit[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    api
      .get<{ items: StageVisit[] }>(`/api/v1/crm/deals/${encodeURIComponent(dealId)}/stage-history`)
      .then((r) => setItems(r.items), (e: Error) => setError(e.message))
  }, [dealId, tick])
  if (error) return <Alert>{error}</Alert>
  if (!items) return <Loading />
  return (
    <ol className="crm-history" aria-label="Stage history">
      {[...items].reverse().map((v) => (
        <li key={v.id}>
          <span className={`dot crm-dot-${v.kind ?? 'open'}`} aria-hidden="true" />
          <span className="crm-history-stage">{v.stage ?? 'Deleted stage'}</span>
          <span className="small muted" title={`Entered ${formatDateTime(v.entered_at)}${v.left_at ? `, left ${formatDateTime(v.left_at)}` : ''}`}>
            {formatShortDate(v.entered_at)} · {v.left_at ? duration(v.seconds_in_stage) : `${duration(v.seconds_in_stage)} so far`}
          </span>
        </li>
      ))}
    </ol>
  )
}

function CloseDialog({ deal, kind, onClose, onDone }: { deal: Deal; kind: 'win' | 'lose'; onClose: () => void; onDone: (d: Deal) => void }) {
  const [reason, setReason] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const lost = kind === 'lose'
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (lost && !reason.trim()) {
      setError('Give a reason: it feeds the win/loss report.')
      return
    }
    setBusy(true)
    try {
      const res = await request<Deal>(`/api/v1/crm/deals/${deal.id}/${kind}`, { method: 'POST', json: { reason: reason.trim() }, ifMatch: etagOf(deal) })
      onDone(res.data)
      onClose()
    } catch (err) {
      setError(err instanceof ApiError ? (err.fieldErrors.reason ?? err.message) : (err as Error).message)
      setBusy(false)
    }
  }
  return (
    <Dialog
      title={lost ? 'Mark as lost' : 'Mark as won'}
      size="sm"
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" form="crm-close" variant="primary" busy={busy}>
            {lost ? 'Mark as lost' : 'Mark as won'}
          </Button>
        </>
      }
    >
      <form id="crm-close" className="field" onSubmit={submit}>
        <label className="field-label" htmlFor="crm-close-reason">
          {lost ? 'Why was it lost?' : 'Why was it won? (optional)'}
        </label>
        <input id="crm-close-reason" className="input" maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} aria-invalid={error ? true : undefined} />
        {error && (
          <p className="field-error" role="alert">
            {error}
          </p>
        )}
      </form>
    </Dialog>
  )
}

function Related({ title, path, render }: { title: string; path: string; render: (rec: Record<string, unknown>) => ReactNode }) {
  const [items, setItems] = useState<Record<string, unknown>[] | null>(null)
  useEffect(() => {
    api.get<{ items: Record<string, unknown>[] }>(path).then((r) => setItems(r.items), () => setItems([]))
  }, [path])
  if (!items || items.length === 0) return null
  return (
    <section className="card card-pad stack-sm" aria-label={title}>
      <h2 className="crm-side-title">{title}</h2>
      <ul className="crm-related">
        {items.map((r) => (
          <li key={String(r.id)}>{render(r)}</li>
        ))}
      </ul>
    </section>
  )
}

export function RecordPage({ resource, subject, id }: { resource: ResourceMeta; subject: Subject; id: string }) {
  const toast = useToast()
  const rec = useRecord(resource, id)
  const timeline = useRef<TimelineHandle>(null)
  const [editing, setEditing] = useState(false)
  const [closing, setClosing] = useState<'win' | 'lose' | null>(null)
  const [stages, setStages] = useState<Stage[]>([])
  const [tick, setTick] = useState(0)
  const record = rec.data?.record
  const title = record ? recordTitle(resource, record) : undefined
  useDocumentTitle(title)
  const deal = subject === 'deals' && record ? (record as unknown as Deal) : null
  const pipelineId = deal?.pipeline_id

  useEffect(() => {
    if (!pipelineId) return
    api
      .get<{ items: Stage[] }>(`/api/v1/crm/stages?pipeline_id=${encodeURIComponent(pipelineId)}&sort=position&limit=200`)
      .then((r) => setStages(r.items), () => setStages([]))
  }, [pipelineId])

  if (rec.error) return <NotFound resource={resource} error={rec.error} />
  if (!rec.data || !record) return <Loading />
  const { etag } = rec.data
  const allowed = (name: string) => resource.actions.some((a) => a.name === name && a.allowed)
  const deleted = Boolean(record.deleted_at)

  const changed = (d: Deal) => {
    rec.set(d as unknown as Record<string, unknown>)
    setTick((t) => t + 1)
    // Stage moves reach the timeline through their event; look a moment later.
    setTimeout(() => timeline.current?.reload(), 600)
    setTimeout(() => timeline.current?.reload(), 2000)
  }
  const act = async (action: string, body: Record<string, unknown>, done: string) => {
    try {
      const res = await request<Deal>(`${resource.path}/${id}/${action}`, { method: 'POST', json: body, ifMatch: etagOf(record) })
      changed(res.data)
      toast(done, 'success')
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }
  const stageName = (sid: string) => stages.find((s) => s.id === sid)?.name

  return (
    <div className="page">
      <div className="page-head">
        <div className="titles">
          <nav className="crumbs" aria-label="Breadcrumb">
            <Link to="/crm">CRM</Link>
            <span aria-hidden="true">/</span>
            <Link to={`/r/crm/${subject}`}>{resource.title}</Link>
          </nav>
          <h1 className="row">
            {title}
            {deal && <Badge tone={deal.status === 'won' ? 'success' : deal.status === 'lost' ? 'danger' : 'info'}>{deal.status === 'open' ? (stageName(deal.stage_id) ?? 'Open') : humanize(deal.status)}</Badge>}
            {deleted && <Badge tone="danger">Deleted</Badge>}
          </h1>
          {deal && (
            <p className="crm-deal-sub">
              <strong className="crm-figure">{formatMoney(deal.amount, deal.currency)}</strong>
              {deal.expected_close_date && <span className="muted"> · closes {formatShortDate(deal.expected_close_date)}</span>}
              {deal.company_id && (
                <span className="muted">
                  {' '}
                  · <RefValue refKey="crm.companies" id={deal.company_id} />
                </span>
              )}
            </p>
          )}
          {subject === 'contacts' && typeof record.job_title === 'string' && record.job_title && <p className="muted">{record.job_title}</p>}
        </div>
        {!deleted && (
          <div className="actions">
            {deal && deal.status === 'open' && allowed('win') && (
              <Button size="sm" variant="primary" icon="check-circle" onClick={() => setClosing('win')}>
                Won
              </Button>
            )}
            {deal && deal.status === 'open' && allowed('lose') && (
              <Button size="sm" icon="x" onClick={() => setClosing('lose')}>
                Lost
              </Button>
            )}
            {deal && deal.status !== 'open' && allowed('reopen') && (
              <Button size="sm" icon="rotate-ccw" onClick={() => void act('reopen', {}, 'Reopened')}>
                Reopen
              </Button>
            )}
            {resource.permissions.update && (
              <Button size="sm" icon="edit" onClick={() => setEditing((e) => !e)} aria-expanded={editing}>
                Edit
              </Button>
            )}
            <Button size="sm" variant="ghost" icon="more" onClick={() => navigate(`/r/crm/${subject}/${id}`)} title="Every field, the history, merge and delete">
              All fields
            </Button>
          </div>
        )}
      </div>
      {deal && deal.status !== 'open' && (deal.lost_reason || deal.won_reason) && (
        <Alert kind={deal.status === 'won' ? 'success' : 'warning'} title={deal.status === 'won' ? 'Won' : 'Lost'}>
          {deal.status === 'won' ? deal.won_reason : deal.lost_reason}
        </Alert>
      )}
      {deal && stages.length > 0 && deal.status === 'open' && !deleted && (
        <StagePath deal={deal} stages={stages} onMove={(s) => void act('move', { stage_id: s.id }, `Moved to ${s.name}`)} />
      )}
      {editing && (
        <section className="card card-pad">
          <RecordForm
            resource={resource}
            record={record}
            etag={etag}
            onCancel={() => setEditing(false)}
            onSaved={(r, e) => {
              rec.set(r, e)
              setEditing(false)
              toast('Saved', 'success')
              setTimeout(() => timeline.current?.reload(), 600)
            }}
          />
        </section>
      )}
      <div className="detail-grid crm-record-grid">
        <section className="card card-pad stack" aria-label="Activity">
          {!deleted && <QuickLog subject={subject} id={id} onLogged={(a) => timeline.current?.logged(a)} />}
          <Timeline ref={timeline} subject={subject} id={id} />
        </section>
        <aside className="stack" aria-label="About">
          <section className="card card-pad">
            <PropertyList resource={resource} record={record} compact fields={KEY_FIELDS[subject].filter((f) => resource.fields.some((x) => x.name === f))}
              render={deal ? { amount: () => formatMoney(deal.amount, deal.currency), probability: (v) => `${String(v)}%` } : undefined} />
          </section>
          {deal && (
            <section className="card card-pad stack-sm" aria-label="Stage history">
              <h2 className="crm-side-title">
                <Icon name="git-branch" size={15} /> Stage history
              </h2>
              <StageHistory dealId={id} tick={tick} />
            </section>
          )}
          {subject === 'companies' && (
            <>
              <Related title="Deals" path={`/api/v1/crm/deals?company_id=${id}&limit=10&sort=-updated_at`} render={(d) => <DealLine d={d} />} />
              <Related title="People" path={`/api/v1/crm/contacts?company_id=${id}&limit=10`} render={(c) => <Link to={`/crm/contacts/${String(c.id)}`}>{String(c.name || c.email)}</Link>} />
            </>
          )}
          {subject === 'contacts' && <Related title="Deals" path={`/api/v1/crm/deals?contact_id=${id}&limit=10&sort=-updated_at`} render={(d) => <DealLine d={d} />} />}
        </aside>
      </div>
      {closing && deal && (
        <CloseDialog
          deal={deal}
          kind={closing}
          onClose={() => setClosing(null)}
          onDone={(d) => {
            changed(d)
            toast(closing === 'win' ? 'Marked as won' : 'Marked as lost', 'success')
          }}
        />
      )}
    </div>
  )
}

function DealLine({ d }: { d: Record<string, unknown> }) {
  return (
    <span className="row" style={{ justifyContent: 'space-between', gap: 'var(--space-2)' }}>
      <Link to={`/crm/deals/${String(d.id)}`}>{String(d.title)}</Link>
      <span className="small muted nowrap">
        {formatMoney(String(d.amount), String(d.currency))} {d.status !== 'open' && <Badge tone={d.status === 'won' ? 'success' : 'danger'}>{String(d.status)}</Badge>}
      </span>
    </span>
  )
}
