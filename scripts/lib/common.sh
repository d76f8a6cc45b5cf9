# Shared by scripts/*.sh: installing the Debian packages qcodec builds with, and configuring /
# building a CMake preset. Source it; do not run it.

QCODEC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
QCODEC_PACKAGES=(cmake make g++ clang libeigen3-dev libxsimd-dev catch2 libbenchmark-dev)
# Clang's sanitizer runtimes (the sanitize preset): Debian 12 has them in this package, which clang
# only recommends; older releases ship them with clang itself and have no such package.
QCODEC_SANITIZER_RUNTIMES=libclang-rt-dev

# Installs whatever of QCODEC_PACKAGES (plus any extra names given) is missing: directly as root,
# through sudo otherwise; if neither works, prints the exact command and returns non-zero.
qcodec_install_deps() {
  local wanted=("${QCODEC_PACKAGES[@]}" "$@") missing=() pkg
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  # The runtimes, if clang does not find them (or is not there yet), where the release has them.
  local install="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
  local runtimes=""
  if ! command -v clang++ >/dev/null 2>&1 ||
    [[ "$(clang++ -print-file-name="libclang_rt.asan-$(uname -m).a")" != /* ]]; then
    runtimes="$QCODEC_SANITIZER_RUNTIMES"
  fi
  [ ${#missing[@]} -eq 0 ] && [ -z "$runtimes" ] && return 0

  local cmd="apt-get update && $install ${missing[*]}"
  if [ -n "$runtimes" ]; then
    cmd+=" && { $install $runtimes || echo \"qcodec: no $runtimes here\"; }"
  fi
  echo "qcodec: installing ${missing[*]} ${runtimes:+($runtimes if available)}"
  if [ "$(id -u)" -eq 0 ]; then
    bash -c "$cmd"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo bash -c "$cmd"
  else
    echo "qcodec: missing packages and no root or passwordless sudo. Run this, then retry:" >&2
    echo "  sudo bash -c '$cmd'" >&2
    return 1
  fi
}

# Extra cache entries (-DNAME=VALUE) for qcodec_build's configure step.
QCODEC_CONFIGURE_ARGS=()

# qcodec_build <preset> [targets...]: configure (once) and build a CMake preset, with
# $QCODEC_JOBS parallel jobs (default: every core).
qcodec_build() {
  local preset="$1"
  shift
  local jobs
  jobs="${QCODEC_JOBS:-$(nproc 2>/dev/null || echo 2)}"
  (cd "$QCODEC_ROOT" && cmake --preset "$preset" "${QCODEC_CONFIGURE_ARGS[@]}" >/dev/null &&
    if [ $# -gt 0 ]; then
      cmake --build --preset "$preset" -j "$jobs" --target "$@"
    else
      cmake --build --preset "$preset" -j "$jobs"
    fi)
}
