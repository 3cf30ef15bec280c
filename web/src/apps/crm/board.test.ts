import { describe, expect, it } from 'vitest'
import { board as fixture, deal } from '../../test/crm.fixture'
import { addCard, appendPage, keepNames, moveAction, moveCard, replaceCard, revertCard, withTotals } from './board'
import { formatMoney, fromCents, toCents } from './money'

describe('money', () => {
  it('adds in cents, exactly', () => {
    expect(toCents('0.10') + toCents('0.20')).toBe(30)
    expect(fromCents(toCents('1234.5') + toCents('0.05'))).toBe('1234.55')
    expect(toCents('12')).toBe(1200)
    expect(toCents('-3.07')).toBe(-307)
    expect(toCents('junk')).toBe(0)
  })
  it('formats in the currency', () => {
    expect(formatMoney('1500.00', 'EUR')).toMatch(/1,500\.00|1\.500,00|1 500,00/)
    expect(formatMoney('1500.00', 'EUR')).toMatch(/€/)
  })
})

describe('board state', () => {
  it('moves a card with its count and totals, and takes the stage kind and probability', () => {
    const b = moveCard(fixture(), 'D1', 'S2')
    const [s1, s2] = b.columns
    expect(s1!.items.map((d) => d.id)).toEqual(['D2'])
    expect(s1!.count).toBe(2)
    expect(s1!.total).toBe('500.00')
    expect(s1!.weighted).toBe('100.00') // 300 - 1000 × 20 %
    expect(s2!.items[0]).toMatchObject({ id: 'D1', stage_id: 'S2', probability: 60, status: 'open' })
    expect(s2!.count).toBe(2)
    expect(s2!.total).toBe('1200.00')
    expect(s2!.weighted).toBe('720.00')
    const won = moveCard(fixture(), 'D1', 'S3').columns[2]!
    expect(won.items[0]).toMatchObject({ status: 'won', probability: 100 })
  })

  it('moves only the count for a deal in another currency (the server converts)', () => {
    const b0 = fixture()
    b0.columns[0]!.items[0] = deal('D1', 'Dollar deal', 'S1', '1000.00', { currency: 'USD' })
    const b = moveCard(b0, 'D1', 'S2')
    expect(b.columns[0]!.count).toBe(2)
    expect(b.columns[0]!.total).toBe('1500.00')
    expect(b.columns[1]!.total).toBe('200.00')
  })

  it('puts a refused move back, keeping what changed meanwhile', () => {
    const before = fixture()
    let now = moveCard(before, 'D1', 'S2')
    now = addCard(now, deal('D9', 'New', 'S1', '50.00'))
    const back = revertCard(now, before, 'D1')
    expect(back.columns[0]!.items.map((d) => d.id)).toEqual(['D1', 'D9', 'D2'])
    expect(back.columns[0]!.count).toBe(4)
    expect(back.columns[0]!.total).toBe('1550.00')
    expect(back.columns[1]!.items.map((d) => d.id)).toEqual(['D4'])
    expect(back.columns[1]!.total).toBe('200.00')
    expect(back.columns[1]!.weighted).toBe('120.00')
  })

  it('takes server totals without losing shown cards, and appends pages without duplicates', () => {
    const fresh = fixture()
    fresh.columns[0] = { ...fresh.columns[0]!, count: 9, total: '9.00', items: [] }
    const b = withTotals(fixture(), fresh)
    expect(b.columns[0]!.count).toBe(9)
    expect(b.columns[0]!.items).toHaveLength(2)
    const more = appendPage(b, 'S1', [deal('D2', 'Beta deal', 'S1', '500.00'), deal('D3', 'Gamma deal', 'S1', '0.00')], null)
    expect(more.columns[0]!.items.map((d) => d.id)).toEqual(['D1', 'D2', 'D3'])
    expect(more.columns[0]!.next_cursor).toBeNull()
  })

  it('picks the action for each kind of move', () => {
    const b = fixture()
    const open = b.columns[0]!.items[0]!
    expect(moveAction(open, b.columns[1]!.stage)).toBe('move')
    expect(moveAction(open, b.columns[2]!.stage)).toBe('win')
    expect(moveAction(open, b.columns[3]!.stage)).toBe('lose')
    expect(moveAction({ ...open, status: 'lost' }, b.columns[1]!.stage)).toBe('reopen')
    expect(moveAction({ ...open, status: 'won' }, b.columns[2]!.stage)).toBe('move')
  })

  it('keeps the board names of a card the server answered without them, unless its references changed', () => {
    const card = deal('D1', 'Alpha deal', 'S1', '1000.00', { company_id: 'C1', company_name: 'Acme', owner_id: 'U1', owner_name: 'Ada' })
    const b = fixture()
    b.columns[0]!.items[0] = card
    const same = replaceCard(b, { ...card, company_name: undefined, owner_name: undefined, probability: 60 })
    expect(same.columns[0]!.items[0]).toMatchObject({ company_name: 'Acme', owner_name: 'Ada', probability: 60 })
    const other = keepNames(card, { ...card, company_id: 'C2', company_name: undefined, owner_name: undefined })
    expect(other.company_name).toBeUndefined()
    expect(other.owner_name).toBe('Ada')
  })
})
