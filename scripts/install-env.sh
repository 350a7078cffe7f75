#!/usr/bin/env bash
# Creates or updates one of the project's two virtual environments (`make setup` runs it for each).
#
#   scripts/install-env.sh app  <venv folder> <python 3.11>   # the product, its tests and tools
#   scripts/install-env.sh rasa <venv folder> <python 3.10>   # Rasa 3.6 and the custom channels
#
# A folder that does not exist yet is first restored from scripts/venv-cache.sh's cache when the
# same inputs installed it before (2-2.5 min of pip on a fresh clone). The inputs are the kind's
# requirement and constraint files and this script, whose commands (the torch pin among them)
# are part of what an environment is made of; the Makefile is not, so editing a test target no
# longer installs everything again. A fresh install is saved to the cache; a folder that already
# existed is updated in place and not saved (it may hold packages the inputs no longer ask for).
set -euo pipefail
kind="${1:?usage: install-env.sh app|rasa <venv folder> <python>}"
venv="${2:?venv folder}"
python="${3:?python interpreter}"
cd "$(dirname "$0")/.."
case "$kind" in
  app) inputs=(pyproject.toml constraints.txt) ;;
  rasa) inputs=(requirements-rasa.txt constraints-rasa.txt) ;;
  *) echo "install-env.sh: unknown kind '$kind' (app or rasa)" >&2; exit 2 ;;
esac
inputs+=(scripts/install-env.sh)
pip=("$venv/bin/python" -m pip install -q)

# This checkout into a restored environment: its editable install names the clone it came from.
install_checkout() {
  [ "$kind" = app ] || return 0
  (set -x; "${pip[@]}" --no-deps --no-build-isolation -e .)
}

if [ ! -x "$venv/bin/python" ] && scripts/venv-cache.sh restore "$venv" "$python" "${inputs[@]}"; then
  install_checkout
  exit 0
fi

fresh=$([ -x "$venv/bin/python" ] || echo yes)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
set -x
"${pip[@]}" --upgrade pip
if [ "$kind" = app ]; then
  # Pin the CPU build of torch first: letting pip choose pulls several GB of CUDA packages.
  "${pip[@]}" torch==2.13.0
  # Exact versions of every dependency (constraints.txt): a fresh clone gets what CI tested.
  "${pip[@]}" -c constraints.txt -e '.[test]'
else
  "${pip[@]}" -c constraints-rasa.txt -r requirements-rasa.txt
fi
set +x
[ -z "$fresh" ] || scripts/venv-cache.sh save "$venv" "$python" "${inputs[@]}"
