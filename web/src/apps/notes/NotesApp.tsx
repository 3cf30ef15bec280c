// Notes: notebooks, the note list (pinned first), and a rich-text editor that saves as you
// type (If-Match; a 412 says someone else changed it), with tags, pin, sharing, version
// history and Markdown export. The body is HTML the server sanitises; only what the server
// returns is ever rendered as markup.
import { useCallback, useEffect, useMemo, useState, type FormEvent } from 'react'
import { Alert, Badge, Button, EmptyState, IconButton, Loading, useToast } from '../../components/ui'
import { Icon } from '../../components/Icon'
import { ApiError, api } from '../../lib/api'
import { useSession } from '../../lib/context'
import { useDebounced, useDocumentTitle } from '../../lib/hooks'
import { findResource } from '../../lib/meta'
import { timeAgo } from '../../lib/format'
import { Link, matchPath, navigate, useLocation } from '../../lib/router'
import { NoteEditor } from './NoteEditor'
import type { Note, Notebook } from './types'

const NOTES = '/api/v1/notes/notes'
const NOTEBOOKS = '/api/v1/notes/notebooks'

function scopeOf(path: string, search: URLSearchParams): string {
  if (path === '/notes/shared') return 'shared'
  return search.get('in') ?? 'all'
}

export default function NotesApp() {
  const { meta } = useSession()
  const { path, search } = useLocation()
  const toast = useToast()
  const resource = findResource(meta, 'notes', 'notes')
  const legacy = matchPath('/notes/notes/:id', path) // links in notifications
  const noteId = matchPath('/notes/n/:id', path)?.id ?? legacy?.id ?? null
  const scope = scopeOf(path, search)
  const [notebooks, setNotebooks] = useState<Notebook[] | null>(null)
  const [notes, setNotes] = useState<Note[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [q, setQ] = useState('')
  const query = useDebounced(q, 200)
  const [newBook, setNewBook] = useState<string | null>(null)
  useDocumentTitle('Notes')

  useEffect(() => {
    if (legacy) navigate(`/notes/n/${legacy.id}`, { replace: true })
  }, [legacy])

  const loadBooks = useCallback(() => {
    api.get<{ items: Notebook[] }>(`${NOTEBOOKS}?limit=200&sort=name`).then(
      (r) => setNotebooks(r.items),
      () => setNotebooks([]),
    )
  }, [])
  useEffect(loadBooks, [loadBooks])

  const listUrl = useMemo(() => {
    const params = new URLSearchParams({ limit: '200', sort: '-pinned,-updated_at' })
    if (scope === 'shared') params.set('view', 'shared')
    else if (scope !== 'all') params.set('notebook_id', scope)
    if (query.trim()) params.set('q', query.trim())
    return `${NOTES}?${params}`
  }, [scope, query])

  useEffect(() => {
    const ctl = new AbortController()
    api.get<{ items: Note[] }>(listUrl, ctl.signal).then(
      (r) => {
        setNotes(r.items)
        setError(null)
      },
      (err: Error) => !ctl.signal.aborted && setError(err.message),
    )
    return () => ctl.abort()
  }, [listUrl])

  const sorted = useMemo(
    () => [...(notes ?? [])].sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.updated_at.localeCompare(a.updated_at)),
    [notes],
  )

  if (!resource) {
    return (
      <EmptyState icon="lock" title="Notes are not available">
        <p>You may not read notes in this organisation.</p>
      </EmptyState>
    )
  }

  const scopeQuery = scope === 'all' || scope === 'shared' ? '' : `?in=${scope}`
  const createNote = async () => {
    try {
      const body: Record<string, unknown> = { title: 'Untitled note', body: '' }
      if (scope !== 'all' && scope !== 'shared') body.notebook_id = scope
      const note = await api.post<Note>(NOTES, body)
      setNotes((list) => [note, ...(list ?? [])])
      navigate(`/notes/n/${note.id}${scopeQuery}`)
      setTimeout(() => document.querySelector<HTMLInputElement>('#note-title')?.select(), 50)
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }
  const addBook = async (e: FormEvent) => {
    e.preventDefault()
    if (!newBook?.trim()) return
    try {
      const nb = await api.post<Notebook>(NOTEBOOKS, { name: newBook.trim() })
      setNewBook(null)
      loadBooks()
      navigate(`/notes?in=${nb.id}`)
    } catch (err) {
      toast(err instanceof ApiError ? (err.fieldErrors.name ?? err.message) : (err as Error).message, 'error')
    }
  }
  const onSaved = (note: Note) => setNotes((list) => (list ?? []).map((n) => (n.id === note.id ? note : n)))
  const onDeleted = (id: string) => {
    setNotes((list) => (list ?? []).filter((n) => n.id !== id))
    navigate(`/notes${scopeQuery}`)
  }
  const scopeTitle =
    scope === 'all' ? 'All notes' : scope === 'shared' ? 'Shared with me' : (notebooks?.find((n) => n.id === scope)?.name ?? 'Notebook')

  return (
    <div className={`notes-layout${noteId ? ' has-note' : ''}`}>
      <nav className="notes-books" aria-label="Notebooks">
        <h1 className="notes-heading">Notes</h1>
        <Link className="nav-link" to="/notes" aria-current={scope === 'all' ? 'page' : undefined}>
          <Icon name="sticky-note" /> All notes
        </Link>
        <Link className="nav-link" to="/notes/shared" aria-current={scope === 'shared' ? 'page' : undefined}>
          <Icon name="users" /> Shared with me
        </Link>
        <div className="nav-heading">Notebooks</div>
        {notebooks === null && <Loading />}
        {notebooks?.map((nb) => (
          <Link key={nb.id} className="nav-link" to={`/notes?in=${nb.id}`} aria-current={scope === nb.id ? 'page' : undefined}>
            <span className="swatch" style={{ background: nb.color }} aria-hidden="true" />
            {nb.name}
          </Link>
        ))}
        {newBook === null ? (
          <Button size="sm" variant="ghost" icon="plus" onClick={() => setNewBook('')}>
            New notebook
          </Button>
        ) : (
          <form className="stack-sm" onSubmit={addBook}>
            <input className="input" aria-label="Notebook name" autoFocus value={newBook} onChange={(e) => setNewBook(e.target.value)} onKeyDown={(e) => e.key === 'Escape' && setNewBook(null)} />
            <div className="row">
              <Button size="sm" type="submit" variant="primary">
                Add
              </Button>
              <Button size="sm" onClick={() => setNewBook(null)}>
                Cancel
              </Button>
            </div>
          </form>
        )}
      </nav>

      <section className="notes-list" aria-label={scopeTitle}>
        <div className="notes-list-head">
          <h2>{scopeTitle}</h2>
          {resource.permissions.create && scope !== 'shared' && (
            <Button size="sm" variant="primary" icon="plus" onClick={() => void createNote()}>
              New note
            </Button>
          )}
        </div>
        <input className="input" type="search" aria-label="Filter notes" placeholder="Filter notes…" value={q} onChange={(e) => setQ(e.target.value)} />
        {error && <Alert kind="error">{error}</Alert>}
        {notes === null && !error && <Loading />}
        {notes && sorted.length === 0 && <p className="subtle notes-empty">{query ? 'No notes match.' : 'No notes here yet.'}</p>}
        <ul className="notes-items">
          {sorted.map((n) => (
            <li key={n.id}>
              <Link className="note-item" to={`/notes/n/${n.id}${scopeQuery}`} aria-current={n.id === noteId ? 'page' : undefined}>
                <span className="note-item-title">
                  {n.pinned && <Icon name="pin" size={13} aria-label="Pinned" />}
                  {n.title || 'Untitled note'}
                </span>
                <span className="note-item-snippet">{n.body_text?.slice(0, 110) || 'No text'}</span>
                <span className="note-item-meta">
                  {timeAgo(n.updated_at)}
                  {n.tags.slice(0, 3).map((t) => (
                    <Badge key={t}>{t}</Badge>
                  ))}
                </span>
              </Link>
            </li>
          ))}
        </ul>
      </section>

      <section className="notes-editor" aria-label="Note">
        {noteId && !legacy ? (
          <>
            <IconButton className="notes-back" icon="chevron-left" label="Back to the list" onClick={() => navigate(`/notes${scopeQuery}`)} />
            <NoteEditor key={noteId} id={noteId} notebooks={notebooks ?? []} onSaved={onSaved} onDeleted={onDeleted} />
          </>
        ) : (
          <EmptyState icon="sticky-note" title="Pick a note">
            <p>Choose a note from the list, or start a new one.</p>
          </EmptyState>
        )}
      </section>
    </div>
  )
}
