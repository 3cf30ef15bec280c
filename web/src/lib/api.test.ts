import { beforeEach, describe, expect, it } from 'vitest'
import { ApiError, api, onAuthLost, pointerField, request, setBearer } from './api'
import { json, mockFetch, problem } from '../test/http'

beforeEach(() => setBearer(null))

describe('request', () => {
  it('sends the CSRF cookie as a header on unsafe requests only', async () => {
    document.cookie = 'nexus_csrf=tok123; path=/'
    const calls = mockFetch(() => json(200, { ok: true }))
    await api.get('/api/v1/x')
    await api.post('/api/v1/x', { a: 1 })
    expect(calls[0]!.headers['x-csrf-token']).toBeUndefined()
    expect(calls[1]!.headers['x-csrf-token']).toBe('tok123')
    expect(calls[1]!.body).toEqual({ a: 1 })
  })

  it('refreshes the cookie session once on a 401 and retries', async () => {
    document.cookie = 'nexus_csrf=tok; path=/'
    let first = true
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/auth/session/refresh') return json(200, {})
      if (first) {
        first = false
        return problem(401, 'expired')
      }
      return json(200, { items: [] })
    })
    expect(await api.get('/api/v1/tasks/tasks')).toEqual({ items: [] })
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET /api/v1/tasks/tasks',
      'POST /api/v1/auth/session/refresh',
      'GET /api/v1/tasks/tasks',
    ])
    expect(calls[1]!.headers['x-csrf-token']).toBe('tok')
  })

  it('reports a lost session when the refresh fails', async () => {
    mockFetch(() => problem(401, 'no session'))
    let lost = 0
    const off = onAuthLost(() => lost++)
    await expect(api.get('/api/v1/meta')).rejects.toBeInstanceOf(ApiError)
    off()
    expect(lost).toBe(1)
  })

  it('uses the bearer token and refresh grant in bearer mode', async () => {
    setBearer({ access_token: 'A1', refresh_token: 'R1' })
    let n = 0
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/auth/token') return json(200, { access_token: 'A2', refresh_token: 'R2' })
      return n++ === 0 ? problem(401, 'expired') : json(200, { ok: 1 })
    })
    await api.get('/api/v1/meta')
    expect(calls[0]!.headers.authorization).toBe('Bearer A1')
    expect(String(calls[1]!.body)).toContain('refresh_token=R1')
    expect(calls[2]!.headers.authorization).toBe('Bearer A2')
  })

  it('turns problem+json into ApiError with field errors by pointer', async () => {
    mockFetch(() => problem(422, 'The request body is invalid.', [{ pointer: '/title', detail: 'too long' }, { pointer: '/checklist/0/text', detail: 'empty' }]))
    const err = (await request('/api/v1/tasks/tasks', { method: 'POST', json: {} }).catch((e) => e)) as ApiError
    expect(err.status).toBe(422)
    expect(err.message).toBe('The request body is invalid.')
    expect(err.fieldErrors).toEqual({ title: 'too long', checklist: 'empty' })
  })

  it('maps JSON pointers to field names', () => {
    expect(pointerField('/a~1b/0')).toBe('a/b')
    expect(pointerField('')).toBe('')
  })
})
