#!/bin/sh
# Build step 3 of docker/Dockerfile: pip install -r requirements.txt; from the wheelhouse alone when the
# repository has a wheelhouse/ folder (its wheels were copied next to requirements.txt in /tmp/deps).
set -eu
requirements=/tmp/deps/requirements.txt
if ! grep -qvE '^[[:space:]]*(#|$)' "$requirements"; then
    echo "requirements.txt lists no package"
    exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "error: requirements.txt lists packages but the base image's python3 has no pip; add python3-pip to apt.txt" >&2
    exit 1
fi
if ls /tmp/deps/*.whl >/dev/null 2>&1; then
    echo "installing requirements.txt from wheelhouse/ only (--no-index)"
    python3 -m pip install --no-index --find-links /tmp/deps -r "$requirements"
else
    python3 -m pip install -r "$requirements"
fi
