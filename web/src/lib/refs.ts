// Resolving references (assignee_id → "Ada Lovelace"): one GET per record, cached for the page's life.
import { useEffect, useState } from 'react'
import { api } from './api'
import type { Meta } from './meta'
import { recordTitle, resourceByKey } from './meta'

const cache = new Map<string, Promise<Record<string, unknown> | null>>()

export function fetchRecord(path: string, id: string): Promise<Record<string, unknown> | null> {
  const key = `${path}/${id}`
  let hit = cache.get(key)
  if (!hit) {
    hit = api.get<Record<string, unknown>>(`${path}/${encodeURIComponent(id)}?deleted=include`).catch(() => null)
    cache.set(key, hit)
  }
  return hit
}

export function forgetRecord(path: string, id: string): void {
  cache.delete(`${path}/${id}`)
}

export function primeRecord(path: string, rec: Record<string, unknown>): void {
  cache.set(`${path}/${String(rec.id)}`, Promise.resolve(rec))
}

/** The title of a referenced record, or undefined while loading / when it cannot be read. */
export function useReferenceTitle(meta: Meta | null, refKey: string | undefined, id: unknown): string | undefined {
  const target = resourceByKey(meta, refKey)
  const [title, setTitle] = useState<string | undefined>(undefined)
  useEffect(() => {
    let live = true
    setTitle(undefined)
    if (!target || typeof id !== 'string' || !id) return
    void fetchRecord(target.path, id).then((rec) => {
      if (live) setTitle(rec ? recordTitle(target, rec) : undefined)
    })
    return () => {
      live = false
    }
  }, [target, id])
  return title
}
