#!/usr/bin/env bash
# Set up .venv (with LiteLLM, the optional peer) and run the side-by-side benchmarks.
# Writes benchmarks/RESULTS.md and the table in README.md. Extra args go to the runner.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev,bench]'
exec .venv/bin/python -m benchmarks.run "$@"
