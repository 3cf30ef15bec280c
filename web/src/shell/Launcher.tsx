// The app launcher in the top bar: every app the caller can use, in catalog order.
import { useEffect, useRef, useState } from 'react'
import { appHome } from '../apps/registry'
import { Icon } from '../components/Icon'
import { useSession } from '../lib/context'
import { appsInOrder } from '../lib/meta'
import { Link } from '../lib/router'
import { AppIcon } from './AppIcon'

export function Launcher() {
  const { meta } = useSession()
  const [open, setOpen] = useState(false)
  const wrap = useRef<HTMLDivElement>(null)
  useEffect(() => {
    if (!open) return
    const close = (e: MouseEvent) => !wrap.current?.contains(e.target as Node) && setOpen(false)
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false)
    document.addEventListener('mousedown', close)
    document.addEventListener('keydown', esc)
    wrap.current?.querySelector<HTMLElement>('.launcher-item')?.focus()
    return () => {
      document.removeEventListener('mousedown', close)
      document.removeEventListener('keydown', esc)
    }
  }, [open])
  const apps = appsInOrder(meta)
  return (
    <div className="menu-wrap" ref={wrap}>
      <button type="button" className="icon-btn" aria-label="Apps" title="Apps" aria-expanded={open} aria-haspopup="dialog" onClick={() => setOpen((o) => !o)}>
        <Icon name="grid" />
      </button>
      {open && (
        <div className="popover launcher-pop" role="dialog" aria-label="Apps">
          <div className="launcher-grid">
            {apps.map((a) => (
              <Link key={a.name} to={appHome(a)} className="launcher-item" onClick={() => setOpen(false)}>
                <AppIcon app={a} size={40} />
                {a.title}
              </Link>
            ))}
          </div>
        </div>
      )}
    </div>
  )
}
