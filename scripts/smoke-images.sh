#!/usr/bin/env bash
# Builds the images (scripts/build-images.sh, on the local stand-in Node base unless
# L0_LOCAL_BASE=0) and runs the image smoke tests (test/images/smoke.test.ts) against them with podman:
# --help and uid 65532 for every image, one-line failures, and a real sandboxed episode in the
# worker image under the operator's own worker-pod security settings.
#   bash scripts/smoke-images.sh [--no-build] [extra build-images.sh flags]
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
if [[ "${1:-}" == "--no-build" ]]; then build=0; shift; fi
for tool in buildah podman runc; do
  command -v "$tool" >/dev/null || { echo "smoke-images: $tool missing (apt-get install buildah podman runc)" >&2; exit 2; }
done
if ((build)); then
  # The stand-in Node base unless L0_LOCAL_BASE=0 (CI machines reach no image registry).
  base=(--local-base)
  [[ "${L0_LOCAL_BASE:-1}" == 0 ]] && base=()
  bash scripts/build-images.sh "${base[@]}" --only "operator worker inference" "$@"
fi
L0_IMAGE_SMOKE=1 npx mocha --exit --timeout 300000 test/images/smoke.test.ts
