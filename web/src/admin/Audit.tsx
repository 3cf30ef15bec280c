// The org's audit trail: who changed what, when — filterable, with each change's diff.
import { Fragment, useEffect, useState } from 'react'
import { Icon } from '../components/Icon'
import { Alert, Button, EmptyState, FieldShell, Loading } from '../components/ui'
import { ApiError, api } from '../lib/api'
import { useSession } from '../lib/context'
import { formatDateTime, timeAgo } from '../lib/format'
import { localInputToIso } from '../lib/forms'
import { useDebounced, useDocumentTitle } from '../lib/hooks'
import { appsInOrder, findResource, humanize } from '../lib/meta'
import { recordHref } from '../lib/features'
import { Link } from '../lib/router'
import { RefValue } from '../records/FieldValue'
import { Diff, type AuditEntry } from '../records/HistoryTab'
import { ReferenceInput } from '../records/inputs'

export function AuditPage() {
  useDocumentTitle('Audit log')
  const { meta } = useSession()
  const [app, setApp] = useState('')
  const [action, setAction] = useState('')
  const [actor, setActor] = useState('')
  const [recordId, setRecordId] = useState('')
  const [since, setSince] = useState('')
  const [items, setItems] = useState<AuditEntry[] | null>(null)
  const [cursor, setCursor] = useState<string | null>(null)
  const [error, setError] = useState<{ status: number; message: string } | null>(null)
  const [open, setOpen] = useState<string | null>(null)
  const dAction = useDebounced(action, 300)
  const dRecord = useDebounced(recordId, 300)
  const params = new URLSearchParams({ limit: '50' })
  if (app) params.set('app', app)
  if (dAction.trim()) params.set('action', dAction.trim())
  if (actor) params.set('actor_id', actor)
  if (dRecord.trim()) params.set('record_id', dRecord.trim())
  if (since && localInputToIso(since)) params.set('at[gte]', localInputToIso(since)!)
  const qs = params.toString()

  useEffect(() => {
    setItems(null)
    api
      .get<{ items: AuditEntry[]; next_cursor: string | null }>(`/api/v1/audit?${qs}`)
      .then((p) => {
        setItems(p.items)
        setCursor(p.next_cursor)
        setError(null)
      })
      .catch((err: Error) => setError({ status: err instanceof ApiError ? err.status : 0, message: err.message }))
  }, [qs])

  const apps = [...new Set([...appsInOrder(meta).map((a) => a.name), 'identity'])]
  const link = (e: AuditEntry) => {
    if (!e.record_id || !findResource(meta, e.app, e.resource)) return null
    return recordHref(e.app, e.resource, e.record_id)
  }

  return (
    <div className="stack">
      <div className="page-head">
        <div className="titles">
          <h1>Audit log</h1>
          <p className="muted">Every change and sign-in in this organisation, newest first.</p>
        </div>
      </div>
      <section className="card">
        <div className="filters" style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(180px, 1fr))', gap: 12, borderRadius: '12px 12px 0 0' }}>
          <FieldShell label="App" htmlFor="audit-app">
            <select id="audit-app" className="select select-sm" value={app} onChange={(e) => setApp(e.target.value)}>
              <option value="">Any app</option>
              {apps.map((a) => (
                <option key={a} value={a}>
                  {meta.apps.find((x) => x.name === a)?.title ?? humanize(a)}
                </option>
              ))}
            </select>
          </FieldShell>
          <FieldShell label="Action" htmlFor="audit-action">
            <input id="audit-action" className="input input-sm" placeholder="e.g. updated, signed_in" value={action} onChange={(e) => setAction(e.target.value)} />
          </FieldShell>
          <FieldShell label="Who" htmlFor="audit-actor">
            <ReferenceInput
              id="audit-actor"
              field={{ name: 'actor_id', label: 'Who', type: 'reference', reference: 'identity.users', required: false, nullable: true, readonly: false, filterable: true, sortable: false, searchable: false }}
              value={actor}
              onChange={(v) => setActor(String(v ?? ''))}
            />
          </FieldShell>
          <FieldShell label="Record ID" htmlFor="audit-record">
            <input id="audit-record" className="input input-sm mono" value={recordId} onChange={(e) => setRecordId(e.target.value)} />
          </FieldShell>
          <FieldShell label="Since" htmlFor="audit-since">
            <input id="audit-since" className="input input-sm" type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />
          </FieldShell>
        </div>
        {error ? (
          error.status === 404 ? (
            <EmptyState icon="activity" title="The audit log is not available on this server" />
          ) : error.status === 403 ? (
            <EmptyState icon="lock" title="You may not read the audit log">
              <p>
                It needs the <code>audit.trail.read</code> permission (owners and admins have it).
              </p>
            </EmptyState>
          ) : (
            <div className="card-body">
              <Alert>{error.message}</Alert>
            </div>
          )
        ) : !items ? (
          <Loading />
        ) : items.length === 0 ? (
          <EmptyState icon="activity" title="Nothing matches" />
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Audit entries">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">What</th>
                  <th scope="col">
                    <span className="visually-hidden">Details</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((e) => {
                  const href = link(e)
                  const expanded = open === e.id
                  return (
                    <Fragment key={e.id}>
                      <tr>
                        <td title={formatDateTime(e.at)} className="nowrap">
                          {timeAgo(e.at)}
                        </td>
                        <td>{e.actor_kind === 'system' || e.actor_id === 'system' ? <span className="muted">System</span> : <RefValue refKey="identity.users" id={e.actor_id} />}</td>
                        <td>
                          <code>{e.action}</code>
                        </td>
                        <td>
                          <span className="muted">
                            {e.app} · {e.resource}
                          </span>{' '}
                          {href ? <Link to={href}>{e.record_id?.slice(-8)}</Link> : e.record_id ? <code className="subtle">{e.record_id.slice(-8)}</code> : null}
                        </td>
                        <td style={{ textAlign: 'right' }}>
                          {(e.before || e.after) && (
                            <button type="button" className="icon-btn" aria-expanded={expanded} aria-label={expanded ? 'Hide details' : 'Show details'} onClick={() => setOpen(expanded ? null : e.id)}>
                              <Icon name={expanded ? 'chevron-up' : 'chevron-down'} size={16} />
                            </button>
                          )}
                        </td>
                      </tr>
                      {expanded && (
                        <tr>
                          <td colSpan={5} style={{ whiteSpace: 'normal', maxWidth: 'none', background: 'var(--surface-2)' }}>
                            {e.before ? <Diff entry={e} /> : <pre className="json-block">{JSON.stringify(e.after, null, 2)}</pre>}
                            {e.request_id && <p className="small subtle" style={{ marginTop: 6 }}>Request {e.request_id}</p>}
                          </td>
                        </tr>
                      )}
                    </Fragment>
                  )
                })}
              </tbody>
            </table>
          </div>
        )}
        {cursor && items && (
          <div className="list-foot">
            <span>{items.length} entries shown</span>
            <Button
              size="sm"
              onClick={async () => {
                const p = await api.get<{ items: AuditEntry[]; next_cursor: string | null }>(`/api/v1/audit?${qs}&cursor=${encodeURIComponent(cursor)}`)
                setItems((i) => [...(i ?? []), ...p.items])
                setCursor(p.next_cursor)
              }}
            >
              Older
            </Button>
          </div>
        )}
      </section>
    </div>
  )
}
