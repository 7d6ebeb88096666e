#!/usr/bin/env bash
# Set up .venv on a machine with only Python 3.10+ and run every check:
# ruff (lint + format), mypy --strict, then the whole pytest suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,providers source scripts/_venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
