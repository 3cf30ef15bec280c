// Org administration: people — invite (with or without a password), roles, deactivate.
import { useEffect, useState, type FormEvent } from 'react'
import { Icon } from '../components/Icon'
import { Alert, Avatar, Badge, Button, ConfirmDialog, Dialog, EmptyState, FieldShell, Loading, Menu, useToast } from '../components/ui'
import { ApiError, api } from '../lib/api'
import { useSession } from '../lib/context'
import { useDebounced, useDocumentTitle } from '../lib/hooks'
import { timeAgo } from '../lib/format'
import { findResource, humanize } from '../lib/meta'
import { Link } from '../lib/router'
import { choiceTone } from '../records/FieldValue'

export interface User {
  id: string
  email: string
  name: string
  status: string
  roles: string[]
  timezone: string
  last_login_at: string | null
  is_service_account: boolean
  version: number
}

interface Role {
  id: string
  name: string
  description: string
}

export function useRoles() {
  const [roles, setRoles] = useState<Role[]>([])
  useEffect(() => {
    api
      .get<{ items: Role[] }>('/api/v1/identity/roles?limit=200&sort=name')
      .then((p) => setRoles(p.items))
      .catch(() => setRoles([]))
  }, [])
  return roles
}

function RoleChecks({ roles, value, onChange, idPrefix }: { roles: Role[]; value: string[]; onChange: (v: string[]) => void; idPrefix: string }) {
  return (
    <div className="stack-sm" role="group" aria-label="Roles">
      {roles.map((r) => (
        <label key={r.id} className="checkbox-row" htmlFor={`${idPrefix}-${r.name}`} style={{ alignItems: 'flex-start', minHeight: 0 }}>
          <input
            id={`${idPrefix}-${r.name}`}
            type="checkbox"
            style={{ marginTop: 3 }}
            checked={value.includes(r.name)}
            onChange={(e) => onChange(e.target.checked ? [...value, r.name] : value.filter((x) => x !== r.name))}
          />
          <span>
            <strong>{r.name}</strong>
            {r.description && <span className="small muted"> — {r.description}</span>}
          </span>
        </label>
      ))}
    </div>
  )
}

function InviteDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (u: User) => void }) {
  const roles = useRoles()
  const [email, setEmail] = useState('')
  const [name, setName] = useState('')
  const [chosen, setChosen] = useState<string[]>(['member'])
  const [withPassword, setWithPassword] = useState(false)
  const [password, setPassword] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const errs: Record<string, string> = {}
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email.trim())) errs.email = 'Enter an email address.'
    if (!name.trim()) errs.name = 'This field is required.'
    if (withPassword && password.length < 8) errs.password = 'At least 8 characters.'
    setErrors(errs)
    if (Object.keys(errs).length) return
    setBusy(true)
    setFormError(null)
    try {
      const body: Record<string, unknown> = { email: email.trim(), name: name.trim(), roles: chosen, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' }
      if (withPassword) body.password = password
      const user = await api.post<User>('/api/v1/identity/users', body)
      onCreated(user)
      onClose()
    } catch (err) {
      if (err instanceof ApiError) {
        const fe = err.fieldErrors
        setErrors(fe)
        if (!['email', 'name', 'password', 'roles'].some((k) => fe[k])) setFormError(err.message)
      } else setFormError((err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Dialog title="Add a user" description="They sign in with this email. Set a password now, or leave it for an invitation." onClose={onClose}>
      <form className="stack" onSubmit={submit} noValidate>
        {formError && <Alert>{formError}</Alert>}
        <FieldShell label="Email" htmlFor="invite-email" error={errors.email} required>
          <input id="invite-email" className="input" type="email" autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} aria-invalid={errors.email ? true : undefined} aria-describedby={errors.email ? 'invite-email-error' : undefined} />
        </FieldShell>
        <FieldShell label="Name" htmlFor="invite-name" error={errors.name} required>
          <input id="invite-name" className="input" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={errors.name ? true : undefined} aria-describedby={errors.name ? 'invite-name-error' : undefined} />
        </FieldShell>
        <fieldset className="stack-sm" style={{ border: 0, padding: 0, margin: 0 }}>
          <legend className="field-label" style={{ marginBottom: 6 }}>
            Roles
          </legend>
          <RoleChecks roles={roles} value={chosen} onChange={setChosen} idPrefix="invite-role" />
          {errors.roles && <p className="field-error">{errors.roles}</p>}
        </fieldset>
        <label className="checkbox-row">
          <input type="checkbox" checked={withPassword} onChange={(e) => setWithPassword(e.target.checked)} /> Set a password now
        </label>
        {withPassword && (
          <FieldShell label="Password" htmlFor="invite-password" error={errors.password} hint="At least 8 characters. Share it with them safely." required>
            <input id="invite-password" className="input" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} aria-invalid={errors.password ? true : undefined} />
          </FieldShell>
        )}
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={busy} icon="user-plus">
            Add user
          </Button>
        </div>
      </form>
    </Dialog>
  )
}

