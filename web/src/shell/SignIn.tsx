import { useEffect, useState, type FormEvent } from 'react'
import { ApiError, api } from '../lib/api'
import { signIn, type Me } from '../lib/auth'
import { useDocumentTitle } from '../lib/hooks'
import { Alert, Button, FieldShell } from '../components/ui'
import { MfaRequired, signInWithPasskey, type MfaChallenge } from '../lib/mfa'
import { passkeyError, passkeysSupported } from '../lib/webauthn'
import { ForgotPassword, MfaStep, RecoveryCodes } from './SignInSteps'

/** An external identity provider an organisation offers ("Sign in with <name>"). */
export interface Provider {
  slug: string
  name: string
  protocol: 'saml' | 'oidc'
  login_url: string
}

/** Where to go after signing in, when a sign-in was asked for by a server flow (SAML single
 * sign-on to another application): a path on this site only, never another origin. */
export function continuation(search: string = window.location.search): string | null {
  const next = new URLSearchParams(search).get('next')
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return null
  return next
}

function useProviders(org: string): Provider[] {
  const [providers, setProviders] = useState<Provider[]>([])
  useEffect(() => {
    if (!/^[a-z0-9][a-z0-9-]{1,63}$/.test(org)) {
      setProviders([])
      return
    }
    let live = true
    api
      .get<{ items: Provider[] }>(`/api/v1/identity/federation/${org}/providers`)
      .then((p) => live && setProviders(p.items))
      .catch(() => live && setProviders([]))
    return () => {
      live = false
    }
  }, [org])
  return providers
}

export function SignIn({ onSignedIn, notice }: { onSignedIn: (me: Me) => void; notice?: string }) {
  useDocumentTitle('Sign in')
  const initialOrg = new URLSearchParams(window.location.search).get('org') ?? ''
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [org, setOrg] = useState(initialOrg)
  const [showOrg, setShowOrg] = useState(Boolean(initialOrg))
  const [idpOrg, setIdpOrg] = useState(initialOrg)
  const providers = useProviders(idpOrg)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [challenge, setChallenge] = useState<MfaChallenge | null>(null)
  const [forgot, setForgot] = useState(false)
  const [codes, setCodes] = useState<{ codes: string[]; me: Me } | null>(null)

  const passkey = async () => {
    setBusy(true)
    setError(null)
    try {
      const res = await signInWithPasskey()
      if (res.recovery_codes?.length) setCodes({ codes: res.recovery_codes, me: res.user })
      else onSignedIn(res.user)
    } catch (err) {
      setError(err instanceof ApiError ? err.message : passkeyError(err))
      setBusy(false)
    }
  }

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!email.trim() || !password) {
      setError('Enter your email and password.')
      return
    }
    setBusy(true)
    setError(null)
    try {
      const me = await signIn(email, password, showOrg ? org : undefined)
      const next = continuation()
      if (next) window.location.assign(next)
      else onSignedIn(me)
    } catch (err) {
      if (err instanceof MfaRequired) {
        setChallenge(err.challenge)
        setPassword('')
        setBusy(false)
        return
      }
      const msg = err instanceof ApiError ? err.message : 'Sign-in failed. Please try again.'
      if (err instanceof ApiError && /organisation/i.test(msg)) setShowOrg(true)
      setError(msg)
      setBusy(false)
    }
  }

  return (
    <main className="signin">
      <section className="signin-art" aria-hidden="true">
        <div className="brand-line">
          <img src="/icons/icon.svg" alt="" />
          NEXUS
        </div>
        <div>
          <h2>Your business, on your own server.</h2>
          <p>Tasks, documents, people and every app your team runs — one place, one sign-in.</p>
        </div>
        <p className="small" style={{ opacity: 0.6 }}>
          Self-hosted · Open source
        </p>
      </section>
      <section className="signin-form-wrap">
        {codes && <div className="signin-form"><RecoveryCodes codes={codes.codes} onDone={() => onSignedIn(codes.me)} /></div>}
        {!codes && challenge && (
          <MfaStep
            challenge={challenge}
            onSignedIn={onSignedIn}
            onCancel={() => {
              setChallenge(null)
              setError(null)
            }}
          />
        )}
        {!codes && !challenge && forgot && <ForgotPassword initialEmail={email} onBack={() => setForgot(false)} />}
        {!codes && !challenge && !forgot && (
        <form className="signin-form" onSubmit={submit} noValidate aria-labelledby="signin-title">
          <div className="stack-sm">
            <h1 id="signin-title">Sign in</h1>
            <p className="muted">Welcome back. Use the email your administrator set up for you.</p>
          </div>
          {notice && !error && <Alert kind="info">{notice}</Alert>}
          {error && <Alert kind="error">{error}</Alert>}
          <FieldShell label="Email" htmlFor="signin-email">
            <input
              id="signin-email"
              className="input"
              type="email"
              name="username"
              autoComplete="username"
              inputMode="email"
              required
              autoFocus
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
          </FieldShell>
          <FieldShell label="Password" htmlFor="signin-password">
            <input
              id="signin-password"
              className="input"
              type="password"
              name="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </FieldShell>
          {showOrg ? (
            <FieldShell label="Organisation" htmlFor="signin-org" hint="The short name (slug) of your organisation, e.g. acme.">
              <input
                id="signin-org"
                className="input"
                name="org"
                autoComplete="organization"
                value={org}
                onChange={(e) => setOrg(e.target.value)}
                onBlur={() => setIdpOrg(org.trim().toLowerCase())}
              />
            </FieldShell>
          ) : (
            <button type="button" className="linkish small" style={{ alignSelf: 'flex-start' }} onClick={() => setShowOrg(true)}>
              Sign in to a specific organisation
            </button>
          )}
          <Button type="submit" variant="primary" busy={busy}>
            Sign in
          </Button>
          {passkeysSupported() && (
            <Button icon="key" onClick={() => void passkey()} disabled={busy}>
              Sign in with a passkey
            </Button>
          )}
          <button type="button" className="linkish small" style={{ alignSelf: 'flex-start' }} onClick={() => setForgot(true)}>
            Forgot your password?
          </button>
          {providers.length > 0 && (
            <div className="stack-sm" aria-label="Other ways to sign in" role="group">
              <p className="muted small" style={{ textAlign: 'center' }}>
                or
              </p>
              {providers.map((p) => (
                <a
                  key={p.slug}
                  className="btn btn-secondary btn-md"
                  href={`${p.login_url}?next=${encodeURIComponent(continuation() ?? window.location.pathname)}`}
                >
                  <span>Sign in with {p.name}</span>
                </a>
              ))}
            </div>
          )}
        </form>
        )}
      </section>
    </main>
  )
}
