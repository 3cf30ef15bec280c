// Org security: the MFA and password policy, and any user's sessions and sign-in history
// (end a session, reset a lost second factor).
import { useEffect, useState, type FormEvent } from 'react'
import { Alert, Button, ConfirmDialog, FieldShell, Loading, useToast } from '../components/ui'
import { ApiError, api, request } from '../lib/api'
import { hasPermission } from '../lib/auth'
import { useSession } from '../lib/context'
import { useDocumentTitle } from '../lib/hooks'
import { HistoryTable, SessionsTable, useSensitive, type SessionRow } from '../shell/AccountSecurity'

interface Policy {
  require_mfa: boolean
  password_min_length: number
  password_history: number
  password_block_common: boolean
  step_up_max_age: number
}

interface UserRow {
  id: string
  name: string
  email: string
}

function PolicyForm({ canEdit }: { canEdit: boolean }) {
  const toast = useToast()
  const { sensitive, dialog } = useSensitive()
  const [policy, setPolicy] = useState<Policy | null>(null)
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [busy, setBusy] = useState(false)
  useEffect(() => {
    api.get<Policy>('/api/v1/identity/security-policy').then(setPolicy, (e: Error) => setErrors({ '': e.message }))
  }, [])
  if (!policy) return errors[''] ? <Alert>{errors['']}</Alert> : <Loading />
  const set = <K extends keyof Policy>(k: K, v: Policy[K]) => setPolicy({ ...policy, [k]: v })
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setErrors({})
    try {
      await sensitive(async () => {
        setPolicy((await request<Policy>("/api/v1/identity/security-policy", { method: "PUT", json: policy })).data)
      })
      toast('Security policy saved.')
    } catch (err) {
      if (err instanceof ApiError && Object.keys(err.fieldErrors).length) setErrors(err.fieldErrors)
      else if ((err as Error).name !== 'StepUpCancelled') setErrors({ '': (err as Error).message })
    } finally {
      setBusy(false)
    }
  }
  const num = (k: 'password_min_length' | 'password_history' | 'step_up_max_age', label: string, hint: string) => (
    <FieldShell label={label} htmlFor={`policy-${k}`} error={errors[k]} hint={hint}>
      <input id={`policy-${k}`} className="input" type="number" disabled={!canEdit} value={policy[k]} onChange={(e) => set(k, Number(e.target.value))} style={{ maxWidth: 140 }} />
    </FieldShell>
  )
  return (
    <form className="stack" onSubmit={submit} noValidate style={{ maxWidth: 560 }}>
      {errors[''] && <Alert>{errors['']}</Alert>}
      <label className="checkbox-row">
        <input type="checkbox" disabled={!canEdit} checked={policy.require_mfa} onChange={(e) => set('require_mfa', e.target.checked)} />
        Require two-step sign-in for everyone (people without a second factor set one up at their next sign-in)
      </label>
      {num('password_min_length', 'Minimum password length', '8 to 128 characters.')}
      <label className="checkbox-row">
        <input type="checkbox" disabled={!canEdit} checked={policy.password_block_common} onChange={(e) => set('password_block_common', e.target.checked)} />
        Refuse common passwords
      </label>
      {num('password_history', 'Remember previous passwords', 'A new password cannot be one of the last N (0 to 24).')}
      {num('step_up_max_age', 'Recent sign-in window (seconds)', 'Sensitive changes need a sign-in or confirmation this recent.')}
      {canEdit && (
        <div>
          <Button type="submit" variant="primary" busy={busy}>
            Save policy
          </Button>
        </div>
      )}
      {dialog}
    </form>
  )
}

