// Form values from field metadata: what an input holds (a "draft"), what the API takes,
// and the client-side checks that mirror the server's (required, lengths, ranges, pattern).
import { fieldValue, type FieldMeta } from './meta'

export type Draft = Record<string, unknown>

const pad = (n: number) => String(n).padStart(2, '0')

/** An RFC 3339 instant → the value of an <input type="datetime-local"> in local time. */
export function isoToLocalInput(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** The value of an <input type="datetime-local"> (local time) → an RFC 3339 instant in UTC. */
export function localInputToIso(local: string): string | null {
  if (!local) return null
  const d = new Date(local)
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

/** What the input shows for a stored value. */
export function toDraft(f: FieldMeta, value: unknown): unknown {
  if (value === undefined || value === null) {
    if (f.type === 'boolean') return Boolean(f.default ?? false)
    if (f.type === 'list') return Array.isArray(f.default) ? f.default : []
    return ''
  }
  switch (f.type) {
    case 'boolean':
      return Boolean(value)
    case 'datetime':
      return isoToLocalInput(String(value))
    case 'date':
      return String(value).slice(0, 10)
    case 'list':
      return Array.isArray(value) ? value : []
    case 'json':
      return JSON.stringify(value, null, 2)
    default:
      return String(value)
  }
}

/** A fresh form for creating a record: the declared defaults. */
export function initialDraft(fields: FieldMeta[], record?: Record<string, unknown> | null): Draft {
  const d: Draft = {}
  for (const f of fields) d[f.name] = toDraft(f, record ? fieldValue(record, f.name) : f.default)
  return d
}

const isBlank = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.trim() === '')

/** The JSON value an input's draft becomes; `undefined` means "leave it out". */
export function fromDraft(f: FieldMeta, draft: unknown): unknown {
  if (f.type === 'boolean') return Boolean(draft)
  if (f.type === 'list') {
    // Rows of a list of objects left entirely blank (a checklist item never typed) are dropped.
    const list = Array.isArray(draft) ? draft : []
    return list.filter((v) => !(v && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'boolean' || x === '' || x === 0)))
  }
  if (isBlank(draft)) {
    if (f.nullable) return null
    if (f.type === 'string' && !f.required) return ''
    return undefined
  }
  const s = String(draft)
  switch (f.type) {
    case 'integer':
      return /^-?\d+$/.test(s.trim()) ? Number.parseInt(s, 10) : s
    case 'number': {
      const n = Number(s)
      return Number.isFinite(n) ? n : s
    }
    case 'decimal':
      return s.trim()
    case 'datetime':
      return localInputToIso(s) ?? s
    case 'json':
      try {
        return JSON.parse(s)
      } catch {
        return s
      }
    default:
      return s
  }
}

const chars = (s: string) => [...s].length

/** One field's problem, or null. Mirrors the server's checks so most mistakes never leave the page. */
export function validateField(f: FieldMeta, draft: unknown): string | null {
  if (f.type === 'boolean') return null
  if (f.type === 'list') {
    const list = Array.isArray(draft) ? draft : []
    if (f.required && list.length === 0) return 'Add at least one item.'
    if (f.max_length !== undefined && list.length > f.max_length) return `At most ${f.max_length} items.`
    if (f.min_length !== undefined && list.length < f.min_length) return `At least ${f.min_length} items.`
    return null
  }
  if (isBlank(draft)) {
    return f.required ? 'This field is required.' : null
  }
  const s = String(draft)
  switch (f.type) {
    case 'string':
    case 'reference': {
      if (f.min_length !== undefined && chars(s) < f.min_length)
        return `At least ${f.min_length} character${f.min_length === 1 ? '' : 's'}.`
      if (f.max_length !== undefined && chars(s) > f.max_length)
        return `At most ${f.max_length} characters (now ${chars(s)}).`
      if (f.pattern) {
        try {
          if (!new RegExp(f.pattern, 'u').test(s)) return `Does not match the expected format (${f.pattern}).`
        } catch {
          /* a pattern JavaScript cannot read: the server checks it */
        }
      }
      return null
    }
    case 'choice':
      return f.choices && !f.choices.includes(s) ? `Choose one of ${f.choices.join(', ')}.` : null
    case 'integer':
    case 'number':
    case 'decimal': {
      const ok = f.type === 'integer' ? /^\s*-?\d+\s*$/.test(s) : f.type === 'decimal' ? /^\s*-?\d+(\.\d+)?\s*$/.test(s) : Number.isFinite(Number(s))
      if (!ok) return f.type === 'integer' ? 'Enter a whole number.' : 'Enter a number.'
      const n = Number(s)
      if (f.ge !== undefined && n < f.ge) return `Must be at least ${f.ge}.`
      if (f.le !== undefined && n > f.le) return `Must be at most ${f.le}.`
      if (f.gt !== undefined && n <= f.gt) return `Must be more than ${f.gt}.`
      if (f.lt !== undefined && n >= f.lt) return `Must be less than ${f.lt}.`
      return null
    }
    case 'datetime':
      return localInputToIso(s) ? null : 'Enter a date and time.'
    case 'date':
      return /^\d{4}-\d{2}-\d{2}$/.test(s) ? null : 'Enter a date (YYYY-MM-DD).'
    case 'json':
      try {
        JSON.parse(s)
        return null
      } catch {
        return 'Enter valid JSON.'
      }
    default:
      return null
  }
}

export function validateDraft(fields: FieldMeta[], draft: Draft): Record<string, string> {
  const errors: Record<string, string> = {}
  for (const f of fields) {
    const e = validateField(f, draft[f.name])
    if (e) errors[f.name] = e
  }
  return errors
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * The request body: on create every field with a value (blank optional fields left to
 * their defaults); on edit only the fields that changed.
 */
export function bodyFromDraft(fields: FieldMeta[], draft: Draft, original?: Record<string, unknown> | null): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  // Custom fields ("custom.tier") travel in one `custom` object; PATCH merges it, null removes a value.
  const put = (name: string, value: unknown) => {
    if (!name.startsWith('custom.')) body[name] = value
    else body.custom = { ...(body.custom as Record<string, unknown> | undefined), [name.slice(7)]: value }
  }
  for (const f of fields) {
    const value = fromDraft(f, draft[f.name])
    if (original) {
      const before = fieldValue(original, f.name) ?? (f.type === 'list' ? [] : null)
      const norm = value === undefined ? before : value
      if (!same(norm, before) && !(f.type === 'datetime' && sameInstant(norm, before))) put(f.name, value ?? null)
    } else if (value !== undefined && !(value === null && isBlank(draft[f.name]))) {
      put(f.name, value)
    }
  }
  return body
}

function sameInstant(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false
  const x = new Date(a).getTime()
  const y = new Date(b).getTime()
  return !Number.isNaN(x) && Math.abs(x - y) < 60_000 && isoToLocalInput(a) === isoToLocalInput(b)
}
