// The list for any resource: sort, filter, full text, cursor paging, column chooser,
// saved views, CSV export/import, the trash (deleted records) and restore.
import { useEffect, useMemo, useState, type ReactNode } from 'react'
import { Icon } from '../components/Icon'
import { Alert, Badge, Button, Dialog, EmptyState, FieldShell, Menu, Spinner, useToast } from '../components/ui'
import { ApiError, api, download } from '../lib/api'
import { recordHref } from '../lib/features'
import { useDebounced } from '../lib/hooks'
import type { FieldMeta, ResourceMeta } from '../lib/meta'
import { defaultColumns, fieldLabel, humanize, recordTitle, resourceKey } from '../lib/meta'
import { prefs, type SavedView } from '../lib/prefs'
import { buildListQuery, nextSort, OPERATOR_LABELS, parseListQuery, sortDirection, type FilterClause, type ListState } from '../lib/query'
import { Link, navigate } from '../lib/router'
import { FieldValue } from './FieldValue'
import { ImportDialog } from './ImportDialog'
import { FilterValueInput } from './FilterValueInput'

export interface ListViewProps {
  resource: ResourceMeta
  /** Parts of the query the person cannot change here (e.g. the "mine" view). */
  fixed?: Partial<ListState>
  /** Keep the list's state in the page's URL (shareable, survives reload). */
  urlState?: boolean
  rowHref?: (rec: Record<string, unknown>) => string
  actions?: ReactNode
  pageSize?: number
  emptyText?: string
  /** Changing it reloads the list. */
  refreshKey?: unknown
}

type Row = Record<string, unknown>

