import { fireEvent, render, screen, waitFor } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { ToastProvider } from '../components/ui'
import { SessionContext, type Session } from '../lib/context'
import type { Meta } from '../lib/meta'
import { json, mockFetch, problem } from '../test/http'
import { META } from '../test/meta.fixture'
import { ME } from '../test/session'
import { FederationPage } from './Federation'

function metaWithFederation(): Meta {
  const meta = structuredClone(META) as Meta
  const identity = meta.apps.find((a) => a.name === 'identity')!
  const roles = identity.resources.find((r) => r.name === 'roles')!
  identity.resources.push({ ...roles, name: 'identity-providers', path: '/api/v1/identity/identity-providers' })
  identity.resources.push({ ...roles, name: 'saml-sps', path: '/api/v1/identity/saml-sps' })
  return meta
}

function renderPage() {
  const session: Session = { me: ME, meta: metaWithFederation(), reloadMeta: async () => {}, signOut: async () => {} }
  render(
    <ToastProvider>
      <SessionContext.Provider value={session}>
        <FederationPage />
      </SessionContext.Provider>
    </ToastProvider>,
  )
}

const OKTA = {
  id: 'idp1', version: 1, slug: 'okta', name: 'Okta', protocol: 'saml', enabled: true, issuer: null, client_id: null,
  scopes: 'openid email profile', saml_entity_id: 'http://www.okta.com/exk1', saml_sso_url: 'https://acme.okta.com/sso',
  saml_certificate: 'x', allow_idp_initiated: false, role_map: [], default_roles: ['member'], jit_provisioning: true, sync_roles: true,
}

describe('Single sign-on admin', () => {
  it('lists providers and adds an OpenID Connect provider with an encrypted secret', async () => {
    const calls = mockFetch((c) => {
      if (c.method === 'GET' && c.path === '/api/v1/identity/identity-providers') return json(200, { items: [OKTA], next_cursor: null })
      if (c.method === 'POST' && c.path === '/api/v1/identity/identity-providers') {
        const body = c.body as Record<string, unknown>
        if (!body.issuer) return problem(422, 'Invalid', [{ pointer: '/issuer', detail: 'required for OpenID Connect' }])
        return json(201, { ...OKTA, id: 'idp2', slug: body.slug, name: body.name, protocol: 'oidc', issuer: body.issuer })
      }
      return undefined
    })
    renderPage()
    expect(await screen.findByText('http://www.okta.com/exk1')).toBeTruthy()
    fireEvent.click(screen.getByRole('button', { name: 'New identity provider' }))
    fireEvent.change(screen.getByLabelText(/^Name/), { target: { value: 'Acme SSO' } })
    fireEvent.change(screen.getByLabelText(/^Short name/), { target: { value: 'acme' } })
    expect((screen.getByLabelText('Redirect URI to register at the provider') as HTMLInputElement).value).toBe(
      `${window.location.origin}/api/v1/identity/federation/default/oidc/acme/callback`,
    )
    fireEvent.click(screen.getByRole('button', { name: 'Add provider' }))
    expect(await screen.findByText('required for OpenID Connect')).toBeTruthy()
    fireEvent.change(screen.getByLabelText(/^Issuer/), { target: { value: 'https://acme.okta.com' } })
    fireEvent.change(screen.getByLabelText(/^Client ID/), { target: { value: 'cid' } })
    fireEvent.change(screen.getByLabelText(/^Client secret/), { target: { value: 'shh' } })
    fireEvent.click(screen.getByRole('button', { name: 'Add rule' }))
    fireEvent.change(screen.getByLabelText('Value 1'), { target: { value: 'it-admins' } })
    fireEvent.change(screen.getByLabelText('Role 1'), { target: { value: 'admin' } })
    fireEvent.click(screen.getByRole('button', { name: 'Add provider' }))
    await waitFor(() => expect(screen.getByText('https://acme.okta.com')).toBeTruthy())
    const post = calls.filter((c) => c.method === 'POST').at(-1)!
    expect(post.body).toMatchObject({
      protocol: 'oidc', slug: 'acme', issuer: 'https://acme.okta.com', client_id: 'cid', client_secret: 'shh',
      role_map: [{ claim: 'groups', value: 'it-admins', role: 'admin' }],
    })
  })

  it('shows the SAML endpoints and registers an application from its metadata', async () => {
    const calls = mockFetch((c) => {
      if (c.method === 'GET' && c.path === '/api/v1/identity/identity-providers') return json(200, { items: [], next_cursor: null })
      if (c.method === 'GET' && c.path === '/api/v1/identity/saml-sps') return json(200, { items: [], next_cursor: null })
      if (c.method === 'POST' && c.path === '/api/v1/identity/saml-sps')
        return json(201, { id: 'sp1', version: 1, name: 'Wiki', entity_id: 'https://wiki.test/md', acs_url: 'https://wiki.test/acs', enabled: true })
      return undefined
    })
    renderPage()
    fireEvent.click(await screen.findByRole('tab', { name: /SAML/ }))
    expect((screen.getByLabelText('IdP metadata URL') as HTMLInputElement).value).toBe(
      `${window.location.origin}/api/v1/identity/federation/default/saml/idp/metadata`,
    )
    expect((screen.getByLabelText('SP metadata URL (entity ID)') as HTMLInputElement).value).toContain('/saml/metadata')
    fireEvent.click(await screen.findByRole('button', { name: 'Register application' }))
    fireEvent.change(screen.getByLabelText(/^Name/), { target: { value: 'Wiki' } })
    fireEvent.change(screen.getByLabelText(/^Service provider metadata/), { target: { value: '<md:EntityDescriptor/>' } })
    fireEvent.click(screen.getByRole('button', { name: 'Register' }))
    expect(await screen.findByText('https://wiki.test/acs')).toBeTruthy()
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ name: 'Wiki', metadata_xml: '<md:EntityDescriptor/>' })
  })
})
