import type { FieldMeta } from './meta'
import { humanize } from './meta'

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' })
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' })

export function formatDateTime(iso: unknown): string {
  if (typeof iso !== 'string' || !iso) return ''
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d)
}

export function formatDate(value: unknown): string {
  if (typeof value !== 'string' || !value) return ''
  const d = new Date(value.length === 10 ? value + 'T00:00:00Z' : value)
  return Number.isNaN(d.getTime()) ? value : dateOnly.format(d)
}

const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' })
const shortDateYear = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', year: 'numeric' })

/** "Nov 28" (this year) or "Nov 28, 2027"; date-only values are read in UTC. */
export function formatShortDate(value: unknown): string {
  if (typeof value !== 'string' || !value) return ''
  const d = new Date(value.length === 10 ? value + 'T12:00:00Z' : value)
  if (Number.isNaN(d.getTime())) return value
  return (d.getFullYear() === new Date().getFullYear() ? shortDate : shortDateYear).format(d)
}

/** "3 minutes ago", "in 2 days". */
export function timeAgo(iso: unknown, now = Date.now()): string {
  if (typeof iso !== 'string' || !iso) return ''
  const t = new Date(iso).getTime()
  if (Number.isNaN(t)) return iso
  const s = Math.round((t - now) / 1000)
  const abs = Math.abs(s)
  if (abs < 45) return relative.format(0, 'second')
  if (abs < 3600) return relative.format(Math.round(s / 60), 'minute')
  if (abs < 86400) return relative.format(Math.round(s / 3600), 'hour')
  if (abs < 86400 * 30) return relative.format(Math.round(s / 86400), 'day')
  return formatDateTime(iso)
}

/** A value as plain text for tables and detail pages (references are resolved elsewhere). */
export function formatValue(f: Pick<FieldMeta, 'type' | 'name'> | undefined, value: unknown): string {
  if (value === null || value === undefined || value === '') return ''
  switch (f?.type) {
    case 'datetime':
      return formatDateTime(value)
    case 'date':
      return formatDate(value)
    case 'boolean':
      return value ? 'Yes' : 'No'
    case 'choice':
      return humanize(String(value))
    case 'list':
      if (Array.isArray(value)) {
        return value
          .map((v) => (typeof v === 'object' && v !== null ? (('text' in v && String((v as { text: unknown }).text)) || JSON.stringify(v)) : String(v)))
          .join(', ')
      }
      return String(value)
    case 'json':
      return JSON.stringify(value)
    default:
      return typeof value === 'object' ? JSON.stringify(value) : String(value)
  }
}
