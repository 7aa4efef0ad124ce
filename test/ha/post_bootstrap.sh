#!/bin/sh
# Patroni's bootstrap.post_bootstrap: runs once, on the node that initialised the cluster,
# with a connection string as $1. The extensions are then replicated like any other object.
set -e
psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "CREATE EXTENSION IF NOT EXISTS settle" \
                                      -c "CREATE EXTENSION IF NOT EXISTS pg_cron"
