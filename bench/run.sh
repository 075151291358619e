#!/bin/sh
# bench/run.sh - throughput benchmark of dtmd with wrk (see bench/README.md).
#
# Starts, all on 127.0.0.1 and all private to this run:
#   - a redis-server without persistence (data dir under a mktemp dir),
#   - bench/stub.py, a business service answering {"dtm_result":"SUCCESS"},
#   - ./dtmd (STORE_HOST/STORE_PORT/HTTP_PORT/LOG_LEVEL from the environment),
# then runs the wrk scenarios one after the other and prints a summary with
# req/s, latency p50/p99 and dtmd's memory. Everything started here is
# stopped on exit, also on Ctrl-C or an error.
#
# Environment:
#   DURATION=10s        length of each wrk run
#   CONNS=64            wrk connections
#   THREADS=2           wrk threads
#   SCENARIOS="newgid ping submit query submit_wait"   which runs, in order
#   REDIS_PORT, DTMD_PORT, STUB_PORT   ports (default: 26379, 26789, 26790,
#                       or a free port when one is taken)
#   NO_BUILD=1          skip `make all`
#   KEEP=1              keep the temporary directory (logs, wrk output)
#   DRAIN_TIMEOUT=120   seconds to wait for submitted sagas to finish
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SCENARIOS=${SCENARIOS:-newgid ping submit query submit_wait}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

say() { printf '%s\n' "bench: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# ---- tools ---------------------------------------------------------------
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk; } ||
        die "could not install wrk"
fi
for tool in redis-server redis-cli curl "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run 'make deps')"
done

if [ "${NO_BUILD:-}" != 1 ]; then
    say "building dtmd"
    make -C "$top" --no-print-directory all >/dev/null || die "make all failed"
fi
[ -x "$top/dtmd" ] || die "$top/dtmd not built"

# ---- processes and cleanup ----------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dtmd-bench.XXXXXX")
dtmd_pid=""
stub_pid=""
redis_pid=""
wrk_pid=""

stop_pid() { # pid: TERM, wait up to 5 s, then KILL
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

cleanup() {
    stop_pid "$wrk_pid"
    stop_pid "$dtmd_pid"
    stop_pid "$stub_pid"
    stop_pid "$redis_pid"
    wrk_pid="" dtmd_pid="" stub_pid="" redis_pid=""
    if [ "${KEEP:-}" = 1 ]; then
        say "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port: the preferred one if nobody listens there.
pick_port() {
    "$PY" - "$1" <<'EOF'
import socket, sys
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return s.getsockname()[1]
    except OSError:
        return None
    finally:
        s.close()
print(free(int(sys.argv[1])) or free(0))
EOF
}

# Wait until "$@" succeeds (up to 10 s) while pid $1 is alive.
wait_for() {
    pid=$1
    shift
    i=0
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || return 1
        i=$((i + 1))
        [ $i -le 100 ] || return 1
        sleep 0.1
    done
}

REDIS_PORT=${REDIS_PORT:-$(pick_port 26379)}
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" --daemonize no >/dev/null 2>&1 &
redis_pid=$!
wait_for "$redis_pid" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping ||
    die "redis-server did not start on port $REDIS_PORT (see $tmp/redis.log)"
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

STUB_PORT=${STUB_PORT:-$(pick_port 26790)}
"$PY" "$here/stub.py" "$STUB_PORT" >"$tmp/stub.log" 2>&1 &
stub_pid=$!
STUB="http://127.0.0.1:$STUB_PORT"
wait_for "$stub_pid" curl -fsS "$STUB/__count" || die "stub did not start (see $tmp/stub.log)"

DTMD_PORT=${DTMD_PORT:-$(pick_port 26789)}
STORE_HOST=127.0.0.1 STORE_PORT=$REDIS_PORT HTTP_HOST=127.0.0.1 HTTP_PORT=$DTMD_PORT \
    LOG_LEVEL=warn "$top/dtmd" >"$tmp/dtmd.log" 2>&1 &
dtmd_pid=$!
API="http://127.0.0.1:$DTMD_PORT/api/dtmsvr"
wait_for "$dtmd_pid" curl -fsS "http://127.0.0.1:$DTMD_PORT/api/ping" ||
    die "dtmd did not start (see $tmp/dtmd.log)"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$dtmd_pid/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$dtmd_pid/status"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k / 1024}'; }

# Unfinished transactions (the due indexes) and stored ones (the gid indexes).
count_zsets() { # suffix
    rcli --raw EVAL "local n = 0
        for _, k in ipairs(redis.call('KEYS', '*}:$1')) do n = n + redis.call('ZCARD', k) end
        return n" 0
}

# ---- smoke test: the API answers and a saga really completes ------------
gid_json=$(curl -fsS "$API/newGid") || die "newGid failed"
case $gid_json in *'"gid"'*) ;; *) die "unexpected newGid answer: $gid_json" ;; esac
QGID="bench-smoke-$$"
body=$(printf '{"gid":"%s","trans_type":"saga","steps":[{"action":"%s/TransOut","compensate":"%s/TransOutRevert"},{"action":"%s/TransIn","compensate":"%s/TransInRevert"}],"payloads":["{\\"amount\\":30}","{\\"amount\\":30}"]}' \
    "$QGID" "$STUB" "$STUB" "$STUB" "$STUB")
