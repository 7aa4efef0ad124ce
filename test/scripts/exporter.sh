#!/bin/bash
# Observability end to end: a primary with the settle worker and a streaming
# standby; a known workload; the real prometheus-postgres-exporter (Debian's)
# with docker/exporter/queries.yaml against each node, scraped over
# 127.0.0.1; exact settle series asserted; a real Prometheus scraping both
# exporters with docker/prometheus/alerts.yml loaded, queried over its HTTP
# API; promtool on the shipped config and rules (with a unit test of the
# alerts); and the Grafana dashboard checked against the series the
# exporters really produce.  Every wait is bounded; everything started here
# is stopped here.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch exporter
scratch_ports P1 55560 P2 55561 E1 19187 E2 19188 PR 19189
PIDS=()
scratch_on_exit 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done'
scratch_cluster "$TMP/standby" "$TMP/primary"

for bin in prometheus-postgres-exporter prometheus promtool curl jq; do
    command -v "$bin" >/dev/null || { echo "Bail out! $bin is not installed (test/deps.sh installs it)"; exit 1; }
done

# --- a primary with the worker, and a standby ---------------------------------
cluster_init "$TMP/primary" "$P1" "settle.cycle_interval = 200ms" "settle.database = postgres" \
    "wal_level = replica" "max_wal_senders = 4" "hot_standby = on" || exit 1
echo "host replication postgres 127.0.0.1/32 trust" | as_pg tee -a "$TMP/primary/data/pg_hba.conf" >/dev/null
cluster_start "$TMP/primary" || exit 1
Q_PORT=$P1    # q SQL: test/lib/cluster.sh
q2() { cluster_psql "$P2" -d postgres -At -c "$1"; }

q "CREATE EXTENSION settle" >/dev/null
q "CREATE ROLE settle_exporter LOGIN IN ROLE pg_monitor" >/dev/null
# the workload, committed at once so that the worker takes it in one cycle:
# a gridlocked ring A -> B -> C -> A of 100.00 (nets to zero: no wire) and
# D pays A 40.00 (two wires of 25.00); naive batching: 7 wires = 175.00
q "SELECT settle_set_wire_fee('USD', 25);
   SELECT settle_create_participant(p) FROM unnest(ARRAY['e_a', 'e_b', 'e_c', 'e_d']) p;
   SELECT settle_create_account(p || '_usd', p, 'USD') FROM unnest(ARRAY['e_a', 'e_b', 'e_c']) p;
   SELECT settle_create_account('e_d_usd', 'e_d', 'USD', opening_balance => 500);" >/dev/null
q "SELECT settle_submit('ring_1', 100, 'USD', 'USD', 'e_a_usd', 'e_b_usd', 'e_b', 'k1');
   SELECT settle_submit('ring_2', 100, 'USD', 'USD', 'e_b_usd', 'e_c_usd', 'e_c', 'k2');
   SELECT settle_submit('ring_3', 100, 'USD', 'USD', 'e_c_usd', 'e_a_usd', 'e_a', 'k3');
   SELECT settle_submit('d_1', 40, 'USD', 'USD', 'e_d_usd', 'e_a_usd', 'e_a', 'k4');" >/dev/null
settled_all() { [ "$(q "SELECT count(*) FROM settle.payment WHERE status = 'queued'")" = 0 ]; }
wait_for 20 settled_all
ok $? "the worker settles the workload"
is "$(q "SELECT count(*), sum(settled) FROM settle.cycle WHERE run_by = 'worker'")" "1|4" "in one worker cycle"
# today's liquidity forecasts (issue #21), so that the liquidity series exist
q "SELECT settle_refresh_liquidity_forecast()" >/dev/null

# the standby (its worker waits), then stop the primary's worker and queue
# two payments it will not take: the queue gauge has something to show
mkdir -p "$TMP/standby" && chown "$PGRUNAS" "$TMP/standby"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$TMP/standby/data" -R -X stream -c fast >"$TMP/basebackup.log" 2>&1 \
    || { cat "$TMP/basebackup.log"; exit 1; }
