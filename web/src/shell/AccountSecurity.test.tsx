import { fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { json, mockFetch } from '../test/http'
import { WithSession } from '../test/session'
import AccountSecurity, { deviceName } from './AccountSecurity'

const SECURITY = {
  mfa_enabled: false,
  factors: [],
  recovery_codes_left: 0,
  policy: { require_mfa: true, password_min_length: 12, password_history: 5, step_up_max_age: 600 },
  auth_time: 1,
}
const SESSIONS = {
  items: [
    { id: 'S1', created_at: '2026-01-01T00:00:00Z', last_seen_at: null, client_addr: '10.0.0.1', user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0', amr: ['pwd'], current: true },
    { id: 'S2', created_at: '2026-01-01T00:00:00Z', last_seen_at: null, client_addr: '10.0.0.2', user_agent: 'Mozilla/5.0 (iPhone) Safari/605.1', amr: ['pwd', 'otp', 'mfa'], current: false },
  ],
}
const STEP_UP = {
  status: 403,
  body: { type: 'https://nexus.dev/problems/step-up-required', title: 'Recent authentication required', status: 403, detail: 'Confirm it is you.' },
  headers: { 'content-type': 'application/problem+json' },
}

describe('AccountSecurity', () => {
  it('lists sessions, warns about the policy, and steps up before adding an authenticator', async () => {
    let stepped = false
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/identity/account/security') return json(200, SECURITY)
      if (c.path === '/api/v1/identity/account/sessions') return json(200, SESSIONS)
      if (c.path === '/api/v1/identity/account/sign-ins') return json(200, { items: [], next_cursor: null })
      if (c.path === '/api/v1/auth/step-up') {
        stepped = true
        return json(200, { amr: ['pwd'] })
      }
      if (c.path === '/api/v1/identity/account/totp')
        return stepped ? json(201, { factor_id: 'F', secret: 'SEED', otpauth_uri: 'otpauth://totp/x', qr_svg: 'data:image/svg+xml,<svg/>' }) : STEP_UP
      return undefined
    })
    render(
      <WithSession>
        <AccountSecurity />
      </WithSession>,
    )
    const table = await screen.findByRole('table', { name: 'Active sessions' })
    expect(within(table).getByText('Chrome on Linux')).toBeTruthy()
    expect(within(table).getByText('Safari on iOS')).toBeTruthy()
    expect(screen.getByText(/requires two-step sign-in/)).toBeTruthy()
    fireEvent.click(screen.getByRole('button', { name: 'Add authenticator app' }))
    const dialog = await screen.findByRole('dialog', { name: 'Confirm it’s you' })
    fireEvent.change(within(dialog).getByLabelText('Password'), { target: { value: 'my password' } })
    fireEvent.click(within(dialog).getByRole('button', { name: 'Confirm' }))
    expect(await screen.findByRole('dialog', { name: 'Add an authenticator app' })).toBeTruthy()
    await waitFor(() => expect(calls.filter((c) => c.path === '/api/v1/identity/account/totp')).toHaveLength(2))
    expect(calls.find((c) => c.path === '/api/v1/auth/step-up')!.body).toEqual({ password: 'my password' })
  })

  it('names devices from their user agents', () => {
    expect(deviceName('Mozilla/5.0 (Windows NT 10.0) AppleWebKit Chrome/140 Safari/537 Edg/140')).toBe('Edge on Windows')
    expect(deviceName('curl/8.0')).toBe('curl')
    expect(deviceName(null)).toBe('Unknown device')
  })
})
