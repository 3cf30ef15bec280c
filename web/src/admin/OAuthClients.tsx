// OAuth clients (OpenID Connect): register an application, see its secret once, rotate it, delete it.
import { useEffect, useState, type FormEvent } from 'react'
import { Alert, Badge, Button, ConfirmDialog, Dialog, EmptyState, FieldShell, Loading, useToast } from '../components/ui'
import { ApiError, api } from '../lib/api'
import { useSession } from '../lib/context'
import { timeAgo } from '../lib/format'
import { useDocumentTitle } from '../lib/hooks'
import { findResource } from '../lib/meta'
import { ChipsInput } from '../records/inputs'
import { SecretValues } from '../records/SecretValues'

export interface OAuthClient {
  id: string
  name: string
  client_id: string
  client_type: 'confidential' | 'public'
  redirect_uris: string[]
  post_logout_redirect_uris: string[]
  grant_types: string[]
  scopes: string[]
  first_party: boolean
  created_at: string
  secret_rotated_at: string | null
  client_secret?: string
}

const GRANTS: { value: string; label: string }[] = [
  { value: 'authorization_code', label: 'Sign-in (authorization code + PKCE)' },
  { value: 'refresh_token', label: 'Refresh tokens' },
  { value: 'client_credentials', label: 'Machine to machine (client credentials)' },
]
const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'api', 'tasks.tasks.read']
const PATH = '/api/v1/identity/oauth-clients'

function CreateClientDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (c: OAuthClient) => void }) {
  const [name, setName] = useState('')
  const [type, setType] = useState<'confidential' | 'public'>('confidential')
  const [redirects, setRedirects] = useState<string[]>([])
  const [logoutRedirects, setLogoutRedirects] = useState<string[]>([])
  const [grants, setGrants] = useState<string[]>(['authorization_code', 'refresh_token'])
  const [scopes, setScopes] = useState<string[]>(['openid', 'profile', 'email'])
  const [firstParty, setFirstParty] = useState(false)
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [created, setCreated] = useState<OAuthClient | null>(null)

  const toggleGrant = (g: string) => setGrants((all) => (all.includes(g) ? all.filter((x) => x !== g) : [...all, g]))

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    if (!name.trim()) {
      setErrors({ name: 'This field is required.' })
      return
    }
    setBusy(true)
    setFormError(null)
    try {
      const c = await api.post<OAuthClient>(PATH, {
        name: name.trim(),
        client_type: type,
        redirect_uris: redirects,
        post_logout_redirect_uris: logoutRedirects,
        grant_types: type === 'public' ? grants.filter((g) => g !== 'client_credentials') : grants,
        scopes,
        first_party: firstParty,
      })
      setCreated(c)
      onCreated({ ...c, client_secret: undefined })
    } catch (err) {
      if (err instanceof ApiError) {
        setErrors(err.fieldErrors)
        if (!Object.keys(err.fieldErrors).length) setFormError(err.message)
        else if (err.fieldErrors['']) setFormError(err.fieldErrors[''])
      } else setFormError((err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Dialog
      title={created ? `“${created.name}” is registered` : 'Register an application'}
      description={created ? undefined : 'An application that signs people in with NEXUS (OpenID Connect) or calls its API.'}
      onClose={onClose}
    >
      {created ? (
        <SecretValues values={created.client_secret ? { client_id: created.client_id, client_secret: created.client_secret } : { client_id: created.client_id }} onDone={onClose} />
      ) : (
        <form className="stack" onSubmit={submit} noValidate>
          {formError && <Alert>{formError}</Alert>}
          <FieldShell label="Name" htmlFor="client-name" error={errors.name} hint="Shown to people on the consent screen." required>
            <input id="client-name" className="input" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={errors.name ? true : undefined} />
          </FieldShell>
          <FieldShell label="Type" htmlFor="client-type" hint="Public: a browser or mobile app that cannot keep a secret (PKCE is required).">
            <select id="client-type" className="input" value={type} onChange={(e) => setType(e.target.value as 'confidential' | 'public')}>
              <option value="confidential">Confidential (server-side, has a secret)</option>
              <option value="public">Public (browser or native app)</option>
            </select>
          </FieldShell>
          <fieldset className="stack-sm" style={{ border: 0, padding: 0, margin: 0 }}>
            <legend className="small" style={{ fontWeight: 600 }}>
              Grant types
            </legend>
            {GRANTS.filter((g) => type === 'confidential' || g.value !== 'client_credentials').map((g) => (
              <label key={g.value} className="row small" style={{ gap: 8 }}>
                <input type="checkbox" checked={grants.includes(g.value)} onChange={() => toggleGrant(g.value)} />
                {g.label}
              </label>
            ))}
            {errors.grant_types && <span className="field-error small">{errors.grant_types}</span>}
          </fieldset>
          <FieldShell label="Redirect URIs" htmlFor="client-redirects" error={errors.redirect_uris} hint="Matched exactly. https, or http on localhost for development.">
            <ChipsInput id="client-redirects" values={redirects} onChange={setRedirects} placeholder="https://app.example.com/callback" invalid={Boolean(errors.redirect_uris)} />
          </FieldShell>
          <FieldShell label="Sign-out redirect URIs" htmlFor="client-logout" error={errors.post_logout_redirect_uris} hint="Optional: where the application may send people after signing out.">
            <ChipsInput id="client-logout" values={logoutRedirects} onChange={setLogoutRedirects} placeholder="https://app.example.com/" />
          </FieldShell>
          <FieldShell label="Scopes" htmlFor="client-scopes" error={errors.scopes} hint="What it may ask for: openid, profile, email, offline_access, api (all of the person's permissions) or permissions like tasks.tasks.read.">
            <ChipsInput id="client-scopes" values={scopes} onChange={setScopes} suggestions={SCOPES} invalid={Boolean(errors.scopes)} />
          </FieldShell>
          <label className="row small" style={{ gap: 8 }}>
            <input type="checkbox" checked={firstParty} onChange={(e) => setFirstParty(e.target.checked)} />
            First-party: your own application; people are not asked for consent
          </label>
          <div className="form-actions">
            <Button onClick={onClose}>Cancel</Button>
            <Button type="submit" variant="primary" busy={busy} icon="key">
              Register
            </Button>
          </div>
        </form>
      )}
    </Dialog>
  )
}

export function OAuthClientsPage() {
  useDocumentTitle('Applications')
  const { meta } = useSession()
  const toast = useToast()
  const res = findResource(meta, 'identity', 'oauth-clients')
  const [items, setItems] = useState<OAuthClient[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [creating, setCreating] = useState(false)
  const [secret, setSecret] = useState<OAuthClient | null>(null)
  const [rotating, setRotating] = useState<OAuthClient | null>(null)
  const [deleting, setDeleting] = useState<OAuthClient | null>(null)
  useEffect(() => {
    api
      .get<{ items: OAuthClient[] }>(`${PATH}?limit=200`)
      .then((p) => setItems(p.items))
      .catch((err: Error) => setError(err.message))
  }, [])
  if (!res) return <EmptyState icon="lock" title="You may not see applications" />
  const issuer = window.location.origin
  return (
    <div className="stack">
      <div className="page-head">
        <div className="titles">
          <h1>Applications</h1>
          <p className="muted">
            Applications that sign people in with NEXUS (OpenID Connect) or call its API (OAuth 2.1). Issuer: <code>{issuer}</code>
          </p>
        </div>
        <div className="actions">
          {res.permissions.create && (
            <Button variant="primary" icon="plus" onClick={() => setCreating(true)}>
              Register application
            </Button>
          )}
        </div>
      </div>
      {error && <Alert>{error}</Alert>}
      <section className="card">
        {!items && !error ? (
          <Loading />
        ) : items && items.length === 0 ? (
          <EmptyState icon="key" title="No applications yet" />
        ) : (
          <div className="table-wrap">
            <table className="table" aria-label="Applications">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Client ID</th>
                  <th scope="col">Type</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items?.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <strong>{c.name}</strong>
                      <div className="small subtle">
                        registered {timeAgo(c.created_at)} · {c.scopes.join(' ')}
                      </div>
                      <div className="small muted hide-sm" style={{ wordBreak: 'break-all' }}>
                        {c.redirect_uris.join(' · ')}
                      </div>
                    </td>
                    <td>
                      <code className="small" style={{ wordBreak: 'break-all' }}>{c.client_id}</code>
                    </td>
                    <td>
                      <span className="row" style={{ gap: 4 }}>
                        <Badge tone={c.client_type === 'public' ? 'info' : 'neutral'}>{c.client_type === 'public' ? 'Public' : 'Confidential'}</Badge>
                        {c.first_party && <Badge tone="primary">First-party</Badge>}
                      </span>
                    </td>
                    <td style={{ textAlign: 'right', whiteSpace: 'nowrap' }}>
                      {c.client_type === 'confidential' && res.permissions.update && (
                        <Button size="sm" variant="ghost" onClick={() => setRotating(c)}>
                          Rotate secret
                        </Button>
                      )}
                      {res.permissions.delete && (
                        <Button size="sm" variant="ghost" onClick={() => setDeleting(c)}>
                          Delete
                        </Button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {creating && <CreateClientDialog onClose={() => setCreating(false)} onCreated={(c) => setItems((all) => [c, ...(all ?? [])])} />}
      {secret && (
        <Dialog title={`New secret for “${secret.name}”`} onClose={() => setSecret(null)}>
          <SecretValues values={{ client_secret: secret.client_secret }} onDone={() => setSecret(null)} />
        </Dialog>
      )}
      {rotating && (
        <ConfirmDialog
          title={`Rotate the secret of “${rotating.name}”?`}
          message="The current secret stops working at once; the application needs the new one."
          confirmLabel="Rotate secret"
          danger
          onClose={() => setRotating(null)}
          onConfirm={async () => {
            const c = await api.post<OAuthClient>(`${PATH}/${rotating.id}/rotate-secret`)
            setRotating(null)
            setSecret(c)
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete “${deleting.name}”?`}
          message="People can no longer sign in to it with NEXUS, and every token it holds stops working at once."
          confirmLabel="Delete application"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(`${PATH}/${deleting.id}`)
            setItems((all) => all?.filter((x) => x.id !== deleting.id) ?? null)
            toast('Application deleted', 'success')
          }}
        />
      )}
    </div>
  )
}
