# Sourced by the scripts beside it: create .venv with Python 3.10+ (python3, or $PYTHON)
# on first use, and install the project into it with the extras in $EXTRAS.
#
# Nothing is reinstalled when nothing changed: .venv/.installed holds a hash of
# pyproject.toml and the Python version, and the extras installed; pip runs only when the
# hash differs or an extra is missing.
# While pip runs, one line per package shows where it is (the whole log: .venv/pip.log).
set -o pipefail # pip's status, not the filter's, decides below
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "llm-failover needs Python 3.10 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
_stamp_file=.venv/.installed
# The stamp: a hash of pyproject.toml and the Python version, then the extras installed.
# Asking for extras already installed (demo.sh's [dev] after test.sh's [dev,providers])
# reinstalls nothing; asking for new ones installs the union, so neither script undoes
# the other.
read -r _stamp _install < <("$PYTHON" - "$EXTRAS" "$_stamp_file" <<'EOF'
import hashlib, sys
wanted = {e for e in sys.argv[1].split(",") if e}
digest = hashlib.sha256(open("pyproject.toml", "rb").read() + sys.version.encode()).hexdigest()
try:
    old_digest, old_extras = open(sys.argv[2]).read().split()
except (OSError, ValueError):
    old_digest, old_extras = "", ""
have = set(old_extras.split(",")) - {""} if old_digest == digest else set()
print(digest, "up-to-date" if wanted <= have else ",".join(sorted(wanted | have)))
EOF
)
if [ -x .venv/bin/python ] && [ "$_install" = "up-to-date" ]; then
    : # up to date: say nothing, the command the user asked for starts at once
else
    [ "$_install" != "up-to-date" ] || _install=$EXTRAS
    _started=$(date +%s)
    if [ ! -x .venv/bin/python ]; then
        echo "Setting up .venv with the [$_install] extras: the first time takes about 2-3 minutes"
        echo "(about 170 packages for [dev], about 240 with [providers]: LangChain, LlamaIndex,"
        echo "the OpenAI and Anthropic SDKs, Jupyter; the tests add other providers' SDKs)."
        echo "Later runs reuse it and start at once."
        "$PYTHON" -m venv .venv
        # Editable installs from pyproject.toml need pip 21.3+; upgrade only an older one.
        if ! .venv/bin/python -c 'import pip, sys; sys.exit(int(pip.__version__.split(".")[0]) < 22)'; then
            .venv/bin/python -m pip install -q --upgrade pip
        fi
    else
        echo "pyproject.toml or the extras changed: updating .venv ([$_install]), usually under a minute."
    fi
    rm -f "$_stamp_file"
    # pip's own output, one short line per package; the full log stays in .venv/pip.log.
    # Installing prints nothing for a while, so a ticker says the time every 20 s.
    (t=0; while sleep 1; do t=$((t + 1)); [ $((t % 20)) != 0 ] || echo "  ... ${t} s"; done) &
    _ticker=$!
    if ! .venv/bin/python -m pip install --disable-pip-version-check -e ".[${_install}]" 2>&1 \
        | tee .venv/pip.log | awk '
            /^(Collecting|Processing) / {
                name = $2; sub(/.*\//, "", name); sub(/-[0-9].*/, "", name)
                sub(/[<>=!~;[(].*/, "", name)
                printf "  [%3d] %s\n", ++n, name; fflush(); next }
            /^Installing collected packages/ {
                print "  installing them into .venv (the longest step)..."; fflush(); next }
            /^Successfully installed/ { print "  installed " (NF - 2) " packages"; fflush() }'
    then
        kill "$_ticker" 2>/dev/null
        echo "pip failed; the end of .venv/pip.log:" >&2
        tail -n 30 .venv/pip.log >&2
        exit 1
    fi
    kill "$_ticker" 2>/dev/null
    wait "$_ticker" 2>/dev/null || true
    echo "$_stamp $_install" >"$_stamp_file"
    echo ".venv ready in $(($(date +%s) - _started)) s."
fi
unset _stamp _stamp_file _started _ticker _install
