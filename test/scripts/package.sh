#!/bin/bash
# The Debian package (debian/, docs/OPERATIONS.md "Debian package"):
#   - a copy of the source tree builds postgresql-15-settle with
#     dpkg-buildpackage (pg_buildext), and a source package with dpkg-source
#     (3.0 (quilt), no patches); a debian/changelog that contradicts
#     settle.control's default_version stops the build;
#   - the .deb holds the library in /usr/lib/postgresql/15/lib, settle.control
#     and the install script in /usr/share/postgresql/15/extension, the docs,
#     and nothing else (no test files); its control fields are right;
#   - installed, a throwaway server loads the package's files: CREATE
#     EXTENSION settle, a payment, a cycle, settle_verify() clean;
#   - the package's /usr/bin/settle-verify-statement, run from where the
#     package put it, verifies a statement and a consistency proof of that
#     server and rejects a tampered one.
# Installing: with CI=true or SETTLE_PKG_INSTALL=1 (as root), dpkg -i into the
# system, then removed again and the files it replaced put back.  Otherwise
# (a developer machine, where `make install` owns the same files) the .deb is
# extracted into a private, relocated copy of PostgreSQL 15 (bin/, lib/ and
# share/ under one root: PostgreSQL finds lib/ and share/ relative to its
# bin/), and the server is started from there.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh

PGMAJOR=15
PKG=postgresql-$PGMAJOR-settle
EXTVERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" settle.control)
TOP=$PWD

