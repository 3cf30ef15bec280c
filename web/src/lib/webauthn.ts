// WebAuthn in the browser: the server sends options as JSON (base64url for binary fields, as
// py_webauthn's options_to_json writes them); these helpers turn them into what
// navigator.credentials wants and the resulting credential back into JSON for the server.

type Json = Record<string, unknown>

export function b64urlToBytes(s: string): ArrayBuffer {
  const pad = '='.repeat((4 - (s.length % 4)) % 4)
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + pad)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out.buffer
}

export function bytesToB64url(buf: ArrayBuffer | ArrayBufferView): string {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export function passkeysSupported(): boolean {
  return typeof window !== 'undefined' && typeof window.PublicKeyCredential === 'function' && Boolean(navigator.credentials)
}

function descriptors(list: unknown): PublicKeyCredentialDescriptor[] | undefined {
  if (!Array.isArray(list)) return undefined
  return list.map((d: Json) => ({ type: 'public-key', id: b64urlToBytes(String(d.id)), transports: d.transports as AuthenticatorTransport[] | undefined }))
}

export function creationOptions(o: Json): PublicKeyCredentialCreationOptions {
  const user = o.user as Json
  return {
    ...(o as unknown as PublicKeyCredentialCreationOptions),
    challenge: b64urlToBytes(String(o.challenge)),
    user: { ...(user as unknown as PublicKeyCredentialUserEntity), id: b64urlToBytes(String(user.id)) },
    excludeCredentials: descriptors(o.excludeCredentials),
  }
}

export function requestOptions(o: Json): PublicKeyCredentialRequestOptions {
  return {
    ...(o as unknown as PublicKeyCredentialRequestOptions),
    challenge: b64urlToBytes(String(o.challenge)),
    allowCredentials: descriptors(o.allowCredentials),
  }
}

export function credentialToJson(cred: PublicKeyCredential): Json {
  const r = cred.response as AuthenticatorAttestationResponse & AuthenticatorAssertionResponse
  const response: Json = { clientDataJSON: bytesToB64url(r.clientDataJSON) }
  if ('attestationObject' in r && r.attestationObject) {
    response.attestationObject = bytesToB64url(r.attestationObject)
    response.transports = typeof r.getTransports === 'function' ? r.getTransports() : []
  } else {
    response.authenticatorData = bytesToB64url(r.authenticatorData)
    response.signature = bytesToB64url(r.signature)
    if (r.userHandle) response.userHandle = bytesToB64url(r.userHandle)
  }
  return {
    id: cred.id,
    rawId: bytesToB64url(cred.rawId),
    type: cred.type,
    response,
    clientExtensionResults: cred.getClientExtensionResults?.() ?? {},
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
  }
}

/** navigator.credentials.create with the server's options; the credential as JSON. */
export async function createPasskey(options: Json): Promise<Json> {
  const cred = (await navigator.credentials.create({ publicKey: creationOptions(options) })) as PublicKeyCredential | null
  if (!cred) throw new Error('No passkey was created.')
  return credentialToJson(cred)
}

/** navigator.credentials.get with the server's options; the assertion as JSON. */
export async function getPasskey(options: Json): Promise<Json> {
  const cred = (await navigator.credentials.get({ publicKey: requestOptions(options) })) as PublicKeyCredential | null
  if (!cred) throw new Error('No passkey was used.')
  return credentialToJson(cred)
}

/** A user-facing message for a failed ceremony (the browser's errors are terse). */
export function passkeyError(err: unknown): string {
  const name = (err as Error)?.name
  if (name === 'NotAllowedError') return 'The passkey prompt was cancelled or timed out.'
  if (name === 'InvalidStateError') return 'This passkey is already registered.'
  if (name === 'SecurityError') return 'Passkeys need a secure address (https, or localhost).'
  return (err as Error)?.message || 'The passkey did not work.'
}
