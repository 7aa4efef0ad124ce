#!/bin/bash
# docker compose up, for real (issue #31): the container stack of docker/ built and run with
# Debian 12's podman and podman-compose, and checked from outside the containers.
#
#   - the container tools come from Debian (installed here if missing, as root); podman runs
#     with test/compose/containers.conf (runc, cgroupfs, no default ulimits), the machine's
#     own configuration untouched;
#   - the base image debian:12-slim is made locally (no registry is reachable): debootstrap
#     --variant=minbase bookworm, imported with podman import, cached in $CACHE;
#   - the images are built from docker/Dockerfile and docker/Dockerfile.monitoring as a user
#     would build them, and their sizes are printed;
#   - docker/docker-compose.yml comes up on free host ports: Patroni has a leader and a
#     synchronous standby, etcd is healthy; the seed's curl against the gateway answers 201,
#     its replay 200 with the same body, GET finds the payment, health 200; the worker settles
#     it; the exporter's /metrics carries settle's series and Prometheus scrapes it (up);
#   - under a steady load through the gateway (retries with the same key), the leader's
#     container is killed: a new leader is elected, the gateway follows, and every
#     acknowledged payment is in the database exactly once;
#   - compose down -v leaves no container, volume or network of the project.
# Grafana (docker/docker-compose.grafana.yml: its image is not buildable from Debian) is not
# run; test/scripts/exporter.sh validates its dashboard.
#
# make compose-test runs this; KEEP=1 leaves the stack up and says so.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh

export CONTAINERS_CONF=$PWD/test/compose/containers.conf
CACHE=${SETTLE_COMPOSE_CACHE:-/var/cache/settle-compose}
PROJECT=settlecompose$$
TMP=$(mktemp -d /tmp/settle-compose.XXXXXX)
FAILOVER_LIMIT=${FAILOVER_LIMIT:-30}   # seconds: a bound for the test; docs/CONSENSUS.md has the target
COMPOSE=(podman-compose -p "$PROJECT" -f docker/docker-compose.yml)

