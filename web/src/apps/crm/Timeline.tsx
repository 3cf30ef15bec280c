// A record's timeline (activities, notes, tasks, stage moves, changes), newest first, the
// next page loading as the end scrolls into view; and the quick log above it.
import { forwardRef, useCallback, useEffect, useImperativeHandle, useRef, useState, type FormEvent } from 'react'
import { Icon } from '../../components/Icon'
import { Alert, Badge, Button, Loading } from '../../components/ui'
import { ApiError, api } from '../../lib/api'
import { formatDateTime, timeAgo } from '../../lib/format'
import { localInputToIso } from '../../lib/forms'
import { humanize } from '../../lib/meta'
import { RefValue } from '../../records/FieldValue'
import type { TimelineItem } from './types'

export type Subject = 'deals' | 'contacts' | 'companies'
const SUBJECT_KEY: Record<Subject, string> = { deals: 'deal_id', contacts: 'contact_id', companies: 'company_id' }

const ICONS: Record<string, string> = {
  'activity.call': 'message-circle',
  'activity.meeting': 'users',
  'activity.email': 'mail',
  'activity.note': 'sticky-note',
  'activity.task': 'check-square',
  task: 'check-square',
  stage: 'git-branch',
  won: 'check-circle',
  lost: 'x',
  reopened: 'rotate-ccw',
  created: 'plus',
  change: 'edit',
  merge: 'copy',
  converted: 'user-plus',
  deal: 'dollar-sign',
  deleted: 'trash',
  restored: 'rotate-ccw',
}

function kindLabel(kind: string): string {
  if (kind.startsWith('activity.')) return humanize(kind.slice(9))
  return { stage: 'Stage', change: 'Change', created: 'Created', deal: 'Deal' }[kind] ?? humanize(kind)
}

function Entry({ item, pending }: { item: TimelineItem; pending?: boolean }) {
  const tone = item.kind === 'won' ? 'success' : item.kind === 'lost' ? 'danger' : item.kind === 'stage' ? 'info' : 'neutral'
  return (
    <li className={`crm-tl-item crm-tl-${item.kind.replace('.', '-')}`} data-kind={item.kind} data-pending={pending || undefined}>
      <span className="tl-dot" aria-hidden="true">
        <Icon name={ICONS[item.kind] ?? 'activity'} size={15} />
      </span>
      <div className="stack-sm" style={{ gap: 2, minWidth: 0 }}>
        <div className="tl-head">
          <Badge tone={tone}>{kindLabel(item.kind)}</Badge>
          <strong className="crm-tl-title">{item.title}</strong>
          <time className="small subtle" dateTime={item.at} title={formatDateTime(item.at)}>
            {pending ? 'just now' : timeAgo(item.at)}
          </time>
          {item.actor_id && (
            <span className="small muted">
              by <RefValue refKey="identity.users" id={item.actor_id} link={false} />
            </span>
          )}
        </div>
        {item.body && <p className="crm-tl-body">{item.body}</p>}
        {item.kind === 'change' && item.data && <Changes data={item.data} />}
      </div>
    </li>
  )
}

