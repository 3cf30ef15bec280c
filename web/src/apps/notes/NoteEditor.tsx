// One note: title, rich-text body, tags, notebook; saved as you type with If-Match.
import { useCallback, useEffect, useRef, useState } from 'react'
import { Alert, Button, Dialog, FieldShell, Loading, useToast } from '../../components/ui'
import { RichTextEditor, SanitisedHtml } from '../../components/RichText'
import { ApiError, api, request } from '../../lib/api'
import { useSession } from '../../lib/context'
import { formatDateTime, timeAgo } from '../../lib/format'
import { ChipsInput } from '../../records/inputs'
import { RefValue } from '../../records/FieldValue'
import type { Note, Notebook, NoteVersion } from './types'

const NOTES = '/api/v1/notes/notes'
const SAVE_AFTER_MS = 700

type Status = 'saved' | 'dirty' | 'saving' | 'conflict' | 'error'

export function NoteEditor({ id, notebooks, onSaved, onDeleted }: { id: string; notebooks: Notebook[]; onSaved: (n: Note) => void; onDeleted: (id: string) => void }) {
  const { me } = useSession()
  const toast = useToast()
  const [note, setNote] = useState<Note | null>(null)
  const [loadError, setLoadError] = useState<ApiError | Error | null>(null)
  const [title, setTitle] = useState('')
  const [tags, setTags] = useState<string[]>([])
  const [resetKey, setResetKey] = useState(0)
  const [status, setStatus] = useState<Status>('saved')
  const [saveError, setSaveError] = useState<string | null>(null)
  const [dialog, setDialog] = useState<'share' | 'history' | 'delete' | null>(null)
  const etag = useRef<string | undefined>(undefined)
  const pending = useRef<Record<string, unknown>>({})
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)
  const saving = useRef<Promise<void> | null>(null)

  const load = useCallback(async () => {
    const res = await request<Note>(`${NOTES}/${encodeURIComponent(id)}`)
    etag.current = res.etag
    pending.current = {}
    setNote(res.data)
    setTitle(res.data.title)
    setTags(res.data.tags)
    setResetKey((k) => k + 1)
    setStatus('saved')
    setSaveError(null)
  }, [id])

  useEffect(() => {
    load().catch((err: Error) => setLoadError(err))
  }, [load])

  const flush = useCallback(async (force?: string): Promise<void> => {
    clearTimeout(timer.current)
    if (saving.current) await saving.current
    const body = pending.current
    if (!Object.keys(body).length) return
    pending.current = {}
    setStatus('saving')
    const run = (async () => {
      try {
        const res = await request<Note>(`${NOTES}/${encodeURIComponent(id)}`, { method: 'PATCH', json: body, ifMatch: force ?? etag.current })
        etag.current = res.etag
        setNote(res.data)
        onSaved(res.data)
        setStatus(Object.keys(pending.current).length ? 'dirty' : 'saved')
        setSaveError(null)
      } catch (err) {
        pending.current = { ...body, ...pending.current }
        if (err instanceof ApiError && err.status === 412) setStatus('conflict')
        else {
          setStatus('error')
          setSaveError(err instanceof ApiError ? Object.values(err.fieldErrors)[0] ?? err.message : (err as Error).message)
        }
      }
    })()
    saving.current = run
    await run
    saving.current = null
    if (Object.keys(pending.current).length && status !== 'conflict') schedule()
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, onSaved])

  const schedule = () => {
    clearTimeout(timer.current)
    timer.current = setTimeout(() => void flush(), SAVE_AFTER_MS)
  }
  const change = (field: string, value: unknown) => {
    pending.current = { ...pending.current, [field]: value }
    setStatus((s) => (s === 'conflict' ? s : 'dirty'))
    if (status !== 'conflict') schedule()
  }

  // Leaving the note saves what is left.
  useEffect(() => () => void flush(), [flush])

  if (loadError) {
    const gone = loadError instanceof ApiError && (loadError.status === 404 || loadError.status === 403)
    return <Alert kind="error">{gone ? 'This note does not exist or you may not see it.' : loadError.message}</Alert>
  }
  if (!note) return <Loading />

  const mine = note.created_by === me.id
  const action = async (name: string, json: unknown = {}) => {
    const res = await request<Note>(`${NOTES}/${id}/${name}`, { method: 'POST', json })
    etag.current = res.etag
    setNote(res.data)
    onSaved(res.data)
    return res.data
  }
  const togglePin = () => action(note.pinned ? 'unpin' : 'pin').catch((err: Error) => toast(err.message, 'error'))
  const overwrite = async () => {
    const res = await request<Note>(`${NOTES}/${id}`)
    await flush(res.etag)
  }
  const statusText: Record<Status, string> = {
    saved: `Saved ${timeAgo(note.updated_at)}`,
    dirty: 'Unsaved changes…',
    saving: 'Saving…',
    conflict: 'Not saved',
    error: 'Not saved',
  }

  return (
    <article className="note-editor">
      <div className="note-toolbar">
        <span className={`note-status note-status-${status}`} role="status" aria-live="polite">
          {statusText[status]}
        </span>
        <div className="row" style={{ gap: 6, flexWrap: 'wrap' }}>
          <Button size="sm" variant="ghost" icon="pin" aria-pressed={note.pinned} onClick={() => void togglePin()}>
            {note.pinned ? 'Unpin' : 'Pin'}
          </Button>
          {mine && (
            <Button size="sm" variant="ghost" icon="share" onClick={() => setDialog('share')}>
              Share
            </Button>
          )}
          <Button size="sm" variant="ghost" icon="history" onClick={() => setDialog('history')}>
            History
          </Button>
          <a className="btn btn-ghost btn-sm" href={`${NOTES}/${id}/markdown`} download>
            Export Markdown
          </a>
          {mine && (
            <Button size="sm" variant="ghost" icon="trash" onClick={() => setDialog('delete')}>
              Delete
            </Button>
          )}
        </div>
      </div>
      {status === 'conflict' && (
        <Alert
          kind="warning"
          title="Changed by someone else"
          actions={
            <>
              <Button size="sm" icon="refresh" onClick={() => void load()}>
                Reload (discard my changes)
              </Button>
              <Button size="sm" variant="danger" onClick={() => void overwrite()}>
                Overwrite with my changes
              </Button>
            </>
          }
        >
          This note was changed by someone else since you opened it — reload or overwrite.
        </Alert>
      )}
      {status === 'error' && saveError && <Alert kind="error">{saveError}</Alert>}
      <input
        id="note-title"
        className="note-title"
        aria-label="Title"
        value={title}
        maxLength={300}
        onChange={(e) => {
          setTitle(e.target.value)
          if (e.target.value.trim()) change('title', e.target.value)
        }}
      />
      <div className="note-props">
        <label className="note-prop">
          <span>Notebook</span>
          <select
            className="select"
            value={note.notebook_id ?? ''}
            onChange={(e) => {
              const v = e.target.value || null
              setNote({ ...note, notebook_id: v })
              change('notebook_id', v)
            }}
          >
            <option value="">No notebook</option>
            {notebooks.map((nb) => (
              <option key={nb.id} value={nb.id}>
                {nb.name}
              </option>
            ))}
          </select>
        </label>
        <div className="note-prop note-tags">
          <label htmlFor="note-tags">Tags</label>
          <ChipsInput
            id="note-tags"
            values={tags}
            placeholder="Add a tag"
            onChange={(v) => {
              setTags(v)
              change('tags', v)
            }}
          />
        </div>
      </div>
      <RichTextEditor
        id="note-body"
        label="Note body"
        initialHtml={note.body}
        resetKey={`${id}:${resetKey}`}
        placeholder="Start writing…"
        onChange={(html) => html !== note.body && change('body', html)}
      />
      {dialog === 'share' && <ShareDialog note={note} onClose={() => setDialog(null)} onShared={(n) => {
        etag.current = undefined
        void load()
        onSaved(n)
      }} action={action} />}
      {dialog === 'history' && (
        <HistoryDialog
          id={id}
          onClose={() => setDialog(null)}
          onRestore={async (v) => {
            await flush()
            await action('restore-version', { version: v })
            await load()
            setDialog(null)
            toast(`Restored version ${v}`, 'success')
          }}
        />
      )}
      {dialog === 'delete' && (
        <Dialog
          title="Delete this note?"
          size="sm"
          onClose={() => setDialog(null)}
          footer={
            <>
              <Button onClick={() => setDialog(null)}>Cancel</Button>
              <Button
                variant="danger"
                onClick={async () => {
                  try {
                    clearTimeout(timer.current)
                    pending.current = {}
                    await api.del(`${NOTES}/${id}`, etag.current)
                    toast('Note deleted', 'success')
                    onDeleted(id)
                  } catch (err) {
                    toast((err as Error).message, 'error')
                    setDialog(null)
                  }
                }}
              >
                Delete
              </Button>
            </>
          }
        >
          <p>“{note.title}” goes to the trash.</p>
        </Dialog>
      )}
    </article>
  )
}

