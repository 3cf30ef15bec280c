// The second step of signing in (a TOTP code, a recovery code or a passkey), passkey sign-in
// without a user name, step-up for sensitive actions, and password reset.
import { ApiError, request } from './api'
import type { Me } from './auth'
import { getPasskey } from './webauthn'

export interface MfaChallenge {
  mfa_token: string
  methods: string[]
  expires_in: number
  mfa_required?: boolean
  mfa_enrollment_required?: boolean
}

/** Thrown by signIn() when the password was right and a second factor is due. */
export class MfaRequired extends Error {
  readonly challenge: MfaChallenge
  constructor(challenge: MfaChallenge) {
    super('A second factor is required.')
    this.name = 'MfaRequired'
    this.challenge = challenge
  }
}

export interface SignedIn {
  user: Me
  recovery_codes?: string[]
}

export type SecondFactor = { otp: string } | { recovery_code: string } | { credential: Record<string, unknown> }

export async function finishMfa(mfaToken: string, factor: SecondFactor): Promise<SignedIn> {
  const res = await request<SignedIn>('/api/v1/auth/session/mfa', { method: 'POST', json: { mfa_token: mfaToken, ...factor }, noRefresh: true })
  return res.data
}

export async function mfaPasskeyAssertion(mfaToken: string): Promise<Record<string, unknown>> {
  const res = await request<{ options: Record<string, unknown> }>('/api/v1/auth/mfa/passkey-options', {
    method: 'POST',
    json: { mfa_token: mfaToken },
    noRefresh: true,
  })
  return getPasskey(res.data.options)
}

export interface TotpEnrolment {
  factor_id: string
  secret: string
  otpauth_uri: string
  qr_svg: string
}

/** During a sign-in the org forces to enrol: a seed and QR code for the authenticator app. */
export async function startEnrolmentAtSignIn(mfaToken: string): Promise<TotpEnrolment> {
  return (await request<TotpEnrolment>('/api/v1/auth/mfa/totp', { method: 'POST', json: { mfa_token: mfaToken }, noRefresh: true })).data
}

export async function signInWithPasskey(): Promise<SignedIn> {
  const opts = await request<{ challenge_token: string; options: Record<string, unknown> }>('/api/v1/auth/passkey/options', {
    method: 'POST',
    json: {},
    noRefresh: true,
  })
  const credential = await getPasskey(opts.data.options)
  const res = await request<SignedIn>('/api/v1/auth/session/passkey', {
    method: 'POST',
    json: { challenge_token: opts.data.challenge_token, credential },
    noRefresh: true,
  })
  return res.data
}

export function isStepUp(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403 && String(err.problem.type ?? '').endsWith('/step-up-required')
}

export async function stepUp(proof: { password: string } | { otp: string } | { recovery_code: string } | 'passkey'): Promise<void> {
  if (proof === 'passkey') {
    const opts = await request<{ challenge_token: string; options: Record<string, unknown> }>('/api/v1/auth/step-up/passkey-options', {
      method: 'POST',
      json: {},
    })
    const credential = await getPasskey(opts.data.options)
    await request('/api/v1/auth/step-up', { method: 'POST', json: { challenge_token: opts.data.challenge_token, credential } })
    return
  }
  await request('/api/v1/auth/step-up', { method: 'POST', json: proof })
}

export async function requestPasswordReset(email: string, org?: string): Promise<void> {
  const body: Record<string, string> = { email: email.trim() }
  if (org?.trim()) body.org = org.trim()
  await request('/api/v1/auth/password-reset', { method: 'POST', json: body, noRefresh: true })
}

export async function confirmPasswordReset(token: string, password: string): Promise<void> {
  await request('/api/v1/auth/password-reset/confirm', { method: 'POST', json: { token, password }, noRefresh: true })
}
