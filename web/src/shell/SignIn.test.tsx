import { fireEvent, render, screen, waitFor } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import { authMode } from '../lib/api'
import { json, mockFetch, problem } from '../test/http'
import { ME } from '../test/session'
import { SignIn } from './SignIn'

function fill(email: string, password: string) {
  fireEvent.change(screen.getByLabelText('Email'), { target: { value: email } })
  fireEvent.change(screen.getByLabelText('Password'), { target: { value: password } })
  fireEvent.click(screen.getByRole('button', { name: 'Sign in' }))
}

describe('SignIn', () => {
  it('signs in with the cookie session endpoint', async () => {
    const calls = mockFetch((c) => (c.path === '/api/v1/auth/session' ? json(200, { user: ME }) : undefined))
    const done = vi.fn()
    render(<SignIn onSignedIn={done} />)
    fill('admin@example.com', 'pw-123456')
    await waitFor(() => expect(done).toHaveBeenCalledWith(ME))
    expect(calls[0]!.body).toEqual({ username: 'admin@example.com', password: 'pw-123456' })
    expect(authMode()).toBe('cookie')
  })

  it('shows the server message for a wrong password', async () => {
    mockFetch(() => problem(400, 'Wrong email or password.'))
    render(<SignIn onSignedIn={() => {}} />)
    fill('admin@example.com', 'nope')
    expect((await screen.findByRole('alert')).textContent).toContain('Wrong email or password.')
  })

  it('falls back to the token endpoint on a server without browser sessions', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/auth/token') return json(200, { access_token: 'A', refresh_token: 'R' })
      if (c.path === '/api/v1/identity/me') return json(200, ME)
      return undefined
    })
    const done = vi.fn()
    render(<SignIn onSignedIn={done} />)
    fill('admin@example.com', 'pw-123456')
    await waitFor(() => expect(done).toHaveBeenCalled())
    expect(calls.map((c) => c.path)).toEqual(['/api/v1/auth/session', '/api/v1/auth/token', '/api/v1/identity/me'])
    expect(calls[2]!.headers.authorization).toBe('Bearer A')
    expect(authMode()).toBe('bearer')
  })

  it('asks for the organisation when the email is in several', async () => {
    mockFetch(() => problem(400, 'This email belongs to several organisations; pass org=<slug>.'))
    render(<SignIn onSignedIn={() => {}} />)
    fill('a@b.co', 'pw-123456')
    expect(await screen.findByLabelText('Organisation')).toBeTruthy()
  })
})
