#!/bin/bash
# One source of truth for SQLSTATEs (issue #17, item 5): include/settle_errors.h,
# the tables of docs/ERRORS.md and the codes raised from C (ERRCODE_SETTLE_* in
# src/*.c) and from SQL (ERRCODE = 'SEnnn' in src/sql) must agree. No server needed.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/tap.sh

H=include/settle_errors.h
# NAME CODE for every #define ERRCODE_SETTLE_NAME SE('a','b','c')
defs=$(sed -nE "s/^#define[[:space:]]+(ERRCODE_SETTLE_[A-Z0-9_]+)[[:space:]]+SE\('([0-9A-Z])',[[:space:]]*'([0-9A-Z])',[[:space:]]*'([0-9A-Z])'\).*/\1 SE\2\3\4/p" $H)
header_codes=$(echo "$defs" | awk 'NF { print $2 }' | sort)
header_names=$(echo "$defs" | awk 'NF { print $1 }' | sort)
doc_codes=$(grep -oE '^\| SE[0-9A-Z]{3} \|' docs/ERRORS.md | tr -d '| ' | sort)
sql_codes=$(cat src/sql/*.sql src/sql/releases/*.sql 2>/dev/null \
    | grep -oiE "(ERRCODE|SQLSTATE)[[:space:]]*=?[[:space:]]*'SE[0-9A-Z]{3}'" | grep -oE 'SE[0-9A-Z]{3}' | sort -u)
c_names=$(grep -ohE 'ERRCODE_SETTLE_[A-Z0-9_]+' src/*.c | sort -u)
c_literals=$(grep -ohE "\"SE[0-9]{3}\"" src/*.c | tr -d '"' | sort -u)

# missing LIST-A LIST-B: the lines of A that are not in B
missing() { comm -23 <(echo "$1" | sed '/^$/d' | sort -u) <(echo "$2" | sed '/^$/d' | sort -u) | tr '\n' ' '; }
# check NAME LIST: ok if LIST is empty, else list it
check() {
    if [ -z "${2// /}" ]; then ok 0 "$1"; else ok 1 "$1"; echo "#   $2"; fi
}

[ "$(echo "$header_codes" | grep -c .)" -ge 40 ]
ok $? "$H defines the codes ($(echo "$header_codes" | grep -c .)) and is parsed"
check "$H: no code defined twice" "$(echo "$header_codes" | uniq -d | tr '\n' ' ')"
check "$H: no name defined twice" "$(echo "$header_names" | uniq -d | tr '\n' ' ')"
[ -n "$sql_codes" ]
ok $? "src/sql raises codes of class SE ($(echo "$sql_codes" | grep -c .)) and they are found"
check "every code raised from src/sql is defined in $H" "$(missing "$sql_codes" "$header_codes")"
check "every ERRCODE_SETTLE_* used in src/*.c is defined in $H" "$(missing "$c_names" "$header_names")"
check "every SQLSTATE literal in src/*.c is defined in $H" "$(missing "$c_literals" "$header_codes")"
# a code is raised when C uses its name or SQL raises it
raised=$( { echo "$defs" | while read -r name code; do
               # a here-string, not a pipe: grep -q exits at the first match, and with
               # pipefail the echo it cut short (SIGPIPE) would fail the test at random
               [ -n "$name" ] && grep -qx "$name" <<<"$c_names" && echo "$code"; done
           echo "$sql_codes"; echo "$c_literals"; } | sort -u)
check "every code defined in $H is raised (from C or SQL)" "$(missing "$header_codes" "$raised")"
check "every code defined in $H is documented in docs/ERRORS.md" "$(missing "$header_codes" "$doc_codes")"
check "every code documented in docs/ERRORS.md is defined in $H" "$(missing "$doc_codes" "$header_codes")"
check "docs/ERRORS.md documents no code twice" "$(echo "$doc_codes" | uniq -d | tr '\n' ' ')"
done_testing
