#!/usr/bin/env bash
# Builds the L0 container images from the repository root:
#   l0/operator, l0/worker, l0/inference-sidecar (complete) and the trainer's non-CUDA stages
#   (its CUDA base and PyPI packages need registry access; pass --trainer-full where that works).
# With a Docker engine it uses docker; otherwise Debian's buildah (no daemon).
#
#   bash scripts/build-images.sh [--local-base] [--only "operator worker"] [--trainer-full]
#
# --local-base (or L0_LOCAL_BASE=1): for machines without registry access (CI, offline). Makes a
#   stand-in for node:20.20.2-bookworm-slim from a Debian bookworm root filesystem
#   (mmdebstrap --variant=minbase) plus this machine's Node.js 20 and npm, and builds on it. Users
#   build from the real base (the default): the stand-in is a CI path, not a release path.
# Env: VERSION (image tag, default package.json's), NODE_IMAGE, TORCH_IMAGE, L0_IMAGE_PREFIX
#   (default l0/), L0_STORAGE_DRIVER (buildah/podman storage, default overlay: vfs works too but
#   copies every layer, ~10x slower here), L0_CONTAINERS_ROOT (a storage root of its own; its
#   runroot is $L0_CONTAINERS_ROOT.run).
# The network of some machines re-signs TLS: the host's CA bundle (NODE_EXTRA_CA_CERTS) is mounted
# for the build's RUN steps only and passed as a build ARG, never written into an image.
set -euo pipefail
cd "$(dirname "$0")/.."

ONLY="operator worker inference trainer"
LOCAL_BASE="${L0_LOCAL_BASE:-0}"
TRAINER_FULL=0
while (($#)); do
  case "$1" in
    --local-base) LOCAL_BASE=1 ;;
    --only) ONLY="$2"; shift ;;
    --trainer-full) TRAINER_FULL=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-images: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

VERSION="${VERSION:-$(node -p 'require("./package.json").version')}"
PREFIX="${L0_IMAGE_PREFIX:-l0/}"
NODE_VERSION="20.20.2"
NODE_IMAGE="${NODE_IMAGE:-node:${NODE_VERSION}-bookworm-slim}"
CA="${NODE_EXTRA_CA_CERTS:-}"

if docker info >/dev/null 2>&1; then
  ENGINE=(docker)
  BUILD=(docker build)
