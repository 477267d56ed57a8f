#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60) with libFuzzer on the nightly
# toolchain, seeded from the fixtures (fuzz/seeds/<target>, copied into the corpus). Installs
# cargo-fuzz (pinned) when it is missing. A crash ends that target's run and leaves its input
# in fuzz/artifacts/<target>/ (the other targets still run, and the script exits 1); turn each
# one into a regular unit test.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-60}"
shift || true
CARGO_FUZZ=0.13.1

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ"; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ"
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
failed=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  if [ -d "fuzz/seeds/$target" ]; then
    cp -n fuzz/seeds/"$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
  fi
  echo "== $target: ${SECONDS_EACH}s" >&2
  if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1; then
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "no crash in: ${targets[*]} (${SECONDS_EACH}s each)" >&2
