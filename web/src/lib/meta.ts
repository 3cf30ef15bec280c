// Types of GET /api/v1/meta and small helpers over them: everything generic views need.

export type FieldType =
  | 'string'
  | 'integer'
  | 'number'
  | 'decimal'
  | 'boolean'
  | 'datetime'
  | 'date'
  | 'json'
  | 'list'
  | 'choice'
  | 'reference'

export interface FieldMeta {
  name: string
  label: string
  type: FieldType
  required: boolean
  nullable: boolean
  readonly: boolean
  filterable: boolean
  sortable: boolean
  searchable: boolean
  description?: string
  choices?: string[]
  reference?: string
  max_length?: number
  min_length?: number
  ge?: number
  le?: number
  gt?: number
  lt?: number
  pattern?: string
  default?: unknown
  operators?: string[]
  /** What a list holds: {type: "string"} or {type: "object", fields: [...]} (older servers: a bare string). */
  items?: ListItems | string
  /** May PATCH change it? (absent on older servers: assume yes unless readonly) */
  updatable?: boolean
  /** Written on create only and not stored as such (a user's initial password). */
  create_only?: boolean
  /** Display hint: "html" is sanitised HTML from the server. */
  format?: string
}

export interface ListItems {
  type: string
  fields?: { name: string; type: string; required: boolean }[]
}

/** The item description of a list field, whatever shape the server sent. */
export function listItems(f: FieldMeta): ListItems | undefined {
  if (typeof f.items === 'string') return { type: f.items }
  if (f.items && typeof f.items === 'object' && typeof f.items.type === 'string') return f.items
  return undefined
}

/** On edit: may this field change? */
export function isUpdatable(f: FieldMeta): boolean {
  return !f.readonly && !f.create_only && f.updatable !== false
}

export interface ActionMeta {
  name: string
  summary: string
  permission: string
  allowed: boolean
  input: JsonSchema | null
}

export interface JsonSchema {
  type?: string | string[]
  title?: string
  description?: string
  properties?: Record<string, JsonSchema>
  required?: string[]
  enum?: unknown[]
  anyOf?: JsonSchema[]
  items?: JsonSchema
  default?: unknown
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  format?: string
  [keyword: string]: unknown
}

export interface Permissions {
  read: boolean
  create: boolean
  update: boolean
  delete: boolean
  export: boolean
  import: boolean
}

export interface ResourceMeta {
  app: string
  name: string
  title: string
  entity: string
  path: string
  title_field: string | null
  description?: string
  fields: FieldMeta[]
  filters: string[]
  sorts: string[]
  default_sort: string
  search: string[]
  views: { name: string; title: string }[]
  actions: ActionMeta[]
  permissions: Permissions
  events?: string[]
  /** The org's custom fields (kernel custom fields), when the resource takes them. */
  custom_fields?: CustomFieldMeta[]
}

export interface CustomFieldMeta {
  /** "custom.<key>": the filter name and the CSV column. */
  name: string
  key: string
  label: string
  type: 'text' | 'number' | 'date' | 'choice' | 'reference'
  required: boolean
  choices?: string[]
  reference?: string
  operators?: string[]
  description?: string
}

const CUSTOM_TYPES: Record<CustomFieldMeta['type'], FieldType> = {
  text: 'string', number: 'number', date: 'date', choice: 'choice', reference: 'reference',
}

/** Custom fields as ordinary field metadata named "custom.<key>" (forms, lists, filters, imports). */
export function customFields(r: ResourceMeta): FieldMeta[] {
  return (r.custom_fields ?? []).map((c) => ({
    name: c.name, label: c.label, type: CUSTOM_TYPES[c.type] ?? 'string', required: c.required, nullable: !c.required,
    readonly: false, filterable: true, sortable: false, searchable: false, updatable: true, description: c.description,
    choices: c.choices, reference: c.reference, operators: c.operators,
  }))
}

/** A record's value of a field, custom ones ("custom.tier") read from its `custom` object. */
export function fieldValue(rec: Record<string, unknown> | null | undefined, name: string): unknown {
  if (!rec) return undefined
  if (name.startsWith('custom.') && !(name in rec)) {
    const custom = rec.custom
    return custom && typeof custom === 'object' ? (custom as Record<string, unknown>)[name.slice(7)] : undefined
  }
  return rec[name]
}

