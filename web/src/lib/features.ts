// Endpoints the server may not have yet (universal search, notifications). Each is probed
// once; a 404 marks it unavailable and the UI degrades (search falls back to asking each
// resource's own full-text list; the bell says notifications are not available).
import { ApiError, api } from './api'
import type { Meta, ResourceMeta } from './meta'
import { appsInOrder, recordTitle } from './meta'

export interface SearchHit {
  app: string
  resource: string
  id: string
  title: string
  /** Escaped HTML with matches in <mark> (from /api/v1/search); render with <Marked>. */
  title_highlight?: string
  snippet?: string
  href: string
}

export interface SearchGroup {
  app: string
  title: string
  hits: SearchHit[]
}

const available: Record<string, boolean | undefined> = {}

export function recordHref(app: string, resource: string, id: string): string {
  if (app === 'tasks' && resource === 'tasks') return `/tasks/t/${id}`
  if (app === 'notes' && resource === 'notes') return `/notes/n/${id}`
  if (app === 'crm' && (resource === 'deals' || resource === 'contacts' || resource === 'companies')) return `/crm/${resource}/${id}`
  return `/r/${app}/${resource}/${id}`
}

function group(meta: Meta | null, hits: SearchHit[]): SearchGroup[] {
  const titles = new Map(appsInOrder(meta).map((a) => [a.name, a.title]))
  const order = [...titles.keys()]
  const groups = new Map<string, SearchHit[]>()
  for (const h of hits) groups.set(h.app, [...(groups.get(h.app) ?? []), h])
  return [...groups.entries()]
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
    .map(([app, list]) => ({ app, title: titles.get(app) ?? app, hits: list }))
}

async function fanOut(meta: Meta | null, q: string, signal?: AbortSignal): Promise<SearchHit[]> {
  const targets: ResourceMeta[] = appsInOrder(meta)
    .flatMap((a) => a.resources)
    .filter((r) => r.search.length > 0 && r.permissions.read)
    .slice(0, 12)
  const results = await Promise.allSettled(
    targets.map(async (r) => {
      const page = await api.get<{ items: Record<string, unknown>[] }>(
        `${r.path}?${new URLSearchParams({ q, limit: '5' })}`,
        signal,
      )
      return page.items.map((rec) => ({
        app: r.app,
        resource: r.name,
        id: String(rec.id),
        title: recordTitle(r, rec),
        href: recordHref(r.app, r.name, String(rec.id)),
      }))
    }),
  )
  return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []))
}

/**
 * Escaped HTML with <mark> highlights (what /api/v1/search returns) → text runs, so it can be
 * drawn as React elements: no innerHTML, nothing but the highlight survives.
 */
export function markedRuns(html: string): { text: string; mark: boolean }[] {
  const unescape = (s: string) =>
    s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, e: string) => {
      const k = e.toLowerCase()
      if (k === 'lt') return '<'
      if (k === 'gt') return '>'
      if (k === 'amp') return '&'
      if (k === 'quot') return '"'
      if (k === 'apos') return "'"
      const code = k.startsWith('#x') ? parseInt(k.slice(2), 16) : parseInt(k.slice(1), 10)
      return Number.isFinite(code) ? String.fromCodePoint(code) : ''
    })
  const runs: { text: string; mark: boolean }[] = []
  let mark = false
  for (const part of html.split(/(<\/?mark>)/i)) {
    if (/^<mark>$/i.test(part)) mark = true
    else if (/^<\/mark>$/i.test(part)) mark = false
    else {
      const text = unescape(part.replace(/<[^>]*>/g, ''))
      if (text) runs.push({ text, mark })
    }
  }
  return runs
}

/** Universal search, grouped by app in catalog order. */
export async function search(meta: Meta | null, q: string, signal?: AbortSignal): Promise<SearchGroup[]> {
  const query = q.trim()
  if (!query) return []
  if (available.search !== false) {
    try {
      const res = await api.get<{ items: Omit<SearchHit, 'href'>[] }>(
        `/api/v1/search?${new URLSearchParams({ q: query, limit: '20' })}`,
        signal,
      )
      available.search = true
      return group(meta, res.items.map((h) => ({ ...h, href: recordHref(h.app, h.resource, h.id) })))
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 405)) throw err
      available.search = false
    }
  }
  return group(meta, await fanOut(meta, query, signal))
}

export interface Notification {
  id: string
  type: string
  title: string
  body?: string
  link?: string | null
  created_at: string
  read_at: string | null
}

export type NotificationFeed =
  | { status: 'unavailable' }
  | { status: 'ready'; items: Notification[]; unread: number }

/** The bell's list: GET /api/v1/notifications ({items, next_cursor, unread_count}). */
export async function loadNotifications(): Promise<NotificationFeed> {
  if (available.notifications === false) return { status: 'unavailable' }
  try {
    const res = await api.get<{ items: Notification[]; unread_count?: number }>('/api/v1/notifications?limit=20')
    available.notifications = true
    return { status: 'ready', items: res.items, unread: res.unread_count ?? res.items.filter((n) => !n.read_at).length }
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) {
      available.notifications = false
      return { status: 'unavailable' }
    }
    throw err
  }
}

export async function markRead(id: string | 'all'): Promise<void> {
  await api.post(id === 'all' ? '/api/v1/notifications/read-all' : `/api/v1/notifications/${encodeURIComponent(id)}/read`)
}

/**
 * Live notifications over the WebSocket /api/v1/ws (subscribe to the "notifications" topic).
 * The session cookie authenticates it; in bearer mode the token goes in the first message.
 * Reconnects with backoff; returns a function that closes it.
 */
export function connectNotifications(onNotification: (n: Notification) => void, accessToken?: () => string | undefined): () => void {
  let ws: WebSocket | null = null
  let closed = false
  let delay = 1000
  let timer: ReturnType<typeof setTimeout> | undefined
  const open = () => {
    if (closed || typeof WebSocket === 'undefined') return
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:'
    ws = new WebSocket(`${proto}//${window.location.host}/api/v1/ws`)
    ws.onopen = () => {
      const token = accessToken?.()
      if (token) ws?.send(JSON.stringify({ type: 'auth', token }))
    }
    ws.onmessage = (e) => {
      let msg: { type?: string; notification?: Notification }
      try {
        msg = JSON.parse(String(e.data))
      } catch {
        return
      }
      if (msg.type === 'ready') {
        delay = 1000
        ws?.send(JSON.stringify({ type: 'subscribe', topics: ['notifications'] }))
      } else if (msg.type === 'notification' && msg.notification) onNotification(msg.notification)
    }
    ws.onclose = (e) => {
      if (closed || e.code === 4401) return
      timer = setTimeout(open, delay)
      delay = Math.min(delay * 2, 30_000)
    }
  }
  open()
  return () => {
    closed = true
    clearTimeout(timer)
    ws?.close()
  }
}

/** For tests. */
export function resetFeatures(): void {
  for (const k of Object.keys(available)) delete available[k]
}
