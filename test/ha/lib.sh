# The settle HA harness: etcd and three Patroni-managed PostgreSQL 15 nodes on 127.0.0.1,
# run as the postgres user, with dynamically chosen free ports. Source this file
# (after test/lib/cluster.sh, for free_port and PGBIN).
#
#   ha_init DIR              ports, node configs rendered from test/ha/patroni.yml.in
#   ha_start                 etcd + three Patroni nodes; waits for leader, sync standby, replica
#   ha_leader / ha_sync      name of the leader / synchronous standby (from the REST API)
#   ha_kill NODE             SIGKILL of the node's Patroni, postmaster and every server process
#   ha_start_node NODE       start the node's Patroni again
#   ha_cut NODE hold|reset [etcd]  cut the node off the network, or off etcd only
#                            (HA_NETSPLIT=1 only); ha_heal NODE
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
    HA_ETCD_PORT=$(free_port "$base")
    HA_ETCD_PEER=$(free_port $((HA_ETCD_PORT + 1)))
    local n i=0 p=$((HA_ETCD_PEER + 1))
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
        REST_CONNECT_PORT=$(eval "echo \$HA_RESTX_$n") ETCD_HOSTS=127.0.0.1:$(eval "echo \$HA_ETCDX_$n") \
        ETCD_USE_PROXIES=$([ "${HA_NETSPLIT:-0}" = 1 ] && echo true) \
        DATA_DIR=$HA_DIR/$n/data PGPASS_FILE=$HA_DIR/$n/pgpass \
        SOCKET_DIR=$HA_DIR/$n POST_BOOTSTRAP=$HA_SRC/post_bootstrap.sh SCOPE=settle-ha \
        SETTLE_CYCLE_INTERVAL=${SETTLE_CYCLE_INTERVAL:-500ms} \
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

ha_start_etcd() {
    (exec setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- etcd --name ha --data-dir "$HA_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$HA_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$HA_ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$HA_ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$HA_ETCD_PEER" \
        --initial-cluster "ha=http://127.0.0.1:$HA_ETCD_PEER" --enable-v2 --log-level warn) \
        >"$HA_DIR/etcd.log" 2>&1 &
    echo "etcd $!" >> "$HA_DIR/pids"
    disown $!
    local i
    for i in $(seq 1 100); do
        curl -s -m 1 "http://127.0.0.1:$HA_ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        sleep 0.2
    done
    echo "# etcd did not start"; tail -20 "$HA_DIR/etcd.log"; return 1
}

ha_start_node() {
    local n=$1
    (cd "$HA_DIR/$n" && exec setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- \
        env HOME="$HA_DIR" PATH="$PATH" patroni "$HA_DIR/$n/patroni.yml") >>"$HA_DIR/$n/patroni.log" 2>&1 &
    echo "$n $!" >> "$HA_DIR/pids"
    disown $!
}

# the pid of a node's Patroni (last one started)
ha_patroni_pid() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$HA_DIR/pids"; }

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
        routes="$routes $n:$(eval "echo \$HA_ETCDX_$n"):$HA_ETCD_PORT:etcd"
    done
    (exec setpriv --reuid="$HA_RUNAS" --regid="$HA_RUNAS" --init-groups -- \
        "$HA_PY" "$HA_SRC/netsplit.py" serve --control "$HA_NETSPLIT_CTL" $routes) >"$HA_DIR/netsplit.log" 2>&1 &
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
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
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
        kill -0 $pat $pm $kids 2>/dev/null || return 0
        sleep 0.1
    done
}

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
                 -c "SELECT settle_create_account(p || '_usd', p, 'USD', lower_limit => 0, opening_balance => 100000000) FROM unnest(ARRAY['ha_a','ha_b','ha_c']) p" >/dev/null
}

# time of the first acknowledgement after T by a node other than OLD, from an acked file
ha_first_ack_after() {
    local file=$1 t=$2 oldport=$3
    [ -s "$file" ] || return 0
    "$HA_PY" - "$file" "$t" "$oldport" <<'PY'
import json, sys
f, t, old = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
best = None
for line in open(f):
    r = json.loads(line)
    if r["t"] > t and r["port"] != old and (best is None or r["t"] < best):
        best = r["t"]
print("%.6f" % best if best else "")
PY
}

