// One task: status actions, properties, checklist, subtasks, comments and history.
import { useEffect, useState, type FormEvent } from 'react'
import { Alert, Avatar, Badge, Button, ConfirmDialog, Dialog, IconButton, Loading, Tabs, useToast } from '../../components/ui'
import { ApiError, api, request } from '../../lib/api'
import { useSession } from '../../lib/context'
import { timeAgo, formatDateTime } from '../../lib/format'
import { useDocumentTitle } from '../../lib/hooks'
import type { ResourceMeta } from '../../lib/meta'
import { findResource, humanize } from '../../lib/meta'
import { useReferenceTitle } from '../../lib/refs'
import { Link, navigate, setSearch, useLocation } from '../../lib/router'
import { NotFound, PropertyList, useActions, useRecord } from '../../records/DetailView'
import { choiceTone } from '../../records/FieldValue'
import { HistoryTab } from '../../records/HistoryTab'
import { RecordForm } from '../../records/RecordForm'
import { Priority, type Task } from './common'

interface Comment {
  id: string
  task_id: string
  body: string
  created_at: string
  created_by: string
  version: number
}

function Checklist({ task, resource, onSaved, etag, onConflict }: { task: Task; resource: ResourceMeta; onSaved: (t: Task, etag?: string) => void; etag?: string; onConflict: () => void }) {
  const toast = useToast()
  const [text, setText] = useState('')
  const items = task.checklist ?? []
  const save = async (checklist: Task['checklist']) => {
    try {
      const res = await request<Task>(`${resource.path}/${task.id}`, { method: 'PATCH', json: { checklist }, ifMatch: etag })
      onSaved(res.data, res.etag)
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        toast('The task was changed by someone else — it has been reloaded; try again.', 'error')
        onConflict()
      } else toast((err as Error).message, 'error')
    }
  }
  const done = items.filter((i) => i.done).length
  return (
    <section className="card card-pad stack-sm" aria-labelledby="checklist-h">
      <div className="row">
        <h2 id="checklist-h" style={{ fontSize: 'var(--text-lg)' }}>
          Checklist
        </h2>
        {items.length > 0 && (
          <span className="small muted">
            {done}/{items.length}
          </span>
        )}
      </div>
      {items.length > 0 && (
        <div className="progress" role="progressbar" aria-label="Checklist progress" aria-valuemin={0} aria-valuemax={items.length} aria-valuenow={done}>
          <span style={{ width: `${(done / items.length) * 100}%` }} />
        </div>
      )}
      <ul className="checklist">
        {items.map((item, i) => (
          <li key={i}>
            <input
              type="checkbox"
              id={`check-${i}`}
              checked={item.done}
              disabled={!resource.permissions.update}
              onChange={() => void save(items.map((x, j) => (j === i ? { ...x, done: !x.done } : x)))}
            />
            <label htmlFor={`check-${i}`} className={item.done ? 'done-text' : undefined} style={{ flex: 1 }}>
              {item.text}
            </label>
            {resource.permissions.update && <IconButton icon="x" label={`Remove “${item.text}”`} onClick={() => void save(items.filter((_, j) => j !== i))} />}
          </li>
        ))}
      </ul>
      {resource.permissions.update && (
        <form
          className="quick-add"
          onSubmit={(e) => {
            e.preventDefault()
            if (!text.trim()) return
            void save([...items, { text: text.trim(), done: false }]).then(() => setText(''))
          }}
        >
          <input className="input input-sm" aria-label="New checklist item" placeholder="Add an item" value={text} onChange={(e) => setText(e.target.value)} />
          <Button size="sm" type="submit" icon="plus">
            Add
          </Button>
        </form>
      )}
    </section>
  )
}

