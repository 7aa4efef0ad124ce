#!/bin/bash
# Installs the Debian packages settle needs to build, test and run, if missing.
set -euo pipefail

PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-contrib libglpk-dev glpk-utils
          postgresql-15-cron build-essential libipc-run-perl valgrind
          clang-14 libclang-rt-14-dev
          prometheus prometheus-postgres-exporter curl jq python3-yaml
          gnuplot-nox coinor-cbc
          patroni etcd-server etcd-client python3-psycopg2
          pgbackrest
          libmicrohttpd-dev libgnutls28-dev libpq-dev pkg-config wrk
          libxml2-dev libxml2-utils
          debhelper dpkg-dev"

missing=()
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
