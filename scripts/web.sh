#!/usr/bin/env bash
# Build the web app into src/nexus/static/web when Node.js is present.
#   scripts/web.sh build      install (npm ci) and build if the sources changed since the last build
#   scripts/web.sh test       install and run the component tests (Vitest)
# Without Node.js, NEXUS still serves the API and a page that says the web app is not built.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "web: Node.js/npm not found — skipping the web app (the API still works)" >&2
  exit 0
fi
install() {
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
case "${1:-build}" in
  build)
    out=src/nexus/static/web/index.html
    if [ -f "$out" ] && [ -z "$(find web/src web/public web/index.html web/vite.config.ts web/package-lock.json -newer "$out" -print -quit 2>/dev/null)" ]; then
      exit 0
    fi
    install
    (cd web && npm run build --silent)
    ;;
  test)
    install
    (cd web && npm test --silent)
    ;;
esac
