// Contacts, with vCard (RFC 6350) export and import beside the generic list: export takes the
// list's company filter when there is one; import posts the file as text/vcard and shows the
// server's per-card result (created, refused with their reasons).
import { useRef, useState, type ChangeEvent } from 'react'
import { Alert, Button } from '../../components/ui'
import { ApiError, download, request } from '../../lib/api'
import type { ResourceMeta } from '../../lib/meta'
import { ListView } from '../../records/ListView'

interface VcardResult {
  cards: number
  created: number
  valid: number
  error_count: number
  errors: { card: number; errors: { pointer?: string; detail: string }[] }[]
  dry_run: boolean
}

export function Contacts({ contacts }: { contacts: ResourceMeta }) {
  const file = useRef<HTMLInputElement>(null)
  const [result, setResult] = useState<VcardResult | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [refresh, setRefresh] = useState(0)
  const canImport = contacts.permissions.create && contacts.permissions.import

  const onFile = async (e: ChangeEvent<HTMLInputElement>) => {
    const f = e.target.files?.[0]
    e.target.value = ''
    if (!f) return
    setBusy(true)
    setError(null)
    setResult(null)
    try {
      const res = await request<VcardResult>(`${contacts.path}/vcard`, { method: 'POST', body: await f.text(), contentType: 'text/vcard' })
      setResult(res.data)
      setRefresh((n) => n + 1)
    } catch (err) {
      setError(err instanceof ApiError ? err.message : (err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div className="stack">
      <div className="row" style={{ gap: 8, justifyContent: 'flex-end' }}>
        {contacts.permissions.export && (
          <Button size="sm" icon="download" onClick={() => void download(`${contacts.path}/vcard`, 'contacts.vcf').catch((err: Error) => setError(err.message))}>
            Export vCard
          </Button>
        )}
        {canImport && (
          <>
            <input ref={file} type="file" accept=".vcf,text/vcard,text/x-vcard" hidden aria-label="vCard file" onChange={(e) => void onFile(e)} />
            <Button size="sm" icon="upload" busy={busy} onClick={() => file.current?.click()}>
              Import vCard
            </Button>
          </>
        )}
      </div>
      {error && <Alert>{error}</Alert>}
      {result && (
        <Alert kind={result.error_count ? 'warning' : 'success'}>
          {`${result.created} of ${result.cards} contact${result.cards === 1 ? '' : 's'} imported.`}
          {result.error_count > 0 && (
            <ul>
              {result.errors.slice(0, 20).map((e, i) => (
                <li key={i}>{`Card ${e.card}: ${e.errors.map((x) => x.detail).join('; ')}`}</li>
              ))}
            </ul>
          )}
        </Alert>
      )}
      <ListView resource={contacts} urlState rowHref={(r) => `/crm/contacts/${String(r.id)}`} refreshKey={refresh} />
    </div>
  )
}
