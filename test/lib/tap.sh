# Minimal TAP helpers for script tests. Source this file.
TAP_N=0
TAP_FAILED=0

# ok CONDITION-EXIT-STATUS NAME: "ok N - name" or "not ok N - name". Returns the status it
# was given (0 or 1), so that `ok $? "..." || { done_testing; exit 1; }` bails out on a
# failure. No script that sources this file runs under `set -e` (a failed ok would end it).
ok() {
    local status=$1 name=$2
    TAP_N=$((TAP_N + 1))
    if [ "$status" = 0 ]; then
        echo "ok $TAP_N - $name"
    else
        echo "not ok $TAP_N - $name"
        TAP_FAILED=$((TAP_FAILED + 1))
        return 1
    fi
    return 0
}

# is GOT EXPECTED NAME
is() {
    if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got: '$1'"; echo "#   expected: '$2'"; return 1; fi
}

# wait_for SECONDS COMMAND...: retry a command every 0.2 s until it succeeds.
wait_for() {
    local deadline=$(( $(date +%s) + $1 ))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

# wait_job SECONDS PID: wait for a background job of this shell; if it is still
# running after SECONDS, kill it and return 124 (as timeout(1) does), so that a
# wait that never ends fails the test instead of hanging it.
wait_job() {
    local deadline=$(( $(date +%s) + $1 ))
    while kill -0 "$2" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            kill "$2" 2>/dev/null
            wait "$2" 2>/dev/null
            echo "# a job ran longer than $1 s and was killed"
            return 124
        fi
        sleep 0.2
    done
    wait "$2"
}

done_testing() {
    echo "1..$TAP_N"
    [ "$TAP_FAILED" = 0 ]
}
