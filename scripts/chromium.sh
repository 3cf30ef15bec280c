#!/usr/bin/env bash
# End-to-end tests drive Debian's Chromium with Playwright (never Playwright's own browser
# download). Install it when missing and we may (root, apt available); otherwise the e2e
# tests skip with a reason.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "e2e: installing Debian's chromium"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null) \
    || echo "e2e: could not install chromium; browser tests will be skipped" >&2
else
  echo "e2e: chromium not found and cannot be installed here; browser tests will be skipped" >&2
fi
exit 0
