#!/bin/bash
# docs/ARCHITECTURE.md is true (issue #35): every source file is named there
# with its one job, and the calls between files (read from the built objects
# with nm) go down the layers it gives, without circles, but for the "Known
# calls back up" it lists, and none of those is stale.  The check itself can
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
sed -e '/^| `src\/pace.c` /d' -e '/`backlog -> cycle: settle_cycle_interval_ms`/d' docs/ARCHITECTURE.md >"$TMP/doc.md"
python3 test/lib/architecture.py --doc "$TMP/doc.md" --objdir "$TMP" >"$TMP/broken.out" 2>&1
rc=$?
[ $rc != 0 ] && grep -q '^src/pace.c: no layer' "$TMP/broken.out" && grep -q '^backlog -> cycle: a call up the layers' "$TMP/broken.out"
ok $? "a file without its row and a call up the layers without its exception are both reported"
sed 's/^/#   /' "$TMP/broken.out" | head -5
# (the section is the page's last: an item appended to the page joins it)
{ cat docs/ARCHITECTURE.md; echo '- `pace -> settle: no_such_symbol`'; } >"$TMP/doc3.md"
python3 test/lib/architecture.py --doc "$TMP/doc3.md" --objdir "$TMP" >"$TMP/stale.out" 2>&1
[ $? != 0 ] && grep -q 'gone: pace -> settle' "$TMP/stale.out"
ok $? "an exception listed for a call that does not exist is reported as stale"
done_testing
