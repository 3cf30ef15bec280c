import { fireEvent, render, screen } from '@testing-library/react'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { resetFeatures } from '../lib/features'
import { json, mockFetch } from '../test/http'
import { Bell } from './Bell'

class FakeSocket {
  static last: FakeSocket | null = null
  sent: string[] = []
  onopen: (() => void) | null = null
  onmessage: ((e: { data: string }) => void) | null = null
  onclose: ((e: { code: number }) => void) | null = null
  constructor(public url: string) {
    FakeSocket.last = this
  }
  send(s: string) {
    this.sent.push(s)
  }
  close() {}
}

beforeEach(() => {
  resetFeatures()
  FakeSocket.last = null
  vi.stubGlobal('WebSocket', FakeSocket)
})

describe('Bell', () => {
  it('says notifications are not available when the server has none', async () => {
    mockFetch(() => undefined)
    render(<Bell />)
    const bell = await screen.findByRole('button', { name: 'Notifications (not available)' })
    fireEvent.click(bell)
    expect(screen.getByText('Not available')).toBeTruthy()
    expect(FakeSocket.last).toBeNull()
  })

  it('shows the unread count, subscribes over the WebSocket and marks read', async () => {
    const calls = mockFetch((c) =>
      c.path === '/api/v1/notifications'
        ? json(200, { items: [{ id: 'N1', type: 't', title: 'Ada assigned you a task', body: '', link: null, created_at: new Date().toISOString(), read_at: null }], next_cursor: null, unread_count: 1 })
        : json(200, {}),
    )
    render(<Bell />)
    const bell = await screen.findByRole('button', { name: 'Notifications, 1 unread' })
    const ws = FakeSocket.last!
    expect(ws.url).toMatch(/\/api\/v1\/ws$/)
    ws.onmessage!({ data: JSON.stringify({ type: 'ready' }) })
    expect(JSON.parse(ws.sent.at(-1)!)).toEqual({ type: 'subscribe', topics: ['notifications'] })
    ws.onmessage!({ data: JSON.stringify({ type: 'notification', notification: { id: 'N2', type: 't', title: 'New comment', created_at: new Date().toISOString(), read_at: null } }) })
    expect(await screen.findByRole('button', { name: 'Notifications, 2 unread' })).toBeTruthy()
    fireEvent.click(bell)
    fireEvent.click(screen.getByRole('button', { name: 'Mark all read' }))
    expect(calls.at(-1)!.path).toBe('/api/v1/notifications/read-all')
    expect(await screen.findByRole('button', { name: 'Notifications' })).toBeTruthy()
  })
})
