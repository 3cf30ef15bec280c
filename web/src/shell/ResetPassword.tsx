// The page a password reset mail links to: /reset-password?token=…
import { useState, type FormEvent } from 'react'
import { Alert, Button, FieldShell } from '../components/ui'
import { ApiError } from '../lib/api'
import { useDocumentTitle } from '../lib/hooks'
import { confirmPasswordReset } from '../lib/mfa'
import { navigate } from '../lib/router'

export function ResetPassword({ token, onDone }: { token: string; onDone: () => void }) {
  useDocumentTitle('Choose a new password')
  const [password, setPassword] = useState('')
  const [again, setAgain] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [fieldError, setFieldError] = useState<string | undefined>()
  const [done, setDone] = useState(false)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    setFieldError(undefined)
    if (password !== again) {
      setFieldError('The two passwords differ.')
      return
    }
    setBusy(true)
    try {
      await confirmPasswordReset(token, password)
      setDone(true)
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.password) setFieldError(err.fieldErrors.password)
      else setError(err instanceof ApiError ? err.message : 'That did not work. Please try again.')
    } finally {
      setBusy(false)
    }
  }

  const back = () => {
    navigate('/', { replace: true })
    onDone()
  }

  return (
    <main className="signin">
      <section className="signin-form-wrap" style={{ gridColumn: '1 / -1' }}>
        <form className="signin-form" onSubmit={submit} noValidate aria-labelledby="reset-title">
          <div className="stack-sm">
            <h1 id="reset-title">Choose a new password</h1>
            <p className="muted">Setting it signs you out everywhere; sign in again with the new one.</p>
          </div>
          {!token && <Alert>This link is incomplete. Copy the whole link from the mail, or ask for a new one.</Alert>}
          {error && <Alert>{error}</Alert>}
          {done ? (
            <>
              <Alert kind="success">Your password is set.</Alert>
              <Button variant="primary" onClick={back}>
                Sign in
              </Button>
            </>
          ) : (
            <>
              <FieldShell label="New password" htmlFor="reset-password" error={fieldError}>
                <input id="reset-password" className="input" type="password" autoComplete="new-password" autoFocus value={password} onChange={(e) => setPassword(e.target.value)} />
              </FieldShell>
              <FieldShell label="Repeat it" htmlFor="reset-again">
                <input id="reset-again" className="input" type="password" autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} />
              </FieldShell>
              <Button type="submit" variant="primary" busy={busy} disabled={!token}>
                Set password
              </Button>
              <button type="button" className="linkish small" style={{ alignSelf: 'flex-start' }} onClick={back}>
                Back to sign in
              </button>
            </>
          )}
        </form>
      </section>
    </main>
  )
}
