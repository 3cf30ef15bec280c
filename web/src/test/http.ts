// A fake fetch for component tests: routes by method and path, records every call.
import { vi } from 'vitest'

export interface Call {
  method: string
  url: string
  path: string
  query: URLSearchParams
  headers: Record<string, string>
  body: unknown
}

type Handler = (call: Call) => { status?: number; body?: unknown; headers?: Record<string, string> } | undefined

export function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return { status, body, headers }
}

export function problem(status: number, detail: string, errors?: { pointer: string; detail: string }[]) {
  return { status, body: { type: 'about:blank', title: 'Error', status, detail, errors }, headers: { 'content-type': 'application/problem+json' } }
}

export function mockFetch(handler: Handler) {
  const calls: Call[] = []
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input)
    const u = new URL(url, 'http://localhost')
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]))
    let body: unknown = init.body
    if (typeof body === 'string' && headers['content-type'] === 'application/json') body = JSON.parse(body)
    const call: Call = { method: (init.method ?? 'GET').toUpperCase(), url, path: u.pathname, query: u.searchParams, headers, body }
    calls.push(call)
    const res = handler(call) ?? { status: 404, body: { status: 404, title: 'Not found', detail: `No such endpoint: ${u.pathname}` }, headers: { 'content-type': 'application/problem+json' } }
    const status = res.status ?? 200
    return new Response(status === 204 ? null : JSON.stringify(res.body ?? null), {
      status,
      headers: { 'content-type': 'application/json', ...(res.headers ?? {}) },
    })
  })
  vi.stubGlobal('fetch', fn)
  return calls
}