function show(v: unknown): string {
  if (v === null || v === undefined || v === '') return '—'
  if (Array.isArray(v)) return v.join(', ') || '—'
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

function Changes({ data }: { data: Record<string, unknown> }) {
  const rows = Object.entries(data).filter(([, v]) => Array.isArray(v) && v.length === 2) as [string, [unknown, unknown]][]
  if (!rows.length) return null
  const ref = (name: string) => (name === 'owner_id' ? 'identity.users' : name === 'company_id' ? 'crm.companies' : name === 'contact_id' ? 'crm.contacts' : name === 'parent_id' ? 'crm.companies' : undefined)
  return (
    <div className="diff">
      {rows.map(([name, [a, b]]) => (
        <div key={name} className="diff-row">
          <span className="muted">{humanize(name.replace(/_id$/, ''))}</span>
          <span className="old">{ref(name) && a ? <RefValue refKey={ref(name)} id={a} link={false} /> : show(a)}</span>
          <span className="new">{ref(name) && b ? <RefValue refKey={ref(name)} id={b} link={false} /> : show(b)}</span>
        </div>
      ))}
    </div>
  )
}

export interface TimelineHandle {
  /** Shows an activity just logged until its timeline entry arrives, then reloads. */
  logged: (activity: Record<string, unknown>) => void
  reload: () => void
}

const PAGE = 30

export const Timeline = forwardRef<TimelineHandle, { subject: Subject; id: string }>(function Timeline({ subject, id }, ref) {
  const [items, setItems] = useState<TimelineItem[] | null>(null)
  const [cursor, setCursor] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [local, setLocal] = useState<TimelineItem[]>([])
  const sentinel = useRef<HTMLDivElement>(null)
  const base = `/api/v1/crm/${subject}/${encodeURIComponent(id)}/timeline`

  const first = useCallback(async () => {
    try {
      const page = await api.get<{ items: TimelineItem[]; next_cursor: string | null }>(`${base}?limit=${PAGE}`)
      setItems(page.items)
      setCursor(page.next_cursor)
      setError(null)
      // Entries logged here that the server now shows need no placeholder any more.
      setLocal((l) => l.filter((x) => !page.items.some((i) => i.ref_id === x.ref_id)))
      return page.items
    } catch (err) {
      setError((err as Error).message)
      return []
    }
  }, [base])

  useEffect(() => {
    setItems(null)
    void first()
  }, [first])

  const more = useCallback(async () => {
    if (!cursor || busy) return
    setBusy(true)
    try {
      const page = await api.get<{ items: TimelineItem[]; next_cursor: string | null }>(`${base}?limit=${PAGE}&cursor=${encodeURIComponent(cursor)}`)
      setItems((xs) => [...(xs ?? []), ...page.items.filter((i) => !(xs ?? []).some((x) => x.id === i.id))])
      setCursor(page.next_cursor)
    } catch (err) {
      setError((err as Error).message)
    } finally {
      setBusy(false)
    }
  }, [base, cursor, busy])

  // Infinite scroll: the next page loads when the end of the list comes into view.
  useEffect(() => {
    const el = sentinel.current
    if (!el || !cursor || typeof IntersectionObserver === 'undefined') return
    const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && void more(), { rootMargin: '300px' })
    io.observe(el)
    return () => io.disconnect()
  }, [cursor, more])

  useImperativeHandle(ref, () => ({
    reload: () => void first(),
    logged: (a) => {
      const placeholder: TimelineItem = {
        id: `local-${String(a.id)}`,
        subject_type: subject,
        subject_id: id,
        at: String(a.occurred_at ?? new Date().toISOString()),
        kind: `activity.${String(a.kind)}`,
        title: String(a.subject ?? ''),
        body: String(a.body ?? ''),
        ref_type: 'crm.activities',
        ref_id: String(a.id),
        actor_id: (a.created_by as string) ?? null,
        data: null,
      }
      setLocal((l) => [placeholder, ...l])
      // The timeline is written from the activity's event, a moment later: look again a few times.
      let tries = 0
      const poll = async () => {
        const got = await first()
        if (!got.some((i) => i.ref_id === placeholder.ref_id) && ++tries < 8) setTimeout(() => void poll(), 400 * tries)
      }
      setTimeout(() => void poll(), 300)
    },
  }), [first, subject, id])

  if (error && !items) return <Alert title="Could not load the timeline">{error}</Alert>
  if (!items) return <Loading label="Loading the timeline…" />
  const shown = local.filter((l) => !items.some((i) => i.ref_id === l.ref_id))
  return (
    <div className="stack-sm">
      {items.length === 0 && shown.length === 0 && <p className="muted">Nothing has happened here yet.</p>}
      <ol className="timeline crm-timeline" aria-label="Timeline">
        {shown.map((i) => (
          <Entry key={i.id} item={i} pending />
        ))}
        {items.map((i) => (
          <Entry key={i.id} item={i} />
        ))}
      </ol>
      <div ref={sentinel} />
      {cursor && (
        <Button size="sm" variant="ghost" busy={busy} onClick={() => void more()}>
          Show older
        </Button>
      )}
      {error && <Alert>{error}</Alert>}
    </div>
  )
})

const LOG_KINDS = [
  { id: 'call', label: 'Call', icon: 'message-circle' },
  { id: 'meeting', label: 'Meeting', icon: 'users' },
  { id: 'note', label: 'Note', icon: 'sticky-note' },
  { id: 'task', label: 'Task', icon: 'check-square' },
] as const

/** Log a call, meeting, note or task against the record, in a line or two. */
export function QuickLog({ subject, id, onLogged }: { subject: Subject; id: string; onLogged: (activity: Record<string, unknown>) => void }) {
  const [kind, setKind] = useState<(typeof LOG_KINDS)[number]['id']>('call')
  const [title, setTitle] = useState('')
  const [body, setBody] = useState('')
  const [due, setDue] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!title.trim()) {
      setError('Say in a few words what it was about.')
      return
    }
    setBusy(true)
    setError(null)
    try {
      const payload: Record<string, unknown> = { kind, subject: title.trim(), body, [SUBJECT_KEY[subject]]: id }
      if (kind === 'task' && due) payload.due_at = localInputToIso(due)
      if (kind === 'note') payload.done = true
      const created = await api.post<Record<string, unknown>>('/api/v1/crm/activities', payload)
      setTitle('')
      setBody('')
      setDue('')
      onLogged(created)
    } catch (err) {
      setError(err instanceof ApiError ? (err.fieldErrors.subject ?? err.fieldErrors.due_at ?? err.message) : (err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  const placeholder = { call: 'Called about…', meeting: 'Met to discuss…', note: 'A note…', task: 'Follow up on…' }[kind]
  return (
    <form className="crm-quick-log stack-sm" onSubmit={submit} aria-label="Log an activity">
      <div className="seg" role="radiogroup" aria-label="Kind of activity">
        {LOG_KINDS.map((k) => (
          <button key={k.id} type="button" role="radio" aria-checked={kind === k.id} className="seg-btn" onClick={() => setKind(k.id)}>
            <Icon name={k.icon} size={14} /> {k.label}
          </button>
        ))}
      </div>
      <input className="input" aria-label="Subject" placeholder={placeholder} maxLength={300} value={title} aria-invalid={error ? true : undefined} onChange={(e) => setTitle(e.target.value)} />
      {(title || body) && (
        <textarea className="textarea" aria-label="Details" placeholder="Details (optional)" rows={3} value={body} onChange={(e) => setBody(e.target.value)} />
      )}
      <div className="row">
        {kind === 'task' && (
          <label className="row small">
            Due
            <input className="input input-sm" type="datetime-local" aria-label="Due" value={due} onChange={(e) => setDue(e.target.value)} style={{ width: 'auto' }} />
          </label>
        )}
        <span className="spacer" />
        <Button type="submit" variant="primary" size="sm" icon="plus" busy={busy}>
          Log {kind}
        </Button>
      </div>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </form>
  )
}
