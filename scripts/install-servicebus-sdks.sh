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

# The SDK's own samples (samples/sync_samples and samples/async_samples of the azure-servicebus
# sdist), run unchanged against the broker by tests/servicebus_samples.rs. The sdist is pinned
# by version and SHA-256; only its samples/ folder is kept, as $SAMPLES_DIR/{sync,async}_samples.
SAMPLES_DIR=.tools/servicebus-sdk-samples
SAMPLES_STAMP="$SAMPLES_DIR/.docflow-installed"
SAMPLES_SDIST="azure_servicebus-$AZURE_SERVICEBUS.tar.gz"
SAMPLES_SHA256=4014b7ac882e0d9ff876a3302818607e1a640b93e9d482073d639f5b04266e5c

install_samples() {
  local want="$SAMPLES_SDIST $SAMPLES_SHA256"
  if [ -f "$SAMPLES_STAMP" ] && [ "$(cat "$SAMPLES_STAMP")" = "$want" ]; then
    return 0
  fi
  local tmp="$SAMPLES_DIR.download"
  rm -rf "$tmp"
  "$VENV/bin/pip" download -q --no-binary :all: --no-deps "$WANT" -d "$tmp"
  [ -f "$tmp/$SAMPLES_SDIST" ] || { echo "pip download did not produce $SAMPLES_SDIST" >&2; exit 1; }
  local got
  got=$(sha256sum "$tmp/$SAMPLES_SDIST" | cut -d' ' -f1)
  [ "$got" = "$SAMPLES_SHA256" ] || { echo "$SAMPLES_SDIST: sha256 $got, expected $SAMPLES_SHA256" >&2; exit 1; }
  rm -rf "$SAMPLES_DIR"
  mkdir -p "$SAMPLES_DIR"
  tar -xzf "$tmp/$SAMPLES_SDIST" -C "$SAMPLES_DIR" --strip-components=2 \
    "azure_servicebus-$AZURE_SERVICEBUS/samples/"
  rm -rf "$tmp"
  [ -f "$SAMPLES_DIR/sync_samples/send_queue.py" ] || { echo "no samples in $SAMPLES_SDIST" >&2; exit 1; }
  echo "$want" > "$SAMPLES_STAMP"
  echo "azure-servicebus $AZURE_SERVICEBUS samples unpacked in $SAMPLES_DIR" >&2
}

install_python
install_js
install_samples
