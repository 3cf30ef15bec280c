import { fireEvent, render, screen, waitFor } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { json, mockFetch } from '../test/http'
import { TASKS, WithSession } from '../test/session'
import { ListView } from './ListView'

const row = (id: string, title: string, extra: Record<string, unknown> = {}) => ({ id, title, status: 'todo', priority: 1, labels: [], version: 1, updated_at: '2026-01-01T00:00:00Z', ...extra })

describe('ListView', () => {
  it('asks for the first page with the default sort and shows the rows', async () => {
    const calls = mockFetch((c) => (c.path === '/api/v1/tasks/tasks' ? json(200, { items: [row('T1', 'Write the spec')], next_cursor: null }) : undefined))
    render(<ListView resource={TASKS} />, { wrapper: WithSession })
    expect(await screen.findByText('Write the spec')).toBeTruthy()
    const list = calls.find((c) => c.path === '/api/v1/tasks/tasks')!
    expect(list.query.get('limit')).toBe('50')
    expect(list.query.get('sort')).toBeNull()
  })

  it('builds sort, search and view query strings', async () => {
    const calls = mockFetch((c) => (c.path === '/api/v1/tasks/tasks' ? json(200, { items: [row('T1', 'A')], next_cursor: null }) : undefined))
    render(<ListView resource={TASKS} fixed={{ view: 'mine' }} />, { wrapper: WithSession })
    await screen.findByText('A')
    fireEvent.click(screen.getByRole('button', { name: /^Priority/ }))
    await waitFor(() => expect(calls.at(-1)!.query.get('sort')).toBe('priority'))
    fireEvent.click(screen.getByRole('button', { name: /^Priority/ }))
    await waitFor(() => expect(calls.at(-1)!.query.get('sort')).toBe('-priority'))
    expect(screen.getByRole('columnheader', { name: /Priority/ }).getAttribute('aria-sort')).toBe('descending')
    fireEvent.change(screen.getByLabelText('Search tasks'), { target: { value: 'launch' } })
    await waitFor(() => expect(calls.at(-1)!.query.get('q')).toBe('launch'))
    const last = calls.at(-1)!
    expect(last.query.get('view')).toBe('mine')
    expect(last.query.get('sort')).toBe('-priority')
  })

  it('adds typed filters as field[op]=value', async () => {
    const calls = mockFetch((c) => (c.path === '/api/v1/tasks/tasks' ? json(200, { items: [], next_cursor: null }) : undefined))
    render(<ListView resource={TASKS} />, { wrapper: WithSession })
    fireEvent.click(await screen.findByRole('button', { name: /^Filter/ }))
    fireEvent.click(screen.getByRole('button', { name: 'Add filter' }))
    fireEvent.change(screen.getByLabelText('Filter 1 field'), { target: { value: 'priority' } })
    fireEvent.change(screen.getByLabelText('Filter 1 operator'), { target: { value: 'gte' } })
    fireEvent.change(screen.getByLabelText('Filter 1 value'), { target: { value: '3' } })
    await waitFor(() => expect(calls.at(-1)!.query.get('priority[gte]')).toBe('3'))
  })

  it('pages with the cursor the server returned', async () => {
    const calls = mockFetch((c) => {
      if (c.path !== '/api/v1/tasks/tasks') return undefined
      return c.query.get('cursor') === 'NEXT' ? json(200, { items: [row('T2', 'Second')], next_cursor: null }) : json(200, { items: [row('T1', 'First')], next_cursor: 'NEXT' })
    })
    render(<ListView resource={TASKS} />, { wrapper: WithSession })
    fireEvent.click(await screen.findByRole('button', { name: 'Load more' }))
    expect(await screen.findByText('Second')).toBeTruthy()
    expect(screen.getByText('First')).toBeTruthy()
    expect(calls.filter((c) => c.path === '/api/v1/tasks/tasks').at(-1)!.query.get('cursor')).toBe('NEXT')
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull()
  })
})
