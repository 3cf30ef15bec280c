// A record's history from the audit trail: who did what, when, and which fields changed.
import { useEffect, useState } from 'react'
import { Icon } from '../components/Icon'
import { Alert, Button, EmptyState, Loading } from '../components/ui'
import { ApiError, api } from '../lib/api'
import { formatDateTime, formatValue, timeAgo } from '../lib/format'
import type { FieldMeta } from '../lib/meta'
import { humanize } from '../lib/meta'
import { RefValue } from './FieldValue'

export interface AuditEntry {
  id: string
  at: string
  actor_id: string | null
  actor_kind: string
  app: string
  resource: string
  record_id: string | null
  action: string
  before: Record<string, unknown> | null
  after: Record<string, unknown> | null
  request_id: string | null
}

const IGNORED = new Set(['updated_at', 'updated_by', 'version', 'org_id', 'created_at', 'created_by'])
const ACTION_ICON: Record<string, string> = { created: 'plus', updated: 'edit', deleted: 'trash', restored: 'rotate-ccw' }

export function changedFields(e: Pick<AuditEntry, 'before' | 'after'>): { name: string; before: unknown; after: unknown }[] {
  const b = e.before ?? {}
  const a = e.after ?? {}
  const names = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((n) => !IGNORED.has(n))
  return names.filter((n) => JSON.stringify(b[n]) !== JSON.stringify(a[n])).map((n) => ({ name: n, before: b[n], after: a[n] }))
}

function show(fields: FieldMeta[] | undefined, name: string, v: unknown): string {
  if (v === null || v === undefined || v === '') return '—'
  const f = fields?.find((x) => x.name === name)
  return formatValue(f ?? { name, type: typeof v === 'object' ? 'json' : 'string' }, v) || '—'
}

export function Diff({ entry, fields }: { entry: AuditEntry; fields?: FieldMeta[] }) {
  const rows = changedFields(entry)
  if (!rows.length || (entry.action === 'created' && !entry.before)) return null
  return (
    <div className="diff" role="table" aria-label="Changes">
      {rows.slice(0, 30).map((r) => (
        <div key={r.name} className="diff-row" role="row">
          <span role="cell" className="muted">
            {humanize(r.name)}
          </span>
          <span role="cell" className="old">
            {show(fields, r.name, r.before)}
          </span>
          <span role="cell" className="new">
            {show(fields, r.name, r.after)}
          </span>
        </div>
      ))}
    </div>
  )
}

export function HistoryTab({ app, resource, recordId, fields }: { app: string; resource: string; recordId: string; fields?: FieldMeta[] }) {
  const [items, setItems] = useState<AuditEntry[] | null>(null)
  const [cursor, setCursor] = useState<string | null>(null)
  const [error, setError] = useState<{ status: number; message: string } | null>(null)
  const base = `/api/v1/audit?${new URLSearchParams({ app, resource, record_id: recordId, limit: '50' })}`

  useEffect(() => {
    const ctl = new AbortController()
    api
      .get<{ items: AuditEntry[]; next_cursor: string | null }>(base, ctl.signal)
      .then((page) => {
        setItems(page.items)
        setCursor(page.next_cursor)
      })
      .catch((err) => {
        if (ctl.signal.aborted) return
        setError({ status: err instanceof ApiError ? err.status : 0, message: (err as Error).message })
      })
    return () => ctl.abort()
  }, [base])

  if (error) {
    if (error.status === 404) return <EmptyState icon="history" title="History is not available on this server" />
    if (error.status === 403) return <EmptyState icon="lock" title="You may not see this record's history" />
    return <Alert>{error.message}</Alert>
  }
  if (!items) return <Loading label="Loading history…" />
  if (!items.length) return <EmptyState icon="history" title="No history yet" />
  return (
    <div className="stack">
      <ol className="timeline" aria-label="History">
        {items.map((e) => (
          <li key={e.id}>
            <span className="tl-dot" aria-hidden="true">
              <Icon name={ACTION_ICON[e.action] ?? 'activity'} size={14} />
            </span>
            <div>
              <div className="tl-head">
                <strong>{e.actor_kind === 'system' ? 'System' : <RefValue refKey="identity.users" id={e.actor_id} />}</strong>
                <span>{humanize(e.action).toLowerCase()}</span>
                <span className="subtle small" title={formatDateTime(e.at)}>
                  {timeAgo(e.at)}
                </span>
              </div>
              <Diff entry={e} fields={fields} />
            </div>
          </li>
        ))}
      </ol>
      {cursor && (
        <Button
          size="sm"
          onClick={async () => {
            const page = await api.get<{ items: AuditEntry[]; next_cursor: string | null }>(`${base}&cursor=${encodeURIComponent(cursor)}`)
            setItems((i) => [...(i ?? []), ...page.items])
            setCursor(page.next_cursor)
          }}
        >
          Older
        </Button>
      )}
    </div>
  )
}
