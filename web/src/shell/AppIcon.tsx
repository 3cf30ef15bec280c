import { appColor } from '../apps/registry'
import { Icon } from '../components/Icon'
import type { AppMeta } from '../lib/meta'

export function AppIcon({ app, size = 44 }: { app: Pick<AppMeta, 'name' | 'icon'>; size?: number }) {
  return (
    <span className="app-icon" style={{ width: size, height: size, background: appColor(app.name) }} aria-hidden="true">
      <Icon name={app.icon ?? 'box'} size={Math.round(size * 0.5)} />
    </span>
  )
}
