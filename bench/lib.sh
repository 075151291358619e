# bench/lib.sh - helpers shared by the bench scripts (sourced, not run).
#
# bench_tmp NAME    a temporary directory in $tmp; on exit (also Ctrl-C or
#                   kill) every pid in $pids is stopped (TERM, then KILL
#                   after STOP_WAIT tenths of a second, 50 by default) and
#                   $tmp removed, or kept with KEEP=1. Needs say() and $PY.
# port              a free loopback port
# wait_for PID CMD  until CMD succeeds, while PID lives; WAIT_S seconds at
#                   most (10 by default)

bench_cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt "${STOP_WAIT:-50}" ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ "${KEEP:-}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}

bench_tmp() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/dtmd-$1.XXXXXX")
    pids=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for() {
    wf_pid=$1
    shift
    i=0
    until "$@" >/dev/null 2>&1; do
        kill -0 "$wf_pid" 2>/dev/null || return 1
        i=$((i + 1))
        [ $i -le $((${WAIT_S:-10} * 10)) ] || return 1
        sleep 0.1
    done
}
