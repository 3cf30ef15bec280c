// The pipeline board's state changes, kept pure for tests: a card moving between columns
// (optimistically, with its count and totals) and the server's totals coming back.
import { fromCents, toCents } from './money'
import type { BoardData, Column, Deal, Stage } from './types'

/** Where a card sits: its column index and its index in the column. */
export function locate(board: BoardData, dealId: string): { col: number; index: number; deal: Deal } | null {
  for (let c = 0; c < board.columns.length; c++) {
    const i = board.columns[c]!.items.findIndex((d) => d.id === dealId)
    if (i >= 0) return { col: c, index: i, deal: board.columns[c]!.items[i]! }
  }
  return null
}

function adjust(col: Column, deal: Deal, sign: 1 | -1, orgCurrency: string): Column {
  // Totals are in the org currency; a deal in another currency is converted by the server
  // with its stored rates, so only the count moves here until the server's totals arrive.
  const same = deal.currency === orgCurrency
  const amount = same ? toCents(deal.amount) : 0
  const weighted = same ? Math.round((amount * deal.probability) / 100) : 0
  return {
    ...col,
    count: Math.max(0, col.count + sign),
    total: fromCents(toCents(col.total) + sign * amount),
    weighted: fromCents(toCents(col.weighted) + sign * weighted),
  }
}

/**
 * The board after `dealId` moved to `stageId` (at the top of the column, as the server
 * orders cards most recently moved first). The deal takes the stage's kind and default
 * probability unless `probability` is given.
 */
export function moveCard(board: BoardData, dealId: string, stageId: string, probability?: number): BoardData {
  const at = locate(board, dealId)
  const to = board.columns.findIndex((c) => c.stage.id === stageId)
  if (!at || to < 0 || at.col === to) return board
  const stage: Stage = board.columns[to]!.stage
  const moved: Deal = {
    ...at.deal,
    stage_id: stage.id,
    status: stage.kind,
    probability: probability ?? (stage.kind === 'won' ? 100 : stage.kind === 'lost' ? 0 : stage.probability),
  }
  const columns = board.columns.map((col, i) => {
    if (i === at.col) return adjust({ ...col, items: col.items.filter((d) => d.id !== dealId) }, at.deal, -1, board.currency)
    if (i === to) return adjust({ ...col, items: [moved, ...col.items] }, moved, 1, board.currency)
    return col
  })
  return { ...board, columns }
}

/** Puts the server's copy of a deal in place of the optimistic one. */
export function replaceCard(board: BoardData, deal: Deal): BoardData {
  return { ...board, columns: board.columns.map((c) => ({ ...c, items: c.items.map((d) => (d.id === deal.id ? keepNames(d, deal) : d)) })) }
}

/** A deal as an action returns it has no board names: keep the card's while the ids are the same. */
export function keepNames(card: Deal, deal: Deal): Deal {
  const out = { ...deal }
  if (out.company_name === undefined && card.company_id === deal.company_id) out.company_name = card.company_name
  if (out.owner_name === undefined && card.owner_id === deal.owner_id) out.owner_name = card.owner_name
  return out
}

/** Takes counts and totals from a fresh board answer, keeping the cards already shown. */
export function withTotals(board: BoardData, fresh: BoardData): BoardData {
  const byStage = new Map(fresh.columns.map((c) => [c.stage.id, c]))
  return {
    ...board,
    unconverted: fresh.unconverted,
    columns: board.columns.map((c) => {
      const f = byStage.get(c.stage.id)
      return f ? { ...c, count: f.count, total: f.total, weighted: f.weighted, by_currency: f.by_currency } : c
    }),
  }
}

/** Adds the next page of a column, skipping cards already shown (a card moved meanwhile). */
export function appendPage(board: BoardData, stageId: string, items: Deal[], next: string | null): BoardData {
  return {
    ...board,
    columns: board.columns.map((c) => {
      if (c.stage.id !== stageId) return c
      const seen = new Set(board.columns.flatMap((x) => x.items.map((d) => d.id)))
      return { ...c, items: [...c.items, ...items.filter((d) => !seen.has(d.id))], next_cursor: next }
    }),
  }
}

/** Adds a created deal at the top of its column, with its count and totals. */
export function addCard(board: BoardData, deal: Deal): BoardData {
  return {
    ...board,
    columns: board.columns.map((c) => (c.stage.id === deal.stage_id ? adjust({ ...c, items: [deal, ...c.items] }, deal, 1, board.currency) : c)),
  }
}

/** Which action moves a deal from one stage kind to another. */
export function moveAction(from: Deal, to: Stage): 'move' | 'win' | 'lose' | 'reopen' {
  if (to.kind === 'lost') return 'lose'
  if (to.kind === 'won') return from.status === 'won' ? 'move' : 'win'
  return from.status === 'open' ? 'move' : 'reopen'
}

/**
 * The board with one card put back where it was before a refused move: out of the column
 * that holds it now and into its old place, counts and totals moved back with it; other
 * changes since (a page loaded, a card added) are kept.
 */
export function revertCard(now: BoardData, before: BoardData, dealId: string): BoardData {
  const was = locate(before, dealId)
  const is = locate(now, dealId)
  if (!was || !is || is.col === was.col) return now
  return {
    ...now,
    columns: now.columns.map((c, i) => {
      if (i === is.col) return adjust({ ...c, items: c.items.filter((d) => d.id !== dealId) }, is.deal, -1, now.currency)
      if (i === was.col) {
        const items = [...c.items]
        items.splice(Math.min(was.index, items.length), 0, was.deal)
        return adjust({ ...c, items }, was.deal, 1, now.currency)
      }
      return c
    }),
  }
}
