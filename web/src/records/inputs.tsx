// One input per field type, chosen from the field's metadata.
import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react'
import { Icon } from '../components/Icon'
import { describedBy } from '../components/ui'
import { api } from '../lib/api'
import { useOptionalSession } from '../lib/context'
import type { FieldMeta, ResourceMeta } from '../lib/meta'
import { humanize, recordTitle, resourceByKey } from '../lib/meta'
import { useDebounced } from '../lib/hooks'
import { primeRecord, useReferenceTitle } from '../lib/refs'

export interface InputProps {
  field: FieldMeta
  id: string
  value: unknown
  onChange: (value: unknown) => void
  error?: string
  hint?: string
  disabled?: boolean
}

const HEX = /^\^#\[0-9a-fA-F\]\{6\}\$$/

export function isLongText(f: FieldMeta): boolean {
  return f.type === 'string' && (f.max_length === undefined ? ['description', 'body', 'notes'].includes(f.name) : f.max_length > 1000)
}

export function FieldInput({ field: f, id, value, onChange, error, hint, disabled }: InputProps) {
  const aria = {
    id,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': describedBy(id, hint, error),
    'aria-required': f.required || undefined,
    disabled,
  }
  const str = typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value)
  switch (f.type) {
    case 'boolean':
      return (
        <label className="checkbox-row">
          <input type="checkbox" {...aria} checked={Boolean(value)} onChange={(e) => onChange(e.target.checked)} />
          <span>{f.description ?? 'Yes'}</span>
        </label>
      )
    case 'choice':
      return (
        <select className="select" {...aria} value={str} onChange={(e) => onChange(e.target.value)}>
          {(f.nullable || !f.required) && f.default === undefined && <option value="">—</option>}
          {(f.choices ?? []).map((c) => (
            <option key={c} value={c}>
              {humanize(c)}
            </option>
          ))}
        </select>
      )
    case 'integer':
    case 'number':
      return (
        <input
          className="input"
          type="number"
          inputMode={f.type === 'integer' ? 'numeric' : 'decimal'}
          step={f.type === 'integer' ? 1 : 'any'}
          min={f.ge ?? undefined}
          max={f.le ?? undefined}
          {...aria}
          value={str}
          onChange={(e) => onChange(e.target.value)}
        />
      )
    case 'decimal':
      return <input className="input" inputMode="decimal" {...aria} value={str} onChange={(e) => onChange(e.target.value)} />
    case 'datetime':
      return <input className="input" type="datetime-local" {...aria} value={str} onChange={(e) => onChange(e.target.value)} />
    case 'date':
      return <input className="input" type="date" {...aria} value={str} onChange={(e) => onChange(e.target.value)} />
    case 'json':
      return <textarea className="textarea mono" rows={5} {...aria} value={str} onChange={(e) => onChange(e.target.value)} />
    case 'list':
      return <ListInput field={f} id={id} value={value} onChange={onChange} error={error} hint={hint} disabled={disabled} />
    case 'reference':
      return <ReferenceInput field={f} id={id} value={value} onChange={onChange} error={error} hint={hint} disabled={disabled} />
    default:
      if (isLongText(f)) return <textarea className="textarea" rows={4} {...aria} value={str} onChange={(e) => onChange(e.target.value)} />
      if (f.pattern && HEX.test(f.pattern)) {
        return (
          <div className="input-group">
            <input type="color" aria-label={`${f.label} colour picker`} value={/^#[0-9a-f]{6}$/i.test(str) ? str : '#000000'} onChange={(e) => onChange(e.target.value)} disabled={disabled} />
            <input className="input mono" {...aria} value={str} onChange={(e) => onChange(e.target.value)} />
          </div>
        )
      }
      return (
        <input
          className="input"
          type={f.name === 'email' ? 'email' : f.name.includes('password') ? 'password' : 'text'}
          {...aria}
          value={str}
          onChange={(e) => onChange(e.target.value)}
          autoComplete="off"
        />
      )
  }
}

