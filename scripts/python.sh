#!/usr/bin/env bash
# Runs Python with Debian's modules (matplotlib, pandas, pytest, jsonschema).
# `python3` on PATH may be a pyenv interpreter without them; /usr/bin/python3
# (installed by scripts/install-deps.sh) has them.
set -euo pipefail
for candidate in /usr/bin/python3 "$(command -v python3 || true)"; do
  if [[ -x "$candidate" ]] && "$candidate" -c "import matplotlib, pandas, pytest, jsonschema" 2>/dev/null; then
    exec "$candidate" "$@"
  fi
done
echo "scripts/python.sh: no python3 with matplotlib, pandas, pytest and jsonschema; run scripts/install-deps.sh" >&2
exit 1
