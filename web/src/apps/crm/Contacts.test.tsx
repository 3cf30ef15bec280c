import { fireEvent, render, screen, waitFor } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import type { ResourceMeta } from '../../lib/meta'
import { DEALS } from '../../test/crm.fixture'
import { json, mockFetch } from '../../test/http'
import { WithSession } from '../../test/session'
import { Contacts } from './Contacts'

afterEach(() => window.history.replaceState(null, '', '/'))

const CONTACTS: ResourceMeta = {
  ...DEALS, name: 'contacts', title: 'Contacts', entity: 'contact', path: '/api/v1/crm/contacts', title_field: 'name',
  fields: [DEALS.fields[0]!, { ...DEALS.fields[1]!, name: 'name', label: 'Name' }], filters: [], sorts: [], search: ['name'], actions: [],
}

describe('Contacts', () => {
  it('imports a vCard file as text/vcard and shows the cards the server refused', async () => {
    const calls = mockFetch((c) => {
      if (c.path === '/api/v1/crm/contacts' && c.method === 'GET') return json(200, { items: [], next_cursor: null })
      if (c.path === '/api/v1/crm/contacts/vcard' && c.method === 'POST')
        return json(200, { cards: 2, created: 1, valid: 1, error_count: 1, dry_run: false, ids: ['C1'],
          errors: [{ card: 2, errors: [{ pointer: '/email', detail: 'not an e-mail address' }] }] })
      return undefined
    })
    render(<Contacts contacts={CONTACTS} />, { wrapper: WithSession })
    expect(screen.getByRole('button', { name: 'Export vCard' })).toBeTruthy()
    const vcf = 'BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada Lovelace\r\nEND:VCARD\r\n'
    fireEvent.change(screen.getByLabelText('vCard file'), { target: { files: [new File([vcf], 'people.vcf', { type: 'text/vcard' })] } })
    await waitFor(() => expect(screen.getByText(/1 of 2 contacts imported/)).toBeTruthy())
    expect(screen.getByText('Card 2: not an e-mail address')).toBeTruthy()
    const post = calls.find((c) => c.method === 'POST')!
    expect(post.headers['content-type']).toBe('text/vcard')
    expect(post.body).toBe(vcf)
  })

  it('offers neither button to someone who may not import or export', () => {
    mockFetch(() => json(200, { items: [], next_cursor: null }))
    const perms = { ...CONTACTS.permissions, import: false, export: false }
    render(<Contacts contacts={{ ...CONTACTS, permissions: perms }} />, { wrapper: WithSession })
    expect(screen.queryByRole('button', { name: 'Export vCard' })).toBeNull()
    expect(screen.queryByRole('button', { name: 'Import vCard' })).toBeNull()
  })
})
