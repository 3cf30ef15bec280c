// Values a create response carries beyond the record's fields (an API key's secret):
// shown once, with a copy button, and never again.
import { useState } from 'react'
import { Alert, Button, IconButton } from '../components/ui'
import { humanize } from '../lib/meta'

export function SecretValues({ values, onDone }: { values: Record<string, unknown>; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null)
  const copy = async (k: string, v: string) => {
    try {
      await navigator.clipboard.writeText(v)
      setCopied(k)
    } catch {
      setCopied(null)
    }
  }
  return (
    <div className="stack">
      <Alert kind="warning" title="Copy this now">
        It is shown only once. NEXUS keeps only a hash of it and cannot show it again.
      </Alert>
      {Object.entries(values).map(([k, v]) => (
        <div key={k} className="stack-sm">
          <strong>{humanize(k)}</strong>
          <div className="secret">
            <code data-testid={`secret-${k}`}>{String(v)}</code>
            <IconButton icon={copied === k ? 'check' : 'copy'} label={copied === k ? 'Copied' : `Copy ${humanize(k)}`} onClick={() => void copy(k, String(v))} />
          </div>
        </div>
      ))}
      <div className="form-actions">
        <Button variant="primary" onClick={onDone}>
          I have saved it
        </Button>
      </div>
    </div>
  )
}
