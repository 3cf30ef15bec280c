import { Component, lazy, Suspense, useEffect, useState, type ReactNode } from 'react'
import { APP_VIEWS, appColor, appHome } from '../apps/registry'
import { Icon } from '../components/Icon'
import { Button, EmptyState, IconButton, Loading } from '../components/ui'
import { hasExplicitPermission } from '../lib/auth'
import { useSession } from '../lib/context'
import { appsInOrder, findResource } from '../lib/meta'
import { Link, matchPath, useLocation } from '../lib/router'
import { Bell } from './Bell'
import { Home } from './Home'
import { Launcher } from './Launcher'
import { SearchBox } from './SearchBox'
import { UserMenu } from './UserMenu'

// Everything beyond the shell loads on demand.
const RecordsPage = lazy(() => import('../records/RecordsPage'))
const TasksApp = lazy(() => import('../apps/tasks/TasksApp'))
const NotesApp = lazy(() => import('../apps/notes/NotesApp'))
const CrmApp = lazy(() => import('../apps/crm/CrmApp'))
const AdminApp = lazy(() => import('../admin/AdminApp'))
const Profile = lazy(() => import('./Profile'))
const AccountSecurity = lazy(() => import('./AccountSecurity'))

class ErrorBoundary extends Component<{ children: ReactNode; resetKey: string }, { error: Error | null; key: string }> {
  state = { error: null as Error | null, key: this.props.resetKey }
  static getDerivedStateFromError(error: Error) {
    return { error }
  }
  static getDerivedStateFromProps(props: { resetKey: string }, state: { key: string; error: Error | null }) {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null
  }
  render() {
    if (this.state.error) {
      const chunk = /dynamically imported module|Failed to fetch|Importing a module/i.test(this.state.error.message)
      return (
        <EmptyState icon={chunk ? 'wifi-off' : 'alert'} title={chunk ? 'This page could not be loaded' : 'Something went wrong'}>
          <p>{chunk ? 'You may be offline, or NEXUS was updated. Reload to get the latest version.' : this.state.error.message}</p>
          <p style={{ marginTop: 12 }}>
            <Button variant="primary" icon="refresh" onClick={() => window.location.reload()}>
              Reload
            </Button>
          </p>
        </EmptyState>
      )
    }
    return this.props.children
  }
}

function Routes({ path }: { path: string }) {
  if (path === '/' || path === '') return <Home />
  if (matchPath('/r/*', path) || matchPath('/apps/:app', path)) return <RecordsPage />
  if (path === '/tasks' || matchPath('/tasks/*', path)) return <TasksApp />
  if (path === '/notes' || matchPath('/notes/*', path)) return <NotesApp />
  if (path === '/crm' || matchPath('/crm/*', path)) return <CrmApp />
  if (path === '/admin' || matchPath('/admin/*', path)) return <AdminApp />
  if (path === '/profile' || path === '/settings') return <Profile />
  if (path === '/account/security') return <AccountSecurity />
  return (
    <EmptyState icon="search" title="Page not found">
      <p>
        There is nothing at <code>{path}</code>. <Link to="/">Go home</Link>.
      </p>
    </EmptyState>
  )
}

function useOnline(): boolean {
  const [online, setOnline] = useState(typeof navigator === 'undefined' ? true : navigator.onLine)
  useEffect(() => {
    const on = () => setOnline(true)
    const off = () => setOnline(false)
    window.addEventListener('online', on)
    window.addEventListener('offline', off)
    return () => {
      window.removeEventListener('online', on)
      window.removeEventListener('offline', off)
    }
  }, [])
  return online
}

