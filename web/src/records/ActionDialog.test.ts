import { describe, expect, it } from 'vitest'
import type { ActionMeta } from '../lib/meta'
import { DEALS } from '../test/crm.fixture'
import { schemaFields } from './ActionDialog'

describe('schemaFields', () => {
  it('draws a record picker for an input that names its record type (x-reference), nullable or not', () => {
    const merge: ActionMeta = {
      name: 'merge', summary: '', permission: 'crm.deals.update', allowed: true,
      input: {
        type: 'object', required: ['duplicate_id'],
        properties: {
          duplicate_id: { type: 'string', 'x-reference': 'crm.deals' },
          company_id: { anyOf: [{ type: 'string' }, { type: 'null' }], 'x-reference': 'crm.companies' },
          note: { type: 'string' },
        },
      },
    }
    const [dup, company, note] = schemaFields(merge, DEALS)
    expect(dup).toMatchObject({ type: 'reference', reference: 'crm.deals', required: true })
    expect(company).toMatchObject({ type: 'reference', reference: 'crm.companies', nullable: true })
    expect(note!.type).toBe('string')
  })
})
