#!/bin/bash
# docs/ARCHITECTURE.md is true (issue #35): every source file is named there
# with its one job, and the calls between files (read from the built objects
# with nm) go down the layers it gives, without circles, but for the "Known
# calls back up" it lists, and none of those is stale; every symbol settle.so
# exports carries the settle_ prefix and no C file is over 900 lines, but for
# those the page lists as still to be done.  The check itself can
# fail: a file left out of a copy of the page, and an exception dropped from
# it, are both reported.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/scratch.sh
. test/lib/tap.sh

scratch architecture
export PATH="$PGBIN:$PATH"    # pg_config of the PostgreSQL under test

python3 test/lib/architecture.py --objdir "$TMP" >"$TMP/check.out" 2>&1
ok $? "docs/ARCHITECTURE.md names every source file, and the calls between files follow its layers ($(tail -1 "$TMP/check.out" | sed 's/^# //'))"
grep -v '^#' "$TMP/check.out" | head -20 | sed 's/^/#   /'

# the check can fail
# (a copy of the page without pace.c's row, and with spi_util.c moved up to layer 4: the
# cycle's calls into it then go up)
sed -e '/^| `src\/pace.c` /d' -e 's/^| `src\/spi_util.c` | 1 |/| `src\/spi_util.c` | 4 |/' docs/ARCHITECTURE.md >"$TMP/doc.md"
python3 test/lib/architecture.py --doc "$TMP/doc.md" --objdir "$TMP" >"$TMP/broken.out" 2>&1
rc=$?
[ $rc != 0 ] && grep -q '^src/pace.c: no layer' "$TMP/broken.out" && grep -q '^cycle -> spi_util: a call up the layers' "$TMP/broken.out"
ok $? "a file without its row and a call up the layers are both reported"
sed 's/^/#   /' "$TMP/broken.out" | head -5
# (the section is the page's last: an item appended to the page joins it)
{ cat docs/ARCHITECTURE.md; echo '- `pace -> settle: no_such_symbol`'; } >"$TMP/doc3.md"
python3 test/lib/architecture.py --doc "$TMP/doc3.md" --objdir "$TMP" >"$TMP/stale.out" 2>&1
[ $? != 0 ] && grep -q 'gone: pace -> settle' "$TMP/stale.out"
ok $? "an exception listed for a call that does not exist is reported as stale"
# a symbol exported without the prefix and a file over 900 lines, not listed: both reported
# (a library that exports planted_symbol, and a tree whose src/gateway/planted.c has 901 lines)
echo 'int planted_symbol(void) { return 1; }' >"$TMP/planted.c"
cc -shared -fPIC -o "$TMP/planted.so" "$TMP/planted.c"
mkdir -p "$TMP/tree/src/gateway"
seq 1 901 | sed 's|^|/* line |; s|$| */|' >"$TMP/tree/src/gateway/planted.c"
python3 test/lib/architecture.py --objdir "$TMP" --so "$TMP/planted.so" --size-root "$TMP/tree" >"$TMP/names.out" 2>&1
[ $? != 0 ] && grep -q '^planted_symbol: exported by .* without the settle_ prefix' "$TMP/names.out" &&
    grep -q '^src/gateway/planted.c: 901 lines, over 900' "$TMP/names.out" && [ "$(grep -vc '^#' "$TMP/names.out")" = 2 ]
ok $? "an unprefixed exported symbol and a file over 900 lines are reported unless listed"
sed 's/^/#   /' "$TMP/names.out" | head -3
done_testing
