#!/bin/bash
# The CLI tests (tests/cli/run.sh) on a real PostgreSQL server: a
# throwaway cluster (cluster.sh), whose folder run.sh is given in
# PC_TEST_PG_DIR; each of its databases is then a fresh database there.
# A cluster that does not start is a failure, never a skip.
#
# Usage: cli_test.sh PATH_TO_portcullis SOURCE_ROOT
set -u
bin=$(readlink -f "$1") src=$(readlink -f "$2")
tmp=$(mktemp -d /tmp/portcullis-pgcli.XXXXXX)
chmod 0711 "$tmp" # postgres, the server's user, reaches its folder inside
trap '"$src/tests/pg/cluster.sh" stop "$tmp/pg"; rm -rf "$tmp"' EXIT
"$src/tests/pg/cluster.sh" start "$tmp/pg" >/dev/null || { echo "FAIL the cluster did not start" >&2; exit 1; }
PC_TEST_PG_DIR=$tmp/pg bash "$src/tests/cli/run.sh" "$bin" "$src"
