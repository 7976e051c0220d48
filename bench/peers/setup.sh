#!/usr/bin/env bash
# Installs the peer servers for `make bench`: terminado (pinned, in bench/peers/.venv) and
# wetty (pinned by package-lock.json, in bench/peers/wetty/node_modules). Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$here/.venv/bin/python" ] || ! "$here/.venv/bin/python" -c 'import terminado, websockets' 2>/dev/null; then
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi

if command -v npm >/dev/null; then
  cd "$here/wetty"
  if [ ! -f node_modules/wetty/build/main.js ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  # npm 11 skips install scripts: build node-pty's addon when no usable binary came with it.
  if ! node -e 'require("node-pty")' 2>/dev/null; then
    (cd node_modules/node-pty && npx --yes node-gyp rebuild >/dev/null)
  fi
else
  echo "npm not found: the wetty peer will be skipped" >&2
fi
