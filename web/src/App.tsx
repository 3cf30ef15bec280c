import { useCallback, useEffect, useMemo, useState } from 'react'
import { ApiError, api, authMode, onAuthLost } from './lib/api'
import { loadMe, signOut as endSession, type Me } from './lib/auth'
import { SessionContext, type Session } from './lib/context'
import { followOAuthReturn } from './lib/returnTo'
import { CALLBACK_PATH, beginWebSignIn, codeFlowAvailable, completeWebSignIn } from './lib/webSignIn'
import type { Meta } from './lib/meta'
import { Button, Loading, ToastProvider } from './components/ui'
import { Icon } from './components/Icon'
import { SignIn, continuation } from './shell/SignIn'
import { ResetPassword } from './shell/ResetPassword'
import { useLocation } from './lib/router'
import { Shell } from './shell/Shell'

type State =
  | { status: 'loading' }
  | { status: 'anon'; notice?: string }
  | { status: 'offline'; message: string }
  | { status: 'ready'; me: Me; meta: Meta }

async function loadSession(): Promise<State> {
  const me = await loadMe()
  if (!me) return { status: 'anon' }
  if (followOAuthReturn()) return { status: 'loading' } // signed in: back to the OpenID Connect request
  const meta = await api.get<Meta>('/api/v1/meta')
  return { status: 'ready', me, meta }
}

export function App() {
  const [state, setState] = useState<State>({ status: 'loading' })
  const location = useLocation()

  const boot = useCallback(async () => {
    if (window.location.pathname === CALLBACK_PATH) {
      // Back from the provider with the web app's authorization code: trade it for the session.
      try {
        window.history.replaceState(null, '', await completeWebSignIn())
      } catch (err) {
        await endSession() // the provider sign-in this answer belonged to is not kept either
        window.history.replaceState(null, '', '/')
        setState({ status: 'anon', notice: err instanceof ApiError ? err.message : 'Sign-in failed; please sign in again.' })
        return
      }
    }
    try {
      const next = await loadSession()
      // Already signed in when a server flow (SAML single sign-on) sent us to the sign-in page: go on.
      const onward = next.status === 'ready' && window.location.pathname === '/signin' ? continuation() : null
      if (onward) {
        window.location.assign(onward)
        return
      }
      setState(next)
    } catch (err) {
      const message = err instanceof ApiError ? err.message : 'Something went wrong while starting.'
      setState({ status: 'offline', message })
    }
  }, [])

  useEffect(() => {
    void boot()
    return onAuthLost(() =>
      setState((s) => (s.status === 'ready' ? { status: 'anon', notice: 'Your session has ended. Please sign in again.' } : s)),
    )
  }, [boot])

  // Signed in to the provider (password, MFA, passkey): the web app now gets its own session
  // through the authorization code flow, then comes back to where the person was.
  const signedIn = useCallback(async () => {
    if (authMode() === 'bearer' || !codeFlowAvailable()) return boot()
    const here = window.location.pathname + window.location.search + window.location.hash
    await beginWebSignIn(here)
  }, [boot])

  const reloadMeta = useCallback(async () => {
    const meta = await api.get<Meta>('/api/v1/meta')
    setState((s) => (s.status === 'ready' ? { ...s, meta } : s))
  }, [])

  const signOut = useCallback(async () => {
    await endSession()
    setState({ status: 'anon', notice: 'You are signed out.' })
    window.history.replaceState(null, '', '/')
  }, [])

  const session: Session | null = useMemo(
    () => (state.status === 'ready' ? { me: state.me, meta: state.meta, reloadMeta, signOut } : null),
    [state, reloadMeta, signOut],
  )

  return (
    <ToastProvider>
      {state.status === 'loading' && (
        <div className="signin-form-wrap" style={{ minHeight: '100vh' }}>
          <Loading label="Starting NEXUS…" />
        </div>
      )}
      {state.status === 'offline' && (
        <div className="signin-form-wrap" style={{ minHeight: '100vh' }}>
          <div className="empty">
            <div className="empty-icon">
              <Icon name="wifi-off" size={28} />
            </div>
            <p className="empty-title">NEXUS is out of reach</p>
            <p className="empty-body">{state.message}</p>
            <Button variant="primary" icon="refresh" onClick={() => void boot()}>
              Try again
            </Button>
          </div>
        </div>
      )}
      {location.path === '/reset-password' && state.status !== 'loading' && state.status !== 'offline' ? (
        // A mailed reset link works whether or not this browser is signed in.
        <ResetPassword token={location.search.get('token') ?? ''} onDone={() => void boot()} />
      ) : (
        <>
      {state.status === 'anon' && <SignIn notice={state.notice} onSignedIn={() => void signedIn()} />}
      {session && (
        <SessionContext.Provider value={session}>
          <Shell />
        </SessionContext.Provider>
      )}
        </>
      )}
    </ToastProvider>
  )
}
