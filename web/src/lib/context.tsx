import { createContext, useContext } from 'react'
import type { Me } from './auth'
import type { Meta } from './meta'

export interface Session {
  me: Me
  meta: Meta
  reloadMeta: () => Promise<void>
  signOut: () => Promise<void>
}

export const SessionContext = createContext<Session | null>(null)

export function useSession(): Session {
  const s = useContext(SessionContext)
  if (!s) throw new Error('useSession outside a signed-in page')
  return s
}

/** For components that can also render before sign-in or in tests without a session. */
export function useOptionalSession(): Session | null {
  return useContext(SessionContext)
}
