// The pipeline board: a column per stage with its count and totals (in the org currency),
// cards most recently moved first, more per column on demand. Drag a card to another
// column, or focus it and press Alt + ←/→: the move shows at once and is undone, with the
// error on the card, when the server refuses it. Won and lost columns ask for a reason.
import { useCallback, useEffect, useRef, useState, type DragEvent, type FormEvent, type KeyboardEvent } from 'react'
import { Icon } from '../../components/Icon'
import { Alert, Badge, Button, Dialog, Loading } from '../../components/ui'
import { ApiError, api, etagOf, request } from '../../lib/api'
import { formatShortDate } from '../../lib/format'
import type { ResourceMeta } from '../../lib/meta'
import { Link } from '../../lib/router'
import { RefValue } from '../../records/FieldValue'
import { addCard, appendPage, locate, moveAction, moveCard, replaceCard, revertCard, withTotals } from './board'
import { formatMoney } from './money'
import type { BoardData, Deal, Stage } from './types'

const PAGE = 20
const KIND_COLOR: Record<string, string> = { open: 'var(--info)', won: 'var(--success)', lost: 'var(--danger)' }

export function boardPath(pipelineId: string, ownerId?: string, limit = PAGE): string {
  const q = new URLSearchParams({ limit: String(limit) })
  if (ownerId) q.set('owner_id', ownerId)
  return `/api/v1/crm/pipelines/${encodeURIComponent(pipelineId)}/board?${q}`
}

interface Pending {
  deal: Deal
  stage: Stage
  action: 'win' | 'lose'
}

function ReasonDialog({ pending, onCancel, onConfirm }: { pending: Pending; onCancel: () => void; onConfirm: (reason: string) => void }) {
  const [reason, setReason] = useState('')
  const lost = pending.action === 'lose'
  const submit = (e: FormEvent) => {
    e.preventDefault()
    if (lost && !reason.trim()) return
    onConfirm(reason.trim())
  }
  return (
    <Dialog
      title={lost ? `Mark “${pending.deal.title}” as lost` : `Mark “${pending.deal.title}” as won`}
      description={`It moves to ${pending.stage.name}.`}
      size="sm"
      onClose={onCancel}
      footer={
        <>
          <Button onClick={onCancel}>Cancel</Button>
          <Button type="submit" form="crm-reason" variant="primary" disabled={lost && !reason.trim()}>
            {lost ? 'Mark as lost' : 'Mark as won'}
          </Button>
        </>
      }
    >
      <form id="crm-reason" className="field" onSubmit={submit}>
        <label className="field-label" htmlFor="crm-reason-text">
          {lost ? 'Why was it lost?' : 'Why was it won? (optional)'}
          {lost && <span className="req"> *</span>}
        </label>
        <input
          id="crm-reason-text"
          className="input"
          maxLength={500}
          required={lost}
          value={reason}
          placeholder={lost ? 'Price, timing, went with a competitor…' : 'Best fit, relationship, price…'}
          onChange={(e) => setReason(e.target.value)}
        />
      </form>
    </Dialog>
  )
}

function DealCard({
  deal,
  stage,
  dragging,
  canMove,
  error,
  onDragStart,
  onDragEnd,
  onKey,
}: {
  deal: Deal
  stage: Stage
  dragging: boolean
  canMove: boolean
  error?: string
  onDragStart: (e: DragEvent) => void
  onDragEnd: () => void
  onKey: (e: KeyboardEvent) => void
}) {
  const overdue = deal.status === 'open' && deal.expected_close_date && deal.expected_close_date < new Date().toISOString().slice(0, 10)
  return (
    <article
      className={`task-card deal-card${dragging ? ' dragging' : ''}${error ? ' has-error' : ''}`}
      data-card={deal.id}
      draggable={canMove}
      tabIndex={0}
      aria-label={`${deal.title}, ${formatMoney(deal.amount, deal.currency)}, ${stage.name}.${canMove ? ' Alt and left or right arrow keys move it.' : ''}`}
      onDragStart={onDragStart}
      onDragEnd={onDragEnd}
      onKeyDown={(e) => {
        onKey(e)
        if (e.key === 'Enter' && !e.altKey) (e.currentTarget.querySelector('a') as HTMLElement | null)?.click()
      }}
    >
      <div className="deal-card-top">
        <Link to={`/crm/deals/${deal.id}`} className="task-title" tabIndex={-1} draggable={false}>
          {deal.title}
        </Link>
        <span className="deal-amount">{formatMoney(deal.amount, deal.currency)}</span>
      </div>
      {deal.company_id && (
        <span className="deal-company small muted">
          <Icon name="briefcase" size={12} />{' '}
          {deal.company_name !== undefined ? (deal.company_name ?? '—') : <RefValue refKey="crm.companies" id={deal.company_id} link={false} />}
        </span>
      )}
      <div className="task-meta">
        {deal.expected_close_date && (
          <span className={`row${overdue ? ' overdue' : ''}`} style={{ gap: 3 }} title={overdue ? 'Expected close date has passed' : 'Expected close date'}>
            <Icon name="calendar" size={12} />
            {formatShortDate(deal.expected_close_date)}
          </span>
        )}
        {stage.kind === 'open' && <span title="Probability">{deal.probability}%</span>}
        {deal.owner_id && (
          <span className="row" style={{ gap: 3, marginLeft: 'auto' }}>
            <Icon name="user" size={12} />
            {deal.owner_name !== undefined ? (deal.owner_name ?? '—') : <RefValue refKey="identity.users" id={deal.owner_id} link={false} />}
          </span>
        )}
      </div>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </article>
  )
}

