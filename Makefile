# settle -- PGXS build for PostgreSQL 15.
#
#   make run    install what is missing, build, start a throwaway server, run the demo
#   make test   install what is missing, build, run every test suite
#   make bench  benchmarks (docs/BENCHMARKS.md); make bench-production: the production shape alone

EXTENSION   = settle
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" settle.control)
MODULE_big  = settle
OBJS        = $(patsubst %.c,%.o,$(wildcard src/*.c))
# Releases (docs/OPERATIONS.md, "Upgrades"): src/sql/releases/ holds the
# frozen install script of every released version and the upgrade scripts
# between them (settle--1.0.sql, settle--1.0--1.1.sql, ...).  The version in
# development, default_version until it is released, is assembled from
# src/sql/*.sql; once released its script is frozen in src/sql/releases/.
DATA        = $(wildcard src/sql/releases/settle--*.sql)
# Older releases whose SQL objects this release's library still runs (comma-
# separated): their databases keep working until ALTER EXTENSION settle
# UPDATE, and test/scripts/upgrade.sh loads data into them before updating.
COMPATIBLE_SQL = 1.0,1.1
ifeq ($(wildcard src/sql/releases/settle--$(EXTVERSION).sql),)
DATA_built  = settle--$(EXTVERSION).sql
endif
# The upgrade into the version in development is built, never copied by hand:
# its table changes, written in src/sql/updates/FROM--$(EXTVERSION).sql, then
# every re-runnable statement of src/sql/*.sql (functions, views, comments,
# grants; tools/sql-upgrade.pl).  A released upgrade is frozen in
# src/sql/releases/ like the install script.
UPGRADE_built = $(foreach u,$(notdir $(wildcard src/sql/updates/*--$(EXTVERSION).sql)),\
                  $(if $(wildcard src/sql/releases/settle--$(u)),,settle--$(u)))
DATA_built += $(strip $(UPGRADE_built))
EXTRA_CLEAN = settle--$(EXTVERSION).sql $(UPGRADE_built) results regression.diffs regression.out \
              test/isolation/output_iso

PG_CPPFLAGS = -std=c11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
              -Wno-missing-field-initializers -Werror -Iinclude \
              -DSETTLE_VERSION='"$(EXTVERSION)"' -DSETTLE_COMPATIBLE_SQL='"$(COMPATIBLE_SQL)"'
SHLIB_LINK  = -lglpk -lm

# settle-gateway, the REST gateway (docs/GATEWAY.md): a program, installed
# into $(bindir) with the server's programs.
GATEWAY      = src/gateway/settle-gateway
SCRIPTS_built = $(GATEWAY)
# validate.c: the identifier rules, the same C as intake's (a GET's transaction_id)
GATEWAY_SRCS = $(wildcard src/gateway/*.c) src/validate.c
EXTRA_CLEAN += $(GATEWAY)

# pg_regress: sql/NAME.sql against expected/NAME.out, in this order.
REGRESS      = intake_reference intake_submit intake_replay intake_bulk cycle hostile_input security rail
REGRESS_OPTS = --load-extension=settle
# ledger audit (issue: ledger integrity)
REGRESS     += audit_ledger
# every field of every chained row, changed: settle_verify() reports it (issue #34)
REGRESS     += chain_tamper
# observability
REGRESS     += metrics
# settings: contexts, units, checks (issue: security round 2)
REGRESS     += settings
# settlement semantics (issue #16)
REGRESS     += fx_exact semantics two_phase cycle_range returns links links_maximal random_load
# limits at their boundary, one minor unit over (issue #17, item 9)
REGRESS     += limit_boundary
# one reading of timestamps and identifiers whatever the session settings (issue #26)
REGRESS     += intake_timestamps
# archiving events, cycles and seal runs (issue #15)
REGRESS     += archive
# a participant's treasurer: funding advice, statements, liquidity forecast (issue #21)
REGRESS     += funding_advice treasury
# the netting-only baseline next to FIFO gross and naive batching (issue #20)
REGRESS     += netting_baseline
# catalog documentation: comments on every public function, view and column
REGRESS     += catalog
# the statement tree checked, consistency proofs (issue #29)
REGRESS     += statement_tree
# what a participant controls: limits, reservations, its queue (issue #33)
REGRESS     += controls_limits controls_queue controls_random controls_alerts controls_timed controls_replay

# pg_isolation_regress: test/isolation/specs/NAME.spec.
ISOLATION      = intake_concurrent cycle_concurrent rail_race cycle_lock ack_race controls_concurrent
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso \
                 --load-extension=settle

PG_CONFIG ?= $(shell test -x /usr/lib/postgresql/15/bin/pg_config && \
               echo /usr/lib/postgresql/15/bin/pg_config || echo pg_config)
# No JIT bitcode: clang need not be installed.
override with_llvm = no
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(PGXS),)
# Not installed yet: plain `make` only builds, so it says what is missing
# instead of installing packages; make run, test and bench install them.
.DEFAULT_GOAL := all
all install:
	@echo "PostgreSQL 15's server development files are missing (pg_config --pgxs):" \
	      "run 'make deps' as root, or 'make run' / 'make test', which install them" >&2
	@exit 1
else
include $(PGXS)
endif

# Every object depends on every header (PGXS tracks no header dependencies).
$(OBJS): $(wildcard include/*.h) $(wildcard src/*.h) settle.control

# -Werror like the extension; libpq from this PostgreSQL's pg_config; libxml2
# for ISO 20022 (docs/ISO20022.md), whose schemas are installed beside the
# extension's files and found there by default.
ISO_XSD_DIR = $(shell $(PG_CONFIG) --sharedir)/settle_iso20022
$(GATEWAY): $(GATEWAY_SRCS) $(wildcard src/gateway/*.h) include/validate.h include/payment_fields.h
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror -pthread -Iinclude \
	    -DGW_XSD_DIR='"$(ISO_XSD_DIR)"' \
	    -I$(shell $(PG_CONFIG) --includedir) $(shell pkg-config --cflags libmicrohttpd gnutls libxml-2.0) \
	    -o $@ $(GATEWAY_SRCS) -L$(shell $(PG_CONFIG) --libdir) \
	    $(shell pkg-config --libs libmicrohttpd gnutls libxml-2.0) -lpq

# the ISO 20022 schemas the gateway validates against (iso20022/README.md)
install: install-iso20022
.PHONY: install-iso20022
install-iso20022:
	$(MKDIR_P) '$(DESTDIR)$(ISO_XSD_DIR)'
	$(INSTALL_DATA) iso20022/xsd/*.xsd '$(DESTDIR)$(ISO_XSD_DIR)/'

# The install script is assembled from one file per concern.
settle--$(EXTVERSION).sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@

settle--%--$(EXTVERSION).sql: src/sql/updates/%--$(EXTVERSION).sql $(sort $(wildcard src/sql/*.sql)) tools/sql-upgrade.pl
	perl tools/sql-upgrade.pl $< $(sort $(wildcard src/sql/*.sql)) > $@.tmp && mv $@.tmp $@

.PHONY: deps run test bench fuzz
deps:
	@bash test/deps.sh

run: deps
	$(MAKE) all
	$(MAKE) install
	bash test/demo.sh

test: deps
	$(MAKE) all
	$(MAKE) install
	bash test/run_all.sh

# the fuzzer alone, for 10 minutes
fuzz: deps
	FUZZ_SECONDS=600 bash test/fuzz/run.sh

# PGBIN: the server binaries of the PostgreSQL that PG_CONFIG names (a private
# copy given with PG_CONFIG=... is benchmarked, not the system one)
bench: deps
	$(MAKE) all
	$(MAKE) install
	PGBIN=$${PGBIN:-$$($(PG_CONFIG) --bindir)} bash test/bench/run.sh
	PGBIN=$${PGBIN:-$$($(PG_CONFIG) --bindir)} bash test/bench/liquidity_prices.sh
	PGBIN=$${PGBIN:-$$($(PG_CONFIG) --bindir)} SEAL_DOC=docs/BENCHMARKS.md bash test/bench/seal.sh
	PGBIN=$${PGBIN:-$$($(PG_CONFIG) --bindir)} ADMISSION_DOC=docs/BENCHMARKS.md bash test/bench/admission.sh
	PGBIN=$${PGBIN:-$$($(PG_CONFIG) --bindir)} ISO_BENCH_DOC=docs/BENCHMARKS.md bash test/bench/iso20022.sh
	PGBIN=$${PGBIN:-$$($(PG_CONFIG) --bindir)} bash test/bench/controls.sh

# the production shape alone (issue #32; also part of make bench): a primary
# and a synchronous standby, the worker, the gateway, open-loop load; its
# section of docs/BENCHMARKS.md is replaced in place
.PHONY: bench-production
bench-production: deps
	$(MAKE) all
	$(MAKE) install
	PGBIN=$${PGBIN:-$$($(PG_CONFIG) --bindir)} PROD_DOC=docs/BENCHMARKS.md bash test/bench/production.sh

# pg_regress and pg_isolation_regress separately, against a running server.
.PHONY: installcheck-regress installcheck-isolation
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)

# storage cost per million payments, measured (docs/OPERATIONS.md, "Growth")
.PHONY: storage
storage: deps
	$(MAKE) all
	$(MAKE) install
	bash test/bench/storage.sh

# the container stack of docker/ built and run with podman (test/compose/run.sh; also in make test)
.PHONY: compose-test
compose-test:
	bash test/compose/run.sh

# a second region: a Patroni standby cluster behind a delaying link; region A lost under
# load, region B promoted; RPO, RTO and the cost of a synchronous standby in region B
.PHONY: region-test
region-test: deps
	$(MAKE) all
	$(MAKE) install
	bash test/region/run.sh

# high availability, long form: etcd + three Patroni nodes, repeated fail-overs under load
.PHONY: ha-test
ha-test: deps
	$(MAKE) all
	$(MAKE) install
	bash test/ha/run.sh

# the fail-over window a client sees through settle-gateway: 20 crashes and 10 switchovers
# (test/ha/run.sh with HA_PROFILE=window; docs/CONSENSUS.md), P50/P95/P99 against 5 s and 3 s
.PHONY: ha-window
ha-window: deps
	$(MAKE) all
	$(MAKE) install
	HA_PROFILE=window bash test/ha/run.sh

# no spurious fail-over: 30 minutes of 2,000 payments/s through settle-gateway (test/ha/soak.sh;
# HA_SOAK_SECONDS, HA_SOAK_RATE, HA_SOAK_BURN busy processes beside)
.PHONY: ha-soak
ha-soak: deps
	$(MAKE) all
	$(MAKE) install
	bash test/ha/soak.sh
