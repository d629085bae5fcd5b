#!/bin/bash
# Several agents claim one outbox at once on a real PostgreSQL server (a
# throwaway cluster, cluster.sh): outbox_race queues notifications and
# forks workers that drain it concurrently; each notification must be
# claimed exactly once (else a customer gets the same email twice).
#
# Usage: outbox_race.sh OUTBOX_RACE_BINARY SOURCE_ROOT
set -u
bin=$(readlink -f "$1") src=$(readlink -f "$2")
tmp=$(mktemp -d /tmp/portcullis-outbox-race.XXXXXX)
chmod 0711 "$tmp" # postgres, the server's user, reaches its folder inside
trap '"$src/tests/pg/cluster.sh" stop "$tmp/pg"; rm -rf "$tmp"' EXIT
url=$("$src/tests/pg/cluster.sh" start "$tmp/pg") || exit 1
"$bin" "$url" "$src"
