import { fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import { json, mockFetch } from '../../test/http'
import { WithSession } from '../../test/session'
import { Reports } from './Reports'

afterEach(() => window.history.replaceState(null, '', '/'))

describe('Reports', () => {
  it('shows the pipeline report of the default pipeline, then win rates for a date range', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/crm/pipelines') return json(200, { items: [{ id: 'P0', name: 'Other', is_default: false }, { id: 'P1', name: 'Sales', is_default: true }] })
      if (c.path === '/api/v1/crm/reports/pipeline')
        return json(200, { currency: 'EUR', pipeline_id: 'P1', rows: [{ stage_id: 'S1', stage: 'Qualified', kind: 'open', position: 0, deals: 2, amount: '1500.00', weighted: '300.00' }] })
      if (c.path === '/api/v1/crm/reports/win-rate')
        return json(200, {
          rows: [{ owner_id: null, won: 1, lost: 3, win_rate: 0.25, average_sales_cycle_days: 12.5 }, { owner_id: null, won: 1, lost: 0, win_rate: 1, average_sales_cycle_days: 3 }],
          totals: { owner_id: null, won: 2, lost: 3, win_rate: 0.4, average_sales_cycle_days: 7.75 },
        })
      return undefined
    })
    render(<Reports />, { wrapper: WithSession })
    const table = await screen.findByRole('table')
    expect(within(table).getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['Stage', 'Kind', 'Deals', 'Amount', 'Weighted'])
    expect(within(table).getByText('€1,500.00')).toBeTruthy()
    expect(calls.find((c) => c.path === '/api/v1/crm/reports/pipeline')!.query.get('pipeline_id')).toBe('P1')

    fireEvent.change(screen.getByLabelText('Report'), { target: { value: 'win-rate' } })
    await waitFor(() => expect(screen.getByText('25.0 %')).toBeTruthy())
    const q = calls.find((c) => c.path === '/api/v1/crm/reports/win-rate')!.query
    expect(q.get('from')).toMatch(/^\d{4}-01-01$/)
    expect(q.get('pipeline_id')).toBeNull()
    expect(screen.getByText('40.0 %')).toBeTruthy() // the totals row
  })
})
