# Sourced by the scripts beside it: create .venv with Python 3.10+ (python3, or $PYTHON)
# on first use, and install the project into it with the extras in $EXTRAS.
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -qq --upgrade pip
.venv/bin/python -m pip install -qq -e ".[${EXTRAS}]"
