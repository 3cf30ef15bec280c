// The steps of signing in beyond the password: the second factor (code, recovery code or
// passkey), a forced authenticator enrolment, recovery codes shown once, and "forgot password".
import { useEffect, useState, type FormEvent } from 'react'
import { Alert, Button, FieldShell, Loading } from '../components/ui'
import { ApiError } from '../lib/api'
import type { Me } from '../lib/auth'
import { finishMfa, mfaPasskeyAssertion, requestPasswordReset, startEnrolmentAtSignIn, type MfaChallenge, type TotpEnrolment } from '../lib/mfa'
import { passkeyError, passkeysSupported } from '../lib/webauthn'

function message(err: unknown): string {
  return err instanceof ApiError ? err.message : (err as Error)?.message || 'That did not work. Please try again.'
}

export function RecoveryCodes({ codes, onDone, doneLabel = 'Continue' }: { codes: string[]; onDone: () => void; doneLabel?: string }) {
  const [copied, setCopied] = useState(false)
  return (
    <div className="stack">
      <Alert kind="warning" title="Save your recovery codes">
        Each code signs you in once if you lose your authenticator. They are shown only now: print them or keep them in a password manager.
      </Alert>
      <ol className="recovery-codes" aria-label="Recovery codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ol>
      <div className="row">
        <Button
          icon={copied ? 'check' : 'copy'}
          onClick={() => {
            void navigator.clipboard?.writeText(codes.join('\n')).then(() => setCopied(true), () => setCopied(false))
          }}
        >
          {copied ? 'Copied' : 'Copy all'}
        </Button>
        <span className="spacer" />
        <Button variant="primary" onClick={onDone}>
          {doneLabel}
        </Button>
      </div>
    </div>
  )
}

export function TotpSetup({ enrolment }: { enrolment: TotpEnrolment }) {
  const [showSecret, setShowSecret] = useState(false)
  return (
    <div className="totp-setup stack-sm">
      <img className="qr" src={enrolment.qr_svg} alt="QR code to scan with your authenticator app" width={200} height={200} />
      {showSecret ? (
        <p className="small">
          Or type this key: <code data-testid="totp-secret">{enrolment.secret}</code>
        </p>
      ) : (
        <button type="button" className="linkish small" onClick={() => setShowSecret(true)}>
          Can’t scan? Show the key
        </button>
      )}
    </div>
  )
}

