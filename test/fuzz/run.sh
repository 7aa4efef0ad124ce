#!/bin/bash
# Builds each libFuzzer target with AddressSanitizer and UBSan and runs it from its corpus
# (test/fuzz/corpus*): intake's field checks for FUZZ_SECONDS (default 20), the gateway's JSON
# and ISO 20022 readers for FUZZ_JSON_SECONDS and FUZZ_ISO_SECONDS (10 each). Prints TAP, two
# tests per target. `make fuzz` runs them for 10 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=$(mktemp -d /tmp/settle-fuzz.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
CC=$(command -v clang-14 || command -v clang)
N=0
FAILED=0

# fuzz NAME SECONDS MAX_LEN CORPUS WHAT -- SOURCES AND FLAGS...: build, run, two TAP lines.
# New inputs go to a scratch dir (the kept corpus is only read); crash-*, leak-* and timeout-*
# inputs go to an artifacts dir (libFuzzer writes them to the current directory, the
# repository, by default) and are kept outside the repository when the run fails.
fuzz() {
    local name=$1 secs=$2 maxlen=$3 corpus=$4 what=$5 kept
    shift 6
    if [ -z "$CC" ]; then
        echo "ok $((N + 1)) - $what: target builds # SKIP clang is not installed (test/deps.sh)"
        echo "ok $((N + 2)) - $what: coverage-guided fuzzing # SKIP clang is not installed (test/deps.sh)"
        N=$((N + 2)); return 0
    fi
    N=$((N + 1))
    if ! $CC -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            "$@" -o "$OUT/$name" 2>"$OUT/build_$name.log"; then
        echo "not ok $N - $what: target builds with ASan and UBSan"; cat "$OUT/build_$name.log"
        N=$((N + 1)); echo "not ok $N - $what: the target did not build"; FAILED=1; return 1
    fi
    echo "ok $N - $what: target builds with ASan and UBSan"
    N=$((N + 1))
    mkdir -p "$OUT/new_$name" "$OUT/artifacts_$name"
    "$OUT/$name" -max_total_time="$secs" -print_final_stats=1 ${maxlen:+-max_len=$maxlen} \
        -artifact_prefix="$OUT/artifacts_$name/" "$OUT/new_$name" "$corpus" >"$OUT/$name.log" 2>&1
    local rc=$?
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$OUT/$name.log" | sed 's/^/# /'
    if [ $rc = 0 ]; then
        echo "ok $N - $what: ${secs}s of coverage-guided fuzzing found no crash, leak or broken contract"
        return 0
    fi
    echo "not ok $N - $what: the fuzzer found a problem"
    FAILED=1
    tail -40 "$OUT/$name.log"
    ls "$OUT/artifacts_$name"/* 2>/dev/null | head -3 | while read -r f; do echo "# input: $(xxd -p "$f" | head -c 200)"; done
    if [ -n "$(ls -A "$OUT/artifacts_$name")" ]; then
        kept=$(mktemp -d /tmp/settle-fuzz-artifacts.XXXXXX)
        mv "$OUT/artifacts_$name"/* "$kept"/
        echo "# inputs kept in $kept"
    fi
    return 1
}

# intake's field checks (amounts, identifiers, RFC 3339 times)
fuzz fuzz_fields "${FUZZ_SECONDS:-20}" "" test/fuzz/corpus "intake's field checks" -- \
    -Iinclude test/fuzz/fuzz_fields.c src/amount.c src/validate.c src/rfc3339.c
# settle-gateway's JSON reader (src/gateway/json.c), the first code every HTTP body meets
fuzz fuzz_json "${FUZZ_JSON_SECONDS:-10}" 4096 test/fuzz/corpus_json "the gateway's JSON reader" -- \
    -D_GNU_SOURCE test/fuzz/fuzz_json.c src/gateway/json.c
# settle-gateway's ISO 20022 reader (src/gateway/iso_read.c: libxml2, the official schemas) and
# the pacs.002 writer behind it: every XML body of POST /api/v1/iso20022 meets them first
fuzz fuzz_iso "${FUZZ_ISO_SECONDS:-10}" 16384 test/fuzz/corpus_iso "the gateway's ISO 20022 reader" -- \
    -Iinclude $(pkg-config --cflags libxml-2.0) test/fuzz/fuzz_iso.c src/gateway/iso_read.c src/gateway/iso_write.c \
    src/gateway/iso_reason.c src/gateway/json.c src/validate.c $(pkg-config --libs libxml-2.0)
echo "1..$N"
exit $FAILED
