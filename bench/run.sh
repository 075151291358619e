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
#      latency at that load, with PRELOAD finished transactions stored, then
#      once more on an emptied Redis; then measures dtmd's RSS with INFLIGHT
#      transactions in flight;
#   4. starts a replica of the Redis and runs the 2-step saga with a dtmd
#      that acknowledges only replicated writes (Store.WaitReplicas 1);
#   5. starts a private 3-master Redis Cluster (no replicas, no persistence)
#      and runs the 2-step saga against it with one dtmd, then with two dtmd
#      processes sharing it (two wrk in parallel, CONNS/2 connections each);
#   6. prints the tables and writes bench/results.json and bench/results.md
#      (and bench/results.png when gnuplot is installed).
# Everything started here is stopped on exit, also on Ctrl-C or an error.
#
# Environment:
#   DURATION=12s   length of each workload run (the whole script stays under
#                  3 minutes on 2 cores with the default)
#   CONNS=64       wrk connections;   THREADS=2   wrk threads
#   WORKLOADS="saga saga_wait msg saga_empty_wait"   which, in this order
#   HALF=1         also run the saga at half its peak rate, on the Redis as
#                  the runs left it and on an emptied one (0 = skip)
#   REPLICA=1      also run the saga with Store.WaitReplicas 1 against a local
#                  replica (0 = skip)
#   CLUSTER=1      also run the saga on a 3-master Redis Cluster, with one and
#                  with two dtmd (0 = skip)
#   CLUSTER_DURATION=8s   length of each cluster run
#   CLUSTER_PORTS="p1 p2 p3"  cluster node ports (default: free ones near
#                  27001 whose bus port, +10000, is free too)
#   REDIS_PORT, DTMD_PORT, STUB_PORT, REPLICA_PORT   ports (default: a free
#                  one near 26379, 26789, 26790, 26380)
#   DTMD_BIN=path  the dtmd binary to measure (default ./dtmd, built first)
#   NO_BUILD=1     skip building ./dtmd and bench/stub
#   KEEP=1         keep the temporary directory (logs, wrk output)
#   DRAIN_TIMEOUT=60   seconds to wait for submitted transactions to finish
#   PRELOAD=1000000    finished transactions stored for the first half-load
#                  run (copies of a real one, bench/preload.lua; 0 = only
#                  what the runs before left)
#   INFLIGHT=1000  sagas kept in flight (hanging branches) on a second dtmd
#                  for its RSS per in-flight transaction (0 = skip; at most
#                  1024, Limits.MaxInflightCalls, so each has a call open)
#   OUT=bench      where results.json / results.md go
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
DURATION=${DURATION:-12s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WORKLOADS=${WORKLOADS:-saga saga_wait msg saga_empty_wait}
HALF=${HALF:-1}
REPLICA=${REPLICA:-1}
CLUSTER=${CLUSTER:-1}
CLUSTER_DURATION=${CLUSTER_DURATION:-8s}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
PRELOAD=${PRELOAD:-1000000}
INFLIGHT=${INFLIGHT:-1000}
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
dtmd_pid="" stub_pid="" redis_pid="" wrk_pid="" replica_pid=""
hold_dtmd="" hold_pid="" # the in-flight measurement's dtmd and hanging service
wrk_pids="" cl_dtmd_pids="" cl_redis_pids="" # the cluster runs' processes

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
    for p in $wrk_pids; do stop_pid "$p"; done
    stop_pid "$dtmd_pid"
    stop_pid "$hold_dtmd"
    stop_pid "$hold_pid"
    for p in $cl_dtmd_pids; do stop_pid "$p"; done
    stop_pid "$stub_pid"
    stop_pid "$replica_pid"
    stop_pid "$redis_pid"
    for p in $cl_redis_pids; do stop_pid "$p"; done
    wrk_pid="" wrk_pids="" dtmd_pid="" hold_dtmd="" hold_pid="" cl_dtmd_pids="" stub_pid="" redis_pid="" cl_redis_pids=""
    replica_pid=""
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

# A free loopback port p, at or above $1, whose cluster bus port p + 10000 is
# free too and which is none of $2... (ports already chosen).
pick_cluster_port() {
    "$PY" - "$@" <<'PYEOF'
import socket, sys
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
taken = set(int(a) for a in sys.argv[2:])
for p in range(int(sys.argv[1]), 55535):
    if p not in taken and p + 10000 not in taken and free(p) and free(p + 10000):
        print(p)
        break
PYEOF
}

# wait_for PID CMD: until CMD succeeds (up to 10 s) while PID lives.
. "$here/lib.sh"

now() { date +%s.%N; }

REDIS_PORT=${REDIS_PORT:-$(pick_port 26379)}
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" --daemonize no >/dev/null 2>&1 &
redis_pid=$!
wait_for "$redis_pid" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping ||
    die "redis-server did not start on port $REDIS_PORT (see $tmp/redis.log)"
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
# The Redis servers being measured (the cluster's masters in the cluster runs)
# and their pids: the helpers below run on each and add up.
RPORTS=$REDIS_PORT RPIDS=$redis_pid
rcli_each() { for rp in $RPORTS; do redis-cli -h 127.0.0.1 -p "$rp" "$@" || echo "error"; done; }

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
ticks_sum() { # pids...
    tsum=0
    for tp in "$@"; do tsum=$((tsum + $(ticks "$tp"))); done
    echo "$tsum"
}
HZ=$(getconf CLK_TCK)

# Transactions not finished yet: the members of every shard's due index
# (on a cluster each master holds some shards: KEYS on each, summed; any
# error prints a non-number, so the caller keeps waiting).
unfinished() {
    rcli_each --raw EVAL "local n = 0
        for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:due')) do n = n + redis.call('ZCARD', k) end
        return n" 0 | awk '/^[0-9]+$/ {n += $1; next} {bad = 1} END {print bad ? "error" : n + 0}'
}

# Status tally of the transactions whose gid starts with $1 (every gid of
# the shard indexes, by prefix): "succeed 1234 submitted 2 ...", summed over
# the masters.
tally() {
    rcli_each --raw EVAL "local pre, n, out = ARGV[1], {}, {}
        for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:ix')) do
          local shard = string.match(k, '{(.-)}')
          for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do
            local g = e[2][2]
            if string.sub(g, 1, #pre) == pre then
              local st = redis.call('HGET', 'dtmd{' .. shard .. '}:t:' .. g, 'status') or 'missing'
              n[st] = (n[st] or 0) + 1
            end
          end
        end
        for st, c in pairs(n) do out[#out + 1] = st; out[#out + 1] = c end
        return out" 0 "$1" |
        awk 'NF == 0 {next} k == "" {k = $0; next} {n[k] += $0; k = ""}
             END {for (s in n) {printf "%s%s %d", sep, s, n[s]; sep = " "}}'
}

# Redis commands served so far, per command ("evalsha 123 hgetall 4 ..."),
# summed over the servers.
cmdstats() {
    rcli_each INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p' |
        awk '{n[$1] += $2} END {for (c in n) {printf "%s%s %d", sep, c, n[c]; sep = " "}}'
}

# Redis's own figures, summed over the servers: "used_memory
# used_memory_dataset used_cpu_sys+used_cpu_user" (bytes, bytes, seconds).
redis_info() {
    rcli_each INFO | tr -d '\r' | awk -F: '
        $1 == "used_memory" {m += $2} $1 == "used_memory_dataset" {d += $2}
        $1 == "used_cpu_sys" || $1 == "used_cpu_user" {c += $2}
        END {printf "%.0f %.0f %.6f", m, d, c}'
}

# ---- smoke test: a saga really completes through the stub ---------------
smoke() { # api gid
    body=$(printf '{"gid":"%s","trans_type":"saga","steps":[{"action":"%s/TransOut","compensate":"%s/TransOutRevert"},{"action":"%s/TransIn","compensate":"%s/TransInRevert"}],"payloads":["{\\"amount\\":30}","{\\"amount\\":30}"],"wait_result":true}' \
        "$2" "$STUB" "$STUB" "$STUB" "$STUB")
    ans=$(curl -sS -H 'Content-Type: application/json' -d "$body" "$1/submit") || die "submit to $1 failed"
    case $ans in *'"SUCCESS"'*) ;; *) die "unexpected submit answer from $1: $ans" ;; esac
    curl -fsS "$1/query?gid=$2" | grep -q '"status":"succeed"' || die "smoke saga $2 did not succeed"
}
smoke "$API" "smoke-$$"
idle_rss=$(status_kb "$dtmd_pid" VmRSS)
say "dtmd pid $dtmd_pid on :$DTMD_PORT, redis :$REDIS_PORT, stub :$STUB_PORT; idle RSS ${idle_rss} kB"

# CPU the machine spends on other processes (cores), over $1 seconds.
background() {
    b0=$(busy_ticks)
    sleep "$1"
    awk -v a="$b0" -v b="$(busy_ticks)" -v hz="$HZ" -v s="$1" 'BEGIN {printf "%.2f", (b - a) / hz / s}'
}

# dtmd's own Redis calls while no transaction runs (liveness refresh, retry
# scanner, trimmer), per second: sampled from here to the end of ceiling 1
# (which does not touch Redis), at least 3 s so that it spans a scan round.
# results.py subtracts them from the calls per transaction.
idle_cmd0=$(cmdstats) idle_t0=$(now)

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
    echo "cluster_duration $CLUSTER_DURATION"
    echo "idle_rss_kb $idle_rss"
    echo "background_cores_before $(background 1)"
} >"$facts"

