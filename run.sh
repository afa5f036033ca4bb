#!/usr/bin/env bash
# One entry point for a fresh machine: installs into .venv on first use, then
#   ./run.sh app    serve the Streamlit demo on http://localhost:8501 (offline)
#   ./run.sh test   run the test suite
# Extra arguments go to streamlit or pytest.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${SUITE_VENV:-.venv}"
PY="${PYTHON:-python3}"

ensure_env() {
    local stamp="$VENV/.suite-installed"
    local want
    want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "[suite] installing into $VENV (first run only; a few minutes)..." >&2
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    # No pip cache: torch's wheels are several GB and a second copy can fill a small disk.
    "$VENV/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check -e ".[test]" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
    "$VENV/bin/python" -c "import suite, torch, timm, monai, streamlit" \
        || { echo "[suite] install failed; free disk space:" >&2; df -h . "${TMPDIR:-/tmp}" >&2 || true; exit 1; }
    echo "$want" > "$stamp"
}

ensure_browser() {
    # Debian's chromium drives the browser test (tests/test_browser.py); install it when we can.
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || { sudo -n true 2>/dev/null && sudo="sudo -n"; } || {
        echo "[suite] chromium is missing and apt needs root: the browser test will skip" >&2; return 0; }
    command -v apt-get >/dev/null 2>&1 || { echo "[suite] no apt-get: install chromium yourself" >&2; return 0; }
    echo "[suite] installing Debian's chromium for the browser test (first run only)..." >&2
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
        || echo "[suite] could not install chromium: the browser test will skip" >&2
}

cmd="${1:-}"
shift || true
case "$cmd" in
    app)
        ensure_env
        export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
        exec "$VENV/bin/streamlit" run apps/Home.py --server.headless true --client.toolbarMode viewer \
            --server.address "${SUITE_ADDRESS:-localhost}" --server.port "${SUITE_PORT:-8501}" "$@"
        ;;
    test)
        ensure_env
        ensure_browser
        export HF_HUB_OFFLINE=1
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: ./run.sh app | test   (installs into $VENV on first use)" >&2
        exit 2
        ;;
esac