export function ListView({ resource, fixed, urlState, rowHref, actions, pageSize = 50, emptyText, refreshKey }: ListViewProps) {
  const key = resourceKey(resource)
  const toast = useToast()
  const initial = useMemo<ListState>(() => {
    if (urlState) return parseListQuery(new URLSearchParams(window.location.search))
    return { filters: [] }
  }, [key])
  const [q, setQ] = useState(initial.q ?? '')
  const [sort, setSort] = useState<string | undefined>(initial.sort)
  const [view, setView] = useState<string | undefined>(initial.view)
  const [filters, setFilters] = useState<FilterClause[]>(initial.filters ?? [])
  const [deleted, setDeleted] = useState<ListState['deleted']>(initial.deleted)
  const [showFilters, setShowFilters] = useState(false)
  const [columns, setColumns] = useState<string[]>(() => prefs.columns(key) ?? defaultColumns(resource))
  const [savedViews, setSavedViews] = useState<SavedView[]>(() => prefs.views(key))
  const [rows, setRows] = useState<Row[]>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const [loading, setLoading] = useState(true)
  const [loadingMore, setLoadingMore] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [importing, setImporting] = useState(false)
  const [tick, setTick] = useState(0)
  const debouncedQ = useDebounced(q, 250)

  const state: ListState = {
    q: debouncedQ,
    sort: fixed?.sort ?? sort,
    view: fixed?.view ?? view,
    filters: [...(fixed?.filters ?? []), ...filters],
    deleted: fixed?.deleted ?? deleted,
  }
  const qs = buildListQuery(state)

  useEffect(() => {
    if (!urlState) return
    const own = buildListQuery({ q: debouncedQ, sort, view, filters, deleted })
    const url = window.location.pathname + (own ? `?${own}` : '')
    if (url !== window.location.pathname + window.location.search) window.history.replaceState(null, '', url)
  }, [urlState, debouncedQ, sort, view, filters, deleted])

  useEffect(() => {
    const ctl = new AbortController()
    setLoading(true)
    setError(null)
    api
      .get<{ items: Row[]; next_cursor: string | null }>(`${resource.path}?${buildListQuery({ ...state, limit: pageSize })}`, ctl.signal)
      .then((page) => {
        setRows(page.items)
        setCursor(page.next_cursor)
        setLoading(false)
      })
      .catch((err: Error) => {
        if (ctl.signal.aborted) return
        setError(err.message)
        setRows([])
        setCursor(null)
        setLoading(false)
      })
    return () => ctl.abort()
  }, [resource.path, qs, pageSize, tick, refreshKey])

  const loadMore = async () => {
    if (!cursor) return
    setLoadingMore(true)
    try {
      const page = await api.get<{ items: Row[]; next_cursor: string | null }>(`${resource.path}?${buildListQuery({ ...state, limit: pageSize, cursor })}`)
      setRows((r) => [...r, ...page.items])
      setCursor(page.next_cursor)
    } catch (err) {
      toast((err as Error).message, 'error')
    } finally {
      setLoadingMore(false)
    }
  }

  const fieldsByName = useMemo(() => new Map(resource.fields.map((f) => [f.name, f])), [resource])
  const visible = columns.map((c) => fieldsByName.get(c)).filter(Boolean) as FieldMeta[]
  const href = (rec: Row) => rowHref?.(rec) ?? recordHref(resource.app, resource.name, String(rec.id))
  const activeSort = state.sort ?? resource.default_sort

  const toggleColumn = (name: string) => {
    const next = columns.includes(name) ? columns.filter((c) => c !== name) : [...columns, name]
    const ordered = resource.fields.map((f) => f.name).filter((n) => next.includes(n))
    const title = resource.title_field
    const cols = title && ordered.includes(title) ? [title, ...ordered.filter((n) => n !== title)] : ordered
    setColumns(cols)
    prefs.setColumns(key, cols)
  }

  const applySaved = (v: SavedView) => {
    setQ(v.state.q ?? '')
    setSort(v.state.sort)
    setView(v.state.view)
    setFilters(v.state.filters ?? [])
    setDeleted(undefined)
    if (v.columns) setColumns(v.columns)
  }

  const [naming, setNaming] = useState(false)
  const saveView = (name: string) => {
    prefs.saveView(key, { name, state: { q, sort, view, filters }, columns })
    setSavedViews(prefs.views(key))
    toast(`Saved view “${name}”`, 'success')
  }

  const restore = async (rec: Row) => {
    try {
      await api.post(`${resource.path}/${rec.id}/restore`)
      toast(`Restored “${recordTitle(resource, rec)}”`, 'success')
      setTick((t) => t + 1)
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }

  const doExport = async (format: 'csv' | 'json') => {
    try {
      const filtersOnly = buildListQuery({ ...state, limit: undefined })
      await download(`${resource.path}/export?${new URLSearchParams([['format', format], ...new URLSearchParams(filtersOnly)])}`, `${resource.app}-${resource.name}.${format}`)
    } catch (err) {
      toast(err instanceof ApiError ? err.message : 'Export failed', 'error')
    }
  }

  const serverViews = resource.views
  const currentViewLabel = view ? (serverViews.find((v) => v.name === view)?.title ?? humanize(view)) : 'All'
  const filterable = resource.fields.filter((f) => f.filterable)
  const activeFilterCount = filters.filter((f) => f.value !== '' || f.op === 'isnull').length

  return (
    <section className="card" aria-label={`${resource.title} list`}>
      <div className="toolbar">
        {resource.search.length > 0 && (
          <div className="input-with-icon search-field">
            <Icon name="search" size={16} />
            <input
              className="input"
              type="search"
              aria-label={`Search ${resource.title.toLowerCase()}`}
              placeholder={`Search ${resource.title.toLowerCase()}…`}
              value={q}
              onChange={(e) => setQ(e.target.value)}
            />
          </div>
        )}
        {!fixed?.view && (serverViews.length > 0 || savedViews.length > 0) && (
          <Menu
            label="Views"
            align="start"
            trigger={
              <span className="row" style={{ gap: 6 }}>
                <Icon name="bookmark" size={16} />
                <span>{currentViewLabel}</span>
                <Icon name="chevron-down" size={14} />
              </span>
            }
            items={[
              { label: 'All', checked: !view, onSelect: () => setView(undefined) },
              ...serverViews.map((v) => ({ label: v.title, checked: view === v.name, onSelect: () => setView(v.name) })),
              ...(savedViews.length ? (['separator'] as const) : []),
              ...savedViews.map((v) => ({ label: v.name, icon: 'bookmark', onSelect: () => applySaved(v) })),
            ]}
          />
        )}
        {filterable.length > 0 && (
          <Button variant={showFilters || activeFilterCount ? 'secondary' : 'ghost'} icon="filter" onClick={() => setShowFilters((s) => !s)} aria-expanded={showFilters}>
            Filter{activeFilterCount ? ` (${activeFilterCount})` : ''}
          </Button>
        )}
        <span className="spacer" />
        {loading && <Spinner size={16} label="Loading" />}
        <Menu
          label="Columns"
          trigger={<Icon name="columns" />}
          items={[
            ...resource.fields.map((f) => ({ label: fieldLabel(f), checkbox: true, checked: columns.includes(f.name), onSelect: () => toggleColumn(f.name) })),
            'separator' as const,
            {
              label: 'Reset columns',
              icon: 'rotate-ccw',
              onSelect: () => {
                prefs.setColumns(key, null)
                setColumns(defaultColumns(resource))
              },
            },
          ]}
        />
        <Menu
          label="More list actions"
          trigger={<Icon name="more" />}
          items={[
            { label: 'Save as view…', icon: 'bookmark', onSelect: () => setNaming(true) },
            ...savedViews.map((v) => ({ label: `Delete view “${v.name}”`, icon: 'trash', onSelect: () => (prefs.deleteView(key, v.name), setSavedViews(prefs.views(key))) })),
            'separator' as const,
            { label: 'Export CSV', icon: 'download', disabled: !resource.permissions.export, onSelect: () => void doExport('csv') },
            { label: 'Export JSON', icon: 'download', disabled: !resource.permissions.export, onSelect: () => void doExport('json') },
            { label: 'Import CSV…', icon: 'upload', disabled: !resource.permissions.import || !resource.permissions.create, onSelect: () => setImporting(true) },
            'separator' as const,
            deleted === 'only'
              ? { label: 'Back to the list', icon: 'list', onSelect: () => setDeleted(undefined) }
              : { label: 'Show deleted', icon: 'trash', disabled: !resource.permissions.delete, onSelect: () => setDeleted('only') },
          ]}
        />
        {actions}
      </div>

      {showFilters && (
        <div className="filters" role="group" aria-label="Filters">
          {filters.map((f, i) => {
            const meta = resource.fields.find((x) => x.name === f.field)
            const ops = meta?.operators ?? ['eq']
            const update = (patch: Partial<FilterClause>) => setFilters((all) => all.map((x, j) => (j === i ? { ...x, ...patch } : x)))
            return (
              <div className="filter-row" key={i}>
                <select className="select select-sm" aria-label={`Filter ${i + 1} field`} value={f.field} onChange={(e) => update({ field: e.target.value, op: 'eq', value: '' })}>
                  {filterable.map((x) => (
                    <option key={x.name} value={x.name}>
                      {fieldLabel(x)}
                    </option>
                  ))}
                </select>
                <select className="select select-sm" aria-label={`Filter ${i + 1} operator`} value={f.op} onChange={(e) => update({ op: e.target.value })}>
                  {ops.map((op) => (
                    <option key={op} value={op}>
                      {OPERATOR_LABELS[op] ?? op}
                    </option>
                  ))}
                </select>
                {meta && <FilterValueInput field={meta} op={f.op} value={f.value} label={`Filter ${i + 1} value`} onChange={(value) => update({ value })} />}
                <button type="button" className="icon-btn" aria-label={`Remove filter ${i + 1}`} onClick={() => setFilters((all) => all.filter((_, j) => j !== i))}>
                  <Icon name="x" size={16} />
                </button>
              </div>
            )
          })}
          <div className="row">
            <Button size="sm" icon="plus" onClick={() => setFilters((all) => [...all, { field: filterable[0]!.name, op: 'eq', value: '' }])}>
              Add filter
            </Button>
            {filters.length > 0 && (
              <Button size="sm" variant="ghost" onClick={() => setFilters([])}>
                Clear all
              </Button>
            )}
          </div>
        </div>
      )}

      {deleted === 'only' && (
        <div className="active-filters">
          <Badge tone="danger">Showing deleted {resource.title.toLowerCase()}</Badge>
          <button type="button" className="linkish small" onClick={() => setDeleted(undefined)}>
            Back to the list
          </button>
        </div>
      )}

      {error ? (
        <div className="card-body">
          <Alert kind="error" title={`Could not load ${resource.title.toLowerCase()}`}>
            {error}
          </Alert>
        </div>
      ) : !loading && rows.length === 0 ? (
        <EmptyState icon={deleted === 'only' ? 'trash' : 'inbox'} title={deleted === 'only' ? 'The trash is empty' : debouncedQ || activeFilterCount ? 'Nothing matches' : `No ${resource.title.toLowerCase()} yet`}>
          {emptyText && !debouncedQ && !activeFilterCount && <p>{emptyText}</p>}
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                {visible.map((f) => {
                  const dir = sortDirection(activeSort, f.name)
                  const sortable = resource.sorts.includes(f.name) && !fixed?.sort
                  return (
                    <th key={f.name} scope="col" aria-sort={dir !== 'none' ? dir : undefined} className={f.type === 'integer' || f.type === 'number' || f.type === 'decimal' ? 'num' : undefined}>
                      {sortable ? (
                        <button type="button" className="th-sort" onClick={() => setSort(nextSort(activeSort, f.name))}>
                          {fieldLabel(f)}
                          {dir !== 'none' && <Icon name={dir === 'ascending' ? 'arrow-up' : 'arrow-down'} size={12} />}
                        </button>
                      ) : (
                        fieldLabel(f)
                      )}
                    </th>
                  )
                })}
                {deleted === 'only' && (
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {rows.map((rec) => (
                <tr key={String(rec.id)} onClick={(e) => !(e.target as HTMLElement).closest('a, button, input') && deleted !== 'only' && navigate(href(rec))} style={{ cursor: deleted === 'only' ? undefined : 'pointer' }}>
                  {visible.map((f, i) => (
                    <td key={f.name} className={f.type === 'integer' || f.type === 'number' || f.type === 'decimal' ? 'num' : undefined}>
                      {i === 0 ? (
                        <Link to={href(rec)} className="row-link">
                          {f.name === resource.title_field ? recordTitle(resource, rec) : <FieldValue field={f} value={rec[f.name]} compact />}
                        </Link>
                      ) : (
                        <FieldValue field={f} value={rec[f.name]} compact />
                      )}
                    </td>
                  ))}
                  {deleted === 'only' && (
                    <td>
                      <Button size="sm" icon="rotate-ccw" onClick={() => void restore(rec)}>
                        Restore
                      </Button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {(rows.length > 0 || cursor) && (
        <div className="list-foot">
          <span aria-live="polite">
            {rows.length} {rows.length === 1 ? humanize(resource.entity).toLowerCase() : resource.title.toLowerCase()}
            {cursor ? ' shown' : ''}
          </span>
          {cursor && (
            <Button size="sm" onClick={() => void loadMore()} busy={loadingMore}>
              Load more
            </Button>
          )}
        </div>
      )}
      {naming && <SaveViewDialog initial={view ? humanize(view) : ''} onClose={() => setNaming(false)} onSave={saveView} />}
      {importing && <ImportDialog resource={resource} onClose={() => setImporting(false)} onImported={() => setTick((t) => t + 1)} />}
    </section>
  )
}

function SaveViewDialog({ initial, onSave, onClose }: { initial: string; onSave: (name: string) => void; onClose: () => void }) {
  const [name, setName] = useState(initial)
  return (
    <Dialog title="Save this view" description="Its search, filters, sort and columns, in this browser." onClose={onClose} size="sm">
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault()
          if (!name.trim()) return
          onSave(name.trim())
          onClose()
        }}
      >
        <FieldShell label="Name" htmlFor="view-name" required>
          <input id="view-name" className="input" value={name} onChange={(e) => setName(e.target.value)} />
        </FieldShell>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={!name.trim()}>
            Save view
          </Button>
        </div>
      </form>
    </Dialog>
  )
}