/** The second step: code from the app, a recovery code, or a passkey; or enrolment when forced. */
export function MfaStep({ challenge, onSignedIn, onCancel }: { challenge: MfaChallenge; onSignedIn: (me: Me) => void; onCancel: () => void }) {
  const enrol = Boolean(challenge.mfa_enrollment_required)
  const [mode, setMode] = useState<'otp' | 'recovery'>('otp')
  const [code, setCode] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null)
  const [codes, setCodes] = useState<{ codes: string[]; me: Me } | null>(null)
  const canPasskey = challenge.methods.includes('webauthn') && passkeysSupported()

  useEffect(() => {
    if (!enrol) return
    startEnrolmentAtSignIn(challenge.mfa_token).then(setEnrolment, (e) => setError(message(e)))
  }, [enrol, challenge.mfa_token])

  const done = (res: { user: Me; recovery_codes?: string[] }) => {
    if (res.recovery_codes?.length) setCodes({ codes: res.recovery_codes, me: res.user })
    else onSignedIn(res.user)
  }

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const value = code.trim()
    if (!value) {
      setError(mode === 'otp' ? 'Enter the 6-digit code.' : 'Enter a recovery code.')
      return
    }
    setBusy(true)
    setError(null)
    try {
      done(await finishMfa(challenge.mfa_token, mode === 'otp' ? { otp: value.replace(/\s/g, '') } : { recovery_code: value }))
    } catch (err) {
      setError(message(err))
      setCode('')
      setBusy(false)
    }
  }

  const usePasskey = async () => {
    setBusy(true)
    setError(null)
    try {
      const credential = await mfaPasskeyAssertion(challenge.mfa_token)
      done(await finishMfa(challenge.mfa_token, { credential }))
    } catch (err) {
      setError(err instanceof ApiError ? err.message : passkeyError(err))
      setBusy(false)
    }
  }

  if (codes) return <RecoveryCodes codes={codes.codes} onDone={() => onSignedIn(codes.me)} />

  return (
    <form className="signin-form" onSubmit={submit} noValidate aria-labelledby="mfa-title">
      <div className="stack-sm">
        <h1 id="mfa-title">{enrol ? 'Set up two-step sign-in' : 'Two-step sign-in'}</h1>
        <p className="muted">
          {enrol
            ? 'Your organisation requires a second factor. Scan the code with an authenticator app, then enter the code it shows.'
            : mode === 'otp'
              ? 'Enter the code from your authenticator app.'
              : 'Enter one of the recovery codes you saved.'}
        </p>
      </div>
      {error && <Alert kind="error">{error}</Alert>}
      {enrol && (enrolment ? <TotpSetup enrolment={enrolment} /> : !error && <Loading label="Preparing…" />)}
      {mode === 'otp' ? (
        <FieldShell label="Authentication code" htmlFor="mfa-code">
          <input
            id="mfa-code"
            className="input mono"
            name="otp"
            autoComplete="one-time-code"
            inputMode="numeric"
            maxLength={8}
            autoFocus
            value={code}
            onChange={(e) => setCode(e.target.value)}
          />
        </FieldShell>
      ) : (
        <FieldShell label="Recovery code" htmlFor="mfa-recovery">
          <input id="mfa-recovery" className="input mono" name="recovery_code" autoComplete="off" autoFocus value={code} onChange={(e) => setCode(e.target.value)} />
        </FieldShell>
      )}
      <Button type="submit" variant="primary" busy={busy}>
        Verify
      </Button>
      {canPasskey && (
        <Button icon="key" onClick={() => void usePasskey()} disabled={busy}>
          Use a passkey
        </Button>
      )}
      <div className="row small">
        {!enrol && challenge.methods.includes('recovery_code') && (
          <button
            type="button"
            className="linkish"
            onClick={() => {
              setMode(mode === 'otp' ? 'recovery' : 'otp')
              setCode('')
              setError(null)
            }}
          >
            {mode === 'otp' ? 'Use a recovery code' : 'Use the authenticator app'}
          </button>
        )}
        <span className="spacer" />
        <button type="button" className="linkish" onClick={onCancel}>
          Start over
        </button>
      </div>
    </form>
  )
}

export function ForgotPassword({ initialEmail, onBack }: { initialEmail: string; onBack: () => void }) {
  const [email, setEmail] = useState(initialEmail)
  const [busy, setBusy] = useState(false)
  const [sent, setSent] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!email.trim()) {
      setError('Enter your email.')
      return
    }
    setBusy(true)
    setError(null)
    try {
      await requestPasswordReset(email)
      setSent(true)
    } catch (err) {
      setError(message(err))
    } finally {
      setBusy(false)
    }
  }
  return (
    <form className="signin-form" onSubmit={submit} noValidate aria-labelledby="forgot-title">
      <div className="stack-sm">
        <h1 id="forgot-title">Reset your password</h1>
        <p className="muted">We will mail you a link to choose a new password.</p>
      </div>
      {error && <Alert kind="error">{error}</Alert>}
      {sent ? (
        <Alert kind="success">If {email.trim()} has an account, a reset link is on its way. It works for 30 minutes.</Alert>
      ) : (
        <>
          <FieldShell label="Email" htmlFor="forgot-email">
            <input id="forgot-email" className="input" type="email" autoComplete="username" autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />
          </FieldShell>
          <Button type="submit" variant="primary" busy={busy}>
            Send the link
          </Button>
        </>
      )}
      <button type="button" className="linkish small" style={{ alignSelf: 'flex-start' }} onClick={onBack}>
        Back to sign in
      </button>
    </form>
  )
}
