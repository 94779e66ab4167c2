#!/bin/sh
# Build the small local base image the Docker tests use instead of an NVIDIA CUDA image, which no
# registry here can supply: a Debian bookworm root made with debootstrap, imported with `docker import`.
#
#   tests/docker/build_base_image.sh TAG
#
# Does nothing when TAG already exists. The tests name TAG after a hash of this file, so changing the
# recipe below builds a new image and an unchanged recipe is reused between test runs.
# Needs root, debootstrap and a running Docker daemon; downloads about 40 MB from Debian's archive
# (cached in $SHOPBENCH_DEBOOTSTRAP_CACHE, default /var/cache/shopbench-debootstrap).
set -eu

TAG=${1:?usage: build_base_image.sh TAG}
SUITE=bookworm
MIRROR=${SHOPBENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the harness and the test models need inside the container: python3 with PyYAML (profiles) and
# psutil (the harness's process-tree RAM watchdog); pip for requirements.txt from a wheelhouse;
# passwd for useradd. No torch: scoring happens on the host.
PACKAGES=python3,python3-yaml,python3-psutil,python3-pip,passwd
CACHE=${SHOPBENCH_DEBOOTSTRAP_CACHE:-/var/cache/shopbench-debootstrap}

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG exists"
    exit 0
fi

ROOTFS=$(mktemp -d /tmp/shopbench-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$CACHE"
debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE" "$SUITE" "$ROOTFS" "$MIRROR" >&2
# Smaller image: no package caches, documentation or translations.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
tar -C "$ROOTFS" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/sh"]' \
    -m "ShopBench Kit test base: debootstrap $SUITE minbase + $PACKAGES" - "$TAG" >&2
echo "built base image $TAG"
