// Account security: second factors (authenticator app with QR code, passkeys, recovery codes),
// password, active sessions and devices, sign-in history. Sensitive actions ask to confirm it
// is you (step-up) when the sign-in is not recent, then carry on.
import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react'
import { Alert, Badge, Button, ConfirmDialog, Dialog, EmptyState, FieldShell, Loading, useToast } from '../components/ui'
import { ApiError, api } from '../lib/api'
import { formatDateTime, timeAgo } from '../lib/format'
import { useDocumentTitle } from '../lib/hooks'
import { isStepUp, stepUp, type TotpEnrolment } from '../lib/mfa'
import { createPasskey, passkeyError, passkeysSupported } from '../lib/webauthn'
import { RecoveryCodes, TotpSetup } from './SignInSteps'

interface Factor {
  id: string
  kind: 'totp' | 'webauthn'
  name: string
  created_at: string
  last_used_at: string | null
}

export interface Security {
  mfa_enabled: boolean
  factors: Factor[]
  recovery_codes_left: number
  policy: { require_mfa: boolean; password_min_length: number; password_history: number; step_up_max_age: number }
  auth_time: number | null
}

export interface SessionRow {
  id: string
  created_at: string
  last_seen_at: string | null
  client_addr: string | null
  user_agent: string | null
  amr: string[]
  current: boolean
}

export interface SignInRow {
  id: string
  at: string
  method: string
  success: boolean
  reason: string | null
  client_addr: string | null
  user_agent: string | null
  user_id?: string | null
}

const ACCOUNT = '/api/v1/identity/account'

function errorText(err: unknown): string {
  return err instanceof ApiError ? err.message : passkeyError(err)
}

/** "Chrome on Linux" from a user agent, good enough to recognise one's own devices. */
export function deviceName(ua: string | null): string {
  if (!ua) return 'Unknown device'
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : ua.split(/[\s/]/)[0]
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : ''
  return os ? `${browser} on ${os}` : String(browser)
}

export const METHOD_LABELS: Record<string, string> = {
  password: 'Password',
  totp: 'Authenticator app',
  recovery_code: 'Recovery code',
  passkey: 'Passkey',
  password_reset: 'Password reset',
}

export function methodLabel(m: string): string {
  if (m.startsWith('step_up:')) return `Confirmed (${METHOD_LABELS[m.slice(8)] ?? m.slice(8)})`
  return METHOD_LABELS[m] ?? m
}

export function StepUpDialog({ security, onDone, onClose }: { security: Security; onDone: () => void; onClose: () => void }) {
  const hasTotp = security.factors.some((f) => f.kind === 'totp')
  const hasPasskey = security.factors.some((f) => f.kind === 'webauthn')
  const [value, setValue] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await stepUp(security.mfa_enabled ? (hasTotp ? { otp: value.trim() } : { recovery_code: value.trim() }) : { password: value })
      onDone()
    } catch (err) {
      setError(errorText(err))
      setBusy(false)
    }
  }
  const passkey = async () => {
    setBusy(true)
    setError(null)
    try {
      await stepUp('passkey')
      onDone()
    } catch (err) {
      setError(errorText(err))
      setBusy(false)
    }
  }
  const label = !security.mfa_enabled ? 'Password' : hasTotp ? 'Authentication code' : 'Recovery code'
  return (
    <Dialog title="Confirm it’s you" description="This is a sensitive change, and your sign-in is not recent." onClose={onClose} size="sm">
      <form className="stack" onSubmit={submit} noValidate>
        {error && <Alert>{error}</Alert>}
        {(!security.mfa_enabled || hasTotp || !hasPasskey) && (
          <FieldShell label={label} htmlFor="stepup-value">
            <input
              id="stepup-value"
              className="input"
              type={security.mfa_enabled ? 'text' : 'password'}
              autoComplete={security.mfa_enabled ? 'one-time-code' : 'current-password'}
              inputMode={hasTotp ? 'numeric' : undefined}
              value={value}
              onChange={(e) => setValue(e.target.value)}
            />
          </FieldShell>
        )}
        <div className="form-actions">
          {hasPasskey && passkeysSupported() && (
            <Button icon="key" onClick={() => void passkey()} disabled={busy}>
              Use a passkey
            </Button>
          )}
          <span className="spacer" />
          <Button onClick={onClose}>Cancel</Button>
          {(!security.mfa_enabled || hasTotp || !hasPasskey) && (
            <Button type="submit" variant="primary" busy={busy}>
              Confirm
            </Button>
          )}
        </div>
      </form>
    </Dialog>
  )
}

