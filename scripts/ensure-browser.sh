#!/usr/bin/env bash
# Makes sure Debian's Chromium is present for the browser tests (Playwright cannot
# download its own browsers here). Installs it with apt when we are root; otherwise
# explains. Under CI=true a missing browser is an error, never a silent skip.
set -euo pipefail
CHROMIUM="${ASKAGENCY_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian chromium for the browser tests ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
  [ -x "$CHROMIUM" ] && exit 0
fi
echo "error: Chromium not found at $CHROMIUM; install it (apt-get install chromium) or set ASKAGENCY_CHROMIUM." >&2
if [ "${CI:-}" = "true" ]; then exit 1; fi
echo "warning: browser tests will be skipped (CI is not set)." >&2
exit 0