# the worker has run a cycle on node N since time T (epoch seconds)
ha_worker_cycled_since() {
    [ "$(ha_psql "$1" -c "SELECT count(*) > 0 FROM settle.cycle WHERE run_by = 'worker' AND started_at > to_timestamp($2)" 2>/dev/null)" = t ]
}

# every payment of the prefixes is settled (the worker drained the queue)
ha_all_settled() {
    [ "$(ha_psql "$1" -c "SELECT count(*) FROM settle.payment WHERE status = 'queued'" 2>/dev/null)" = 0 ]
}

# One round under load: start the client (prefix P), after a few seconds disrupt the leader
# with ACTION (crash | switchover | freeze | partition | etcd-cut), measure from the
# disruption to the first acknowledged write on another node, stop the load, bring the old
# leader back (restart, wake, heal), and run the checks. Sets HA_OLD, HA_NEW, HA_SECS
# (fail-over time), HA_CHECK_RC, HA_CLIENT_RC, HA_REJOIN_SECS; for a cut also HA_DEMOTE_SECS
# (cut to the old leader's last answer as a primary), HA_RECOVERY_SECS (to its restart in
# recovery), and for a partition HA_MINORITY (acknowledgements by the old leader after the
# cut, to the client that stayed with it: must be 0). Writes the check output to
# $HA_DIR/check-P.log. A partition uses HA_CUT_MODE (hold | reset, see netsplit.py); so does
# etcd-cut, which cuts the leader's connection to etcd only: clients and its standbys still
# reach it, so it may acknowledge commits until it demotes (they are on its standby).
ha_round() {
    local action=$1 p=$2 acked=$HA_DIR/acked-$2 stop=$HA_DIR/stop-$2 client t0 first i target
    local minority="" macked=$HA_DIR/acked-$2m watcher
    HA_NEW="" HA_SECS="" HA_CHECK_RC=1 HA_CLIENT_RC=1 HA_REJOIN_SECS="" HA_WORKER_OK=1
    HA_DEMOTE_SECS="" HA_RECOVERY_SECS="" HA_MINORITY=""
    HA_OLD=$(ha_leader) || { echo "# no leader before round $p"; return 1; }
    rm -f "$stop"; : > "$acked"; rm -f "$macked"
    "$HA_PY" "$HA_SRC/client.py" load --hosts "$HA_HOSTS" --prefix "$p" --count "${HA_MAX_PAYMENTS:-20000}" \
        --max-seconds "${HA_CLIENT_SECONDS:-90}" --acked "$acked" --stop-file "$stop" \
        --workers "${HA_WORKERS:-2}" --pause "${HA_PAUSE:-0.01}" >"$HA_DIR/client-$p.log" 2>&1 &
    client=$!
    if [ "$action" = partition ]; then
        # a client on the old leader's side of the partition: it reaches the old leader only
        # (its own port, not the proxy), so it keeps submitting there after the cut. Nothing
        # may be acknowledged to it then. After the heal it finishes its last, unknown
        # payment through the cluster with the same key, as a real client would.
        : > "$macked"
        "$HA_PY" "$HA_SRC/client.py" load --hosts "127.0.0.1:$(ha_pg_port "$HA_OLD")" --after-stop-hosts "$HA_HOSTS" \
            --prefix "${p}m" --count "${HA_MAX_PAYMENTS:-20000}" --max-seconds "${HA_CLIENT_SECONDS:-90}" \
            --acked "$macked" --stop-file "$stop" --workers 1 --pause "${HA_PAUSE:-0.01}" \
            >"$HA_DIR/client-${p}m.log" 2>&1 &
        minority=$!
    fi
    sleep "${HA_LOAD_BEFORE:-4}"
    case $action in
    crash)
        t0=$(ha_now)
        ha_kill "$HA_OLD" ;;
    freeze)
        # SIGSTOP of the leader's Patroni and every postgres process: to everyone else the
        # node is cut off (connections are accepted by the kernel and never answered), like
        # a partition or a long pause; it is woken (SIGCONT) once a new leader has written
        t0=$(ha_now)
        HA_FROZEN="$(ha_patroni_pid "$HA_OLD") $(ha_postmaster_pid "$HA_OLD")"
        HA_FROZEN="$HA_FROZEN $(pgrep -P "$(ha_postmaster_pid "$HA_OLD")" | tr '\n' ' ')"
        kill -STOP $HA_FROZEN ;;
    switchover)
        for i in $HA_NODES; do [ "$i" != "$HA_OLD" ] && [ "$(ha_rest $i sync)" = 200 ] && target=$i; done
        t0=$(ha_now)
        curl -s -m 30 -X POST -H 'Content-Type: application/json' \
            -d "{\"leader\": \"$HA_OLD\", \"candidate\": \"$target\"}" \
            "http://127.0.0.1:$(ha_rest_port "$HA_OLD")/switchover" >"$HA_DIR/switchover-$p.log" 2>&1 ;;
    partition|etcd-cut)
        # every connection of the leader's node (etcd, replication, clients, REST) is cut,
        # or only its connection to etcd
        t0=$(ha_now)
        ha_cut "$HA_OLD" "${HA_CUT_MODE:-hold}" $([ "$action" = etcd-cut ] && echo etcd)
        # watch the old leader through its own port (not cut), from now on: "time f" while
        # it is a writable primary, "time t" once in recovery, "time -" when it does not answer
        ( for _ in $(seq 1 "${HA_DEMOTE_TIMEOUT:-60}0"); do
              r=$(ha_psql "$HA_OLD" -c "SELECT pg_is_in_recovery()" 2>/dev/null) || r=-
              echo "$(ha_now) $r"
              [ "$r" = t ] && break
              sleep 0.1
          done ) > "$HA_DIR/demote-$p" &
        watcher=$! ;;
    esac
    first=""
    for i in $(seq 1 600); do
        first=$(ha_first_ack_after "$acked" "$t0" "$(ha_client_port "$HA_OLD")")
        [ -n "$first" ] && break
        kill -0 $client 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$first" ] && HA_SECS=$(ha_secs "$t0" "$first")
    if [ "$action" = freeze ]; then
        sleep "${HA_FREEZE_AFTER:-2}"
        # the old leader wakes up believing it leads: it must find its lock gone and demote
        # before accepting anything, and commits there cannot be acknowledged
        kill -CONT $HA_FROZEN 2>/dev/null
    fi
    if [ "$action" = partition ] || [ "$action" = etcd-cut ]; then
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
        sleep "${HA_CUT_AFTER:-2}"
        ha_heal "$HA_OLD"
    fi
    sleep "${HA_LOAD_AFTER:-2}"
    touch "$stop"
    wait $client; HA_CLIENT_RC=$?
    if [ -n "$minority" ]; then
        wait $minority || HA_CLIENT_RC=1
        # a reply to a commit that reached the standby before the cut may be a moment late;
        # one a second after the cut would be a commit the cut-off leader acknowledged alone
        HA_MINORITY=$("$HA_PY" -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["t"] > float(sys.argv[2]) + 1
          and json.loads(l)["port"] == int(sys.argv[3])))' "$macked" "$t0" "$(ha_pg_port "$HA_OLD")")
    fi
    HA_NEW=$(ha_leader)
    # the worker took over on the new leader by itself: it cycled after the disruption
    # and drains the queue
    if [ -n "$HA_NEW" ]; then
        local deadline=$(( $(date +%s) + 30 ))
        until ha_worker_cycled_since "$HA_NEW" "$t0" && ha_all_settled "$HA_NEW"; do
            [ "$(date +%s)" -ge $deadline ] && break
            sleep 0.5
        done
        ha_worker_cycled_since "$HA_NEW" "$t0" && ha_all_settled "$HA_NEW" && HA_WORKER_OK=0
    fi
    [ "$action" = crash ] && ha_start_node "$HA_OLD"
    i=$(ha_now)
    ha_wait_healthy "${HA_REJOIN_TIMEOUT:-120}" && [ "$(ha_rest "$HA_OLD" replica)" = 200 ] && HA_REJOIN_SECS=$(ha_secs "$i" "$(ha_now)")
    if [ -n "$minority" ]; then
        "$HA_PY" "$HA_SRC/client.py" check --hosts "$HA_HOSTS" --acked "$acked" "$macked" --prefixes "$p,${p}m" \
            >"$HA_DIR/check-$p.log" 2>&1
    else
        "$HA_PY" "$HA_SRC/client.py" check --hosts "$HA_HOSTS" --acked "$acked" --prefixes "$p" >"$HA_DIR/check-$p.log" 2>&1
    fi
    HA_CHECK_RC=$?
    return 0
}
