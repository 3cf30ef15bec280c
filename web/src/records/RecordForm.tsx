// The create/edit form for any resource, drawn from its field metadata. Client-side checks
// first; then the server's problem+json errors appear under the field each pointer names;
// a 412 offers to reload or overwrite.
import { useMemo, useRef, useState, type FormEvent } from 'react'
import { Alert, Button, FieldShell } from '../components/ui'
import { ApiError, request } from '../lib/api'
import { bodyFromDraft, initialDraft, validateDraft, type Draft } from '../lib/forms'
import type { FieldMeta, ResourceMeta } from '../lib/meta'
import { editableFields, fieldLabel, humanize, isUpdatable, listItems } from '../lib/meta'
import { FieldValue } from './FieldValue'
import { FieldInput, isLongText } from './inputs'
import { SecretValues } from './SecretValues'

export interface RecordFormProps {
  resource: ResourceMeta
  record?: Record<string, unknown> | null
  etag?: string
  onSaved: (record: Record<string, unknown>, etag?: string) => void
  onCancel?: () => void
  /** Only these fields, in this order (default: every writable field). */
  only?: string[]
  /** Values for fields the form does not show (e.g. task_id of a comment). */
  fixed?: Record<string, unknown>
  submitLabel?: string
  idPrefix?: string
}

function hintFor(f: FieldMeta): string | undefined {
  const parts: string[] = []
  if (f.description) parts.push(f.description)
  if ((f.type === 'integer' || f.type === 'number') && (f.ge !== undefined || f.le !== undefined) && !f.description) {
    parts.push(`From ${f.ge ?? '…'} to ${f.le ?? '…'}.`)
  }
  if (f.type === 'list' && !f.description && listItems(f)?.type !== 'object') parts.push('Press Enter after each item.')
  return parts.join(' ') || undefined
}

