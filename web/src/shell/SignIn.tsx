import { useState, type FormEvent } from 'react'
import { ApiError } from '../lib/api'
import { signIn, type Me } from '../lib/auth'
import { useDocumentTitle } from '../lib/hooks'
import { Alert, Button, FieldShell } from '../components/ui'

export function SignIn({ onSignedIn, notice }: { onSignedIn: (me: Me) => void; notice?: string }) {
  useDocumentTitle('Sign in')
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [org, setOrg] = useState('')
  const [showOrg, setShowOrg] = useState(false)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!email.trim() || !password) {
      setError('Enter your email and password.')
      return
    }
    setBusy(true)
    setError(null)
    try {
      onSignedIn(await signIn(email, password, showOrg ? org : undefined))
    } catch (err) {
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
        </form>
      </section>
    </main>
  )
}
