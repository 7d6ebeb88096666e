#!/usr/bin/env bash
# Set up .venv on a machine with only Python 3.10+ and run the offline outage demo:
# a scripted incident against the bundled provider simulator. No API key, no network.
# Extra args go to the demo (--pace SECONDS per request; 0 runs it as fast as it goes).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev source scripts/_venv.sh
exec .venv/bin/python examples/outage_demo.py "$@"
