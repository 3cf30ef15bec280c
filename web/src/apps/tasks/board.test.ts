import { describe, expect, it } from 'vitest'
import { dropIndex, GAP, insertAt, positionBetween, renumber } from './board'

describe('kanban positions', () => {
  it('puts a card between, before or after its neighbours', () => {
    expect(positionBetween(1024, 2048)).toBe(1536)
    expect(positionBetween(undefined, 1024)).toBe(0)
    expect(positionBetween(2048, undefined)).toBe(2048 + GAP)
    expect(positionBetween(undefined, undefined)).toBe(GAP)
  })
  it('says when there is no room between equal neighbours', () => {
    expect(positionBetween(0, 0)).toBeNull()
  })
  it('inserts a moved card once, at the index', () => {
    const cards = ['a', 'b', 'c'].map((id, i) => ({ id, status: 'todo', position: i }))
    expect(insertAt(cards, { id: 'a', status: 'todo', position: 0 }, 2).map((c) => c.id)).toEqual(['b', 'c', 'a'])
    expect(insertAt(cards, { id: 'z', status: 'todo', position: 0 }, 1).map((c) => c.id)).toEqual(['a', 'z', 'b', 'c'])
  })
  it('renumbers only the cards whose position changes', () => {
    const m = renumber([{ id: 'a', status: 's', position: 1024 }, { id: 'b', status: 's', position: 0 }])
    expect([...m]).toEqual([['b', 2048]])
  })
  it('finds the drop index from the pointer', () => {
    const rects = [{ top: 0, height: 100 }, { top: 110, height: 100 }]
    expect(dropIndex(10, rects)).toBe(0)
    expect(dropIndex(120, rects)).toBe(1)
    expect(dropIndex(300, rects)).toBe(2)
  })
})
