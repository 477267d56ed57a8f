#!/usr/bin/env bash
# The dashboard's browser test: Debian's chromium (from the distribution's packages, when
# /usr/bin/chromium is missing) driven by playwright-core from npm into .tools/dashboard-browser.
# Pinned and idempotent: playwright-core's whole tree is pinned by
# scripts/dashboard-browser/package-lock.json (installed with npm ci); a second run with both
# in place does nothing. playwright-core downloads no browser of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT=1.57.0
DIR=.tools/dashboard-browser
LOCK=scripts/dashboard-browser
STAMP="$DIR/.docflow-installed"

if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

want="playwright-core@$PLAYWRIGHT $(sha256sum "$LOCK/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
rm -rf "$DIR"
mkdir -p "$DIR"
cp "$LOCK/package.json" "$LOCK/package-lock.json" "$DIR/"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$DIR" --no-audit --no-fund --loglevel=error >/dev/null
got=$(node -p 'require(process.argv[1] + "/node_modules/playwright-core/package.json").version' "$PWD/$DIR")
[ "$got" = "$PLAYWRIGHT" ] || { echo "expected playwright-core $PLAYWRIGHT, got $got" >&2; exit 1; }
echo "$want" > "$STAMP"
echo "playwright-core $PLAYWRIGHT installed in $DIR (chromium: $(/usr/bin/chromium --version 2>/dev/null))" >&2