TMP=$(mktemp -d /tmp/settle-package.XXXXXX)
chmod 755 "$TMP"
DPKG_INSTALLED=
cleanup() {
    cluster_stop "$TMP/cluster" immediate
    if [ -n "$DPKG_INSTALLED" ]; then
        dpkg -r "$PKG" >/dev/null 2>&1
        # put back what dpkg -i replaced (a `make install` of this tree)
        while read -r f; do
            [ -e "$TMP/replaced$f" ] && cp -a "$TMP/replaced$f" "$f"
        done <"$TMP/files"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

bail() { echo "# $1"; done_testing; exit 1; }

for tool in dpkg-buildpackage dh pg_buildext dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1
    ok $? "$tool is installed (test/deps.sh)" || bail "install the Debian build tools: bash test/deps.sh"
done

# 1. a copy of the source tree, without build products
SRC=$TMP/build/settle
mkdir -p "$SRC"
tar -cf - --exclude=./.git --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
    --exclude=./results --exclude='./regression.*' --exclude='./settle--*.sql' \
    --exclude=./test/isolation/output_iso . | tar -xf - -C "$SRC"
ok $? "copied the source tree" || bail "copy failed"

# 2. the package version follows settle.control
changelog_version=$(cd "$SRC" && dpkg-parsechangelog -S Version)
if (cd "$SRC" && make -s -f debian/rules check-version) >/dev/null 2>&1; then
    ok 0 "debian/changelog ($changelog_version) matches settle.control ($EXTVERSION)"
    (cd "$SRC" && make -s -f debian/rules check-version DEB_VERSION_UPSTREAM=0.0.0) >"$TMP/mismatch.log" 2>&1
    ! [ $? = 0 ] && grep -q "but settle.control's default_version is '$EXTVERSION'" "$TMP/mismatch.log"
    ok $? "a changelog version that contradicts settle.control stops the build"
else
    # before the release: debian/changelog already names the release, so the
    # real build must refuse; the test then builds a snapshot of this version
    (cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$TMP/mismatch.log" 2>&1
    rc=$?
    [ $rc != 0 ] && grep -q "debian/changelog is version .* but settle.control's default_version is '$EXTVERSION'" "$TMP/mismatch.log"
    ok $? "debian/changelog ($changelog_version) contradicts settle.control ($EXTVERSION): the build refuses" \
        || tail -20 "$TMP/mismatch.log"
    sed -i "1s/^settle ([^)]*) [^;]*;/settle ($EXTVERSION.0~test-1) UNRELEASED;/" "$SRC/debian/changelog"
    echo "# building a snapshot, $EXTVERSION.0~test-1"
fi
DEBVERSION=$(cd "$SRC" && dpkg-parsechangelog -S Version)

# a source package too (3.0 (quilt): the upstream tarball, no patches)
UPSTREAM=${DEBVERSION%-*}
(cd "$SRC" && tar -czf "../settle_$UPSTREAM.orig.tar.gz" --exclude=./debian --transform "s,^\.,settle-$UPSTREAM," .) \
    && (cd "$TMP/build" && dpkg-source -b settle) >"$TMP/source.log" 2>&1 \
    && [ -f "$TMP/build/settle_$DEBVERSION.dsc" ] && ! [ -e "$SRC/debian/patches" ]
ok $? "dpkg-source -b builds the source package settle_$DEBVERSION.dsc" || cat "$TMP/source.log"

# 3. build
start=$(date +%s)
(cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1
rc=$?
ok $rc "dpkg-buildpackage -us -uc -b builds $PKG $DEBVERSION ($(( $(date +%s) - start )) s)" \
    || { tail -40 "$TMP/build.log"; bail "build failed"; }
DEB=$(ls "$TMP/build/${PKG}_${DEBVERSION}_"*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] && [ -f "$DEB" ]
ok $? "the .deb is there: $(basename "${DEB:-none}")" || bail "no .deb"
! grep -qE "^dpkg-(gencontrol|shlibdeps): warning" "$TMP/build.log"
ok $? "no dpkg-gencontrol or dpkg-shlibdeps warnings" || grep -E "^dpkg-(gencontrol|shlibdeps): warning" "$TMP/build.log"

# 4. contents and control fields
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./|/|' | sort >"$TMP/files"
sed 's/^/#   /' "$TMP/files"
LIBDIR=/usr/lib/postgresql/$PGMAJOR/lib
EXTDIR=/usr/share/postgresql/$PGMAJOR/extension
DOCDIR=/usr/share/doc/$PKG
grep -qx "$LIBDIR/settle.so" "$TMP/files"
ok $? "the library: $LIBDIR/settle.so"
grep -qx "$EXTDIR/settle.control" "$TMP/files"
ok $? "the control file: $EXTDIR/settle.control"
grep -qx "$EXTDIR/settle--$EXTVERSION.sql" "$TMP/files"
ok $? "the install script of $EXTVERSION: $EXTDIR/settle--$EXTVERSION.sql"
BINDIR=/usr/lib/postgresql/$PGMAJOR/bin
grep -qx "$BINDIR/settle-gateway" "$TMP/files"
ok $? "the REST gateway: $BINDIR/settle-gateway"
VERIFIER=/usr/bin/settle-verify-statement
grep -qx "$VERIFIER" "$TMP/files"
ok $? "the offline statement verifier: $VERIFIER"
dpkg-deb -c "$DEB" | awk -v f=".$VERIFIER" '$6 == f {print $1}' | grep -qx -- '-rwxr-xr-x'
ok $? "  ... executable"
XSDDIR=/usr/share/postgresql/$PGMAJOR/settle_iso20022
for f in pacs.008.001.08 pacs.009.001.08 pacs.002.001.10 head.001.001.02; do
    grep -qx "$XSDDIR/$f.xsd" "$TMP/files"
    ok $? "the gateway's ISO 20022 schema $XSDDIR/$f.xsd"
done
stray=$(grep -vE "^($VERIFIER|$BINDIR/settle-gateway|$LIBDIR/settle\.so|$EXTDIR/settle\.control|$EXTDIR/settle--[0-9][0-9.]*(--[0-9][0-9.]*)?\.sql|$XSDDIR/[a-z]{4}\.[0-9]{3}\.[0-9]{3}\.[0-9]{2}\.xsd|$DOCDIR/[^/]+)$" "$TMP/files")
is "$stray" "" "nothing else: no test files, no bitcode, no headers"
is "$(grep -ciE 'test|regress|expected|isolation|\.spec$|\.out$' "$TMP/files")" "0" "no file named like a test"
for f in copyright changelog.Debian.gz README.md.gz; do
    grep -qx "$DOCDIR/$f" "$TMP/files"
    ok $? "docs: $DOCDIR/$f"
done
is "$(dpkg-deb -f "$DEB" Package)" "$PKG" "Package: $PKG"
is "$(dpkg-deb -f "$DEB" Version)" "$DEBVERSION" "Version: $DEBVERSION"
depends=$(dpkg-deb -f "$DEB" Depends)
echo "# Depends: $depends"
echo "$depends" | grep -qE "(^|, )postgresql-$PGMAJOR(,|$)" && echo "$depends" | grep -qE "(^|, )libglpk40( |,|$)"
ok $? "Depends: postgresql-$PGMAJOR, libglpk40"
echo "$depends" | grep -qE "(^|, )python3( |,|$)"
ok $? "Depends: python3 (the verifier)"
is "$(dpkg-deb -f "$DEB" Recommends)" "postgresql-$PGMAJOR-cron" "Recommends: postgresql-$PGMAJOR-cron"
mkdir -p "$TMP/deb"
dpkg-deb -x "$DEB" "$TMP/deb"
cmp -s "$TMP/deb$EXTDIR/settle.control" settle.control
ok $? "the packaged settle.control is this tree's"
cmp -s "$TMP/deb$VERIFIER" tools/settle-verify-statement
ok $? "the packaged verifier is this tree's tools/settle-verify-statement"
if [ -f "src/sql/releases/settle--$EXTVERSION.sql" ]; then
    cmp -s "$TMP/deb$EXTDIR/settle--$EXTVERSION.sql" "src/sql/releases/settle--$EXTVERSION.sql"
else
    cat $(ls src/sql/*.sql | sort) | cmp -s "$TMP/deb$EXTDIR/settle--$EXTVERSION.sql" -
fi
ok $? "the packaged install script is this tree's"
objdump -p "$TMP/deb$LIBDIR/settle.so" 2>/dev/null | grep -q 'NEEDED.*libglpk'
ok $? "the library links libglpk"

# 5. install
if [ "${CI:-}" = true ] || [ "${SETTLE_PKG_INSTALL:-}" = 1 ]; then
    [ "$(id -u)" = 0 ]
    ok $? "running as root, for dpkg -i" || bail "run as root, or without CI=true / SETTLE_PKG_INSTALL=1"
    if ! dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "install ok installed"; then
        # keep what the package replaces (a `make install`), to put it back
        while read -r f; do
            [ -e "$f" ] && mkdir -p "$TMP/replaced$(dirname "$f")" && cp -a "$f" "$TMP/replaced$f"
        done <"$TMP/files"
        DPKG_INSTALLED=1
    fi
    dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1
    ok $? "dpkg -i $(basename "$DEB")" || { cat "$TMP/dpkg.log"; bail "dpkg -i failed"; }
    dpkg-query -W -f='${Status} ${Version}' "$PKG" | grep -qx "install ok installed $DEBVERSION"
    ok $? "dpkg says $PKG $DEBVERSION is installed"
    ROOT=
    PGBIN=/usr/lib/postgresql/$PGMAJOR/bin
    echo "# installed with dpkg -i (CI=${CI:-}, SETTLE_PKG_INSTALL=${SETTLE_PKG_INSTALL:-})"
else
    # a private PostgreSQL: bin/, lib/ and share/ copied under one root, with
    # the package's files extracted over it (and no `make install` of settle)
    ROOT=$TMP/root
    mkdir -p "$ROOT/usr/lib/postgresql" "$ROOT/usr/share/postgresql"
    cp -a "/usr/lib/postgresql/$PGMAJOR" "$ROOT/usr/lib/postgresql/" \
        && cp -a "/usr/share/postgresql/$PGMAJOR" "$ROOT/usr/share/postgresql/" \
        && rm -f "$ROOT$LIBDIR/settle.so" "$ROOT$EXTDIR"/settle.control "$ROOT$EXTDIR"/settle--*.sql \
        && rm -rf "$ROOT$LIBDIR/bitcode/settle" "$ROOT$LIBDIR/bitcode/settle.index.bc" \
        && dpkg-deb -x "$DEB" "$ROOT"
    ok $? "extracted the package into a relocated copy of PostgreSQL $PGMAJOR (dpkg -i: CI=true or SETTLE_PKG_INSTALL=1)"
    PGBIN=$ROOT/usr/lib/postgresql/$PGMAJOR/bin
fi
cmp -s "$ROOT$LIBDIR/settle.so" "$TMP/deb$LIBDIR/settle.so" \
    && cmp -s "$ROOT$EXTDIR/settle--$EXTVERSION.sql" "$TMP/deb$EXTDIR/settle--$EXTVERSION.sql"
ok $? "$ROOT$LIBDIR/settle.so and the install script are the package's"

# 6. a throwaway server with the package's files
PORT=$(free_port 55590)
cluster_init "$TMP/cluster" "$PORT" "settle.worker_enabled = off" || bail "initdb failed"
cluster_start "$TMP/cluster"
ok $? "a server from $PGBIN starts with settle preloaded" || bail "server did not start"
Q_PORT=$PORT    # q SQL: test/lib/cluster.sh
is "$(q "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")" "$ROOT/usr/share/postgresql/$PGMAJOR" \
   "the server's share/ is $ROOT/usr/share/postgresql/$PGMAJOR"
pm=$(head -1 "$TMP/cluster/data/postmaster.pid")
grep -o '/[^ ]*/settle\.so$' "/proc/$pm/maps" 2>/dev/null | sort -u >"$TMP/maps"
is "$(cat "$TMP/maps")" "$ROOT$LIBDIR/settle.so" "the postmaster loaded $ROOT$LIBDIR/settle.so"
q "CREATE EXTENSION settle" >"$TMP/create.log" 2>&1
ok $? "CREATE EXTENSION settle" || cat "$TMP/create.log"
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'settle'")" "$EXTVERSION" "extension version $EXTVERSION"
q "SELECT settle_create_participant(p) FROM unnest(ARRAY['pk_a','pk_b']) p" >/dev/null \
  && q "SELECT settle_create_account(p || '_usd', p, 'USD', opening_balance => 100) FROM unnest(ARRAY['pk_a','pk_b']) p" >/dev/null
ok $? "participants and accounts"
is "$(q "SELECT status FROM settle_submit('pk1', 5, 'USD', 'USD', 'pk_a_usd', 'pk_b_usd', 'pk_b', 'pkk1')")" "queued" "a payment is queued"
is "$(q "SELECT settled FROM settle_run_cycle()")" "1" "a cycle settles it"
is "$(q "SELECT count(*) FROM settle_verify()")" "0" "settle_verify() is clean"

# 7. the offline verifier as installed (dpkg -i: /usr/bin; else the extracted
# copy), run by its own #! line: a statement, a consistency proof between the
# tree before and after a second payment, a tampered proof
PV=$ROOT$VERIFIER
[ -x "$PV" ] && cmp -s "$PV" "$TMP/deb$VERIFIER"
ok $? "$PV is the package's, executable"
q "SELECT settle_chain_digest()" >"$TMP/digest1.json"
size1=$(q "SELECT settle._merkle_size()")
is "$(q "SELECT status FROM settle_submit('pk2', 7, 'USD', 'USD', 'pk_b_usd', 'pk_a_usd', 'pk_a', 'pkk2')")" "queued" "a second payment"
q "SELECT settle_run_cycle()" >/dev/null
q "SELECT settle_chain_digest()" >"$TMP/digest2.json"
q "SELECT settle_statement('pk_a', '-infinity', 'infinity')" >"$TMP/statement.json"
"$PV" "$TMP/statement.json" "$TMP/digest2.json" >"$TMP/pv.out" 2>&1
ok $? "the installed verifier verifies pk_a's statement" || cat "$TMP/pv.out"
q "SELECT settle_consistency_proof($size1)" >"$TMP/proof.json"
"$PV" --consistency "$TMP/proof.json" "$TMP/digest1.json" "$TMP/digest2.json" >"$TMP/pv.out" 2>&1 \
    && grep -q "^VERIFIED: the tree of [0-9]* leaves .* extends the tree of $size1 leaves" "$TMP/pv.out"
ok $? "the installed verifier verifies the consistency proof from $size1 leaves" || cat "$TMP/pv.out"
python3 -c "
import json,sys; p=json.load(open(sys.argv[1])); x=p['proof'][-1]
p['proof'][-1] = ('0' if x[0] != '0' else '1') + x[1:]; json.dump(p, open(sys.argv[2], 'w'))" "$TMP/proof.json" "$TMP/proof_t.json"
"$PV" --consistency "$TMP/proof_t.json" "$TMP/digest1.json" "$TMP/digest2.json" >"$TMP/pv.out" 2>&1
is "$?" "1" "the installed verifier rejects a tampered consistency proof (exit 1)"

done_testing
