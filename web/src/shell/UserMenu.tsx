import { useState } from 'react'
import { Avatar, Menu } from '../components/ui'
import { Icon } from '../components/Icon'
import { useSession } from '../lib/context'
import { navigate } from '../lib/router'
import { applyTheme, themeChoice, type ThemeChoice } from '../lib/theme'

export function UserMenu() {
  const { me, signOut } = useSession()
  const [theme, setTheme] = useState<ThemeChoice>(themeChoice())
  const pick = (t: ThemeChoice) => {
    applyTheme(t)
    setTheme(t)
  }
  return (
    <Menu
      label="Account menu"
      trigger={
        <span className="user-trigger">
          <Avatar name={me.name || me.email} />
          <span className="user-name">{me.name || me.email}</span>
          <Icon name="chevron-down" size={14} />
        </span>
      }
      header={
        <div className="menu-header">
          <div style={{ fontWeight: 600 }}>{me.name}</div>
          <div className="small muted">{me.email}</div>
          <div className="small subtle">
            {me.org?.name} · {me.roles.join(', ')}
          </div>
        </div>
      }
      items={[
        { label: 'Profile', icon: 'user', onSelect: () => navigate('/profile') },
        { label: 'Account security', icon: 'shield', onSelect: () => navigate('/account/security') },
        'separator',
        { label: 'Light theme', icon: 'sun', checked: theme === 'light', onSelect: () => pick('light') },
        { label: 'Dark theme', icon: 'moon', checked: theme === 'dark', onSelect: () => pick('dark') },
        { label: 'Match system', icon: 'monitor', checked: theme === 'system', onSelect: () => pick('system') },
        'separator',
        { label: 'Sign out', icon: 'log-out', onSelect: () => void signOut() },
      ]}
    />
  )
}
