// A domain action's input (POST …/{id}/{action}) as a form drawn from its JSON schema.
// Properties named like a field of the resource reuse that field's input (a reference
// picker for assignee_id, choices for status…); `x-reference` in a property's schema asks for
// a picker of that record type.
import { useState, type FormEvent } from 'react'
import { Alert, Button, Dialog, FieldShell } from '../components/ui'
import { ApiError, request } from '../lib/api'
import type { ActionMeta, FieldMeta, JsonSchema, ResourceMeta } from '../lib/meta'
import { humanize } from '../lib/meta'
import { fromDraft, toDraft, validateField } from '../lib/forms'
import { FieldInput } from './inputs'

function nonNull(s: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  if (s.anyOf) {
    const real = s.anyOf.filter((x) => x.type !== 'null')
    return { schema: { ...s, ...(real[0] ?? {}), anyOf: undefined }, nullable: real.length < s.anyOf.length }
  }
  return { schema: s, nullable: false }
}

/** JSON-schema properties → field metadata the generic inputs understand. */
export function schemaFields(action: ActionMeta, resource: ResourceMeta): FieldMeta[] {
  const props = action.input?.properties ?? {}
  const required = new Set(action.input?.required ?? [])
  return Object.entries(props).map(([name, raw]) => {
    const { schema, nullable } = nonNull(raw)
    const same = resource.fields.find((f) => f.name === name)
    const base: FieldMeta = {
      name,
      label: schema.title ?? humanize(name),
      type: 'string',
      required: required.has(name) && !nullable,
      nullable,
      readonly: false,
      filterable: false,
      sortable: false,
      searchable: false,
      description: schema.description,
      min_length: schema.minLength,
      max_length: schema.maxLength,
      ge: schema.minimum,
      le: schema.maximum,
    }
    // An input that names the record type it points to (`x-reference`, e.g. the other record of a merge).
    if (typeof schema['x-reference'] === 'string') return { ...base, type: 'reference', reference: schema['x-reference'] }
    if (same && (same.type === 'reference' || same.type === 'choice')) return { ...base, type: same.type, reference: same.reference, choices: same.choices, label: same.label }
    if (schema.enum) return { ...base, type: 'choice', choices: schema.enum.map(String) }
    if (schema.type === 'array') return { ...base, type: 'list', max_length: (raw as JsonSchema & { maxItems?: number }).maxItems }
    if (schema.type === 'integer') return { ...base, type: 'integer' }
    if (schema.type === 'number') return { ...base, type: 'number' }
    if (schema.type === 'boolean') return { ...base, type: 'boolean' }
    if (schema.format === 'date-time') return { ...base, type: 'datetime' }
    return base
  })
}

export function ActionDialog({
  resource,
  action,
  record,
  onDone,
  onClose,
}: {
  resource: ResourceMeta
  action: ActionMeta
  record: Record<string, unknown>
  onDone: (rec: Record<string, unknown>, etag?: string) => void
  onClose: () => void
}) {
  const fields = schemaFields(action, resource)
  const [draft, setDraft] = useState<Record<string, unknown>>(() => Object.fromEntries(fields.map((f) => [f.name, toDraft(f, record[f.name] ?? undefined)])))
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [formError, setFormError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const errs: Record<string, string> = {}
    for (const f of fields) {
      const m = validateField(f, draft[f.name])
      if (m) errs[f.name] = m
    }
    setErrors(errs)
    if (Object.keys(errs).length) return
    const body: Record<string, unknown> = {}
    for (const f of fields) {
      const v = fromDraft(f, draft[f.name])
      if (v !== undefined) body[f.name] = v
    }
    setBusy(true)
    setFormError(null)
    try {
      const res = await request<Record<string, unknown>>(`${resource.path}/${record.id}/${action.name}`, { method: 'POST', json: body })
      onDone(res.data, res.etag)
      onClose()
    } catch (err) {
      if (err instanceof ApiError) {
        const fe = err.fieldErrors
        setErrors(Object.fromEntries(Object.entries(fe).filter(([k]) => fields.some((f) => f.name === k))))
        if (!Object.keys(fe).some((k) => fields.some((f) => f.name === k))) setFormError(err.message)
      } else setFormError((err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Dialog title={humanize(action.name)} description={action.summary} onClose={onClose}>
      <form className="stack" onSubmit={submit} noValidate>
        {formError && <Alert>{formError}</Alert>}
        {fields.map((f) => {
          const id = `action-${f.name}`
          return (
            <FieldShell key={f.name} label={f.label} htmlFor={id} hint={f.description} error={errors[f.name]} required={f.required}>
              <FieldInput field={{ ...f, type: f.type === 'string' && /password/i.test(f.name) ? 'string' : f.type }} id={id} value={draft[f.name]} onChange={(v) => setDraft((d) => ({ ...d, [f.name]: v }))} error={errors[f.name]} hint={f.description} />
            </FieldShell>
          )
        })}
        <div className="form-actions">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" busy={busy}>
            {humanize(action.name)}
          </Button>
        </div>
      </form>
    </Dialog>
  )
}
