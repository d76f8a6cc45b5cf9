#!/usr/bin/env bash
# Builds the benchmarks in release mode and runs them all (BM_memcpy / BM_stream_read included,
# so every figure can be read as a ratio to this machine's bandwidth in the same run).
# Usage: ./scripts/bench.sh [--json FILE] [--with-ggml | --ggml-only] [extra Google Benchmark flags...]
#   --with-ggml  then also runs qcodec_bench_ggml_peer: ggml's own kernels against qcodec's on the
#                same data, ending with a table of speed ratios (bench/ggml_peer). It fetches the
#                npm package @node-llama-cpp/linux-x64 (prebuilt ggml CPU libraries) with
#                `npm pack` into build/release/ggml-peer/ once, and configures the release preset
#                with -DQCODEC_BENCH_GGML_DIR. Needs npm and x86-64 Linux.
#   --ggml-only  the same, without qcodec_bench.
# Extra flags go to both binaries; with --json FILE and --with-ggml the peer comparison writes
# FILE.ggml-peer.json.
# QCODEC_GGML_NPM_VERSION picks another package version; QCODEC_JOBS limits the build's jobs.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

usage="usage: $0 [--json FILE] [--with-ggml | --ggml-only] [benchmark flags...]"
args=()
json=""
ggml=""
while [ $# -gt 0 ]; do
  case "$1" in
    --json)
      [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
      json="$2"
      shift 2 ;;
    --with-ggml) ggml=with; shift ;;
    --ggml-only) ggml=only; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

# Fetches and unpacks the npm package once; prints the directory holding libggml-base.so.
fetch_ggml() {
  local version="${QCODEC_GGML_NPM_VERSION:-3.22.1}"
  local dir="$QCODEC_ROOT/build/release/ggml-peer"
  local stem="node-llama-cpp-linux-x64-$version"
  local lib="$dir/$stem/package/bins/linux-x64"
  if [ ! -f "$lib/libggml-base.so" ]; then
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
      echo "qcodec: --with-ggml uses @node-llama-cpp/linux-x64, which has only x86-64 Linux libraries" >&2
      return 1
    fi
    if ! command -v npm >/dev/null 2>&1; then
      echo "qcodec: --with-ggml fetches ggml's prebuilt CPU libraries with npm, which is not installed" >&2
      echo "  (Debian: sudo apt-get install npm), or unpack @node-llama-cpp/linux-x64@$version and" >&2
      echo "  configure with -DQCODEC_BENCH_GGML_DIR=<its bins/linux-x64 directory>" >&2
      return 1
    fi
    mkdir -p "$dir/$stem"
    echo "qcodec: npm pack @node-llama-cpp/linux-x64@$version into $dir" >&2
    (cd "$dir" && npm pack --silent "@node-llama-cpp/linux-x64@$version" >/dev/null)
    tar -xzf "$dir/$stem.tgz" -C "$dir/$stem"
    [ -f "$lib/libggml-base.so" ] || {
      echo "qcodec: $dir/$stem.tgz has no bins/linux-x64/libggml-base.so" >&2
      return 1
    }
  fi
  echo "$lib"
}

qcodec_install_deps
targets=()
[ "$ggml" = only ] || targets+=(qcodec_bench)
if [ -n "$ggml" ]; then
  lib="$(fetch_ggml)"
  QCODEC_CONFIGURE_ARGS=(-DQCODEC_BENCH_GGML_DIR="$lib")
  targets+=(qcodec_bench_ggml_peer)
fi
qcodec_build release "${targets[@]}"

bin="$QCODEC_ROOT/build/release/bench"
if [ "$ggml" != only ]; then
  out=()
  [ -z "$json" ] || out=(--benchmark_out="$json" --benchmark_out_format=json)
  "$bin/qcodec_bench" "${out[@]}" "${args[@]}"
fi
if [ -n "$ggml" ]; then
  out=()
  peer_json="$json.ggml-peer.json"
  [ "$ggml" != only ] || peer_json="$json"
  [ -z "$json" ] || out=(--benchmark_out="$peer_json" --benchmark_out_format=json)
  "$bin/qcodec_bench_ggml_peer" "${out[@]}" "${args[@]}"
fi
