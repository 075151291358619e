#!/bin/sh
# bench/run.sh - throughput benchmark of dtmd (see bench/README.md).
#
# In one run, all on 127.0.0.1 and all private to this run, it starts a
# redis-server without persistence, bench/stub (C, libevent: answers every
# request with 200 {"dtm_result":"SUCCESS"}) and ./dtmd, then:
#   1. measures the two ceilings: wrk straight against the stub (HTTP), and
#      redis-benchmark running EVALSHA of lua/cas_update.lua (Redis);
#   2. runs each workload (bench/submit.lua) for DURATION with wrk, waits
#      until every transaction it submitted has finished, and checks in Redis
#      that each one is stored as succeed;
#   3. runs the 2-step saga again at half of its measured peak, for the
#      latency at that load;
#   4. prints the table and writes bench/results.json and bench/results.md
#      (and bench/results.png when gnuplot is installed).
# Everything started here is stopped on exit, also on Ctrl-C or an error.
#
# Environment:
#   DURATION=12s   length of each workload run (the whole script stays under
#                  3 minutes on 2 cores with the default)
#   CONNS=64       wrk connections;   THREADS=2   wrk threads
#   WORKLOADS="saga saga_wait msg saga_empty_wait"   which, in this order
#   HALF=1         also run the saga at half its peak rate (0 = skip)
#   REDIS_PORT, DTMD_PORT, STUB_PORT   ports (default: a free one near 26379,
#                  26789, 26790)
#   DTMD_BIN=path  the dtmd binary to measure (default ./dtmd, built first)
#   NO_BUILD=1     skip building ./dtmd and bench/stub
#   KEEP=1         keep the temporary directory (logs, wrk output)
#   DRAIN_TIMEOUT=60   seconds to wait for submitted transactions to finish
#   OUT=bench      where results.json / results.md go
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
DURATION=${DURATION:-12s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WORKLOADS=${WORKLOADS:-saga saga_wait msg saga_empty_wait}
HALF=${HALF:-1}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
OUT=${OUT:-$here}
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
for tool in redis-server redis-cli redis-benchmark curl "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run 'make deps')"
done

DTMD=${DTMD_BIN:-$top/dtmd}
if [ "${NO_BUILD:-}" != 1 ]; then
    say "building dtmd and bench/stub"
    if [ -n "${DTMD_BIN:-}" ]; then
        make -C "$top" --no-print-directory bench/stub >/dev/null || die "make failed"
    else
        make -C "$top" --no-print-directory all bench/stub >/dev/null || die "make failed"
    fi
fi
[ -x "$DTMD" ] || die "$DTMD not built"
[ -x "$here/stub" ] || die "$here/stub not built (make bench/stub)"

# ---- processes and cleanup ----------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dtmd-bench.XXXXXX")
dtmd_pid="" stub_pid="" redis_pid="" wrk_pid=""

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
    "$PY" - "$1" <<'PYEOF'
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
PYEOF
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

now() { date +%s.%N; }

REDIS_PORT=${REDIS_PORT:-$(pick_port 26379)}
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" --daemonize no >/dev/null 2>&1 &
redis_pid=$!
wait_for "$redis_pid" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping ||
    die "redis-server did not start on port $REDIS_PORT (see $tmp/redis.log)"
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

STUB_PORT=${STUB_PORT:-$(pick_port 26790)}
"$here/stub" "$STUB_PORT" >"$tmp/stub.log" 2>&1 &
stub_pid=$!
STUB="http://127.0.0.1:$STUB_PORT"
wait_for "$stub_pid" curl -fsS "$STUB/__count" || die "stub did not start (see $tmp/stub.log)"

DTMD_PORT=${DTMD_PORT:-$(pick_port 26789)}
STORE_HOST=127.0.0.1 STORE_PORT=$REDIS_PORT STORE_REDIS_PREFIX=dtmd HTTP_HOST=127.0.0.1 \
    HTTP_PORT=$DTMD_PORT LOG_LEVEL=warn "$DTMD" >"$tmp/dtmd.log" 2>&1 &
dtmd_pid=$!
API="http://127.0.0.1:$DTMD_PORT/api/dtmsvr"
wait_for "$dtmd_pid" curl -fsS "http://127.0.0.1:$DTMD_PORT/api/ping" ||
    die "dtmd did not start (see $tmp/dtmd.log)"

# CPU time (clock ticks) the whole machine was busy.
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)

# Transactions not finished yet: the members of every shard's due index.
unfinished() {
    rcli --raw EVAL "local n = 0
        for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:due')) do n = n + redis.call('ZCARD', k) end
        return n" 0
}