export function RecordForm({ resource, record, etag, onSaved, onCancel, only, fixed, submitLabel, idPrefix = 'f' }: RecordFormProps) {
  const editing = Boolean(record)
  // On create: every writable field, create-only ones (a user's password) included. On edit:
  // create-only fields are gone, and fields PATCH may not change are shown read-only.
  const shown = useMemo(() => {
    const all = editableFields(resource).filter((f) => !(editing && f.create_only))
    if (!only) return all.filter((f) => !(fixed && f.name in fixed))
    return only.map((n) => all.find((f) => f.name === n)).filter(Boolean) as FieldMeta[]
  }, [resource, only, fixed, editing])
  const fields = useMemo(() => (editing ? shown.filter(isUpdatable) : shown), [shown, editing])
  const [base, setBase] = useState<{ record: Record<string, unknown> | null; etag?: string }>({ record: record ?? null, etag })
  const [draft, setDraft] = useState<Draft>(() => initialDraft(fields, record))
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [conflict, setConflict] = useState(false)
  const [busy, setBusy] = useState(false)
  const [secrets, setSecrets] = useState<{ record: Record<string, unknown>; etag?: string; values: Record<string, unknown> } | null>(null)
  const formRef = useRef<HTMLFormElement>(null)

  const set = (name: string, value: unknown) => {
    setDraft((d) => ({ ...d, [name]: value }))
    if (errors[name]) setErrors(({ [name]: _, ...rest }) => rest)
  }

  const focusFirstError = (errs: Record<string, string>) => {
    const first = fields.find((f) => errs[f.name])
    if (first) setTimeout(() => formRef.current?.querySelector<HTMLElement>(`#${idPrefix}-${first.name}`)?.focus(), 0)
  }

  const save = async (overwriteTag?: string) => {
    const body = { ...bodyFromDraft(fields, draft, base.record), ...(editing ? {} : fixed) }
    if (editing && Object.keys(body).length === 0) {
      onSaved(base.record!, base.etag)
      return
    }
    setBusy(true)
    setFormError(null)
    try {
      const res = editing
        ? await request<Record<string, unknown>>(`${resource.path}/${base.record!.id}`, { method: 'PATCH', json: body, ifMatch: overwriteTag ?? base.etag })
        : await request<Record<string, unknown>>(resource.path, { method: 'POST', json: body })
      const known = new Set(resource.fields.map((f) => f.name).concat('org_id'))
      const extra = Object.fromEntries(Object.entries(res.data).filter(([k]) => !known.has(k)))
      if (!editing && Object.keys(extra).length) setSecrets({ record: res.data, etag: res.etag, values: extra })
      else onSaved(res.data, res.etag)
      setConflict(false)
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.status === 412) {
          setConflict(true)
        } else {
          const byField = err.fieldErrors
          const shown: Record<string, string> = {}
          const rest: string[] = []
          for (const [k, v] of Object.entries(byField)) {
            if (fields.some((f) => f.name === k)) shown[k] = v
            else rest.push(k ? `${humanize(k)}: ${v}` : v)
          }
          setErrors(shown)
          focusFirstError(shown)
          if (rest.length || !Object.keys(shown).length) setFormError([err.message, ...rest].filter(Boolean).join(' '))
        }
      } else {
        setFormError((err as Error).message)
      }
    } finally {
      setBusy(false)
    }
  }

  const submit = (e: FormEvent) => {
    e.preventDefault()
    const errs = validateDraft(fields, draft)
    setErrors(errs)
    if (Object.keys(errs).length) {
      setFormError(null)
      focusFirstError(errs)
      return
    }
    void save()
  }

  const latest = async () => {
    const res = await request<Record<string, unknown>>(`${resource.path}/${base.record!.id}`)
    return res
  }

  const reload = async () => {
    const res = await latest()
    setBase({ record: res.data, etag: res.etag })
    setDraft(initialDraft(fields, res.data))
    setErrors({})
    setConflict(false)
  }

  const overwrite = async () => {
    const res = await latest()
    setBase({ record: res.data, etag: res.etag })
    // Keep my changes relative to what I started from; send them against the new version.
    await save(res.etag)
  }

  if (secrets) {
    return <SecretValues values={secrets.values} onDone={() => onSaved(secrets.record, secrets.etag)} />
  }

  return (
    <form ref={formRef} className="stack" onSubmit={submit} noValidate aria-label={`${editing ? 'Edit' : 'New'} ${humanize(resource.entity).toLowerCase()}`}>
      {conflict && (
        <Alert
          kind="warning"
          title="Changed by someone else"
          actions={
            <>
              <Button size="sm" icon="refresh" onClick={() => void reload()}>
                Reload (discard my changes)
              </Button>
              <Button size="sm" variant="danger" onClick={() => void overwrite()}>
                Overwrite with my changes
              </Button>
            </>
          }
        >
          This {humanize(resource.entity).toLowerCase()} was changed by someone else since you opened it — reload or overwrite.
        </Alert>
      )}
      {formError && <Alert kind="error">{formError}</Alert>}
      <div className="form-grid">
        {shown.map((f) => {
          const id = `${idPrefix}-${f.name}`
          if (editing && !isUpdatable(f)) {
            return (
              <div key={f.name} className="field field-readonly">
                <span className="field-label" id={id}>
                  {fieldLabel(f)}
                </span>
                <div aria-labelledby={id} role="group">
                  <FieldValue field={f} value={base.record?.[f.name]} />
                </div>
                <p className="field-hint">Set when created; it cannot be changed here.</p>
              </div>
            )
          }
          const hint = hintFor(f)
          const wide = isLongText(f) || f.type === 'list' || f.type === 'json' || f.name === resource.title_field
          return (
            <FieldShell key={f.name} label={fieldLabel(f)} htmlFor={id} hint={hint} error={errors[f.name]} required={f.required} wide={wide}>
              <FieldInput field={f} id={id} value={draft[f.name]} onChange={(v) => set(f.name, v)} error={errors[f.name]} hint={hint} />
            </FieldShell>
          )
        })}
      </div>
      <div className="form-actions">
        {onCancel && (
          <Button onClick={onCancel} disabled={busy}>
            Cancel
          </Button>
        )}
        <Button type="submit" variant="primary" busy={busy}>
          {submitLabel ?? (editing ? 'Save changes' : `Create ${humanize(resource.entity).toLowerCase()}`)}
        </Button>
      </div>
    </form>
  )
}
