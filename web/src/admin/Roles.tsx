// Roles and the permissions they grant (app.resource.action, * for any segment).
import { useEffect, useMemo, useState, type FormEvent } from 'react'
import { Alert, Badge, Button, ConfirmDialog, Dialog, EmptyState, FieldShell, Loading, useToast } from '../components/ui'
import { ApiError, api, etagOf, request } from '../lib/api'
import { useSession } from '../lib/context'
import { useDocumentTitle } from '../lib/hooks'
import { appsInOrder, findResource, type Meta } from '../lib/meta'
import { ChipsInput } from '../records/inputs'

export interface Role {
  id: string
  name: string
  description: string
  permissions: string[]
  builtin: boolean
  version: number
}

/** Every permission name the installed apps define, plus the useful wildcards. */
export function permissionSuggestions(meta: Meta): string[] {
  const out = new Set<string>(['*', '*.*.read', '*.*.create', '*.*.update', '*.*.delete', '*.*.export', '*.*.import', 'audit.trail.read'])
  for (const app of appsInOrder(meta)) {
    out.add(`${app.name}.*.*`)
    out.add(`${app.name}.*.read`)
    for (const r of app.resources) {
      out.add(`${app.name}.${r.name}.*`)
      for (const v of ['read', 'create', 'update', 'delete', 'export', 'import']) out.add(`${app.name}.${r.name}.${v}`)
    }
  }
  return [...out]
}

function RoleDialog({ role, onClose, onSaved }: { role: Role | null; onClose: () => void; onSaved: (r: Role) => void }) {
  const { meta } = useSession()
  const [name, setName] = useState(role?.name ?? '')
  const [description, setDescription] = useState(role?.description ?? '')
  const [permissions, setPermissions] = useState<string[]>(role?.permissions ?? [])
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const suggestions = useMemo(() => permissionSuggestions(meta), [meta])

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const errs: Record<string, string> = {}
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) errs.name = 'Lower-case letters, digits, - and _ (e.g. sales-lead).'
    setErrors(errs)
    if (Object.keys(errs).length) return
    setBusy(true)
    setFormError(null)
    try {
      const saved = role
        ? (await request<Role>(`/api/v1/identity/roles/${role.id}`, { method: 'PATCH', json: { name, description, permissions }, ifMatch: etagOf(role) })).data
        : await api.post<Role>('/api/v1/identity/roles', { name, description, permissions })
      onSaved(saved)
      onClose()
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.status === 412) setFormError('This role was changed by someone else — close and reopen it to see the new version.')
        else {
          setErrors(err.fieldErrors)
          if (!Object.keys(err.fieldErrors).some((k) => ['name', 'description', 'permissions'].includes(k))) setFormError(err.message)
        }
      } else setFormError((err as Error).message)
      setBusy(false)
    }
  }

  return (
    <Dialog title={role ? `Edit role ${role.name}` : 'New role'} onClose={onClose}>
      <form className="stack" onSubmit={submit} noValidate>
        {formError && <Alert>{formError}</Alert>}
        <FieldShell label="Name" htmlFor="role-name" error={errors.name} required>
          <input id="role-name" className="input" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={errors.name ? true : undefined} />
        </FieldShell>
        <FieldShell label="Description" htmlFor="role-description" error={errors.description}>
          <input id="role-description" className="input" value={description} onChange={(e) => setDescription(e.target.value)} />
        </FieldShell>
        <FieldShell label="Permissions" htmlFor="role-permissions" error={errors.permissions} hint="app.resource.action — * matches any one part. Start typing for suggestions.">
          <ChipsInput id="role-permissions" values={permissions} onChange={setPermissions} suggestions={suggestions} placeholder="e.g. tasks.tasks.read" invalid={Boolean(errors.permissions)} />
        </FieldShell>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={busy}>
            {role ? 'Save role' : 'Create role'}
          </Button>
        </div>
      </form>
    </Dialog>
  )
}

export function RolesPage() {
  useDocumentTitle('Roles')
  const { meta } = useSession()
  const toast = useToast()
  const res = findResource(meta, 'identity', 'roles')
  const [items, setItems] = useState<Role[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [editing, setEditing] = useState<Role | 'new' | null>(null)
  const [deleting, setDeleting] = useState<Role | null>(null)
  useEffect(() => {
    api
      .get<{ items: Role[] }>('/api/v1/identity/roles?limit=200&sort=name')
      .then((p) => setItems(p.items))
      .catch((err: Error) => setError(err.message))
  }, [])
  if (!res) return <EmptyState icon="lock" title="You may not see roles" />
  return (
    <div className="stack">
      <div className="page-head">
        <div className="titles">
          <h1>Roles</h1>
          <p className="muted">A role grants permissions; people get them through their roles.</p>
        </div>
        <div className="actions">
          {res.permissions.create && (
            <Button variant="primary" icon="plus" onClick={() => setEditing('new')}>
              New role
            </Button>
          )}
        </div>
      </div>
      {error && <Alert>{error}</Alert>}
      {!items && !error && <Loading />}
      <div className="app-grid" style={{ gridTemplateColumns: 'repeat(auto-fill, minmax(320px, 1fr))' }}>
        {items?.map((r) => (
          <section key={r.id} className="card card-pad stack-sm" aria-labelledby={`role-${r.id}`}>
            <div className="row">
              <h2 id={`role-${r.id}`} style={{ fontSize: 'var(--text-lg)' }}>
                {r.name}
              </h2>
              {r.builtin && <Badge tone="info">built-in</Badge>}
              <span className="spacer" />
              {res.permissions.update && !r.builtin && (
                <Button size="sm" variant="ghost" icon="edit" onClick={() => setEditing(r)} aria-label={`Edit ${r.name}`}>
                  Edit
                </Button>
              )}
              {res.permissions.delete && !r.builtin && (
                <Button size="sm" variant="ghost" icon="trash" onClick={() => setDeleting(r)} aria-label={`Delete ${r.name}`} />
              )}
            </div>
            <p className="muted small">{r.description || 'No description.'}</p>
            <div className="row" style={{ gap: 4 }}>
              {r.permissions.length ? r.permissions.map((p) => <code key={p} className="badge">{p}</code>) : <span className="subtle small">No permissions</span>}
            </div>
          </section>
        ))}
      </div>
      {editing && (
        <RoleDialog
          role={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={(saved) => {
            setItems((all) => (all?.some((x) => x.id === saved.id) ? all.map((x) => (x.id === saved.id ? saved : x)) : [...(all ?? []), saved]))
            toast(`Saved role ${saved.name}`, 'success')
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete role ${deleting.name}?`}
          message="People who have it lose its permissions."
          confirmLabel="Delete"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(`/api/v1/identity/roles/${deleting.id}`, etagOf(deleting))
            setItems((all) => all?.filter((x) => x.id !== deleting.id) ?? null)
            toast('Role deleted', 'success')
          }}
        />
      )}
    </div>
  )
}
