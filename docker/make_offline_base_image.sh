#!/bin/sh
# Make a base image for docker/Dockerfile without any registry: a Debian bookworm root made with
# debootstrap (from Debian's archive or a mirror), imported with `docker import`. For building offline,
# where the default base (nvidia/cuda) cannot be pulled:
#
#   sudo sh docker/make_offline_base_image.sh shopbench-base:bookworm
#   python -m submission docker build --base-image shopbench-base:bookworm
#
# The image has Debian's Python 3.11 with pip, PyYAML and psutil, and passwd (for the Dockerfile's
# useradd); CPU only (no CUDA libraries: on a GPU machine use an NVIDIA CUDA base image). A wheelhouse for
# it must hold wheels for CPython 3.11 on manylinux x86_64 (`pip wheel` or `pip download` on a Python 3.11 Linux host).
# Does nothing when TAG already exists. Needs root, debootstrap (apt-get install debootstrap) and a running
# Docker daemon; downloads about 40 MB (cached in $SHOPBENCH_DEBOOTSTRAP_CACHE, default
# /var/cache/shopbench-debootstrap; another mirror with SHOPBENCH_DEBIAN_MIRROR). The kit's Docker tests
# build their base image with this script, tagged after a hash of it.
set -eu

TAG=${1:?usage: make_offline_base_image.sh TAG}
SUITE=bookworm
MIRROR=${SHOPBENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3 with PyYAML (profiles) and psutil (the harness's process-tree RAM watchdog); pip for
# requirements.txt; passwd for useradd. No torch: requirements.txt brings it.
PACKAGES=python3,python3-yaml,python3-psutil,python3-pip,passwd
CACHE=${SHOPBENCH_DEBOOTSTRAP_CACHE:-/var/cache/shopbench-debootstrap}

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG exists"
    exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { echo "error: debootstrap is not installed: apt-get install debootstrap" >&2; exit 1; }

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
    -m "ShopBench Kit offline base: debootstrap $SUITE minbase + $PACKAGES" - "$TAG" >&2
echo "built base image $TAG"