export interface AppMeta {
  name: string
  title: string
  category: string
  port?: number
  catalog_number: number
  icon?: string | null
  description?: string
  /** A kernel service (webhooks…), not an app of the catalog. */
  platform?: boolean
  resources: ResourceMeta[]
}

export interface Meta {
  apps: AppMeta[]
  user: { id: string; org_id: string; roles: string[] }
}

export const SYSTEM_FIELDS = new Set(['id', 'created_at', 'created_by', 'updated_at', 'updated_by', 'version', 'deleted_at'])

export function resourceKey(r: Pick<ResourceMeta, 'app' | 'name'>): string {
  return `${r.app}.${r.name}`
}

export function findResource(meta: Meta | null, app: string, name: string): ResourceMeta | undefined {
  return meta?.apps.find((a) => a.name === app)?.resources.find((r) => r.name === name)
}

/** "identity.users" → the users resource, when the caller may read it. */
export function resourceByKey(meta: Meta | null, key: string | undefined): ResourceMeta | undefined {
  if (!key) return undefined
  const [app, name] = key.split('.')
  return app && name ? findResource(meta, app, name) : undefined
}

/** Apps in catalog order. */
export function appsInOrder(meta: Meta | null): AppMeta[] {
  return [...(meta?.apps ?? [])].sort((a, b) => a.catalog_number - b.catalog_number || a.title.localeCompare(b.title))
}

/** Apps grouped by category; categories ordered by their first app in the catalog. */
export function appsByCategory(meta: Meta | null): [string, AppMeta[]][] {
  const groups = new Map<string, AppMeta[]>()
  for (const a of appsInOrder(meta)) {
    const list = groups.get(a.category || 'Other') ?? []
    list.push(a)
    groups.set(a.category || 'Other', list)
  }
  return [...groups.entries()]
}

export function field(r: ResourceMeta, name: string): FieldMeta | undefined {
  return r.fields.find((f) => f.name === name)
}

/** Fields a person edits in a form: writable, not the kernel's bookkeeping. */
export function editableFields(r: ResourceMeta): FieldMeta[] {
  // A resource with custom fields edits them one input each, not as the raw `custom` object.
  const fields = [
    ...r.fields.filter((f) => !f.readonly && !SYSTEM_FIELDS.has(f.name) && !(r.custom_fields && f.name === 'custom')),
    ...customFields(r),
  ]
  // Create-only fields (a user's password) go after the stored ones.
  // The title first, then long text, then the rest in declared order.
  const rank = (f: FieldMeta) => (f.name === r.title_field ? 0 : f.type === 'string' && (f.max_length ?? 0) > 1000 ? 1 : 2)
  return fields.map((f, i) => [f, i] as const).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([f]) => f)
}

const WORDS: Record<string, string> = { todo: 'To do', api_key: 'API key', 'api-keys': 'API keys', id: 'ID' }

export function humanize(value: string): string {
  if (WORDS[value]) return WORDS[value]!
  const s = value.replace(/[_-]+/g, ' ').trim()
  return s.charAt(0).toUpperCase() + s.slice(1)
}

export function fieldLabel(f: Pick<FieldMeta, 'name' | 'label'>): string {
  return f.label || humanize(f.name)
}

/** The columns a list shows before the person chooses: the title, then short writable fields. */
export function defaultColumns(r: ResourceMeta): string[] {
  const cols: string[] = []
  if (r.title_field) cols.push(r.title_field)
  for (const f of r.fields) {
    if (cols.length >= 6) break
    if (cols.includes(f.name) || SYSTEM_FIELDS.has(f.name) || f.type === 'json') continue
    if (f.type === 'string' && (f.max_length ?? 0) > 1000) continue
    if (f.readonly && !['status'].includes(f.name) && !f.filterable) continue
    if (f.type === 'list' && f.name !== 'labels' && f.name !== 'roles' && f.name !== 'permissions') continue
    cols.push(f.name)
  }
  if (!cols.includes('updated_at')) cols.push('updated_at')
  return cols
}

export function recordTitle(r: ResourceMeta, rec: Record<string, unknown> | null | undefined): string {
  if (!rec) return ''
  const v = r.title_field ? rec[r.title_field] : undefined
  if (typeof v === 'string' && v.trim()) return v.length > 120 ? v.slice(0, 117) + '…' : v
  return `${humanize(r.entity)} ${String(rec.id ?? '').slice(-6)}`
}
