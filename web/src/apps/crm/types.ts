// Shapes of the CRM API answers the custom pages read (src/nexus/apps/crm/routes.py, insight.py).

export type StageKind = 'open' | 'won' | 'lost'

export interface Stage {
  id: string
  name: string
  position: number
  probability: number
  kind: StageKind
}

export interface Deal {
  id: string
  title: string
  /** Decimal as a string ("1250.00"). */
  amount: string
  currency: string
  expected_close_date: string | null
  probability: number
  owner_id: string | null
  pipeline_id: string
  stage_id: string
  status: StageKind
  committed: boolean
  company_id: string | null
  contact_id: string | null
  /** Named by the board (null: none or deleted); absent on a deal from anywhere else. */
  company_name?: string | null
  owner_name?: string | null
  description?: string
  won_reason?: string
  lost_reason?: string
  closed_at?: string | null
  stage_entered_at?: string | null
  updated_at: string
  version: number
  [k: string]: unknown
}

export interface Column {
  stage: Stage
  count: number
  /** In the org currency. */
  total: string
  weighted: string
  by_currency: { currency: string; count: number; amount: string; weighted: string }[]
  items: Deal[]
  next_cursor: string | null
}

export interface BoardData {
  pipeline: { id: string; name: string }
  currency: string
  owner_id: string | null
  columns: Column[]
  /** Currencies without a stored rate: their amounts are left out of the totals. */
  unconverted: string[]
}

export interface ForecastRow {
  period: string
  start: string
  end: string
  owner_id?: string | null
  pipeline_id?: string | null
  open_count: number
  pipeline: string
  weighted: string
  committed: string
  won_count: number
  won: string
}

export interface ForecastData {
  currency: string
  period: 'month' | 'quarter'
  from: string
  to: string
  group_by: string[]
  rows: ForecastRow[]
  totals: Omit<ForecastRow, 'period' | 'start' | 'end' | 'owner_id' | 'pipeline_id'>
  unconverted: string[]
}

export interface TimelineItem {
  id: string
  subject_type: string
  subject_id: string
  at: string
  kind: string
  title: string
  body: string
  ref_type: string | null
  ref_id: string | null
  actor_id: string | null
  data: Record<string, unknown> | null
}

export interface StageVisit {
  id: string
  stage_id: string
  stage: string | null
  kind: StageKind | null
  pipeline_id: string
  entered_at: string
  left_at: string | null
  entered_by: string | null
  seconds_in_stage: number
}
