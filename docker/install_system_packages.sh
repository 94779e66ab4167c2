#!/bin/sh
# Build step 1 of docker/Dockerfile: Python 3 and pip when the base image lacks them, and the Debian or
# Ubuntu packages named in the repository's apt.txt (one per line, # comments allowed).
set -eu
packages=""
command -v python3 >/dev/null 2>&1 || packages="python3 python3-pip"
if [ -f /tmp/deps/apt.txt ]; then
    packages="$packages $(sed -e 's/#.*//' /tmp/deps/apt.txt | tr -s ' \n' '  ')"
fi
packages=$(echo $packages)
if [ -z "$packages" ]; then
    echo "no system packages to install"
    exit 0
fi
echo "installing system packages: $packages"
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $packages
rm -rf /var/lib/apt/lists/*
