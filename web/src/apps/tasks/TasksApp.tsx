// Tasks: the board, my tasks, overdue, every task, and one task's page.
import { useEffect, useState, type FormEvent } from 'react'
import { Button, EmptyState, Tabs, useToast } from '../../components/ui'
import { ApiError, api } from '../../lib/api'
import { useSession } from '../../lib/context'
import { useDocumentTitle } from '../../lib/hooks'
import type { ResourceMeta } from '../../lib/meta'
import { findResource } from '../../lib/meta'
import { matchPath, navigate, setSearch, useLocation } from '../../lib/router'
import { ListView } from '../../records/ListView'
import { Board } from './Board'
import { TaskDetail } from './TaskDetail'
import type { Task } from './common'

const TABS = [
  { id: 'board', label: 'Board', icon: 'kanban', path: '/tasks' },
  { id: 'mine', label: 'My tasks', icon: 'user', path: '/tasks/mine' },
  { id: 'overdue', label: 'Overdue', icon: 'clock', path: '/tasks/overdue' },
  { id: 'list', label: 'All tasks', icon: 'list', path: '/tasks/list' },
]

function QuickAdd({ resource, projectId, mine, onAdded }: { resource: ResourceMeta; projectId?: string; mine?: boolean; onAdded: (t: Task) => void }) {
  const { me } = useSession()
  const toast = useToast()
  const [title, setTitle] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!title.trim()) return
    setBusy(true)
    setError(null)
    try {
      const body: Record<string, unknown> = { title: title.trim() }
      if (projectId) body.project_id = projectId
      if (mine) body.assignee_id = me.id
      const created = await api.post<Task>(resource.path, body)
      setTitle('')
      onAdded(created)
      toast(`Added “${created.title}”`, 'success')
    } catch (err) {
      setError(err instanceof ApiError ? (err.fieldErrors.title ?? err.message) : (err as Error).message)
    } finally {
      setBusy(false)
    }
  }
  return (
    <form className="stack-sm" onSubmit={submit} style={{ flex: '1 1 320px', maxWidth: 520 }}>
      <div className="quick-add">
        <input
          className="input"
          aria-label="Quick add a task"
          placeholder={mine ? 'Add a task for me… (Enter)' : 'Add a task… (Enter)'}
          value={title}
          aria-invalid={error ? true : undefined}
          onChange={(e) => setTitle(e.target.value)}
        />
        <Button type="submit" variant="primary" icon="plus" busy={busy}>
          Add
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

function ProjectPicker({ value, onChange }: { value?: string; onChange: (id?: string) => void }) {
  const { meta } = useSession()
  const projects = findResource(meta, 'tasks', 'projects')
  const [items, setItems] = useState<{ id: string; name: string }[]>([])
  useEffect(() => {
    if (!projects) return
    api
      .get<{ items: { id: string; name: string }[] }>(`${projects.path}?archived=false&limit=200&sort=name`)
      .then((p) => setItems(p.items))
      .catch(() => setItems([]))
  }, [projects])
  if (!projects || items.length === 0) return null
  return (
    <select className="select" style={{ width: 'auto', minWidth: 180 }} aria-label="Project" value={value ?? ''} onChange={(e) => onChange(e.target.value || undefined)}>
      <option value="">All projects</option>
      {items.map((p) => (
        <option key={p.id} value={p.id}>
          {p.name}
        </option>
      ))}
    </select>
  )
}

export default function TasksApp() {
  const { path, search } = useLocation()
  const { meta } = useSession()
  const tasks = findResource(meta, 'tasks', 'tasks')
  const [refresh, setRefresh] = useState(0)
  const project = search.get('project') ?? undefined
  const current = TABS.find((t) => t.path === path)?.id ?? 'board'
  useDocumentTitle(TABS.find((t) => t.id === current)?.label ?? 'Tasks')

  if (!tasks) return <EmptyState icon="lock" title="You may not read tasks" />
  const detail = matchPath('/tasks/t/:id', path)
  if (detail) return <TaskDetail key={detail.id} resource={tasks} id={detail.id!} />

  const views = new Set(tasks.views.map((v) => v.name))
  return (
    <div className="page">
      <div className="page-head">
        <div className="titles">
          <h1>Tasks</h1>
          <p className="muted">Plan, track and finish work with your team.</p>
        </div>
        <div className="actions">
          <ProjectPicker value={project} onChange={(id) => setSearch({ project: id ?? null })} />
          <Button icon="plus" onClick={() => navigate('/r/tasks/tasks/new')}>
            New task…
          </Button>
        </div>
      </div>
      {tasks.permissions.create && (
        <div className="row">
          <QuickAdd resource={tasks} projectId={project} mine={current === 'mine'} onAdded={() => setRefresh((r) => r + 1)} />
        </div>
      )}
      <Tabs
        label="Task views"
        current={current}
        onChange={(id) => navigate(TABS.find((t) => t.id === id)!.path + (project ? `?project=${project}` : ''))}
        tabs={TABS.filter((t) => t.id === 'board' || t.id === 'list' || views.has(t.id)).map(({ id, label, icon }) => ({ id, label, icon }))}
      />
      {current === 'board' && <Board resource={tasks} projectId={project} refreshKey={refresh} />}
      {current !== 'board' && (
        <ListView
          key={current}
          resource={tasks}
          fixed={{
            view: current === 'list' ? undefined : current,
            filters: project ? [{ field: 'project_id', op: 'eq', value: project }] : [],
          }}
          rowHref={(t) => `/tasks/t/${t.id}`}
          refreshKey={refresh}
          emptyText={current === 'mine' ? 'Nothing assigned to you is open. Nice.' : current === 'overdue' ? 'Nothing is overdue.' : undefined}
        />
      )}
    </div>
  )
}
