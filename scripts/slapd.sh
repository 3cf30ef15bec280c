#!/usr/bin/env bash
# The LDAP tests (tests/apps/identity/test_ldap*.py) start their own OpenLDAP server (slapd)
# with their own configuration and data. Install Debian's slapd and ldap-utils when missing
# and we may (root, apt available); otherwise those tests skip with a reason.
set -uo pipefail
if command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ldap: installing Debian's slapd and ldap-utils"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null) \
    || echo "ldap: could not install slapd; LDAP tests will be skipped" >&2
else
  echo "ldap: slapd not found and cannot be installed here; LDAP tests will be skipped" >&2
fi
exit 0
