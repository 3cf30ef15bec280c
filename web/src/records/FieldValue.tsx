// A stored value for reading: references as their record's title, choices as badges, etc.
import { Badge } from '../components/ui'
import { Icon } from '../components/Icon'
import { recordHref } from '../lib/features'
import { formatValue, timeAgo } from '../lib/format'
import type { FieldMeta } from '../lib/meta'
import { humanize, resourceByKey } from '../lib/meta'
import { useOptionalSession } from '../lib/context'
import { useReferenceTitle } from '../lib/refs'
import { Link } from '../lib/router'
import { SanitisedHtml } from '../components/RichText'

const TONES: Record<string, 'neutral' | 'primary' | 'success' | 'warning' | 'danger' | 'info'> = {
  todo: 'neutral',
  in_progress: 'info',
  done: 'success',
  active: 'success',
  invited: 'warning',
  deactivated: 'danger',
  open: 'info',
  closed: 'neutral',
}

export function choiceTone(value: string) {
  return TONES[value] ?? 'primary'
}

export function RefValue({ refKey, id, link = true }: { refKey?: string; id: unknown; link?: boolean }) {
  const session = useOptionalSession()
  const meta = session?.meta ?? null
  const title = useReferenceTitle(meta, refKey, id)
  if (typeof id !== 'string' || !id) return <span className="subtle">—</span>
  if (id === 'system') return <span className="muted">System</span>
  const target = resourceByKey(meta, refKey)
  const text = title ?? `…${id.slice(-6)}`
  if (!target || !link) return <span title={id}>{text}</span>
  return (
    <Link to={recordHref(target.app, target.name, id)} title={id} onClick={(e) => e.stopPropagation()}>
      {text}
    </Link>
  )
}

export function FieldValue({ field: f, value, compact }: { field: FieldMeta; value: unknown; compact?: boolean }) {
  if (value === null || value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) {
    return <span className="subtle">—</span>
  }
  if (f.format === 'html' && typeof value === 'string') {
    // Sanitised by the server before it was stored; in a list cell, its plain text.
    if (compact) return <>{value.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 120)}</>
    return <SanitisedHtml html={value} />
  }
  if (f.type === 'list' && !compact && Array.isArray(value) && value.length && value.every((v) => v && typeof v === 'object' && 'text' in v)) {
    return (
      <ul className="checklist-view">
        {(value as { text: string; done?: boolean }[]).map((item, i) => (
          <li key={i} className={item.done ? 'done' : undefined}>
            <Icon name={item.done ? 'check-square' : 'circle'} size={14} /> {String(item.text)}
          </li>
        ))}
      </ul>
    )
  }
  if (f.type === 'reference') return <RefValue refKey={f.reference} id={value} />
  if (f.name === 'created_by' || f.name === 'updated_by' || f.name === 'completed_by' || f.name === 'user_id' || f.name === 'actor_id')
    return <RefValue refKey="identity.users" id={value} />
  if (f.type === 'choice' || f.name === 'status') return <Badge tone={choiceTone(String(value))}>{humanize(String(value))}</Badge>
  if (f.type === 'boolean')
    return value ? (
      <span className="row" style={{ gap: 4 }}>
        <Icon name="check" size={14} /> Yes
      </span>
    ) : (
      <span className="muted">No</span>
    )
  if (f.type === 'datetime' && compact) return <span title={formatValue(f, value)}>{timeAgo(value)}</span>
  if (f.type === 'list' && Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    return (
      <span className="row" style={{ gap: 4 }}>
        {(value as string[]).slice(0, compact ? 3 : 50).map((v) => (
          <Badge key={v}>{v}</Badge>
        ))}
        {compact && value.length > 3 && <span className="subtle small">+{value.length - 3}</span>}
      </span>
    )
  }
  if (typeof value === 'string' && /^#[0-9a-f]{6}$/i.test(value)) {
    return (
      <span>
        <span className="swatch" style={{ background: value }} />
        <code>{value}</code>
      </span>
    )
  }
  if ((f.type === 'json' || f.type === 'list') && !compact) return <pre className="json-block">{JSON.stringify(value, null, 2)}</pre>
  return <>{formatValue(f, value)}</>
}