WDUR=$DURATION # length of the wrk runs (CLUSTER_DURATION in the cluster runs)
run_wrk() { # out script_or_empty url [extra wrk args]
    out=$1 script=$2 url=$3
    shift 3
    if [ -n "$script" ]; then
        wrk -t"$THREADS" -c"$CONNS" -d"$WDUR" --latency -s "$script" "$@" "$url" >"$out" 2>&1 &
    else
        wrk -t"$THREADS" -c"$CONNS" -d"$WDUR" --latency "$@" "$url" >"$out" 2>&1 &
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

# Several dtmd (the APIs in $APIS): one wrk per dtmd, all in parallel, the
# threads and connections split between them (wt_threads, wt_conns), each
# with its own gid tag ($2-<i>). Each wrk also writes its latency percentiles
# to $1-<i>.hist (submit.lua wrapped with a done()), so results.py can merge
# the latency distributions. Sets wrk_files, hist_files and wrk_ticks.
printf 'dofile("%s")\n' "$here/submit.lua" >"$tmp/submit-hist.lua"
cat >>"$tmp/submit-hist.lua" <<'LUAEOF'
-- bench/run.sh: latency percentiles (us) for merging several wrk runs
function done(summary, latency, requests)
   local path = os.getenv("BENCH_HIST")
   if not path or path == "" then return end
   local f = assert(io.open(path, "w"))
   f:write(string.format("n %d\n", summary.requests))
   for i = 1, 190 do f:write(string.format("%.2f %d\n", i * 0.5, latency:percentile(i * 0.5))) end
   for i = 1, 99 do f:write(string.format("%.2f %d\n", 95 + i * 0.05, latency:percentile(95 + i * 0.05))) end
   f:write(string.format("100 %d\n", latency.max))
   f:close()
end
LUAEOF
run_wrks() { # out_prefix tag
    wrk_pids="" wrk_files="" hist_files="" k=0
    for a in $APIS; do
        BENCH_TAG="$2-$k" BENCH_HIST="$1-$k.hist" wrk -t"$wt_threads" -c"$wt_conns" -d"$WDUR" \
            --latency -s "$tmp/submit-hist.lua" "$a/submit" >"$1-$k.txt" 2>&1 &
        wrk_pids="$wrk_pids $!"
        wrk_files="$wrk_files $1-$k.txt"
        hist_files="$hist_files $1-$k.hist"
        k=$((k + 1))
    done
    # CPU time of each, sampled until all have exited (as in run_wrk)
    while :; do
        alive=0 k=0
        for p in $wrk_pids; do
            if kill -0 "$p" 2>/dev/null; then
                alive=1
                if awk '{print $14 + $15}' "/proc/$p/stat" >"$1-$k.tmp" 2>/dev/null; then
                    mv "$1-$k.tmp" "$1-$k.ticks"
                fi
            fi
            k=$((k + 1))
        done
        [ $alive = 1 ] || break
        sleep 0.1
    done
    k=0
    for p in $wrk_pids; do
        wait "$p" || die "wrk failed: $(cat "$1-$k.txt")"
        k=$((k + 1))
    done
    wrk_pids=""
    wrk_ticks=$(cat "$1"-*.ticks 2>/dev/null | awk '{n += $1} END {print n + 0}')
    rm -f "$1"-*.tmp
}

# ---- ceilings -------------------------------------------------------------
say "ceiling 1: wrk -t$THREADS -c$CONNS -d$DURATION straight against the stub"
run_wrk "$tmp/wrk-http.txt" "" "$STUB/TransIn"
echo "http_rps $(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk-http.txt")" >>"$facts"
sleep "$(awk -v t0="$idle_t0" -v t="$(now)" 'BEGIN {d = 3 - (t - t0); print (d > 0 ? d : 0)}')"
{
    echo "idle_span_s $(awk -v t0="$idle_t0" -v t="$(now)" 'BEGIN {print t - t0}')"
    echo "idle_cmd0 $idle_cmd0"
    echo "idle_cmd1 $(cmdstats)"
} >>"$facts"

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
# Transactions the workload's dtmds parked in Redis at Limits.MaxActivePasses
# (each costs round trips to park and to take up again), summed.
parked_sum() {
    for a in $APIS; do
        curl -fsS "${a%/dtmsvr}/metrics" | awk '$1 == "dtmd_parked_total" {n = $2} END {print n + 0}'
    done | awk '{n += $1} END {print n + 0}'
}