elif command -v buildah >/dev/null; then
  ENGINE=(buildah --storage-driver "${L0_STORAGE_DRIVER:-overlay}")
  [[ -n "${L0_CONTAINERS_ROOT:-}" ]] && ENGINE+=(--root "$L0_CONTAINERS_ROOT" --runroot "$L0_CONTAINERS_ROOT.run")
  # runc (crun fails on hosts with mixed cgroup v1/v2), cgroupfs (no systemd), limits at or
  # below the host's, the docker format (keeps HEALTHCHECK), layers cached between images.
  BUILD=("${ENGINE[@]}" bud --runtime runc --cgroup-manager cgroupfs --network host --layers
    --format docker --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
else
  echo "build-images: neither a Docker engine nor buildah (apt-get install buildah runc)" >&2
  exit 2
fi

has_image() { "${ENGINE[@]}" inspect --type image "$1" >/dev/null 2>&1 || "${ENGINE[@]}" image inspect "$1" >/dev/null 2>&1; }

# The stand-in Node base: Debian bookworm minbase + this machine's node and npm, as the official
# image lays them out (/usr/local/bin/node, /usr/local/lib/node_modules/npm).
make_local_base() {
  local tag="localhost/l0-node-base:${NODE_VERSION}-bookworm-slim"
  NODE_IMAGE="$tag"
  if has_image "$tag"; then echo "build-images: using $tag"; return; fi
  [[ "$(node --version)" == "v${NODE_VERSION}" ]] ||
    echo "build-images: warning: this machine's node is $(node --version), the real base has v${NODE_VERSION}" >&2
  local dir; dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  echo "build-images: making $tag (mmdebstrap bookworm minbase + node $(node --version))"
  mmdebstrap --quiet --variant=minbase \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$dir/rootfs.tar" http://deb.debian.org/debian
  local npm_dir; npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  mkdir -p "$dir/node/usr/local/bin" "$dir/node/usr/local/lib/node_modules"
  cp "$(readlink -f "$(command -v node)")" "$dir/node/usr/local/bin/node"
  cp -a "$npm_dir" "$dir/node/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/node/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/node/usr/local/bin/npx"
  tar -C "$dir/node" -cf "$dir/node.tar" .
  cat > "$dir/Containerfile" <<EOT
FROM scratch
ADD rootfs.tar /
ADD node.tar /
ENV NODE_VERSION=${NODE_VERSION}
CMD ["node"]
EOT
  "${BUILD[@]}" --pull=never -t "$tag" -f "$dir/Containerfile" "$dir" >/dev/null
}

build() { # image dockerfile target...
  local name="$1" file="$2"; shift 2
  local args=(--build-arg "NODE_IMAGE=$NODE_IMAGE" --build-arg "VERSION=$VERSION" -f "$file")
  # BuildKit reads <Dockerfile>.dockerignore by itself; buildah is told.
  [[ "${ENGINE[0]}" == buildah ]] && args+=(--ignorefile "$file.dockerignore")
  [[ -n "${TORCH_IMAGE:-}" ]] && args+=(--build-arg "TORCH_IMAGE=$TORCH_IMAGE")
  if [[ -n "$CA" && "${ENGINE[0]}" == buildah ]]; then
    args+=(-v "$CA:/run/l0-host-ca.crt:ro" --build-arg "NODE_EXTRA_CA_CERTS=/run/l0-host-ca.crt")
  fi
  [[ "$LOCAL_BASE" == 1 && "${ENGINE[0]}" == buildah ]] && args+=(--pull=never)
  local t0=$SECONDS
  "${BUILD[@]}" "${args[@]}" "$@" . > "/tmp/l0-build-$name.log" 2>&1 || {
    tail -30 "/tmp/l0-build-$name.log" >&2
    echo "build-images: $name failed (log: /tmp/l0-build-$name.log)" >&2
    exit 1
  }
  echo "build-images: $name built in $((SECONDS - t0)) s"
}

[[ "$LOCAL_BASE" == 1 ]] && make_local_base
for image in $ONLY; do
  case "$image" in
    operator) build operator images/operator/Dockerfile -t "${PREFIX}operator:$VERSION" ;;
    worker) build worker images/worker/Dockerfile -t "${PREFIX}worker:$VERSION" ;;
    inference) build inference images/inference/Dockerfile -t "${PREFIX}inference-sidecar:$VERSION" ;;
    trainer)
      if [[ "$TRAINER_FULL" == 1 ]]; then
        build trainer images/trainer/Dockerfile -t "${PREFIX}trainer:$VERSION"
      else # the CUDA base cannot be pulled here: its Node build stage only (its stubs are built in the CUDA stage)
        build trainer-build images/trainer/Dockerfile --target build -t "${PREFIX}trainer-stages:$VERSION"
      fi ;;
    *) echo "build-images: unknown image $image" >&2; exit 2 ;;
  esac
done
for image in $ONLY; do
  case "$image" in
    operator) ref="${PREFIX}operator:$VERSION" ;;
    worker) ref="${PREFIX}worker:$VERSION" ;;
    inference) ref="${PREFIX}inference-sidecar:$VERSION" ;;
    trainer) [[ "$TRAINER_FULL" == 1 ]] && ref="${PREFIX}trainer:$VERSION" || ref="${PREFIX}trainer-stages:$VERSION" ;;
  esac
  size=$("${ENGINE[@]}" images --format '{{.Size}}' "$ref" 2>/dev/null | head -1 || true)
  echo "build-images: $ref ${size:-size unknown}"
done
