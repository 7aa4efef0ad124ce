#!/bin/sh
# Container entrypoint: "patroni" renders /opt/settle/ha/patroni.yml.in (the harness's own
# template) from the environment and runs Patroni; anything else is run as given (the
# compose file runs etcd from the same image this way).
set -e
# started as root (docker-compose.watchdog.yml): give the watchdog device to postgres, whose
# Patroni must open it, then go on as postgres
if [ "$(id -u)" = 0 ] && [ "$1" = patroni ]; then
    [ -n "${WATCHDOG_DEVICE:-}" ] && [ -e "$WATCHDOG_DEVICE" ] && chown postgres "$WATCHDOG_DEVICE"
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME=/var/lib/postgresql "$0" "$@"
fi
if [ "$1" = patroni ]; then
    : "${NODE_NAME:=$(hostname)}"
    : "${CONNECT_HOST:=$(hostname)}"
    : "${PG_CONNECT_HOST:=$CONNECT_HOST}"
    export NODE_NAME CONNECT_HOST PG_CONNECT_HOST
    python3 /opt/settle/ha/render.py /opt/settle/ha/patroni.yml.in > /var/lib/postgresql/patroni/patroni.yml
    exec patroni /var/lib/postgresql/patroni/patroni.yml
fi
exec "$@"
