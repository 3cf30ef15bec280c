import { fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { board, DEALS } from '../../test/crm.fixture'
import { json, mockFetch, problem, type Call } from '../../test/http'
import { WithSession } from '../../test/session'
import { PipelineBoard } from './PipelineBoard'
import type { BoardData } from './types'

const BOARD = '/api/v1/crm/pipelines/P1/board'

function column(name: string) {
  return screen.getByRole('listitem', { name: `${name} column` })
}
const count = (col: HTMLElement) => within(col).getByTestId('column-count').textContent
const total = (col: HTMLElement) => within(col).getByTestId('column-total').textContent

/** A server: the board, then (after a move) totals with the deal in its new stage. */
function server(onMove: (c: Call) => { status?: number; body?: unknown; headers?: Record<string, string> }, after?: (b: BoardData) => void) {
  let moved = false
  return mockFetch((c) => {
    if (c.path === BOARD) {
      const b = board()
      if (moved && after) after(b)
      return json(200, b)
    }
    if (c.method === 'POST' && /^\/api\/v1\/crm\/deals\/\w+\/(move|win|lose|reopen)$/.test(c.path)) {
      const res = onMove(c)
      if ((res.status ?? 200) < 400) moved = true
      return res
    }
    if (c.path.startsWith('/api/v1/crm/pipelines/P1/board/S1')) {
      return json(200, { items: [{ ...board().columns[0]!.items[0]!, id: 'D3', title: 'Gamma deal' }], next_cursor: null })
    }
    return undefined
  })
}

describe('PipelineBoard', () => {
  it('shows a column per stage with its count and total in the org currency', async () => {
    const calls = server(() => json(200, {}))
    render(<PipelineBoard deals={DEALS} pipelineId="P1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    expect(count(q)).toBe('3')
    expect(total(q)).toMatch(/1,500\.00/)
    expect(total(q)).toMatch(/€/)
    expect(count(column('Proposal'))).toBe('1')
    expect(within(q).getByText('Alpha deal')).toBeTruthy()
    expect(calls[0]!.query.get('limit')).toBe('20')
    expect(calls[0]!.query.get('owner_id')).toBeNull()
  })

  it('moves a card with Alt+→ through the move action, totals moving with it, then takes the server totals', async () => {
    const calls = server(
      (c) => json(200, { ...board().columns[0]!.items[0]!, stage_id: (c.body as { stage_id: string }).stage_id, probability: 60 }),
      (b) => {
        b.columns[0] = { ...b.columns[0]!, count: 2, total: '500.00' }
        b.columns[1] = { ...b.columns[1]!, count: 2, total: '1200.00' }
      },
    )
    render(<PipelineBoard deals={DEALS} pipelineId="P1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    const card = within(q).getByText('Alpha deal').closest('article')!
    fireEvent.keyDown(card, { key: 'ArrowRight', altKey: true })

    const p = column('Proposal')
    await waitFor(() => expect(within(p).getByText('Alpha deal')).toBeTruthy())
    expect(within(q).queryByText('Alpha deal')).toBeNull()
    expect(count(p)).toBe('2')
    expect(total(p)).toMatch(/1,200\.00/)
    expect(count(q)).toBe('2')
    expect(total(q)).toMatch(/500\.00/)
    const move = calls.find((c) => c.path === '/api/v1/crm/deals/D1/move')!
    expect(move.method).toBe('POST')
    expect(move.body).toEqual({ stage_id: 'S2' })
    expect(move.headers['if-match']).toBe('"D1.1"')
    // The server's totals (converted with its rates) are fetched after the move.
    await waitFor(() => expect(calls.filter((c) => c.path === BOARD && c.query.get('limit') === '1')).toHaveLength(1))
  })

  it('moves a card by drag and drop', async () => {
    const calls = server((c) => json(200, { ...board().columns[0]!.items[1]!, stage_id: (c.body as { stage_id: string }).stage_id }))
    render(<PipelineBoard deals={DEALS} pipelineId="P1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    const card = within(q).getByText('Beta deal').closest('article')!
    const data = new Map<string, string>()
    const dataTransfer = { setData: (k: string, v: string) => data.set(k, v), getData: (k: string) => data.get(k) ?? '', effectAllowed: '', dropEffect: '' }
    fireEvent.dragStart(card, { dataTransfer })
    fireEvent.dragOver(column('Proposal'), { dataTransfer })
    fireEvent.drop(column('Proposal'), { dataTransfer })
    await waitFor(() => expect(within(column('Proposal')).getByText('Beta deal')).toBeTruthy())
    expect(calls.find((c) => c.path === '/api/v1/crm/deals/D2/move')!.body).toEqual({ stage_id: 'S2' })
  })

  it('puts the card back, with the error on it, when the server refuses the move', async () => {
    server(() => problem(409, 'The pipeline has no open stage.'))
    render(<PipelineBoard deals={DEALS} pipelineId="P1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    fireEvent.keyDown(within(q).getByText('Alpha deal').closest('article')!, { key: 'ArrowRight', altKey: true })

    const alert = await within(q).findByRole('alert')
    expect(alert.textContent).toMatch(/Could not move to Proposal: The pipeline has no open stage/)
    expect(within(q).getByText('Alpha deal')).toBeTruthy()
    expect(within(column('Proposal')).queryByText('Alpha deal')).toBeNull()
    expect(count(q)).toBe('3')
    expect(total(q)).toMatch(/1,500\.00/)
    expect(count(column('Proposal'))).toBe('1')
    expect(total(column('Proposal'))).toMatch(/200\.00/)
    // Back in its first place.
    expect(within(q).getAllByRole('article')[0]!.textContent).toMatch(/Alpha deal/)
  })

  it('says so when someone else moved the deal first (412)', async () => {
    server(() => problem(412, 'Precondition failed'))
    render(<PipelineBoard deals={DEALS} pipelineId="P1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    fireEvent.keyDown(within(q).getByText('Beta deal').closest('article')!, { key: 'ArrowRight', altKey: true })
    expect((await within(q).findByRole('alert')).textContent).toMatch(/someone else changed this deal/)
    expect(within(q).getByText('Beta deal')).toBeTruthy()
  })

  it('asks for a reason before a deal goes to a lost column', async () => {
    const calls = server((c) => json(200, { ...board().columns[0]!.items[0]!, stage_id: 'S4', status: 'lost', probability: 0, ...(c.body as object) }))
    render(<PipelineBoard deals={DEALS} pipelineId="P1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    const data = new Map<string, string>()
    const dataTransfer = { setData: (k: string, v: string) => data.set(k, v), getData: (k: string) => data.get(k) ?? '', effectAllowed: '', dropEffect: '' }
    fireEvent.dragStart(within(q).getByText('Alpha deal').closest('article')!, { dataTransfer })
    fireEvent.drop(column('Lost'), { dataTransfer })

    const dialog = await screen.findByRole('dialog')
    const confirm = within(dialog).getByRole('button', { name: 'Mark as lost' }) as HTMLButtonElement
    expect(confirm.disabled).toBe(true)
    expect(calls.some((c) => c.method === 'POST')).toBe(false)
    fireEvent.change(within(dialog).getByLabelText(/Why was it lost/), { target: { value: 'Went with a competitor' } })
    fireEvent.click(confirm)
    await waitFor(() => expect(within(column('Lost')).getByText('Alpha deal')).toBeTruthy())
    expect(calls.find((c) => c.path === '/api/v1/crm/deals/D1/lose')!.body).toEqual({ stage_id: 'S4', reason: 'Went with a competitor' })
  })

  it('loads more cards of a column, and quick-adds a deal to a column', async () => {
    let created = false
    const calls = mockFetch((c) => {
      if (c.path === BOARD) {
        const b = board()
        if (created) b.columns[1] = { ...b.columns[1]!, count: 2, total: '299.50' }
        return json(200, b)
      }
      if (c.path === '/api/v1/crm/pipelines/P1/board/S1') return json(200, { items: [{ ...board().columns[0]!.items[0]!, id: 'D3', title: 'Gamma deal' }], next_cursor: null })
      if (c.path === '/api/v1/crm/deals' && c.method === 'POST') created = true
      if (c.path === '/api/v1/crm/deals' && c.method === 'POST') return json(201, { ...board().columns[1]!.items[0]!, id: 'D7', title: 'Fresh deal', amount: '99.50', stage_id: 'S2', probability: 60 })
      return undefined
    })
    render(<PipelineBoard deals={DEALS} pipelineId="P1" ownerId="U1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    expect(calls[0]!.query.get('owner_id')).toBe('U1')
    fireEvent.click(within(q).getByRole('button', { name: /Load more/ }))
    await waitFor(() => expect(within(q).getByText('Gamma deal')).toBeTruthy())
    const page = calls.find((c) => c.path === '/api/v1/crm/pipelines/P1/board/S1')!
    expect(page.query.get('cursor')).toBe('c1')
    expect(page.query.get('owner_id')).toBe('U1')
    expect(within(q).queryByRole('button', { name: /Load more/ })).toBeNull()

    const p = column('Proposal')
    fireEvent.change(within(p).getByLabelText('New deal in Proposal'), { target: { value: 'Fresh deal' } })
    fireEvent.change(within(p).getByLabelText(/Amount of the new deal in Proposal/), { target: { value: '99.50' } })
    fireEvent.click(within(p).getByRole('button', { name: 'Add' }))
    await waitFor(() => expect(within(p).getByText('Fresh deal')).toBeTruthy())
    expect(calls.find((c) => c.path === '/api/v1/crm/deals' && c.method === 'POST')!.body).toEqual({
      title: 'Fresh deal', amount: '99.50', currency: 'EUR', pipeline_id: 'P1', stage_id: 'S2', owner_id: 'U1',
    })
    await waitFor(() => expect(count(p)).toBe('2'))
    expect(total(p)).toMatch(/299\.50/)
    expect(within(column('Won')).queryByLabelText(/New deal/)).toBeNull()
  })

  it('shows the company and owner names the board carries, without a request per card', async () => {
    const calls = mockFetch((c) => {
      if (c.path === BOARD) {
        const b = board()
        b.columns[0]!.items = b.columns[0]!.items.map((d, i) => ({
          ...d, company_id: `C${i}`, company_name: `Company ${i}`, owner_id: 'U1', owner_name: 'Ada Lovelace',
        }))
        b.columns[1]!.items[0] = { ...b.columns[1]!.items[0]!, company_id: 'CX', company_name: null }
        return json(200, b)
      }
      return undefined
    })
    render(<PipelineBoard deals={DEALS} pipelineId="P1" meId="ME" />, { wrapper: WithSession })
    const q = await screen.findByRole('listitem', { name: 'Qualified column' })
    expect(within(q).getByText('Company 0')).toBeTruthy()
    expect(within(q).getByText('Company 1')).toBeTruthy()
    expect(within(q).getAllByText('Ada Lovelace')).toHaveLength(2)
    await new Promise((r) => setTimeout(r, 20))
    expect(calls.filter((c) => /\/(crm\/companies|identity\/users)\//.test(c.path))).toEqual([])
  })
})
