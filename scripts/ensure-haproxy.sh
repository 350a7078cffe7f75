#!/usr/bin/env bash
# Makes sure HAProxy (Debian package haproxy) is installed: the scale profile balances its Rasa
# replicas and action servers with it (askagency/loadbalancer.py, deploy/haproxy/haproxy.cfg),
# and `make test` runs it in front of real replicas. Installs it with apt when we are root;
# otherwise explains. Only the binary is used: no system service is enabled or started.
# Under CI=true a missing HAProxy is an error, never a skipped test.
set -euo pipefail
present() { [ -n "${ASKAGENCY_HAPROXY:-}" ] || command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; }
if present; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing HAProxy (apt-get install haproxy) ..."
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101: the package must not start a system HAProxy of its own on port 80.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.askagency && chmod +x /usr/sbin/policy-rc.d.askagency
  if [ ! -e /usr/sbin/policy-rc.d ]; then ln -s policy-rc.d.askagency /usr/sbin/policy-rc.d; fi
  apt-get install -y -qq haproxy >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq haproxy >/dev/null
  }
  if [ -L /usr/sbin/policy-rc.d ]; then rm -f /usr/sbin/policy-rc.d; fi
  rm -f /usr/sbin/policy-rc.d.askagency
  if present; then exit 0; fi
fi
echo "warning: HAProxy not found; install it (apt-get install haproxy) or set ASKAGENCY_HAPROXY." >&2
echo "         make run works without it; make run-scale and its tests need it." >&2
if [ "${CI:-}" = "true" ]; then exit 1; fi
exit 0
