// The one way the Hub talks to the API: JSON in and out, RFC 9457 problems as ApiError,
// the CSRF header on unsafe requests, and one transparent session refresh on a 401.
//
// Sessions: the browser session lives in HttpOnly cookies (POST /api/v1/auth/session);
// when a server predates that endpoint the Hub falls back to the OAuth bearer flow and
// keeps the tokens in localStorage ("bearer" mode). Everything else is the same.

export interface FieldError {
  pointer: string
  detail: string
}

export interface Problem {
  type?: string
  title?: string
  status: number
  detail?: string
  errors?: FieldError[]
  [extra: string]: unknown
}

export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem

  constructor(problem: Problem) {
    super(problem.detail || problem.title || `Request failed (${problem.status})`)
    this.name = 'ApiError'
    this.status = problem.status
    this.problem = problem
  }

  /** Field errors keyed by the first pointer segment ("/title" → "title"); "" for the whole body. */
  get fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const e of this.problem.errors ?? []) {
      const key = pointerField(e.pointer)
      const detail = e.detail.replace(/^Value error, /, '')
      out[key] = out[key] ? `${out[key]} ${detail}` : detail
    }
    return out
  }
}

/** "/title" → "title", "/checklist/0/text" → "checklist", "/custom/tier" → "custom.tier" (an org's custom field), "" or "/" → "". */
export function pointerField(pointer: string | undefined | null): string {
  if (!pointer) return ''
  const segs = pointer.replace(/^\//, '').split('/')
  const seg = segs[0] ?? ''
  if (seg === 'custom' && segs[1]) return `custom.${segs[1]}`
  return seg.replace(/~1/g, '/').replace(/~0/g, '~')
}

export type AuthMode = 'cookie' | 'bearer'

interface BearerTokens {
  access_token: string
  refresh_token: string
}

const BEARER_KEY = 'nexus.bearer'
const authLostListeners = new Set<() => void>()

function storage(): Storage | null {
  try {
    return window.localStorage
  } catch {
    return null
  }
}

function bearer(): BearerTokens | null {
  const raw = storage()?.getItem(BEARER_KEY)
  if (!raw) return null
  try {
    return JSON.parse(raw) as BearerTokens
  } catch {
    return null
  }
}

export function setBearer(tokens: BearerTokens | null): void {
  if (tokens) storage()?.setItem(BEARER_KEY, JSON.stringify(tokens))
  else storage()?.removeItem(BEARER_KEY)
}

/** The bearer access token in bearer mode (for the WebSocket's first message). */
export function bearerAccessToken(): string | undefined {
  return bearer()?.access_token
}

export function authMode(): AuthMode {
  return bearer() ? 'bearer' : 'cookie'
}

export function readCookie(name: string): string | undefined {
  const prefix = name + '='
  for (const part of document.cookie.split(';')) {
    const c = part.trim()
    if (c.startsWith(prefix)) return decodeURIComponent(c.slice(prefix.length))
  }
  return undefined
}

/** Called when the session is gone for good (refresh failed): the app shows the sign-in page. */
export function onAuthLost(fn: () => void): () => void {
  authLostListeners.add(fn)
  return () => authLostListeners.delete(fn)
}

export interface RequestOptions {
  method?: string
  json?: unknown
  body?: BodyInit
  contentType?: string
  headers?: Record<string, string>
  ifMatch?: string
  signal?: AbortSignal
  /** Do not try to refresh the session on 401 (sign-in and refresh calls). */
  noRefresh?: boolean
}

export interface ApiResponse<T> {
  status: number
  data: T
  etag?: string
  headers: Headers
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
let refreshing: Promise<boolean> | null = null

async function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const tokens = bearer()
      if (tokens) {
        const res = await fetch('/api/v1/auth/token', {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
        })
        if (!res.ok) return false
        setBearer((await res.json()) as BearerTokens)
        return true
      }
      if (!readCookie('nexus_csrf')) return false
      const res = await fetch('/api/v1/auth/session/refresh', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': readCookie('nexus_csrf') ?? '' },
      })
      return res.ok
    } catch {
      return false
    }
  })()
  try {
    return await refreshing
  } finally {
    refreshing = null
  }
}

