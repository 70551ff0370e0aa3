#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for L0: the system packages the sandbox, the learner and
# the monitoring tests need (installed only when missing), the npm packages, and a build.
# Idempotent; run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  bubblewrap            # sandbox for agent code
  python3-seccomp       # libseccomp bindings: the kernels' seccomp filter (images/worker/kernel/seccomp_filter.py)
  tini                  # a real init: the worker image's PID 1 reaps orphans
  python3-torch         # learner (CPU path)
  python3-grpcio python3-protobuf python3-grpc-tools python3-numpy
  python3-prometheus-client  # the learner's /metrics
  libopenblas0-pthread  # without it Debian's torch uses the reference BLAS (~7x slower)
  prometheus            # monitoring end-to-end tests and promtool
  util-linux            # prlimit, setpriv (per-kernel uids in the sandbox)
  openssl               # throwaway TLS certificates in the in-process API server tests
  flake8                # Python lint of the learner, the kernel and their tests (npm run lint:py)
)

# --images: also what building and smoke-testing the container images needs (CI does this).
if [[ "${1:-}" == "--images" ]]; then
  DEB_PACKAGES+=(
    buildah runc          # scripts/build-images.sh without a Docker engine
    mmdebstrap            # its --local-base: a Node base made from Debian when no registry answers
    podman                # scripts/smoke-images.sh runs the built images
  )
fi

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ "${CI:-}" == "true" || ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
npm run build
echo "setup: done. Try: node bin/l0.js --help"
