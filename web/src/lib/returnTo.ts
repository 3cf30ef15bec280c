// After signing in, go back to where the OpenID Connect provider sent the browser from
// (/oauth/authorize?…): the server redirects there with ?return_to=… when nobody is signed in.
// Only that one same-origin path is followed, so the parameter cannot become an open redirect.
export function oauthReturnTo(search: string = window.location.search): string | null {
  const target = new URLSearchParams(search).get('return_to')
  if (!target || !target.startsWith('/oauth/authorize?') || target.includes('\\')) return null
  try {
    const url = new URL(target, window.location.origin)
    if (url.origin !== window.location.origin || url.pathname !== '/oauth/authorize') return null
    return url.pathname + url.search
  } catch {
    return null
  }
}

/** True when it navigated away (the caller then stops booting the app). */
export function followOAuthReturn(): boolean {
  const target = oauthReturnTo()
  if (!target) return false
  window.location.replace(target)
  return true
}
