#!/usr/bin/env bash
# Prints the path of a Python interpreter of the wanted minor version (e.g. 3.10),
# looking on PATH, in pyenv and in the usual system places, or explains how to get one.
set -euo pipefail
want="${1:?usage: find-python.sh 3.10}"
candidates=("python${want}")
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}(\.[0-9]+)?$" | sort -rV); do
    candidates+=("$(pyenv root)/versions/${v}/bin/python")
  done
fi
for root in "${PYENV_ROOT:-$HOME/.pyenv}" /root/.pyenv; do
  for p in "$root"/versions/"$want".*/bin/python; do [ -x "$p" ] && candidates+=("$p"); done
done
candidates+=("/usr/bin/python${want}" "/usr/local/bin/python${want}")
for c in "${candidates[@]}"; do
  if path=$(command -v "$c" 2>/dev/null) && "$path" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '${want}'.split('.')))" 2>/dev/null; then
    "$path" -c "import sys; print(sys.executable)"
    exit 0
  fi
done
cat >&2 <<MSG
error: Python ${want} was not found (looked for python${want} on PATH, in pyenv and in /usr/bin, /usr/local/bin).
  AskAgency needs Python 3.10 for the Rasa server (rasa 3.6.21 supports 3.8-3.10) and Python 3.11 for everything else.
  Install it with one of:
    pyenv install ${want}          (then run make again)
    apt-get install python${want} python${want}-venv   (Debian/Ubuntu, where packaged)
  or point the Makefile at it:  make PYTHON${want/./}=/path/to/python${want} ...
MSG
exit 1