cleanup() {
    [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then
        echo "# KEEP=1: the stack $PROJECT is still up; scratch in $TMP"
        return
    fi
    "${COMPOSE[@]}" down -v >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT

# 1. the tools, from Debian
PKGS="podman runc podman-compose debootstrap golang-github-containernetworking-plugin-dnsname
      slirp4netns fuse-overlayfs uidmap curl jq python3-psycopg2 postgresql-client-15"
missing=()
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "Bail out! missing packages: ${missing[*]} (run as root to install them)"
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
podman info >"$TMP/podman-info.txt" 2>&1
ok $? "podman runs here ($(podman --version), $(grep -m1 -o 'ociRuntime:' "$TMP/podman-info.txt" >/dev/null && sed -n 's/^ *name: \(runc\|crun\)$/\1/p' "$TMP/podman-info.txt" | head -1))" ||
    { tail -5 "$TMP/podman-info.txt" | sed 's/^/#   /'; done_testing; exit 1; }

# 2. the base image, made locally and cached
started=$(date +%s)
if ! podman image exists debian:12-slim; then
    if [ ! -f "$CACHE/rootfs.tar" ]; then
        mkdir -p "$CACHE"
        rm -rf "$CACHE/rootfs.tmp"
        debootstrap --variant=minbase bookworm "$CACHE/rootfs.tmp" http://deb.debian.org/debian \
            >"$TMP/debootstrap.log" 2>&1 &&
            tar -C "$CACHE/rootfs.tmp" -cf "$CACHE/rootfs.tar.tmp" . &&
            mv "$CACHE/rootfs.tar.tmp" "$CACHE/rootfs.tar"
        rm -rf "$CACHE/rootfs.tmp"
    fi
    podman import "$CACHE/rootfs.tar" debian:12-slim >/dev/null 2>"$TMP/import.log"
fi
podman image exists debian:12-slim
ok $? "the base image debian:12-slim, made by debootstrap (cached in $CACHE; $(($(date +%s) - started)) s)" ||
    { tail -5 "$TMP/debootstrap.log" "$TMP/import.log" 2>/dev/null | sed 's/^/#   /'; done_testing; exit 1; }

# 3. the images, from the repository's Dockerfiles
for img in settle-patroni:docker/Dockerfile settle-monitoring:docker/Dockerfile.monitoring; do
    name=${img%%:*} file=${img#*:}
    started=$(date +%s)
    # --format docker: the image format docker build makes (OCI images drop HEALTHCHECK)
    podman build --format docker --network host --label org.settle.compose-test=1 \
        -f "$file" -t "$name:latest" . >"$TMP/build-$name.log" 2>&1
    ok $? "built $name from $file ($(($(date +%s) - started)) s, $(podman image inspect --format '{{.Size}}' "$name:latest" 2>/dev/null | awk '{ printf "%.0f MB", $1 / 1e6 }'))" ||
        { tail -15 "$TMP/build-$name.log" | sed 's/^/#   /'; done_testing; exit 1; }
done
# images left untagged by earlier builds of this test (each source change makes new ones);
# only this test's, by their label
podman image prune -f --filter label=org.settle.compose-test=1 >/dev/null 2>&1
podman image inspect settle-patroni:latest >"$TMP/image.json"
user=$(jq -r '.[0].Config.User' "$TMP/image.json")
health=$(jq -c '(.[0].Healthcheck // .[0].Config.Healthcheck).Test // empty' "$TMP/image.json")
[ "$user" = postgres ] && [ -n "$health" ]
ok $? "settle-patroni runs as postgres, not root, and has a HEALTHCHECK ($health)"
muser=$(podman image inspect --format '{{.Config.User}}' settle-monitoring:latest)
[ "$muser" = prometheus ]
ok $? "settle-monitoring runs as prometheus, not root"
# no secret in the image: no password in its environment, no rendered Patroni settings or
# pgpass (the entrypoint renders them from the container's environment at start)
vols_before=$(podman volume ls -q | sort)
cid=$(podman create --network none --entrypoint sh settle-patroni:latest -c \
      'ls /var/lib/postgresql/patroni/patroni.yml /var/lib/postgresql/patroni/pgpass 2>/dev/null; true')
found=$(podman start -a "$cid" 2>/dev/null)
podman rm -v "$cid" >/dev/null
! jq -r '.[0].Config.Env[]' "$TMP/image.json" | grep -qi 'password' && [ -z "$found" ]
ok $? "no password is baked into the image: none in its environment, no rendered settings or pgpass"

# 4. the stack, on free host ports
export SETTLE_SUPERUSER_PASSWORD=su-$$-$RANDOM SETTLE_REPLICATION_PASSWORD=rep-$$-$RANDOM \
       SETTLE_GATEWAY_PASSWORD=gw-$$-$RANDOM
base=20000
for v in NODE1_PG NODE2_PG NODE3_PG NODE1_REST NODE2_REST NODE3_REST GATEWAY ETCD EXPORTER PROMETHEUS; do
    base=$(free_port $((base + 1)))
    export "SETTLE_${v}_PORT=$base"
done
pg_port() { local n=${1#node}; eval echo "\$SETTLE_NODE${n}_PG_PORT"; }
rest_port() { local n=${1#node}; eval echo "\$SETTLE_NODE${n}_REST_PORT"; }
started=$(date +%s)
"${COMPOSE[@]}" up -d >"$TMP/up.log" 2>&1
ok $? "podman-compose up -d ($PROJECT)" || { tail -20 "$TMP/up.log" | sed 's/^/#   /'; done_testing; exit 1; }

cluster_json() { curl -sf "http://127.0.0.1:$(rest_port "$1")/cluster"; }
any_cluster() { local n; for n in node1 node2 node3; do cluster_json "$n" && return 0; done; return 1; }
leader() { any_cluster | jq -r '.members[] | select(.role == "leader" and .state == "running") | .name' 2>/dev/null; }
sync_standby() { any_cluster | jq -r '.members[] | select(.role == "sync_standby" and (.state == "streaming" or .state == "running")) | .name' 2>/dev/null; }
has_leader_and_sync() { [ -n "$(leader)" ] && [ -n "$(sync_standby)" ]; }
wait_for 240 has_leader_and_sync
ok $? "Patroni has a leader ($(leader)) and a synchronous standby ($(sync_standby)) ($(($(date +%s) - started)) s after up)" ||
    { any_cluster | sed 's/^/#   /'; podman logs "${PROJECT}_node1_1" 2>&1 | tail -20 | sed 's/^/#   /'; }
curl -sf "http://127.0.0.1:$SETTLE_ETCD_PORT/health" | jq -e '.health == "true"' >/dev/null
ok $? "etcd is healthy"

L=$(leader)
export PGPASSWORD=$SETTLE_SUPERUSER_PASSWORD
lsql() { psql -X -q -At -h 127.0.0.1 -p "$(pg_port "$1")" -U postgres -d postgres -v ON_ERROR_STOP=1 "${@:2}"; }
wait_for 60 lsql "$L" -c "SELECT 1 FROM pg_extension WHERE extname = 'settle'"
TOKEN=$(lsql "$L" <<SQL | tail -1
SELECT settle_create_participant(p) FROM unnest(ARRAY['ha_a', 'ha_b']) p;
SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100000000) FROM unnest(ARRAY['ha_a', 'ha_b']) p;
CREATE ROLE gateway LOGIN PASSWORD '$SETTLE_GATEWAY_PASSWORD' IN ROLE settle_gateway;
CREATE ROLE ha_a_app LOGIN;
SELECT settle_map_role('ha_a_app', 'ha_a');
SELECT settle_issue_api_token('ha_a_web', 'ha_a_app');
SQL
)
[ -n "$TOKEN" ]
ok $? "participants, accounts, the gateway's login and an API token created on the leader ($L)"

GW=http://127.0.0.1:$SETTLE_GATEWAY_PORT
wait_for 60 curl -sf "$GW/api/v1/health"
ok $? "the gateway's health answers 200"
BODY='{"transaction_id":"seed_001","amount":"125.50","source_currency":"USD","destination_currency":"USD","source_account":"ha_a_usd","destination_account":"ha_b_usd","counterparty_id":"ha_b","idempotency_key":"seed_001"}'
post() { curl -s -o "$TMP/$1.body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
              -H 'Content-Type: application/json' -d "$BODY" "$GW/api/v1/transactions"; }
is "$(post first)" 201 "the seed's curl: POST /api/v1/transactions answers 201"
is "$(post replay)" 200 "the replay answers 200"
cmp -s "$TMP/first.body" "$TMP/replay.body"
ok $? "with the same body ($(head -c 120 "$TMP/first.body"))"
settled() { curl -sf -H "Authorization: Bearer $TOKEN" "$GW/api/v1/transactions/seed_001" | jq -e '.status == "settled"'; }
wait_for 30 settled
ok $? "GET /api/v1/transactions/seed_001 finds it, and the worker settled it" ||
    curl -s -H "Authorization: Bearer $TOKEN" "$GW/api/v1/transactions/seed_001" | sed 's/^/#   /'

metrics_ok() { curl -sf "http://127.0.0.1:$SETTLE_EXPORTER_PORT/metrics" | grep -q '^settle_queue_payments'; }
wait_for 60 metrics_ok
ok $? "the exporter's /metrics carries settle's series (settle_queue_payments, ...)"
prom_up() { curl -sf "http://127.0.0.1:$SETTLE_PROMETHEUS_PORT/api/v1/targets" |
                jq -e '[.data.activeTargets[] | select(.labels.job == "settle" and .health == "up")] | length == 1'; }
wait_for 60 prom_up
ok $? "Prometheus scrapes it: its /api/v1/targets says up"

# 5. the leader's container killed under load through the gateway
# Debian's python3 (python3-psycopg2), whatever python3 is first on PATH
PY=/usr/bin/python3
"$PY" test/ha/gateway_client.py load --url "$GW" --token "$TOKEN" --prefix cmp --acked "$TMP/acked" \
    --stop-file "$TMP/stop" --workers 4 --max-seconds 150 >"$TMP/load.log" 2>&1 &
LOAD_PID=$!
sleep 5
before=$(wc -l <"$TMP/acked" 2>/dev/null || echo 0)
L=$(leader)
t0=$(date +%s.%N)
podman kill "${PROJECT}_${L}_1" >/dev/null
ok $? "killed the leader's container (${PROJECT}_${L}_1) with $before payments acknowledged"
new_leader() { local n; n=$(leader); [ -n "$n" ] && [ "$n" != "$L" ]; }
wait_for "$FAILOVER_LIMIT" new_leader
rc=$?
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
ok $rc "a new leader ($(leader)) within ${FAILOVER_LIMIT} s: $took s"
acked_after() { [ "$(wc -l <"$TMP/acked")" -gt $((before + 50)) ]; }
wait_for 60 acked_after
ok $? "the gateway follows: acknowledgements go on after the fail-over ($(wc -l <"$TMP/acked") in all)"
touch "$TMP/stop"
wait "$LOAD_PID"
ok $? "the load client ended cleanly ($(tail -1 "$TMP/load.log"))"
LOAD_PID=
NL=$(leader)
"$PY" test/ha/gateway_client.py check --dsn "host=127.0.0.1 port=$(pg_port "$NL") user=postgres dbname=postgres password=$SETTLE_SUPERUSER_PASSWORD" \
    --acked "$TMP/acked" --prefix cmp >"$TMP/check.log" 2>&1
ok $? "every acknowledged payment is in the database exactly once ($(tail -1 "$TMP/check.log"))"
is "$(lsql "$NL" -c "SELECT count(*) FROM settle_verify()")" 0 "settle_verify() is clean on the new leader"

# 6. down, and nothing left
if [ "${KEEP:-0}" != 1 ]; then
    "${COMPOSE[@]}" down -v >"$TMP/down.log" 2>&1
    left=$( (podman ps -a --format '{{.Names}}'; podman volume ls --format '{{.Name}}') | grep -c "$PROJECT")
    new_vols=$(comm -13 <(echo "$vols_before") <(podman volume ls -q | sort) | wc -l)
    [ "$left" = 0 ] && [ "$new_vols" = 0 ]
    ok $? "podman-compose down -v leaves no container or volume of $PROJECT, named or anonymous ($left, $new_vols)"
    # podman-compose 1.0.3 (Debian 12) does not remove the project's network on down; docker
    # compose does: removed here so that runs do not pile up
    podman network rm "${PROJECT}_default" >/dev/null 2>&1
fi
done_testing
