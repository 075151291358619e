#!/bin/sh
# conf/run.sh - used by `make run`: start a private redis-server (loopback
# only, data, pid and log under ./var) on 6379, or on the next free port when
# 6379 is taken (by another Redis or anything else), then run dtmd in the
# foreground on HTTP_PORT (default 36789) with the built-in defaults plus the
# environment; no configuration file is read. REDIS=host:port uses that Redis
# instead and starts none. Stopping dtmd (Ctrl-C) also stops the
# redis-server this script started.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
var=${RUN_DIR:-$top/var}  # RUN_DIR: where the tests keep it
mkdir -p "$var"

redis_pid=""
stop_redis() {
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
}
trap stop_redis EXIT
trap 'exit 130' INT TERM

# Start redis-server on port $1 in the background; 0 once it answers as that
# very process, 1 when it exited (port taken) or never answered.
start_redis() {
    redis-server --bind 127.0.0.1 --port "$1" --dir "$var" --logfile "$var/redis.log" \
        --appendonly yes --save '' &
    redis_pid=$!
    i=0
    while kill -0 "$redis_pid" 2>/dev/null; do
        # Another Redis may hold the port while ours fails to bind: trust only
        # an answer that names our process id.
        if redis-cli -h 127.0.0.1 -p "$1" info server 2>/dev/null |
            grep -q "^process_id:$redis_pid"; then
            return 0
        fi
        i=$((i + 1))
        [ "$i" -gt 50 ] && break
        sleep 0.1
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
    return 1
}

if [ -n "${REDIS:-}" ]; then
    redis_host=${REDIS%:*}
    redis_port=${REDIS##*:}
    [ "$redis_port" != "$REDIS" ] || redis_port=6379
    echo "run.sh: using the Redis at $redis_host:$redis_port (REDIS=$REDIS); no redis-server started"
else
    redis_host=127.0.0.1
    redis_port=6379
    until start_redis "$redis_port"; do
        redis_port=$((redis_port + 1))
        if [ "$redis_port" -gt 6479 ]; then
            echo "run.sh: no free port for redis-server in 6379..6479; see $var/redis.log" >&2
            exit 1
        fi
    done
    note=""
    [ "$redis_port" = 6379 ] || note=" (6379 is taken)"
    echo "run.sh: private redis-server on 127.0.0.1:$redis_port$note, data in $var"
fi

echo "run.sh: starting dtmd on :${HTTP_PORT:-36789} with the built-in defaults (Ctrl-C stops it)"
STORE_HOST=$redis_host STORE_PORT=$redis_port "$top/dtmd" &
dtmd_pid=$!
trap 'kill -TERM $dtmd_pid 2>/dev/null' INT TERM
wait $dtmd_pid || true
wait $dtmd_pid 2>/dev/null || true
