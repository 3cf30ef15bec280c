import { fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { json, mockFetch } from '../../test/http'
import { WithSession } from '../../test/session'
import { Forecast, periodOf, periodsBetween, pivot } from './Forecast'
import type { ForecastData } from './types'

const row = (period: string, owner_id: string | null, weighted: string, committed: string) => ({
  period, start: '', end: '', owner_id, open_count: 1, pipeline: '0.00', weighted, committed, won_count: 0, won: '0.00',
})
const DATA: ForecastData = {
  currency: 'EUR', period: 'quarter', from: '2026-10-01', to: '2027-09-30', group_by: ['owner'],
  rows: [row('2026-Q4', 'U1', '100.10', '50.00'), row('2026-Q4', 'U2', '0.20', '0.00'), row('2027-Q2', 'U1', '300.00', '300.00')],
  totals: { open_count: 3, pipeline: '999.00', weighted: '400.30', committed: '350.00', won_count: 0, won: '0.00' },
  unconverted: [],
}

describe('forecast pivot', () => {
  it('names periods as the server does, fiscal years included', () => {
    expect(periodOf(2026, 11, 'month')).toBe('2026-11')
    expect(periodOf(2026, 11, 'quarter')).toBe('2026-Q4')
    expect(periodOf(2027, 2, 'quarter', 4)).toBe('2026-Q4') // fiscal year from April
    expect(periodOf(2027, 4, 'quarter', 4)).toBe('2027-Q1')
    expect(periodsBetween('2026-10-01', '2027-09-30', 'quarter')).toEqual(['2026-Q4', '2027-Q1', '2027-Q2', '2027-Q3'])
    expect(periodsBetween('2026-11-01', '2027-02-28', 'month')).toEqual(['2026-11', '2026-12', '2027-01', '2027-02'])
  })
  it('makes a row per owner with a cell per period, empty periods included, summed in cents', () => {
    const t = pivot(DATA, 'owner', 'weighted')
    expect(t.periods).toEqual(['2026-Q4', '2027-Q1', '2027-Q2', '2027-Q3'])
    expect(t.rows.map((r) => [r.id, r.total])).toEqual([['U1', 40010], ['U2', 20]])
    expect(t.perPeriod.get('2026-Q4')).toBe(10030)
    expect(pivot(DATA, 'none', 'committed').rows).toEqual([{ id: '', cells: new Map([['2026-Q4', 5000], ['2027-Q2', 30000]]), total: 35000 }])
  })
})

describe('Forecast', () => {
  it('shows weighted and committed totals and a column per period, and asks again on a new period', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/crm/forecast') return json(200, DATA)
      if (c.path === '/api/v1/crm/pipelines') return json(200, { items: [] })
      if (c.path === '/api/v1/crm/settings') return json(200, { currency: 'EUR', fiscal_year_start_month: 1 })
      return undefined
    })
    render(<Forecast />, { wrapper: WithSession })
    expect((await screen.findByTestId('forecast-weighted')).textContent).toMatch(/€400\.30/)
    expect(screen.getByTestId('forecast-committed').textContent).toMatch(/€350\.00/)
    const table = screen.getByRole('table')
    expect(within(table).getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['Owner', 'Q4 2026', 'Q1 2027', 'Q2 2027', 'Q3 2027', 'Total'])
    const first = calls.find((c) => c.path === '/api/v1/crm/forecast')!
    expect(first.query.get('period')).toBe('quarter')
    expect(first.query.get('group_by')).toBe('owner')
    fireEvent.click(screen.getByRole('radio', { name: 'Committed' }))
    expect(within(table).getAllByText('€350.00', { selector: 'strong' })).toHaveLength(2) // U1's total and the grand total
    fireEvent.change(screen.getByLabelText('Period'), { target: { value: 'month' } })
    await waitFor(() => expect(calls.filter((c) => c.path === '/api/v1/crm/forecast').at(-1)!.query.get('period')).toBe('month'))
  })
})
