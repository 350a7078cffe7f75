#!/usr/bin/env bash
# Keeps installed virtual environments outside the checkout, keyed by what they were built from,
# so a fresh clone whose inputs match an earlier install restores it instead of installing again.
#
#   scripts/venv-cache.sh restore <venv> <python> <input files...>   (exit 1: nothing to restore)
#   scripts/venv-cache.sh save    <venv> <python> <input files...>
#
# Why: on a fresh clone `make setup` spent 2-2.5 min in pip with its wheel cache warm (unpacking
# TensorFlow, torch and their dependencies, 5 GB), a quarter of `make test`. The key is a SHA-256
# of the interpreter's version and path, pip's configuration and the input files (requirements,
# constraints, the install script that pins torch), so a change to any of them installs afresh. The
# copy is made of hard links (same file system; a full copy otherwise): the files are never
# written in place (pip replaces files, Python writes bytecode by rename), and the entry-point
# scripts, whose first line names the folder the venv was installed in, are rewritten as new
# files when it is restored. scripts/install-env.sh then
# installs this checkout itself again (editable, no dependencies). The two latest environments
# of each name are kept, under ${XDG_CACHE_HOME:-~/.cache}/askagency/venvs.
set -euo pipefail
action="${1:?usage: venv-cache.sh restore|save <venv> <python> <files...>}"
venv="${2:?venv folder}"
python="${3:?python interpreter}"
shift 3
root="${XDG_CACHE_HOME:-${HOME:?}/.cache}/askagency/venvs"
name="$(basename "$venv")"
key="$({
  "$python" -c 'import sys; print(sys.version, sys.executable)'
  "$python" -m pip config list 2>/dev/null || true
  for f in "$@"; do printf '%s\n' "$f"; cat "$f"; done
} | sha256sum | cut -c1-16)"
cached="$root/$name-$key"

# Copies folder $1 to $2 (new) with hard links when possible, a full copy otherwise.
copy_tree() {
  mkdir -p "$(dirname "$2")"
  cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1" "$2"; }
}

# Points the scripts in venv $1 that name folder $2 (where it was installed) at $1.
relink() {
  local to
  to="$(cd "$1" && pwd)"
  # (pip writes a long interpreter path on the third line, behind a /bin/sh trampoline)
  { grep -lIs "$2/bin/" "$to"/bin/* || true; } | while read -r script; do
    sed -i "1,3s|$2/bin/|$to/bin/|g" "$script"  # a new file: the cached one is untouched
  done
  # activate scripts name the folder too (convenience only; rewritten the same way)
  { grep -lIs "$2" "$to"/bin/activate* || true; } | while read -r script; do
    sed -i "s|$2|$to|g" "$script"
  done
}

case "$action" in
  restore)
    [ -f "$cached/.complete" ] || exit 1
    rm -rf "$venv"
    copy_tree "$cached" "$venv"
    relink "$venv" "$(cat "$venv/.origin")"
    rm -f "$venv/.complete" "$venv/.origin"
    echo "restored $venv from $cached"
    ;;
  save)
    [ -f "$cached/.complete" ] && exit 0
    mkdir -p "$root"
    staging="$root/.$name-$key.$$"
    rm -rf "$staging"
    copy_tree "$venv" "$staging"
    (cd "$venv" && pwd) > "$staging/.origin"  # its scripts name this folder
    touch "$staging/.complete"
    mv -T "$staging" "$cached" 2>/dev/null || rm -rf "$staging"  # another run saved it first
    # Keep the two latest of this name: "$name-" and a 16-digit key exactly, so pruning .venv's
    # copies never takes .venv-rasa's (".venv-*" matched both, and CI installed Rasa's afresh).
    printf -v key_glob '%.0s[0-9a-f]' {1..16}
    # shellcheck disable=SC2086 # the key pattern is a glob on purpose
    ls -1dt "$root/$name"-$key_glob 2>/dev/null | tail -n +3 | while read -r old; do
      rm -rf "$old"
    done
    echo "saved $venv to $cached"
    ;;
  *)
    echo "usage: venv-cache.sh restore|save <venv> <python> <files...>" >&2
    exit 2
    ;;
esac