# One workload: wrk for DURATION, then poll the due indexes until every
# transaction is finished; completed tx/s = succeed / (first request .. last
# one finished). Records CPU, RSS, Redis commands and the status tally.
workload() { # name type empty wait [delay_ms]
    name=$1
    tag="b$name-$$"
    export BENCH_TYPE="$2" BENCH_EMPTY="$3" BENCH_WAIT="$4" BENCH_DELAY="${5:-0}" BENCH_STUB="$STUB" BENCH_TAG="$tag"
    # shellcheck disable=SC2086 # (word lists, split on purpose)
    nw=$(echo $APIS | wc -w) np=$(echo $DPIDS | wc -w)
    if [ "$nw" = 1 ]; then
        shape="-t$THREADS -c$CONNS"
    else
        wt_threads=$((THREADS / nw))
        [ "$wt_threads" -ge 1 ] || wt_threads=1
        wt_conns=$((CONNS / nw))
        [ "$wt_conns" -ge "$wt_threads" ] || wt_conns=$wt_threads
        shape="${nw}x -t$wt_threads -c$wt_conns"
    fi
    say "workload $name: wrk $shape -d$WDUR (type $2, empty URLs $3, wait_result $4${5:+, ${5} ms pause}; $STORE_DESC)"
    calls0=$(curl -fsS "$STUB/__count")
    # stored keys, not counting the processes' liveness (docs/failover.md)
    keys0=$(rcli_each DBSIZE | awk '/^[0-9]+$/ {n += $1} END {print n + 0}')
    live0=$(for rp in $RPORTS; do redis-cli -h 127.0.0.1 -p "$rp" --scan --pattern '*}:live*'; done | wc -l)
    keys0=$((keys0 - live0))
    cmd0=$(cmdstats)
    info0=$(redis_info)
    parked0=$(parked_sum)
    # shellcheck disable=SC2086
    c0=$(ticks_sum $DPIDS) r0=$(ticks_sum $RPIDS) s0=$(ticks "$stub_pid") b0=$(busy_ticks)
    t0=$(now)
    if [ "$nw" = 1 ]; then
        run_wrk "$tmp/wrk-$name.txt" "$here/submit.lua" "$APIS/submit"
        cp "$tmp/wrk-$name.txt" "$tmp/wrk-$name.keep"
        wrk_files=" $tmp/wrk-$name.keep" hist_files="" wrk_ticks=$(cat "$tmp/wrk-$name.txt.ticks")
    else
        run_wrks "$tmp/wrk-$name" "$tag"
    fi
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
    # shellcheck disable=SC2086
    c1=$(ticks_sum $DPIDS) r1=$(ticks_sum $RPIDS) s1=$(ticks "$stub_pid") b1=$(busy_ticks)
    cmd1=$(cmdstats)
    info1=$(redis_info)
    parked1=$(parked_sum)
    calls1=$(curl -fsS "$STUB/__count")
    hwm_each="" rss_each="" pss_each=""
    for dp in $DPIDS; do
        hwm_each="$hwm_each $(status_kb "$dp" VmHWM)"
        rss_each="$rss_each $(status_kb "$dp" VmRSS)"
        # PSS: the shared libraries' pages (9 MB of the RSS) divided among
        # the processes mapping them
        pss_each="$pss_each $(awk '$1 == "Pss:" {print $2}' "/proc/$dp/smaps_rollup" 2>/dev/null || echo 0)"
    done
    {
        echo "w.$name.t_wrk $t0 $t1"
        echo "w.$name.t_done $t2"
        echo "w.$name.cpu_s $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.redis_cpu_s $(awk -v a="$r0" -v b="$r1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.stub_cpu_s $(awk -v a="$s0" -v b="$s1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.wrk_cpu_s $(awk -v t="$wrk_ticks" -v hz="$HZ" 'BEGIN {print t / hz}')"
        echo "w.$name.busy_cpu_s $(awk -v a="$b0" -v b="$b1" -v hz="$HZ" 'BEGIN {print (b - a) / hz}')"
        echo "w.$name.hwm_kb $(echo "$hwm_each" | tr ' ' '\n' | sort -n | tail -n 1)"
        echo "w.$name.rss_kb $(echo "$rss_each" | tr ' ' '\n' | sort -n | tail -n 1)"
        echo "w.$name.hwm_kb_each$hwm_each"
        echo "w.$name.pss_kb $(echo "$pss_each" | tr ' ' '\n' | sort -n | tail -n 1)"
        echo "w.$name.branch_calls $((calls1 - calls0))"
        echo "w.$name.parked $((parked1 - parked0))"
        echo "w.$name.keys0 $keys0"
        echo "w.$name.cmd0 $cmd0"
        echo "w.$name.cmd1 $cmd1"
        echo "w.$name.redis_info0 $info0"
        echo "w.$name.redis_info1 $info1"
        echo "w.$name.tally $(tally "$tag-")"
        echo "w.$name.unfinished_end $(unfinished)"
        echo "w.$name.desc $2 $3 $4 ${5:-0}"
        echo "w.$name.store $STORE_KIND"
        echo "w.$name.dtmd_procs $np"
        echo "w.$name.duration $WDUR"
        echo "w.$name.wrk_shape $shape"
        echo "w.$name.wrk$wrk_files"
        echo "w.$name.hist$hist_files"
    } >>"$facts"
}

# What the workloads run against (the cluster section changes these).
STORE_KIND=redis STORE_DESC="single Redis :$REDIS_PORT" DPIDS=$dtmd_pid APIS=$API
for w in $WORKLOADS; do
    case $w in
        saga) workload saga saga 0 0 ;;
        saga_wait) workload saga_wait saga 0 1 ;;
        msg) workload msg msg 0 0 ;;
        saga_empty_wait) workload saga_empty_wait saga 1 1 ;;
        *) die "unknown workload '$w' (saga saga_wait msg saga_empty_wait)" ;;
    esac
