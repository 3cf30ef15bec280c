// Single sign-on: the org's external identity providers (SAML 2.0 or OpenID Connect) people sign
// in with, and the SAML applications that sign their users in with NEXUS as identity provider.
import { useEffect, useState, type FormEvent, type ReactNode } from 'react'
import { Alert, Badge, Button, ConfirmDialog, Dialog, EmptyState, FieldShell, Loading, Tabs, useToast } from '../components/ui'
import { ApiError, api, etagOf, request } from '../lib/api'
import { useSession } from '../lib/context'
import { useDocumentTitle } from '../lib/hooks'
import { findResource } from '../lib/meta'
import { ChipsInput } from '../records/inputs'

interface RoleRule {
  claim: string
  value: string
  role: string
}

export interface IdentityProvider {
  id: string
  version: number
  slug: string
  name: string
  protocol: 'saml' | 'oidc'
  enabled: boolean
  issuer: string | null
  client_id: string | null
  scopes: string
  saml_entity_id: string | null
  saml_sso_url: string | null
  saml_certificate: string | null
  allow_idp_initiated: boolean
  role_map: RoleRule[]
  default_roles: string[]
  jit_provisioning: boolean
  sync_roles: boolean
}

interface SamlApp {
  id: string
  version: number
  name: string
  entity_id: string
  acs_url: string | null
  enabled: boolean
}

function endpoints(org: string) {
  const base = `${window.location.origin}/api/v1/identity/federation/${org}`
  return {
    spMetadata: `${base}/saml/metadata`,
    acs: `${base}/saml/acs`,
    idpMetadata: `${base}/saml/idp/metadata`,
    sso: `${base}/saml/idp/sso`,
    redirectUri: (slug: string) => `${base}/oidc/${slug || '<slug>'}/callback`,
  }
}

function CopyField({ label, value }: { label: string; value: string }) {
  const toast = useToast()
  const id = `copy-${label.replace(/\W+/g, '-').toLowerCase()}`
  return (
    <FieldShell label={label} htmlFor={id}>
      <div className="row" style={{ gap: 6 }}>
        <input id={id} className="input" readOnly value={value} style={{ flex: 1, fontFamily: 'var(--font-mono, monospace)' }} />
        <Button
          size="sm"
          icon="copy"
          aria-label={`Copy ${label}`}
          onClick={() => void navigator.clipboard?.writeText(value).then(() => toast('Copied', 'success'))}
        />
      </div>
    </FieldShell>
  )
}

function Check({ id, label, checked, onChange, hint }: { id: string; label: string; checked: boolean; onChange: (v: boolean) => void; hint?: ReactNode }) {
  return (
    <label htmlFor={id} className="row small" style={{ gap: 8, alignItems: 'flex-start' }}>
      <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      <span>
        {label}
        {hint && <span className="subtle"> — {hint}</span>}
      </span>
    </label>
  )
}

function fieldErrors(err: unknown, setErrors: (e: Record<string, string>) => void, setFormError: (m: string) => void, known: string[]) {
  if (err instanceof ApiError) {
    setErrors(err.fieldErrors)
    if (!Object.keys(err.fieldErrors).some((k) => known.some((f) => k === f || k.startsWith(f)))) setFormError(err.message)
  } else setFormError((err as Error).message)
}

