import { Icon } from '../../components/Icon'
import { formatDateTime, formatShortDate } from '../../lib/format'

export const PRIORITY = ['None', 'Low', 'Medium', 'High', 'Urgent']

export type Task = Record<string, unknown> & {
  id: string
  title: string
  status: string
  priority: number
  position: number
  assignee_id: string | null
  project_id: string | null
  parent_id: string | null
  due_at: string | null
  due_date: string | null
  labels: string[]
  checklist: { text: string; done: boolean }[]
  description: string
  version: number
}

export function Priority({ value }: { value: number }) {
  if (!value) return null
  return (
    <span className={`prio prio-${value}`} title={`Priority: ${PRIORITY[value]}`}>
      <Icon name={value >= 3 ? 'alert' : 'zap'} size={12} />
      {PRIORITY[value]}
    </span>
  )
}

export function isOverdue(t: Pick<Task, 'due_at' | 'due_date' | 'status'>, now = Date.now()): boolean {
  if (t.status === 'done') return false
  if (t.due_at) return new Date(t.due_at).getTime() < now
  if (t.due_date) return new Date(t.due_date + 'T23:59:59Z').getTime() < now
  return false
}

export function Due({ task }: { task: Pick<Task, 'due_at' | 'due_date' | 'status'> }) {
  if (!task.due_at && !task.due_date) return null
  const over = isOverdue(task)
  return (
    <span className={over ? 'overdue row' : 'row'} style={{ gap: 3 }} title={`${over ? 'Overdue' : 'Due'}: ${task.due_at ? formatDateTime(task.due_at) : task.due_date}`}>
      <Icon name="calendar" size={12} />
      {formatShortDate(task.due_at ?? task.due_date)}
    </span>
  )
}
