#!/bin/bash
# Builds the libFuzzer target with AddressSanitizer and UBSan and runs it
# for FUZZ_SECONDS (default 20) from the corpus kept in test/fuzz/corpus.
# Prints TAP.  `make fuzz` runs it for 10 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${FUZZ_SECONDS:-20}
OUT=$(mktemp -d /tmp/settle-fuzz.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
CC=$(command -v clang-14 || command -v clang)
if [ -z "$CC" ]; then
    echo "ok 1 - fuzz target builds # SKIP clang is not installed (test/deps.sh)"
    echo "ok 2 - coverage-guided fuzzing # SKIP clang is not installed (test/deps.sh)"
    echo "1..2"
    exit 0
fi

$CC -g -O1 -std=c11 -Iinclude -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    test/fuzz/fuzz_fields.c src/amount.c src/validate.c src/rfc3339.c -o "$OUT/fuzz_fields" 2>"$OUT/build.log"
rc=$?
if [ $rc = 0 ]; then echo "ok 1 - fuzz target builds with ASan and UBSan"; else echo "not ok 1 - fuzz target builds"; cat "$OUT/build.log"; echo "1..1"; exit 1; fi

# new inputs go to a scratch dir; the kept corpus is only read; crash-*,
# leak-* and timeout-* inputs go to $OUT/artifacts (libFuzzer writes them to
# the current directory, the repository, by default) and are kept outside
# the repository when the run fails
mkdir -p "$OUT/new" "$OUT/artifacts"
"$OUT/fuzz_fields" -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -artifact_prefix="$OUT/artifacts/" \
    "$OUT/new" test/fuzz/corpus >"$OUT/fuzz.log" 2>&1
rc=$?
grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$OUT/fuzz.log" | sed 's/^/# /'
if [ $rc = 0 ]; then
    echo "ok 2 - ${SECONDS_TO_RUN}s of coverage-guided fuzzing found no crash, leak or broken contract"
else
    echo "not ok 2 - the fuzzer found a problem"
    tail -40 "$OUT/fuzz.log"
    ls "$OUT"/artifacts/* 2>/dev/null | head -3 | while read -r f; do echo "# input: $(xxd -p "$f" | head -c 200)"; done
    if [ -n "$(ls -A "$OUT/artifacts")" ]; then
        kept=$(mktemp -d /tmp/settle-fuzz-artifacts.XXXXXX)
        mv "$OUT"/artifacts/* "$kept"/
        echo "# inputs kept in $kept"
    fi
fi

# settle-gateway's JSON reader (src/gateway/json.c), the first code every HTTP body meets
$CC -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    test/fuzz/fuzz_json.c src/gateway/json.c -o "$OUT/fuzz_json" 2>"$OUT/build_json.log"
rc2=$?
if [ $rc2 = 0 ]; then echo "ok 3 - gateway JSON fuzz target builds with ASan and UBSan"; else echo "not ok 3 - gateway JSON fuzz target builds"; cat "$OUT/build_json.log"; fi
if [ $rc2 = 0 ]; then
    mkdir -p "$OUT/new_json" "$OUT/artifacts_json"
    "$OUT/fuzz_json" -max_total_time="${FUZZ_JSON_SECONDS:-10}" -print_final_stats=1 -max_len=4096 \
        -artifact_prefix="$OUT/artifacts_json/" "$OUT/new_json" test/fuzz/corpus_json >"$OUT/fuzz_json.log" 2>&1
    rc2=$?
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$OUT/fuzz_json.log" | sed 's/^/# /'
    if [ $rc2 = 0 ]; then
        echo "ok 4 - ${FUZZ_JSON_SECONDS:-10}s of fuzzing the gateway's JSON reader found no crash, leak or broken contract"
    else
        echo "not ok 4 - the fuzzer found a problem in the gateway's JSON reader"
        tail -40 "$OUT/fuzz_json.log"
        ls "$OUT"/artifacts_json/* 2>/dev/null | head -3 | while read -r f; do echo "# input: $(xxd -p "$f" | head -c 200)"; done
    fi
else
    echo "not ok 4 - the gateway JSON fuzz target did not build"
fi
# settle-gateway's ISO 20022 reader (src/gateway/iso_read.c: libxml2, the official schemas) and
# the pacs.002 writer behind it: every XML body of POST /api/v1/iso20022 meets them first
$CC -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Iinclude $(pkg-config --cflags libxml-2.0) test/fuzz/fuzz_iso.c src/gateway/iso_read.c src/gateway/iso_write.c \
    src/gateway/iso_reason.c src/gateway/json.c src/validate.c $(pkg-config --libs libxml-2.0) -o "$OUT/fuzz_iso" 2>"$OUT/build_iso.log"
rc3=$?
if [ $rc3 = 0 ]; then echo "ok 5 - gateway ISO 20022 fuzz target builds with ASan and UBSan"; else echo "not ok 5 - gateway ISO 20022 fuzz target builds"; cat "$OUT/build_iso.log"; fi
if [ $rc3 = 0 ]; then
    mkdir -p "$OUT/new_iso" "$OUT/artifacts_iso"
    "$OUT/fuzz_iso" -max_total_time="${FUZZ_ISO_SECONDS:-10}" -print_final_stats=1 -max_len=16384 \
        -artifact_prefix="$OUT/artifacts_iso/" "$OUT/new_iso" test/fuzz/corpus_iso >"$OUT/fuzz_iso.log" 2>&1
    rc3=$?
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$OUT/fuzz_iso.log" | sed 's/^/# /'
    if [ $rc3 = 0 ]; then
        echo "ok 6 - ${FUZZ_ISO_SECONDS:-10}s of fuzzing the gateway's ISO 20022 reader found no crash, leak or broken contract"
    else
        echo "not ok 6 - the fuzzer found a problem in the gateway's ISO 20022 reader"
        tail -40 "$OUT/fuzz_iso.log"
        ls "$OUT"/artifacts_iso/* 2>/dev/null | head -3 | while read -r f; do echo "# input: $(xxd -p "$f" | head -c 200)"; done
    fi
else
    echo "not ok 6 - the gateway ISO 20022 fuzz target did not build"
fi
echo "1..6"
[ $rc = 0 ] && [ $rc2 = 0 ] && [ $rc3 = 0 ]
