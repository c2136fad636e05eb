#!/usr/bin/env bash
# Installs what the rotation tests and the demo need when it is missing:
# PostgreSQL server binaries from Debian's packages (the tests start a
# throwaway cluster as the postgres user) and the openssl command (the TLS
# tests make a CA and a server certificate with it).
set -euo pipefail
missing=()
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    missing+=(postgresql)
elif ! id postgres >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if ! command -v openssl >/dev/null 2>&1; then
    missing+=(openssl)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing for the rotation tests: ${missing[*]}; run as root or install these packages" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
# The package starts a default cluster; the tests use their own.
service postgresql stop >/dev/null 2>&1 || true
