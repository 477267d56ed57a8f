#!/usr/bin/env bash
# Installs the document tools the tests compare docflow against and run: poppler's pdftotext
# and pdftoppm (the reference extraction, and page rendering for local OCR), Ghostscript
# (ps2pdf: PDFs as Linux print-to-PDF makes them; scans rendered for OCR tests), LibreOffice
# Writer (PDFs and Word files as office users make them) and Tesseract with its English data
# (the offline OCR provider). Debian's packages of the machine's release: their versions are
# fixed by the release. Idempotent: nothing is done when every program is there.
set -euo pipefail

need=()
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
command -v ps2pdf >/dev/null 2>&1 || need+=(ghostscript)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr tesseract-ocr-eng)
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-writer-nogui)

if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
echo "installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for program in pdftotext pdftoppm ps2pdf tesseract soffice; do
  command -v "$program" >/dev/null 2>&1 || { echo "$program is still missing" >&2; exit 1; }
done
