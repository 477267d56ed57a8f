#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator) from npm into .tools/azurite, pinned and
# idempotent; installs Node.js from the distribution's packages when it is missing. Azurite
# 3.36 and later need a newer Node than the machines have, so 3.35.0 it is.
set -euo pipefail
cd "$(dirname "$0")/.."

AZURITE=3.35.0
DIR=.tools/azurite
BIN="$DIR/node_modules/.bin/azurite-blob"

if [ -x "$BIN" ] && [ "$(cat "$DIR/.docflow-installed" 2>/dev/null)" = "$AZURITE" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$DIR"
npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "azurite@$AZURITE" >/dev/null
"$BIN" --version >/dev/null
echo "$AZURITE" > "$DIR/.docflow-installed"
echo "azurite $AZURITE installed in $DIR" >&2
