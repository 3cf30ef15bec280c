import { fireEvent, render, screen, waitFor, within } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { json, mockFetch } from '../../test/http'
import { TASKS, WithSession } from '../../test/session'
import { Board } from './Board'

const task = (id: string, title: string, status: string, position: number) => ({ id, title, status, position, priority: 0, labels: [], checklist: [], version: 1 })

describe('Board', () => {
  it('loads a column per status and moves a card with Alt+Arrow through the move action', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/tasks/tasks') {
        const s = c.query.get('status')
        return json(200, { items: s === 'todo' ? [task('A', 'Alpha', 'todo', 1024), task('B', 'Beta', 'todo', 2048)] : s === 'in_progress' ? [task('C', 'Gamma', 'in_progress', 1024)] : [], next_cursor: null })
      }
      if (c.path === '/api/v1/tasks/tasks/A/move') return json(200, { ...task('A', 'Alpha', 'in_progress', 2048), ...(c.body as object) })
      return undefined
    })
    render(<Board resource={TASKS} />, { wrapper: WithSession })
    const todo = await screen.findByRole('listitem', { name: 'To do column' })
    expect(within(todo).getByText('Alpha')).toBeTruthy()
    const lists = calls.filter((c) => c.path === '/api/v1/tasks/tasks')
    expect(lists.map((c) => c.query.get('status'))).toEqual(['todo', 'in_progress', 'done'])
    expect(lists[0]!.query.get('parent_id[isnull]')).toBe('true')
    expect(lists[0]!.query.get('sort')).toBe('position')

    const card = within(todo).getByText('Alpha').closest('article')!
    fireEvent.keyDown(card, { key: 'ArrowRight', altKey: true })
    const doing = screen.getByRole('listitem', { name: 'In progress column' })
    await waitFor(() => expect(within(doing).getByText('Alpha')).toBeTruthy())
    const move = calls.find((c) => c.path === '/api/v1/tasks/tasks/A/move')!
    expect(move.method).toBe('POST')
    expect(move.body).toEqual({ status: 'in_progress', position: 1024 + 1024 })
    expect(within(todo).queryByText('Alpha')).toBeNull()
  })
})
