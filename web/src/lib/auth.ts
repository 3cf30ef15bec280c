import { ApiError, authMode, request, setBearer } from './api'
import { MfaRequired, type MfaChallenge } from './mfa'

export interface Me {
  id: string
  email: string
  name: string
  status?: string | null
  timezone?: string
  last_login_at?: string | null
  org: { id: string; slug: string; name: string } | null
  roles: string[]
  permissions: string[]
  auth?: { kind: string; session_id: string | null; api_key_id: string | null }
}

/** The signed-in user, or null when there is no session (after one refresh attempt). */
export async function loadMe(): Promise<Me | null> {
  try {
    return (await request<Me>('/api/v1/identity/me')).data
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return null
    throw err
  }
}

/**
 * Signs in with the browser-session endpoint (cookies); on a server without it (404/405)
 * falls back to the OAuth password grant and keeps the tokens for this browser.
 */
export async function signIn(email: string, password: string, org?: string): Promise<Me> {
  const body: Record<string, string> = { username: email.trim(), password }
  if (org?.trim()) body.org = org.trim()
  setBearer(null)
  try {
    const res = await request<{ user?: Me } & Partial<Me>>('/api/v1/auth/session', {
      method: 'POST',
      json: body,
      noRefresh: true,
    })
    const pending = res.data as unknown as MfaChallenge | null
    if (pending?.mfa_token) throw new MfaRequired(pending)
    const user = res.data?.user ?? (res.data as Me | null)
    if (user && user.id) return user
    const me = await loadMe()
    if (!me) throw new ApiError({ status: 401, detail: 'Signed in, but the session was not kept. Are cookies enabled?' })
    return me
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 405)) throw err
  }
  const res = await request<{ access_token: string; refresh_token: string }>('/api/v1/auth/token', {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', ...body }),
    contentType: 'application/x-www-form-urlencoded',
    noRefresh: true,
  })
  setBearer(res.data)
  const me = await loadMe()
  if (!me) throw new ApiError({ status: 401, detail: 'Signed in, but the session could not be read.' })
  return me
}

export async function signOut(): Promise<void> {
  try {
    if (authMode() === 'bearer') await request('/api/v1/auth/logout', { method: 'POST', noRefresh: true })
    else await request('/api/v1/auth/session', { method: 'DELETE', noRefresh: true })
  } catch {
    /* signing out of a session that is already gone is fine */
  } finally {
    setBearer(null)
  }
}

/** Whether a grant names `perm` without app wildcards (privileged areas such as the audit trail). */
export function hasExplicitPermission(me: Pick<Me, 'permissions'> | null, perm: string): boolean {
  if (!me) return false
  const [app, ...rest] = perm.split('.')
  return me.permissions.some((p) => {
    if (p === '*') return true
    const [a, ...r] = p.split('.')
    return a === app && r.length === rest.length && r.every((seg, i) => seg === '*' || seg === rest[i])
  })
}

export function hasPermission(me: Pick<Me, 'permissions'> | null, perm: string): boolean {
  if (!me) return false
  const want = perm.split('.')
  return me.permissions.some((p) => {
    if (p === '*') return true
    const have = p.split('.')
    return have.length === want.length && have.every((seg, i) => seg === '*' || seg === want[i])
  })
}
