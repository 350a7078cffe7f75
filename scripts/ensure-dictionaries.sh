#!/usr/bin/env bash
# Makes sure the FreeDict Spanish<->English dictionaries (Debian dict-freedict-spa-eng and
# dict-freedict-eng-spa, dictd format, ~260 kB) are present: the Spanish retrieval translates
# questions word by word with them (knowledge_base/glossary.py). Installs them with apt when
# we are root; otherwise explains. Without them Spanish still works, a little less accurately;
# under CI=true a missing dictionary is an error, never a silent downgrade.
set -euo pipefail
DIR="${ASKAGENCY_DICTIONARY_DIR:-/usr/share/dictd}"
PACKAGES=(dict-freedict-spa-eng dict-freedict-eng-spa)
present() { [ -f "$DIR/freedict-spa-eng.index" ] && [ -f "$DIR/freedict-eng-spa.index" ]; }
if present; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing the FreeDict Spanish-English dictionaries (${PACKAGES[*]}) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${PACKAGES[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
  }
  if present; then exit 0; fi
fi
echo "warning: FreeDict dictionaries not found in $DIR; install them (apt-get install ${PACKAGES[*]})" >&2
echo "         or set ASKAGENCY_DICTIONARY_DIRS. Spanish questions are matched without translation." >&2
if [ "${CI:-}" = "true" ]; then exit 1; fi
exit 0
