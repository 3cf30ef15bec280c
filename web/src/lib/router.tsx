// A tiny history router: the URL is the state; Link and navigate() push to it.
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react'

const EVENT = 'nexus:navigate'

function subscribe(cb: () => void): () => void {
  window.addEventListener('popstate', cb)
  window.addEventListener(EVENT, cb)
  return () => {
    window.removeEventListener('popstate', cb)
    window.removeEventListener(EVENT, cb)
  }
}

const snapshot = () => window.location.pathname + window.location.search

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (to === snapshot()) return
  if (opts.replace) window.history.replaceState(null, '', to)
  else window.history.pushState(null, '', to)
  window.dispatchEvent(new Event(EVENT))
  if (!opts.replace) window.scrollTo?.({ top: 0 })
}

export interface Location {
  path: string
  search: URLSearchParams
  href: string
}

export function useLocation(): Location {
  const href = useSyncExternalStore(subscribe, snapshot, snapshot)
  const q = href.indexOf('?')
  return { href, path: q < 0 ? href : href.slice(0, q), search: new URLSearchParams(q < 0 ? '' : href.slice(q + 1)) }
}

/** Matches "/r/:app/:resource" against a path; "*" at the end matches the rest. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean)
  const s = path.split('/').filter(Boolean)
  const params: Record<string, string> = {}
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!
    if (seg === '*') {
      params['*'] = s.slice(i).join('/')
      return params
    }
    const val = s[i]
    if (val === undefined) return null
    if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(val)
    else if (seg !== val) return null
  }
  return p.length === s.length ? params : null
}

export function setSearch(update: Record<string, string | null | undefined>, opts: { replace?: boolean } = {}): void {
  const params = new URLSearchParams(window.location.search)
  for (const [k, v] of Object.entries(update)) {
    if (v === null || v === undefined || v === '') params.delete(k)
    else params.set(k, v)
  }
  const qs = params.toString()
  navigate(window.location.pathname + (qs ? `?${qs}` : ''), { replace: opts.replace ?? true })
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }

export function Link({ to, onClick, ...rest }: LinkProps) {
  const handle = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e)
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
    if (rest.target && rest.target !== '_self') return
    e.preventDefault()
    navigate(to)
  }
  return <a href={to} onClick={handle} {...rest} />
}