ans=$(curl -sS -H 'Content-Type: application/json' -d "$body" "$API/submit") || die "submit failed"
case $ans in *'"SUCCESS"'*) ;; *) die "unexpected submit answer: $ans" ;; esac
i=0
until curl -fsS "$API/query?gid=$QGID" | grep -q '"status":"succeed"'; do
    i=$((i + 1))
    [ $i -le 100 ] || die "smoke saga $QGID did not succeed: $(curl -sS "$API/query?gid=$QGID")"
    sleep 0.1
done
sleep 1
idle_rss=$(rss_kb)
say "dtmd pid $dtmd_pid on :$DTMD_PORT, redis :$REDIS_PORT, stub :$STUB_PORT; idle RSS $(mb "$idle_rss")"

# ---- scenarios ------------------------------------------------------------
results="$tmp/results"
: >"$results"

# Wait until no submitted saga is left unfinished; prints the seconds taken.
drain() {
    t0=$(date +%s.%N)
    i=0
    while [ "$(count_zsets due)" != 0 ]; do
        i=$((i + 1))
        if [ $i -gt $((DRAIN_TIMEOUT * 10)) ]; then
            say "warning: $(count_zsets due) transactions still unfinished after ${DRAIN_TIMEOUT}s"
            break
        fi
        sleep 0.1
    done
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'
}

# CPU time (clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

run_wrk() { # name url [script]
    name=$1 url=$2 script=${3:-}
    out="$tmp/wrk-$name.txt"
    say "running $name: wrk -t$THREADS -c$CONNS -d$DURATION $url"
    c_d=$(ticks "$dtmd_pid") c_r=$(ticks "$redis_pid") c_s=$(ticks "$stub_pid")
    w0=$(date +%s.%N)
    # In the background, so a signal to this script is handled at once
    # (the shell defers traps while a foreground command runs).
    if [ -n "$script" ]; then
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$script" "$url" >"$out" 2>&1 &
    else
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" >"$out" 2>&1 &
    fi
    wrk_pid=$!
    wait "$wrk_pid" || {
        wrk_pid=""
        die "wrk failed for $name: $(cat "$out")"
    }
    wrk_pid=""
    # Share of one core each process used while wrk ran (100% = one full core).
    cpu=$(awk -v w0="$w0" -v w1="$(date +%s.%N)" -v hz="$HZ" \
        -v d="$(($(ticks "$dtmd_pid") - c_d))" -v r="$(($(ticks "$redis_pid") - c_r))" \
        -v s="$(($(ticks "$stub_pid") - c_s))" \
        'BEGIN {t = (w1 - w0) * hz; printf "%d/%d/%d%%", 100 * d / t, 100 * r / t, 100 * s / t}')
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    total=$(awk '/requests in/ {print $1}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
    sockerr=$(awk -F'Socket errors: ' '/Socket errors:/ {print $2}' "$out")
    extra=""
    [ -n "$bad" ] && extra="non-2xx: $bad"
    [ -n "$sockerr" ] && extra="${extra:+$extra; }socket errors: $sockerr"
    printf '%s|%s|%s|%s|%s|%s|%s\n' "$name" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${total:-?}" \
        "$cpu" "$extra" >>"$results"
}

submitted=0
drain_note=""
for s in $SCENARIOS; do
    case $s in
        newgid) run_wrk newGid "$API/newGid" ;;
        ping) run_wrk ping "http://127.0.0.1:$DTMD_PORT/api/ping" ;;
        query) run_wrk query "$API/query?gid=$QGID" ;;
        submit | submit_wait)
            before=$(count_zsets idx)
            calls0=$(curl -fsS "$STUB/__count")
            export BENCH_STUB="$STUB" BENCH_WAIT=0
            [ "$s" = submit ] || BENCH_WAIT=1
            run_wrk "$s" "$API/submit" "$here/submit.lua"
            secs=$(drain)
            n=$(($(count_zsets idx) - before))
            calls=$(($(curl -fsS "$STUB/__count") - calls0))
            submitted=$((submitted + n))
            drain_note="$drain_note$s: $n sagas stored, all finished ${secs}s after wrk ended, $calls branch calls to the stub
"
            ;;
        *) die "unknown scenario '$s' (newgid ping submit query submit_wait)" ;;
    esac
done
sleep 1
after_rss=$(rss_kb)
peak_rss=$(hwm_kb)
failed=$(count_zsets due)

# ---- summary --------------------------------------------------------------
echo
echo "dtmd benchmark: $(nproc) cores, wrk -t$THREADS -c$CONNS -d$DURATION, $(uname -srm)"
echo
row() { printf '%-12s %10s %9s %9s %9s  %-20s %s\n' "$@"; }
row scenario req/s p50 p99 requests "cpu dtmd/redis/stub" notes
row -------- ----- --- --- -------- ------------------- -----
while IFS='|' read -r name rps p50 p99 total cpu extra; do
    row "$name" "$rps" "$p50" "$p99" "$total" "$cpu" "$extra"
done <"$results"
echo "(cpu: share of one core used during the run; wrk itself runs on the same machine)"
echo
[ -n "$drain_note" ] && printf '%s' "$drain_note" && echo
echo "dtmd RSS: idle $(mb "$idle_rss"), after the runs $(mb "$after_rss"), peak $(mb "$peak_rss")"
echo "transactions stored: $((submitted + 1)), unfinished: $failed"
if [ -s "$tmp/dtmd.log" ]; then
    echo "dtmd log (warnings and errors, last 5 lines):"
    tail -n 5 "$tmp/dtmd.log" | sed 's/^/  /'
fi
