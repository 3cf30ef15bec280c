// Any record: its fields, its domain actions, edit, delete/restore and its history.
import { useEffect, useState, type ReactNode } from 'react'
import { Alert, Badge, Button, ConfirmDialog, EmptyState, Loading, Tabs, useToast } from '../components/ui'
import { ApiError, request } from '../lib/api'
import { useDocumentTitle } from '../lib/hooks'
import type { ActionMeta, ResourceMeta } from '../lib/meta'
import { fieldLabel, humanize, recordTitle, SYSTEM_FIELDS } from '../lib/meta'
import { forgetRecord } from '../lib/refs'
import { Link, navigate, setSearch, useLocation } from '../lib/router'
import { ActionDialog } from './ActionDialog'
import { FieldValue } from './FieldValue'
import { HistoryTab } from './HistoryTab'
import { isLongText } from './inputs'
import { RecordForm } from './RecordForm'

export interface Loaded {
  record: Record<string, unknown>
  etag?: string
}

export function useRecord(resource: ResourceMeta, id: string) {
  const [state, setState] = useState<{ data?: Loaded; error?: ApiError | Error }>({})
  const [tick, setTick] = useState(0)
  useEffect(() => {
    const ctl = new AbortController()
    request<Record<string, unknown>>(`${resource.path}/${encodeURIComponent(id)}?deleted=include`, { signal: ctl.signal }).then(
      (res) => setState({ data: { record: res.data, etag: res.etag } }),
      (error: Error) => !ctl.signal.aborted && setState({ error }),
    )
    return () => ctl.abort()
  }, [resource.path, id, tick])
  return {
    ...state,
    reload: () => setTick((t) => t + 1),
    set: (record: Record<string, unknown>, etag?: string) => {
      forgetRecord(resource.path, String(record.id))
      setState({ data: { record, etag } })
    },
  }
}

export function NotFound({ resource, error }: { resource: ResourceMeta; error: Error }) {
  const missing = error instanceof ApiError && (error.status === 404 || error.status === 403)
  return (
    <EmptyState icon={missing ? 'search' : 'alert'} title={missing ? `This ${humanize(resource.entity).toLowerCase()} does not exist or you may not see it` : 'Could not load'}>
      <p>{missing ? '' : error.message}</p>
      <p>
        <Link to={`/r/${resource.app}/${resource.name}`}>Back to {resource.title.toLowerCase()}</Link>
      </p>
    </EmptyState>
  )
}