function UserSecurity({ users }: { users: UserRow[] }) {
  const toast = useToast()
  const { me } = useSession()
  const { sensitive, dialog } = useSensitive()
  const [userId, setUserId] = useState('')
  const [sessions, setSessions] = useState<SessionRow[] | null>(null)
  const [revoking, setRevoking] = useState<SessionRow | null>(null)
  const [resetting, setResetting] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [key, setKey] = useState(0)
  useEffect(() => {
    setSessions(null)
    setError(null)
    if (!userId) return
    api.get<{ items: SessionRow[] }>(`/api/v1/identity/users/${userId}/sessions`).then((r) => setSessions(r.items), (e: Error) => setError(e.message))
  }, [userId, key])
  const user = users.find((u) => u.id === userId)
  return (
    <div className="stack">
      <FieldShell label="Person" htmlFor="sec-user">
        <select id="sec-user" className="input" value={userId} onChange={(e) => setUserId(e.target.value)} style={{ maxWidth: 420 }}>
          <option value="">Choose someone…</option>
          {users.map((u) => (
            <option key={u.id} value={u.id}>
              {u.name} ({u.email})
            </option>
          ))}
        </select>
      </FieldShell>
      {error && <Alert>{error}</Alert>}
      {user && sessions && (
        <>
          <h3>Active sessions</h3>
          <SessionsTable rows={sessions.map((s) => ({ ...s, current: s.current && user.id === me.id }))} onRevoke={setRevoking} />
          {hasPermission(me, 'identity.users.update') && (
            <div>
              <Button icon="shield" onClick={() => setResetting(true)}>
                Reset two-step sign-in
              </Button>
            </div>
          )}
          <h3>Sign-ins</h3>
          <HistoryTable key={`${userId}-${key}`} url={`/api/v1/identity/users/${userId}/sign-ins`} />
        </>
      )}
      {revoking && user && (
        <ConfirmDialog
          title={`Sign ${user.name} out of this session?`}
          message="They will have to sign in again on that device."
          confirmLabel="Sign out"
          danger
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api.del(`/api/v1/identity/users/${user.id}/sessions/${revoking.id}`)
            setKey((k) => k + 1)
          }}
        />
      )}
      {resetting && user && (
        <ConfirmDialog
          title={`Reset ${user.name}'s two-step sign-in?`}
          message="Their authenticator apps, passkeys and recovery codes are removed. Use this when they lost their device; they set up a new one at their next sign-in if the policy requires it."
          confirmLabel="Reset"
          danger
          onClose={() => setResetting(false)}
          onConfirm={async () => {
            await sensitive(async () => {
              await api.del(`/api/v1/identity/users/${user.id}/mfa`)
            })
            toast('Two-step sign-in reset.')
          }}
        />
      )}
      {dialog}
    </div>
  )
}

export function SecurityPage() {
  useDocumentTitle('Security')
  const { me } = useSession()
  const [users, setUsers] = useState<UserRow[]>([])
  useEffect(() => {
    api.get<{ items: UserRow[] }>('/api/v1/identity/users?limit=500&sort=name').then((r) => setUsers(r.items), () => setUsers([]))
  }, [])
  const name = (id: string | null | undefined) => {
    const u = users.find((x) => x.id === id)
    return u ? u.name || u.email : id ? 'Unknown' : '—'
  }
  return (
    <div className="stack">
      <div className="page-head">
        <div className="titles">
          <h1>Security</h1>
          <p className="muted">Sign-in rules for the organisation, and everyone’s sessions and sign-ins.</p>
        </div>
      </div>
      <section className="card card-pad stack" aria-labelledby="policy-heading">
        <h2 id="policy-heading">Sign-in and password policy</h2>
        <PolicyForm canEdit={hasPermission(me, 'identity.security-policy.update')} />
      </section>
      {hasPermission(me, 'identity.sessions.read') && (
        <section className="card card-pad stack" aria-labelledby="people-heading">
          <h2 id="people-heading">People’s sessions</h2>
          <UserSecurity users={users} />
        </section>
      )}
      {hasPermission(me, 'identity.sign-ins.read') && (
        <section className="card card-pad stack" aria-labelledby="org-history-heading">
          <h2 id="org-history-heading">All sign-ins</h2>
          <HistoryTable url="/api/v1/identity/sign-ins" userName={name} />
        </section>
      )}
    </div>
  )
}
