// One input per field type, chosen from the field's metadata.
import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react'
import { Icon } from '../components/Icon'
import { describedBy } from '../components/ui'
import { api } from '../lib/api'
import { useOptionalSession } from '../lib/context'
import type { FieldMeta, ListItems, ResourceMeta } from '../lib/meta'
import { humanize, listItems, recordTitle, resourceByKey } from '../lib/meta'
import { RichTextEditor } from '../components/RichText'
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
      if (f.format === 'html')
        return <RichTextEditor id={id} initialHtml={str} onChange={onChange} label={f.label} describedBy={aria['aria-describedby']} readOnly={disabled} />
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
  // The item type, when the server describes it; else guessed from the value.
  const items = listItems(f)
  const objects = items ? items.type === 'object' : list.some((v) => typeof v === 'object' && v !== null)
  if (objects && items?.fields?.length) {
    return <ObjectListInput field={f} items={items} id={id} value={list} onChange={onChange} error={error} hint={hint} disabled={disabled} />
  }
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

type Row = Record<string, unknown>

/** A list of small objects (a checklist of {text, done}): one row per item, its fields as inputs. */
function ObjectListInput({ field: f, items, id, value, onChange, hint, error, disabled }: InputProps & { items: ListItems; value: unknown[] }) {
  const rows = value.filter((v): v is Row => typeof v === 'object' && v !== null)
  const cols = items.fields ?? []
  const flags = cols.filter((c) => c.type === 'boolean')
  const texts = cols.filter((c) => c.type !== 'boolean')
  const blank = (): Row => Object.fromEntries(cols.map((c) => [c.name, c.type === 'boolean' ? false : c.type === 'integer' || c.type === 'number' ? 0 : '']))
  const setRow = (i: number, patch: Row) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)))
  const move = (i: number, d: number) => {
    const next = [...rows]
    const [r] = next.splice(i, 1)
    next.splice(i + d, 0, r!)
    onChange(next)
  }
  const label = f.label.replace(/s$/, '').toLowerCase()
  const rowName = (r: Row, i: number) => String(r[texts[0]?.name ?? ''] ?? '') || `${label} ${i + 1}`
  return (
    <div className="object-list" role="group" aria-labelledby={`${id}-label`} aria-describedby={describedBy(id, hint, error)}>
      <span id={`${id}-label`} hidden>
        {f.label}
      </span>
      {rows.length === 0 && <p className="subtle small">No items yet.</p>}
      <ul className="object-list-rows">
        {rows.map((r, i) => (
          <li key={i} className="object-list-row">
            {flags.map((c) => (
              <input
                key={c.name}
                type="checkbox"
                aria-label={`${humanize(c.name)}: ${rowName(r, i)}`}
                checked={Boolean(r[c.name])}
                disabled={disabled}
                onChange={(e) => setRow(i, { [c.name]: e.target.checked })}
              />
            ))}
            {texts.map((c) => (
              <input
                key={c.name}
                className="input"
                id={i === 0 && c === texts[0] ? id : undefined}
                aria-label={`${humanize(c.name)} of item ${i + 1}`}
                type={c.type === 'integer' || c.type === 'number' ? 'number' : 'text'}
                value={String(r[c.name] ?? '')}
                disabled={disabled}
                onChange={(e) => setRow(i, { [c.name]: c.type === 'integer' || c.type === 'number' ? Number(e.target.value) : e.target.value })}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') {
                    e.preventDefault()
                    onChange([...rows.slice(0, i + 1), blank(), ...rows.slice(i + 1)])
                    setTimeout(() => (e.target as HTMLElement).closest('ul')?.querySelectorAll<HTMLInputElement>('.input')[i + 1]?.focus(), 0)
                  }
                }}
              />
            ))}
            {!disabled && (
              <span className="object-list-tools">
                <button type="button" className="icon-btn" aria-label={`Move ${rowName(r, i)} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                  <Icon name="arrow-up" size={14} />
                </button>
                <button type="button" className="icon-btn" aria-label={`Move ${rowName(r, i)} down`} disabled={i === rows.length - 1} onClick={() => move(i, 1)}>
                  <Icon name="arrow-down" size={14} />
                </button>
                <button type="button" className="icon-btn" aria-label={`Remove ${rowName(r, i)}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
                  <Icon name="x" size={14} />
                </button>
              </span>
            )}
          </li>
        ))}
      </ul>
      {!disabled && (
        <button type="button" className="btn btn-sm btn-ghost" onClick={() => onChange([...rows, blank()])}>
          <Icon name="plus" size={14} /> Add an item
        </button>
      )}
    </div>
  )
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
