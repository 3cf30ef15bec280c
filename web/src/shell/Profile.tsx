import { useState } from 'react'
import { Avatar, Badge, Button } from '../components/ui'
import { useSession } from '../lib/context'
import { formatDateTime } from '../lib/format'
import { useDocumentTitle } from '../lib/hooks'
import { applyTheme, themeChoice, type ThemeChoice } from '../lib/theme'
import { authMode } from '../lib/api'
import { Link } from '../lib/router'

export default function Profile() {
  const { me, signOut } = useSession()
  useDocumentTitle('Profile')
  const [theme, setTheme] = useState<ThemeChoice>(themeChoice())
  const pick = (t: ThemeChoice) => {
    applyTheme(t)
    setTheme(t)
  }
  return (
    <div className="page" style={{ maxWidth: 880 }}>
      <div className="page-head">
        <div className="titles">
          <h1>Profile</h1>
          <p className="muted">Who you are signed in as, and how NEXUS looks for you.</p>
        </div>
      </div>
      <section className="card card-pad">
        <div className="row" style={{ gap: 16, alignItems: 'center' }}>
          <Avatar name={me.name || me.email} size={56} />
          <div>
            <h2>{me.name}</h2>
            <div className="muted">{me.email}</div>
          </div>
          <span className="spacer" />
          <Button icon="log-out" onClick={() => void signOut()}>
            Sign out
          </Button>
        </div>
        <dl className="props" style={{ marginTop: 16 }}>
          <dt>Organisation</dt>
          <dd>
            {me.org?.name} <span className="subtle">({me.org?.slug})</span>
          </dd>
          <dt>Roles</dt>
          <dd className="row">{me.roles.map((r) => <Badge key={r} tone="primary">{r}</Badge>)}</dd>
          <dt>Time zone</dt>
          <dd>{me.timezone ?? 'UTC'}</dd>
          <dt>Last sign-in</dt>
          <dd>{formatDateTime(me.last_login_at) || '—'}</dd>
          <dt>Session</dt>
          <dd>{authMode() === 'cookie' ? 'Browser session (secure cookies)' : 'Token session (this browser)'}</dd>
          <dt>Security</dt>
          <dd>
            <Link to="/account/security">Two-step sign-in, passkeys, password and sessions</Link>
          </dd>
        </dl>
      </section>
      <section className="card card-pad stack">
        <h2>Appearance</h2>
        <div className="row" role="radiogroup" aria-label="Theme">
          {(['light', 'dark', 'system'] as const).map((t) => (
            <label key={t} className="checkbox-row card" style={{ padding: '8px 14px' }}>
              <input type="radio" name="theme" checked={theme === t} onChange={() => pick(t)} />
              {t === 'system' ? 'Match system' : t === 'light' ? 'Light' : 'Dark'}
            </label>
          ))}
        </div>
      </section>
      <section className="card card-pad stack-sm">
        <h2>Permissions</h2>
        <p className="muted small">What your roles allow, as app.resource.action (* means any).</p>
        <div className="row">{me.permissions.map((p) => <code key={p} className="badge">{p}</code>)}</div>
      </section>
    </div>
  )
}
