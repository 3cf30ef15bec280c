import { fireEvent, render, screen, waitFor } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import { json, mockFetch, problem } from '../test/http'
import { PROJECTS, TASKS, WithSession } from '../test/session'
import { RecordForm } from './RecordForm'

describe('RecordForm', () => {
  it('draws a labelled input for every writable field from the metadata', () => {
    mockFetch(() => json(200, { items: [] }))
    render(<RecordForm resource={TASKS} onSaved={() => {}} />, { wrapper: WithSession })
    for (const label of ['Title', 'Description', 'Status', 'Priority', 'Assignee', 'Due at', 'Labels', 'Project']) {
      expect(screen.getByLabelText(new RegExp(`^${label}`))).toBeTruthy()
    }
    // read-only fields are not inputs
    expect(screen.queryByLabelText(/^Completed at/)).toBeNull()
    expect((screen.getByLabelText(/^Status/) as HTMLSelectElement).value).toBe('todo')
    expect(screen.getByRole('button', { name: 'Create task' })).toBeTruthy()
  })

  it('checks required fields and limits before sending anything', async () => {
    const calls = mockFetch(() => json(200, { items: [] }))
    render(<RecordForm resource={TASKS} onSaved={() => {}} />, { wrapper: WithSession })
    fireEvent.change(screen.getByLabelText(/^Priority/), { target: { value: '9' } })
    fireEvent.click(screen.getByRole('button', { name: 'Create task' }))
    expect(await screen.findByText('This field is required.')).toBeTruthy()
    expect(screen.getByText('Must be at most 4.')).toBeTruthy()
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0)
    expect(screen.getByLabelText(/^Title/).getAttribute('aria-invalid')).toBe('true')
  })

  it('shows the server errors under the field each pointer names', async () => {
    const calls = mockFetch((c) =>
      c.method === 'POST'
        ? problem(422, 'The request body is invalid.', [{ pointer: '/due_timezone', detail: "unknown time zone 'Mars/Olympus'" }])
        : json(200, { items: [] }),
    )
    const onSaved = vi.fn()
    render(<RecordForm resource={TASKS} onSaved={onSaved} />, { wrapper: WithSession })
    fireEvent.change(screen.getByLabelText(/^Title/), { target: { value: 'Land on Mars' } })
    fireEvent.change(screen.getByLabelText(/^Due timezone/), { target: { value: 'Mars/Olympus' } })
    fireEvent.click(screen.getByRole('button', { name: 'Create task' }))
    const msg = await screen.findByText("unknown time zone 'Mars/Olympus'")
    const input = screen.getByLabelText(/^Due timezone/)
    expect(input.getAttribute('aria-describedby')).toBe(msg.id)
    expect(input.getAttribute('aria-invalid')).toBe('true')
    expect(calls.find((c) => c.method === 'POST')!.body).toMatchObject({ title: 'Land on Mars', due_timezone: 'Mars/Olympus' })
    expect(onSaved).not.toHaveBeenCalled()
  })

  it('sends only the changes with If-Match and offers reload or overwrite on 412', async () => {
    const record = { id: 'P1', version: 3, name: 'Web', description: '', color: '#4f46e5', archived: false }
    let patches = 0
    const calls = mockFetch((c) => {
      if (c.method === 'PATCH') return patches++ === 0 ? problem(412, 'The record was changed by someone else.') : json(200, { ...record, name: 'Website', version: 5 }, { etag: '"P1.5"' })
      if (c.method === 'GET' && c.path === '/api/v1/tasks/projects/P1') return json(200, { ...record, description: 'theirs', version: 4 }, { etag: '"P1.4"' })
      return undefined
    })
    const onSaved = vi.fn()
    render(<RecordForm resource={PROJECTS} record={record} etag={'"P1.3"'} onSaved={onSaved} />, { wrapper: WithSession })
    fireEvent.change(screen.getByLabelText(/^Name/), { target: { value: 'Website' } })
    fireEvent.click(screen.getByRole('button', { name: 'Save changes' }))
    expect(await screen.findByText(/changed by someone else since you opened it — reload or overwrite/)).toBeTruthy()
    const first = calls.find((c) => c.method === 'PATCH')!
    expect(first.headers['if-match']).toBe('"P1.3"')
    expect(first.body).toEqual({ name: 'Website' })
    fireEvent.click(screen.getByRole('button', { name: /Overwrite/ }))
    await waitFor(() => expect(onSaved).toHaveBeenCalled())
    const second = calls.filter((c) => c.method === 'PATCH')[1]!
    expect(second.headers['if-match']).toBe('"P1.4"')
    expect(second.body).toEqual({ name: 'Website' })
  })

  it('shows values only the create response carries (an API key) once', async () => {
    const keys = { ...TASKS, app: 'identity', name: 'api-keys', entity: 'api_key', path: '/api/v1/identity/api-keys', title_field: 'name', fields: [{ name: 'name', label: 'Name', type: 'string' as const, required: true, nullable: false, readonly: false, filterable: false, sortable: false, searchable: false }, { name: 'id', label: 'Id', type: 'string' as const, required: false, nullable: false, readonly: true, filterable: false, sortable: false, searchable: false }] }
    mockFetch(() => json(201, { id: 'K1', name: 'ci', key: 'nxk_abc_secret' }))
    const onSaved = vi.fn()
    render(<RecordForm resource={keys} onSaved={onSaved} />, { wrapper: WithSession })
    fireEvent.change(screen.getByLabelText(/^Name/), { target: { value: 'ci' } })
    fireEvent.click(screen.getByRole('button', { name: /Create/ }))
    expect((await screen.findByTestId('secret-key')).textContent).toBe('nxk_abc_secret')
    expect(onSaved).not.toHaveBeenCalled()
    fireEvent.click(screen.getByRole('button', { name: 'I have saved it' }))
    expect(onSaved).toHaveBeenCalled()
  })
})