as_pg sed -i -e "s/^port = .*/port = $P2/" -e "s|^unix_socket_directories = .*|unix_socket_directories = '$TMP/standby'|" \
    "$TMP/standby/data/postgresql.conf"
echo "cluster_name = 'settle_standby'" | as_pg tee -a "$TMP/standby/data/postgresql.conf" >/dev/null
cluster_start "$TMP/standby" || exit 1
q "ALTER SYSTEM SET settle.worker_enabled = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
q "SELECT settle_submit('later_1', 5, 'USD', 'USD', 'e_d_usd', 'e_b_usd', 'e_b', 'k5');
   SELECT settle_submit('later_2', 6, 'USD', 'USD', 'e_d_usd', 'e_c_usd', 'e_c', 'k6');" >/dev/null
caught_up() { [ "$(q "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()")" = 1 ]; }
wait_for 20 caught_up
ok $? "the standby streams and catches up"
is "$(q "SELECT count(*) FROM settle.cycle")" "1" "no cycle ran after the worker was disabled"

# --- the exporter against each node --------------------------------------------
start_exporter() {  # port pgport log
    DATA_SOURCE_NAME="host=127.0.0.1 port=$2 user=settle_exporter dbname=postgres sslmode=disable" \
        prometheus-postgres-exporter --web.listen-address="127.0.0.1:$1" \
        --extend.query-path=docker/exporter/queries.yaml >"$3" 2>&1 &
    PIDS+=($!)
}
start_exporter "$E1" "$P1" "$TMP/exporter1.log"
start_exporter "$E2" "$P2" "$TMP/exporter2.log"
scrape() { curl -sf --max-time 10 "http://127.0.0.1:$1/metrics" >"$2"; }
scraped() { scrape "$1" "$2" && grep -q '^settle_node_primary' "$2"; }
wait_for 20 scraped "$E1" "$TMP/primary.prom"
ok $? "the exporter serves settle series for the primary on 127.0.0.1:$E1"
wait_for 20 scraped "$E2" "$TMP/standby.prom"
ok $? "the exporter serves settle series for the standby on 127.0.0.1:$E2"
# scrape again now that both are up; WAL written in between (autovacuum)
# can show a moment of lag, so scrape until the standby is caught up
P="$TMP/primary.prom"
S="$TMP/standby.prom"
lag_zero() { scrape "$E1" "$P" && [ "$(val "$P" settle_replication_lag_bytes 'standby="settle_standby"')" = 0 ]; }
delay_zero() { scrape "$E2" "$S" && [ "$(val "$S" settle_replica_delay_seconds '')" = 0 ]; }

