#!/bin/bash
# A throwaway PostgreSQL cluster for the tests: Debian's server, started in
# a folder of its own, listening on a Unix socket there only (no TCP), as
# the unprivileged user `postgres` when run as root (initdb refuses root).
#
#   cluster.sh start DIR   initdb DIR/data, start it, create the database
#                          `portcullis` and the role `portcullis` (owner),
#                          print the libpq URL (the socket's folder is DIR)
#   cluster.sh stop DIR    stop it (fast) and remove DIR
#   cluster.sh url DIR     print the URL again
#   cluster.sh replica PRIMARY DIR
#                          a streaming replica of the cluster at PRIMARY
#                          (pg_basebackup), started in DIR on port 5433
#   cluster.sh halt DIR    stop the server (fast: what it has is written
#                          and sent to its replicas), keeping DIR
#   cluster.sh promote DIR make the replica in DIR the primary
#   cluster.sh resume DIR  start a halted server again
#
# DIR must not exist at `start` (it is created). Nothing is left behind by
# `stop`, so a test that starts a cluster stops it in its EXIT trap.
set -eu

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] || { echo "cluster.sh: PostgreSQL's server is not installed (apt-get install postgresql)" >&2; exit 2; }
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: cluster.sh start|stop|url DIR" >&2; exit 2; }
port=5432 # only a socket file's name (.s.PGSQL.5432) in DIR: no TCP listens
[ -f "$dir/port" ] && port=$(cat "$dir/port")

as_owner() {
        if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- "$@"
        else
                "$@"
        fi
}

url() {
        echo "postgresql:///portcullis?host=$dir&port=$port&user=portcullis"
}

case "$cmd" in
start)
        if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
                echo "cluster.sh: user postgres cannot reach $(dirname "$dir") (chmod o+x it)" >&2
                exit 1
        fi
        mkdir "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        chmod 0700 "$dir"
        as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale C >"$dir/initdb.log" 2>&1 ||
                { cat "$dir/initdb.log" >&2; exit 1; }
        # Tests need speed, not durability; a crash loses the cluster anyway.
        as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
                -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off \
                    -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null ||
                { cat "$dir/server.log" >&2; exit 1; }
        as_owner "$bindir/psql" -X -q -h "$dir" -p $port -U postgres -d postgres -v ON_ERROR_STOP=1 \
                -c "CREATE ROLE portcullis LOGIN" \
                -c "CREATE DATABASE portcullis OWNER portcullis TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'" >/dev/null
        # Whoever runs the test (root) reaches the socket.
        chmod 0755 "$dir"
        url
        ;;
stop)
        [ -d "$dir/data" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
        rm -rf "$dir"
        ;;
url)
        url
        ;;
replica)
        primary=$dir dir=${3:-}
        [ -n "$dir" ] || { echo "usage: cluster.sh replica PRIMARY DIR" >&2; exit 2; }
        port=5433
        mkdir "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        chmod 0700 "$dir"
        echo $port >"$dir/port"
        as_owner "$bindir/pg_basebackup" -h "$primary" -p 5432 -U postgres -D "$dir/data" -R -X stream -c fast \
                >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
        as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
                -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off \
                    -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null ||
                { cat "$dir/server.log" >&2; exit 1; }
        chmod 0755 "$dir"
        url
        ;;
halt)
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
        ;;
promote)
        as_owner "$bindir/pg_ctl" -D "$dir/data" -w -t 30 promote >/dev/null
        ;;
resume)
        as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
                -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off \
                    -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null ||
                { cat "$dir/server.log" >&2; exit 1; }
        ;;
*)
        echo "usage: cluster.sh start|stop|url|halt|promote DIR | replica PRIMARY DIR" >&2
        exit 2
        ;;
esac
