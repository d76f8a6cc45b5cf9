#!/usr/bin/env bash
# Builds the benchmarks in release mode and runs them all (BM_memcpy / BM_stream_read included,
# so every figure can be read as a ratio to this machine's bandwidth in the same run).
# Usage: ./scripts/bench.sh [--json FILE] [extra Google Benchmark flags...]
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --json)
      [ $# -ge 2 ] || { echo "usage: $0 [--json FILE] [benchmark flags...]" >&2; exit 2; }
      args+=(--benchmark_out="$2" --benchmark_out_format=json)
      shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

qcodec_install_deps
qcodec_build release qcodec_bench
"$QCODEC_ROOT/build/release/bench/qcodec_bench" "${args[@]}"
