#!/usr/bin/env bash
# Install everything the tests need and run them against real MariaDB and Redis.
#
# On a fresh Debian machine (as root) it installs the system packages that are missing, starts MariaDB
# and Redis when nothing listens on 127.0.0.1:3306 / :6379 (and stops only what it started, by PID),
# creates the virtualenv, installs fsml with its test extras, lints, and runs pytest.
# Arguments are passed to pytest, e.g. `bash .ci/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${FSML_VENV:-.venv}
STARTED_PIDS=()
APT_UPDATED=0

log() { printf '\n==> %s\n' "$*"; }

cleanup() {
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "nothing listens on 127.0.0.1:$1 after 60 s" >&2
  exit 1
}

log "system packages"
apt_install default-libmysqlclient-dev pkg-config gcc git docker-compose chromium
command -v npm >/dev/null || apt_install nodejs npm

if ! port_open 3306; then
  log "starting MariaDB"
  apt_install mariadb-server
  mkdir -p /run/mysqld && chown mysql /run/mysqld
  mysqld_safe --bind-address=127.0.0.1 --port=3306 --pid-file=/run/mysqld/fsml-test.pid >/dev/null 2>&1 &
  STARTED_PIDS+=($!)  # the mysqld_safe wrapper, so it does not restart the server we stop below
  wait_port 3306
  STARTED_PIDS+=("$(cat /run/mysqld/fsml-test.pid)")
  # A fresh Debian MariaDB lets root in over the socket only; the tests connect over TCP.
  mysql -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1 ||
    mysql -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket"
fi

if ! port_open 6379; then
  log "starting Redis"
  apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --pidfile /tmp/fsml-test-redis.pid >/dev/null
  wait_port 6379
  STARTED_PIDS+=("$(cat /tmp/fsml-test-redis.pid)")
fi

log "Python environment in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$PYTHON" -m venv "$VENV"; }
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[mysql,test]'

if [ -f annotation/frontend/package.json ]; then
  log "annotation front end (npm ci, vitest, vite build)"
  (cd annotation/frontend && npm ci --no-audit --no-fund --loglevel=error && npm test --silent && npm run build --silent)
fi

# DVC commits in the tests need a git identity; this one applies to this run only.
export GIT_AUTHOR_NAME="fsml tests" GIT_AUTHOR_EMAIL="tests@fsml.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

log "lint"
"$VENV/bin/ruff" check .
"$VENV/bin/lint-imports"
"$VENV/bin/mypy"

log "pytest"
"$VENV/bin/python" -m pytest -n "${FSML_TEST_WORKERS:-2}" --dist loadfile "$@"
