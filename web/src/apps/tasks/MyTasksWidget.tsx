// Home page card: the signed-in person's open tasks, soonest due first.
import { useEffect, useState } from 'react'
import { EmptyState, Loading } from '../../components/ui'
import { api } from '../../lib/api'
import { useSession } from '../../lib/context'
import { findResource } from '../../lib/meta'
import { Link } from '../../lib/router'
import { Due, Priority, type Task } from './common'

export default function MyTasksWidget() {
  const { meta } = useSession()
  const tasks = findResource(meta, 'tasks', 'tasks')
  const [items, setItems] = useState<Task[] | null>(null)
  useEffect(() => {
    if (!tasks) return
    const view = tasks.views.some((v) => v.name === 'mine') ? 'view=mine&' : ''
    api
      .get<{ items: Task[] }>(`${tasks.path}?${view}limit=8`)
      .then((p) => setItems(p.items))
      .catch(() => setItems([]))
  }, [tasks])
  if (!tasks) return null
  return (
    <section className="card" aria-labelledby="my-tasks-h">
      <div className="card-head">
        <h2 id="my-tasks-h">My tasks</h2>
        <span className="spacer" />
        <Link to="/tasks/mine" className="small">
          See all
        </Link>
      </div>
      {!items ? (
        <Loading />
      ) : items.length === 0 ? (
        <EmptyState icon="check-circle" title="All clear">
          <p>No open tasks are assigned to you.</p>
        </EmptyState>
      ) : (
        <ul className="subtasks" style={{ padding: '4px 20px 12px' }}>
          {items.map((t) => (
            <li key={t.id} style={{ flexWrap: 'wrap' }}>
              <Link to={`/tasks/t/${t.id}`} style={{ flex: 1, minWidth: 0, color: 'var(--text)', fontWeight: 550 }}>
                {t.title}
              </Link>
              <span className="task-meta row small">
                <Priority value={t.priority} />
                <Due task={t} />
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