# value of a series: file, name, labels (exact text between braces, server label removed)
val() {
    awk -v want="$2{$3}" '
        /^#/ { next }
        { name = $1; sub(/\{.*/, "", name); labels = ""
          if (match($1, /\{.*\}/)) labels = substr($1, RSTART + 1, RLENGTH - 2)
          n = split(labels, parts, ","); out = ""
          for (i = 1; i <= n; i++) if (parts[i] !~ /^server=/) out = out (out == "" ? "" : ",") parts[i]
          if (name "{" out "}" == want) { print $2; exit } }' "$1"
}
wait_for 20 lag_zero
wait_for 20 delay_zero
is "$(grep -c '^pg_exporter_user_queries_load_error.* 0$' "$P")" "1" "queries.yaml loads without error"
is "$(grep -ciE 'level=error|error running' "$TMP/exporter1.log")" "0" "every settle query runs without error on the primary"
is "$(grep -ciE 'level=error|error running' "$TMP/exporter2.log")" "0" "every settle query runs without error on the standby"
is "$(val "$P" settle_cycles_total 'run_by="worker",solver_status="optimal"')" "1" "settle_cycles_total: 1 worker cycle, optimal"
is "$(val "$P" settle_cycles_total 'run_by="manual",solver_status="optimal"')" "0" "settle_cycles_total: no manual cycle"
is "$(val "$P" settle_cycles_total 'run_by="worker",solver_status="heuristic"')" "0" "settle_cycles_total: no fallback"
is "$(val "$P" settle_cycle_payments_total 'outcome="settled"')" "4" "settle_cycle_payments_total{settled} = 4"
is "$(val "$P" settle_cycle_payments_total 'outcome="unsettled"')" "0" "settle_cycle_payments_total{unsettled} = 0"
is "$(val "$P" settle_settled_value_total 'currency="USD"')" "340" "settle_settled_value_total = 340 USD"
is "$(val "$P" settle_cost_total 'currency="USD",kind="fee"')" "50" "settle_cost_total{fee} = 50"
is "$(val "$P" settle_cost_total 'currency="USD",kind="fx"')" "0" "settle_cost_total{fx} = 0"
is "$(val "$P" settle_baseline_cost_total 'baseline="naive",currency="USD"')" "175" "settle_baseline_cost_total{naive} = 175"
is "$(val "$P" settle_cost_saved 'baseline="naive",currency="USD"')" "125" "settle_cost_saved{naive} = 125"
is "$(val "$P" settle_wires_total 'method="settle"'):$(val "$P" settle_wires_total 'method="naive"')" "2:7" "settle_wires_total: 2 netted, 7 naive"
is "$(val "$P" settle_queue_payments 'status="queued"')" "2" "settle_queue_payments{queued} = 2"
is "$(val "$P" settle_queue_payments 'status="reserved"')" "0" "settle_queue_payments{reserved} = 0"
awk -v v="$(val "$P" settle_queue_oldest_age_seconds '')" 'BEGIN { exit !(v > 0 && v < 60) }'
ok $? "settle_queue_oldest_age_seconds between 0 and 60 ($(val "$P" settle_queue_oldest_age_seconds ''))"
is "$(val "$P" settle_cycle_solver_seconds_count ''):$(val "$P" settle_cycle_solver_seconds_bucket 'le="+Inf"')" "1:1" \
   "settle_cycle_solver_seconds histogram: 1 observation"
is "$(grep -c '^# TYPE settle_cycle_duration_seconds histogram' "$P")" "1" "settle_cycle_duration_seconds is a histogram"
is "$(val "$P" settle_outbox_batches 'status="pending"'):$(val "$P" settle_outbox_final_failures_total 'direction="pay_in"')" "0:0" \
   "outbox: nothing pending, no final failure"
is "$(val "$P" settle_worker_running ''):$(val "$P" settle_worker_enabled '')" "0:0" "disabled: the launcher has stopped the worker"
is "$(val "$P" settle_node_primary '')" "1" "settle_node_primary = 1 on the primary"
is "$(val "$P" settle_replication_lag_bytes 'standby="settle_standby"')" "0" "settle_replication_lag_bytes{settle_standby} = 0 (caught up)"
is "$(val "$S" settle_node_primary '')" "0" "settle_node_primary = 0 on the standby"
is "$(val "$S" settle_replica_delay_seconds '')" "0" "settle_replica_delay_seconds = 0 on the caught-up standby"
is "$(val "$S" settle_cycles_total 'run_by="worker",solver_status="optimal"')" "1" "the standby reports the replicated counters"
is "$(val "$S" settle_worker_running '')" "1" "the standby's worker process is there (waiting)"

# --- Prometheus scraping both exporters, with the shipped rules ------------------
sed -e "s/'exporter:9187'/'127.0.0.1:$E1', '127.0.0.1:$E2'/" -e 's/scrape_interval: 15s/scrape_interval: 1s/' \
    -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' docker/prometheus/prometheus.yml >"$TMP/prometheus.yml"
cp docker/prometheus/alerts.yml "$TMP/alerts.yml"
promtool check config "$TMP/prometheus.yml" >"$TMP/promtool.log" 2>&1
ok $? "promtool accepts the test's Prometheus configuration"
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PR" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
promq() { curl -sf --max-time 5 "http://127.0.0.1:$PR/api/v1/query" --data-urlencode "query=$1" | jq -r "$2"; }
has_data() { [ "$(promq 'count(settle_node_primary)' '.data.result[0].value[1]')" = 2 ]; }
wait_for 30 has_data
ok $? "Prometheus scrapes both exporters"
is "$(promq 'settle_cycles_total{run_by="worker",solver_status="optimal",instance="127.0.0.1:'"$E1"'"}' '.data.result[0].value[1]')" "1" \
   "Prometheus: settle_cycles_total of the worker = 1"
is "$(promq 'sum(settle_node_primary)' '.data.result[0].value[1]')" "1" "Prometheus: exactly one primary"
is "$(promq 'sum(settle_node_fenced)' '.data.result[0].value[1]')" "0" "Prometheus: settle_node_fenced scraped, no node fenced"
is "$(promq 'count(settle_lock_wait_seconds == 0)' '.data.result[0].value[1]')" "4" \
   "Prometheus: settle_lock_wait_seconds scraped for cycle and seal on both nodes, no wait"
is "$(promq 'sum(settle_worker_cycles_failed_total) + sum(settle_worker_seals_failed_total)' '.data.result[0].value[1]')" "0" \
   "Prometheus: the workers' failed-round counters are scraped, and zero"
is "$(promq 'sum(settle_queue_payments{status="queued",instance="127.0.0.1:'"$E1"'"})' '.data.result[0].value[1]')" "2" \
   "Prometheus: 2 queued payments on the primary"
is "$(promq '100 * (sum(settle_baseline_cost_total{baseline="naive",instance="127.0.0.1:'"$E1"'"}) - sum(settle_cost_total{instance="127.0.0.1:'"$E1"'"})) / sum(settle_baseline_cost_total{baseline="naive",instance="127.0.0.1:'"$E1"'"})' '.data.result[0].value[1]')" \
   "71.42857142857143" "Prometheus: the dashboard's saving against naive = 125/175"
N_RULES=$(grep -c '^ *- alert:' docker/prometheus/alerts.yml)
rules_ok() { [ "$(curl -sf --max-time 5 "http://127.0.0.1:$PR/api/v1/rules" | jq '[.data.groups[].rules[] | select(.health == "ok")] | length')" = "$N_RULES" ]; }
wait_for 20 rules_ok
ok $? "Prometheus loaded and evaluated the $N_RULES alert rules of docker/prometheus/alerts.yml"
# an evaluation that ran before both targets were scraped may have left an
# alert pending; on a healthy cluster it clears at the next evaluation
# "alerts=[...]" only from an answer of Prometheus: when it does not answer,
# curl -sf | jq prints nothing, which must not read as "no alert"
alerts_now() { curl -sf --max-time 5 "http://127.0.0.1:$PR/api/v1/alerts" \
                 | jq -er 'select(.status == "success") | "alerts=[" + ([.data.alerts[].labels.alertname] | sort | join(",")) + "]"'; }
no_alerts() { [ "$(alerts_now)" = "alerts=[]" ]; }
wait_for 20 no_alerts
ok $? "no alert is pending or firing on the healthy cluster" || echo "#   Prometheus says: '$(alerts_now)'"

# --- promtool: shipped config, rules, and a unit test of the alerts ---------------
promtool check config docker/prometheus/prometheus.yml >"$TMP/promtool.log" 2>&1
ok $? "promtool check config docker/prometheus/prometheus.yml"
promtool check rules docker/prometheus/alerts.yml >>"$TMP/promtool.log" 2>&1
ok $? "promtool check rules docker/prometheus/alerts.yml"
cat >"$TMP/alerts_test.yml" <<'EOF'
rule_files: [alerts.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'settle_queue_payments{instance="n1",status="queued"}'
        values: '3x20'
      - series: 'settle_last_cycle_age_seconds{instance="n1"}'
        values: '0 15 30 45 60 75 90 105 120 135 150 165 180 195 210 225 240 255 270 285 300'
      - series: 'settle_worker_enabled{instance="n1"}'
        values: '1x20'
      - series: 'settle_node_primary{instance="n1"}'
        values: '1x20'
      - series: 'settle_worker_running{instance="n1"}'
        values: '1x20'
      - series: 'settle_queue_oldest_age_seconds{instance="n1"}'
        values: '0+15x20'
      - series: 'settle_outbox_final_failures_total{instance="n1",direction="pay_out"}'
        values: '0x10 1x10'
      - series: 'settle_cycles_total{instance="n1",run_by="worker",solver_status="heuristic"}'
        values: '0x20'
      - series: 'settle_worker_cycles_failed_total{instance="n1"}'
        values: '0x10 1+1x10'
      - series: 'settle_worker_seals_failed_total{instance="n1"}'
        values: '0x20'
      - series: 'settle_lock_wait_seconds{instance="n1",lock="cycle"}'
        values: '0x10 60+60x10'
      - series: 'settle_lock_wait_seconds{instance="n1",lock="seal"}'
        values: '0x20'
      - series: 'settle_participant_alert{instance="n1",participant="bank_a",currency="USD",kind="headroom"}'
        values: '0x10 1x10'
      - series: 'settle_participant_alert{instance="n1",participant="bank_b",currency="USD",kind="liquidity"}'
        values: '1x10 0x10'
    alert_rule_test:
      - eval_time: 1m
        alertname: SettleParticipantAlert
        exp_alerts:
          - exp_labels: {instance: n1, participant: bank_b, currency: USD, kind: liquidity, severity: ticket}
            exp_annotations:
              summary: "settle: bank_b's liquidity in USD is below the threshold it set"
              description: "The participant's early warning is raised (kind liquidity: its available liquidity; headroom: its limits' lowest headroom), as of the last cycle that changed something; it was told on channel settle_alert. SELECT * FROM settle.participant_alerts WHERE participant_id = 'bank_b'; docs/PARTICIPANT_CONTROLS.md."
      - eval_time: 4m
        alertname: SettleParticipantAlert
        exp_alerts:
          - exp_labels: {instance: n1, participant: bank_a, currency: USD, kind: headroom, severity: ticket}
            exp_annotations:
              summary: "settle: bank_a's headroom in USD is below the threshold it set"
              description: "The participant's early warning is raised (kind liquidity: its available liquidity; headroom: its limits' lowest headroom), as of the last cycle that changed something; it was told on channel settle_alert. SELECT * FROM settle.participant_alerts WHERE participant_id = 'bank_a'; docs/PARTICIPANT_CONTROLS.md."
      - eval_time: 4m
        alertname: SettleCyclesFailing
        exp_alerts:
          - exp_labels: {instance: n1, severity: page}
            exp_annotations:
              summary: "settle: payments are queued but no cycle has committed for 30 s on n1"
              description: "A non-empty queue commits a cycle every settle.cycle_interval; none did. Look for 'settle cycle failed' in the server log."
      - eval_time: 4m
        alertname: SettleOutboxFinalFailure
        exp_alerts:
          - exp_labels: {instance: n1, direction: pay_out, severity: page}
            exp_annotations:
              summary: "settle: a pay_out wire failed for good on n1"
              description: "pay_in: its cycle was voided; pay_out: posted but not paid, an operator must act (settle.batches where status = 'failed')."
      - eval_time: 4m
        alertname: SettleCycleErrors
        exp_alerts:
          - exp_labels: {instance: n1, severity: ticket}
            exp_annotations:
              summary: "settle: the worker's cycles fail on n1"
              description: "Cycles were rolled back in the last 5 minutes (with an empty queue, SettleCyclesFailing cannot fire). SELECT * FROM settle_worker_status() shows the last SQLSTATE and message."
      - eval_time: 4m
        alertname: SettleSealFailing
        exp_alerts: []
      - eval_time: 4m
        alertname: SettleSolverFallbacks
        exp_alerts: []
      - eval_time: 4m
        alertname: SettleWorkerDown
        exp_alerts: []
      - eval_time: 4m
        alertname: SettleCycleLockWait
        exp_alerts:
          - exp_labels: {instance: n1, lock: cycle, severity: page}
            exp_annotations:
              summary: "settle: a cycle has waited over 30 s for the one before it on n1"
              description: "Only the extension's owner or a superuser can hold settle.cycle_lock: find the session with SELECT l.pid, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.relation = 'settle.cycle_lock'::regclass AND l.granted."
EOF
(cd "$TMP" && promtool test rules alerts_test.yml) >>"$TMP/promtool.log" 2>&1
ok $? "promtool test rules: the alerts fire on failing cycles, cycle errors, a failed wire and a participant's raised warning (and not once it is cleared), not on a healthy worker"
grep -q FAILED "$TMP/promtool.log" && cat "$TMP/promtool.log"

# --- the Grafana dashboard ---------------------------------------------------------
cat "$P" "$S" | grep -v '^#' | sed -e 's/[{ ].*//' | sort -u >"$TMP/series.txt"
python3 - docker/grafana/dashboards/settle.json "$TMP/series.txt" docker/grafana/provisioning <<'PY' >"$TMP/dashboard.log" 2>&1
import json, re, sys, pathlib
dash = json.load(open(sys.argv[1]))
series = set(open(sys.argv[2]).read().split())
problems = []
panels = [p for p in dash["panels"] if p.get("type") != "row"]
for p in dash["panels"]:
    panels += [q for q in p.get("panels", []) if q.get("type") != "row"]
ds_uids = set()
for f in pathlib.Path(sys.argv[3], "datasources").glob("*.yml"):
    ds_uids |= set(re.findall(r"uid:\s*(\S+)", f.read_text()))
functions = {"rate", "increase", "sum", "max", "min", "by", "histogram_quantile", "le", "count", "avg"}
ids = set()
for p in panels:
    t = p.get("title", "?")
    if p.get("id") in ids: problems.append(f"{t}: duplicate id")
    ids.add(p.get("id"))
    if p.get("datasource", {}).get("uid") not in ds_uids: problems.append(f"{t}: datasource not provisioned")
    if not p.get("targets"): problems.append(f"{t}: no targets")
    for tg in p.get("targets", []):
        expr = tg.get("expr", "")
        if not expr: problems.append(f"{t}: empty expr")
        # metric names: identifiers not followed by '(' or inside braces / by(...)
        bare = re.sub(r"\{[^}]*\}", "", expr)
        bare = re.sub(r"\b(by|on|without)\s*\([^)]*\)", "", bare)
        bare = re.sub(r"\[[^\]]*\]", "", bare)
        for name in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
            if name in functions: continue
            if name not in series: problems.append(f"{t}: {name} is not produced by the exporter")
    gp = p.get("gridPos", {})
    if not all(k in gp for k in ("h", "w", "x", "y")): problems.append(f"{t}: no gridPos")
print(len(panels), "panels")
for x in problems: print("PROBLEM", x)
sys.exit(1 if problems or not panels else 0)
PY
rc=$?
cat "$TMP/dashboard.log"
ok $rc "the dashboard parses; every panel has a provisioned datasource, targets, and only series the exporters produce"
jq -e '.uid == "settle-overview" and (.panels | length) > 0' docker/grafana/dashboards/settle.json >/dev/null
ok $? "jq parses the dashboard (uid settle-overview)"
for f in docker/grafana/provisioning/*/*.yml docker/exporter/queries.yaml; do
    python3 -c "import sys, yaml; yaml.safe_load(open(sys.argv[1]))" "$f"
    ok $? "$f is valid YAML"
done

done_testing
