import { render, screen, waitFor } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import { json, mockFetch } from '../test/http'
import { SignIn, continuation } from './SignIn'

afterEach(() => window.history.replaceState(null, '', '/'))

describe('Sign in with an external identity provider', () => {
  it("shows a button for each of the org's providers, carrying where to go next", async () => {
    window.history.replaceState(null, '', '/signin?org=acme&next=%2Fapi%2Fv1%2Fidentity%2Ffederation%2Facme%2Fsaml%2Fidp%2Fresume%2Fabc')
    const calls = mockFetch((c) =>
      c.path === '/api/v1/identity/federation/acme/providers'
        ? json(200, { items: [{ slug: 'okta', name: 'Okta', protocol: 'saml', login_url: '/api/v1/identity/federation/acme/saml/okta/login' }] })
        : undefined,
    )
    render(<SignIn onSignedIn={() => {}} />)
    const link = await screen.findByRole('link', { name: 'Sign in with Okta' })
    expect(link.getAttribute('href')).toBe(
      '/api/v1/identity/federation/acme/saml/okta/login?next=%2Fapi%2Fv1%2Fidentity%2Ffederation%2Facme%2Fsaml%2Fidp%2Fresume%2Fabc',
    )
    expect(calls.map((c) => c.path)).toEqual(['/api/v1/identity/federation/acme/providers'])
    expect((screen.getByLabelText('Organisation') as HTMLInputElement).value).toBe('acme')
  })

  it('asks for nothing and shows no buttons when the org is unknown', async () => {
    const calls = mockFetch(() => json(404, {}))
    render(<SignIn onSignedIn={() => {}} />)
    await waitFor(() => expect(screen.getByRole('button', { name: 'Sign in' })).toBeTruthy())
    expect(calls).toEqual([])
    expect(screen.queryByRole('group', { name: 'Other ways to sign in' })).toBeNull()
  })

  it('continues only to paths on this site', () => {
    expect(continuation('?next=%2Fapps%2Fnotes')).toBe('/apps/notes')
    expect(continuation('?next=https%3A%2F%2Fevil.test')).toBeNull()
    expect(continuation('?next=%2F%2Fevil.test')).toBeNull()
    expect(continuation('?next=%2F%5Cevil.test')).toBeNull()
    expect(continuation('')).toBeNull()
  })
})
