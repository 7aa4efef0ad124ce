# Throwaway PostgreSQL 15 clusters for tests and the demo, run as the
# postgres user (PostgreSQL refuses to run as root).  Source this file.
#
#   cluster_init DIR PORT [postgresql.conf lines...]
#   cluster_start DIR | cluster_stop DIR [mode] | cluster_psql PORT args...

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGRUNAS=${PGRUNAS:-postgres}

# Run a command as the cluster owner (directly if we are not root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PGRUNAS" -- "$@"
    else
        "$@"
    fi
}

cluster_init() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$PGRUNAS" "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log"; return 1; }
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "shared_preload_libraries = 'settle,pg_cron'"
        echo "cron.database_name = 'postgres'"
        echo "cron.use_background_workers = on"
        echo "max_worker_processes = 16"
        echo "max_prepared_transactions = 10"
        echo "log_line_prefix = '%m [%p] %q%a '"
        # OLTP: JIT compilation costs more than it saves (docs/OPERATIONS.md)
        echo "jit = off"
        for line in "$@"; do echo "$line"; done
    } | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
}

cluster_start() {
    local dir=$1
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { tail -30 "$dir/server.log"; return 1; }
}

cluster_stop() {
    local dir=$1 mode=${2:-fast}
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

cluster_psql() {
    local port=$1
    shift
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

# q SQL: one statement on the test's server, unaligned and tuples only (what
# it prints is the value).  The script names its server once: Q_PORT=$P
# (database Q_DB, default postgres).
q() { cluster_psql "${Q_PORT:?set Q_PORT to the port of the test server}" -d "${Q_DB:-postgres}" -At -c "$1"; }

# A free TCP port on 127.0.0.1, starting from $1.  Ports from 32768 up are
# Linux's ephemeral range, where any outgoing connection may hold one (the
# server then fails to bind although nobody listens): a start there is moved
# 30000 down, below it, where only listeners can take a port.
free_port() {
    local p=${1:-24320}
    [ "$p" -ge 32768 ] && p=$((p - 30000))
    while (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p + 1)); done
    echo $p
}
