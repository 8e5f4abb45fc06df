#!/usr/bin/env bash
# Print the path of a working Python 3.10 interpreter, or explain what was tried and exit 1.
# watchnext's stack (tfx 1.16, tensorflow 2.16) has wheels for Python 3.9-3.10 only;
# we pin 3.10. Order: $PYTHON, python3.10 on PATH, pyenv's 3.10.x, common prefixes, uv.
set -u
tried=()
works() {  # works <path>: a real 3.10 that can make a venv
  "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1
}
try() {
  local p=$1
  [ -n "$p" ] || return 1
  tried+=("$p")
  if works "$p"; then "$p" -c 'import sys; print(sys.executable)'; exit 0; fi
  return 1
}
[ -n "${PYTHON:-}" ] && try "$PYTHON"
command -v python3.10 >/dev/null 2>&1 && try "$(command -v python3.10)"
if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -t. -k3 -n -r); do
    prefix=$(pyenv prefix "$v" 2>/dev/null) && try "$prefix/bin/python3.10"
  done
fi
for p in /usr/bin/python3.10 /usr/local/bin/python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 \
         /opt/python/3.10*/bin/python3.10 "$HOME"/.local/share/uv/python/cpython-3.10*/bin/python3.10; do
  [ -x "$p" ] && try "$p"
done
if command -v uv >/dev/null 2>&1; then
  p=$(uv python find 3.10 2>/dev/null) && try "$p"
fi
{
  echo "error: watchnext needs Python 3.10 (tfx 1.16 + tensorflow 2.16 have no wheels for newer Pythons)."
  echo "Looked for: \$PYTHON, python3.10 on PATH, 'pyenv prefix 3.10.x', /usr/bin, /usr/local/bin, ~/.pyenv, uv."
  if [ ${#tried[@]} -gt 0 ]; then echo "Found but not usable (not 3.10, or no venv/ensurepip): ${tried[*]}"; fi
  echo "Install one (e.g. 'pyenv install 3.10.13' or 'apt-get install python3.10 python3.10-venv'),"
  echo "or point to it: make PYTHON=/path/to/python3.10 ..."
} >&2
exit 1
