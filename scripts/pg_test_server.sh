#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the test suite and the benchmark.
#
#   url=$(bash scripts/pg_test_server.sh start DIR)   # prints postgresql://postgres@127.0.0.1:PORT/tokenpilot_test
#   bash scripts/pg_test_server.sh stop DIR
#
# Installs PostgreSQL with apt when no server binaries are present (CI runs as root).
# The port is TOKENPILOT_TEST_PG_PORT (default 54329) or the next free one; the cluster lives in DIR and dies with it.
set -euo pipefail

action=${1:?usage: pg_test_server.sh start|stop DIR}
dir=${2:?usage: pg_test_server.sh start|stop DIR}
port=${TOKENPILOT_TEST_PG_PORT:-54329}

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

bindir=$(find_bin)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    if [[ "$action" == stop ]]; then exit 0; fi
    echo "installing postgresql with apt-get" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    bindir=$(find_bin)
fi

# initdb refuses to run as root: use the postgres account when we are root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$action" in
start)
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1
    fi
    # Another server (a developer's, an earlier run's) may hold the port: take the next free one.
    for _ in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then port=$((port + 1)); else break; fi
    done
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >&2
    if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'tokenpilot_test'" postgres | grep -q 1; then
        "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres tokenpilot_test
    fi
    echo "postgresql://postgres@127.0.0.1:$port/tokenpilot_test"
    ;;
stop)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    ;;
*)
    echo "usage: pg_test_server.sh start|stop DIR" >&2
    exit 2
    ;;
esac
