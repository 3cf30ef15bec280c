#!/usr/bin/env bash
# SAML (identity federation) signs, verifies and decrypts XML with Debian's xmlsec1, which
# pysaml2 runs as a subprocess. Install it when missing and we may (root, apt available);
# otherwise the SAML tests skip with a reason.
set -uo pipefail
if command -v xmlsec1 >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "saml: installing Debian's xmlsec1"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1 >/dev/null) \
    || echo "saml: could not install xmlsec1; SAML tests will be skipped" >&2
else
  echo "saml: xmlsec1 not found and cannot be installed here; SAML tests will be skipped" >&2
fi
exit 0