/** Lists: strings as chips (Enter or comma adds); lists of objects as JSON. */
function ListInput({ field: f, id, value, onChange, error, hint, disabled }: InputProps) {
  const list = Array.isArray(value) ? value : []
  // The item type, when the server describes it (`items`: "string" or a JSON schema); else guessed from the value.
  const itemType = typeof f.items === 'string' ? f.items : typeof f.items === 'object' && f.items !== null ? (f.items as { type?: string }).type : undefined
  const objects = itemType ? itemType === 'object' : list.some((v) => typeof v === 'object' && v !== null)
  const [text, setText] = useState(() => (objects ? JSON.stringify(list, null, 2) : ''))
  const [jsonError, setJsonError] = useState<string | null>(null)
  if (objects) {
    return (
      <>
        <textarea
          className="textarea mono"
          rows={5}
          id={id}
          aria-invalid={error || jsonError ? true : undefined}
          aria-describedby={describedBy(id, hint, error)}
          value={text}
          disabled={disabled}
          onChange={(e) => {
            setText(e.target.value)
            try {
              const parsed = JSON.parse(e.target.value || '[]')
              if (!Array.isArray(parsed)) throw new Error('not a list')
              setJsonError(null)
              onChange(parsed)
            } catch {
              setJsonError('Enter a JSON list, e.g. [{"text": "…", "done": false}]')
            }
          }}
        />
        {jsonError && !error && <p className="field-hint">{jsonError}</p>}
      </>
    )
  }
  return <ChipsInput id={id} values={list.map(String)} onChange={onChange} invalid={Boolean(error)} describedBy={describedBy(id, hint, error)} disabled={disabled} placeholder="Type and press Enter" />
}

export function ChipsInput({
  id,
  values,
  onChange,
  invalid,
  describedBy: desc,
  disabled,
  placeholder,
  suggestions,
}: {
  id: string
  values: string[]
  onChange: (v: string[]) => void
  invalid?: boolean
  describedBy?: string
  disabled?: boolean
  placeholder?: string
  suggestions?: string[]
}) {
  const [text, setText] = useState('')
  const listId = useId()
  const add = (raw: string) => {
    const parts = raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s && !values.includes(s))
    if (parts.length) onChange([...values, ...parts])
    setText('')
  }
  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if ((e.key === 'Enter' || e.key === ',') && text.trim()) {
      e.preventDefault()
      add(text)
    } else if (e.key === 'Backspace' && !text && values.length) {
      onChange(values.slice(0, -1))
    }
  }
  return (
    <div className="chips">
      {values.map((v) => (
        <span key={v} className="chip">
          {v}
          {!disabled && (
            <button type="button" aria-label={`Remove ${v}`} onClick={() => onChange(values.filter((x) => x !== v))}>
              <Icon name="x" size={12} />
            </button>
          )}
        </span>
      ))}
      <input
        id={id}
        value={text}
        disabled={disabled}
        aria-invalid={invalid || undefined}
        aria-describedby={desc}
        placeholder={values.length ? '' : placeholder}
        list={suggestions ? listId : undefined}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKey}
        onBlur={() => text.trim() && add(text)}
      />
      {suggestions && (
        <datalist id={listId}>
          {suggestions.map((s) => (
            <option key={s} value={s} />
          ))}
        </datalist>
      )}
    </div>
  )
}

