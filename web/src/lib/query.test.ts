import { describe, expect, it } from 'vitest'
import { buildListQuery, nextSort, parseListQuery, sortDirection } from './query'

describe('buildListQuery', () => {
  it('builds limit, cursor, sort, q, view and deleted', () => {
    const qs = buildListQuery({ limit: 50, cursor: 'abc.def', sort: '-due_at', q: '  report ', view: 'mine', deleted: 'only' })
    expect(qs).toBe('limit=50&cursor=abc.def&sort=-due_at&q=report&view=mine&deleted=only')
  })

  it('writes equality filters as field=value and operators as field[op]=value', () => {
    const qs = buildListQuery({
      filters: [
        { field: 'status', op: 'eq', value: 'todo' },
        { field: 'due_at', op: 'gte', value: '2026-01-01T00:00:00.000Z' },
        { field: 'priority', op: 'in', value: '3,4' },
      ],
    })
    const params = new URLSearchParams(qs)
    expect(params.get('status')).toBe('todo')
    expect(params.get('due_at[gte]')).toBe('2026-01-01T00:00:00.000Z')
    expect(params.get('priority[in]')).toBe('3,4')
    expect(qs).toContain('due_at%5Bgte%5D=')
  })

  it('leaves out empty values and the default deleted mode', () => {
    expect(buildListQuery({ q: '   ', filters: [{ field: 'status', op: 'eq', value: '' }], deleted: 'exclude' })).toBe('')
  })

  it('turns isnull into true/false', () => {
    expect(buildListQuery({ filters: [{ field: 'parent_id', op: 'isnull', value: '' }] })).toBe('parent_id%5Bisnull%5D=true')
    expect(buildListQuery({ filters: [{ field: 'parent_id', op: 'isnull', value: 'false' }] })).toBe('parent_id%5Bisnull%5D=false')
  })

  it('round-trips through parseListQuery', () => {
    const state = { q: 'x', sort: 'title', view: 'overdue', filters: [{ field: 'status', op: 'ne', value: 'done' }] }
    expect(parseListQuery(new URLSearchParams(buildListQuery(state)))).toEqual({ ...state })
  })
})

describe('sorting', () => {
  it('toggles ascending then descending', () => {
    expect(nextSort(undefined, 'title')).toBe('title')
    expect(nextSort('title', 'title')).toBe('-title')
    expect(nextSort('-title', 'title')).toBe('title')
    expect(nextSort('-title', 'due_at')).toBe('due_at')
  })
  it('reports the direction of the first sort key', () => {
    expect(sortDirection('-due_at,title', 'due_at')).toBe('descending')
    expect(sortDirection('title', 'title')).toBe('ascending')
    expect(sortDirection('title', 'due_at')).toBe('none')
  })
})
