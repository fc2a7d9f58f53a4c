#!/usr/bin/env bash
# Makes the local base images (there is no registry to pull from):
#   mlplatform/python:3.11-bookworm          Debian bookworm minbase + python3 + python3-venv +
#                                            this machine's CA bundle; build stages (pip works)
#   mlplatform/python:3.11-bookworm-runtime  the same minus apt, dpkg's file lists, perl, iconv
#                                            modules and ensurepip: model runtime stages
# Both are trimmed of docs, man pages, locales and apt lists, and carry the user app (10001).
#
# Idempotent: images are labelled with a hash of this script and its inputs (the recipe); when
# both exist with the same label nothing is done. Re-run after editing the script to rebuild.
#
# Usage: scripts/base-images.sh [--force]
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), CA_BUNDLE (default
#        /etc/ssl/certs/ca-certificates.crt), BASE_IMAGE (default mlplatform/python:3.11-bookworm;
#        the runtime image is "$BASE_IMAGE-runtime")
set -euo pipefail

IMAGE="${BASE_IMAGE:-mlplatform/python:3.11-bookworm}"
RUNTIME_IMAGE="$IMAGE-runtime"
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

recipe_of() { docker image inspect -f '{{ index .Config.Labels "io.mlplatform.recipe" }}' "$1" 2>/dev/null || true; }
existing=$(recipe_of "$IMAGE")
if [ "$FORCE" = 0 ] && [ "$existing" = "$RECIPE" ] && [ "$(recipe_of "$RUNTIME_IMAGE")" = "$RECIPE" ]; then
  log "$IMAGE and $RUNTIME_IMAGE are up to date (recipe $RECIPE); nothing to do"
  exit 0
fi
log "building $IMAGE and $RUNTIME_IMAGE (recipe $RECIPE${existing:+, replacing $existing})"

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
# Python's own test suite and GUI tools are not needed anywhere.
rm -rf "$ROOTFS"/usr/lib/python3.11/{test,idlelib,tkinter,turtledemo}
# Images run read-only with PYTHONDONTWRITEBYTECODE: without precompiled stdlib bytecode every
# start would compile it again (a second of cold start), so compile it once here.
chroot "$ROOTFS" python3 -m compileall -q -j 0 /usr/lib/python3.11 >/dev/null || true

# This machine's CA bundle (it may hold a proxy CA the Debian bundle lacks) so pip works in builds.
mkdir -p "$ROOTFS/etc/ssl/certs"
cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"

echo "app:x:$APP_UID:$APP_UID:model server:/home/app:/usr/sbin/nologin" >>"$ROOTFS/etc/passwd"
echo "app:x:$APP_UID:" >>"$ROOTFS/etc/group"
mkdir -p "$ROOTFS/home/app" && chown "$APP_UID:$APP_UID" "$ROOTFS/home/app"

ENV_LINE="ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1"

import_rootfs() {  # DIR IMAGE DESCRIPTION
  log "importing $2 ($(du -sm "$1" | cut -f1) MB)"
  tar --numeric-owner -C "$1" -c . | docker import \
    --change "LABEL io.mlplatform.recipe=$RECIPE" \
    --change "LABEL org.opencontainers.image.description=\"$3\"" \
    --change "$ENV_LINE" \
    --change 'CMD ["python3"]' \
    - "$2" >/dev/null
  docker tag "$2" "$2-$RECIPE"
  log "done: $2 (also tagged $2-$RECIPE), $(( $(docker image inspect -f '{{ .Size }}' "$2") / 1000000 )) MB"
}

import_rootfs "$ROOTFS" "$IMAGE" "Debian bookworm minbase, python3.11, venv, CA bundle"

# The runtime variant: nothing gets installed at run time, so the package tooling goes. dpkg's
# status file stays, so image scanners can still list the installed packages.
RT="$WORK/rootfs-runtime"
cp -a "$ROOTFS" "$RT"
rm -rf "$RT"/usr/bin/apt* "$RT"/usr/lib/apt "$RT"/usr/lib/x86_64-linux-gnu/libapt-* "$RT"/etc/apt \
       "$RT"/var/lib/apt "$RT"/var/cache/apt "$RT"/var/lib/dpkg/info \
       "$RT"/usr/bin/perl* "$RT"/usr/lib/x86_64-linux-gnu/perl-base "$RT"/usr/share/perl5 \
       "$RT"/usr/lib/x86_64-linux-gnu/gconv \
       "$RT"/usr/share/python-wheels "$RT"/usr/lib/python3.11/ensurepip \
       "$RT"/usr/lib/python3.11/{lib2to3,pydoc_data,distutils} \
       "$RT"/usr/share/doc
import_rootfs "$RT" "$RUNTIME_IMAGE" "Debian bookworm minbase, python3.11, CA bundle; no package tooling"

# Untag images of earlier recipes (only the tags; layers still used by model images stay).
docker images --format '{{.Repository}}:{{.Tag}}' "${IMAGE%%:*}" \
  | grep -E -- "-[0-9a-f]{16}$" | grep -v -- "-$RECIPE\$" | xargs -r docker rmi >/dev/null || true
