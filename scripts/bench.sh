#!/usr/bin/env bash
# Set up .venv (with LiteLLM, the optional peer) and run the side-by-side benchmarks.
# Writes benchmarks/RESULTS.md and the tables in docs/benchmarks.md (the docs site).
# Extra args go to the runner.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,bench source scripts/_venv.sh
exec .venv/bin/python -m benchmarks.run "$@"