function Sidebar({ open, onNavigate }: { open: boolean; onNavigate: () => void }) {
  const { meta, me } = useSession()
  const { path } = useLocation()
  const apps = appsInOrder(meta).filter((a) => a.name !== 'identity')
  const can = (res: string) => Boolean(findResource(meta, 'identity', res)?.permissions.read)
  const current = (to: string, exact = false) => (exact ? path === to : path === to || path.startsWith(to + '/')) || undefined
  const admin = [
    can('users') && { to: '/admin/users', label: 'Users', icon: 'users' },
    can('roles') && { to: '/admin/roles', label: 'Roles', icon: 'shield' },
    can('api-keys') && { to: '/admin/api-keys', label: 'API keys', icon: 'key' },
    // Directory and provisioning: the generic record views draw these (LDAP "test" and "sync" are actions).
    can('ldap-connections') && { to: '/r/identity/ldap-connections', label: 'LDAP / AD', icon: 'git-branch' },
    can('scim-tokens') && { to: '/r/identity/scim-tokens', label: 'SCIM tokens', icon: 'zap' },
    can('directory-groups') && { to: '/r/identity/directory-groups', label: 'Directory groups', icon: 'users' },
    can('oauth-clients') && { to: '/admin/applications', label: 'Applications', icon: 'globe' },
    hasExplicitPermission(me, 'audit.trail.read') && { to: '/admin/audit', label: 'Audit log', icon: 'activity' },
    can('identity-providers') && { to: '/admin/sso', label: 'Single sign-on', icon: 'link' },
    findResource(meta, 'identity', 'users')?.permissions.update && { to: '/admin/security', label: 'Security', icon: 'lock' },
  ].filter(Boolean) as { to: string; label: string; icon: string }[]

  return (
    <nav className={`sidebar${open ? ' open' : ''}`} aria-label="Main" onClick={(e) => (e.target as HTMLElement).closest('a') && onNavigate()}>
      <div className="nav-section">
        <Link className="nav-link" to="/" aria-current={path === '/' ? 'page' : undefined}>
          <Icon name="home" />
          Home
        </Link>
      </div>
      {apps.length > 0 && (
        <div className="nav-section">
          <div className="nav-heading">Apps</div>
          {apps.map((app) => {
            const view = APP_VIEWS[app.name]
            const inApp = path.startsWith(`/r/${app.name}/`) || path === `/apps/${app.name}` || (view && (path === view.prefix || path.startsWith(view.prefix + '/')))
            return (
              <div key={app.name} className="nav-section">
                <Link className="nav-link" to={appHome(app)} aria-current={inApp && !view?.nav.length ? 'page' : undefined}>
                  <span className="app-icon" style={{ width: 22, height: 22, borderRadius: 6, background: appColor(app.name) }}>
                    <Icon name={app.icon ?? 'box'} size={13} />
                  </span>
                  {app.title}
                </Link>
                {inApp && (
                  <>
                    {view?.nav.map((n) => (
                      <Link key={n.to} className="nav-link sub" to={n.to} aria-current={path === n.to ? 'page' : undefined}>
                        {n.label}
                      </Link>
                    ))}
                    {app.resources.map((r) => (
                      <Link key={r.name} className="nav-link sub" to={`/r/${app.name}/${r.name}`} aria-current={current(`/r/${app.name}/${r.name}`) ? 'page' : undefined}>
                        {r.title}
                      </Link>
                    ))}
                  </>
                )}
              </div>
            )
          })}
        </div>
      )}
      {admin.length > 0 && (
        <div className="nav-section">
          <div className="nav-heading">Administration</div>
          {admin.map((a) => (
            <Link key={a.to} className="nav-link" to={a.to} aria-current={current(a.to) ? 'page' : undefined}>
              <Icon name={a.icon} />
              {a.label}
            </Link>
          ))}
        </div>
      )}
      <div className="sidebar-foot">
        {me.org?.name ?? 'NEXUS'} · {me.org?.slug}
      </div>
    </nav>
  )
}

export function Shell() {
  const { path } = useLocation()
  const [navOpen, setNavOpen] = useState(false)
  const online = useOnline()
  useEffect(() => setNavOpen(false), [path])

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <div className="brand">
        <Link to="/" aria-label="NEXUS home">
          <img src="/icons/icon.svg" alt="" />
          NEXUS
        </Link>
      </div>
      <header className="topbar">
        <IconButton className="menu-toggle" icon="menu" label="Open navigation" aria-expanded={navOpen} onClick={() => setNavOpen((o) => !o)} />
        <SearchBox />
        <div className="topbar-actions">
          <Launcher />
          <Bell />
          <UserMenu />
        </div>
      </header>
      <div className={`scrim${navOpen ? ' open' : ''}`} onClick={() => setNavOpen(false)} aria-hidden="true" />
      <Sidebar open={navOpen} onNavigate={() => setNavOpen(false)} />
      <main className="main" id="main" tabIndex={-1}>
        <ErrorBoundary resetKey={path}>
          <Suspense fallback={<Loading />}>
            <Routes path={path} />
          </Suspense>
        </ErrorBoundary>
      </main>
      {!online && (
        <div className="offline-bar" role="status">
          <Icon name="wifi-off" size={16} /> You are offline — changes cannot be saved until the connection is back.
        </div>
      )}
    </div>
  )
}
