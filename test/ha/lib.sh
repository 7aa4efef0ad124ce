# The settle HA harness: etcd and three Patroni-managed PostgreSQL 15 nodes on 127.0.0.1,
# run as the postgres user, with dynamically chosen free ports. Source this file
# (after test/lib/cluster.sh, for free_port and PGBIN).
#
#   ha_init DIR              ports, node configs rendered from test/ha/patroni.yml.in
#   ha_start                 etcd (HA_ETCD_MEMBERS members, 3 by default) + three Patroni nodes;
#                            waits for leader, sync standby, replica
#   ha_leader / ha_sync      name of the leader / synchronous standby (from the REST API)
#   ha_kill NODE             SIGKILL of the node's Patroni, postmaster and every server process
#   ha_kill_patroni NODE     SIGKILL of the node's Patroni only (PostgreSQL left running)
#   ha_kill_pg NODE          SIGKILL of the node's postmaster and server processes only
#   ha_etcd_kill M / ha_etcd_start M / ha_etcd_leader   etcd member M (1..3)
#   ha_start_node NODE       start the node's Patroni again
#   ha_cut NODE hold|reset|out|in [etcd]  cut the node off the network (both ways, or one
#                            way), or off etcd only
#                            (HA_NETSPLIT=1 only); ha_heal NODE
#   ha_start_gateway LOG     settle-gateway in front of the cluster (HA_GW_URL, HA_GW_TOKEN, HA_GW_PID)
#   ha_cleanup               SIGKILL of everything started here, removes DIR
#
# Settings for tuning (environment): TTL, LOOP_WAIT, RETRY_TIMEOUT (see patroni.yml.in).
# HA_NETSPLIT=1 (set by ha_init's caller) puts every node's cluster traffic through
# test/ha/netsplit.py: its etcd connection, and the PostgreSQL and REST addresses the other
# nodes and the load client use. The harness itself (ha_psql, ha_rest) uses the nodes' own
# ports, so it can watch a node that is cut off.

HA_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HA_NODES="node1 node2 node3"
HA_PY=${HA_PY:-/usr/bin/python3}   # Debian's, which has python3-psycopg2
HA_RUNAS=${PGRUNAS:-postgres}

# run a command as the postgres user; exec'd in place, so $! is the process itself
ha_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- env HOME="$HA_DIR" "$@"
    else
        "$@"
    fi
}

ha_now() { date +%s.%N; }

ha_init() {
    HA_DIR=$1
    mkdir -p "$HA_DIR"
    chmod 755 "$HA_DIR"
    [ "$(id -u)" = 0 ] && chown "$HA_RUNAS" "$HA_DIR"
    : > "$HA_DIR/pids"
    # below the ephemeral range (32768-60999 here): a restarted node must find its ports free,
    # not taken as the source port of some outgoing connection
    local base=${HA_PORT_BASE:-24100}
    HA_ETCD_MEMBERS=${HA_ETCD_MEMBERS:-3}
    local n i=0 p=$base m etcd_targets="" etcd_hosts=""
    for m in $(seq 1 "$HA_ETCD_MEMBERS"); do
        p=$(free_port "$p"); eval "HA_ETCD_PORT$m=$p"; p=$((p + 1))
        p=$(free_port "$p"); eval "HA_ETCD_PEER$m=$p"; p=$((p + 1))
        etcd_targets="${etcd_targets:+$etcd_targets/}$(eval "echo \$HA_ETCD_PORT$m")"
        etcd_hosts="${etcd_hosts:+$etcd_hosts,}127.0.0.1:$(eval "echo \$HA_ETCD_PORT$m")"
    done
    HA_ETCD_PORT=$HA_ETCD_PORT1
    HA_ETCD_TARGETS=$etcd_targets
    for n in $HA_NODES; do
        i=$((i + 1))
        p=$(free_port "$p"); eval "HA_PG_$n=$p"; p=$((p + 1))
        p=$(free_port "$p"); eval "HA_REST_$n=$p"; p=$((p + 1))
        # without proxies the other nodes and the client use the node's own ports
        eval "HA_PGX_$n=\$HA_PG_$n HA_RESTX_$n=\$HA_REST_$n HA_ETCDX_$n=\$HA_ETCD_PORT"
        if [ "${HA_NETSPLIT:-0}" = 1 ]; then
            p=$(free_port "$p"); eval "HA_PGX_$n=$p"; p=$((p + 1))
            p=$(free_port "$p"); eval "HA_RESTX_$n=$p"; p=$((p + 1))
            p=$(free_port "$p"); eval "HA_ETCDX_$n=$p"; p=$((p + 1))
        fi
    done
    [ "${HA_NETSPLIT:-0}" = 1 ] && HA_NETSPLIT_CTL=$(free_port "$p")
    HA_HOSTS="127.0.0.1:$(ha_client_port node1),127.0.0.1:$(ha_client_port node2),127.0.0.1:$(ha_client_port node3)"
    for n in $HA_NODES; do
        mkdir -p "$HA_DIR/$n"
        [ "$(id -u)" = 0 ] && chown "$HA_RUNAS" "$HA_DIR/$n"
        NODE_NAME=$n REST_PORT=$(ha_rest_port $n) PG_PORT=$(ha_pg_port $n) PG_CONNECT_PORT=$(ha_client_port $n) \
        REST_CONNECT_PORT=$(eval "echo \$HA_RESTX_$n") \
        ETCD_HOSTS=$([ "${HA_NETSPLIT:-0}" = 1 ] && echo "127.0.0.1:$(eval "echo \$HA_ETCDX_$n")" || echo "$etcd_hosts") \
        ETCD_USE_PROXIES=$([ "${HA_NETSPLIT:-0}" = 1 ] && echo true) \
        DATA_DIR=$HA_DIR/$n/data PGPASS_FILE=$HA_DIR/$n/pgpass \
        SOCKET_DIR=$HA_DIR/$n POST_BOOTSTRAP=$HA_SRC/post_bootstrap.sh SCOPE=settle-ha \
        SETTLE_CYCLE_INTERVAL=${SETTLE_CYCLE_INTERVAL:-500ms} PG_BIN_DIR=${PG_BIN_DIR:-$PGBIN} \
            "$HA_PY" "$HA_SRC/render.py" "$HA_SRC/patroni.yml.in" > "$HA_DIR/$n/patroni.yml" || return 1
    done
    [ "$(id -u)" = 0 ] && chown -R "$HA_RUNAS" "$HA_DIR"
    return 0
}