done

# Top Redis up to $1 finished transactions stored (those the runs before
# left count): copies of one of the saga run's transactions, written by
# bench/preload.lua in batches of 50,000 (about 1 s each, while nothing else
# runs), so they have the layout dtmd wrote. Shards: dtmd's default
# Store.Shards (16), which this runner does not change.
preload() {
    stored=$(rcli --raw EVAL "local n = 0
        for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:ix')) do n = n + redis.call('XLEN', k) end
        return n" 0)
    # oldest first, in chunks: the saga run is not the newest one
    tpl=$(rcli --raw EVAL "for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:ix')) do
          local from = '-'
          while true do
            local es = redis.call('XRANGE', k, from, '+', 'COUNT', 1000)
            if #es == 0 then break end
            for _, e in ipairs(es) do
              local g = e[2][2]
              if string.sub(g, 1, #ARGV[1]) == ARGV[1] then
                return 'dtmd{' .. string.match(k, '{(.-)}') .. '}:t:' .. g
              end
            end
            from = '(' .. es[#es][1]
          end
        end
        return ''" 0 "bsaga-$$-")
    [ -n "$tpl" ] || die "preload: no transaction of the saga run to copy"
    [ "$(rcli HGET "$tpl" status)" = succeed ] || die "preload: $tpl is not succeed"
    want=$(($1 - stored))
    [ "$want" -gt 0 ] || want=0
    say "preload: $want copies of $tpl ($stored stored already, $1 wanted)"
    info_p0=$(redis_info) tp0=$(now) done_n=0
    gpre="bpre-$$-$(date +%s | awk '{printf "%x", $1}')-0-$(printf '%06x' $$)-"
    script=$(cat "$here/preload.lua")
    while [ "$done_n" -lt "$want" ]; do
        b=$((want - done_n))
        [ "$b" -le 50000 ] || b=50000
        rcli EVAL "$script" 1 "$tpl" dtmd 16 "$gpre" "$done_n" "$b" >/dev/null || die "preload failed"
        done_n=$((done_n + b))
    done
    {
        echo "preload_target $1"
        echo "preload_stored_before $stored"
        echo "preload_written $want"
        echo "preload_template $tpl"
        echo "preload_seconds $(awk -v a="$tp0" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')"
        echo "preload_info0 $info_p0"
        echo "preload_info1 $(redis_info)"
        echo "preload_template_memory_usage $(rcli MEMORY USAGE "$tpl" SAMPLES 0)"
        echo "preload_template_encoding $(rcli OBJECT ENCODING "$tpl")"
    } >>"$facts"
}

# Half of the saga's peak: each connection pauses CONNS / (peak / 2) s
# between requests (wrk's delay(); the achieved rate is reported).
if [ "$HALF" = 1 ] && grep -q '^w.saga.t_done' "$facts"; then
    pause=$("$PY" "$here/results.py" half-delay "$facts" "$CONNS")
    if [ "$PRELOAD" -gt 0 ]; then preload "$PRELOAD"; fi
    workload saga_half saga 0 0 "$pause"
    # Again on an empty Redis: with many finished transactions stored
    # (FinishedDataExpire: a day) Redis itself stalls for 10 - 35 ms now and
    # then (LATENCY LATEST), which decides the p99; this run shows dtmd's
    # latency without that.
    rcli FLUSHALL >/dev/null
    workload saga_half_fresh saga 0 0 "$pause"
fi

{
    echo "final_hwm_kb $(status_kb "$dtmd_pid" VmHWM)"
    echo "final_rss_kb $(status_kb "$dtmd_pid" VmRSS)"
} >>"$facts"

# dtmd's memory per in-flight transaction: a second dtmd (default limits but
# Limits.MaxActivePasses 1024, above its default 512 so that none is parked;
# its own key prefix on the same Redis, so neither sees the other's
# transactions) gets INFLIGHT sagas whose branches hang (bench/hold.py:
# accepts, never answers); with at most Limits.MaxActivePasses and
# Limits.MaxInflightCalls (1024) each is driven, its first call open.
# (RSS then - RSS idle) / INFLIGHT. make bench-soak measures 10,000.
if [ "$INFLIGHT" -gt 0 ]; then
    [ "$INFLIGHT" -le 1024 ] || die "INFLIGHT=$INFLIGHT: at most 1024 (Limits.MaxInflightCalls), so each has a call open"
    hold_port=$(pick_port 26791)
    "$PY" "$here/hold.py" serve "$hold_port" >"$tmp/hold.log" 2>&1 &
    hold_pid=$!
    wait_for "$hold_pid" "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $hold_port)).close()" ||
        die "bench/hold.py did not start"
    hd_port=$(pick_port 26792)
    STORE_HOST=127.0.0.1 STORE_PORT=$REDIS_PORT STORE_REDIS_PREFIX=dtmdhold HTTP_HOST=127.0.0.1 \
        HTTP_PORT=$hd_port LOG_LEVEL=warn REQUEST_TIMEOUT=120 TIMEOUT_TO_FAIL=600 RETRY_INTERVAL=600 \
        LIMITS_MAX_ACTIVE_PASSES=1024 "$DTMD" >"$tmp/dtmd-hold.log" 2>&1 &
    hold_dtmd=$!
    wait_for "$hold_dtmd" curl -fsS "http://127.0.0.1:$hd_port/api/ping" || die "the in-flight dtmd did not start"
    hold_idle=$(status_kb "$hold_dtmd" VmRSS)
    say "in flight: $INFLIGHT sagas whose branches never answer (dtmd idle RSS $hold_idle kB)"
    "$PY" "$here/hold.py" submit "$hd_port" "$hold_port" "$INFLIGHT" bench || die "submitting to the hold dtmd failed"
    # a gauge of the in-flight dtmd, 0 when it cannot be read
    gauge() { curl -fsS "http://127.0.0.1:$hd_port/api/metrics" | awk -v m="$1" '$1 == m {n = $2} END {print n + 0}'; }
    i=0
    while [ "$(gauge dtmd_active_passes)" -lt "$INFLIGHT" ]; do
        i=$((i + 1))
        [ $i -lt 300 ] || die "in flight: only $(gauge dtmd_active_passes) of $INFLIGHT driven"
        sleep 0.1
    done
    sleep 1
    {
        echo "inflight_n $INFLIGHT"
        echo "inflight_idle_rss_kb $hold_idle"
        echo "inflight_rss_kb $(status_kb "$hold_dtmd" VmRSS)"
        echo "inflight_active $(gauge dtmd_active_passes)"
        echo "inflight_calls $(gauge dtmd_branch_calls_in_flight)"
    } >>"$facts"
    stop_pid "$hold_dtmd"
    stop_pid "$hold_pid"
    hold_dtmd="" hold_pid=""
fi
grep -ciE 'error|warn' "$tmp/dtmd.log" | sed 's/^/dtmd_log_warnings /' >>"$facts" || true

# ---- Store.WaitReplicas 1: the saga acknowledged once a replica has it ------
# A replica of the single Redis (no persistence either), and a dtmd of its
# own with STORE_WAIT_REPLICAS=1 in place of the first one: every write is
# followed by a WAIT (one per loop turn, covering that turn's writes).
if [ "$REPLICA" = 1 ]; then
    REPLICA_PORT=${REPLICA_PORT:-$(pick_port 26380)}
    redis-server --bind 127.0.0.1 --port "$REPLICA_PORT" --save '' --appendonly no \
        --replicaof 127.0.0.1 "$REDIS_PORT" --dir "$tmp" --dbfilename replica.rdb \
        --logfile "$tmp/replica.log" --daemonize no >/dev/null 2>&1 &
    replica_pid=$!
    rcli CONFIG SET repl-diskless-sync-delay 0 >/dev/null
    wait_for "$replica_pid" sh -c "redis-cli -h 127.0.0.1 -p $REPLICA_PORT INFO replication |
        grep -q master_link_status:up" || die "the replica did not sync (see $tmp/replica.log)"
    stop_pid "$dtmd_pid"
    DTMD_PORT=$(pick_port $((DTMD_PORT + 20)))
    STORE_HOST=127.0.0.1 STORE_PORT=$REDIS_PORT STORE_REDIS_PREFIX=dtmd HTTP_HOST=127.0.0.1 \
        HTTP_PORT=$DTMD_PORT STORE_WAIT_REPLICAS=1 LOG_LEVEL=warn "$DTMD" >"$tmp/dtmd-replica.log" 2>&1 &
    dtmd_pid=$!
    API="http://127.0.0.1:$DTMD_PORT/api/dtmsvr"
    wait_for "$dtmd_pid" curl -fsS "http://127.0.0.1:$DTMD_PORT/api/ping" ||
        die "dtmd with WaitReplicas did not start (see $tmp/dtmd-replica.log)"
    smoke "$API" "smoke-replica-$$"
    echo "replica_port $REPLICA_PORT" >>"$facts"
    STORE_DESC="single Redis + 1 replica, WaitReplicas 1" DPIDS=$dtmd_pid APIS=$API
    workload saga_replicated saga 0 0
    grep -ciE 'error|warn' "$tmp/dtmd-replica.log" | sed 's/^/replica_dtmd_log_warnings /' >>"$facts" || true
    stop_pid "$replica_pid"
    replica_pid=""
fi

# ---- Redis Cluster: the saga with one dtmd, then two ----------------------
# A private 3-master cluster (no replicas, no persistence, nodes.conf in the
# temporary directory). The single Redis and its dtmd are stopped first: they
# would only add noise.
cluster_ok() { # every node: state ok, all slots served, the 3 nodes known
    for cp in $cl_ports; do
        [ "$(redis-cli -h 127.0.0.1 -p "$cp" CLUSTER INFO | tr -d '\r' |
            grep -cE '^(cluster_state:ok|cluster_slots_ok:16384|cluster_known_nodes:3)$')" = 3 ] || return 1
    done
}

start_cluster_dtmd() { # n: sets cd_pid, cd_api
    cd_port=$(pick_port $((26800 + $1)))
    STORE_HOST=$cl_hosts STORE_PORT=${cl_hosts##*:} STORE_REDIS_PREFIX=dtmd HTTP_HOST=127.0.0.1 \
        HTTP_PORT=$cd_port LOG_LEVEL=warn "$DTMD" >"$tmp/dtmd-cluster-$1.log" 2>&1 &
    cd_pid=$!
    cl_dtmd_pids="$cl_dtmd_pids $cd_pid"
    cd_api="http://127.0.0.1:$cd_port/api/dtmsvr"
    wait_for "$cd_pid" curl -fsS "http://127.0.0.1:$cd_port/api/ping" ||
        die "dtmd on the cluster did not start (see $tmp/dtmd-cluster-$1.log)"
    smoke "$cd_api" "smoke-cluster-$1-$$"
}

if [ "$CLUSTER" = 1 ]; then
    stop_pid "$dtmd_pid"
    dtmd_pid=""
    stop_pid "$redis_pid"
    redis_pid=""
    cl_ports=${CLUSTER_PORTS:-}
    if [ -z "$cl_ports" ]; then
        cp=27000
        for _ in 1 2 3; do
            # shellcheck disable=SC2086
            cp=$(pick_cluster_port $((cp + 1)) $cl_ports)
            [ -n "$cp" ] || die "no free port pair (port, port + 10000) for a cluster node"
            cl_ports="$cl_ports $cp"
        done
    fi
    cl_hosts=""
    for cp in $cl_ports; do
        mkdir -p "$tmp/cluster-$cp"
        redis-server --bind 127.0.0.1 --port "$cp" --cluster-enabled yes \
            --cluster-config-file nodes.conf --save '' --appendonly no \
            --dir "$tmp/cluster-$cp" --logfile "$tmp/cluster-$cp/redis.log" --daemonize no >/dev/null 2>&1 &
        cl_pid=$!
        cl_redis_pids="$cl_redis_pids $cl_pid"
        wait_for "$cl_pid" redis-cli -h 127.0.0.1 -p "$cp" ping ||
            die "cluster node did not start on port $cp (see $tmp/cluster-$cp/redis.log)"
        cl_hosts="${cl_hosts:+$cl_hosts,}127.0.0.1:$cp"
    done
    # shellcheck disable=SC2046
    redis-cli --cluster create $(echo "$cl_hosts" | tr ',' ' ') --cluster-replicas 0 --cluster-yes \
        </dev/null >"$tmp/cluster-create.log" 2>&1 ||
        die "redis-cli --cluster create failed: $(tail -n 5 "$tmp/cluster-create.log")"
    wait_for "$cl_pid" cluster_ok || die "the cluster did not reach cluster_state:ok"
    say "Redis Cluster: 3 masters on $cl_hosts"
    echo "cluster_nodes $cl_hosts" >>"$facts"

    RPORTS=$cl_ports RPIDS=$cl_redis_pids WDUR=$CLUSTER_DURATION STORE_KIND=cluster
    STORE_DESC="3-master Redis Cluster"

    start_cluster_dtmd 1
    DPIDS=$cd_pid APIS=$cd_api
    workload saga_cluster saga 0 0
    stop_pid "$cd_pid"
    cl_dtmd_pids=""

    start_cluster_dtmd 2
    d1=$cd_pid a1=$cd_api
    start_cluster_dtmd 3
    DPIDS="$d1 $cd_pid" APIS="$a1 $cd_api"
    workload saga_cluster_2dtmd saga 0 0
    cat "$tmp"/dtmd-cluster-*.log | grep -ciE 'error|warn' | sed 's/^/cluster_dtmd_log_warnings /' >>"$facts" || true
    for p in $cl_dtmd_pids; do stop_pid "$p"; done
    cl_dtmd_pids=""
    for p in $cl_redis_pids; do stop_pid "$p"; done
    cl_redis_pids=""
fi
echo "background_cores_after $(background 1)" >>"$facts"

"$PY" "$here/results.py" report "$facts" "$OUT"
if command -v gnuplot >/dev/null 2>&1; then
    if gnuplot "$OUT/results.gp" >/dev/null 2>&1; then say "wrote $OUT/results.png"; else say "gnuplot failed"; fi
fi
if [ -s "$tmp/dtmd.log" ]; then
    echo "dtmd log (warnings and errors, last 5 lines):"
    tail -n 5 "$tmp/dtmd.log" | sed 's/^/  /'
fi
