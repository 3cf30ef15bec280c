import type { ReactNode } from 'react'
import { ToastProvider } from '../components/ui'
import { SessionContext, type Session } from '../lib/context'
import type { Me } from '../lib/auth'
import { findResource } from '../lib/meta'
import { META } from './meta.fixture'

export const ME: Me = {
  id: META.user.id,
  email: 'admin@example.com',
  name: 'Admin',
  org: { id: META.user.org_id, slug: 'default', name: 'Default' },
  roles: ['owner'],
  permissions: ['*'],
}

export const TASKS = findResource(META, 'tasks', 'tasks')!
export const PROJECTS = findResource(META, 'tasks', 'projects')!

export function WithSession({ children }: { children: ReactNode }) {
  const session: Session = { me: ME, meta: META, reloadMeta: async () => {}, signOut: async () => {} }
  return (
    <ToastProvider>
      <SessionContext.Provider value={session}>{children}</SessionContext.Provider>
    </ToastProvider>
  )
}
