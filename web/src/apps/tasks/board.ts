// Kanban arithmetic, kept pure for tests: where a card lands and what position it gets.

export interface Card {
  id: string
  status: string
  position: number
  [k: string]: unknown
}

export const GAP = 1024

/** A position strictly between two neighbours, or null when there is no room (equal neighbours). */
export function positionBetween(before: number | undefined, after: number | undefined): number | null {
  if (before === undefined && after === undefined) return GAP
  if (before === undefined) return after! - GAP
  if (after === undefined) return before + GAP
  const mid = (before + after) / 2
  return mid > before && mid < after ? mid : null
}

/** The cards of one column after `card` is dropped at `index` (the card removed from wherever it was). */
export function insertAt(cards: Card[], card: Card, index: number): Card[] {
  const rest = cards.filter((c) => c.id !== card.id)
  const i = Math.max(0, Math.min(index, rest.length))
  return [...rest.slice(0, i), card, ...rest.slice(i)]
}

/** New positions for a column whose neighbours collide: evenly spaced, in the shown order. */
export function renumber(cards: Card[]): Map<string, number> {
  const out = new Map<string, number>()
  cards.forEach((c, i) => {
    const p = (i + 1) * GAP
    if (c.position !== p) out.set(c.id, p)
  })
  return out
}

/** The index a pointer at `y` points to among card rectangles (top, height) of a column. */
export function dropIndex(y: number, rects: { top: number; height: number }[]): number {
  for (let i = 0; i < rects.length; i++) {
    const r = rects[i]!
    if (y < r.top + r.height / 2) return i
  }
  return rects.length
}
