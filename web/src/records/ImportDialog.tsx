// CSV import: pick a file, check it (dry run) or import it all-or-nothing or row by row;
// the server's per-row errors are listed with their row numbers and fields.
import { useState } from 'react'
import { Alert, Button, Dialog, FieldShell } from '../components/ui'
import { ApiError, request } from '../lib/api'
import type { ResourceMeta } from '../lib/meta'
import { editableFields, humanize } from '../lib/meta'
import { pointerField } from '../lib/api'

interface ImportResult {
  rows: number
  created: number
  valid?: number
  errors: { row: number; errors: { pointer: string; detail: string }[] }[]
  error_count?: number
  dry_run?: boolean
  committed?: boolean
  detail?: string
}

export function ImportDialog({ resource, onClose, onImported }: { resource: ResourceMeta; onClose: () => void; onImported: () => void }) {
  const [file, setFile] = useState<File | null>(null)
  const [mode, setMode] = useState<'atomic' | 'partial'>('atomic')
  const [busy, setBusy] = useState(false)
  const [result, setResult] = useState<ImportResult | null>(null)
  const [error, setError] = useState<string | null>(null)
  const columns = editableFields(resource).map((f) => f.name)

  const run = async (dryRun: boolean) => {
    if (!file) {
      setError('Choose a CSV file first.')
      return
    }
    setBusy(true)
    setError(null)
    setResult(null)
    try {
      const text = await file.text()
      const res = await request<ImportResult>(`${resource.path}/import?mode=${mode}&dry_run=${dryRun}`, { method: 'POST', body: text, contentType: 'text/csv' })
      setResult(res.data)
      if (!dryRun && res.data.created > 0) onImported()
    } catch (err) {
      if (err instanceof ApiError && Array.isArray((err.problem as unknown as ImportResult).errors) && 'rows' in err.problem) {
        setResult(err.problem as unknown as ImportResult)
      } else {
        setError((err as Error).message)
      }
    } finally {
      setBusy(false)
    }
  }

  return (
    <Dialog
      title={`Import ${resource.title.toLowerCase()}`}
      description="From a CSV file with a header row."
      onClose={onClose}
      size="lg"
      footer={
        <>
          <Button onClick={onClose}>Close</Button>
          <Button onClick={() => void run(true)} busy={busy} disabled={!file}>
            Check file
          </Button>
          <Button variant="primary" icon="upload" onClick={() => void run(false)} busy={busy} disabled={!file}>
            Import
          </Button>
        </>
      }
    >
      <div className="stack">
        <p className="small muted">
          Columns: {columns.map((c) => <code key={c}>{c} </code>)}. Lists take values separated by “;”.
        </p>
        <FieldShell label="CSV file" htmlFor="import-file">
          <input id="import-file" className="input" type="file" accept=".csv,text/csv" style={{ paddingTop: 6 }} onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </FieldShell>
        <fieldset className="stack-sm" style={{ border: 0, padding: 0, margin: 0 }}>
          <legend className="field-label">When some rows are invalid</legend>
          <label className="checkbox-row">
            <input type="radio" name="import-mode" checked={mode === 'atomic'} onChange={() => setMode('atomic')} /> Import nothing (all or nothing)
          </label>
          <label className="checkbox-row">
            <input type="radio" name="import-mode" checked={mode === 'partial'} onChange={() => setMode('partial')} /> Import the valid rows
          </label>
        </fieldset>
        {error && <Alert>{error}</Alert>}
        {result && (
          <div className="stack-sm" aria-live="polite">
            {result.errors.length === 0 ? (
              <Alert kind="success" title={result.dry_run ? 'The file is valid' : 'Imported'}>
                {result.dry_run ? `${result.valid ?? result.rows} of ${result.rows} rows would be created.` : `${result.created} of ${result.rows} rows created.`}
              </Alert>
            ) : (
              <Alert kind={result.created ? 'warning' : 'error'} title={`${result.error_count ?? result.errors.length} of ${result.rows} rows have errors`}>
                {result.dry_run ? 'Nothing was imported (a check).' : result.created ? `${result.created} valid rows were imported.` : 'Nothing was imported.'}
              </Alert>
            )}
            {result.errors.length > 0 && (
              <div className="table-wrap card">
                <table className="table" aria-label="Rows with errors">
                  <thead>
                    <tr>
                      <th scope="col">Row</th>
                      <th scope="col">Field</th>
                      <th scope="col">Problem</th>
                    </tr>
                  </thead>
                  <tbody>
                    {result.errors.flatMap((r) =>
                      r.errors.map((e, i) => (
                        <tr key={`${r.row}-${i}`}>
                          <td className="num">{r.row}</td>
                          <td>{pointerField(e.pointer) ? humanize(pointerField(e.pointer)) : '—'}</td>
                          <td style={{ whiteSpace: 'normal' }}>{e.detail}</td>
                        </tr>
                      )),
                    )}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        )}
      </div>
    </Dialog>
  )
}
