// Org administration: users, roles, API keys and the audit log (the sidebar links them).
import { useEffect } from 'react'
import { EmptyState } from '../components/ui'
import { hasExplicitPermission } from '../lib/auth'
import { useSession } from '../lib/context'
import { findResource } from '../lib/meta'
import { navigate, useLocation } from '../lib/router'
import { ApiKeysPage } from './ApiKeys'
import { OAuthClientsPage } from './OAuthClients'
import { AuditPage } from './Audit'
import { FederationPage } from './Federation'
import { RolesPage } from './Roles'
import { SecurityPage } from './Security'
import { UsersPage } from './Users'

export default function AdminApp() {
  const { path } = useLocation()
  const { meta, me } = useSession()
  const sections = [
    findResource(meta, 'identity', 'users') && 'users',
    findResource(meta, 'identity', 'roles') && 'roles',
    findResource(meta, 'identity', 'api-keys') && 'api-keys',
    findResource(meta, 'identity', 'oauth-clients') && 'applications',
    hasExplicitPermission(me, 'audit.trail.read') && 'audit',
    findResource(meta, 'identity', 'identity-providers') && 'sso',
    findResource(meta, 'identity', 'users')?.permissions.update && 'security',
  ].filter(Boolean) as string[]
  const current = path.split('/')[2] ?? ''
  useEffect(() => {
    if (!current && sections[0]) navigate(`/admin/${sections[0]}`, { replace: true })
  }, [current, sections.join()])
  return (
    <div className="page">
      {current === 'users' && <UsersPage />}
      {current === 'roles' && <RolesPage />}
      {current === 'api-keys' && <ApiKeysPage />}
      {current === 'applications' && <OAuthClientsPage />}
      {current === 'audit' && <AuditPage />}
      {current === 'sso' && <FederationPage />}
      {current === 'security' && <SecurityPage />}
      {!['users', 'roles', 'api-keys', 'applications', 'audit', 'sso', 'security'].includes(current) && (sections.length ? null : <EmptyState icon="lock" title="Nothing to administer here" />)}
    </div>
  )
}
