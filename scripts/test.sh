#!/usr/bin/env bash
# Set up .venv on a machine with only Python 3.10+ and run every check:
# ruff (lint + format), mypy --strict, the docs site (mkdocs build --strict: a broken link or
# a missing page fails), then the whole pytest suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,providers,docs source scripts/_venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir .venv/site
exec .venv/bin/python -m pytest "$@"
