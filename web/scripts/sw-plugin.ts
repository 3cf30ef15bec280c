// Writes sw.js next to the built files: a service worker that precaches the app shell
// (index.html, every hashed asset, icons, manifest) so the Hub opens offline, and never
// caches the API. The cache name changes whenever the file list does.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { Plugin, ResolvedConfig } from 'vite'

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

export function serviceWorker(): Plugin {
  let config: ResolvedConfig
  return {
    name: 'nexus-service-worker',
    apply: 'build',
    configResolved(c) {
      config = c
    },
    closeBundle() {
      const out = config.build.outDir
      const files = walk(out)
        .map((f) => '/' + relative(out, f).split('\\').join('/'))
        .filter((f) => f !== '/sw.js' && !f.endsWith('.map'))
        .sort()
      const hash = createHash('sha256')
      for (const f of files) hash.update(f).update(readFileSync(join(out, f)))
      const version = hash.digest('hex').slice(0, 12)
      const template = readFileSync(new URL('./sw-template.js', import.meta.url), 'utf8')
      const body = template
        .replace('__VERSION__', version)
        .replace('__PRECACHE__', JSON.stringify(files.map((f) => (f === '/index.html' ? '/' : f)).concat('/index.html')))
      writeFileSync(join(out, 'sw.js'), body)
    },
  }
}