/** A combobox over the referenced resource's records (its own full-text list). */
export function ReferenceInput({ field: f, id, value, onChange, error, hint, disabled }: InputProps) {
  const session = useOptionalSession()
  const meta = session?.meta ?? null
  const target: ResourceMeta | undefined = resourceByKey(meta, f.reference)
  const current = typeof value === 'string' && value ? value : null
  const title = useReferenceTitle(meta, f.reference, current)
  const [text, setText] = useState<string | null>(null)
  const [open, setOpen] = useState(false)
  const [options, setOptions] = useState<Record<string, unknown>[]>([])
  const [active, setActive] = useState(0)
  const [loading, setLoading] = useState(false)
  const listId = useId()
  const wrap = useRef<HTMLDivElement>(null)
  const q = useDebounced(text ?? '', 150)

  useEffect(() => {
    if (!open || !target) return
    const ctl = new AbortController()
    setLoading(true)
    const params = new URLSearchParams({ limit: '10' })
    if (q.trim() && target.search.length) params.set('q', q.trim())
    api
      .get<{ items: Record<string, unknown>[] }>(`${target.path}?${params}`, ctl.signal)
      .then((page) => {
        let items = page.items
        if (q.trim() && !target.search.length) items = items.filter((r) => recordTitle(target, r).toLowerCase().includes(q.toLowerCase()))
        items.forEach((r) => primeRecord(target.path, r))
        setOptions(items)
        setActive(0)
      })
      .catch(() => setOptions([]))
      .finally(() => !ctl.signal.aborted && setLoading(false))
    return () => ctl.abort()
  }, [open, q, target])

  useEffect(() => {
    if (!open) return
    const close = (e: MouseEvent) => {
      if (!wrap.current?.contains(e.target as Node)) {
        setOpen(false)
        setText(null)
      }
    }
    document.addEventListener('mousedown', close)
    return () => document.removeEventListener('mousedown', close)
  }, [open])

  if (!target) {
    // The caller cannot read the referenced resource: an id is all we can take.
    return (
      <input
        className="input mono"
        id={id}
        placeholder="ID"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        value={current ?? ''}
        disabled={disabled}
        onChange={(e) => onChange(e.target.value)}
      />
    )
  }

  const choose = (rec: Record<string, unknown> | null) => {
    onChange(rec ? String(rec.id) : '')
    setText(null)
    setOpen(false)
  }
  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault()
      if (!open) setOpen(true)
      else setActive((a) => Math.min(a + 1, options.length - 1))
    } else if (e.key === 'ArrowUp') {
      e.preventDefault()
      setActive((a) => Math.max(a - 1, 0))
    } else if (e.key === 'Enter' && open) {
      e.preventDefault()
      const rec = options[active]
      if (rec) choose(rec)
    } else if (e.key === 'Escape' && open) {
      e.stopPropagation()
      setOpen(false)
      setText(null)
    }
  }
  const shown = text ?? (current ? (title ?? '…') : '')
  return (
    <div className="ref-input" ref={wrap}>
      <div className="input-group">
        <input
          className="input"
          id={id}
          role="combobox"
          aria-expanded={open}
          aria-controls={listId}
          aria-autocomplete="list"
          aria-activedescendant={open && options[active] ? `${listId}-${active}` : undefined}
          aria-invalid={error ? true : undefined}
          aria-describedby={describedBy(id, hint, error)}
          placeholder={`Search ${target.title.toLowerCase()}…`}
          value={shown}
          disabled={disabled}
          autoComplete="off"
          onFocus={() => setOpen(true)}
          onClick={() => setOpen(true)}
          onChange={(e) => {
            setText(e.target.value)
            setOpen(true)
          }}
          onKeyDown={onKey}
        />
        {current && !disabled && (
          <button type="button" className="icon-btn" aria-label={`Clear ${f.label}`} onClick={() => choose(null)}>
            <Icon name="x" size={16} />
          </button>
        )}
      </div>
      {open && (
        <ul className="ref-options" role="listbox" id={listId} aria-label={target.title}>
          {loading && options.length === 0 && <li className="note">Loading…</li>}
          {!loading && options.length === 0 && <li className="note">No matches</li>}
          {options.map((rec, i) => (
            <li
              key={String(rec.id)}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === active}
              onMouseEnter={() => setActive(i)}
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => choose(rec)}
            >
              {recordTitle(target, rec)}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
