#!/bin/sh
# bench/soak.sh - dtmd's memory: with 10,000 transactions in flight, and
# over a long run at full load (results: docs/performance.md#memory).
#
# Two measurements, each with its own private redis-server and dtmd on
# 127.0.0.1, everything stopped on exit:
#   1. in flight: N (10,000) sagas are submitted whose first branch is a
#      service that accepts the connection and never answers (RequestTimeout
#      120 s), so every one of them stays in flight - dtmd drives up to
#      Limits.MaxActivePasses of them (their calls: Limits.MaxInflightCalls
#      open, the rest queued), the others wait in Redis (parked). dtmd's
#      RSS, its private part (RssAnon) and its peak are read once all N are
#      stored and the limit's worth are driven; twice: with the defaults
#      (512 driven, 512 calls) and bounded (64 and 64).
#   2. soak: wrk runs the 2-step saga (bench/submit.lua) against bench/stub
#      for SOAK seconds (60) while dtmd's RSS is sampled every 5 s; then every
#      transaction must finish as succeed. Growth is the RSS at the end
#      minus the RSS after the first 10 s (allocator and caches warmed up).
# Writes bench/soak.json and bench/soak.md (OUT=dir to change).
#
# Environment: N=10000  SOAK=60  CONNS=64  THREADS=2  OUT=bench  KEEP=1
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
N=${N:-10000}
SOAK=${SOAK:-60}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
OUT=${OUT:-$here}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

