// Routes of the generic record views: /r/{app}/{resource}[/new | /{id}[/edit]] and /apps/{app}.
import { EmptyState, Button, useToast } from '../components/ui'
import { useSession } from '../lib/context'
import { useDocumentTitle } from '../lib/hooks'
import type { ResourceMeta } from '../lib/meta'
import { findResource, humanize } from '../lib/meta'
import { recordHref } from '../lib/features'
import { primeRecord } from '../lib/refs'
import { Link, matchPath, navigate, useLocation } from '../lib/router'
import { AppIcon } from '../shell/AppIcon'
import { DetailView } from './DetailView'
import { ListView } from './ListView'
import { RecordForm } from './RecordForm'

function ListPage({ resource }: { resource: ResourceMeta }) {
  useDocumentTitle(resource.title)
  const { meta } = useSession()
  const app = meta.apps.find((a) => a.name === resource.app)
  return (
    <div className="page">
      <div className="page-head">
        <div className="titles">
          <nav className="crumbs" aria-label="Breadcrumb">
            <Link to={`/apps/${resource.app}`}>{app?.title ?? resource.app}</Link>
          </nav>
          <h1>{resource.title}</h1>
          {resource.description && <p className="muted">{resource.description}</p>}
        </div>
        <div className="actions">
          {resource.permissions.create && (
            <Button variant="primary" icon="plus" onClick={() => navigate(`/r/${resource.app}/${resource.name}/new`)}>
              New {humanize(resource.entity).toLowerCase()}
            </Button>
          )}
        </div>
      </div>
      <ListView key={`${resource.app}.${resource.name}`} resource={resource} urlState />
    </div>
  )
}

function CreatePage({ resource }: { resource: ResourceMeta }) {
  const toast = useToast()
  const title = `New ${humanize(resource.entity).toLowerCase()}`
  useDocumentTitle(title)
  const base = `/r/${resource.app}/${resource.name}`
  return (
    <div className="page">
      <div className="page-head">
        <div className="titles">
          <nav className="crumbs" aria-label="Breadcrumb">
            <Link to={base}>{resource.title}</Link>
          </nav>
          <h1>{title}</h1>
        </div>
      </div>
      <section className="card card-pad" style={{ maxWidth: 960 }}>
        {resource.permissions.create ? (
          <RecordForm
            resource={resource}
            onCancel={() => navigate(base)}
            onSaved={(rec) => {
              primeRecord(resource.path, rec)
              toast('Created', 'success')
              navigate(recordHref(resource.app, resource.name, String(rec.id)))
            }}
          />
        ) : (
          <EmptyState icon="lock" title={`You may not create ${resource.title.toLowerCase()}`} />
        )}
      </section>
    </div>
  )
}

function AppOverview({ app }: { app: string }) {
  const { meta } = useSession()
  const a = meta.apps.find((x) => x.name === app)
  useDocumentTitle(a?.title)
  if (!a) return <EmptyState icon="search" title="No such app" />
  return (
    <div className="page">
      <div className="page-head">
        <AppIcon app={a} size={48} />
        <div className="titles">
          <h1>{a.title}</h1>
          <p className="muted">{a.description}</p>
        </div>
      </div>
      <div className="app-grid">
        {a.resources.map((r) => (
          <Link key={r.name} to={`/r/${a.name}/${r.name}`} className="app-tile">
            <div className="stack-sm" style={{ gap: 2 }}>
              <span className="app-title">{r.title}</span>
              <span className="app-desc">{r.description || `${r.fields.length} fields`}</span>
            </div>
          </Link>
        ))}
      </div>
    </div>
  )
}

export default function RecordsPage() {
  const { path } = useLocation()
  const { meta } = useSession()
  const overview = matchPath('/apps/:app', path)
  if (overview) return <AppOverview app={overview.app!} />
  const m =
    matchPath('/r/:app/:resource/:id/edit', path) ?? matchPath('/r/:app/:resource/:id', path) ?? matchPath('/r/:app/:resource', path)
  const resource = m ? findResource(meta, m.app!, m.resource!) : undefined
  if (!m || !resource) {
    return (
      <EmptyState icon="lock" title="Not available">
        <p>This list does not exist here, or your roles do not let you read it.</p>
      </EmptyState>
    )
  }
  if (!m.id) return <ListPage resource={resource} />
  if (m.id === 'new') return <CreatePage resource={resource} />
  return <DetailView key={m.id} resource={resource} id={m.id} edit={path.endsWith('/edit')} />
}
