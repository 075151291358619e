#!/bin/sh
# bench/callgrind.sh - dtmd's user-space instructions per transaction,
# counted by callgrind: a figure that does not move with the machine's
# speed, unlike tx/s and CPU time on a shared VM (see
# docs/performance.md#the-machine). For comparing builds: run it on each and compare.
#
# Starts a private redis-server, bench/stub and dtmd under
# valgrind --tool=callgrind with instrumentation off; once dtmd answers,
# turns it on (callgrind_control -i), runs wrk with bench/submit.lua at a
# low fixed rate for DURATION, waits for the transactions to finish, turns
# it off and stops everything. Instructions per transaction = all
# of dtmd's instructions collected / the submits wrk made (each answered
# 200). Prints that, the share of each library and the top functions.
#
# Environment: WORKLOAD=saga (or saga_wait, msg, saga_empty_wait)
#              DURATION=6s  CONNS=8  DELAY=20 (ms between a connection's
#              requests)  DTMD_BIN=./dtmd  KEEP=1 (keep the callgrind file)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
WORKLOAD=${WORKLOAD:-saga}
DURATION=${DURATION:-6s}
CONNS=${CONNS:-8}
DELAY=${DELAY:-20}
DTMD_BIN=${DTMD_BIN:-$top/dtmd}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

say() { printf '%s\n' "callgrind: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

for tool in wrk valgrind; do
    command -v $tool >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null 2>&1 ||
        die "$tool not found and could not be installed"
done
case "$WORKLOAD" in
saga) wl="BENCH_TYPE=saga" ;;
saga_wait) wl="BENCH_TYPE=saga BENCH_WAIT=1" ;;
msg) wl="BENCH_TYPE=msg" ;;
saga_empty_wait) wl="BENCH_TYPE=saga BENCH_EMPTY=1 BENCH_WAIT=1" ;;
*) die "unknown WORKLOAD $WORKLOAD (saga, saga_wait, msg, saga_empty_wait)" ;;
esac

. "$here/lib.sh"
bench_tmp callgrind
STOP_WAIT=100 # dtmd writes its callgrind file when it stops
WAIT_S=30     # and starts slowly under valgrind

RPORT=$(port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --dir "$tmp" \
    --logfile "$tmp/redis.log" >/dev/null 2>&1 &
pids="$pids $!"
wait_for $! redis-cli -p "$RPORT" ping || die "redis-server did not start"

SPORT=$(port)
"$here/stub" "$SPORT" >"$tmp/stub.log" 2>&1 &
pids="$pids $!"
wait_for $! curl -fsS "http://127.0.0.1:$SPORT/__count" || die "the stub did not start"

DPORT=$(port)
env STORE_HOST=127.0.0.1 STORE_PORT="$RPORT" HTTP_HOST=127.0.0.1 HTTP_PORT="$DPORT" LOG_LEVEL=warn \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/callgrind.out" \
    "$DTMD_BIN" >"$tmp/dtmd.log" 2>&1 &
DPID=$!
pids="$pids $DPID"
wait_for "$DPID" curl -fsS "http://127.0.0.1:$DPORT/api/ping" || die "dtmd did not start under valgrind"

say "$WORKLOAD: wrk -t1 -c$CONNS -d$DURATION, $DELAY ms between a connection's requests"
callgrind_control -i on "$DPID" >/dev/null 2>&1 || die "callgrind_control could not turn instrumentation on"
env $wl BENCH_STUB="http://127.0.0.1:$SPORT" BENCH_DELAY="$DELAY" \
    wrk -t1 -c"$CONNS" -d"$DURATION" -s "$here/submit.lua" "http://127.0.0.1:$DPORT/api/dtmsvr/submit" \
    >"$tmp/wrk.txt" 2>&1 || die "wrk failed: $(cat "$tmp/wrk.txt")"
sleep 2 # the last branch calls and writes of wait_result false
callgrind_control -i off "$DPID" >/dev/null 2>&1 || die "callgrind_control could not turn instrumentation off"
kill -TERM "$DPID"
i=0
while kill -0 "$DPID" 2>/dev/null && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done

n=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")
grep -q "Non-2xx" "$tmp/wrk.txt" && die "some submits were refused: $(cat "$tmp/wrk.txt")"
[ -n "$n" ] && [ "$n" -gt 0 ] || die "wrk made no requests: $(cat "$tmp/wrk.txt")"
[ -s "$tmp/callgrind.out" ] || die "no callgrind output (dtmd.log: $(tail -5 "$tmp/dtmd.log"))"
callgrind_annotate --auto=no "$tmp/callgrind.out" >"$tmp/annotate.txt" 2>/dev/null
total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$tmp/annotate.txt")

printf '\n%s: %s transactions, %s instructions -> %s user-space instructions per transaction\n\n' \
    "$WORKLOAD" "$n" "$total" "$(awk -v t="$total" -v n="$n" 'BEGIN {printf "%.0f", t / n}')"
echo "By object (self instructions):"
awk -v t="$total" '
    /^ *[0-9,]+ \( *[0-9.]+%\) / && /\[/ {
        v = $1; gsub(",", "", v)
        o = $0; sub(/.*\[/, "", o); sub(/\].*/, "", o); sub(/.*\//, "", o)
        by[o] += v
    }
    END { for (o in by) printf "  %5.1f %%  %s\n", 100 * by[o] / t, o }' "$tmp/annotate.txt" | sort -rn | head -12
echo
echo "Top functions (self):"
awk '/^ *[0-9,]+ \( *[0-9.]+%\) / && /\[/' "$tmp/annotate.txt" | head -25