# Status tally of the transactions whose gid starts with $1 (shard indexes
# are ordered by gid): "succeed 1234 submitted 2 ...".
tally() {
    rcli --raw EVAL "local pre, n, out = ARGV[1], {}, {}
        for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:idx')) do
          local shard = string.match(k, '{(.-)}')
          for _, g in ipairs(redis.call('ZRANGEBYLEX', k, '[' .. pre, '(' .. pre .. '\255')) do
            local st = redis.call('HGET', 'dtmd{' .. shard .. '}:t:' .. g, 'status') or 'missing'
            n[st] = (n[st] or 0) + 1
          end
        end
        for st, c in pairs(n) do out[#out + 1] = st; out[#out + 1] = c end
        return out" 0 "$1" | paste -sd' ' -
}

# Redis commands served so far, per command ("evalsha 123 hgetall 4 ...").
cmdstats() {
    rcli INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p' | paste -sd' ' -
}

# ---- smoke test: a saga really completes through the stub ---------------
QGID="smoke-$$"
body=$(printf '{"gid":"%s","trans_type":"saga","steps":[{"action":"%s/TransOut","compensate":"%s/TransOutRevert"},{"action":"%s/TransIn","compensate":"%s/TransInRevert"}],"payloads":["{\\"amount\\":30}","{\\"amount\\":30}"],"wait_result":true}' \
    "$QGID" "$STUB" "$STUB" "$STUB" "$STUB")
ans=$(curl -sS -H 'Content-Type: application/json' -d "$body" "$API/submit") || die "submit failed"
case $ans in *'"SUCCESS"'*) ;; *) die "unexpected submit answer: $ans" ;; esac
curl -fsS "$API/query?gid=$QGID" | grep -q '"status":"succeed"' || die "smoke saga $QGID did not succeed"
idle_rss=$(status_kb "$dtmd_pid" VmRSS)
say "dtmd pid $dtmd_pid on :$DTMD_PORT, redis :$REDIS_PORT, stub :$STUB_PORT; idle RSS ${idle_rss} kB"

# CPU the machine spends on other processes (cores), over $1 seconds.
background() {
    b0=$(busy_ticks)
    sleep "$1"
    awk -v a="$b0" -v b="$(busy_ticks)" -v hz="$HZ" -v s="$1" 'BEGIN {printf "%.2f", (b - a) / hz / s}'
}

facts="$tmp/facts" # one "key value..." line per measured fact; results.py reads it
{
    echo "machine_nproc $(nproc)"
    echo "machine_kernel $(uname -sr)"
    echo "machine_cpu $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "redis_version $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
    echo "wrk_version $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
    echo "duration $DURATION"
    echo "conns $CONNS"
    echo "threads $THREADS"
    echo "idle_rss_kb $idle_rss"
    echo "background_cores_before $(background 1)"
} >"$facts"

run_wrk() { # out script_or_empty url [extra wrk args]
    out=$1 script=$2 url=$3
    shift 3
    if [ -n "$script" ]; then
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$script" "$@" "$url" >"$out" 2>&1 &
    else
        wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url" >"$out" 2>&1 &
    fi
    wrk_pid=$!
    # In the background, so a signal to this script is handled at once; its
    # CPU time is sampled until it exits (the last 0.1 s is missed).
    wt=0
    while kill -0 "$wrk_pid" 2>/dev/null; do
        wt=$(awk '{print $14 + $15}' "/proc/$wrk_pid/stat" 2>/dev/null || echo "$wt")
        sleep 0.1
    done
    echo "$wt" >"$out.ticks"
    wait "$wrk_pid" || {
        wrk_pid=""
        die "wrk failed: $(cat "$out")"
    }
    wrk_pid=""
}

# ---- ceilings -------------------------------------------------------------
say "ceiling 1: wrk -t$THREADS -c$CONNS -d$DURATION straight against the stub"
run_wrk "$tmp/wrk-http.txt" "" "$STUB/TransIn"
echo "http_rps $(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk-http.txt")" >>"$facts"

say "ceiling 2: redis-benchmark EVALSHA cas_update (one transition of a stored transaction)"
sha=$(rcli SCRIPT LOAD "$(cat "$top/lua/cas_update.lua")")
rcli HSET 'bench{0}:t:x' status submitted gid x >/dev/null
# -c 64 like wrk; -P 16: dtmd pipelines its script calls on one connection.
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 64 -P 16 -n 1000000 --csv \
    EVALSHA "$sha" 2 'bench{0}:t:x' 'bench{0}:due' x submitted 1700000000000 0 \
    update_time 1700000000000 b1.st succeed b1.ut 1700000000000 >"$tmp/redis-bench.csv" 2>/dev/null ||
    die "redis-benchmark failed"
echo "redis_ops $(awk -F'","' 'NR==2 {print $2}' "$tmp/redis-bench.csv")" >>"$facts"
rcli DEL 'bench{0}:t:x' 'bench{0}:due' >/dev/null

