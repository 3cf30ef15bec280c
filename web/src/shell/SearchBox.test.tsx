import { fireEvent, render, screen, waitFor } from '@testing-library/react'
import { beforeEach, describe, expect, it } from 'vitest'
import { resetFeatures } from '../lib/features'
import { json, mockFetch } from '../test/http'
import { WithSession } from '../test/session'
import { SearchBox } from './SearchBox'

beforeEach(() => resetFeatures())

describe('SearchBox', () => {
  it('falls back to each resource’s full-text list when /api/v1/search is missing, grouped by app', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/tasks/tasks') return json(200, { items: [{ id: 'T1', title: 'Launch plan' }], next_cursor: null })
      if (c.path === '/api/v1/identity/users') return json(200, { items: [{ id: 'U1', name: 'Lana Launcher' }], next_cursor: null })
      if (c.path.startsWith('/api/v1/') && c.path !== '/api/v1/search') return json(200, { items: [], next_cursor: null })
      return undefined
    })
    render(<SearchBox />, { wrapper: WithSession })
    const box = screen.getByRole('combobox', { name: 'Search everything' })
    fireEvent.change(box, { target: { value: 'launch' } })
    expect(await screen.findByText('Launch plan')).toBeTruthy()
    expect(screen.getByText('Lana Launcher')).toBeTruthy()
    expect(screen.getByRole('group', { name: 'Tasks' })).toBeTruthy()
    expect(screen.getByRole('group', { name: 'Identity' })).toBeTruthy()
    expect(calls.some((c) => c.path === '/api/v1/search')).toBe(true)
    expect(calls.find((c) => c.path === '/api/v1/tasks/tasks')!.query.get('q')).toBe('launch')
  })

  it('moves through results with the arrow keys and opens one with Enter', async () => {
    mockFetch((c) =>
      c.path === '/api/v1/search'
        ? json(200, { items: [{ app: 'tasks', resource: 'tasks', id: 'T1', title: 'One' }, { app: 'tasks', resource: 'projects', id: 'P1', title: 'Two' }] })
        : undefined,
    )
    render(<SearchBox />, { wrapper: WithSession })
    const box = screen.getByRole('combobox')
    fireEvent.change(box, { target: { value: 'o' } })
    await screen.findByText('Two')
    expect(screen.getAllByRole('option')[0]!.getAttribute('aria-selected')).toBe('true')
    fireEvent.keyDown(box, { key: 'ArrowDown' })
    await waitFor(() => expect(screen.getAllByRole('option')[1]!.getAttribute('aria-selected')).toBe('true'))
    expect(box.getAttribute('aria-activedescendant')).toBe(screen.getAllByRole('option')[1]!.id)
    fireEvent.keyDown(box, { key: 'Enter' })
    expect(window.location.pathname).toBe('/r/tasks/projects/P1')
  })
})
