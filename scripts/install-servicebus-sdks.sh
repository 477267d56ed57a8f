#!/usr/bin/env bash
# Installs Microsoft's Service Bus SDKs for Python (azure-servicebus, which speaks AMQP 1.0 with
# its own pure-Python stack) into .tools/servicebus-sdk-venv and for JavaScript
# (@azure/service-bus on @azure/core-amqp and rhea) into .tools/servicebus-sdk-js: the AMQP
# front end of the embedded broker is tested against both. Pinned and idempotent: a second run
# with both in place does nothing. The JavaScript SDK's whole tree is pinned by
# scripts/servicebus-sdk-js/package-lock.json (installed with npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

AZURE_SERVICEBUS=7.14.2
VENV=.tools/servicebus-sdk-venv
STAMP="$VENV/.docflow-installed"
WANT="azure-servicebus==$AZURE_SERVICEBUS"

install_python() {
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    return 0
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "$WANT"
  "$VENV/bin/python" -c 'import azure.servicebus' >/dev/null
  echo "$WANT" > "$STAMP"
  echo "azure-servicebus $AZURE_SERVICEBUS installed in $VENV" >&2
}

JS_SDK=7.9.5
JS_DIR=.tools/servicebus-sdk-js
JS_LOCK=scripts/servicebus-sdk-js
JS_STAMP="$JS_DIR/.docflow-installed"

install_js() {
  local want
  want="@azure/service-bus@$JS_SDK $(sha256sum "$JS_LOCK/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$JS_STAMP" ] && [ "$(cat "$JS_STAMP")" = "$want" ]; then
    return 0
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
  rm -rf "$JS_DIR"
  mkdir -p "$JS_DIR"
  cp "$JS_LOCK/package.json" "$JS_LOCK/package-lock.json" "$JS_DIR/"
  npm ci --prefix "$JS_DIR" --no-audit --no-fund --loglevel=error >/dev/null
  local got
  got=$(node -p 'require(process.argv[1] + "/node_modules/@azure/service-bus/package.json").version' "$PWD/$JS_DIR")
  [ "$got" = "$JS_SDK" ] || { echo "expected @azure/service-bus $JS_SDK, got $got" >&2; exit 1; }
  echo "$want" > "$JS_STAMP"
  echo "@azure/service-bus $JS_SDK installed in $JS_DIR" >&2
}

install_python
install_js
