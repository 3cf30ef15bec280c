// Home: the app launcher (by category, in catalog order) and, when Tasks is installed, your open tasks.
import { lazy, Suspense } from 'react'
import { appHome } from '../apps/registry'
import { Loading } from '../components/ui'
import { useSession } from '../lib/context'
import { useDocumentTitle } from '../lib/hooks'
import { appsByCategory, findResource } from '../lib/meta'
import { Link } from '../lib/router'
import { AppIcon } from './AppIcon'

const MyTasksWidget = lazy(() => import('../apps/tasks/MyTasksWidget'))

function greeting(): string {
  const h = new Date().getHours()
  return h < 5 ? 'Good evening' : h < 12 ? 'Good morning' : h < 18 ? 'Good afternoon' : 'Good evening'
}

export function Home() {
  const { me, meta } = useSession()
  useDocumentTitle('Home')
  const groups = appsByCategory(meta)
  const tasks = findResource(meta, 'tasks', 'tasks')
  const first = (me.name || me.email).split(/[\s@]/)[0]
  return (
    <div className="page">
      <div className="hero">
        <h1>
          {greeting()}, {first}
        </h1>
        <p className="muted">
          {me.org?.name ?? 'Your organisation'} · {groups.reduce((n, [, a]) => n + a.length, 0)} apps
        </p>
      </div>
      <div className={tasks ? 'home-grid' : undefined}>
        <div className="stack">
          {groups.map(([category, apps]) => (
            <section key={category} className="stack-sm" aria-labelledby={`cat-${category}`}>
              <h2 id={`cat-${category}`} className="nav-heading" style={{ padding: 0 }}>
                {category}
              </h2>
              <div className="app-grid">
                {apps.map((a) => (
                  <Link key={a.name} to={appHome(a)} className="app-tile">
                    <AppIcon app={a} />
                    <div className="stack-sm" style={{ gap: 2, minWidth: 0 }}>
                      <span className="app-title">{a.title}</span>
                      <span className="app-desc">{a.description}</span>
                      {a.platform ? null : <span className="app-num">No. {a.catalog_number}</span>}
                    </div>
                  </Link>
                ))}
              </div>
            </section>
          ))}
        </div>
        {tasks && (
          <Suspense fallback={<Loading />}>
            <MyTasksWidget />
          </Suspense>
        )}
      </div>
    </div>
  )
}
