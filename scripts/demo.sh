#!/usr/bin/env bash
# Set up .venv on a machine with only Python 3.10+ and run the offline outage demo:
# a scripted incident against the bundled provider simulator. No API key, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
exec .venv/bin/python examples/outage_demo.py "$@"