describe('RecordForm and the richer metadata', () => {
  const withMeta = {
    ...TASKS,
    fields: TASKS.fields.map((f) =>
      f.name === 'checklist'
        ? { ...f, type: 'list' as const, readonly: false, items: { type: 'object', fields: [{ name: 'text', type: 'string', required: true }, { name: 'done', type: 'boolean', required: false }] } }
        : f.name === 'project_id'
          ? { ...f, updatable: false }
          : f,
    ).concat([{ name: 'secret_word', label: 'Secret word', type: 'string', required: false, nullable: true, readonly: false, create_only: true, updatable: false, filterable: false, sortable: false, searchable: false }]),
  }

  it('edits a checklist as rows of {text, done} and shows create-only fields on create', async () => {
    const calls = mockFetch((c) => (c.method === 'POST' ? json(201, { id: 'T9', title: 'x' }) : json(200, { items: [] })))
    render(<RecordForm resource={withMeta} onSaved={() => {}} />, { wrapper: WithSession })
    expect(screen.getByLabelText(/^Secret word/)).toBeTruthy()
    fireEvent.change(screen.getByLabelText(/^Title/), { target: { value: 'Pack' } })
    fireEvent.click(screen.getByRole('button', { name: 'Add an item' }))
    fireEvent.change(screen.getByLabelText('Text of item 1'), { target: { value: 'Passport' } })
    fireEvent.click(screen.getByRole('checkbox', { name: 'Done: Passport' }))
    fireEvent.click(screen.getByRole('button', { name: 'Add an item' })) // a blank row is dropped
    fireEvent.click(screen.getByRole('button', { name: 'Create task' }))
    await waitFor(() => expect(calls.some((c) => c.method === 'POST')).toBe(true))
    const body = calls.find((c) => c.method === 'POST')!.body as { checklist: unknown }
    expect(body.checklist).toEqual([{ text: 'Passport', done: true }])
  })

  it('on edit hides create-only fields and shows non-updatable ones read-only', () => {
    mockFetch(() => json(200, { items: [] }))
    render(<RecordForm resource={withMeta} record={{ id: 'T1', title: 'Pack', checklist: [], project_id: null }} onSaved={() => {}} />, { wrapper: WithSession })
    expect(screen.queryByLabelText(/^Secret word/)).toBeNull()
    expect(screen.getByText('Project')).toBeTruthy()
    expect(screen.queryByRole('combobox', { name: /^Project/ })).toBeNull()
  })
})
