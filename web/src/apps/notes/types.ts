export interface Notebook {
  id: string
  name: string
  description: string
  color: string
}

export interface Note {
  id: string
  title: string
  /** HTML, sanitised by the server. */
  body: string
  body_text: string
  notebook_id: string | null
  tags: string[]
  pinned: boolean
  visibility: 'private' | 'org'
  shared_with?: string[]
  created_by: string
  updated_at: string
  version: number
}

export interface NoteVersion {
  id: string
  version: number
  title: string
  body: string
  tags: string[]
  saved_at: string
  saved_by: string | null
}
