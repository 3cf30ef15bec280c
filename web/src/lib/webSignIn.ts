// The web app signs in through NEXUS's own OpenID Connect provider, as its built-in public
// client `nexus-web`: once the person has signed in to the provider (the sign-in page), the app
// runs /oauth/authorize with PKCE S256 and a state, and trades the code at
// /api/v1/auth/session/code for its HttpOnly cookie session. The verifier and state live in
// sessionStorage (this tab only) and are used once.
import { ApiError, request } from './api'

export const WEB_CLIENT_ID = 'nexus-web'
export const CALLBACK_PATH = '/auth/callback'
const KEY = 'nexus.oauth.pending'

interface Pending {
  verifier: string
  state: string
  destination: string
}

function b64url(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function random(n: number): string {
  return b64url(crypto.getRandomValues(new Uint8Array(n)))
}

export async function s256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))
  return b64url(new Uint8Array(digest))
}

/** WebCrypto (for the S256 challenge) exists only in secure contexts: https or localhost. */
export function codeFlowAvailable(): boolean {
  return typeof crypto !== 'undefined' && Boolean(crypto.subtle) && typeof sessionStorage !== 'undefined'
}

/** A same-origin path to come back to after the callback (never another site). */
function safePath(path: string): string {
  return path.startsWith('/') && !path.startsWith('//') && !path.startsWith('/\\') && !path.startsWith(CALLBACK_PATH)
    ? path
    : '/'
}

export function redirectUri(): string {
  return window.location.origin + CALLBACK_PATH
}

/** Builds the authorization request and stores its secrets; the caller navigates to it. */
export async function authorizationUrl(destination: string): Promise<string> {
  const verifier = random(32)
  const state = random(16)
  const challenge = await s256(verifier)
  sessionStorage.setItem(KEY, JSON.stringify({ verifier, state, destination: safePath(destination) } satisfies Pending))
  const q = new URLSearchParams({
    client_id: WEB_CLIENT_ID,
    response_type: 'code',
    scope: 'openid profile email api',
    redirect_uri: redirectUri(),
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  })
  return `/oauth/authorize?${q}`
}

export async function beginWebSignIn(destination: string): Promise<void> {
  window.location.assign(await authorizationUrl(destination))
}

/** At /auth/callback: checks the state, trades the code for the cookie session and returns
 * where to go next. Throws an ApiError with a message for the person otherwise. */
// One exchange per callback even when the app boots twice (React StrictMode in development).
let inflight: { search: string; done: Promise<string> } | null = null

export function completeWebSignIn(search: string = window.location.search): Promise<string> {
  if (inflight?.search !== search) inflight = { search, done: exchange(search) }
  return inflight.done
}

async function exchange(search: string): Promise<string> {
  const raw = sessionStorage.getItem(KEY)
  sessionStorage.removeItem(KEY) // one use, whatever happens
  const q = new URLSearchParams(search)
  let pending: Pending | null = null
  try {
    pending = raw ? (JSON.parse(raw) as Pending) : null
  } catch {
    pending = null
  }
  const refuse = (detail: string) => new ApiError({ status: 400, detail })
  if (!pending || !pending.state || !pending.verifier) throw refuse('This sign-in was not started here; please sign in again.')
  if (q.get('state') !== pending.state) throw refuse('The sign-in answer does not match the request (state); please sign in again.')
  const error = q.get('error')
  if (error) throw refuse(q.get('error_description') || `Sign-in refused (${error}).`)
  const code = q.get('code')
  if (!code) throw refuse('The sign-in answer carries no code; please sign in again.')
  await request('/api/v1/auth/session/code', {
    method: 'POST',
    json: { code, code_verifier: pending.verifier, redirect_uri: redirectUri() },
    noRefresh: true,
  })
  return safePath(pending.destination)
}
