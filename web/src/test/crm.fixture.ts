// CRM resources and a pipeline board answer for component tests (shapes of the real API).
import type { FieldMeta, ResourceMeta } from '../lib/meta'
import type { BoardData, Deal } from '../apps/crm/types'

const f = (name: string, type: FieldMeta['type'], extra: Partial<FieldMeta> = {}): FieldMeta => ({
  name, label: name, type, required: false, nullable: true, readonly: false, filterable: true, sortable: false, searchable: false, ...extra,
})

const action = (name: string) => ({ name, summary: name, permission: `crm.deals.${name}`, allowed: true, input: null })

export const DEALS: ResourceMeta = {
  app: 'crm', name: 'deals', title: 'Deals', entity: 'deal', path: '/api/v1/crm/deals', title_field: 'title',
  fields: [f('id', 'string', { readonly: true }), f('title', 'string', { required: true }), f('amount', 'decimal'), f('currency', 'string'),
    f('stage_id', 'reference', { reference: 'crm.stages' }), f('owner_id', 'reference', { reference: 'identity.users' }),
    f('company_id', 'reference', { reference: 'crm.companies' }), f('expected_close_date', 'date'), f('probability', 'integer')],
  filters: ['stage_id', 'owner_id'], sorts: ['updated_at'], default_sort: '-updated_at', search: ['title'], views: [],
  actions: ['move', 'win', 'lose', 'reopen'].map(action),
  permissions: { read: true, create: true, update: true, delete: true, export: true, import: true },
}

let n = 0
export function deal(id: string, title: string, stage_id: string, amount: string, extra: Partial<Deal> = {}): Deal {
  return {
    id, title, amount, currency: 'EUR', expected_close_date: '2030-03-01', probability: 20, owner_id: null, pipeline_id: 'P1', stage_id,
    status: 'open', committed: false, company_id: null, contact_id: null, updated_at: `2026-11-25T10:00:0${n++ % 10}Z`, version: 1, ...extra,
  }
}

export function board(): BoardData {
  const stage = (id: string, name: string, position: number, probability: number, kind: 'open' | 'won' | 'lost') => ({ id, name, position, probability, kind })
  return {
    pipeline: { id: 'P1', name: 'Sales' },
    currency: 'EUR',
    owner_id: null,
    unconverted: [],
    columns: [
      { stage: stage('S1', 'Qualified', 0, 20, 'open'), count: 3, total: '1500.00', weighted: '300.00', by_currency: [],
        items: [deal('D1', 'Alpha deal', 'S1', '1000.00'), deal('D2', 'Beta deal', 'S1', '500.00')], next_cursor: 'c1' },
      { stage: stage('S2', 'Proposal', 1, 60, 'open'), count: 1, total: '200.00', weighted: '120.00', by_currency: [],
        items: [deal('D4', 'Delta deal', 'S2', '200.00', { probability: 60 })], next_cursor: null },
      { stage: stage('S3', 'Won', 2, 100, 'won'), count: 0, total: '0.00', weighted: '0.00', by_currency: [], items: [], next_cursor: null },
      { stage: stage('S4', 'Lost', 3, 0, 'lost'), count: 0, total: '0.00', weighted: '0.00', by_currency: [], items: [], next_cursor: null },
    ],
  }
}
