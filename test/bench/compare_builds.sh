#!/bin/bash
# Builds of settle against each other on this machine (a change that should not change speed,
# e.g. a restructuring): each build in a fresh one-node cluster (fsync on, worker off), in an
# order that rotates every round: one settle_submit_bulk of 10,000 payments of the reference
# workload (test/bench/setup.sql), one cycle over them (accounts funded with 10% of their
# outflow), then single-row intake (test/bench/submit.pgb, pgbench -M prepared, 8 clients,
# 3 s warm-up, 12 s measured). Prints one line per build and round.
#
#   BUILDS="old=/path/to/pg/bin new=/other/pg/bin [...]"   a label and a PostgreSQL bin dir
#                        each, with that build of settle installed (make install PG_CONFIG=...)
#   ROUNDS=3
# Run as root (the clusters run as postgres). Not part of make bench: it compares builds, not
# settle against a baseline.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
BENCH=$PWD/test/bench
ROUNDS=${ROUNDS:-3}
read -r -a BUILD_LIST <<<"${BUILDS:?BUILDS=\"label=pgbindir ...\"}"
run_one() {  # label pgbin round
    local label=$1 pgbin=$2 r=$3 dir port
    dir=$(mktemp -d /tmp/ab.XXXXXX); chmod 755 $dir; chown postgres $dir
    port=$(free_port 26100)
    PGBIN=$pgbin
    su postgres -c "$pgbin/initdb -D $dir/data -A trust -U postgres >/dev/null" 
    cat >> $dir/data/postgresql.conf <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'settle'
settle.worker_enabled = off
shared_buffers = 512MB
max_wal_size = 4GB
CONF
    su postgres -c "$pgbin/pg_ctl -D $dir/data -l $dir/log -w start >/dev/null"
    P="$pgbin/psql -h 127.0.0.1 -p $port -U postgres -d postgres -AtqX"
    $P -c "CREATE EXTENSION settle" -f $BENCH/setup.sql -c "SELECT bench.setup_reference()" >/dev/null
    $P -c "SELECT bench.generate(10000, 7, 0.42)" -c "SELECT bench.make_docs(7, 10000)" >/dev/null
    bulk=$($P -c "\\timing on" -c "SELECT count(*) FROM settle_submit_bulk((SELECT doc FROM bench.bulk_doc WHERE round = 7 AND chunk = 0))" | awk '/^Time/ {print $2}')
    $P -c "SELECT bench.fund(7, 0.10)" >/dev/null 2>&1
    cyc=$($P -c "\\timing on" -c "SELECT count(*) FROM settle_run_cycle()" | awk '/^Time/ {print $2}')
    settled=$($P -c "SELECT count(*) FROM settle.payment WHERE status = 'settled'")
    $pgbin/pgbench -h 127.0.0.1 -p $port -U postgres -n -M prepared -c 8 -j 2 -T 3 -f $BENCH/submit.pgb postgres >/dev/null 2>&1
    tps=$($pgbin/pgbench -h 127.0.0.1 -p $port -U postgres -n -M prepared -c 8 -j 2 -T 12 -f $BENCH/submit.pgb postgres 2>&1 | awk '/^tps/ {print int($3)}')
    echo "$label round $r: intake $tps TPS, bulk of 10,000 $bulk ms, cycle of 10,000 $cyc ms ($settled settled)"
    su postgres -c "$pgbin/pg_ctl -D $dir/data -m immediate stop >/dev/null"; rm -rf $dir
}
n=${#BUILD_LIST[@]}
for r in $(seq 1 "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        b=${BUILD_LIST[$(( (i + r - 1) % n ))]}
        run_one "${b%%=*}" "${b#*=}" "$r"
    done
done
