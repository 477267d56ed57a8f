#!/usr/bin/env bash
# The PDF corpus of tests/pdf_corpus.rs: the 72 test PDFs of pypdf's source distribution
# (encrypted files of every standard handler, object and cross-reference streams, damaged
# files, forms, many producers), pinned by version and SHA-256, unpacked into
# .tools/pdf-corpus/. Idempotent: does nothing when that version is already there.
set -euo pipefail

VERSION=7.1.1
SHA256=2eff4e2fc5fb22a6d6711e6f1166cdc9ab5765d90cd0d77dfea3f4aa91a27b1d
ARCHIVE="pypdf-${VERSION}.tar.gz"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tools/pdf-corpus"
stamp="$dest/.pypdf-${VERSION}"

if [ -f "$stamp" ]; then
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetching the PDF corpus (pypdf ${VERSION} source distribution)"
python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "pypdf==${VERSION}"

actual="$(sha256sum "$work/$ARCHIVE" | cut -d' ' -f1)"
if [ "$actual" != "$SHA256" ]; then
    echo "checksum mismatch for $ARCHIVE: expected $SHA256, got $actual" >&2
    exit 1
fi

mkdir -p "$work/unpacked"
tar -xzf "$work/$ARCHIVE" -C "$work/unpacked" "pypdf-${VERSION}/resources"
count="$(find "$work/unpacked/pypdf-${VERSION}/resources" -name '*.pdf' | wc -l)"
if [ "$count" -ne 72 ]; then
    echo "expected 72 PDFs in $ARCHIVE, found $count" >&2
    exit 1
fi

# Only the PDFs, with their folders (encryption/…), then the stamp: a half-done copy is
# never taken for a complete one.
staging="$work/pdf-corpus"
(cd "$work/unpacked/pypdf-${VERSION}/resources" && find . -name '*.pdf' -print0 |
    while IFS= read -r -d '' file; do
        mkdir -p "$staging/$(dirname "$file")"
        cp "$file" "$staging/$file"
    done)
touch "$staging/.pypdf-${VERSION}"
mkdir -p "$root/.tools"
rm -rf "$dest"
mv "$staging" "$dest"
echo "PDF corpus ready: $count PDFs in .tools/pdf-corpus"