ha_pg_port() { eval "echo \$HA_PG_$1"; }
# the port the other nodes and the load client reach the node's PostgreSQL at (its proxy)
ha_client_port() { eval "echo \$HA_PGX_$1"; }
ha_rest_port() { eval "echo \$HA_REST_$1"; }
ha_node_of_port() { local n; for n in $HA_NODES; do [ "$(ha_pg_port $n)" = "$1" ] && echo $n; done; }

# etcd member M (1..HA_ETCD_MEMBERS); its data directory survives a kill, so a restart rejoins
ha_etcd_start() {
    local m=$1 cluster="" i
    for i in $(seq 1 "$HA_ETCD_MEMBERS"); do
        cluster="${cluster:+$cluster,}e$i=http://127.0.0.1:$(eval "echo \$HA_ETCD_PEER$i")"
    done
    local cp pp
    cp=$(eval "echo \$HA_ETCD_PORT$m"); pp=$(eval "echo \$HA_ETCD_PEER$m")
    (exec setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- etcd --name "e$m" --data-dir "$HA_DIR/etcd$m" \
        --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
        --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token settle-ha \
        --enable-v2 --log-level warn) >>"$HA_DIR/etcd$m.log" 2>&1 &
    echo "etcd$m $!" >> "$HA_DIR/pids"
    disown $!
}
ha_etcd_pid() { awk -v n="etcd$1" '$1 == n { p = $2 } END { print p }' "$HA_DIR/pids"; }
ha_etcd_kill() { local p; p=$(ha_etcd_pid "$1"); kill -9 "$p" 2>/dev/null; while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; }
ha_etcd_healthy() { curl -s -m 1 "http://127.0.0.1:$(eval "echo \$HA_ETCD_PORT$1")/health" 2>/dev/null | grep -q '"health":"true"'; }
ha_etcd_all_healthy() { local m; for m in $(seq 1 "$HA_ETCD_MEMBERS"); do ha_etcd_healthy "$m" || return 1; done; }
# the member that is etcd's Raft leader now
ha_etcd_leader() {
    local m
    for m in $(seq 1 "$HA_ETCD_MEMBERS"); do
        curl -s -m 1 "http://127.0.0.1:$(eval "echo \$HA_ETCD_PORT$m")/v2/stats/self" 2>/dev/null | grep -q '"state":"StateLeader"' \
            && { echo "$m"; return 0; }
    done
    return 1
}

ha_start_etcd() {
    local m
    for m in $(seq 1 "$HA_ETCD_MEMBERS"); do ha_etcd_start "$m"; done
    for _ in $(seq 1 150); do
        ha_etcd_all_healthy && ha_etcd_leader >/dev/null && return 0
        sleep 0.2
    done
    echo "# etcd did not start"; tail -20 "$HA_DIR"/etcd*.log; return 1
}

ha_start_node() {
    local n=$1 port
    # the REST port must be free, or Patroni exits at once ("Address already in use": pass 7 of
    # make ha-test lost a node that way, after a crash, with no listener left by the time the
    # round had failed). Wait for it, and say in the node's log who held it
    port=$(ha_rest_port "$n")
    for _ in $(seq 1 50); do
        ss -Htln "sport = :$port" | grep -q . || break
        sleep 0.2
    done
    ss -Htln "sport = :$port" | grep -q . && \
        echo "harness: port $port still has a listener before starting $n: $(ss -Htlnp "sport = :$port" | tr -s ' ')" >> "$HA_DIR/$n/patroni.log"
    (cd "$HA_DIR/$n" && exec setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- \
        env HOME="$HA_DIR" PATH="$PATH" patroni "$HA_DIR/$n/patroni.yml") >>"$HA_DIR/$n/patroni.log" 2>&1 &
    echo "$n $!" >> "$HA_DIR/pids"
    disown $!
    # a Patroni that could not bind its REST port ends within a second: start it once more
    local pid=$!
    sleep 1.5
    if ! kill -0 "$pid" 2>/dev/null && [ "${2:-}" != again ]; then
        echo "harness: Patroni of $n exited at start (listeners on $port: $(ss -Htlnp "sport = :$port" | tr -s ' ')); starting it again" >> "$HA_DIR/$n/patroni.log"
        sleep 2
        ha_start_node "$n" again
    fi
}

# a pid, if it is alive (not a zombie) and its command line holds $2: a pid read from a
# file may have been reused by another node's process (a SIGKILL must never reach that)
ha_pid_is() {
    local st
    [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] || return 1
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ "$st" != Z ] || return 1
    tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF -- "$2"
}

# true while any of the pids runs; a zombie (killed, not yet reaped) counts as gone
ha_alive() {
    local p st
    for p in "$@"; do
        st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) && [ "$st" != Z ] && return 0
    done
    return 1
}

