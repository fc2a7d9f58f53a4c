#!/usr/bin/env bash
# Makes the local base image mlplatform/python:3.11-bookworm (there is no registry to pull from):
# Debian bookworm minbase + python3 + python3-venv + this machine's CA bundle, trimmed of docs,
# locales and apt lists so that model runtime images stay small.
#
# Idempotent: the image is labelled with a hash of this script (the recipe); when an image with
# the same label exists, nothing is done. Re-run after editing the script to rebuild.
#
# Usage: scripts/base-images.sh [--force]
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), CA_BUNDLE (default
#        /etc/ssl/certs/ca-certificates.crt), BASE_IMAGE (default mlplatform/python:3.11-bookworm)
set -euo pipefail

IMAGE="${BASE_IMAGE:-mlplatform/python:3.11-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
SUITE=bookworm
# python3-venv brings ensurepip's wheels, which the build stages use to make their venvs.
PACKAGES=python3,python3-venv
# Fixed uid/gid for the runtime user: numeric so Kubernetes' runAsNonRoot can verify it.
APP_UID=10001

START=$(date +%s)
log() { printf '[base-images %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
die() { log "ERROR: $*"; exit 1; }

FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  *) die "unknown argument '$1'; usage: scripts/base-images.sh [--force]" ;;
esac

SCRIPT_PATH="$(readlink -f "${BASH_SOURCE[0]}")"
# The recipe is the script itself plus the inputs that change the result.
RECIPE=$( { cat "$SCRIPT_PATH"; echo "$IMAGE $MIRROR $SUITE $PACKAGES"; sha256sum "$CA_BUNDLE"; } \
          | sha256sum | cut -c1-16)

command -v docker >/dev/null || die "docker not found; install docker.io and start dockerd"
docker info >/dev/null 2>&1 || die "cannot reach the Docker daemon; start dockerd (scripts/bootstrap does)"
[ -r "$CA_BUNDLE" ] || die "CA bundle $CA_BUNDLE not readable; set CA_BUNDLE to this machine's bundle"

existing=$(docker image inspect -f '{{ index .Config.Labels "io.mlplatform.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [ "$FORCE" = 0 ] && [ "$existing" = "$RECIPE" ]; then
  log "$IMAGE is up to date (recipe $RECIPE); nothing to do"
  exit 0
fi
log "building $IMAGE (recipe $RECIPE${existing:+, replacing $existing})"

command -v debootstrap >/dev/null || die "debootstrap not found; apt-get install debootstrap"
[ "$(id -u)" = 0 ] || die "debootstrap needs root; run as root"

WORK=$(mktemp -d /tmp/mlplatform-base.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOTFS="$WORK/rootfs"

log "debootstrap --variant=minbase $SUITE from $MIRROR (packages: $PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
  >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log"; die "debootstrap failed"; }
log "debootstrap done ($(du -sm "$ROOTFS" | cut -f1) MB before trimming)"

# Later apt/dpkg runs inside images keep the same trimming.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-mlplatform-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/01-mlplatform-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/*"; };
EOF

log "trimming docs (copyright files kept), man pages, locales, apt lists and caches"
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOTFS"/usr/share/{man,info,locale,lintian,linda}/* \
       "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
# Python's test suite and idle are not needed anywhere and weigh several MB.
rm -rf "$ROOTFS"/usr/lib/python3.11/{test,idlelib,tkinter,turtledemo}
find "$ROOTFS/usr/lib/python3.11" -name '__pycache__' -prune -exec rm -rf {} +

# This machine's CA bundle (it may hold a proxy CA the Debian bundle lacks) so pip works in builds.
mkdir -p "$ROOTFS/etc/ssl/certs"
cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"

echo "app:x:$APP_UID:$APP_UID:model server:/home/app:/usr/sbin/nologin" >>"$ROOTFS/etc/passwd"
echo "app:x:$APP_UID:" >>"$ROOTFS/etc/group"
mkdir -p "$ROOTFS/home/app" && chown "$APP_UID:$APP_UID" "$ROOTFS/home/app"

log "importing into docker ($(du -sm "$ROOTFS" | cut -f1) MB)"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change "LABEL io.mlplatform.recipe=$RECIPE" \
  --change "LABEL org.opencontainers.image.description=\"Debian bookworm minbase, python3.11, venv, CA bundle\"" \
  --change "ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1" \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
docker tag "$IMAGE" "${IMAGE%%:*}:3.11-bookworm-$RECIPE"

size=$(docker image inspect -f '{{ .Size }}' "$IMAGE")
log "done: $IMAGE (also tagged ${IMAGE%%:*}:3.11-bookworm-$RECIPE), $(( size / 1000000 )) MB"
