// Per-browser preferences: chosen columns and saved views per resource (localStorage).
import type { ListState } from './query'

export interface SavedView {
  name: string
  state: ListState
  columns?: string[]
}

function read<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key)
    return raw ? (JSON.parse(raw) as T) : fallback
  } catch {
    return fallback
  }
}

function write(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value))
  } catch {
    /* storage full or disabled: preferences are a nicety */
  }
}

export const prefs = {
  columns: (resource: string): string[] | null => read<string[] | null>(`nexus.columns.${resource}`, null),
  setColumns: (resource: string, cols: string[] | null) =>
    cols ? write(`nexus.columns.${resource}`, cols) : localStorage.removeItem(`nexus.columns.${resource}`),
  views: (resource: string): SavedView[] => read<SavedView[]>(`nexus.views.${resource}`, []),
  saveView: (resource: string, view: SavedView) => {
    const views = prefs.views(resource).filter((v) => v.name !== view.name)
    write(`nexus.views.${resource}`, [...views, view])
  },
  deleteView: (resource: string, name: string) =>
    write(`nexus.views.${resource}`, prefs.views(resource).filter((v) => v.name !== name)),
}