# ---- workloads --------------------------------------------------------------
# One workload: wrk for DURATION, then poll the due indexes until every
# transaction is finished; completed tx/s = succeed / (first request .. last
# one finished). Records CPU, RSS, Redis commands and the status tally.
workload() { # name type empty wait [delay_ms]
    name=$1
    tag="b$name-$$"
    export BENCH_TYPE="$2" BENCH_EMPTY="$3" BENCH_WAIT="$4" BENCH_DELAY="${5:-0}" BENCH_STUB="$STUB" BENCH_TAG="$tag"
    say "workload $name: wrk -t$THREADS -c$CONNS -d$DURATION (type $2, empty URLs $3, wait_result $4${5:+, ${5} ms pause})"
    calls0=$(curl -fsS "$STUB/__count")
    cmd0=$(cmdstats)
    c0=$(ticks "$dtmd_pid") r0=$(ticks "$redis_pid") s0=$(ticks "$stub_pid") b0=$(busy_ticks)
    t0=$(now)
    run_wrk "$tmp/wrk-$name.txt" "$here/submit.lua" "$API/submit"
    t1=$(now)
    i=0
    while [ "$(unfinished)" != 0 ]; do
        i=$((i + 1))
        if [ $i -gt $((DRAIN_TIMEOUT * 50)) ]; then
            say "warning: $(unfinished) transactions still unfinished after ${DRAIN_TIMEOUT}s"
            break
        fi
        sleep 0.02
    done
    t2=$(now)
    c1=$(ticks "$dtmd_pid") r1=$(ticks "$redis_pid") s1=$(ticks "$stub_pid") b1=$(busy_ticks)
    cmd1=$(cmdstats)
    calls1=$(curl -fsS "$STUB/__count")
    {
        echo "w.$name.t_wrk $t0 $t1"
        echo "w.$name.t_done $t2"
        echo "w.$name.cpu_s $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.redis_cpu_s $(awk -v a="$r0" -v b="$r1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.stub_cpu_s $(awk -v a="$s0" -v b="$s1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.wrk_cpu_s $(awk -v hz="$HZ" '{print $1 / hz}' "$tmp/wrk-$name.txt.ticks")"
        echo "w.$name.busy_cpu_s $(awk -v a="$b0" -v b="$b1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.hwm_kb $(status_kb "$dtmd_pid" VmHWM)"
        echo "w.$name.rss_kb $(status_kb "$dtmd_pid" VmRSS)"
        echo "w.$name.branch_calls $((calls1 - calls0))"
        echo "w.$name.cmd0 $cmd0"
        echo "w.$name.cmd1 $cmd1"
        echo "w.$name.tally $(tally "$tag-")"
        echo "w.$name.desc $2 $3 $4 ${5:-0}"
    } >>"$facts"
    cp "$tmp/wrk-$name.txt" "$tmp/wrk-$name.keep"
    echo "w.$name.wrk $tmp/wrk-$name.keep" >>"$facts"
}

for w in $WORKLOADS; do
    case $w in
        saga) workload saga saga 0 0 ;;
        saga_wait) workload saga_wait saga 0 1 ;;
        msg) workload msg msg 0 0 ;;
        saga_empty_wait) workload saga_empty_wait saga 1 1 ;;
        *) die "unknown workload '$w' (saga saga_wait msg saga_empty_wait)" ;;
    esac
done

# Half of the saga's peak: each connection pauses CONNS / (peak / 2) s
# between requests (wrk's delay(); the achieved rate is reported).
if [ "$HALF" = 1 ] && grep -q '^w.saga.t_done' "$facts"; then
    pause=$("$PY" "$here/results.py" half-delay "$facts" "$CONNS")
    workload saga_half saga 0 0 "$pause"
fi

{
    echo "background_cores_after $(background 1)"
    echo "final_hwm_kb $(status_kb "$dtmd_pid" VmHWM)"
    echo "final_rss_kb $(status_kb "$dtmd_pid" VmRSS)"
} >>"$facts"
grep -ciE 'error|warn' "$tmp/dtmd.log" | sed 's/^/dtmd_log_warnings /' >>"$facts" || true

"$PY" "$here/results.py" report "$facts" "$OUT"
if command -v gnuplot >/dev/null 2>&1; then
    if gnuplot "$OUT/results.gp" >/dev/null 2>&1; then say "wrote $OUT/results.png"; else say "gnuplot failed"; fi
fi
if [ -s "$tmp/dtmd.log" ]; then
    echo "dtmd log (warnings and errors, last 5 lines):"
    tail -n 5 "$tmp/dtmd.log" | sed 's/^/  /'
fi