say() { printf '%s\n' "soak: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

command -v wrk >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 ||
    die "wrk not found (make bench installs it)"
make -C "$top" --no-print-directory all bench/stub >/dev/null || die "make failed"

. "$here/lib.sh"
bench_tmp soak

kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

start_redis() { # name -> sets RPORT, adds the pid
    RPORT=$(port)
    redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --dir "$tmp" \
        --logfile "$tmp/redis-$1.log" >/dev/null 2>&1 &
    pids="$pids $!"
    wait_for $! redis-cli -p "$RPORT" ping || die "redis-server did not start"
}

start_dtmd() { # name [VAR=value...] -> sets DPID, DPORT
    name=$1
    shift
    DPORT=$(port)
    env STORE_HOST=127.0.0.1 STORE_PORT="$RPORT" STORE_REDIS_PREFIX=dtmd HTTP_HOST=127.0.0.1 HTTP_PORT="$DPORT" \
        LOG_LEVEL=warn "$@" "$top/dtmd" >"$tmp/dtmd-$name.log" 2>&1 &
    DPID=$!
    pids="$pids $DPID"
    wait_for "$DPID" curl -fsS "http://127.0.0.1:$DPORT/api/ping" || die "dtmd did not start"
}

gauge() { # dtmd port, metric name
    curl -fsS "http://127.0.0.1:$1/api/metrics" | awk -v m="$2" '$1 == m {print $2}'
}

facts="$tmp/facts"
: >"$facts"

# ---- 1. N transactions in flight --------------------------------------------
HOLD_PORT=$(port)
"$PY" "$here/hold.py" serve "$HOLD_PORT" >"$tmp/hold.log" 2>&1 &
pids="$pids $!"
wait_for $! "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $HOLD_PORT)).close()" ||
    die "hold server did not start"
ulimit -n 8192 2>/dev/null || true

# inflight LABEL ACTIVE_LIMIT [VAR=value...]: N sagas stuck on the hold
# server, against a fresh Redis and dtmd; facts go in as inflight_LABEL_*.
inflight() {
    label=$1 limit=$2
    shift 2
    start_redis "inflight-$label"
    start_dtmd "inflight-$label" REQUEST_TIMEOUT=120 TIMEOUT_TO_FAIL=600 RETRY_INTERVAL=600 "$@"
    idle_rss=$(kb "$DPID" VmRSS) idle_anon=$(kb "$DPID" RssAnon)
    say "$label: submitting $N sagas whose first branch never answers"
    "$PY" "$here/hold.py" submit "$DPORT" "$HOLD_PORT" "$N" "$label" || die "submitting failed"
    # In flight = stored and unfinished (every one is in the due index);
    # dtmd drives min(N, its Limits.MaxActivePasses) of them, the rest wait
    # in Redis (parked).
    want=$N
    [ "$limit" -gt 0 ] && [ "$limit" -lt "$N" ] && want=$limit
    i=0
    while [ "$(gauge "$DPORT" dtmd_active_passes)" -lt "$want" ] ||
        [ "$(redis-cli -p "$RPORT" --raw EVAL "local n = 0
            for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:due')) do n = n + redis.call('ZCARD', k) end
            return n" 0)" -lt "$N" ]; do
        i=$((i + 1))
        [ $i -lt 300 ] || die "$label: only $(gauge "$DPORT" dtmd_active_passes) of $want transactions active"
        sleep 0.1
    done
    sleep 1
    {
        echo "inflight_${label}_limit $limit"
        echo "inflight_${label}_active $(gauge "$DPORT" dtmd_active_passes)"
        echo "inflight_${label}_parked $(gauge "$DPORT" dtmd_parked_total)"
        echo "inflight_${label}_calls $(gauge "$DPORT" dtmd_branch_calls_in_flight)"
        echo "inflight_${label}_idle_rss_kb $idle_rss"
        echo "inflight_${label}_idle_anon_kb $idle_anon"
        echo "inflight_${label}_rss_kb $(kb "$DPID" VmRSS)"
        echo "inflight_${label}_anon_kb $(kb "$DPID" RssAnon)"
        echo "inflight_${label}_file_kb $(kb "$DPID" RssFile)"
        echo "inflight_${label}_hwm_kb $(kb "$DPID" VmHWM)"
    } >>"$facts"
    kill -KILL "$DPID" 2>/dev/null || true
}
echo "n $N" >>"$facts"
# dtmd's defaults: Limits.MaxActivePasses 512, Limits.MaxInflightCalls 1024
inflight default 512
# bounded for memory: 64 transactions driven at once, 64 calls open
inflight bounded 64 LIMITS_MAX_ACTIVE_PASSES=64 LIMITS_MAX_INFLIGHT_CALLS=64
say "$(tr '\n' ' ' <"$facts")"
for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
pids=""

# ---- 2. soak at full load -----------------------------------------------------
start_redis soak
SPORT=$(port)
"$here/stub" "$SPORT" >"$tmp/stub.log" 2>&1 &
pids="$pids $!"
wait_for $! curl -fsS "http://127.0.0.1:$SPORT/__count" || die "stub did not start"
start_dtmd soak
say "wrk -t$THREADS -c$CONNS -d${SOAK}s, sampling dtmd's RSS every 5 s"
BENCH_TYPE=saga BENCH_STUB="http://127.0.0.1:$SPORT" BENCH_TAG="soak-$$" \
    wrk -t"$THREADS" -c"$CONNS" -d"${SOAK}s" --latency -s "$here/submit.lua" \
    "http://127.0.0.1:$DPORT/api/dtmsvr/submit" >"$tmp/wrk.txt" 2>&1 &
wrk=$!
t=0
while kill -0 "$wrk" 2>/dev/null; do
    echo "sample $t $(kb "$DPID" VmRSS) $(kb "$DPID" RssAnon)" >>"$facts"
    sleep 5
    t=$((t + 5))
done
wait "$wrk" || die "wrk failed: $(cat "$tmp/wrk.txt")"
i=0
while :; do
    left=$(redis-cli -p "$RPORT" --raw EVAL "local n = 0
        for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:due')) do n = n + redis.call('ZCARD', k) end
        return n" 0)
    [ "$left" = 0 ] && break
    i=$((i + 1))
    [ $i -lt 3000 ] || die "$left transactions unfinished 60 s after the run"
    sleep 0.02
done
{
    echo "soak_seconds $SOAK"
    echo "soak_requests $(awk '/requests in/ {print $1}' "$tmp/wrk.txt")"
    echo "soak_end_rss_kb $(kb "$DPID" VmRSS)"
    echo "soak_end_anon_kb $(kb "$DPID" RssAnon)"
    echo "soak_hwm_kb $(kb "$DPID" VmHWM)"
    echo "soak_succeed $(redis-cli -p "$RPORT" --raw EVAL "local n = 0
        for _, k in ipairs(redis.call('KEYS', 'dtmd{*}:t:soak-*')) do
          if redis.call('HGET', k, 'status') == 'succeed' then n = n + 1 end end
        return n" 0)"
} >>"$facts"

"$PY" - "$facts" "$OUT" <<'PYEOF'
import json, sys
facts, out = sys.argv[1], sys.argv[2]
f, samples = {}, []
for line in open(facts):
    k, _, v = line.strip().partition(" ")
    if k == "sample":
        t, rss, anon = map(int, v.split())
        samples.append({"t": t, "rss_kb": rss, "anon_kb": anon})
    else:
        f[k] = int(v) if v.lstrip("-").isdigit() else v
after10 = next((s for s in samples if s["t"] >= 10), samples[0])
f["samples"] = samples
f["soak_growth_kb"] = f["soak_end_rss_kb"] - after10["rss_kb"]
f["soak_growth_anon_kb"] = f["soak_end_anon_kb"] - after10["anon_kb"]
json.dump(f, open(out + "/soak.json", "w"), indent=1)
mb = lambda kb: "%.1f MB" % (kb / 1024.0)
md = ["dtmd memory (bench/soak.sh)", "",
      "| measurement | RSS | private (RssAnon) | peak RSS |", "|---|---:|---:|---:|",
      "| idle | %s | %s | - |" % (mb(f["inflight_default_idle_rss_kb"]),
                                   mb(f["inflight_default_idle_anon_kb"])),
      "| %d transactions in flight, defaults: %d driven (Limits.MaxActivePasses %d; %d branch calls pending, at most Limits.MaxInflightCalls 1024 of them open, the rest queued), %d parked in Redis | %s | %s | %s |" % (
          f["n"], f["inflight_default_active"], f["inflight_default_limit"],
          f["inflight_default_calls"], f["inflight_default_parked"],
          mb(f["inflight_default_rss_kb"]), mb(f["inflight_default_anon_kb"]),
          mb(f["inflight_default_hwm_kb"])),
      "| %d transactions in flight, Limits.MaxActivePasses %d and Limits.MaxInflightCalls 64: %d driven, %d parked in Redis | %s | %s | %s |" % (
          f["n"], f["inflight_bounded_limit"], f["inflight_bounded_active"],
          f["inflight_bounded_parked"], mb(f["inflight_bounded_rss_kb"]),
          mb(f["inflight_bounded_anon_kb"]), mb(f["inflight_bounded_hwm_kb"])),
      "| after %d s of 2-step sagas at full load (%d submitted, %d succeed) | %s | %s | %s |" % (
          f["soak_seconds"], f["soak_requests"], f["soak_succeed"], mb(f["soak_end_rss_kb"]),
          mb(f["soak_end_anon_kb"]), mb(f["soak_hwm_kb"])),
      "", "RSS every 5 s during the soak (MB): " + ", ".join(
          "%ds %.1f" % (s["t"], s["rss_kb"] / 1024.0) for s in samples),
      "", "Growth from 10 s to the end: %+d kB RSS, %+d kB private." % (
          f["soak_growth_kb"], f["soak_growth_anon_kb"]),
      "The rest of RSS is shared libraries' pages (%s when idle: what loading "
      "libcurl's dependencies touched, docs/footprint.md), shared with every "
      "process using them." % mb(
          f["inflight_default_idle_rss_kb"] - f["inflight_default_idle_anon_kb"])]
open(out + "/soak.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PYEOF