function RolesDialog({ user, onClose, onSaved }: { user: User; onClose: () => void; onSaved: (u: User) => void }) {
  const roles = useRoles()
  const [chosen, setChosen] = useState<string[]>(user.roles)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  return (
    <Dialog
      title={`Roles of ${user.name}`}
      onClose={onClose}
      size="sm"
      footer={
        <>
          <Button onClick={onClose}>Cancel</Button>
          <Button
            variant="primary"
            busy={busy}
            onClick={async () => {
              setBusy(true)
              try {
                onSaved(await api.post<User>(`/api/v1/identity/users/${user.id}/assign-roles`, { roles: chosen }))
                onClose()
              } catch (err) {
                setError((err as Error).message)
                setBusy(false)
              }
            }}
          >
            Save roles
          </Button>
        </>
      }
    >
      <div className="stack">
        {error && <Alert>{error}</Alert>}
        <RoleChecks roles={roles} value={chosen} onChange={setChosen} idPrefix="assign-role" />
      </div>
    </Dialog>
  )
}

function PasswordDialog({ user, onClose }: { user: User; onClose: () => void }) {
  const toast = useToast()
  const [password, setPassword] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (password.length < 8) {
      setError('At least 8 characters.')
      return
    }
    setBusy(true)
    try {
      await api.post(`/api/v1/identity/users/${user.id}/set-password`, { password })
      toast(`Password set for ${user.name}`, 'success')
      onClose()
    } catch (err) {
      setError(err instanceof ApiError ? (err.fieldErrors.password ?? err.message) : (err as Error).message)
      setBusy(false)
    }
  }
  return (
    <Dialog title={`Set ${user.name}'s password`} onClose={onClose} size="sm">
      <form className="stack" onSubmit={submit} noValidate>
        <FieldShell label="New password" htmlFor="set-password" error={error ?? undefined} hint="At least 8 characters." required>
          <input id="set-password" className="input" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} aria-invalid={error ? true : undefined} />
        </FieldShell>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={busy}>
            Set password
          </Button>
        </div>
      </form>
    </Dialog>
  )
}

