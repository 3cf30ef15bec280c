import { describe, expect, it } from 'vitest'
import { bodyFromDraft, fromDraft, initialDraft, validateDraft, validateField } from './forms'
import { editableFields, type FieldMeta, type ResourceMeta } from './meta'
import { pointerField } from './api'
import { TASKS } from '../test/session'

const f = (over: Partial<FieldMeta>): FieldMeta => ({
  name: 'x', label: 'X', type: 'string', required: false, nullable: false, readonly: false, filterable: false, sortable: false, searchable: false, ...over,
})

describe('validateField', () => {
  it('checks required, lengths and pattern', () => {
    expect(validateField(f({ required: true }), '  ')).toBe('This field is required.')
    expect(validateField(f({ max_length: 3 }), 'abcd')).toMatch(/At most 3 characters/)
    expect(validateField(f({ min_length: 2 }), 'a')).toMatch(/At least 2/)
    expect(validateField(f({ pattern: '^#[0-9a-fA-F]{6}$' }), 'red')).toMatch(/format/)
    expect(validateField(f({ pattern: '^#[0-9a-fA-F]{6}$' }), '#aabbcc')).toBeNull()
  })
  it('counts characters, not UTF-16 units', () => {
    expect(validateField(f({ max_length: 2 }), '😀😀')).toBeNull()
  })
  it('checks numbers and ranges', () => {
    expect(validateField(f({ type: 'integer', ge: 0, le: 4 }), '5')).toBe('Must be at most 4.')
    expect(validateField(f({ type: 'integer' }), '1.5')).toBe('Enter a whole number.')
    expect(validateField(f({ type: 'decimal' }), '12.50')).toBeNull()
    expect(validateField(f({ type: 'number', gt: 0 }), '0')).toBe('Must be more than 0.')
  })
  it('checks lists, choices and JSON', () => {
    expect(validateField(f({ type: 'list', max_length: 1 }), ['a', 'b'])).toBe('At most 1 items.')
    expect(validateField(f({ type: 'choice', choices: ['a'] }), 'b')).toMatch(/Choose one/)
    expect(validateField(f({ type: 'json' }), '{bad')).toBe('Enter valid JSON.')
  })
})

describe('form bodies from task metadata', () => {
  const fields = editableFields(TASKS)

  it('puts the title first', () => {
    expect(fields[0]!.name).toBe('title')
  })

  it('starts from the declared defaults', () => {
    const d = initialDraft(fields)
    expect(d.status).toBe('todo')
    expect(d.priority).toBe('0')
    expect(d.labels).toEqual([])
    expect(validateDraft(fields, d)).toEqual({ title: 'This field is required.' })
  })

  it('creates with typed values and leaves blank nullable fields out', () => {
    const d = { ...initialDraft(fields), title: 'Ship it', priority: '3', labels: ['a'] }
    const body = bodyFromDraft(fields, d)
    expect(body).toMatchObject({ title: 'Ship it', priority: 3, status: 'todo', labels: ['a'] })
    expect(body).not.toHaveProperty('assignee_id')
    expect(body).not.toHaveProperty('due_at')
  })

  it('sends only changed fields on edit, null for a cleared reference', () => {
    const record = { id: 't1', title: 'A', priority: 1, status: 'todo', assignee_id: 'u1', labels: [], checklist: [], description: '', due_timezone: 'UTC', position: 0, project_id: null, parent_id: null, due_at: null, due_date: null, recurrence: null }
    const d = { ...initialDraft(fields, record), priority: '2', assignee_id: '' }
    expect(bodyFromDraft(fields, d, record)).toEqual({ priority: 2, assignee_id: null })
  })

  it('converts a local date-time input to UTC', () => {
    const due = fields.find((x) => x.name === 'due_at')!
    const iso = fromDraft(due, '2026-03-01T09:30') as string
    expect(new Date(iso).getTime()).toBe(new Date('2026-03-01T09:30').getTime())
    expect(iso.endsWith('Z')).toBe(true)
  })
})

describe('custom fields', () => {
  const resource = {
    app: 'crm', name: 'contacts', title: 'Contacts', entity: 'contact', path: '/api/v1/crm/contacts', title_field: 'name',
    fields: [
      { name: 'first_name', label: 'First name', type: 'string', required: false, nullable: false, readonly: false, filterable: true, sortable: false, searchable: false },
      { name: 'custom', label: 'Custom', type: 'json', required: false, nullable: false, readonly: false, filterable: false, sortable: false, searchable: false },
    ],
    filters: [], sorts: [], default_sort: 'name', search: [], views: [], actions: [],
    permissions: { read: true, create: true, update: true, delete: true, export: true, import: true },
    custom_fields: [
      { name: 'custom.tier', key: 'tier', label: 'Tier', type: 'choice', required: true, choices: ['gold', 'silver'] },
      { name: 'custom.size', key: 'size', label: 'Size', type: 'number', required: false },
    ],
  } as ResourceMeta

  it('edits each custom field as its own input and sends them in one custom object', () => {
    const fields = editableFields(resource)
    expect(fields.map((f) => f.name)).toEqual(['first_name', 'custom.tier', 'custom.size'])
    const record = { id: 'C1', first_name: 'Ada', custom: { tier: 'gold', size: 41 } }
    const draft = initialDraft(fields, record)
    expect(draft['custom.tier']).toBe('gold')
    expect(validateDraft(fields, { ...draft, 'custom.tier': 'bronze' })['custom.tier']).toMatch(/gold, silver/)
    expect(bodyFromDraft(fields, { ...draft, 'custom.tier': 'silver', 'custom.size': '' }, record)).toEqual({
      custom: { tier: 'silver', size: null },
    })
    expect(bodyFromDraft(fields, { first_name: 'Bo', 'custom.tier': 'gold', 'custom.size': '42' })).toEqual({
      first_name: 'Bo', custom: { tier: 'gold', size: 42 },
    })
    expect(pointerField('/custom/tier')).toBe('custom.tier')
  })
})
