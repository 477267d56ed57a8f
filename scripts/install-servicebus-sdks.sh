#!/usr/bin/env bash
# Installs Microsoft's Service Bus SDK for Python (azure-servicebus, which speaks AMQP 1.0 with
# its own pure-Python stack) into .tools/servicebus-sdk-venv: the AMQP front end of the
# embedded broker is tested against it. Pinned and idempotent: a second run with the venv in
# place does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

AZURE_SERVICEBUS=7.14.2
VENV=.tools/servicebus-sdk-venv
STAMP="$VENV/.docflow-installed"
WANT="azure-servicebus==$AZURE_SERVICEBUS"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
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
