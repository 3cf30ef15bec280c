import { fireEvent, render, screen, waitFor } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import { json, mockFetch, problem } from '../test/http'
import { ME } from '../test/session'
import { SignIn } from './SignIn'

function fill(email: string, password: string) {
  fireEvent.change(screen.getByLabelText('Email'), { target: { value: email } })
  fireEvent.change(screen.getByLabelText('Password'), { target: { value: password } })
  fireEvent.click(screen.getByRole('button', { name: 'Sign in' }))
}

const CHALLENGE = { mfa_required: true, mfa_token: 'nxm_T', methods: ['totp', 'recovery_code'], expires_in: 300 }

describe('SignIn with a second factor', () => {
  it('asks for the code after the password and finishes with it', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/auth/session') return json(200, CHALLENGE)
      if (c.path === '/api/v1/auth/session/mfa') return json(200, { user: ME })
      return undefined
    })
    const done = vi.fn()
    render(<SignIn onSignedIn={done} />)
    fill('admin@example.com', 'pw-123456')
    const code = await screen.findByLabelText('Authentication code')
    fireEvent.change(code, { target: { value: '123 456' } })
    fireEvent.click(screen.getByRole('button', { name: 'Verify' }))
    await waitFor(() => expect(done).toHaveBeenCalledWith(ME))
    expect(calls[1]!.body).toEqual({ mfa_token: 'nxm_T', otp: '123456' })
  })

  it('takes a recovery code instead, and shows a wrong code’s message', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/auth/session') return json(200, CHALLENGE)
      if (c.path === '/api/v1/auth/session/mfa') return problem(400, 'The code is wrong, expired or already used. 4 tries left.')
      return undefined
    })
    render(<SignIn onSignedIn={() => {}} />)
    fill('admin@example.com', 'pw-123456')
    fireEvent.click(await screen.findByRole('button', { name: 'Use a recovery code' }))
    fireEvent.change(screen.getByLabelText('Recovery code'), { target: { value: 'abcde-fghij' } })
    fireEvent.click(screen.getByRole('button', { name: 'Verify' }))
    expect((await screen.findByRole('alert')).textContent).toContain('4 tries left')
    expect(calls[1]!.body).toEqual({ mfa_token: 'nxm_T', recovery_code: 'abcde-fghij' })
  })

  it('shows the new recovery codes once when the org forced an enrolment', async () => {
    mockFetch((c) => {
      if (c.path === '/api/v1/auth/session') return json(200, { ...CHALLENGE, mfa_required: undefined, mfa_enrollment_required: true, methods: ['totp'] })
      if (c.path === '/api/v1/auth/mfa/totp') return json(200, { factor_id: 'F', secret: 'ABC', otpauth_uri: 'otpauth://totp/x', qr_svg: 'data:image/svg+xml,<svg/>' })
      if (c.path === '/api/v1/auth/session/mfa') return json(200, { user: ME, recovery_codes: ['aaaaa-bbbbb', 'ccccc-ddddd'] })
      return undefined
    })
    const done = vi.fn()
    render(<SignIn onSignedIn={done} />)
    fill('admin@example.com', 'pw-123456')
    expect(await screen.findByRole('img', { name: /QR code/ })).toBeTruthy()
    fireEvent.change(screen.getByLabelText('Authentication code'), { target: { value: '654321' } })
    fireEvent.click(screen.getByRole('button', { name: 'Verify' }))
    expect((await screen.findByTestId('recovery-codes')).textContent).toContain('aaaaa-bbbbb')
    expect(done).not.toHaveBeenCalled()
    fireEvent.click(screen.getByRole('button', { name: 'Continue' }))
    expect(done).toHaveBeenCalledWith(ME)
  })

  it('mails a reset link from "forgot your password"', async () => {
    const calls = mockFetch((c) => (c.path === '/api/v1/auth/password-reset' ? json(202, { detail: 'ok' }) : undefined))
    render(<SignIn onSignedIn={() => {}} />)
    fireEvent.click(screen.getByRole('button', { name: 'Forgot your password?' }))
    fireEvent.change(screen.getByLabelText('Email'), { target: { value: 'ada@example.com' } })
    fireEvent.click(screen.getByRole('button', { name: 'Send the link' }))
    expect(await screen.findByText(/a reset link is on its way/)).toBeTruthy()
    expect(calls[0]!.body).toEqual({ email: 'ada@example.com' })
  })
})
