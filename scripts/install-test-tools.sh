#!/usr/bin/env bash
# Everything the test suite needs beyond Rust, pinned and idempotent: Azurite (the Azure
# Storage emulator, from npm), the real local model (llama.cpp's server and SmolLM2), and
# cargo-zigbuild with Zig for `docflow package`.
set -euo pipefail
cd "$(dirname "$0")"
bash ./install-azurite.sh
bash ./install-local-model.sh
bash ./install-package-tools.sh
