export type ThemeChoice = 'light' | 'dark' | 'system'
const KEY = 'nexus.theme'

export function themeChoice(): ThemeChoice {
  try {
    const t = localStorage.getItem(KEY)
    return t === 'light' || t === 'dark' ? t : 'system'
  } catch {
    return 'system'
  }
}

export function effectiveTheme(choice: ThemeChoice = themeChoice()): 'light' | 'dark' {
  if (choice !== 'system') return choice
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
}

export function applyTheme(choice: ThemeChoice): void {
  try {
    if (choice === 'system') localStorage.removeItem(KEY)
    else localStorage.setItem(KEY, choice)
  } catch {
    /* private mode */
  }
  document.documentElement.dataset.theme = effectiveTheme(choice)
  const meta = document.querySelector('meta[name="theme-color"]')
  meta?.setAttribute('content', effectiveTheme(choice) === 'dark' ? '#14162b' : '#4f46e5')
}
