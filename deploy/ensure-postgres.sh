#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 and has the test role the suite uses
# (bridge_test / bridge_test, CREATEDB). Running: nothing to do but the role. Installed
# but stopped: start it. Absent and we are root on Debian/Ubuntu: install it with apt-get.
set -euo pipefail

port=${PGPORT:-5432}
role=${TEST_PG_ROLE:-bridge_test}
wait_s=${POSTGRES_WAIT_S:-60}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
as_postgres() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

if ! listening; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "PostgreSQL is not installed: installing it with apt-get..."
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq postgresql >/dev/null
    else
      echo "PostgreSQL is not installed. Install it (Debian/Ubuntu: sudo apt-get install postgresql)," >&2
      echo "or set TEST_POSTGRES_URL to a server the tests may create databases on." >&2
      exit 1
    fi
  fi
  echo "Starting PostgreSQL..."
  for cluster in $(ls /etc/postgresql 2>/dev/null); do
    if [ "$(id -u)" = "0" ]; then
      pg_ctlcluster --skip-systemctl-redirect "$cluster" main start 2>/dev/null || true
    else
      sudo -n pg_ctlcluster "$cluster" main start 2>/dev/null || true
    fi
  done
  deadline=$((SECONDS + wait_s))
  until listening; do
    if ((SECONDS >= deadline)); then
      echo "PostgreSQL did not start listening on 127.0.0.1:$port within ${wait_s}s." >&2
      exit 1
    fi
    sleep 1
  done
fi

# The test role: created once, through the local socket as the postgres superuser.
if ! PGPASSWORD=$role psql -h 127.0.0.1 -p "$port" -U "$role" -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  as_postgres psql -p "$port" -q -v ON_ERROR_STOP=1 -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN CREATEDB PASSWORD '$role'; ELSE ALTER ROLE $role LOGIN CREATEDB PASSWORD '$role'; END IF; END \$\$;" \
    || { echo "cannot create the PostgreSQL role $role for the tests" >&2; exit 1; }
fi
echo "PostgreSQL is running on 127.0.0.1:$port."
