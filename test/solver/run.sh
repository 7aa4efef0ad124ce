#!/bin/bash
# The standalone solver tests (TAP), then all of them again under valgrind
# memcheck (test/solver/Makefile, target test).
set -uo pipefail
cd "$(dirname "$0")"
make -s test
rc=$?
make -s clean >/dev/null 2>&1
exit $rc
