// Universal search: type-ahead, grouped by app, navigable with the keyboard (combobox pattern).
// "/" or Ctrl/⌘+K focuses it from anywhere.
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent } from 'react'
import { Icon } from '../components/Icon'
import { Spinner } from '../components/ui'
import { useOptionalSession } from '../lib/context'
import { markedRuns, search, type SearchGroup } from '../lib/features'
import { findResource } from '../lib/meta'
import { useDebounced, useMediaQuery } from '../lib/hooks'
import { navigate } from '../lib/router'

export function SearchBox() {
  const session = useOptionalSession()
  const meta = session?.meta ?? null
  const [q, setQ] = useState('')
  const [open, setOpen] = useState(false)
  const [groups, setGroups] = useState<SearchGroup[]>([])
  const [loading, setLoading] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [active, setActive] = useState(0)
  const input = useRef<HTMLInputElement>(null)
  const wrap = useRef<HTMLDivElement>(null)
  const listId = useId()
  const debounced = useDebounced(q, 180)
  const narrow = useMediaQuery('(max-width: 640px)')
  const hits = useMemo(() => groups.flatMap((g) => g.hits), [groups])

  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      const target = e.target as HTMLElement
      const typing = target.closest('input, textarea, select, [contenteditable="true"]')
      if ((e.key === 'k' && (e.ctrlKey || e.metaKey)) || (e.key === '/' && !typing)) {
        e.preventDefault()
        input.current?.focus()
        input.current?.select()
      }
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [])

  useEffect(() => {
    const close = (e: MouseEvent) => {
      if (!wrap.current?.contains(e.target as Node)) setOpen(false)
    }
    document.addEventListener('mousedown', close)
    return () => document.removeEventListener('mousedown', close)
  }, [])

  useEffect(() => {
    if (!debounced.trim()) {
      setGroups([])
      setLoading(false)
      return
    }
    const ctl = new AbortController()
    setLoading(true)
    setError(null)
    search(meta, debounced, ctl.signal).then(
      (g) => {
        if (ctl.signal.aborted) return
        setGroups(g)
        setActive(0)
        setLoading(false)
      },
      (err: Error) => {
        if (ctl.signal.aborted) return
        setError(err.message || 'Search is not available right now.')
        setLoading(false)
      },
    )
    return () => ctl.abort()
  }, [debounced, meta])

  const go = (href: string) => {
    setOpen(false)
    setQ('')
    input.current?.blur()
    navigate(href)
  }

  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault()
      setOpen(true)
      setActive((a) => Math.min(a + 1, hits.length - 1))
    } else if (e.key === 'ArrowUp') {
      e.preventDefault()
      setActive((a) => Math.max(a - 1, 0))
    } else if (e.key === 'Enter') {
      const hit = hits[active]
      if (hit) {
        e.preventDefault()
        go(hit.href)
      }
    } else if (e.key === 'Escape') {
      if (q) setQ('')
      else input.current?.blur()
      setOpen(false)
    }
  }

  const showList = open && q.trim().length > 0
  let index = -1
  return (
    <div className="search" ref={wrap}>
      <div className="input-with-icon">
        <Icon name="search" size={16} />
        <input
          ref={input}
          className="input"
          type="search"
          role="combobox"
          aria-label="Search everything"
          aria-expanded={showList}
          aria-controls={listId}
          aria-autocomplete="list"
          aria-activedescendant={showList && hits[active] ? `${listId}-${active}` : undefined}
          placeholder={narrow ? 'Search…' : 'Search NEXUS…'}
          value={q}
          onChange={(e) => {
            setQ(e.target.value)
            setOpen(true)
          }}
          onFocus={() => setOpen(true)}
          onKeyDown={onKey}
          autoComplete="off"
          spellCheck={false}
        />
        {!q && <span className="kbd">/</span>}
      </div>
      {showList && (
        <div className="search-results" id={listId} role="listbox" aria-label="Search results">
          {loading && hits.length === 0 && (
            <div className="search-note row">
              <Spinner size={14} /> Searching…
            </div>
          )}
          {error && <div className="search-note">{error}</div>}
          {!loading && !error && hits.length === 0 && <div className="search-note">Nothing matches “{q.trim()}”.</div>}
          {groups.map((g) => (
            <div key={g.app} role="group" aria-label={g.title}>
              <div className="search-group" aria-hidden="true">
                {g.title}
              </div>
              {g.hits.map((h) => {
                index += 1
                const i = index
                return (
                  <div
                    key={`${h.resource}-${h.id}`}
                    id={`${listId}-${i}`}
                    role="option"
                    aria-selected={i === active}
                    className="search-hit"
                    onMouseEnter={() => setActive(i)}
                    onMouseDown={(e) => e.preventDefault()}
                    onClick={() => go(h.href)}
                  >
                    <Icon name="file-text" size={16} />
                    <span className="hit-text">
                      <span className="hit-title">{h.title_highlight ? <Marked html={h.title_highlight} /> : h.title}</span>
                      {h.snippet && h.snippet !== h.title_highlight && (
                        <span className="hit-snippet">
                          <Marked html={h.snippet} />
                        </span>
                      )}
                    </span>
                    <span className="hit-meta">{findResource(meta, h.app, h.resource)?.title ?? h.resource}</span>
                  </div>
                )
              })}
            </div>
          ))}
        </div>
      )}
    </div>
  )
}

function Marked({ html }: { html: string }) {
  return (
    <>
      {markedRuns(html).map((r, i) => (r.mark ? <mark key={i}>{r.text}</mark> : <span key={i}>{r.text}</span>))}
    </>
  )
}
