// The kanban board: a column per status; drag a card (or press Alt+arrows on it) to move
// it — the move action gets the new status and a position between its new neighbours.
import { useCallback, useEffect, useRef, useState, type DragEvent, type KeyboardEvent } from 'react'
import { Icon } from '../../components/Icon'
import { Alert, Badge, Loading, useToast } from '../../components/ui'
import { api } from '../../lib/api'
import type { ResourceMeta } from '../../lib/meta'
import { humanize } from '../../lib/meta'
import { Link } from '../../lib/router'
import { RefValue } from '../../records/FieldValue'
import { dropIndex, insertAt, positionBetween, renumber, type Card } from './board'
import { Due, Priority, type Task } from './common'

const COLORS: Record<string, string> = { todo: 'var(--text-subtle)', in_progress: 'var(--info)', done: 'var(--success)' }

type Columns = Record<string, Task[]>

export function Board({ resource, projectId, refreshKey }: { resource: ResourceMeta; projectId?: string; refreshKey?: unknown }) {
  const statuses = resource.fields.find((f) => f.name === 'status')?.choices ?? ['todo', 'in_progress', 'done']
  const toast = useToast()
  const [cols, setCols] = useState<Columns | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [dragging, setDragging] = useState<string | null>(null)
  const [target, setTarget] = useState<{ status: string; index: number } | null>(null)
  const [adding, setAdding] = useState<Record<string, string>>({})
  const [live, setLive] = useState('')
  const bodies = useRef<Record<string, HTMLDivElement | null>>({})
  const canMove = resource.actions.some((a) => a.name === 'move' && a.allowed)

  const load = useCallback(async () => {
    try {
      const pages = await Promise.all(
        statuses.map((s) => {
          const p = new URLSearchParams({ status: s, 'parent_id[isnull]': 'true', sort: 'position', limit: '200' })
          if (projectId) p.set('project_id', projectId)
          return api.get<{ items: Task[] }>(`${resource.path}?${p}`)
        }),
      )
      setCols(Object.fromEntries(statuses.map((s, i) => [s, pages[i]!.items])))
      setError(null)
    } catch (err) {
      setError((err as Error).message)
    }
  }, [resource.path, projectId, statuses.join()])

  useEffect(() => {
    void load()
  }, [load, refreshKey])

  const find = (id: string): Task | undefined => Object.values(cols ?? {}).flat().find((t) => t.id === id)

  const move = async (id: string, status: string, index: number) => {
    if (!cols) return
    const task = find(id)
    if (!task) return
    const before = cols
    const column = insertAt(cols[status]! as Card[], { ...task, status } as Card, index) as Task[]
    const i = column.findIndex((t) => t.id === id)
    const pos = positionBetween(column[i - 1]?.position, column[i + 1]?.position)
    const next: Columns = {}
    for (const s of statuses) next[s] = s === status ? column : cols[s]!.filter((t) => t.id !== id)
    if (pos !== null) column[i] = { ...column[i]!, position: pos }
    setCols(next)
    if (task.status === status && pos !== null && before[status]!.findIndex((t) => t.id === id) === i) return
    try {
      if (pos !== null) {
        const updated = await api.post<Task>(`${resource.path}/${id}/move`, { status, position: pos })
        setCols((c) => c && { ...c, [status]: c[status]!.map((t) => (t.id === id ? updated : t)) })
      } else {
        // Neighbours share a position: space the column out again, in the order shown.
        await api.post<Task>(`${resource.path}/${id}/move`, { status })
        for (const [cid, p] of renumber(column as Card[])) await api.post(`${resource.path}/${cid}/move`, { position: p })
        await load()
      }
      setLive(`Moved “${task.title}” to ${humanize(status)}, position ${i + 1}.`)
    } catch (err) {
      setCols(before)
      toast(`Could not move the task: ${(err as Error).message}`, 'error')
    }
  }

  const onDragStart = (e: DragEvent, id: string) => {
    e.dataTransfer.setData('text/plain', id)
    e.dataTransfer.effectAllowed = 'move'
    setDragging(id)
  }
  const onDragOver = (e: DragEvent, status: string) => {
    if (!dragging) return
    e.preventDefault()
    e.dataTransfer.dropEffect = 'move'
    const body = bodies.current[status]
    const cards = body ? [...body.querySelectorAll<HTMLElement>('[data-card]')].filter((el) => el.dataset.card !== dragging) : []
    const index = dropIndex(
      e.clientY,
      cards.map((c) => {
        const r = c.getBoundingClientRect()
        return { top: r.top, height: r.height }
      }),
    )
    if (target?.status !== status || target.index !== index) setTarget({ status, index })
  }
  const onDrop = (e: DragEvent, status: string) => {
    e.preventDefault()
    const id = e.dataTransfer.getData('text/plain') || dragging
    const index = target?.status === status ? target.index : (cols?.[status]?.length ?? 0)
    setDragging(null)
    setTarget(null)
    if (id) void move(id, status, index)
  }

  const onCardKey = (e: KeyboardEvent, task: Task) => {
    if (!e.altKey || !cols) return
    const s = statuses.indexOf(task.status)
    const i = cols[task.status]!.findIndex((t) => t.id === task.id)
    let to: [string, number] | null = null
    if (e.key === 'ArrowRight' && s < statuses.length - 1) to = [statuses[s + 1]!, cols[statuses[s + 1]!]!.length]
    if (e.key === 'ArrowLeft' && s > 0) to = [statuses[s - 1]!, cols[statuses[s - 1]!]!.length]
    if (e.key === 'ArrowUp' && i > 0) to = [task.status, i - 1]
    if (e.key === 'ArrowDown' && i < cols[task.status]!.length - 1) to = [task.status, i + 1]
    if (!to) return
    e.preventDefault()
    void move(task.id, to[0], to[1]).then(() =>
      setTimeout(() => document.querySelector<HTMLElement>(`[data-card="${task.id}"]`)?.focus(), 50),
    )
  }

  const quickAdd = async (status: string) => {
    const title = adding[status]?.trim()
    if (!title || !cols) return
    const last = cols[status]!.at(-1)
    try {
      const body: Record<string, unknown> = { title, status, position: positionBetween(last?.position, undefined) }
      if (projectId) body.project_id = projectId
      const created = await api.post<Task>(resource.path, body)
      setCols((c) => c && { ...c, [status]: [...c[status]!, created] })
      setAdding((a) => ({ ...a, [status]: '' }))
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }

  if (error) return <Alert title="Could not load the board">{error}</Alert>
  if (!cols) return <Loading label="Loading the board…" />

  return (
    <>
      <p className="visually-hidden" aria-live="polite">
        {live}
      </p>
      <p className="small subtle hide-sm">Drag cards between columns, or focus a card and press Alt + arrow keys.</p>
      <div className="board" role="list" aria-label="Board">
        {statuses.map((status) => (
          <section
            key={status}
            role="listitem"
            aria-label={`${humanize(status)} column`}
            className={`column${target?.status === status ? ' drop-target' : ''}`}
            data-status={status}
            onDragOver={(e) => onDragOver(e, status)}
            onDragLeave={(e) => {
              if (!(e.currentTarget as HTMLElement).contains(e.relatedTarget as Node)) setTarget((t) => (t?.status === status ? null : t))
            }}
            onDrop={(e) => onDrop(e, status)}
          >
            <header className="column-head">
              <span className="dot" style={{ background: COLORS[status] ?? 'var(--primary)' }} aria-hidden="true" />
              <h2 style={{ fontSize: 'var(--text-md)' }}>{humanize(status)}</h2>
              <Badge>{cols[status]!.length}</Badge>
            </header>
            <div className="column-body" ref={(el) => {
                bodies.current[status] = el
              }}>
              {cols[status]!.map((task, i) => (
                <div key={task.id} style={{ display: 'contents' }}>
                  {target?.status === status && target.index === i && dragging !== task.id && <div className="drop-line" aria-hidden="true" />}
                  <article
                    className={`task-card${dragging === task.id ? ' dragging' : ''}`}
                    data-card={task.id}
                    draggable={canMove}
                    tabIndex={0}
                    aria-label={`${task.title}. ${humanize(status)}. ${canMove ? 'Alt and arrow keys move it.' : ''}`}
                    onDragStart={(e) => onDragStart(e, task.id)}
                    onDragEnd={() => {
                      setDragging(null)
                      setTarget(null)
                    }}
                    onKeyDown={(e) => {
                      onCardKey(e, task)
                      if (e.key === 'Enter' && !e.altKey) (e.currentTarget.querySelector('a') as HTMLElement | null)?.click()
                    }}
                  >
                    <Link to={`/tasks/t/${task.id}`} className="task-title" tabIndex={-1} draggable={false}>
                      {task.title}
                    </Link>
                    {(task.labels?.length ?? 0) > 0 && (
                      <div className="row" style={{ gap: 4 }}>
                        {task.labels.slice(0, 4).map((l) => (
                          <Badge key={l} tone="primary">
                            {l}
                          </Badge>
                        ))}
                      </div>
                    )}
                    <div className="task-meta">
                      <Priority value={task.priority} />
                      <Due task={task} />
                      {task.checklist?.length > 0 && (
                        <span className="row" style={{ gap: 3 }}>
                          <Icon name="check-square" size={12} />
                          {task.checklist.filter((c) => c.done).length}/{task.checklist.length}
                        </span>
                      )}
                      {task.assignee_id && (
                        <span className="row" style={{ gap: 3, marginLeft: 'auto' }}>
                          <Icon name="user" size={12} />
                          <RefValue refKey="identity.users" id={task.assignee_id} link={false} />
                        </span>
                      )}
                    </div>
                  </article>
                </div>
              ))}
              {target?.status === status && target.index >= cols[status]!.filter((t) => t.id !== dragging).length && <div className="drop-line" aria-hidden="true" />}
              {resource.permissions.create && (
                <form
                  className="quick-add"
                  onSubmit={(e) => {
                    e.preventDefault()
                    void quickAdd(status)
                  }}
                >
                  <input
                    className="input input-sm"
                    aria-label={`Add a task to ${humanize(status)}`}
                    placeholder="+ Add a task"
                    value={adding[status] ?? ''}
                    onChange={(e) => setAdding((a) => ({ ...a, [status]: e.target.value }))}
                  />
                </form>
              )}
            </div>
          </section>
        ))}
      </div>
    </>
  )
}
