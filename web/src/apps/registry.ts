// Apps with their own views (beyond the generic list/detail/form every resource gets).
// Adding one: a lazily loaded component under src/apps/<name>/ and an entry here.
import type { AppMeta } from '../lib/meta'

export interface AppNavItem {
  label: string
  to: string
  icon?: string
}

export interface AppView {
  /** Where the launcher tile goes. */
  home: string
  /** Paths that belong to the app (the sidebar highlights and expands it). */
  prefix: string
  nav: AppNavItem[]
}

export const APP_VIEWS: Record<string, AppView> = {
  tasks: {
    home: '/tasks',
    prefix: '/tasks',
    nav: [
      { label: 'Board', to: '/tasks', icon: 'kanban' },
      { label: 'My tasks', to: '/tasks/mine', icon: 'user' },
      { label: 'Overdue', to: '/tasks/overdue', icon: 'clock' },
      { label: 'All tasks', to: '/tasks/list', icon: 'list' },
    ],
  },
  notes: {
    home: '/notes',
    prefix: '/notes',
    nav: [
      { label: 'All notes', to: '/notes', icon: 'sticky-note' },
      { label: 'Shared with me', to: '/notes/shared', icon: 'users' },
    ],
  },
  crm: {
    home: '/crm',
    prefix: '/crm',
    nav: [
      { label: 'Pipeline', to: '/crm', icon: 'kanban' },
      { label: 'Forecast', to: '/crm/forecast', icon: 'bar-chart' },
      { label: 'Reports', to: '/crm/reports', icon: 'table' },
    ],
  },
  identity: {
    home: '/admin/users',
    prefix: '/admin',
    nav: [],
  },
}

export function appHome(app: AppMeta): string {
  const view = APP_VIEWS[app.name]
  if (view) return view.home
  const first = app.resources[0]
  return first ? `/r/${app.name}/${first.name}` : `/apps/${app.name}`
}

const PALETTE = [
  ['#6366f1', '#4338ca'],
  ['#0ea5e9', '#0369a1'],
  ['#10b981', '#047857'],
  ['#f59e0b', '#b45309'],
  ['#ec4899', '#be185d'],
  ['#8b5cf6', '#6d28d9'],
  ['#14b8a6', '#0f766e'],
  ['#f43f5e', '#be123c'],
  ['#64748b', '#334155'],
]

/** A stable colour per app. */
export function appColor(name: string): string {
  let h = 0
  for (const c of name) h = (h * 33 + c.charCodeAt(0)) >>> 0
  const [a, b] = PALETTE[h % PALETTE.length]!
  return `linear-gradient(135deg, ${a}, ${b})`
}
