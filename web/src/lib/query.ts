// List state ↔ the generic list API's query string (DESIGN.md §4).

export interface FilterClause {
  field: string
  op: string // eq ne gt gte lt lte in nin isnull startswith contains
  value: string
}

export interface ListState {
  q?: string
  sort?: string
  view?: string
  filters?: FilterClause[]
  deleted?: 'exclude' | 'include' | 'only'
  limit?: number
  cursor?: string | null
}

export const OPERATOR_LABELS: Record<string, string> = {
  eq: 'is',
  ne: 'is not',
  gt: 'after / more than',
  gte: 'on or after / at least',
  lt: 'before / less than',
  lte: 'on or before / at most',
  in: 'is one of',
  nin: 'is none of',
  isnull: 'is empty',
  startswith: 'starts with',
  contains: 'contains',
}

/** The query string (without "?") for GET {resource path}. Empty values are left out. */
export function buildListQuery(state: ListState): string {
  const params = new URLSearchParams()
  if (state.limit) params.set('limit', String(state.limit))
  if (state.cursor) params.set('cursor', state.cursor)
  if (state.sort) params.set('sort', state.sort)
  const q = state.q?.trim()
  if (q) params.set('q', q)
  if (state.view) params.set('view', state.view)
  if (state.deleted && state.deleted !== 'exclude') params.set('deleted', state.deleted)
  for (const f of state.filters ?? []) {
    if (!f.field) continue
    const value = f.op === 'isnull' ? (f.value === 'false' ? 'false' : 'true') : f.value.trim()
    if (value === '') continue
    const key = f.op && f.op !== 'eq' ? `${f.field}[${f.op}]` : f.field
    params.append(key, value)
  }
  return params.toString()
}

/** Toggles a column's sort: none → ascending → descending → back to ascending. */
export function nextSort(current: string | undefined, fieldName: string): string {
  if (current === fieldName) return `-${fieldName}`
  return fieldName
}

export function sortDirection(current: string | undefined, fieldName: string): 'ascending' | 'descending' | 'none' {
  const first = (current ?? '').split(',')[0] ?? ''
  if (first === fieldName) return 'ascending'
  if (first === `-${fieldName}`) return 'descending'
  return 'none'
}

/** Parses "?q=&sort=&status=todo&due_at[gte]=…" back into a list state (for shareable URLs). */
export function parseListQuery(search: URLSearchParams): ListState {
  const state: ListState = { filters: [] }
  for (const [key, value] of search.entries()) {
    if (key === 'q') state.q = value
    else if (key === 'sort') state.sort = value
    else if (key === 'view') state.view = value
    else if (key === 'deleted') state.deleted = value as ListState['deleted']
    else if (key === 'limit' || key === 'cursor' || key === 'id' || key === 'tab') continue
    else {
      const m = /^([a-z0-9_]+)(?:\[([a-z]+)\])?$/i.exec(key)
      if (m) state.filters!.push({ field: m[1]!, op: m[2] ?? 'eq', value })
    }
  }
  return state
}