/** Runs an action with no input at once; one with input opens its form. */
export function useActions(resource: ResourceMeta, loaded: Loaded | undefined, onChanged: (rec: Record<string, unknown>, etag?: string) => void) {
  const toast = useToast()
  const [open, setOpen] = useState<ActionMeta | null>(null)
  const run = async (a: ActionMeta) => {
    if (!loaded) return
    if (a.input && Object.keys(a.input.properties ?? {}).length) {
      setOpen(a)
      return
    }
    try {
      const res = await request<Record<string, unknown>>(`${resource.path}/${loaded.record.id}/${a.name}`, { method: 'POST', json: {} })
      if (res.data && typeof res.data === 'object' && 'id' in res.data) onChanged(res.data, res.etag)
      toast(`${humanize(a.name)}: done`, 'success')
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }
  const dialog =
    open && loaded ? (
      <ActionDialog
        resource={resource}
        action={open}
        record={loaded.record}
        onClose={() => setOpen(null)}
        onDone={(rec, etag) => {
          if (rec && 'id' in rec) onChanged(rec, etag)
          toast(`${humanize(open.name)}: done`, 'success')
        }}
      />
    ) : null
  return { run, dialog }
}

export function PropertyList({
  resource,
  record,
  fields,
  render,
  compact,
}: {
  resource: ResourceMeta
  record: Record<string, unknown>
  fields?: string[]
  render?: Record<string, (value: unknown) => ReactNode>
  compact?: boolean
}) {
  const shown = fields
    ? (fields.map((n) => resource.fields.find((f) => f.name === n)).filter(Boolean) as typeof resource.fields)
    : resource.fields.filter((f) => !SYSTEM_FIELDS.has(f.name))
  return (
    <dl className={compact ? 'props props-compact' : 'props'}>
      {shown.map((f) => (
        <Frag key={f.name}>
          <dt>{fieldLabel(f)}</dt>
          <dd className={isLongText(f) ? 'multiline' : undefined}>
            {render?.[f.name] ? render[f.name]!(record[f.name]) : <FieldValue field={f} value={record[f.name]} />}
          </dd>
        </Frag>
      ))}
    </dl>
  )
}

function Frag({ children }: { children: ReactNode }) {
  return <>{children}</>
}

export function DetailView({ resource, id, edit }: { resource: ResourceMeta; id: string; edit?: boolean }) {
  const { search } = useLocation()
  const tab = search.get('tab') ?? 'details'
  const toast = useToast()
  const rec = useRecord(resource, id)
  const [confirm, setConfirm] = useState(false)
  const { run, dialog } = useActions(resource, rec.data, rec.set)
  const title = rec.data ? recordTitle(resource, rec.data.record) : undefined
  useDocumentTitle(title)

  if (rec.error) return <NotFound resource={resource} error={rec.error} />
  if (!rec.data) return <Loading />
  const { record, etag } = rec.data
  const deleted = Boolean(record.deleted_at)
  const base = `/r/${resource.app}/${resource.name}`
  const actions = resource.actions.filter((a) => a.allowed)

  const remove = async () => {
    try {
      await request(`${resource.path}/${id}`, { method: 'DELETE', ifMatch: etag })
      toast(`Deleted “${title}”`, 'success')
      navigate(base)
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        rec.reload()
        throw new Error('It was changed by someone else in the meantime; look at the new version first.')
      }
      throw err
    }
  }
  const restore = async () => {
    try {
      const res = await request<Record<string, unknown>>(`${resource.path}/${id}/restore`, { method: 'POST', json: {} })
      rec.set(res.data, res.etag)
      toast('Restored', 'success')
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }

  return (
    <div className="page">
      <div className="page-head">
        <div className="titles">
          <nav className="crumbs" aria-label="Breadcrumb">
            <Link to={base}>{resource.title}</Link>
            <span aria-hidden="true">/</span>
            <span>{edit ? 'Edit' : humanize(resource.entity)}</span>
          </nav>
          <h1 className="row">
            {title}
            {deleted && <Badge tone="danger">Deleted</Badge>}
          </h1>
        </div>
        {!edit && (
          <div className="actions">
            {!deleted &&
              actions.map((a) => (
                <Button key={a.name} size="sm" title={a.summary} onClick={() => void run(a)}>
                  {humanize(a.name)}
                </Button>
              ))}
            {!deleted && resource.permissions.update && (
              <Button size="sm" icon="edit" variant="primary" onClick={() => navigate(`${base}/${id}/edit`)}>
                Edit
              </Button>
            )}
            {!deleted && resource.permissions.delete && (
              <Button size="sm" icon="trash" variant="ghost" onClick={() => setConfirm(true)}>
                Delete
              </Button>
            )}
            {deleted && resource.permissions.delete && (
              <Button size="sm" icon="rotate-ccw" variant="primary" onClick={() => void restore()}>
                Restore
              </Button>
            )}
          </div>
        )}
      </div>
      {deleted && !edit && <Alert kind="warning">This {humanize(resource.entity).toLowerCase()} is deleted. Restore it to change it.</Alert>}
      {edit ? (
        <section className="card card-pad">
          <RecordForm
            resource={resource}
            record={record}
            etag={etag}
            onCancel={() => navigate(`${base}/${id}`)}
            onSaved={(r, e) => {
              rec.set(r, e)
              toast('Saved', 'success')
              navigate(`${base}/${id}`)
            }}
          />
        </section>
      ) : (
        <>
          <Tabs
            label="Record"
            current={tab}
            onChange={(t) => setSearch({ tab: t === 'details' ? null : t })}
            tabs={[
              { id: 'details', label: 'Details', icon: 'file-text' },
              { id: 'history', label: 'History', icon: 'history' },
            ]}
          />
          <div role="tabpanel" aria-labelledby={`tab-${tab}`}>
            {tab === 'history' ? (
              <section className="card card-pad">
                <HistoryTab app={resource.app} resource={resource.name} recordId={id} fields={resource.fields} />
              </section>
            ) : (
              <div className="detail-grid">
                <section className="card card-pad">
                  <PropertyList resource={resource} record={record} />
                </section>
                <aside className="card card-pad" aria-label="Record information">
                  <PropertyList resource={resource} record={record} compact fields={['created_at', 'created_by', 'updated_at', 'updated_by', 'version', 'id']} />
                </aside>
              </div>
            )}
          </div>
        </>
      )}
      {confirm && (
        <ConfirmDialog
          title={`Delete ${humanize(resource.entity).toLowerCase()}?`}
          message={
            <>
              “{title}” goes to the trash; it can be restored from the list's “Show deleted”.
            </>
          }
          confirmLabel="Delete"
          danger
          onConfirm={remove}
          onClose={() => setConfirm(false)}
        />
      )}
      {dialog}
    </div>
  )
}
