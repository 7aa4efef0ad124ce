# Minimal TAP helpers for script tests. Source this file.
TAP_N=0
TAP_FAILED=0

# ok CONDITION-EXIT-STATUS NAME: "ok N - name" or "not ok N - name".
ok() {
    local status=$1 name=$2
    TAP_N=$((TAP_N + 1))
    if [ "$status" = 0 ]; then
        echo "ok $TAP_N - $name"
    else
        echo "not ok $TAP_N - $name"
        TAP_FAILED=$((TAP_FAILED + 1))
    fi
}

# is GOT EXPECTED NAME
is() {
    if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got: '$1'"; echo "#   expected: '$2'"; fi
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

done_testing() {
    echo "1..$TAP_N"
    [ "$TAP_FAILED" = 0 ]
}
