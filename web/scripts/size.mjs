// Prints the gzipped size of the JavaScript and CSS the shell loads before any app
// (the entry chunk, its static imports and its stylesheet, as index.html names them),
// then every lazily loaded chunk; fails when the initial JavaScript exceeds the budget.
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

const OUT = new URL('../../src/nexus/static/web/', import.meta.url).pathname
const BUDGET_KB = Number(process.env.NEXUS_JS_BUDGET_KB ?? 250)

if (!existsSync(join(OUT, 'index.html'))) {
  console.error(`size: ${OUT}index.html is missing; run npm run build first`)
  process.exit(2)
}
const html = readFileSync(join(OUT, 'index.html'), 'utf8')
const refs = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1])
const gz = (file) => gzipSync(readFileSync(join(OUT, file)), { level: 9 }).length
const kb = (n) => (n / 1024).toFixed(1).padStart(7) + ' KB'

let initialJs = 0
let initialCss = 0
console.log('Initial (loaded by index.html), gzipped:')
for (const f of refs) {
  const size = gz(f)
  if (f.endsWith('.js')) initialJs += size
  else initialCss += size
  console.log(`  ${kb(size)}  ${f}`)
}
const initial = new Set(refs)
const lazy = readdirSync(join(OUT, 'assets')).filter((f) => f.endsWith('.js') && !initial.has('assets/' + f))
console.log('Loaded on demand, gzipped:')
for (const f of lazy.sort()) console.log(`  ${kb(gz('assets/' + f))}  assets/${f}`)
console.log(`Initial JS: ${kb(initialJs).trim()} (budget ${BUDGET_KB} KB); initial CSS: ${kb(initialCss).trim()}`)
if (initialJs > BUDGET_KB * 1024) {
  console.error(`size: the initial JavaScript is over the ${BUDGET_KB} KB budget`)
  process.exit(1)
}
