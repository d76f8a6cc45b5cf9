#!/usr/bin/env bash
# Installs what is missing, builds the examples in release mode and runs the project's demo.
# Usage: ./scripts/demo.sh [demo arguments...]
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

qcodec_install_deps
qcodec_build release qcodec_demo
"$QCODEC_ROOT/build/release/examples/qcodec_demo" "$@"