export function PipelineBoard({ deals, pipelineId, ownerId, meId }: { deals: ResourceMeta; pipelineId: string; ownerId?: string; meId: string }) {
  const [board, setBoard] = useState<BoardData | null>(null)
  const [loadError, setLoadError] = useState<string | null>(null)
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [dragging, setDragging] = useState<string | null>(null)
  const [target, setTarget] = useState<string | null>(null)
  const [pending, setPending] = useState<Pending | null>(null)
  const [more, setMore] = useState<Record<string, boolean>>({})
  const [adding, setAdding] = useState<Record<string, { title: string; amount: string; busy?: boolean; error?: string }>>({})
  const [live, setLive] = useState('')
  const current = useRef<BoardData | null>(null)
  const busy = useRef(new Set<string>())
  current.current = board
  const canMove = deals.actions.some((a) => a.name === 'move' && a.allowed)

  const load = useCallback(async () => {
    try {
      const data = await api.get<BoardData>(boardPath(pipelineId, ownerId))
      setBoard(data)
      setLoadError(null)
    } catch (err) {
      setLoadError((err as Error).message)
    }
  }, [pipelineId, ownerId])

  useEffect(() => {
    setBoard(null)
    void load()
  }, [load])

  /** Fresh counts and totals from the server (converted with the stored rates). */
  const refreshTotals = async () => {
    try {
      const fresh = await api.get<BoardData>(boardPath(pipelineId, ownerId, 1))
      setBoard((b) => (b ? withTotals(b, fresh) : b))
    } catch {
      /* the optimistic totals stay; the next load corrects them */
    }
  }

  const perform = async (deal: Deal, stage: Stage, action: 'move' | 'win' | 'lose' | 'reopen', reason?: string) => {
    const before = current.current
    // One move of a card at a time: the next needs the version the last one returns.
    if (!before || busy.current.has(deal.id)) return
    busy.current.add(deal.id)
    setErrors(({ [deal.id]: _, ...rest }) => rest)
    setBoard(moveCard(before, deal.id, stage.id))
    const body: Record<string, unknown> = { stage_id: stage.id }
    if (reason !== undefined && (action === 'win' || action === 'lose')) body.reason = reason
    try {
      // If-Match: a deal someone else moved meanwhile is refused (412), not moved twice.
      const updated = (await request<Deal>(`${deals.path}/${deal.id}/${action}`, { method: 'POST', json: body, ifMatch: etagOf(deal) })).data
      setBoard((b) => (b ? replaceCard(b, updated) : b))
      setLive(`Moved “${deal.title}” to ${stage.name}.`)
      await refreshTotals()
    } catch (err) {
      // Back where it was, with the reason on the card.
      setBoard((b) => (b ? revertCard(b, before, deal.id) : before))
      const message =
        err instanceof ApiError && err.status === 412
          ? 'someone else changed this deal in the meantime; reload the board to see it.'
          : (err as Error).message
      setErrors((e) => ({ ...e, [deal.id]: `Could not move to ${stage.name}: ${message}` }))
      setLive(`Could not move “${deal.title}”: ${message}`)
    } finally {
      busy.current.delete(deal.id)
    }
  }

  const requestMove = (dealId: string, stageId: string) => {
    const b = current.current
    if (!b) return
    const at = locate(b, dealId)
    const stage = b.columns.find((c) => c.stage.id === stageId)?.stage
    if (!at || !stage || at.deal.stage_id === stageId) return
    const action = moveAction(at.deal, stage)
    if (action === 'win' || action === 'lose') setPending({ deal: at.deal, stage, action })
    else void perform(at.deal, stage, action)
  }

  const onDragOver = (e: DragEvent, stageId: string) => {
    if (!dragging) return
    e.preventDefault()
    e.dataTransfer.dropEffect = 'move'
    if (target !== stageId) setTarget(stageId)
  }
  const onDrop = (e: DragEvent, stageId: string) => {
    e.preventDefault()
    const id = e.dataTransfer.getData('text/plain') || dragging
    setDragging(null)
    setTarget(null)
    if (id) requestMove(id, stageId)
  }
  const onCardKey = (e: KeyboardEvent, deal: Deal) => {
    if (!e.altKey || !board || (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft')) return
    const i = board.columns.findIndex((c) => c.stage.id === deal.stage_id)
    const j = e.key === 'ArrowRight' ? i + 1 : i - 1
    const to = board.columns[j]
    if (!to) return
    e.preventDefault()
    requestMove(deal.id, to.stage.id)
    setTimeout(() => document.querySelector<HTMLElement>(`[data-card="${deal.id}"]`)?.focus(), 50)
  }

  const loadMore = async (stageId: string, cursor: string) => {
    setMore((m) => ({ ...m, [stageId]: true }))
    try {
      const q = new URLSearchParams({ limit: String(PAGE), cursor })
      if (ownerId) q.set('owner_id', ownerId)
      const page = await api.get<{ items: Deal[]; next_cursor: string | null }>(
        `/api/v1/crm/pipelines/${encodeURIComponent(pipelineId)}/board/${encodeURIComponent(stageId)}?${q}`,
      )
      setBoard((b) => (b ? appendPage(b, stageId, page.items, page.next_cursor) : b))
    } catch (err) {
      setLive(`Could not load more: ${(err as Error).message}`)
    } finally {
      setMore((m) => ({ ...m, [stageId]: false }))
    }
  }

  const quickAdd = async (stage: Stage) => {
    const draft = adding[stage.id]
    const title = draft?.title.trim()
    if (!title || !board) return
    const amount = (draft?.amount ?? '').trim().replace(/[, ]/g, '')
    if (amount && !/^\d+(\.\d{1,2})?$/.test(amount)) {
      setAdding((a) => ({ ...a, [stage.id]: { ...draft!, error: 'The amount is a number such as 1200 or 99.50.' } }))
      return
    }
    setAdding((a) => ({ ...a, [stage.id]: { ...draft!, busy: true, error: undefined } }))
    try {
      const created = await api.post<Deal>(deals.path, {
        title,
        ...(amount ? { amount } : {}),
        currency: board.currency,
        pipeline_id: pipelineId,
        stage_id: stage.id,
        owner_id: ownerId ?? meId,
      })
      setBoard((b) => (b ? addCard(b, created) : b))
      setAdding((a) => ({ ...a, [stage.id]: { title: '', amount: '' } }))
      setLive(`Added “${created.title}” to ${stage.name}.`)
      await refreshTotals()
    } catch (err) {
      const e = err as ApiError
      const message = (e.fieldErrors && (e.fieldErrors.title ?? e.fieldErrors.amount)) || e.message
      setAdding((a) => ({ ...a, [stage.id]: { ...draft!, busy: false, error: message } }))
    }
  }

  if (loadError) return <Alert title="Could not load the pipeline">{loadError}</Alert>
  if (!board) return <Loading label="Loading the pipeline…" />
  if (board.columns.length === 0) return <Alert kind="info" title="This pipeline has no stages">Add stages to it under Stages.</Alert>

  const sum = board.columns.filter((c) => c.stage.kind === 'open')
  const openTotal = sum.reduce((acc, c) => acc + Number(c.total), 0)
  const openWeighted = sum.reduce((acc, c) => acc + Number(c.weighted), 0)

  return (
    <>
      <p className="visually-hidden" aria-live="polite">
        {live}
      </p>
      <div className="row crm-board-summary small muted">
        <span>
          Open pipeline <strong className="crm-figure" data-testid="open-total">{formatMoney(openTotal.toFixed(2), board.currency)}</strong>
        </span>
        <span>
          Weighted <strong className="crm-figure">{formatMoney(openWeighted.toFixed(2), board.currency)}</strong>
        </span>
        <span className="hide-sm">Drag cards between stages, or focus a card and press Alt + ← / →.</span>
      </div>
      {board.unconverted.length > 0 && (
        <Alert kind="warning">
          No exchange rate is stored for {board.unconverted.join(', ')}: those deals are counted but left out of the totals.
        </Alert>
      )}
      <div className="board crm-board" role="list" aria-label={`${board.pipeline.name} pipeline`} style={{ ['--cols' as string]: board.columns.length }}>
        {board.columns.map((col) => {
          const { stage } = col
          const draft = adding[stage.id] ?? { title: '', amount: '' }
          return (
            <section
              key={stage.id}
              role="listitem"
              aria-label={`${stage.name} column`}
              className={`column crm-column crm-${stage.kind}${target === stage.id ? ' drop-target' : ''}`}
              data-stage={stage.id}
              onDragOver={(e) => onDragOver(e, stage.id)}
              onDragLeave={(e) => {
                if (!(e.currentTarget as HTMLElement).contains(e.relatedTarget as Node)) setTarget((t) => (t === stage.id ? null : t))
              }}
              onDrop={(e) => onDrop(e, stage.id)}
            >
              <header className="column-head crm-column-head">
                <div className="row" style={{ gap: 'var(--space-2)', minWidth: 0 }}>
                  <span className="dot" style={{ background: KIND_COLOR[stage.kind] }} aria-hidden="true" />
                  <h2 className="crm-stage-name" title={stage.name}>
                    {stage.name}
                  </h2>
                  <Badge>
                    <span data-testid="column-count" aria-label={`${col.count} deals`}>
                      {col.count}
                    </span>
                  </Badge>
                </div>
                <div className="crm-column-totals">
                  <span className="crm-figure" data-testid="column-total" title={`Total in ${board.currency}`}>
                    {formatMoney(col.total, board.currency)}
                  </span>
                  {stage.kind === 'open' && (
                    <span className="small subtle" title={`Weighted by probability (${stage.probability}% by default here)`}>
                      {formatMoney(col.weighted, board.currency, true)} weighted
                    </span>
                  )}
                </div>
              </header>
              <div className="column-body">
                {col.items.map((deal) => (
                  <DealCard
                    key={deal.id}
                    deal={deal}
                    stage={stage}
                    canMove={canMove}
                    dragging={dragging === deal.id}
                    error={errors[deal.id]}
                    onDragStart={(e) => {
                      e.dataTransfer.setData('text/plain', deal.id)
                      e.dataTransfer.effectAllowed = 'move'
                      setDragging(deal.id)
                    }}
                    onDragEnd={() => {
                      setDragging(null)
                      setTarget(null)
                    }}
                    onKey={(e) => onCardKey(e, deal)}
                  />
                ))}
                {col.items.length === 0 && <p className="small subtle crm-empty-col">No deals here</p>}
                {col.next_cursor && (
                  <Button size="sm" variant="ghost" busy={more[stage.id]} onClick={() => void loadMore(stage.id, col.next_cursor!)}>
                    Load more ({col.count - col.items.length} more)
                  </Button>
                )}
                {deals.permissions.create && stage.kind === 'open' && (
                  <form
                    className="crm-quick-add"
                    onSubmit={(e) => {
                      e.preventDefault()
                      void quickAdd(stage)
                    }}
                  >
                    <input
                      className="input input-sm"
                      aria-label={`New deal in ${stage.name}`}
                      placeholder="+ Add a deal"
                      maxLength={300}
                      value={draft.title}
                      onChange={(e) => setAdding((a) => ({ ...a, [stage.id]: { ...draft, title: e.target.value, error: undefined } }))}
                    />
                    {draft.title.trim() && (
                      <div className="row" style={{ gap: 'var(--space-2)' }}>
                        <input
                          className="input input-sm"
                          aria-label={`Amount of the new deal in ${stage.name} (${board.currency})`}
                          placeholder={`Amount (${board.currency})`}
                          inputMode="decimal"
                          value={draft.amount}
                          onChange={(e) => setAdding((a) => ({ ...a, [stage.id]: { ...draft, amount: e.target.value, error: undefined } }))}
                        />
                        <Button type="submit" size="sm" variant="primary" busy={draft.busy}>
                          Add
                        </Button>
                      </div>
                    )}
                    {draft.error && (
                      <p className="field-error" role="alert">
                        {draft.error}
                      </p>
                    )}
                  </form>
                )}
              </div>
            </section>
          )
        })}
      </div>
      {pending && (
        <ReasonDialog
          pending={pending}
          onCancel={() => setPending(null)}
          onConfirm={(reason) => {
            const p = pending
            setPending(null)
            void perform(p.deal, p.stage, p.action, reason)
          }}
        />
      )}
    </>
  )
}
