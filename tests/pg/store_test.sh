#!/bin/bash
# The store's unit tests (tests/unit/test_store.c) on a real PostgreSQL
# server: a throwaway cluster (cluster.sh), its URL given to the test
# binary in PC_TEST_PG_URL, which then runs every test that is not
# SQLite's own there, each on an empty database.  A cluster that does not
# start, or a URL that does not answer, is a failure, never a skip.
#
# Usage: store_test.sh TEST_STORE_BINARY SOURCE_ROOT
set -u
bin=$(readlink -f "$1") src=$(readlink -f "$2")
tmp=$(mktemp -d /tmp/portcullis-pgstore.XXXXXX)
chmod 0711 "$tmp" # postgres, the server's user, reaches its folder inside
trap '"$src/tests/pg/cluster.sh" stop "$tmp/pg"; rm -rf "$tmp"' EXIT
url=$("$src/tests/pg/cluster.sh" start "$tmp/pg") || { echo "FAIL the cluster did not start" >&2; exit 1; }
PC_TEST_PG_URL=$url "$bin" || exit 1 # a failure, whatever its count (77 would read as a skip)
