// CRM: the pipeline board, the forecast, and the record pages of deals, contacts and
// companies. Lists, forms, leads, products and the rest are the generic record views.
import { useEffect, useState } from 'react'
import { Button, EmptyState, Loading, Tabs } from '../../components/ui'
import { api } from '../../lib/api'
import { useSession } from '../../lib/context'
import { useDocumentTitle } from '../../lib/hooks'
import { findResource, recordTitle, resourceByKey } from '../../lib/meta'
import { matchPath, navigate, setSearch, useLocation } from '../../lib/router'
import { Contacts } from './Contacts'
import { Forecast } from './Forecast'
import { PipelineBoard } from './PipelineBoard'
import { RecordPage } from './RecordPage'
import { Reports } from './Reports'
import type { Subject } from './Timeline'
import './crm.css'

const TABS = [
  { id: 'board', label: 'Pipeline', icon: 'kanban', path: '/crm' },
  { id: 'forecast', label: 'Forecast', icon: 'bar-chart', path: '/crm/forecast' },
  { id: 'reports', label: 'Reports', icon: 'table', path: '/crm/reports' },
  { id: 'contacts', label: 'Contacts', icon: 'users', path: '/crm/contacts' },
]
const INTRO: Record<string, [string, string]> = {
  board: ['Pipeline', 'Your deals by stage. Totals are in your organisation’s currency.'],
  forecast: ['Forecast', 'What is likely to close, by period, in your organisation’s currency.'],
  reports: ['Reports', 'Pipeline by stage, conversion, win rate, sales cycle and activities; each as CSV too.'],
  contacts: ['Contacts', 'People you sell to; vCard export and import for address books.'],
}

interface Pipeline {
  id: string
  name: string
  is_default: boolean
}

function OwnerFilter({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  const { meta } = useSession()
  const users = resourceByKey(meta, 'identity.users')
  const [items, setItems] = useState<Record<string, unknown>[]>([])
  useEffect(() => {
    if (!users?.permissions.read) return
    api
      .get<{ items: Record<string, unknown>[] }>(`${users.path}?limit=200`)
      .then((p) => setItems(p.items))
      .catch(() => setItems([]))
  }, [users])
  return (
    <select className="select select-sm" aria-label="Owner" value={value} onChange={(e) => onChange(e.target.value)} style={{ width: 'auto', minWidth: 150 }}>
      <option value="">Everyone's deals</option>
      <option value="me">My deals</option>
      {users &&
        items.map((u) => (
          <option key={String(u.id)} value={String(u.id)}>
            {recordTitle(users, u)}
          </option>
        ))}
    </select>
  )
}

function BoardPage() {
  const { meta, me } = useSession()
  const { search } = useLocation()
  const deals = findResource(meta, 'crm', 'deals')!
  const [pipelines, setPipelines] = useState<Pipeline[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    api
      .get<{ items: Pipeline[] }>('/api/v1/crm/pipelines?limit=200&sort=name')
      .then((p) => setPipelines(p.items), (e: Error) => setError(e.message))
  }, [])
  if (error) return <EmptyState icon="alert" title="Could not load the pipelines">{error}</EmptyState>
  if (!pipelines) return <Loading />
  if (pipelines.length === 0)
    return (
      <EmptyState icon="kanban" title="No pipeline yet">
        <p>A pipeline is your sales process: its stages are the columns of the board.</p>
        <p style={{ marginTop: 12 }}>
          <Button variant="primary" icon="plus" onClick={() => navigate('/r/crm/pipelines/new')}>
            New pipeline
          </Button>
        </p>
      </EmptyState>
    )
  const chosen = pipelines.find((p) => p.id === search.get('pipeline')) ?? pipelines.find((p) => p.is_default) ?? pipelines[0]!
  const owner = search.get('owner') ?? ''
  const ownerId = owner === 'me' ? me.id : owner || undefined
  return (
    <div className="stack">
      <div className="toolbar crm-toolbar">
        <select className="select select-sm" aria-label="Pipeline" value={chosen.id} onChange={(e) => setSearch({ pipeline: e.target.value })} style={{ width: 'auto', minWidth: 180 }}>
          {pipelines.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
        <OwnerFilter value={owner} onChange={(v) => setSearch({ owner: v || null })} />
        <span className="spacer" />
        {deals.permissions.create && (
          <Button size="sm" icon="plus" onClick={() => navigate('/r/crm/deals/new')}>
            New deal…
          </Button>
        )}
      </div>
      <PipelineBoard key={`${chosen.id}|${ownerId ?? ''}`} deals={deals} pipelineId={chosen.id} ownerId={ownerId} meId={me.id} />
    </div>
  )
}

export default function CrmApp() {
  const { path } = useLocation()
  const { meta } = useSession()
  const current = TABS.find((t) => t.path === path)?.id ?? 'board'
  useDocumentTitle(path.startsWith('/crm/') && current === 'board' ? undefined : TABS.find((t) => t.id === current)?.label)

  const m = matchPath('/crm/:subject/:id', path)
  if (m && ['deals', 'contacts', 'companies'].includes(m.subject!)) {
    const resource = findResource(meta, 'crm', m.subject!)
    if (!resource) return <EmptyState icon="lock" title="You may not read these records" />
    return <RecordPage key={m.id} resource={resource} subject={m.subject as Subject} id={m.id!} />
  }
  const contactsMeta = findResource(meta, 'crm', 'contacts')
  if (!findResource(meta, 'crm', 'deals')) return <EmptyState icon="lock" title="You may not read deals" />
  if (!TABS.some((t) => t.path === path)) return <EmptyState icon="search" title="Page not found" />

  return (
    <div className="page">
      <div className="page-head">
        <div className="titles">
          <h1>{INTRO[current]![0]}</h1>
          <p className="muted">{INTRO[current]![1]}</p>
        </div>
      </div>
      <Tabs label="CRM views" current={current} onChange={(id) => navigate(TABS.find((t) => t.id === id)!.path)} tabs={TABS.map(({ id, label, icon }) => ({ id, label, icon }))} />
      {current === 'board' ? (
        <BoardPage />
      ) : current === 'forecast' ? (
        <Forecast />
      ) : current === 'contacts' ? (
        contactsMeta ? <Contacts contacts={contactsMeta} /> : <EmptyState icon="lock" title="You may not read contacts" />
      ) : (
        <Reports />
      )}
    </div>
  )
}