export function UsersPage() {
  useDocumentTitle('Users')
  const { meta, me } = useSession()
  const toast = useToast()
  const res = findResource(meta, 'identity', 'users')
  const [q, setQ] = useState('')
  const [status, setStatus] = useState('')
  const [items, setItems] = useState<User[] | null>(null)
  const [cursor, setCursor] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [dialog, setDialog] = useState<{ kind: 'invite' } | { kind: 'roles' | 'password' | 'deactivate'; user: User } | null>(null)
  const dq = useDebounced(q, 250)
  const query = new URLSearchParams({ limit: '50', sort: 'name' })
  if (dq.trim()) query.set('q', dq.trim())
  if (status) query.set('status', status)
  const qs = query.toString()

  useEffect(() => {
    api
      .get<{ items: User[]; next_cursor: string | null }>(`/api/v1/identity/users?${qs}`)
      .then((p) => {
        setItems(p.items)
        setCursor(p.next_cursor)
        setError(null)
      })
      .catch((err: Error) => setError(err.message))
  }, [qs])

  if (!res) return <EmptyState icon="lock" title="You may not see the people of this organisation" />
  const replace = (u: User) => setItems((all) => all?.map((x) => (x.id === u.id ? u : x)) ?? null)
  const can = res.permissions.update

  return (
    <div className="stack">
      <div className="page-head">
        <div className="titles">
          <h1>Users</h1>
          <p className="muted">People and service accounts of {me.org?.name}.</p>
        </div>
        <div className="actions">
          {res.permissions.create && (
            <Button variant="primary" icon="user-plus" onClick={() => setDialog({ kind: 'invite' })}>
              Add user
            </Button>
          )}
        </div>
      </div>
      <section className="card">
        <div className="toolbar">
          <div className="input-with-icon search-field">
            <Icon name="search" size={16} />
            <input className="input" type="search" aria-label="Search users" placeholder="Search by name or email…" value={q} onChange={(e) => setQ(e.target.value)} />
          </div>
          <select className="select" style={{ width: 'auto' }} aria-label="Status" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">Any status</option>
            <option value="active">Active</option>
            <option value="invited">Invited</option>
            <option value="deactivated">Deactivated</option>
          </select>
        </div>
        {error ? (
          <div className="card-body">
            <Alert>{error}</Alert>
          </div>
        ) : !items ? (
          <Loading />
        ) : items.length === 0 ? (
          <EmptyState icon="users" title="No users match" />
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Users">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col" className="hide-sm">
                    Email
                  </th>
                  <th scope="col">Roles</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="hide-sm">
                    Last sign-in
                  </th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((u) => (
                  <tr key={u.id}>
                    <td>
                      <span className="row" style={{ flexWrap: 'nowrap' }}>
                        <Avatar name={u.name || u.email} size={28} />
                        <Link to={`/r/identity/users/${u.id}`} className="row-link">
                          {u.name}
                        </Link>
                        {u.id === me.id && <Badge>you</Badge>}
                      </span>
                    </td>
                    <td className="hide-sm muted">{u.email}</td>
                    <td>
                      <span className="row" style={{ gap: 4 }}>
                        {u.roles.map((r) => (
                          <Badge key={r} tone="primary">
                            {r}
                          </Badge>
                        ))}
                      </span>
                    </td>
                    <td>
                      <Badge tone={choiceTone(u.status)}>{humanize(u.status)}</Badge>
                    </td>
                    <td className="hide-sm muted">{u.last_login_at ? timeAgo(u.last_login_at) : 'Never'}</td>
                    <td style={{ textAlign: 'right' }}>
                      {can && (
                        <Menu
                          label={`Actions for ${u.name}`}
                          trigger={<Icon name="more" />}
                          items={[
                            { label: 'Change roles…', icon: 'shield', onSelect: () => setDialog({ kind: 'roles', user: u }) },
                            { label: 'Set password…', icon: 'lock', onSelect: () => setDialog({ kind: 'password', user: u }) },
                            'separator',
                            u.status === 'deactivated'
                              ? {
                                  label: 'Reactivate',
                                  icon: 'rotate-ccw',
                                  onSelect: () =>
                                    void api
                                      .post<User>(`/api/v1/identity/users/${u.id}/reactivate`)
                                      .then((x) => (replace(x), toast(`${u.name} is active again`, 'success')))
                                      .catch((e: Error) => toast(e.message, 'error')),
                                }
                              : { label: 'Deactivate…', icon: 'user-x', danger: true, disabled: u.id === me.id, onSelect: () => setDialog({ kind: 'deactivate', user: u }) },
                          ]}
                        />
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {cursor && (
          <div className="list-foot">
            <span>{items?.length} users shown</span>
            <Button
              size="sm"
              onClick={async () => {
                const p = await api.get<{ items: User[]; next_cursor: string | null }>(`/api/v1/identity/users?${qs}&cursor=${encodeURIComponent(cursor)}`)
                setItems((i) => [...(i ?? []), ...p.items])
                setCursor(p.next_cursor)
              }}
            >
              Load more
            </Button>
          </div>
        )}
      </section>
      {dialog?.kind === 'invite' && (
        <InviteDialog
          onClose={() => setDialog(null)}
          onCreated={(u) => {
            setItems((all) => [u, ...(all ?? [])])
            toast(`Added ${u.name}`, 'success')
          }}
        />
      )}
      {dialog?.kind === 'roles' && <RolesDialog user={dialog.user} onClose={() => setDialog(null)} onSaved={(u) => (replace(u), toast('Roles saved', 'success'))} />}
      {dialog?.kind === 'password' && <PasswordDialog user={dialog.user} onClose={() => setDialog(null)} />}
      {dialog?.kind === 'deactivate' && (
        <ConfirmDialog
          title={`Deactivate ${dialog.user.name}?`}
          message="They are signed out everywhere at once and cannot sign in until reactivated. Their work stays."
          confirmLabel="Deactivate"
          danger
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            replace(await api.post<User>(`/api/v1/identity/users/${dialog.user.id}/deactivate`))
            toast(`${dialog.user.name} is deactivated`, 'success')
          }}
        />
      )}
    </div>
  )
}
