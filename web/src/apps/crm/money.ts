// Money as the API sends it (decimal strings) and as people read it. Sums are done in
// cents (integers), so "0.10" + "0.20" is "0.30", never 0.30000000000000004.

export function toCents(amount: string | number | null | undefined): number {
  if (amount === null || amount === undefined || amount === '') return 0
  const s = String(amount).trim()
  const m = /^(-)?(\d+)(?:\.(\d{0,2})\d*)?$/.exec(s)
  if (!m) return 0
  const cents = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'))
  return m[1] ? -cents : cents
}

export function fromCents(cents: number): string {
  const neg = cents < 0
  const abs = Math.abs(Math.round(cents))
  return `${neg ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

const formats = new Map<string, Intl.NumberFormat>()

function formatter(currency: string, compact: boolean): Intl.NumberFormat {
  const key = `${currency}|${compact}`
  let f = formats.get(key)
  if (!f) {
    try {
      f = new Intl.NumberFormat(undefined, compact
        ? { style: 'currency', currency, notation: 'compact', maximumFractionDigits: 1 }
        : { style: 'currency', currency })
    } catch {
      // Not an ISO currency the browser knows: a plain number with the code.
      f = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })
    }
    formats.set(key, f)
  }
  return f
}

/** "$12,500.00" (or "$12.5K" compact); amounts stay exact up to what a double holds. */
export function formatMoney(amount: string | number | null | undefined, currency: string, compact = false): string {
  const n = toCents(amount as string) / 100
  const text = formatter(currency, compact).format(n)
  return formatter(currency, compact).resolvedOptions().style === 'currency' ? text : `${text} ${currency}`
}