interface User {
  id: string
  name: string
  email: string
}
interface Share {
  user_id: string
  access: 'read' | 'edit'
}

function ShareDialog({ note, onClose, onShared, action }: { note: Note; onClose: () => void; onShared: (n: Note) => void; action: (name: string, json: unknown) => Promise<Note> }) {
  const { me } = useSession()
  const [users, setUsers] = useState<User[] | null>(null)
  const [shares, setShares] = useState<Share[] | null>(null)
  const [userId, setUserId] = useState('')
  const [access, setAccess] = useState<'read' | 'edit'>('read')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const loadShares = useCallback(() => {
    api.get<{ items: Share[] }>(`${NOTES}/${note.id}/shares`).then((r) => setShares(r.items), () => setShares([]))
  }, [note.id])
  useEffect(() => {
    api.get<{ items: User[] }>('/api/v1/identity/users?limit=200&sort=name').then(
      (r) => setUsers(r.items.filter((u) => u.id !== me.id)),
      () => setUsers([]),
    )
    loadShares()
  }, [loadShares, me.id])
  const share = async () => {
    if (!userId) {
      setError('Choose a colleague.')
      return
    }
    setBusy(true)
    setError(null)
    try {
      onShared(await action('share', { user_id: userId, access }))
      setUserId('')
      loadShares()
    } catch (err) {
      setError(err instanceof ApiError ? (err.fieldErrors.user_id ?? err.message) : (err as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const unshare = async (uid: string) => {
    try {
      onShared(await action('unshare', { user_id: uid }))
      loadShares()
    } catch (err) {
      setError((err as Error).message)
    }
  }
  return (
    <Dialog title="Share this note" description="Colleagues you share it with are notified." onClose={onClose} footer={<Button onClick={onClose}>Done</Button>}>
      <div className="stack">
        {error && <Alert kind="error">{error}</Alert>}
        <div className="share-row">
          <FieldShell label="Colleague" htmlFor="share-user">
            {users === null ? (
              // A disabled select while the directory loads, so the control never swaps type under the user.
              <select id="share-user" className="select" disabled value="">
                <option value="">Loading colleagues…</option>
              </select>
            ) : users.length > 0 ? (
              <select id="share-user" className="select" value={userId} onChange={(e) => setUserId(e.target.value)}>
                <option value="">Choose…</option>
                {users.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.name} ({u.email})
                  </option>
                ))}
              </select>
            ) : (
              <input id="share-user" className="input mono" placeholder="User ID" value={userId} onChange={(e) => setUserId(e.target.value)} />
            )}
          </FieldShell>
          <FieldShell label="Access" htmlFor="share-access">
            <select id="share-access" className="select" value={access} onChange={(e) => setAccess(e.target.value as 'read' | 'edit')}>
              <option value="read">Can read</option>
              <option value="edit">Can edit</option>
            </select>
          </FieldShell>
          <Button variant="primary" busy={busy} onClick={() => void share()}>
            Share
          </Button>
        </div>
        <h3 className="small muted">Shared with</h3>
        {shares === null ? (
          <Loading />
        ) : shares.length === 0 ? (
          <p className="subtle">Only you can see this note.</p>
        ) : (
          <ul className="share-list">
            {shares.map((s) => (
              <li key={s.user_id}>
                <RefValue refKey="identity.users" id={s.user_id} link={false} />
                <span className="muted small">{s.access === 'edit' ? 'can edit' : 'can read'}</span>
                <Button size="sm" variant="ghost" onClick={() => void unshare(s.user_id)}>
                  Remove
                </Button>
              </li>
            ))}
          </ul>
        )}
      </div>
    </Dialog>
  )
}

function HistoryDialog({ id, onClose, onRestore }: { id: string; onClose: () => void; onRestore: (version: number) => Promise<void> }) {
  const [versions, setVersions] = useState<NoteVersion[] | null>(null)
  const [open, setOpen] = useState<NoteVersion | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    api.get<{ items: NoteVersion[] }>(`${NOTES}/${id}/versions`).then(
      (r) => setVersions(r.items),
      (err: Error) => setError(err.message),
    )
  }, [id])
  return (
    <Dialog title="Version history" size="lg" onClose={onClose} footer={<Button onClick={onClose}>Close</Button>}>
      {error && <Alert kind="error">{error}</Alert>}
      {!versions && !error && <Loading />}
      {versions && versions.length === 0 && <p className="subtle">No earlier versions yet: each save keeps the one before.</p>}
      {versions && versions.length > 0 && (
        <div className="versions">
          <ul className="version-list" aria-label="Versions">
            {versions.map((v) => (
              <li key={v.id}>
                <button type="button" className={`version-item${open?.id === v.id ? ' active' : ''}`} aria-pressed={open?.id === v.id} onClick={() => setOpen(v)}>
                  <strong>Version {v.version}</strong>
                  <span className="small muted" title={formatDateTime(v.saved_at)}>
                    {timeAgo(v.saved_at)}
                  </span>
                  <span className="small">{v.title}</span>
                </button>
              </li>
            ))}
          </ul>
          <div className="version-preview">
            {open ? (
              <>
                <div className="row" style={{ justifyContent: 'space-between' }}>
                  <h3>{open.title}</h3>
                  <Button size="sm" variant="primary" icon="rotate-ccw" onClick={() => void onRestore(open.version).catch((err: Error) => setError(err.message))}>
                    Restore version {open.version}
                  </Button>
                </div>
                <SanitisedHtml html={open.body} />
              </>
            ) : (
              <p className="subtle">Choose a version to see it.</p>
            )}
          </div>
        </div>
      )}
    </Dialog>
  )
}
