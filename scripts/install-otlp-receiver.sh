#!/usr/bin/env bash
# Installs what the OTLP receiver of the telemetry tests needs (tests/fixtures/otlp/receiver.py:
# a small OTLP/HTTP and Application Insights ingestion server over OpenTelemetry's own protobuf
# definitions) into .tools/otlp-receiver-venv. Pinned and idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.tools/otlp-receiver-venv
STAMP="$VENV/.docflow-installed"
WANT="opentelemetry-proto==1.45.2 protobuf==7.36.2"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
# shellcheck disable=SC2086
"$VENV/bin/pip" install -q $WANT
"$VENV/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' >/dev/null
echo "$WANT" > "$STAMP"
echo "OTLP receiver dependencies ($WANT) installed in $VENV" >&2
