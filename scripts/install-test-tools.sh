#!/usr/bin/env bash
# Everything the test suite needs beyond Rust, pinned and idempotent: Azurite (the Azure
# Storage emulator, from npm) and the real local model (llama.cpp's server and SmolLM2).
set -euo pipefail
cd "$(dirname "$0")"
bash ./install-azurite.sh
bash ./install-local-model.sh