function Subtasks({ task, resource }: { task: Task; resource: ResourceMeta }) {
  const toast = useToast()
  const [items, setItems] = useState<Task[] | null>(null)
  const [title, setTitle] = useState('')
  useEffect(() => {
    api
      .get<{ items: Task[] }>(`${resource.path}?parent_id=${task.id}&sort=position&limit=200`)
      .then((p) => setItems(p.items))
      .catch(() => setItems([]))
  }, [resource.path, task.id])
  const add = async (e: FormEvent) => {
    e.preventDefault()
    if (!title.trim()) return
    try {
      const body: Record<string, unknown> = { title: title.trim(), parent_id: task.id }
      if (task.project_id) body.project_id = task.project_id
      const created = await api.post<Task>(resource.path, body)
      setItems((i) => [...(i ?? []), created])
      setTitle('')
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }
  const toggle = async (sub: Task) => {
    try {
      const res = await api.post<Task>(`${resource.path}/${sub.id}/${sub.status === 'done' ? 'reopen' : 'complete'}`)
      setItems((i) => i?.map((t) => (t.id === sub.id ? res : t)) ?? null)
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }
  return (
    <section className="card card-pad stack-sm" aria-labelledby="subtasks-h">
      <h2 id="subtasks-h" style={{ fontSize: 'var(--text-lg)' }}>
        Subtasks {items && items.length > 0 && <span className="small muted">{items.filter((t) => t.status === 'done').length}/{items.length}</span>}
      </h2>
      {!items ? (
        <Loading />
      ) : (
        <ul className="subtasks">
          {items.map((sub) => (
            <li key={sub.id}>
              <input type="checkbox" aria-label={`Done: ${sub.title}`} checked={sub.status === 'done'} onChange={() => void toggle(sub)} disabled={!resource.permissions.update} />
              <Link to={`/tasks/t/${sub.id}`} className={sub.status === 'done' ? 'done-text' : undefined} style={{ flex: 1 }}>
                {sub.title}
              </Link>
              <Badge tone={choiceTone(sub.status)}>{humanize(sub.status)}</Badge>
            </li>
          ))}
        </ul>
      )}
      {resource.permissions.create && (
        <form className="quick-add" onSubmit={add}>
          <input className="input input-sm" aria-label="New subtask" placeholder="Add a subtask" value={title} onChange={(e) => setTitle(e.target.value)} />
          <Button size="sm" type="submit" icon="plus">
            Add
          </Button>
        </form>
      )}
    </section>
  )
}

function CommentItem({ c, comments, onDelete }: { c: Comment; comments: ResourceMeta; onDelete: () => void }) {
  const { meta, me } = useSession()
  const name = useReferenceTitle(meta, 'identity.users', c.created_by) ?? (c.created_by === me.id ? me.name : 'Someone')
  return (
    <li>
      <Avatar name={name} size={32} />
      <div>
        <div className="row" style={{ gap: 8 }}>
          <strong>{name}</strong>
          <span className="small subtle" title={formatDateTime(c.created_at)}>
            {timeAgo(c.created_at)}
          </span>
          {comments.permissions.delete && c.created_by === me.id && (
            <button type="button" className="linkish small" style={{ marginLeft: 'auto', color: 'var(--text-subtle)' }} onClick={onDelete}>
              Delete
            </button>
          )}
        </div>
        <p className="comment-body">{c.body}</p>
      </div>
    </li>
  )
}

function Comments({ task }: { task: Task }) {
  const { meta } = useSession()
  const toast = useToast()
  const comments = findResource(meta, 'tasks', 'comments')
  const [items, setItems] = useState<Comment[] | null>(null)
  const [body, setBody] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    if (!comments) return
    api
      .get<{ items: Comment[] }>(`${comments.path}?task_id=${task.id}&sort=created_at&limit=200`)
      .then((p) => setItems(p.items))
      .catch(() => setItems([]))
  }, [comments, task.id])
  if (!comments) return null
  const post = async (e: FormEvent) => {
    e.preventDefault()
    if (!body.trim()) return
    setBusy(true)
    setError(null)
    try {
      const created = await api.post<Comment>(comments.path, { task_id: task.id, body })
      setItems((i) => [...(i ?? []), created])
      setBody('')
    } catch (err) {
      setError(err instanceof ApiError ? (err.fieldErrors.body ?? err.message) : (err as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const remove = async (c: Comment) => {
    try {
      await api.del(`${comments.path}/${c.id}`)
      setItems((i) => i?.filter((x) => x.id !== c.id) ?? null)
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }
  return (
    <section className="card card-pad stack-sm" aria-labelledby="comments-h">
      <h2 id="comments-h" style={{ fontSize: 'var(--text-lg)' }}>
        Comments {items && items.length > 0 && <span className="small muted">{items.length}</span>}
      </h2>
      {!items ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="muted small">No comments yet.</p>
      ) : (
        <ul className="comments">
          {items.map((c) => (
            <CommentItem key={c.id} c={c} comments={comments} onDelete={() => void remove(c)} />
          ))}
        </ul>
      )}
      {comments.permissions.create && (
        <form className="stack-sm" onSubmit={post}>
          <label htmlFor="comment-body" className="visually-hidden">
            Write a comment
          </label>
          <textarea
            id="comment-body"
            className="textarea"
            rows={3}
            placeholder="Write a comment… (Ctrl+Enter to send)"
            value={body}
            aria-invalid={error ? true : undefined}
            onChange={(e) => setBody(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void post(e as unknown as FormEvent)
            }}
          />
          {error && (
            <p className="field-error" role="alert">
              {error}
            </p>
          )}
          <div className="row" style={{ justifyContent: 'flex-end' }}>
            <Button type="submit" variant="primary" size="sm" busy={busy} icon="message">
              Comment
            </Button>
          </div>
        </form>
      )}
    </section>
  )
}

export function TaskDetail({ resource, id }: { resource: ResourceMeta; id: string }) {
  const { search } = useLocation()
  const tab = search.get('tab') ?? 'details'
  const toast = useToast()
  const rec = useRecord(resource, id)
  const [editing, setEditing] = useState(false)
  const [confirm, setConfirm] = useState(false)
  const { run, dialog } = useActions(resource, rec.data, rec.set)
  const task = rec.data?.record as Task | undefined
  useDocumentTitle(task?.title)
  if (rec.error) return <NotFound resource={resource} error={rec.error} />
  if (!task || !rec.data) return <Loading />
  const act = (name: string) => resource.actions.find((a) => a.name === name && a.allowed)
  const deleted = Boolean(task.deleted_at)
  const primary =
    task.status === 'done' ? act('reopen') : task.status === 'todo' ? act('start') : act('complete')

  return (
    <div className="page">
      <div className="page-head">
        <div className="titles">
          <nav className="crumbs" aria-label="Breadcrumb">
            <Link to="/tasks">Tasks</Link>
            {task.parent_id && (
              <>
                <span aria-hidden="true">/</span>
                <Link to={`/tasks/t/${task.parent_id}`}>Parent task</Link>
              </>
            )}
          </nav>
          <h1 className={task.status === 'done' ? 'row done-text' : 'row'}>{task.title}</h1>
          <div className="row">
            <Badge tone={choiceTone(task.status)}>{humanize(task.status)}</Badge>
            {deleted && <Badge tone="danger">Deleted</Badge>}
          </div>
        </div>
        {deleted && <Alert kind="warning">This task is deleted. Restore it from the task list's “Show deleted”.</Alert>}
        {!deleted && (
          <div className="actions">
            {primary && (
              <Button variant="primary" icon={primary.name === 'complete' ? 'check' : primary.name === 'start' ? 'play' : 'rotate-ccw'} onClick={() => void run(primary)}>
                {primary.name === 'complete' ? 'Complete' : primary.name === 'start' ? 'Start' : 'Reopen'}
              </Button>
            )}
            {task.status !== 'done' && primary?.name !== 'complete' && act('complete') && (
              <Button icon="check" onClick={() => void run(act('complete')!)}>
                Complete
              </Button>
            )}
            {act('assign') && (
              <Button icon="user" onClick={() => void run(act('assign')!)}>
                Assign
              </Button>
            )}
            {resource.permissions.update && (
              <Button icon="edit" onClick={() => setEditing(true)}>
                Edit
              </Button>
            )}
            {resource.permissions.delete && <IconButton icon="trash" label="Delete task" onClick={() => setConfirm(true)} />}
          </div>
        )}
      </div>
      <Tabs
        label="Task"
        current={tab}
        onChange={(t) => setSearch({ tab: t === 'details' ? null : t })}
        tabs={[
          { id: 'details', label: 'Details', icon: 'file-text' },
          { id: 'history', label: 'History', icon: 'history' },
        ]}
      />
      {tab === 'history' ? (
        <section className="card card-pad" role="tabpanel" aria-labelledby="tab-history">
          <HistoryTab app="tasks" resource="tasks" recordId={task.id} fields={resource.fields} />
        </section>
      ) : (
        <div className="detail-grid" role="tabpanel" aria-labelledby="tab-details">
          <div className="stack">
            <section className="card card-pad stack-sm" aria-labelledby="desc-h">
              <h2 id="desc-h" style={{ fontSize: 'var(--text-lg)' }}>
                Description
              </h2>
              {task.description ? <p style={{ whiteSpace: 'pre-wrap' }}>{task.description}</p> : <p className="muted small">No description.</p>}
            </section>
            <Checklist task={task} resource={resource} etag={rec.data.etag} onSaved={(t, e) => rec.set(t, e)} onConflict={rec.reload} />
            {!task.parent_id && <Subtasks task={task} resource={resource} />}
            <Comments task={task} />
          </div>
          <aside className="card card-pad" aria-label="Properties">
            <PropertyList
              resource={resource}
              record={task}
              compact
              fields={['assignee_id', 'project_id', 'priority', 'due_at', 'due_date', 'labels', 'recurrence', 'completed_at', 'created_by', 'created_at', 'updated_at']}
              render={{ priority: (v) => (Number(v) ? <Priority value={Number(v)} /> : <span className="subtle">None</span>) }}
            />
          </aside>
        </div>
      )}
      {editing && (
        <Dialog title="Edit task" onClose={() => setEditing(false)} size="lg">
          <RecordForm
            resource={resource}
            record={rec.data.record}
            etag={rec.data.etag}
            onCancel={() => setEditing(false)}
            onSaved={(r, e) => {
              rec.set(r, e)
              setEditing(false)
              toast('Saved', 'success')
            }}
          />
        </Dialog>
      )}
      {confirm && (
        <ConfirmDialog
          title="Delete task?"
          message={<>“{task.title}” and its subtasks go to the trash; they can be restored.</>}
          confirmLabel="Delete"
          danger
          onConfirm={async () => {
            await request(`${resource.path}/${task.id}`, { method: 'DELETE', ifMatch: rec.data!.etag })
            toast('Task deleted', 'success')
            navigate('/tasks')
          }}
          onClose={() => setConfirm(false)}
        />
      )}
      {dialog}
    </div>
  )
}
