import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { authorizationUrl, completeWebSignIn, s256 } from './webSignIn'

describe('web app sign-in through the provider', () => {
  beforeEach(() => sessionStorage.clear())
  afterEach(() => vi.restoreAllMocks())

  it('computes the RFC 7636 S256 challenge', async () => {
    // RFC 7636 appendix B
    expect(await s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
  })

  it('builds a PKCE S256 request and refuses an answer with another state', async () => {
    const url = new URL(await authorizationUrl('/r/tasks/tasks?x=1'), 'http://localhost')
    expect(url.pathname).toBe('/oauth/authorize')
    const q = url.searchParams
    expect(q.get('client_id')).toBe('nexus-web')
    expect(q.get('code_challenge_method')).toBe('S256')
    expect(q.get('redirect_uri')).toBe(`${window.location.origin}/auth/callback`)
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const fetchSpy = vi.spyOn(globalThis, 'fetch')
    await expect(completeWebSignIn('?code=abc&state=forged')).rejects.toThrow(/state/)
    expect(fetchSpy).not.toHaveBeenCalled()
    // the pending request was used up: the right state afterwards is refused too
    await expect(completeWebSignIn(`?code=abc&state=${q.get('state')}`)).rejects.toThrow(/not started here/)
  })

  it('trades the code with the verifier and goes back where the person was', async () => {
    const url = new URL(await authorizationUrl('/r/tasks/tasks?x=1'), 'http://localhost')
    const state = url.searchParams.get('state')
    const fetchSpy = vi.spyOn(globalThis, 'fetch').mockResolvedValue(
      new Response('{"user":{}}', { status: 200, headers: { 'Content-Type': 'application/json' } }),
    )
    await expect(completeWebSignIn(`?code=the-code&state=${state}`)).resolves.toBe('/r/tasks/tasks?x=1')
    const [path, init] = fetchSpy.mock.calls[0]
    expect(String(path)).toBe('/api/v1/auth/session/code')
    const body = JSON.parse(String((init as RequestInit).body))
    expect(body.code).toBe('the-code')
    expect(await s256(body.code_verifier)).toBe(url.searchParams.get('code_challenge'))
  })
})
