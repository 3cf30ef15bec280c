// API keys: create (the key is shown once), see when each was last used, revoke.
import { useEffect, useMemo, useState, type FormEvent } from 'react'
import { Alert, Badge, Button, ConfirmDialog, Dialog, EmptyState, FieldShell, Loading, useToast } from '../components/ui'
import { ApiError, api } from '../lib/api'
import { useSession } from '../lib/context'
import { formatDateTime, timeAgo } from '../lib/format'
import { localInputToIso } from '../lib/forms'
import { useDocumentTitle } from '../lib/hooks'
import { findResource } from '../lib/meta'
import { ChipsInput } from '../records/inputs'
import { RefValue } from '../records/FieldValue'
import { SecretValues } from '../records/SecretValues'
import { permissionSuggestions } from './Roles'
import { useSensitive } from '../shell/AccountSecurity'

interface ApiKey {
  id: string
  name: string
  prefix: string
  user_id: string
  permissions: string[]
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
  created_at: string
  key?: string
}

function CreateKeyDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (k: ApiKey) => void }) {
  const { meta, me } = useSession()
  const [name, setName] = useState('')
  const [permissions, setPermissions] = useState<string[]>([])
  const [expires, setExpires] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [created, setCreated] = useState<ApiKey | null>(null)
  const { sensitive, dialog } = useSensitive()
  const suggestions = useMemo(() => (me.permissions.includes('*') ? permissionSuggestions(meta) : me.permissions), [meta, me])

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!name.trim()) {
      setErrors({ name: 'This field is required.' })
      return
    }
    setBusy(true)
    setFormError(null)
    try {
      // Creating a key is sensitive: a sign-in that is not recent is asked to confirm first.
      await sensitive(async () => {
        const key = await api.post<ApiKey>('/api/v1/identity/api-keys', { name: name.trim(), permissions, expires_at: expires ? localInputToIso(expires) : null })
        setCreated(key)
        onCreated({ ...key, key: undefined })
      })
    } catch (err) {
      if ((err as Error).name === 'StepUpCancelled') setFormError(null)
      else if (err instanceof ApiError) {
        setErrors(err.fieldErrors)
        if (!Object.keys(err.fieldErrors).some((k) => ['name', 'permissions', 'expires_at'].includes(k))) setFormError(err.message)
      } else setFormError((err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Dialog title={created ? 'Your new API key' : 'Create an API key'} description={created ? undefined : 'For scripts and other machines. It acts as you, within the permissions you give it.'} onClose={onClose}>
      {created ? (
        <SecretValues values={{ key: created.key }} onDone={onClose} />
      ) : (
        <form className="stack" onSubmit={submit} noValidate>
          {formError && <Alert>{formError}</Alert>}
          <FieldShell label="Name" htmlFor="key-name" error={errors.name} hint="What uses it, e.g. “Nightly export”." required>
            <input id="key-name" className="input" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={errors.name ? true : undefined} />
          </FieldShell>
          <FieldShell label="Permissions" htmlFor="key-permissions" error={errors.permissions} hint="Leave empty for all of your own permissions. Narrower is safer.">
            <ChipsInput id="key-permissions" values={permissions} onChange={setPermissions} suggestions={suggestions} placeholder="e.g. tasks.tasks.read" invalid={Boolean(errors.permissions)} />
          </FieldShell>
          <FieldShell label="Expires" htmlFor="key-expires" error={errors.expires_at} hint="Optional.">
            <input id="key-expires" className="input" type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} />
          </FieldShell>
          <div className="form-actions">
            <Button onClick={onClose}>Cancel</Button>
            <Button type="submit" variant="primary" busy={busy} icon="key">
              Create key
            </Button>
          </div>
        </form>
      )}
      {dialog}
    </Dialog>
  )
}

export function ApiKeysPage() {
  useDocumentTitle('API keys')
  const { meta } = useSession()
  const toast = useToast()
  const res = findResource(meta, 'identity', 'api-keys')
  const [items, setItems] = useState<ApiKey[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [creating, setCreating] = useState(false)
  const [revoking, setRevoking] = useState<ApiKey | null>(null)
  useEffect(() => {
    api
      .get<{ items: ApiKey[] }>('/api/v1/identity/api-keys?limit=200')
      .then((p) => setItems(p.items))
      .catch((err: Error) => setError(err.message))
  }, [])
  if (!res) return <EmptyState icon="lock" title="You may not see API keys" />
  const now = Date.now()
  return (
    <div className="stack">
      <div className="page-head">
        <div className="titles">
          <h1>API keys</h1>
          <p className="muted">Keys let programs use the API. Each is shown once, when created.</p>
        </div>
        <div className="actions">
          {res.permissions.create && (
            <Button variant="primary" icon="key" onClick={() => setCreating(true)}>
              Create API key
            </Button>
          )}
        </div>
      </div>
      {error && <Alert>{error}</Alert>}
      <section className="card">
        {!items && !error ? (
          <Loading />
        ) : items && items.length === 0 ? (
          <EmptyState icon="key" title="No API keys yet" />
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="API keys">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Key</th>
                  <th scope="col" className="hide-sm">
                    Owner
                  </th>
                  <th scope="col">Permissions</th>
                  <th scope="col" className="hide-sm">
                    Last used
                  </th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items?.map((k) => {
                  const expired = k.expires_at && new Date(k.expires_at).getTime() < now
                  return (
                    <tr key={k.id}>
                      <td>
                        <strong>{k.name}</strong>
                        <div className="small subtle">created {timeAgo(k.created_at)}</div>
                      </td>
                      <td>
                        <code>nxk_{k.prefix}_…</code>
                      </td>
                      <td className="hide-sm">
                        <RefValue refKey="identity.users" id={k.user_id} />
                      </td>
                      <td>
                        <span className="row" style={{ gap: 4 }}>
                          {k.permissions.length ? k.permissions.slice(0, 3).map((p) => <code key={p} className="badge">{p}</code>) : <span className="muted small">All of the owner's</span>}
                          {k.permissions.length > 3 && <span className="subtle small">+{k.permissions.length - 3}</span>}
                        </span>
                      </td>
                      <td className="hide-sm muted" title={formatDateTime(k.last_used_at)}>
                        {k.last_used_at ? timeAgo(k.last_used_at) : 'Never'}
                      </td>
                      <td>
                        {k.revoked_at ? <Badge tone="danger">Revoked</Badge> : expired ? <Badge tone="warning">Expired</Badge> : <Badge tone="success">Active</Badge>}
                      </td>
                      <td style={{ textAlign: 'right' }}>
                        {!k.revoked_at && res.permissions.delete && (
                          <Button size="sm" variant="ghost" onClick={() => setRevoking(k)}>
                            Revoke
                          </Button>
                        )}
                      </td>
                    </tr>
                  )
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {creating && <CreateKeyDialog onClose={() => setCreating(false)} onCreated={(k) => setItems((all) => [k, ...(all ?? [])])} />}
      {revoking && (
        <ConfirmDialog
          title={`Revoke “${revoking.name}”?`}
          message="Programs using it stop working at once. This cannot be undone."
          confirmLabel="Revoke key"
          danger
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            const k = await api.post<ApiKey>(`/api/v1/identity/api-keys/${revoking.id}/revoke`)
            setItems((all) => all?.map((x) => (x.id === k.id ? k : x)) ?? null)
            toast('Key revoked', 'success')
          }}
        />
      )}
    </div>
  )
}