function TotpDialog({ enrolment, onClose, onDone }: { enrolment: TotpEnrolment; onClose: () => void; onDone: () => void }) {
  const [code, setCode] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [codes, setCodes] = useState<string[] | null>(null)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const res = await api.post<{ recovery_codes?: string[] }>(`${ACCOUNT}/totp/${enrolment.factor_id}/confirm`, { code: code.trim() })
      if (res.recovery_codes?.length) setCodes(res.recovery_codes)
      else onDone()
    } catch (err) {
      setError(errorText(err))
      setBusy(false)
    }
  }
  return (
    <Dialog title={codes ? 'Recovery codes' : 'Add an authenticator app'} onClose={codes ? onDone : onClose}>
      {codes ? (
        <RecoveryCodes codes={codes} onDone={onDone} doneLabel="I have saved them" />
      ) : (
        <form className="stack" onSubmit={submit} noValidate>
          <p className="muted">Scan the code with an app such as Aegis, Google Authenticator or 1Password, then enter the 6-digit code it shows.</p>
          <TotpSetup enrolment={enrolment} />
          {error && <Alert>{error}</Alert>}
          <FieldShell label="Code from the app" htmlFor="totp-code">
            <input id="totp-code" className="input mono" inputMode="numeric" autoComplete="one-time-code" maxLength={8} value={code} onChange={(e) => setCode(e.target.value)} />
          </FieldShell>
          <div className="form-actions">
            <Button onClick={onClose}>Cancel</Button>
            <Button type="submit" variant="primary" busy={busy}>
              Turn on
            </Button>
          </div>
        </form>
      )}
    </Dialog>
  )
}

function PasswordForm({ minLength, sensitive }: { minLength: number; sensitive: (fn: () => Promise<void>) => Promise<void> }) {
  const toast = useToast()
  const [current, setCurrent] = useState('')
  const [next, setNext] = useState('')
  const [again, setAgain] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (next !== again) {
      setErrors({ again: 'The two passwords differ.' })
      return
    }
    setBusy(true)
    setErrors({})
    try {
      await sensitive(async () => {
        await api.post(`${ACCOUNT}/password`, { current_password: current, new_password: next })
      })
      setCurrent('')
      setNext('')
      setAgain('')
      toast('Password changed; your other sessions were signed out.')
    } catch (err) {
      if (err instanceof ApiError && Object.keys(err.fieldErrors).length) setErrors(err.fieldErrors)
      else setErrors({ '': errorText(err) })
    } finally {
      setBusy(false)
    }
  }
  return (
    <form className="stack" onSubmit={submit} noValidate style={{ maxWidth: 420 }}>
      {errors[''] && <Alert>{errors['']}</Alert>}
      <FieldShell label="Current password" htmlFor="pw-current" error={errors.current_password}>
        <input id="pw-current" className="input" type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />
      </FieldShell>
      <FieldShell label="New password" htmlFor="pw-new" error={errors.new_password} hint={`At least ${minLength} characters, not a common one.`}>
        <input id="pw-new" className="input" type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} />
      </FieldShell>
      <FieldShell label="Repeat the new password" htmlFor="pw-again" error={errors.again}>
        <input id="pw-again" className="input" type="password" autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} />
      </FieldShell>
      <div>
        <Button type="submit" variant="primary" busy={busy} disabled={!current || !next}>
          Change password
        </Button>
      </div>
    </form>
  )
}

