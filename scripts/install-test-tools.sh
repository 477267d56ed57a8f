#!/usr/bin/env bash
# Everything the test suite needs beyond Rust, pinned and idempotent: Azurite (the Azure
# Storage emulator, from npm), the real local model (llama.cpp's server and SmolLM2), and
# cargo-zigbuild with Zig for `docflow package`, the document tools (poppler, Ghostscript,
# LibreOffice, Tesseract), the public PDF corpus the extraction is measured on, and Microsoft's
# Service Bus SDKs for Python and JavaScript (the AMQP front end's clients), and an OTLP
# receiver for the telemetry tests, and chromium with playwright-core for the dashboard's
# browser test.
set -euo pipefail
cd "$(dirname "$0")"
bash ./install-azurite.sh
bash ./install-local-model.sh
bash ./install-package-tools.sh
bash ./install-doc-tools.sh
bash ./fetch-pdf-corpus.sh
bash ./install-servicebus-sdks.sh
bash ./install-otlp-receiver.sh
bash ./install-browser-tools.sh
