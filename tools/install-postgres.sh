#!/usr/bin/env bash
# Installs PostgreSQL server binaries from Debian's packages when none are
# present (the rotation tests start a throwaway cluster as the postgres user).
set -euo pipefail
if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is missing; run as root or install the postgresql package" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
# The package starts a default cluster; the tests use their own.
service postgresql stop >/dev/null 2>&1 || true