export function SessionsTable({ rows, onRevoke }: { rows: SessionRow[]; onRevoke: (s: SessionRow) => void }) {
  if (!rows.length) return <p className="muted">No active sessions.</p>
  return (
    <div className="table-wrap">
    <table className="table" aria-label="Active sessions">
      <thead>
        <tr>
          <th>Device</th>
          <th>Address</th>
          <th>Signed in</th>
          <th>Last seen</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {rows.map((s) => (
          <tr key={s.id}>
            <td title={s.user_agent ?? ''}>
              {deviceName(s.user_agent)} {s.current && <Badge tone="success">This device</Badge>}
              {s.amr.includes('mfa') && <Badge tone="info" title="Signed in with two factors">2FA</Badge>}
            </td>
            <td>{s.client_addr ?? '—'}</td>
            <td title={formatDateTime(s.created_at)}>{timeAgo(s.created_at)}</td>
            <td title={formatDateTime(s.last_seen_at)}>{s.last_seen_at ? timeAgo(s.last_seen_at) : '—'}</td>
            <td style={{ textAlign: 'right' }}>
              {!s.current && (
                <Button size="sm" icon="log-out" onClick={() => onRevoke(s)}>
                  Sign out
                </Button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    </div>
  )
}

export function HistoryTable({ url, userName }: { url: string; userName?: (id: string | null | undefined) => string }) {
  const [rows, setRows] = useState<SignInRow[] | null>(null)
  const [cursor, setCursor] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const load = useCallback(async (after: string | null) => {
    try {
      const sep = url.includes('?') ? '&' : '?'
      const page = await api.get<{ items: SignInRow[]; next_cursor: string | null }>(`${url}${sep}limit=20${after ? `&cursor=${encodeURIComponent(after)}` : ''}`)
      setRows((r) => (after ? [...(r ?? []), ...page.items] : page.items))
      setCursor(page.next_cursor)
    } catch (err) {
      setError(errorText(err))
    }
  }, [url])
  useEffect(() => {
    void load(null)
  }, [load])
  if (error) return <Alert>{error}</Alert>
  if (!rows) return <Loading />
  if (!rows.length) return <p className="muted">No sign-ins yet.</p>
  return (
    <div className="stack-sm">
      <div className="table-wrap">
      <table className="table" aria-label="Sign-in history">
        <thead>
          <tr>
            <th>When</th>
            {userName && <th>Who</th>}
            <th>How</th>
            <th>Result</th>
            <th>Address</th>
            <th>Device</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((h) => (
            <tr key={h.id}>
              <td title={formatDateTime(h.at)}>{timeAgo(h.at)}</td>
              {userName && <td>{userName(h.user_id)}</td>}
              <td>{methodLabel(h.method)}</td>
              <td>{h.success ? <Badge tone="success">{h.reason === 'mfa_pending' ? 'Password ok' : 'Success'}</Badge> : <Badge tone="danger" title={h.reason ?? ''}>Failed{h.reason ? `: ${h.reason}` : ''}</Badge>}</td>
              <td>{h.client_addr ?? '—'}</td>
              <td title={h.user_agent ?? ''}>{deviceName(h.user_agent)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      {cursor && (
        <div>
          <Button size="sm" onClick={() => void load(cursor)}>
            Show more
          </Button>
        </div>
      )}
    </div>
  )
}

/** For pages beyond this one: run a sensitive action, asking the user to confirm it is them
 * when the server wants a step-up; returns the runner and the dialog to render. */
export function useSensitive(): { sensitive: (fn: () => Promise<void>) => Promise<void>; dialog: ReactNode } {
  const [pending, setPending] = useState<{ security: Security; resolve: () => void; reject: (e: unknown) => void } | null>(null)
  const sensitive = useCallback(async (fn: () => Promise<void>) => {
    try {
      await fn()
    } catch (err) {
      if (!isStepUp(err)) throw err
      const security = await api.get<Security>(`${ACCOUNT}/security`)
      await new Promise<void>((resolve, reject) => setPending({ security, resolve, reject }))
      await fn()
    }
  }, [])
  const dialog = pending ? (
    <StepUpDialog
      security={pending.security}
      onDone={() => {
        pending.resolve()
        setPending(null)
      }}
      onClose={() => {
        const e = new Error('Cancelled.')
        e.name = 'StepUpCancelled'
        pending.reject(e)
        setPending(null)
      }}
    />
  ) : null
  return { sensitive, dialog }
}

export default function AccountSecurity() {
  useDocumentTitle('Account security')
  const toast = useToast()
  const [security, setSecurity] = useState<Security | null>(null)
  const [sessions, setSessions] = useState<SessionRow[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [stepUpFor, setStepUpFor] = useState<{ resolve: () => void; reject: (e: unknown) => void } | null>(null)
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null)
  const [codes, setCodes] = useState<string[] | null>(null)
  const [removing, setRemoving] = useState<Factor | null>(null)
  const [revoking, setRevoking] = useState<SessionRow | null>(null)
  const [historyKey, setHistoryKey] = useState(0)
  const securityRef = useRef<Security | null>(null)

  const reload = useCallback(async () => {
    try {
      const [sec, sess] = await Promise.all([
        api.get<Security>(`${ACCOUNT}/security`),
        api.get<{ items: SessionRow[] }>(`${ACCOUNT}/sessions`),
      ])
      securityRef.current = sec
      setSecurity(sec)
      setSessions(sess.items)
      setHistoryKey((k) => k + 1)
    } catch (err) {
      setError(errorText(err))
    }
  }, [])
  useEffect(() => {
    void reload()
  }, [reload])

  /** Run a sensitive action; when the server asks for a step-up, ask the user, then retry once. */
  const sensitive = useCallback(async (fn: () => Promise<void>) => {
    try {
      await fn()
    } catch (err) {
      if (!isStepUp(err)) throw err
      await new Promise<void>((resolve, reject) => setStepUpFor({ resolve, reject }))
      await fn()
    }
  }, [])

  const act = async (fn: () => Promise<void>) => {
    try {
      await sensitive(fn)
    } catch (err) {
      if ((err as Error)?.name !== 'StepUpCancelled') toast(errorText(err), 'error')
    }
  }

  const addTotp = () =>
    act(async () => {
      setEnrolment(await api.post<TotpEnrolment>(`${ACCOUNT}/totp`, { name: 'Authenticator app' }))
    })

  const addPasskey = () =>
    act(async () => {
      const opts = await api.post<{ challenge_token: string; options: Record<string, unknown> }>(`${ACCOUNT}/passkeys/options`, {})
      const credential = await createPasskey(opts.options)
      const name = deviceName(navigator.userAgent)
      const res = await api.post<{ recovery_codes?: string[] }>(`${ACCOUNT}/passkeys`, { challenge_token: opts.challenge_token, credential, name: `Passkey (${name})` })
      toast('Passkey added.')
      if (res.recovery_codes?.length) setCodes(res.recovery_codes)
      await reload()
    })

  const newCodes = () =>
    act(async () => {
      const res = await api.post<{ recovery_codes: string[] }>(`${ACCOUNT}/recovery-codes`, {})
      setCodes(res.recovery_codes)
      await reload()
    })

  if (error) return <EmptyState icon="alert" title="Account security could not be loaded">{error}</EmptyState>
  if (!security || !sessions) return <Loading />

  return (
    <div className="page" style={{ maxWidth: 980 }}>
      <div className="page-head">
        <div className="titles">
          <h1>Account security</h1>
          <p className="muted">How you sign in, where you are signed in, and every recent sign-in.</p>
        </div>
      </div>
      {security.policy.require_mfa && !security.mfa_enabled && (
        <Alert kind="warning">Your organisation requires two-step sign-in. Add an authenticator app or a passkey.</Alert>
      )}
      <section className="card card-pad stack" aria-labelledby="mfa-heading">
        <div className="row">
          <h2 id="mfa-heading">Two-step sign-in</h2>
          {security.mfa_enabled ? <Badge tone="success">On</Badge> : <Badge>Off</Badge>}
        </div>
        {security.factors.length ? (
          <ul className="factor-list">
            {security.factors.map((f) => (
              <li key={f.id} className="row">
                <strong>{f.kind === 'totp' ? 'Authenticator app' : 'Passkey'}</strong>
                {f.name !== 'Authenticator app' && f.name !== 'Passkey' && <span className="muted">{f.name}</span>}
                <span className="subtle small">added {timeAgo(f.created_at)}{f.last_used_at ? `, last used ${timeAgo(f.last_used_at)}` : ''}</span>
                <span className="spacer" />
                <Button size="sm" icon="trash" onClick={() => setRemoving(f)} aria-label={`Remove ${f.name}`}>
                  Remove
                </Button>
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted">Only your password protects this account. Add a second factor so that a stolen password is not enough.</p>
        )}
        <div className="row">
          <Button icon="shield" onClick={() => void addTotp()}>
            Add authenticator app
          </Button>
          {passkeysSupported() && (
            <Button icon="key" onClick={() => void addPasskey()}>
              Add a passkey
            </Button>
          )}
        </div>
        {security.mfa_enabled && (
          <div className="row">
            <span>
              Recovery codes: <strong>{security.recovery_codes_left}</strong> left
            </span>
            <Button size="sm" icon="refresh" onClick={() => void newCodes()}>
              Generate new codes
            </Button>
          </div>
        )}
      </section>
      <section className="card card-pad stack" aria-labelledby="pw-heading">
        <h2 id="pw-heading">Password</h2>
        <PasswordForm minLength={security.policy.password_min_length} sensitive={sensitive} />
      </section>
      <section className="card card-pad stack" aria-labelledby="sessions-heading">
        <div className="row">
          <h2 id="sessions-heading">Where you are signed in</h2>
          <span className="spacer" />
          {sessions.length > 1 && (
            <Button
              size="sm"
              icon="log-out"
              onClick={() =>
                void act(async () => {
                  await api.del(`${ACCOUNT}/sessions`)
                  toast('Signed out of every other session.')
                  await reload()
                })
              }
            >
              Sign out everywhere else
            </Button>
          )}
        </div>
        <SessionsTable rows={sessions} onRevoke={setRevoking} />
      </section>
      <section className="card card-pad stack" aria-labelledby="history-heading">
        <h2 id="history-heading">Recent sign-ins</h2>
        <HistoryTable key={historyKey} url={`${ACCOUNT}/sign-ins`} />
      </section>

      {stepUpFor && (
        <StepUpDialog
          security={security}
          onDone={() => {
            stepUpFor.resolve()
            setStepUpFor(null)
          }}
          onClose={() => {
            const e = new Error('Cancelled.')
            e.name = 'StepUpCancelled'
            stepUpFor.reject(e)
            setStepUpFor(null)
          }}
        />
      )}
      {enrolment && (
        <TotpDialog
          enrolment={enrolment}
          onClose={() => setEnrolment(null)}
          onDone={() => {
            setEnrolment(null)
            toast('Two-step sign-in is on.')
            void reload()
          }}
        />
      )}
      {codes && (
        <Dialog title="Recovery codes" onClose={() => setCodes(null)}>
          <RecoveryCodes codes={codes} onDone={() => setCodes(null)} doneLabel="I have saved them" />
        </Dialog>
      )}
      {removing && (
        <ConfirmDialog
          title={`Remove ${removing.name}?`}
          message={security.factors.length === 1 ? 'This is your only second factor: your password alone will sign you in.' : 'You will no longer be able to sign in with it.'}
          confirmLabel="Remove"
          danger
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            await sensitive(async () => {
              await api.del(`${ACCOUNT}/factors/${removing.id}`)
            })
            toast('Removed.')
            await reload()
          }}
        />
      )}
      {revoking && (
        <ConfirmDialog
          title="Sign out this session?"
          message={`${deviceName(revoking.user_agent)} at ${revoking.client_addr ?? 'an unknown address'} will have to sign in again.`}
          confirmLabel="Sign out"
          danger
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api.del(`${ACCOUNT}/sessions/${revoking.id}`)
            await reload()
          }}
        />
      )}
    </div>
  )
}
