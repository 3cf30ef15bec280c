// The notifications bell: the latest notifications, the unread count, live updates over the
// WebSocket. On a server without notifications it says so instead of pretending.
import { useEffect, useRef, useState } from 'react'
import { Icon } from '../components/Icon'
import { EmptyState, Spinner } from '../components/ui'
import { bearerAccessToken } from '../lib/api'
import { connectNotifications, loadNotifications, markRead, type Notification, type NotificationFeed } from '../lib/features'
import { timeAgo } from '../lib/format'
import { navigate } from '../lib/router'

export function Bell() {
  const [feed, setFeed] = useState<NotificationFeed | null>(null)
  const [open, setOpen] = useState(false)
  const [failed, setFailed] = useState(false)
  const wrap = useRef<HTMLDivElement>(null)

  useEffect(() => {
    let stop: (() => void) | undefined
    loadNotifications().then(
      (f) => {
        setFeed(f)
        if (f.status === 'ready') {
          stop = connectNotifications(
            (n) => setFeed((cur) => (cur?.status === 'ready' ? { status: 'ready', items: [n, ...cur.items.filter((x) => x.id !== n.id)].slice(0, 50), unread: cur.unread + 1 } : cur)),
            bearerAccessToken,
          )
        }
      },
      () => setFailed(true),
    )
    return () => stop?.()
  }, [])

  useEffect(() => {
    if (!open) return
    const close = (e: MouseEvent) => !wrap.current?.contains(e.target as Node) && setOpen(false)
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false)
    document.addEventListener('mousedown', close)
    document.addEventListener('keydown', esc)
    return () => {
      document.removeEventListener('mousedown', close)
      document.removeEventListener('keydown', esc)
    }
  }, [open])

  const unavailable = feed?.status === 'unavailable' || failed
  const unread = feed?.status === 'ready' ? feed.unread : 0
  const label = unavailable ? 'Notifications (not available)' : unread ? `Notifications, ${unread} unread` : 'Notifications'

  const read = (n: Notification | 'all') => {
    setFeed((cur) => {
      if (cur?.status !== 'ready') return cur
      const items = cur.items.map((x) => (n === 'all' || x.id === n.id ? { ...x, read_at: x.read_at ?? new Date().toISOString() } : x))
      return { status: 'ready', items, unread: n === 'all' ? 0 : Math.max(0, cur.unread - (n.read_at ? 0 : 1)) }
    })
    void markRead(n === 'all' ? 'all' : n.id).catch(() => {})
  }

  return (
    <div className="menu-wrap bell" ref={wrap}>
      <button type="button" className="icon-btn" aria-label={label} title={label} aria-expanded={open} aria-haspopup="dialog" onClick={() => setOpen((o) => !o)}>
        <Icon name={unavailable ? 'bell-off' : 'bell'} />
      </button>
      {unread > 0 && (
        <span className="bell-dot" aria-hidden="true">
          {unread > 9 ? '9+' : unread}
        </span>
      )}
      {open && (
        <div className="popover" role="dialog" aria-label="Notifications">
          <div className="popover-head">
            <span>Notifications</span>
            {unread > 0 && (
              <button type="button" className="linkish small" onClick={() => read('all')}>
                Mark all read
              </button>
            )}
          </div>
          {!feed && !failed && (
            <div className="loading">
              <Spinner />
            </div>
          )}
          {unavailable && (
            <EmptyState icon="bell-off" title="Not available">
              <p>This NEXUS server does not send notifications yet.</p>
            </EmptyState>
          )}
          {feed?.status === 'ready' && feed.items.length === 0 && <EmptyState icon="bell" title="You are all caught up" />}
          {feed?.status === 'ready' && feed.items.length > 0 && (
            <ul className="notif-list">
              {feed.items.map((n) => (
                <li key={n.id}>
                  <button
                    type="button"
                    className={`notif${n.read_at ? '' : ' unread'}`}
                    onClick={() => {
                      read(n)
                      if (n.link) {
                        setOpen(false)
                        navigate(n.link)
                      }
                    }}
                  >
                    <span className="notif-dot" aria-hidden="true" />
                    <span className="stack-sm" style={{ gap: 2, minWidth: 0 }}>
                      <strong>{n.title}</strong>
                      {n.body && <span className="small muted">{n.body}</span>}
                      <span className="small subtle">{timeAgo(n.created_at)}</span>
                    </span>
                    {!n.read_at && <span className="visually-hidden">(unread)</span>}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  )
}
