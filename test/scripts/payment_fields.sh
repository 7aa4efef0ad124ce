#!/bin/bash
# One place per payment field (issue #35, item 4): include/payment_fields.h is
# the table intake, settle_submit_bulk and the gateway are built from; this
# checks the SQL against it.  For each release (1.0, 1.1 and this one):
# settle_submit's parameters are the table's fields of that release, in its
# order, with its types and defaults; settle_submit_bulk takes exactly those
# keys; every field the insert writes is a column of settle.payment; the
# gateway's documented body (docs/openapi.json) has this release's fields; and
# the gateway's ISO 20022 mapping writes no key outside the table.  The
# check can fail: a copy of the table with a field the SQL lacks is reported.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch payment_fields
scratch_ports P 55710
scratch_cluster "$TMP/db"
cluster_init "$TMP/db" "$P" "settle.worker_enabled = off" || exit 1
cluster_start "$TMP/db" || exit 1
Q_PORT=$P

# the table as text, one field a line: name|sql_type|since|sql_default|stored
# (HEADER: the header to read, include/payment_fields.h or a copy of it)
fields_of() {
    cat >"$TMP/fields.c" <<'EOF'
#include <stdio.h>
#include FIELDS_HEADER
#define ROW(name, sql_type, kind, since, content, sql_default, stored) \
    printf("%s|%s|%d|%s|%s\n", #name, sql_type, since, sql_default ? sql_default : "", stored);
int main(void) { SETTLE_PAYMENT_FIELDS(ROW) return 0; }
EOF
    cc -std=c11 -Wall -Werror -DFIELDS_HEADER="\"$(realpath "$1")\"" -o "$TMP/fields" "$TMP/fields.c" &&
        "$TMP/fields"
}
fields_of include/payment_fields.h >"$TMP/fields.txt"
ok $? "include/payment_fields.h compiles alone and lists $(wc -l <"$TMP/fields.txt") fields"

# what settle_submit's IN parameters must be in release R (major * 100 + minor),
# as pg_get_function_arguments prints them
expected_args() {
    awk -F'|' -v r="$2" '$3 <= r {
        d = $4 == "" ? "" : " DEFAULT " ($4 == "NULL" ? "NULL::" $2 : $4)
        print $1 " " $2 d }' "$1"
}
# settle_submit's IN parameters in database $1, one a line
actual_args() {
    Q_DB=$1 q "SELECT pg_get_function_arguments(p.oid) FROM pg_proc p
                WHERE p.proname = 'settle_submit' AND p.pronamespace = 'public'::regnamespace" |
        sed 's/, /\n/g' | grep -v '^OUT '
}

CURRENT=$(sed -n "s/^default_version = '\(.*\)'/\1/p" settle.control)
for v in 1.0 1.1 "$CURRENT"; do
    db="f_$(echo "$v" | tr . _)"
    r=$(echo "$v" | awk -F. '{ print $1 * 100 + $2 }')
    q "CREATE DATABASE $db" >/dev/null
    Q_DB=$db q "CREATE EXTENSION settle VERSION '$v'" >/dev/null
    ok $? "settle $v installed"

    diff <(expected_args "$TMP/fields.txt" "$r") <(actual_args "$db") >"$TMP/args.diff"
    ok $? "$v: settle_submit's parameters are the table's fields of $v, in order, with their types and defaults" ||
        sed 's/^/#   /' "$TMP/args.diff"

    # every key of the table is read by settle_submit_bulk (not an unknown key),
    # the keys of a later release are unknown here, and so is any other
    bad=""
    while IFS='|' read -r name _ since _; do
        got=$(Q_DB=$db q "SELECT message FROM settle_submit_bulk('[{\"$name\": null}]')")
        if [ "$since" -le "$r" ]; then
            case "$got" in "unknown key"*) bad="$bad $name(refused)" ;; esac
        else
            [ "$got" = "unknown key \"$name\"" ] || bad="$bad $name(taken: $got)"
        fi
    done <"$TMP/fields.txt"
    got=$(Q_DB=$db q "SELECT message FROM settle_submit_bulk('[{\"colour\": null}]')")
    [ "$got" = 'unknown key "colour"' ] || bad="$bad colour(taken: $got)"
    is "$bad" "" "$v: settle_submit_bulk's keys are the table's fields of $v, and no other"
done

# every field the insert writes (stored as "p.NAME") is a column of settle.payment
missing=""
while IFS='|' read -r name _ _ _ stored; do
    [ "$stored" = "p.$name" ] || continue
    [ "$(Q_DB=f_$(echo "$CURRENT" | tr . _) q "SELECT count(*) FROM pg_attribute
            WHERE attrelid = 'settle.payment'::regclass AND attname = '$name' AND NOT attisdropped")" = 1 ] ||
        missing="$missing $name"
done <"$TMP/fields.txt"
is "$missing" "" "every field stored as a column of settle.payment has its column"

# the gateway's documented body (docs/openapi.json, schema Payment): the fields of
# this release, the required ones those without a default
python3 - "$TMP/fields.txt" "$(echo "$CURRENT" | awk -F. '{ print $1 * 100 + $2 }')" >"$TMP/openapi.out" 2>&1 <<'PY'
import json, sys
rows = [l.rstrip('\n').split('|') for l in open(sys.argv[1])]
rows = [r for r in rows if int(r[2]) <= int(sys.argv[2])]
p = json.load(open('docs/openapi.json'))['components']['schemas']['Payment']
bad = []
if set(p['properties']) != {r[0] for r in rows}:
    bad.append('properties %s, fields %s' % (sorted(p['properties']), sorted(r[0] for r in rows)))
if set(p.get('required', [])) != {r[0] for r in rows if r[3] == ''}:
    bad.append('required %s' % sorted(p.get('required', [])))
print('\n'.join(bad))
sys.exit(1 if bad else 0)
PY
ok $? "docs/openapi.json's Payment has the fields of $CURRENT as properties, required those without a default" ||
    sed 's/^/#   /' "$TMP/openapi.out"

# the payments the gateway writes itself (ISO 20022 messages mapped onto
# settle_submit_bulk's keys, src/gateway/iso_read.c) use keys of the table only
iso_keys=$(grep -oE 'buf_(puts|printf)\(&b, "[{,]?\\"[a-z_]+\\":' src/gateway/iso_read.c |
    sed -E 's/.*\\"([a-z_]+)\\":$/\1/' | sort -u)
unknown=$(comm -23 <(echo "$iso_keys") <(cut -d'|' -f1 "$TMP/fields.txt" | sort -u) | tr '\n' ' ')
[ "$(echo "$iso_keys" | grep -c .)" -ge 8 ] && [ -z "$unknown" ]
ok $? "the ISO 20022 mapping writes only keys of the table ($(echo "$iso_keys" | grep -c .) keys)" ||
    echo "#   not in the table: $unknown"

# the check can fail: a field added to a copy of the table, not to the SQL
sed 's|^\(\t/\* the earliest settlement time.*\)$|\tX(colour, "text", TEXT, 102, 1, "NULL", "p.colour") \\\n\1|' \
    include/payment_fields.h >"$TMP/payment_fields.h"
fields_of "$TMP/payment_fields.h" >"$TMP/fields2.txt"
diff <(expected_args "$TMP/fields2.txt" 102) <(actual_args "f_$(echo "$CURRENT" | tr . _)") >"$TMP/args2.diff"
[ $? != 0 ] && grep -q '^< colour text DEFAULT NULL::text' "$TMP/args2.diff"
ok $? "a field in the table but not in settle_submit is reported"
sed 's/^/#   /' "$TMP/args2.diff" | head -4

done_testing
