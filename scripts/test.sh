#!/usr/bin/env bash
# Installs what is missing, then builds with -Werror and runs every test:
#   release  (GCC, -O3 -march=native)
#   sanitize (Clang, AddressSanitizer + UndefinedBehaviorSanitizer, no recovery, -fno-exceptions)
# Usage: ./scripts/test.sh [--fast]     --fast: the release pass only
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

presets=(release sanitize)
case "${1:-}" in
  --fast) presets=(release) ;;
  "") ;;
  *) echo "usage: $0 [--fast]" >&2; exit 2 ;;
esac

qcodec_install_deps
for preset in "${presets[@]}"; do
  echo "== $preset =="
  qcodec_build "$preset"
  (cd "$QCODEC_ROOT" && ctest --preset "$preset" -j "$(nproc 2>/dev/null || echo 2)")
done
