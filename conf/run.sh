#!/bin/sh
# conf/run.sh - used by `make run`: start a private redis-server (loopback
# only, data and pid file under ./var) unless one is already answering on
# REDIS_PORT, then run dtmd in the foreground on HTTP_PORT (default 36789).
# Stopping dtmd (Ctrl-C) also stops the redis-server this script started.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
var="$top/var"
REDIS_PORT=${REDIS_PORT:-6379}
mkdir -p "$var"

started_redis=""
if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "run.sh: using the redis-server already answering on 127.0.0.1:$REDIS_PORT"
else
    echo "run.sh: starting redis-server on 127.0.0.1:$REDIS_PORT (data in $var)"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$var" \
        --pidfile "$var/redis.pid" --logfile "$var/redis.log" --daemonize yes \
        --appendonly yes --save ''
    started_redis=yes
    i=0
    until redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 50 ]; then
            echo "run.sh: redis-server did not start; see $var/redis.log" >&2
            exit 1
        fi
        sleep 0.1
    done
fi

stop_redis() {
    if [ -n "$started_redis" ] && [ -f "$var/redis.pid" ]; then
        kill "$(cat "$var/redis.pid")" 2>/dev/null || true
    fi
}
trap stop_redis EXIT
trap 'exit 130' INT TERM

conf=""
[ -f "$top/conf/conf.yml" ] && conf="-c $top/conf/conf.yml"
echo "run.sh: starting dtmd on :${HTTP_PORT:-36789} (Ctrl-C stops it)"
# shellcheck disable=SC2086
STORE_HOST=${STORE_HOST:-127.0.0.1} STORE_PORT=${STORE_PORT:-$REDIS_PORT} \
    "$top/dtmd" $conf &
dtmd_pid=$!
trap 'kill -TERM $dtmd_pid 2>/dev/null' INT TERM
wait $dtmd_pid || true
wait $dtmd_pid 2>/dev/null || true