# the pid of a node's Patroni (last one started), if it still runs
ha_patroni_pid() {
    local p
    p=$(awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$HA_DIR/pids")
    ha_pid_is "$p" "$HA_DIR/$1/patroni.yml" && echo "$p"
}

# HTTP status of a Patroni REST endpoint on a node
ha_rest() { curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$(ha_rest_port "$1")/$2" 2>/dev/null; }

ha_leader() { local n; for n in $HA_NODES; do [ "$(ha_rest $n leader)" = 200 ] && { echo $n; return 0; }; done; return 1; }
ha_sync() { local n; for n in $HA_NODES; do [ "$(ha_rest $n sync)" = 200 ] && { echo $n; return 0; }; done; return 1; }

ha_psql() { local n=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(ha_pg_port "$n")" -U postgres -d postgres "$@"; }

# leader, a synchronous standby, every node running and streaming, extension created
ha_healthy() {
    local l s n replicas=0
    l=$(ha_leader) || return 1
    s=$(ha_sync) || return 1
    for n in $HA_NODES; do
        [ "$n" = "$l" ] && continue
        [ "$(ha_rest $n replica)" = 200 ] || return 1
        [ "$(ha_psql $n -c "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'" 2>/dev/null)" = 1 ] || return 1
    done
    [ "$(ha_psql "$l" -c "SELECT count(*) FROM pg_extension WHERE extname = 'settle'" 2>/dev/null)" = 1 ]
}

ha_wait_healthy() {
    local deadline=$(( $(date +%s) + $1 ))
    until ha_healthy; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

# the proxies of every node (test/ha/netsplit.py)
ha_start_netsplit() {
    local n routes=""
    for n in $HA_NODES; do
        routes="$routes $n:$(eval "echo \$HA_PGX_$n"):$(ha_pg_port $n):pg"
        routes="$routes $n:$(eval "echo \$HA_RESTX_$n"):$(ha_rest_port $n):rest"
        routes="$routes $n:$(eval "echo \$HA_ETCDX_$n"):$HA_ETCD_TARGETS:etcd"
        # the next node starts from the next member
        case $HA_ETCD_TARGETS in */*) HA_ETCD_TARGETS="${HA_ETCD_TARGETS#*/}/${HA_ETCD_TARGETS%%/*}" ;; esac
    done
    (exec setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- \
        "$HA_PY" "$HA_SRC/netsplit.py" serve --control "$HA_NETSPLIT_CTL" --nodes-dir "$HA_DIR" $routes) >"$HA_DIR/netsplit.log" 2>&1 &
    echo "netsplit $!" >> "$HA_DIR/pids"
    disown $!
    for _ in $(seq 1 50); do
        ha_netsplit status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "# netsplit did not start"; cat "$HA_DIR/netsplit.log"; return 1
}

ha_netsplit() { "$HA_PY" "$HA_SRC/netsplit.py" ctl "$HA_NETSPLIT_CTL" "$@"; }
ha_cut() { ha_netsplit cut "$@" >/dev/null; }
ha_heal() { ha_netsplit heal "$1" >/dev/null; }

ha_start() {
    if [ "${HA_NETSPLIT:-0}" = 1 ]; then ha_start_netsplit || return 1; fi
    ha_start_etcd || return 1
    local n
    ha_start_node node1
    # the first node bootstraps alone, so it is the one that runs initdb and post_bootstrap
    for _ in $(seq 1 120); do [ "$(ha_rest node1 leader)" = 200 ] && break; sleep 0.5; done
    [ "$(ha_rest node1 leader)" = 200 ] || { echo "# node1 did not become leader"; tail -30 "$HA_DIR/node1/patroni.log"; return 1; }
    ha_start_node node2
    ha_start_node node3
    ha_wait_healthy 120 || { echo "# cluster not healthy"; ha_show; return 1; }
}

ha_show() {
    local n
    for n in $HA_NODES; do
        echo "# $n: pg $(ha_pg_port $n) rest $(ha_rest_port $n) client $(ha_client_port $n) leader=$(ha_rest $n leader) sync=$(ha_rest $n sync) replica=$(ha_rest $n replica)"
        tail -5 "$HA_DIR/$n/patroni.log" | sed 's/^/#   /'
    done
}

# postmaster pid of a node, if running
ha_postmaster_pid() {
    local f=$HA_DIR/$1/data/postmaster.pid p
    [ -f "$f" ] || return 1
    p=$(head -1 "$f")
    ha_pid_is "$p" "$HA_DIR/$1/data" && echo "$p"
}

# SIGKILL of a node: Patroni, postmaster and all its children at once
ha_kill() {
    local n=$1 pat pm kids
    pat=$(ha_patroni_pid "$n")
    pm=$(ha_postmaster_pid "$n")
    kids=""
    [ -n "$pm" ] && kids=$(pgrep -P "$pm")
    kill -9 $pat $pm $kids 2>/dev/null
    # wait until every one of them is gone
    for _ in $(seq 1 50); do
        ha_alive $pat $pm $kids || return 0
        sleep 0.1
    done
}

# SIGKILL of a node's Patroni alone: its PostgreSQL keeps running, read-write if it led
ha_kill_patroni() {
    local pat
    pat=$(ha_patroni_pid "$1")
    kill -9 "$pat" 2>/dev/null
    for _ in $(seq 1 50); do ha_alive $pat || return 0; sleep 0.1; done
}

# SIGKILL of a node's postmaster and server processes; its Patroni stays
ha_kill_pg() {
    local pm kids
    pm=$(ha_postmaster_pid "$1") || return 1
    kids=$(pgrep -P "$pm")
    kill -9 $pm $kids 2>/dev/null
    for _ in $(seq 1 50); do ha_alive $pm $kids || return 0; sleep 0.1; done
}

# a number between $1 and $2 (decimals), from $RANDOM (seeded by the caller: RANDOM=seed)
ha_rand() { awk -v a="$1" -v b="$2" -v r="$RANDOM" 'BEGIN { printf "%.1f", a + (b - a) * r / 32767 }'; }

ha_cleanup() {
    [ -n "${HA_DIR:-}" ] && [ -d "$HA_DIR" ] || return 0
    local n pm
    # Patroni first, so that it does not restart what we kill next
    for n in $HA_NODES; do
        kill -9 $(awk -v n="$n" '$1 == n { print $2 }' "$HA_DIR/pids") 2>/dev/null
    done
    for n in $HA_NODES; do
        pm=$(ha_postmaster_pid "$n") && kill -9 "$pm" $(pgrep -P "$pm") 2>/dev/null
    done
    kill -9 $(awk '$1 != "node1" && $1 != "node2" && $1 != "node3" { print $2 }' "$HA_DIR/pids") 2>/dev/null
    sleep 0.3
    rm -rf "$HA_DIR"
}

# seconds between two ha_now stamps, 3 decimals
ha_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# reference data for the load client: three banks in a ring, each with a large USD account
ha_setup_data() {
    local l
    l=$(ha_leader) || return 1
    ha_psql "$l" -c "SELECT settle_create_participant(p) FROM unnest(ARRAY['ha_a','ha_b','ha_c']) p" \
                 -c "SELECT settle_create_account(p || '_usd', p, 'USD', lower_limit => 0, opening_balance => 100000000) FROM unnest(ARRAY['ha_a','ha_b','ha_c']) p" >/dev/null || return 1
    # one two-phase cycle, so that a pay-in batch waits for the rail connector on every node:
    # the probes of orphaned and cut-off leaders call settle_rail_fetch there (nothing else
    # fetches it; the load's own cycles post directly, settle.two_phase being off)
    ha_psql "$l" -c "BEGIN" -c "SET LOCAL settle.two_phase = on" \
        -c "SELECT settle_submit('ha-rail-1', 10.00, 'USD', 'USD', 'ha_a_usd', 'ha_b_usd', 'ha_b', 'ha-rail-1')" \
        -c "SELECT settle_run_cycle()" -c "COMMIT" >/dev/null || return 1
    [ "$(ha_psql "$l" -c "SELECT count(*) FROM settle.batch WHERE status = 'pending'")" -ge 1 ]
}

# settle-gateway in front of the three nodes (every node's client port, target_session_attrs
# read-write), a token for a client of ha_a: sets HA_GW_URL, HA_GW_TOKEN, HA_GW_PID (the caller
# stops it). LOG: its output. Pool size HA_GW_POOL (2); HA_GATEWAY: the binary ($PGBIN's)
ha_start_gateway() {
    local log=$1 gw port
    gw=${HA_GATEWAY:-$PGBIN/settle-gateway}
    [ -x "$gw" ] || gw=$HA_SRC/../../src/gateway/settle-gateway
    port=$(free_port 18700)
    HA_GW_TOKEN=$(ha_psql "$(ha_leader)" -c "CREATE ROLE ha_gateway LOGIN IN ROLE settle_gateway" -c "CREATE ROLE ha_a_app LOGIN" \
        -c "SELECT settle_map_role('ha_a_app', 'ha_a')" -c "SELECT settle_issue_api_token('ha_a_gw', 'ha_a_app')" | tail -1)
    "$gw" --port "$port" --pool-size "${HA_GW_POOL:-2}" \
        --db "host=127.0.0.1,127.0.0.1,127.0.0.1 port=$(echo "$HA_HOSTS" | sed 's/127\.0\.0\.1://g') user=ha_gateway dbname=postgres" \
        >"$log" 2>&1 &
    HA_GW_PID=$!
    HA_GW_URL=http://127.0.0.1:$port
    for _ in $(seq 1 50); do curl -sf -o /dev/null "$HA_GW_URL/api/v1/health" && return 0; sleep 0.2; done
    echo "# settle-gateway not healthy"; cat "$log"; return 1
}

# time of the first acknowledgement after T by a node other than OLD (OLD "0": by any node; a
# fourth argument: by that client port only),
# from an acked file; replays (an answer for a payment written before) do not count
ha_first_ack_after() {
    local file=$1 t=$2 oldport=$3 only=${4:-0}
    [ -s "$file" ] || return 0
    "$HA_PY" - "$file" "$t" "$oldport" "$only" <<'PY'
import json, sys
f, t, old, only = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
best = None
for line in open(f):
    r = json.loads(line)
    if (r["t"] > t and r["port"] != old and (not only or r["port"] == only) and not r.get("replay")
            and (best is None or r["t"] < best)):
        best = r["t"]
print("%.6f" % best if best else "")
PY
}

# the longest time without an acknowledgement in an acked file, from time T on (to the last one)
ha_gap() {
    "$HA_PY" -c '
import json, sys
t0 = float(sys.argv[2])
ts = sorted(json.loads(l)["t"] for l in open(sys.argv[1]) if json.loads(l)["t"] > t0)
prev, gap = t0, 0.0
for t in ts:
    gap = max(gap, t - prev); prev = t
print("%.3f" % gap)' "$1" "$2"
}

# the worker has run a cycle on node N since time T (epoch seconds)
ha_worker_cycled_since() {
    [ "$(ha_psql "$1" -c "SELECT count(*) > 0 FROM settle.cycle WHERE run_by = 'worker' AND started_at > to_timestamp($2)" 2>/dev/null)" = t ]
}

# every payment of the prefixes is settled (the worker drained the queue)
ha_all_settled() {
    [ "$(ha_psql "$1" -c "SELECT count(*) FROM settle.payment WHERE status = 'queued'" 2>/dev/null)" = 0 ]
}

# One round under load: start the client (prefix P), after HA_LOAD_BEFORE seconds (a random
# 2 to 6 s with HA_RANDOM=1) disrupt the cluster with ACTION, measure from the disruption to
# the first acknowledged new write (replays do not count) on the leader at the end of the
# round, stop the load, bring everything back (restart, wake, heal), and check.
#
#   crash              SIGKILL of the leader's Patroni and every postgres process
#   pg-kill            SIGKILL of the leader's postgres processes only (Patroni restarts them)
#   patroni-kill       SIGKILL of the leader's Patroni only: its PostgreSQL stays read-write (an
#                      orphan) while the standby is promoted; once the new leader has written,
#                      the orphan is probed (client.py probe: it must acknowledge nothing and
#                      hand no batch to the rail), then its Patroni is started again
#   replica-kill       SIGKILL of the asynchronous replica; sync-kill: of the synchronous standby
#   etcd-member-kill   SIGKILL of an etcd member that is not the Raft leader; etcd-leader-kill:
#                      of the Raft leader (restarted 2 s after the first write)
#   freeze             SIGSTOP of the leader's node; woken HA_FREEZE_WAKE s after (random 1 to
#                      12 s with HA_RANDOM=1; unset: 2 s after the new leader's first write)
#   switchover         POST /switchover to the synchronous standby
#   switchover-crash   the same, and the old leader SIGKILLed HA_CRASH_DELAY s (random 0 to
#                      1.5 s with HA_RANDOM=1) into it
#   crash-standby-loss a crash, and the new leader's synchronous standby SIGKILLed as soon as
#                      the new leader has written (the old leader is restarted 2 s later)
#   partition          every connection of the leader's node cut (HA_CUT_MODE hold | reset),
#                      those it opens to its peers too; oneway-out / oneway-in: only what it
#                      sends / only what it receives (test/ha/netsplit.py)
#   etcd-cut           only the leader's connection to etcd (HA_CUT_MODE)
#
# After every round: client.py check on the leader (every acknowledged payment exactly once,
# ledger invariants, settle_verify()), client.py nodes (every node, the old leader and the
# replicas too, holds every acknowledged payment of every round so far, and all have the same
# payments, events, ledger, balances, batches and chain heads), the worker cycling on the leader,
# every node back. Sets HA_STATUS (ok | FAIL), HA_WHY (the failed conditions), HA_OLD,
# HA_NEW, HA_SECS, HA_GAP (longest time without an acknowledgement from the disruption on),
# HA_NOTE, HA_CHECK_RC, HA_NODES_RC, HA_CLIENT_RC, HA_WORKER_OK, HA_REJOIN_SECS, and for cuts
# HA_DEMOTE_SECS, HA_RECOVERY_SECS, HA_MINORITY (acknowledgements by the old leader to a
# client left on its side, more than 1 s after the cut: must be 0), HA_PROBE_RC (the probe of
# the cut-off or orphaned old leader). With HA_GW_URL and HA_GW_TOKEN set (a settle-gateway in
# front of the cluster), an HTTP client (gateway_client.py, prefix Pg) submits through it too,
# its payments are checked with the others, and HA_WINDOW is the client's unavailability window
# (gateway_client.py window: from the last acknowledgement before the disruption, the longest
# time without one), HA_WINDOW_ENDS its start and end relative to the disruption.
# Returns 0 only if the round passed.
ha_round() {
    local action=$1 p=$2 acked=$HA_DIR/acked-$2 stop=$HA_DIR/stop-$2 client t0 first i target
    local minority="" macked=$HA_DIR/acked-$2m watcher="" prober="" switcher="" victim="" m=""
    local sync0="" replica0="" mode="" wake="" delay="" t1 t2 second="" oldport why=()
    local gwacked=$HA_DIR/acked-$2g gwclient="" gwextra=() gwprefix=""
    HA_NEW="" HA_SECS="" HA_CHECK_RC=1 HA_NODES_RC=1 HA_CLIENT_RC=1 HA_REJOIN_SECS="" HA_WORKER_OK=1
    HA_DEMOTE_SECS="" HA_RECOVERY_SECS="" HA_MINORITY="" HA_PROBE_RC="" HA_ORPHAN_ACKS="" HA_NOTE="" HA_GAP=""
    HA_STATUS=FAIL HA_WHY="" HA_CUT_USED="" HA_WINDOW="" HA_WINDOW_ENDS="" HA_GW_RC=""
    rm -f "$gwacked"
    HA_OLD=$(ha_leader) || { HA_WHY="no leader before the round"; return 1; }
    sync0=$(ha_sync)
    for i in $HA_NODES; do [ "$i" != "$HA_OLD" ] && [ "$i" != "$sync0" ] && replica0=$i; done
    local must_change=0 must_stay=0 cut=0
    case $action in
    crash|switchover|switchover-crash|crash-standby-loss|partition|oneway-out|etcd-cut|patroni-kill) must_change=1 ;;
    replica-kill|sync-kill) must_stay=1 ;;
    freeze) [ -z "${HA_FREEZE_WAKE:-}" ] && [ "${HA_RANDOM:-0}" != 1 ] && must_change=1 ;;
    esac
    case $action in partition|oneway-out|oneway-in|etcd-cut) cut=1 ;; esac
    rm -f "$stop"; : > "$acked"; rm -f "$macked"
    "$HA_PY" "$HA_SRC/client.py" load --hosts "$HA_HOSTS" --prefix "$p" --count "${HA_MAX_PAYMENTS:-20000}" \
        --max-seconds "${HA_CLIENT_SECONDS:-90}" --acked "$acked" --stop-file "$stop" \
        --workers "${HA_WORKERS:-2}" --pause "${HA_PAUSE:-0.01}" >"$HA_DIR/client-$p.log" 2>&1 &
    client=$!
    if [ -n "${HA_GW_URL:-}" ]; then
        # the HTTP client through settle-gateway (run.sh starts it): its acknowledgements give
        # the round's unavailability window as a client sees it (gateway_client.py window)
        : > "$gwacked"
        "$HA_PY" "$HA_SRC/gateway_client.py" load --url "$HA_GW_URL" --token "$HA_GW_TOKEN" --prefix "${p}g" \
            --acked "$gwacked" --stop-file "$stop" --workers "${HA_GW_WORKERS:-2}" --pause "${HA_PAUSE:-0.01}" \
            --max-seconds "${HA_CLIENT_SECONDS:-90}" --retry-pause "${HA_GW_RETRY_PAUSE:-0.05}" \
            >"$HA_DIR/gwclient-$p.log" 2>&1 &
        gwclient=$!
    fi
    if [ $cut = 1 ] && [ "$action" != etcd-cut ]; then
        # a client on the old leader's side of the cut: it reaches the old leader only (its own
        # port, not the proxy), so it keeps submitting there after the cut. Nothing may be
        # acknowledged to it then. After the heal it finishes its last, unknown payment
        # through the cluster with the same key, as a real client would.
        : > "$macked"
        "$HA_PY" "$HA_SRC/client.py" load --hosts "127.0.0.1:$(ha_pg_port "$HA_OLD")" --after-stop-hosts "$HA_HOSTS" \
            --prefix "${p}m" --count "${HA_MAX_PAYMENTS:-20000}" --max-seconds "${HA_CLIENT_SECONDS:-90}" \
            --acked "$macked" --stop-file "$stop" --workers 1 --pause "${HA_PAUSE:-0.01}" \
            >"$HA_DIR/client-${p}m.log" 2>&1 &
        minority=$!
    fi
    local before=${HA_LOAD_BEFORE:-4}
    [ "${HA_RANDOM:-0}" = 1 ] && before=$(ha_rand 2 6)
    sleep "$before"
    case $action in
    crash|crash-standby-loss)
        t0=$(ha_now); ha_kill "$HA_OLD" ;;
    pg-kill)
        t0=$(ha_now); ha_kill_pg "$HA_OLD" ;;
    patroni-kill)
        t0=$(ha_now); ha_kill_patroni "$HA_OLD" ;;
    replica-kill|sync-kill)
        victim=$([ "$action" = sync-kill ] && echo "$sync0" || echo "$replica0")
        t0=$(ha_now); ha_kill "$victim"
        HA_NOTE="killed $victim ($([ "$action" = sync-kill ] && echo "the synchronous standby Patroni names first" || echo "the other replica: synchronous too at the default SYNC_NODE_COUNT 2"))" ;;
    etcd-member-kill|etcd-leader-kill)
        m=$(ha_etcd_leader)
        if [ "$action" = etcd-member-kill ]; then
            for i in $(seq 1 "$HA_ETCD_MEMBERS"); do [ "$i" != "$m" ] && { m=$i; break; }; done
        fi
        t0=$(ha_now); ha_etcd_kill "$m"
        HA_NOTE="killed etcd member e$m ($([ "$action" = etcd-leader-kill ] && echo Raft leader || echo follower))" ;;
    freeze)
        # SIGSTOP of the leader's Patroni and every postgres process: to everyone else the
        # node is cut off (connections are accepted by the kernel and never answered), like
        # a partition or a long pause
        wake=${HA_FREEZE_WAKE:-}
        [ "${HA_RANDOM:-0}" = 1 ] && [ -z "$wake" ] && wake=$(ha_rand 1 12)
        t0=$(ha_now)
        HA_FROZEN="$(ha_patroni_pid "$HA_OLD") $(ha_postmaster_pid "$HA_OLD")"
        HA_FROZEN="$HA_FROZEN $(pgrep -P "$(ha_postmaster_pid "$HA_OLD")" | tr '\n' ' ')"
        kill -STOP $HA_FROZEN
        if [ -n "$wake" ]; then
            sleep "$wake"; kill -CONT $HA_FROZEN 2>/dev/null
            HA_NOTE="woken after $wake s"
        fi ;;
    switchover|switchover-crash)
        target=$sync0
        t0=$(ha_now)
        curl -s -m 30 -X POST -H 'Content-Type: application/json' \
            -d "{\"leader\": \"$HA_OLD\", \"candidate\": \"$target\"}" \
            "http://127.0.0.1:$(ha_rest_port "$HA_OLD")/switchover" >"$HA_DIR/switchover-$p.log" 2>&1 &
        switcher=$!
        if [ "$action" = switchover-crash ]; then
            delay=${HA_CRASH_DELAY:-0.5}
            [ "${HA_RANDOM:-0}" = 1 ] && delay=$(ha_rand 0 1.5)
            sleep "$delay"; ha_kill "$HA_OLD"
            HA_NOTE="old leader SIGKILLed $delay s into the switchover"
        else
            wait $switcher; switcher=""
        fi ;;
    partition|oneway-out|oneway-in|etcd-cut)
        case $action in
        partition|etcd-cut) mode=${HA_CUT_MODE:-hold} ;;
        oneway-out) mode=out ;;
        oneway-in) mode=in ;;
        esac
        HA_CUT_USED=$mode
        t0=$(ha_now)
        ha_cut "$HA_OLD" "$mode" $([ "$action" = etcd-cut ] && echo etcd)
        # watch the old leader through its own port (not cut), from now on: "time f" while
        # it is a writable primary, "time t" once in recovery, "time -" when it does not answer
        ( for _ in $(seq 1 "${HA_DEMOTE_TIMEOUT:-60}0"); do
              r=$(ha_psql "$HA_OLD" -c "SELECT pg_is_in_recovery()" 2>/dev/null) || r=-
              echo "$(ha_now) $r"
              [ "$r" = t ] && break
              sleep 0.1
          done ) > "$HA_DIR/demote-$p" &
        watcher=$!
        if [ "$action" != etcd-cut ]; then
            # the cut-off old leader, while it is still a primary: no replay, payment status or
            # rail batch may come out of it (its standby cannot have what it would report)
            sleep 0.1
            "$HA_PY" "$HA_SRC/client.py" probe --port "$(ha_pg_port "$HA_OLD")" --acked "$acked" --prefix "${p}p" \
                --replays 3 --new 1 --timeout 0.4 >"$HA_DIR/probe-$p.log" 2>&1 &
            prober=$!
        fi ;;
    *) HA_WHY="unknown round kind $action"; touch "$stop"; wait; return 1 ;;
    esac
    oldport=0
    [ $must_change = 1 ] && oldport=$(ha_client_port "$HA_OLD")
    first=""
    for i in $(seq 1 600); do
        first=$(ha_first_ack_after "$acked" "$t0" "$oldport")
        [ -n "$first" ] && break
        kill -0 $client 2>/dev/null || break
        sleep 0.1
    done
    case $action in
    patroni-kill)
        # the orphan: PostgreSQL of the old leader, still read-write, its Patroni dead, a new
        # leader writing. Nothing may come out of it; nothing fences it until Patroni returns
        # (no watchdog here), so the harness starts it again once the orphan has been probed
        r=$(ha_psql "$HA_OLD" -c "SELECT pg_is_in_recovery()" 2>/dev/null) || r=-
        "$HA_PY" "$HA_SRC/client.py" probe --port "$(ha_pg_port "$HA_OLD")" --acked "$acked" --prefix "${p}p" \
            --replays 3 --new 2 --timeout 1.5 >"$HA_DIR/probe-$p.log" 2>&1
        HA_PROBE_RC=$?
        [ "$r" = f ] || HA_PROBE_RC=1   # no orphan to probe: the round did not test what it should
        t1=$(ha_now)
        ha_start_node "$HA_OLD"
        for i in $(seq 1 300); do
            [ "$(ha_psql "$HA_OLD" -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = t ] && break
            sleep 0.1
        done
        t2=$(ha_now)
        HA_NOTE="orphan read-write at the probe: $([ "$r" = f ] && echo yes || echo "no ($r)"); its Patroni restarted $(ha_secs "$t0" "$t1") s after the kill, orphan in recovery $(ha_secs "$t1" "$t2") s later" ;;
    crash-standby-loss)
        victim=$(ha_sync)
        [ -n "$victim" ] || for i in $HA_NODES; do [ "$i" != "$HA_OLD" ] && [ "$(ha_rest $i leader)" != 200 ] && victim=$i; done
        t1=$(ha_now)
        ha_kill "$victim"
        sleep 2
        ha_start_node "$HA_OLD"
        # writes stop (strict mode, no standby left) until the restarted old leader streams;
        # a commit already on the standby before the kill may still be answered just after it
        for i in $(seq 1 900); do
            second=$(ha_first_ack_after "$acked" "$(awk -v t="$t1" 'BEGIN { printf "%.6f", t + 2 }')" 0)
            [ -n "$second" ] && break
            kill -0 $client 2>/dev/null || break
            sleep 0.1
        done
        HA_NOTE="then $victim (the new synchronous standby) SIGKILLed $(ha_secs "$t0" "$t1") s after the crash; longest pause after that $(ha_gap "$acked" "$t1") s (the old leader restarted 2 s after the loss)"
        ha_start_node "$victim" ;;
    replica-kill|sync-kill)
        sleep 2; ha_start_node "$victim" ;;
    etcd-member-kill|etcd-leader-kill)
        sleep 2; ha_etcd_start "$m" ;;
    freeze)
        if [ -z "$wake" ]; then
            sleep "${HA_FREEZE_AFTER:-2}"
            kill -CONT $HA_FROZEN 2>/dev/null
        fi ;;
    esac
    if [ -n "$watcher" ]; then
        # the old leader cannot renew its key: it must demote by itself while still cut off.
        # HA_DEMOTE_SECS: from the cut to its last answer as a primary (it stops taking
        # writes there); HA_RECOVERY_SECS: to its restart in recovery
        wait $watcher
        read -r HA_DEMOTE_SECS HA_RECOVERY_SECS < <(awk -v t0="$t0" '
            NR == 1 { first = $1 }  $2 == "f" { last = $1 }  $2 == "t" { rec = $1 }
            END { if (!rec) exit
                  # never seen as a primary: it had stopped before the first look
                  if (last) printf "%.3f", last - t0; else printf "<%.3f", first - t0
                  printf " %.3f\n", rec - t0 }' "$HA_DIR/demote-$p")
        [ -n "$prober" ] && { wait $prober; HA_PROBE_RC=$?; }
        sleep "${HA_CUT_AFTER:-2}"
        ha_heal "$HA_OLD"
    fi
    sleep "${HA_LOAD_AFTER:-2}"
    touch "$stop"
    wait $client; HA_CLIENT_RC=$?
    if [ -n "$gwclient" ]; then
        wait $gwclient; HA_GW_RC=$?
        local w
        w=$("$HA_PY" "$HA_SRC/gateway_client.py" window --acked "$gwacked" --t0 "$t0")
        if [ "$w" != never ]; then
            HA_WINDOW=${w%% *}
            HA_WINDOW_ENDS=${w#* }
        fi
        gwextra=("$gwacked"); gwprefix=",${p}g"
    fi
    [ -n "$switcher" ] && wait $switcher
    if [ -n "$minority" ]; then
        wait $minority || HA_CLIENT_RC=1
        # a reply to a commit that reached the standby before the cut may be a moment late;
        # one a second after the cut would be a commit the cut-off leader acknowledged alone
        HA_MINORITY=$("$HA_PY" -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["t"] > float(sys.argv[2]) + 1
          and json.loads(l)["port"] == int(sys.argv[3])))' "$macked" "$t0" "$(ha_pg_port "$HA_OLD")")
    fi
    if [ "$action" = patroni-kill ] && [ -n "$first" ]; then
        # once the new leader has written, the orphan must not acknowledge anything to the load
        HA_ORPHAN_ACKS=$("$HA_PY" -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["t"] > float(sys.argv[2])
          and json.loads(l)["port"] == int(sys.argv[3])))' "$acked" "$first" "$(ha_client_port "$HA_OLD")")
    fi
    # the leader at the end of the round; a REST call that times out (1 s) on a loaded
    # machine, or the moment between a switchover's demotion and promotion, is no absence
    HA_NEW=""
    for _ in $(seq 1 20); do HA_NEW=$(ha_leader) && break; sleep 0.5; done
    # the worker took over on the new leader by itself: it cycled after the disruption
    # and drains the queue
    if [ -n "$HA_NEW" ]; then
        local deadline=$(( $(date +%s) + 30 ))
        until ha_worker_cycled_since "$HA_NEW" "$t0" && ha_all_settled "$HA_NEW"; do
            [ "$(date +%s)" -ge $deadline ] && break
            sleep 0.5
        done
        ha_worker_cycled_since "$HA_NEW" "$t0" && ha_all_settled "$HA_NEW" && HA_WORKER_OK=0
        local f
        f=$(ha_first_ack_after "$acked" "$t0" "-1" "$(ha_client_port "$HA_NEW")")
        [ -n "$f" ] && HA_SECS=$(ha_secs "$t0" "$f")
    fi
    case $action in crash|switchover-crash) ha_start_node "$HA_OLD" ;; esac
    HA_GAP=$(ha_gap "$acked" "$t0")
    i=$(ha_now)
    if ha_wait_healthy "${HA_REJOIN_TIMEOUT:-120}" && [ "$(ha_rest "$HA_OLD" replica)" = 200 -o "$(ha_rest "$HA_OLD" leader)" = 200 ] \
        && ha_etcd_all_healthy; then
        HA_REJOIN_SECS=$(ha_secs "$i" "$(ha_now)")
    fi
    if [ -n "$minority" ]; then
        "$HA_PY" "$HA_SRC/client.py" check --hosts "$HA_HOSTS" --acked "$acked" "$macked" "${gwextra[@]}" \
            --prefixes "$p,${p}m$gwprefix" >"$HA_DIR/check-$p.log" 2>&1
    else
        "$HA_PY" "$HA_SRC/client.py" check --hosts "$HA_HOSTS" --acked "$acked" "${gwextra[@]}" --prefixes "$p$gwprefix" \
            >"$HA_DIR/check-$p.log" 2>&1
    fi
    HA_CHECK_RC=$?
    "$HA_PY" "$HA_SRC/client.py" nodes --ports "$(ha_pg_port node1),$(ha_pg_port node2),$(ha_pg_port node3)" \
        --acked "$HA_DIR"/acked-* >"$HA_DIR/nodes-$p.log" 2>&1
    HA_NODES_RC=$?

    [ "$HA_CLIENT_RC" = 0 ] || why+=("a client gave up or was refused")
    [ -n "$gwclient" ] && [ "$HA_GW_RC" != 0 ] && why+=("the HTTP client gave up or was refused by the gateway")
    [ -n "$gwclient" ] && [ -z "$HA_WINDOW" ] && why+=("nothing acknowledged through the gateway after the disruption")
    [ "$HA_CHECK_RC" = 0 ] || why+=("check on the leader failed")
    [ "$HA_NODES_RC" = 0 ] || why+=("the nodes differ or miss acknowledged payments")
    [ "$HA_WORKER_OK" = 0 ] || why+=("the worker did not cycle and drain the queue")
    [ -n "$HA_SECS" ] || why+=("no acknowledged write after the disruption")
    [ -n "$HA_REJOIN_SECS" ] || why+=("the cluster (every node, every etcd member) was not whole again")
    [ $must_change = 1 ] && [ "$HA_NEW" = "$HA_OLD" ] && why+=("the leader did not change")
    [ $must_stay = 1 ] && [ "$HA_NEW" != "$HA_OLD" ] && why+=("the leader changed")
    [ -z "$HA_NEW" ] && why+=("no leader at the end")
    [ $cut = 1 ] && [ -z "$HA_DEMOTE_SECS" ] && why+=("the old leader did not demote while cut off")
    [ -n "$minority" ] && [ "$HA_MINORITY" != 0 ] && why+=("the cut-off old leader acknowledged $HA_MINORITY payments to its client")
    [ -n "$HA_PROBE_RC" ] && [ "$HA_PROBE_RC" != 0 ] && why+=("the $([ "$action" = patroni-kill ] && echo orphaned || echo cut-off) old leader acknowledged something to the probe (or was no orphan)")
    [ -n "$HA_ORPHAN_ACKS" ] && [ "$HA_ORPHAN_ACKS" != 0 ] && why+=("the orphan acknowledged $HA_ORPHAN_ACKS payments to the load")
    [ "$action" = crash-standby-loss ] && [ -z "$second" ] && why+=("no write after the second fault")
    if [ ${#why[@]} = 0 ]; then HA_STATUS=ok; return 0; fi
    HA_WHY=$(IFS=';'; echo "${why[*]}")
    return 1
}