function ProviderDialog({ idp, org, onClose, onSaved }: { idp: IdentityProvider | null; org: string; onClose: () => void; onSaved: (p: IdentityProvider) => void }) {
  const [protocol, setProtocol] = useState<'saml' | 'oidc'>(idp?.protocol ?? 'oidc')
  const [name, setName] = useState(idp?.name ?? '')
  const [slug, setSlug] = useState(idp?.slug ?? '')
  const [enabled, setEnabled] = useState(idp?.enabled ?? true)
  const [issuer, setIssuer] = useState(idp?.issuer ?? '')
  const [clientId, setClientId] = useState(idp?.client_id ?? '')
  const [clientSecret, setClientSecret] = useState('')
  const [scopes, setScopes] = useState(idp?.scopes ?? 'openid email profile')
  const [metadata, setMetadata] = useState('')
  const [entityId, setEntityId] = useState(idp?.saml_entity_id ?? '')
  const [ssoUrl, setSsoUrl] = useState(idp?.saml_sso_url ?? '')
  const [certificate, setCertificate] = useState(idp?.saml_certificate ?? '')
  const [idpInitiated, setIdpInitiated] = useState(idp?.allow_idp_initiated ?? false)
  const [rules, setRules] = useState<RoleRule[]>(idp?.role_map ?? [])
  const [defaults, setDefaults] = useState<string[]>(idp?.default_roles ?? ['member'])
  const [jit, setJit] = useState(idp?.jit_provisioning ?? true)
  const [sync, setSync] = useState(idp?.sync_roles ?? true)
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const ep = endpoints(org)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const body: Record<string, unknown> = {
      name, slug, enabled, role_map: rules.filter((r) => r.claim && r.value && r.role), default_roles: defaults,
      jit_provisioning: jit, sync_roles: sync,
    }
    if (!idp) body.protocol = protocol
    if (protocol === 'oidc') {
      Object.assign(body, { issuer, client_id: clientId, scopes })
      if (clientSecret) body.client_secret = clientSecret
    } else {
      body.allow_idp_initiated = idpInitiated
      if (metadata.trim()) body.saml_metadata_xml = metadata
      else Object.assign(body, { saml_entity_id: entityId || null, saml_sso_url: ssoUrl || null, saml_certificate: certificate || null })
    }
    setBusy(true)
    setFormError(null)
    try {
      const saved = idp
        ? (await request<IdentityProvider>(`/api/v1/identity/identity-providers/${idp.id}`, { method: 'PATCH', json: body, ifMatch: etagOf(idp) })).data
        : await api.post<IdentityProvider>('/api/v1/identity/identity-providers', body)
      onSaved(saved)
      onClose()
    } catch (err) {
      fieldErrors(err, setErrors, setFormError, Object.keys(body))
      setBusy(false)
    }
  }

  return (
    <Dialog title={idp ? `Edit ${idp.name}` : 'New identity provider'} onClose={onClose} size="lg">
      <form className="stack" onSubmit={submit} noValidate>
        {formError && <Alert>{formError}</Alert>}
        {!idp && (
          <FieldShell label="Protocol" htmlFor="idp-protocol">
            <select id="idp-protocol" className="input" value={protocol} onChange={(e) => setProtocol(e.target.value as 'saml' | 'oidc')}>
              <option value="oidc">OpenID Connect (Okta, Azure AD / Entra ID, Keycloak, Google…)</option>
              <option value="saml">SAML 2.0</option>
            </select>
          </FieldShell>
        )}
        <div className="row" style={{ gap: 12, alignItems: 'flex-start' }}>
          <FieldShell label="Name" htmlFor="idp-name" error={errors.name} required hint="Shown as “Sign in with …”">
            <input id="idp-name" className="input" value={name} onChange={(e) => setName(e.target.value)} />
          </FieldShell>
          <FieldShell label="Short name" htmlFor="idp-slug" error={errors.slug} required hint="Used in URLs, e.g. okta">
            <input id="idp-slug" className="input" value={slug} onChange={(e) => setSlug(e.target.value)} />
          </FieldShell>
        </div>
        {protocol === 'oidc' ? (
          <>
            <FieldShell label="Issuer" htmlFor="idp-issuer" error={errors.issuer} required hint="e.g. https://acme.okta.com or https://login.microsoftonline.com/<tenant>/v2.0">
              <input id="idp-issuer" className="input" value={issuer} onChange={(e) => setIssuer(e.target.value)} />
            </FieldShell>
            <div className="row" style={{ gap: 12, alignItems: 'flex-start' }}>
              <FieldShell label="Client ID" htmlFor="idp-client-id" error={errors.client_id} required>
                <input id="idp-client-id" className="input" value={clientId} onChange={(e) => setClientId(e.target.value)} />
              </FieldShell>
              <FieldShell label="Client secret" htmlFor="idp-client-secret" error={errors.client_secret} hint={idp ? 'Stored encrypted; leave empty to keep it' : 'Stored encrypted; never shown again'}>
                <input id="idp-client-secret" className="input" type="password" autoComplete="new-password" value={clientSecret} onChange={(e) => setClientSecret(e.target.value)} />
              </FieldShell>
            </div>
            <FieldShell label="Scopes" htmlFor="idp-scopes" error={errors.scopes}>
              <input id="idp-scopes" className="input" value={scopes} onChange={(e) => setScopes(e.target.value)} />
            </FieldShell>
            <CopyField label="Redirect URI to register at the provider" value={ep.redirectUri(slug)} />
          </>
        ) : (
          <>
            <CopyField label="NEXUS service-provider metadata URL" value={ep.spMetadata} />
            <CopyField label="Assertion consumer service (ACS) URL" value={ep.acs} />
            <FieldShell label="Identity provider metadata (XML)" htmlFor="idp-metadata" error={errors.saml_metadata_xml} hint="Paste it, or fill in the three fields below">
              <textarea id="idp-metadata" className="input" rows={5} value={metadata} onChange={(e) => setMetadata(e.target.value)} />
            </FieldShell>
            {!metadata.trim() && (
              <>
                <FieldShell label="IdP entity ID" htmlFor="idp-entity" error={errors.saml_entity_id}>
                  <input id="idp-entity" className="input" value={entityId} onChange={(e) => setEntityId(e.target.value)} />
                </FieldShell>
                <FieldShell label="IdP single sign-on URL" htmlFor="idp-sso" error={errors.saml_sso_url}>
                  <input id="idp-sso" className="input" value={ssoUrl} onChange={(e) => setSsoUrl(e.target.value)} />
                </FieldShell>
                <FieldShell label="IdP signing certificate" htmlFor="idp-cert" error={errors.saml_certificate} hint="PEM or base64">
                  <textarea id="idp-cert" className="input" rows={3} value={certificate} onChange={(e) => setCertificate(e.target.value)} />
                </FieldShell>
              </>
            )}
            <Check id="idp-initiated" label="Accept IdP-initiated sign-in" checked={idpInitiated} onChange={setIdpInitiated} hint="unsolicited responses from the IdP's app dashboard" />
          </>
        )}
        <fieldset className="stack-sm" style={{ border: 0, padding: 0 }}>
          <legend className="small">Role mapping</legend>
          <p className="muted small">A person whose claim (OIDC) or attribute (SAML) has the value gets the role.</p>
          {rules.map((r, i) => (
            <div key={i} className="row" style={{ gap: 6 }}>
              <input className="input" aria-label={`Claim ${i + 1}`} placeholder="groups" value={r.claim} onChange={(e) => setRules(rules.map((x, j) => (j === i ? { ...x, claim: e.target.value } : x)))} />
              <input className="input" aria-label={`Value ${i + 1}`} placeholder="nexus-admins" value={r.value} onChange={(e) => setRules(rules.map((x, j) => (j === i ? { ...x, value: e.target.value } : x)))} />
              <input className="input" aria-label={`Role ${i + 1}`} placeholder="admin" value={r.role} onChange={(e) => setRules(rules.map((x, j) => (j === i ? { ...x, role: e.target.value } : x)))} />
              <Button size="sm" variant="ghost" icon="trash" aria-label={`Remove rule ${i + 1}`} onClick={() => setRules(rules.filter((_, j) => j !== i))} />
            </div>
          ))}
          {Object.entries(errors).filter(([k]) => k.startsWith('role_map')).map(([k, v]) => (
            <p key={k} className="small" role="alert" style={{ color: 'var(--danger)' }}>
              Rule {Number(k.split('.')[1] ?? k.split('/')[1] ?? 0) + 1}: {v}
            </p>
          ))}
          <Button size="sm" icon="plus" onClick={() => setRules([...rules, { claim: 'groups', value: '', role: '' }])} style={{ alignSelf: 'flex-start' }}>
            Add rule
          </Button>
        </fieldset>
        <FieldShell label="Roles everyone from this provider gets" htmlFor="idp-default-roles" error={errors.default_roles}>
          <ChipsInput id="idp-default-roles" values={defaults} onChange={setDefaults} suggestions={['member', 'viewer', 'admin']} placeholder="member" />
        </FieldShell>
        <Check id="idp-jit" label="Create accounts on first sign-in" checked={jit} onChange={setJit} />
        <Check id="idp-sync" label="Re-apply the role mapping on every sign-in" checked={sync} onChange={setSync} />
        <Check id="idp-enabled" label="Enabled" checked={enabled} onChange={setEnabled} />
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={busy}>
            {idp ? 'Save' : 'Add provider'}
          </Button>
        </div>
      </form>
    </Dialog>
  )
}

