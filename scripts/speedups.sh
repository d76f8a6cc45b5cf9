#!/usr/bin/env bash
# Decode attention's speed-ups over fp32 and fp16, the ratios the KV cache's goal is stated in
# (4-bit schemes at least 4x faster than fp32 from 16k tokens on, and faster than fp16): builds
# qcodec_bench (release) and runs BM_attention_decode for the given schemes beside fp32 and fp16
# in one process, each benchmark repeated with the repetitions interleaved at random, and prints
# every scheme's median CPU time and its speed-ups (fp32's median / its median, fp16's likewise).
# Usage: ./scripts/speedups.sh [-h] [-m] [-r REPETITIONS] [-s SHAPES] [scheme...]
#   scheme  a BM_attention_decode/<scheme> name (default: the 4-bit schemes kivi4-q8-quads,
#           q4-blocks-quads, rotated4-blocks-quads)
#   -m      BM_attention_model_step instead: a step over every layer of a model's shape, each
#           layer read after all the others (its shapes: 16384/64 and 16384/128; its schemes:
#           fp32, fp16 and the three defaults; fp32 at 16384/128 holds 4.3 GB)
#   -r      repetitions of each benchmark, at least 2 (default 15; each runs at least 0.1 s)
#   -s      contexts and head dims, a regular expression (default '(16384|65536)/(64|128)')
# Why interleaved: the VM's speed drifts by 20-40% over minutes, and a benchmark's repetitions run
# back to back would each meet a different phase of it. With the repetitions interleaved at random
# (Google Benchmark's --benchmark_enable_random_interleaving) every scheme samples the same
# phases: two back-to-back runs agreed within 4% on every ratio (runs minutes apart, in other
# phases, by up to 16%). Pinned to one core, without address randomization, when taskset and
# setarch are there.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

usage="usage: $0 [-h] [-m] [-r REPETITIONS] [-s SHAPES] [scheme...]"
reps=15
shapes='(16384|65536)/(64|128)'
family=BM_attention_decode
while getopts "mr:s:h" opt; do
  case "$opt" in
    m) family=BM_attention_model_step ;;
    r) reps="$OPTARG" ;;
    s) shapes="$OPTARG" ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
# Google Benchmark reports medians only of two and more repetitions.
if ! [[ "$reps" =~ ^[0-9]+$ ]] || [ "$reps" -lt 2 ]; then
  echo "qcodec: -r needs 2 or more repetitions" >&2
  exit 2
fi
schemes=("$@")
[ ${#schemes[@]} -gt 0 ] || schemes=(kivi4-q8-quads q4-blocks-quads rotated4-blocks-quads)

qcodec_install_deps
qcodec_build release qcodec_bench

# Pinned to the last CPU this process may use, when taskset works here.
run=()
cpu="$(taskset -pc $$ 2>/dev/null | sed 's/.*: //; s/.*[,-]//')" || true
[ -n "$cpu" ] && taskset -c "$cpu" true >/dev/null 2>&1 && run+=(taskset -c "$cpu")
setarch "$(uname -m)" -R true >/dev/null 2>&1 && run+=(setarch "$(uname -m)" -R)
names="$(IFS='|'; echo "fp32|fp16|${schemes[*]}")"
# The machine first: the ratios depend on it (where the last-level cache holds a layer of fp32,
# BM_attention_decode's fp32 reads that cache, not memory).
if command -v lscpu >/dev/null; then
  { LC_ALL=C lscpu || true; } | awk -F: '{ sub(/^ +/, "", $2) }
                   $1 == "Model name" { name = $2 } $1 == "CPU family" { family = $2 }
                   $1 == "Model" { model = $2 } $1 == "L3 cache" { l3 = $2 }
                   END { printf "cpu: %s (family %s, model %s), L3 %s\n", name, family, model, l3 }'
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
"${run[@]}" "$QCODEC_ROOT/build/release/bench/qcodec_bench" \
  --benchmark_filter="^$family/($names)/($shapes)\$" --benchmark_min_time=0.1 \
  --benchmark_repetitions="$reps" --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true --benchmark_format=csv 2>"$log" |
  awk -F, -v order="$names" -v family="$family" '
    function before(a, b,  x, y) {
      split(a, x, "/"); split(b, y, "/")
      return x[1] + 0 < y[1] + 0 || (x[1] + 0 == y[1] + 0 && x[2] + 0 < y[2] + 0)
    }
    function ratio(base, s, sh) {
      return ((base, sh) in t) ? sprintf("%8.2fx", t[base, sh] / t[s, sh]) : sprintf("%9s", "-")
    }
    # Rows "<family>/<scheme>/<context>/<head_dim>_median",<iterations>,<real time>,<CPU time>,
    # <unit>,...
    $1 ~ /_median"$/ && index($1, "\"" family "/") == 1 {
      name = $1; gsub(/"/, "", name); sub(/_median$/, "", name); name = substr(name, length(family) + 2)
      i = index(name, "/"); scheme = substr(name, 1, i - 1); shape = substr(name, i + 1)
      t[scheme, shape] = $4; unit = $5; found[scheme] = 1
      if (!(shape in seen)) { seen[shape] = 1; shapes[++ns] = shape }
    }
    END {
      if (ns == 0) { print "qcodec: no " family " results" > "/dev/stderr"; exit 1 }
      for (j = 2; j <= ns; ++j)  # shapes by context, then head_dim
        for (i = j; i > 1 && before(shapes[i], shapes[i - 1]); --i) {
          x = shapes[i]; shapes[i] = shapes[i - 1]; shapes[i - 1] = x
        }
      n = split(order, list, "|")
      printf "%-24s %-11s %12s %9s %9s\n", "scheme", "shape", "CPU " unit, "vs fp32", "vs fp16"
      for (k = 1; k <= n; ++k) {
        s = list[k]
        if (!(s in found)) { print "qcodec: no results for " s > "/dev/stderr"; continue }
        for (j = 1; j <= ns; ++j) {
          sh = shapes[j]
          if ((s, sh) in t)
            printf "%-24s %-11s %12.1f %s %s\n", s, sh, t[s, sh], ratio("fp32", s, sh), ratio("fp16", s, sh)
        }
      }
    }' || status=$?
[ "$status" -eq 0 ] || cat "$log" >&2  # the benchmark's own messages
exit "$status"
