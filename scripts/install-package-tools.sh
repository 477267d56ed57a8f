#!/usr/bin/env bash
# Installs what `docflow package` links with: cargo-zigbuild and Zig (both from PyPI) into a
# project-local virtual environment (.tools/zig-venv). Zig links the binary against glibc 2.28,
# the oldest glibc of the Azure Functions Linux images. Pinned and idempotent: a second run
# with the venv in place does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_ZIGBUILD=0.24.0
ZIGLANG=0.15.2
VENV=.tools/zig-venv
STAMP="$VENV/.docflow-installed"
WANT="cargo-zigbuild==$CARGO_ZIGBUILD ziglang==$ZIGLANG"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
if ! command -v objdump >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq binutils >/dev/null
fi

rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "cargo-zigbuild==$CARGO_ZIGBUILD" "ziglang==$ZIGLANG"
"$VENV/bin/cargo-zigbuild" --version >/dev/null
"$VENV/bin/python" -m ziglang version >/dev/null
echo "$WANT" > "$STAMP"
echo "packaging tools installed in $VENV" >&2
