#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine (Debian 12, Python 3.11):
#   system packages (PostgreSQL server, Chromium) -> .venv -> pinned requirements -> pytest.
# Usage: bash scripts/test.sh [pytest args...]   e.g.  bash scripts/test.sh tests/test_support.py -q
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }

# --- system packages ----------------------------------------------------------------------
apt_packages=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    apt_packages+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
    apt_packages+=(chromium)
fi
if [ ! -d .venv ] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    apt_packages+=(python3-venv)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    log "installing Debian packages: ${apt_packages[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_packages[@]}"
fi

# --- virtualenv with the pinned requirements ----------------------------------------------
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    rm -rf .venv
    python3 -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    log "installing requirements-dev.txt into .venv"
    # (the filter drops pip's noise about this machine's partial local indexes; pip's
    # exit status still counts through pipefail)
    .venv/bin/python -m pip install -q -r requirements-dev.txt 2>&1 \
        | { grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" || true; }
    echo "$wanted" > "$stamp"
fi

# --- run ----------------------------------------------------------------------------------
exec .venv/bin/python -m pytest "$@"
