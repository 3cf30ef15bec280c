import { isoToLocalInput, localInputToIso } from '../lib/forms'
import type { FieldMeta } from '../lib/meta'
import { humanize } from '../lib/meta'
import { ReferenceInput } from './inputs'

/** The value box of one filter row, typed after the field (dates, choices, references…). */
export function FilterValueInput({ field: f, op, value, onChange, label }: { field: FieldMeta; op: string; value: string; onChange: (v: string) => void; label: string }) {
  const common = { 'aria-label': label, className: 'input input-sm' }
  if (op === 'isnull') {
    return (
      <select {...common} className="select select-sm" value={value || 'true'} onChange={(e) => onChange(e.target.value)}>
        <option value="true">Yes</option>
        <option value="false">No (has a value)</option>
      </select>
    )
  }
  if (op === 'in' || op === 'nin') {
    return <input {...common} placeholder="Comma-separated values" value={value} onChange={(e) => onChange(e.target.value)} />
  }
  if (f.type === 'choice' && f.choices) {
    return (
      <select {...common} className="select select-sm" value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">Any</option>
        {f.choices.map((c) => (
          <option key={c} value={c}>
            {humanize(c)}
          </option>
        ))}
      </select>
    )
  }
  if (f.type === 'boolean') {
    return (
      <select {...common} className="select select-sm" value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">Any</option>
        <option value="true">Yes</option>
        <option value="false">No</option>
      </select>
    )
  }
  if (f.type === 'datetime') {
    return <input {...common} type="datetime-local" value={isoToLocalInput(value)} onChange={(e) => onChange(localInputToIso(e.target.value) ?? '')} />
  }
  if (f.type === 'date') return <input {...common} type="date" value={value} onChange={(e) => onChange(e.target.value)} />
  if (f.type === 'integer' || f.type === 'number' || f.type === 'decimal') {
    return <input {...common} type="number" value={value} onChange={(e) => onChange(e.target.value)} />
  }
  if (f.type === 'reference') {
    return <ReferenceInput field={{ ...f, label }} id={`filter-${f.name}-${label.replace(/\W+/g, '-')}`} value={value} onChange={(v) => onChange(String(v ?? ''))} />
  }
  return <input {...common} value={value} onChange={(e) => onChange(e.target.value)} />
}