function ProvidersTab({ org }: { org: string }) {
  const { meta } = useSession()
  const toast = useToast()
  const res = findResource(meta, 'identity', 'identity-providers')
  const [items, setItems] = useState<IdentityProvider[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [editing, setEditing] = useState<IdentityProvider | 'new' | null>(null)
  const [deleting, setDeleting] = useState<IdentityProvider | null>(null)
  useEffect(() => {
    api
      .get<{ items: IdentityProvider[] }>('/api/v1/identity/identity-providers?limit=200&sort=name')
      .then((p) => setItems(p.items))
      .catch((err: Error) => setError(err.message))
  }, [])
  if (!res) return <EmptyState icon="lock" title="You may not see identity providers" />
  return (
    <div className="stack">
      <div className="row">
        <p className="muted" style={{ flex: 1 }}>
          People of this organisation can sign in with these providers; the sign-in page shows a button for each.
        </p>
        {res.permissions.create && (
          <Button variant="primary" icon="plus" onClick={() => setEditing('new')}>
            New identity provider
          </Button>
        )}
      </div>
      {error && <Alert>{error}</Alert>}
      {!items && !error && <Loading />}
      {items && items.length === 0 && <EmptyState icon="shield" title="No identity providers yet" />}
      {items && items.length > 0 && (
        <div className="table-wrap">
          <table className="table" aria-label="Identity providers">
            <thead>
              <tr>
                <th>Name</th>
                <th>Protocol</th>
                <th>Issuer / entity ID</th>
                <th>Status</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {items.map((p) => (
                <tr key={p.id}>
                  <td>
                    {p.name} <span className="subtle small">({p.slug})</span>
                  </td>
                  <td>
                    <Badge tone="info">{p.protocol === 'oidc' ? 'OpenID Connect' : 'SAML 2.0'}</Badge>
                  </td>
                  <td className="small">{p.protocol === 'oidc' ? p.issuer : p.saml_entity_id}</td>
                  <td>{p.enabled ? <Badge tone="success">enabled</Badge> : <Badge>disabled</Badge>}</td>
                  <td style={{ textAlign: 'right' }}>
                    {res.permissions.update && (
                      <Button size="sm" variant="ghost" icon="edit" onClick={() => setEditing(p)} aria-label={`Edit ${p.name}`}>
                        Edit
                      </Button>
                    )}
                    {res.permissions.delete && <Button size="sm" variant="ghost" icon="trash" onClick={() => setDeleting(p)} aria-label={`Delete ${p.name}`} />}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && (
        <ProviderDialog
          idp={editing === 'new' ? null : editing}
          org={org}
          onClose={() => setEditing(null)}
          onSaved={(saved) => {
            setItems((all) => (all?.some((x) => x.id === saved.id) ? all.map((x) => (x.id === saved.id ? saved : x)) : [...(all ?? []), saved]))
            toast(`Saved ${saved.name}`, 'success')
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          message="People can no longer sign in with it. Their NEXUS accounts stay."
          confirmLabel="Delete"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(`/api/v1/identity/identity-providers/${deleting.id}`, etagOf(deleting))
            setItems((all) => all?.filter((x) => x.id !== deleting.id) ?? null)
            toast('Identity provider deleted', 'success')
          }}
        />
      )}
    </div>
  )
}

function SamlAppDialog({ onClose, onSaved }: { onClose: () => void; onSaved: (a: SamlApp) => void }) {
  const [name, setName] = useState('')
  const [metadata, setMetadata] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent) => {
    e.preventDefault()
    setBusy(true)
    setFormError(null)
    try {
      onSaved(await api.post<SamlApp>('/api/v1/identity/saml-sps', { name, metadata_xml: metadata }))
      onClose()
    } catch (err) {
      fieldErrors(err, setErrors, setFormError, ['name', 'metadata_xml'])
      setBusy(false)
    }
  }
  return (
    <Dialog title="Register a SAML application" onClose={onClose} size="lg">
      <form className="stack" onSubmit={submit} noValidate>
        {formError && <Alert>{formError}</Alert>}
        <FieldShell label="Name" htmlFor="sp-name" error={errors.name} required>
          <input id="sp-name" className="input" value={name} onChange={(e) => setName(e.target.value)} />
        </FieldShell>
        <FieldShell label="Service provider metadata (XML)" htmlFor="sp-metadata" error={errors.metadata_xml} required hint="Its entity ID and assertion consumer service URL are read from it">
          <textarea id="sp-metadata" className="input" rows={8} value={metadata} onChange={(e) => setMetadata(e.target.value)} />
        </FieldShell>
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={busy}>
            Register
          </Button>
        </div>
      </form>
    </Dialog>
  )
}

function SamlTab({ org }: { org: string }) {
  const { meta } = useSession()
  const toast = useToast()
  const res = findResource(meta, 'identity', 'saml-sps')
  const ep = endpoints(org)
  const [items, setItems] = useState<SamlApp[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [adding, setAdding] = useState(false)
  const [deleting, setDeleting] = useState<SamlApp | null>(null)
  useEffect(() => {
    api
      .get<{ items: SamlApp[] }>('/api/v1/identity/saml-sps?limit=200&sort=name')
      .then((p) => setItems(p.items))
      .catch((err: Error) => setError(err.message))
  }, [])
  const toggle = async (a: SamlApp) => {
    try {
      const saved = (await request<SamlApp>(`/api/v1/identity/saml-sps/${a.id}`, { method: 'PATCH', json: { enabled: !a.enabled }, ifMatch: etagOf(a) })).data
      setItems((all) => all?.map((x) => (x.id === saved.id ? saved : x)) ?? null)
    } catch (err) {
      toast((err as Error).message, 'error')
    }
  }
  return (
    <div className="stack">
      <section className="card card-pad stack-sm" aria-labelledby="saml-nexus">
        <h2 id="saml-nexus" style={{ fontSize: 'var(--text-lg)' }}>
          NEXUS as SAML identity provider
        </h2>
        <p className="muted small">Give these to the application you connect (or give it the metadata URL alone).</p>
        <CopyField label="IdP metadata URL" value={ep.idpMetadata} />
        <CopyField label="Single sign-on URL" value={ep.sso} />
        <h2 style={{ fontSize: 'var(--text-lg)' }}>NEXUS as SAML service provider</h2>
        <CopyField label="SP metadata URL (entity ID)" value={ep.spMetadata} />
        <CopyField label="ACS URL" value={ep.acs} />
      </section>
      {!res ? (
        <EmptyState icon="lock" title="You may not see SAML applications" />
      ) : (
        <>
          <div className="row">
            <h2 style={{ fontSize: 'var(--text-lg)', flex: 1 }}>Applications</h2>
            {res.permissions.create && (
              <Button variant="primary" icon="plus" onClick={() => setAdding(true)}>
                Register application
              </Button>
            )}
          </div>
          {error && <Alert>{error}</Alert>}
          {!items && !error && <Loading />}
          {items && items.length === 0 && <EmptyState icon="box" title="No SAML applications yet" />}
          {items && items.length > 0 && (
            <div className="table-wrap">
              <table className="table" aria-label="SAML applications">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Entity ID</th>
                    <th>ACS URL</th>
                    <th>Status</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {items.map((a) => (
                    <tr key={a.id}>
                      <td>{a.name}</td>
                      <td className="small">{a.entity_id}</td>
                      <td className="small">{a.acs_url}</td>
                      <td>{a.enabled ? <Badge tone="success">enabled</Badge> : <Badge>disabled</Badge>}</td>
                      <td style={{ textAlign: 'right' }}>
                        {res.permissions.update && (
                          <Button size="sm" variant="ghost" onClick={() => void toggle(a)}>
                            {a.enabled ? 'Disable' : 'Enable'}
                          </Button>
                        )}
                        {res.permissions.delete && <Button size="sm" variant="ghost" icon="trash" onClick={() => setDeleting(a)} aria-label={`Delete ${a.name}`} />}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
      {adding && <SamlAppDialog onClose={() => setAdding(false)} onSaved={(a) => { setItems((all) => [...(all ?? []), a]); toast(`Registered ${a.name}`, 'success') }} />}
      {deleting && (
        <ConfirmDialog
          title={`Remove ${deleting.name}?`}
          message="Its users can no longer sign in to it with NEXUS."
          confirmLabel="Remove"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.del(`/api/v1/identity/saml-sps/${deleting.id}`, etagOf(deleting))
            setItems((all) => all?.filter((x) => x.id !== deleting.id) ?? null)
            toast('Application removed', 'success')
          }}
        />
      )}
    </div>
  )
}

export function FederationPage() {
  useDocumentTitle('Single sign-on')
  const { me } = useSession()
  const [tab, setTab] = useState('providers')
  const org = me.org?.slug ?? ''
  return (
    <div className="stack">
      <div className="page-head">
        <div className="titles">
          <h1>Single sign-on</h1>
          <p className="muted">Sign in with your company's identity provider, and sign in to other applications with NEXUS.</p>
        </div>
      </div>
      <Tabs
        label="Single sign-on"
        current={tab}
        onChange={setTab}
        tabs={[
          { id: 'providers', label: 'Identity providers', icon: 'shield' },
          { id: 'saml', label: 'SAML', icon: 'link' },
        ]}
      />
      <div role="tabpanel" aria-labelledby={`tab-${tab}`}>
        {tab === 'providers' ? <ProvidersTab org={org} /> : <SamlTab org={org} />}
      </div>
    </div>
  )
}
