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

# pid_running PID: the process exists and is not a zombie.  A SIGKILLed
# postmaster is a zombie until whoever adopted it reaps it, which a
# container's init may do late; kill -0 (and PostgreSQL's own lock-file
# check) still find a zombie.
pid_running() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# cluster_crash DIR: SIGKILL the postmaster and every server process, as a
# power cut would; returns once they are dead (at most 10 s), with the lock
# files a dead postmaster leaves (postmaster.pid, the socket's .lock)
# removed: its pid may still name a zombie, or another process, by the
# time the cluster starts again.
cluster_crash() {
    local dir=$1 pm kids p
    pm=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null) || return 0
    [ -n "$pm" ] || return 0
    kids=$(ps -o pid= --ppid "$pm")
    kill -KILL "$pm" $kids 2>/dev/null
    for _ in $(seq 1 100); do
        local alive=0
        for p in $pm $kids; do pid_running "$p" && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    rm -f "$dir/data/postmaster.pid" "$dir"/.s.PGSQL.*.lock
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