async function toProblem(res: Response): Promise<Problem> {
  const type = res.headers.get('content-type') ?? ''
  if (type.includes('json')) {
    try {
      const body = (await res.json()) as Problem
      return { ...body, status: body.status ?? res.status }
    } catch {
      /* fall through */
    }
  }
  const text = await res.text().catch(() => '')
  return { status: res.status, title: res.statusText || 'Error', detail: text.slice(0, 300) || `Request failed (${res.status}).` }
}

export async function request<T = unknown>(path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
  const method = (opts.method ?? (opts.json !== undefined || opts.body !== undefined ? 'POST' : 'GET')).toUpperCase()
  const send = async (): Promise<Response> => {
    const headers: Record<string, string> = { Accept: 'application/json, application/problem+json', ...opts.headers }
    let body: BodyInit | undefined = opts.body
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(opts.json)
    } else if (opts.contentType) {
      headers['Content-Type'] = opts.contentType
    }
    if (opts.ifMatch) headers['If-Match'] = opts.ifMatch
    const tokens = bearer()
    if (tokens) headers.Authorization = `Bearer ${tokens.access_token}`
    else if (UNSAFE.has(method)) {
      const csrf = readCookie('nexus_csrf')
      if (csrf) headers['X-CSRF-Token'] = csrf
    }
    return fetch(path, { method, headers, body, credentials: 'same-origin', signal: opts.signal })
  }
  let res: Response
  try {
    res = await send()
    if (res.status === 401 && !opts.noRefresh) {
      if (await refreshSession()) res = await send()
      if (res.status === 401) authLostListeners.forEach((fn) => fn())
    }
  } catch (err) {
    if ((err as Error)?.name === 'AbortError') throw err
    throw new ApiError({ status: 0, title: 'Offline', detail: 'Cannot reach the NEXUS server. Check your connection.' })
  }
  if (!res.ok && res.status !== 304) throw new ApiError(await toProblem(res))
  let data: unknown = null
  if (res.status !== 204 && res.status !== 304) {
    const type = res.headers.get('content-type') ?? ''
    data = type.includes('json') ? await res.json() : await res.text()
  }
  return { status: res.status, data: data as T, etag: res.headers.get('etag') ?? undefined, headers: res.headers }
}

export const api = {
  get: async <T>(path: string, signal?: AbortSignal) => (await request<T>(path, { signal })).data,
  post: async <T>(path: string, json?: unknown) => (await request<T>(path, { method: 'POST', json: json ?? {} })).data,
  patch: async <T>(path: string, json: unknown, ifMatch?: string) =>
    (await request<T>(path, { method: 'PATCH', json, ifMatch })).data,
  del: async (path: string, ifMatch?: string) => {
    await request(path, { method: 'DELETE', ifMatch })
  },
}

/** Downloads a file from the API (export) with the session's credentials. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const headers: Record<string, string> = {}
  const tokens = bearer()
  if (tokens) headers.Authorization = `Bearer ${tokens.access_token}`
  let res = await fetch(path, { headers, credentials: 'same-origin' })
  if (res.status === 401 && (await refreshSession())) {
    const t = bearer()
    res = await fetch(path, { headers: t ? { Authorization: `Bearer ${t.access_token}` } : {}, credentials: 'same-origin' })
  }
  if (!res.ok) throw new ApiError(await toProblem(res))
  const blob = await res.blob()
  const disposition = res.headers.get('content-disposition') ?? ''
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallbackName
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

/** The ETag the API gives a record (`"<id>.<version>"`), for records that came in a list. */
export function etagOf(rec: { id?: unknown; version?: unknown }): string | undefined {
  return rec.id !== undefined && rec.version !== undefined ? `"${String(rec.id)}.${String(rec.version)}"` : undefined
}
