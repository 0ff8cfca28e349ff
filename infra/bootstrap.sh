#!/usr/bin/env bash
# Installs what the local stack and the tests need, only where it is missing:
# Debian's Postgres and Redis servers, chromium, nginx, wrk, uv, and the project's virtualenv
# (.venv, from uv.lock). Safe to run again; a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bootstrap: %s\n' "$*"; }

missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# promtool and amtool check the rules and alerts in the tests; prometheus runs beside `make dev`.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# The browser tests drive Debian's chromium (tests/test_web_browser.py), never a downloaded one.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The compose edge's nginx.conf runs for real in tests/test_web_edge.py (its asset cache).
[ -x /usr/sbin/nginx ] || missing+=(nginx)
# `make bench` drives the closed-loop rows with wrk (loadtests/wrk.py).
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  # No package may start its system-wide server (a prometheus on 9090, say):
  # where no policy says so already, one says it for the length of the install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # Quiet unless it fails (debconf chatters on stderr even with -qq); then all of it.
  apt_log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    exit 1
  fi
  rm -f "$apt_log"
  # The packages start system-wide servers on the standard ports; this
  # project runs its own on its own ports and leaves those alone.
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -m uv --version >/dev/null 2>&1; then
  say "installing uv"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi

# Bytecode is compiled ahead, for the libraries and for this project: where
# PYTHONDONTWRITEBYTECODE is set (as on the machines this was written on),
# Python never writes it itself and every process start compiled each
# module it imports again, ~2.5 of a service's ~3.7 s of start-up CPU.
# Stale files are never used (Python checks each source's mtime), only slower.
#
# The virtualenv's interpreter: VENV_PYTHON if set, else the distribution's
# own python3 (Debian's and Ubuntu's are built with profile-guided and
# link-time optimisation, as is the python image the Dockerfile builds on),
# else whichever uv finds. A Python built by pyenv with its defaults
# has neither optimisation: a hop of the redirect path cost 5-22% more CPU a
# request than on Debian's build (docs/adr/0021-the-distributions-python.md).
wanted=${VENV_PYTHON:-}
if [ -z "$wanted" ] && [ -x /usr/bin/python3 ]; then
  wanted=/usr/bin/python3
fi
# The stamp holds the choice (and whether VENV_PYTHON made it), not its
# outcome: a system Python that did not suit is not tried again each run,
# while a VENV_PYTHON that does not suit fails every run until it is changed.
choice="${VENV_PYTHON:+explicit }$wanted"
stamp=.venv/.synced-bytecode
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ uv.lock -nt "$stamp" ] ||
  [ "$(cat "$stamp")" != "$choice" ]; then
  say "syncing .venv from uv.lock (Python: ${wanted:-as uv finds it})"
  sync=("$PYTHON" -m uv sync --frozen --quiet --compile-bytecode)
  if [ -n "$wanted" ] && ! "${sync[@]}" --python "$wanted"; then
    # The system's Python is outside requires-python (too old, say): uv's choice.
    [ -z "${VENV_PYTHON:-}" ] || exit 1
    say "$wanted does not suit this project; syncing with the Python uv finds"
    "${sync[@]}"
  elif [ -z "$wanted" ]; then
    "${sync[@]}"
  fi
  printf '%s' "$choice" >"$stamp"
fi
.venv/bin/python -m compileall -q -j 0 services gateway infra loadtests chaos tests >/dev/null
