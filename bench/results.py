"""bench/results.py - the arithmetic of bench/run.sh.

  results.py half-delay FACTS CONNS   ms each wrk connection pauses to offer
                                      half of the saga workload's peak rate
  results.py report FACTS OUTDIR      print the table, write OUTDIR/results.json,
                                      OUTDIR/results.md (and results.gp/.dat for
                                      gnuplot when it is installed)

FACTS holds one "key value..." line per fact measured by run.sh.
"""

import json
import os
import re
import shutil
import sys

# Top-level commands dtmd sends (a script's inner commands also show up in
# INFO commandstats, so only these count as round trips). The runner's own
# polling uses EVAL and INFO, which are not counted.
DTMD_COMMANDS = ("evalsha", "hgetall", "hmget", "zrangebylex", "zrange", "del", "hdel")

# dtm (Go, Redis store) on a 2-core machine, wrk -t2 -c64 against a C stub
# (issue 4): completed tx/s, CPU ms per transaction, RSS MB.
DTM = {"saga": 3800, "saga_wait": 3400, "saga_empty_wait": 7200, "cpu_ms": 0.32, "rss_mb": 66}


def load(path):
    facts = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            facts[k] = v
    return facts


def pairs(text):
    it = text.split()
    return {it[i]: int(it[i + 1]) for i in range(0, len(it) - 1, 2)}


def wrk_stats(path):
    out = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "non2xx": 0, "sock_err": ""}
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
    with open(path) as f:
        for line in f:
            s = line.split()
            if line.startswith("Requests/sec:"):
                out["rps"] = float(s[1])
            elif "requests in" in line:
                out["requests"] = int(s[0])
            elif s and s[0] in ("50%", "99%"):
                m = re.match(r"([\d.]+)(us|ms|s|m)$", s[1])
                if m:
                    out["p%s_ms" % s[0][:-1]] = float(m.group(1)) * unit[m.group(2)]
            elif line.startswith("  Non-2xx"):
                out["non2xx"] = int(s[-1])
            elif "Socket errors" in line:
                out["sock_err"] = line.split(":", 1)[1].strip()
    return out


def workloads(facts):
    names = []
    for k in facts:
        m = re.match(r"w\.(.+)\.t_wrk$", k)
        if m:
            names.append(m.group(1))
    res = []
    http_rps = float(facts.get("http_rps") or 0)
    redis_ops = float(facts.get("redis_ops") or 0)
    for n in names:
        g = lambda key: facts.get("w.%s.%s" % (n, key), "")
        t0, t1 = map(float, g("t_wrk").split())
        tdone = float(g("t_done"))
        kind, empty, wait, delay = g("desc").split()
        tally = pairs(g("tally"))
        ok = tally.get("succeed", 0)
        span = tdone - t0
        c0, c1 = pairs(g("cmd0")), pairs(g("cmd1"))
        rt = sum(c1.get(c, 0) - c0.get(c, 0) for c in DTMD_COMMANDS)
        w = wrk_stats(g("wrk"))
        calls = int(g("branch_calls") or 0)
        cpu = float(g("cpu_s"))
        fl = lambda key: float(g(key) or 0)
        others = fl("busy_cpu_s") - cpu - fl("redis_cpu_s") - fl("stub_cpu_s") - fl("wrk_cpu_s")
        r = {
            "workload": n,
            "trans_type": kind,
            "empty_urls": empty == "1",
            "wait_result": wait == "1",
            "pause_ms": float(delay),
            "submits": w["requests"],
            "submit_rps": w["rps"],
            "p50_ms": w["p50_ms"],
            "p99_ms": w["p99_ms"],
            "non_2xx": w["non2xx"],
            "socket_errors": w["sock_err"],
            "statuses": tally,
            "completed": ok,
            "unfinished_or_failed": sum(tally.values()) - ok,
            "wrk_seconds": round(t1 - t0, 3),
            "drain_seconds": round(tdone - t1, 3),
            "completed_tps": round(ok / span, 1) if span > 0 else 0,
            "dtmd_cpu_s": cpu,
            "dtmd_cpu_s_per_1000_tx": round(cpu * 1000 / ok, 3) if ok else None,
            "dtmd_cpu_share": round(cpu / span, 3) if span > 0 else None,
            "cores_used": {  # average cores busy over the span
                "dtmd": round(cpu / span, 2), "redis": round(fl("redis_cpu_s") / span, 2),
                "stub": round(fl("stub_cpu_s") / span, 2), "wrk_and_runner": round(fl("wrk_cpu_s") / span, 2),
                "other_processes": round(max(0.0, others) / span, 2),
            },
            "peak_rss_kb": int(g("hwm_kb") or 0),
            "rss_kb": int(g("rss_kb") or 0),
            "branch_calls": calls,
            "branch_calls_per_tx": round(calls / ok, 3) if ok else None,
            "redis_round_trips": rt,
            "redis_round_trips_per_tx": round(rt / ok, 3) if ok else None,
        }
        # Ceilings: HTTP requests per transaction = the submit + its branch
        # calls; Redis: cas_update-sized script calls per transaction.
        http_per_tx = 1 + (calls / ok if ok else 0)
        r["http_ceiling_tps"] = round(http_rps / http_per_tx, 1) if http_rps else None
        rpt = r["redis_round_trips_per_tx"]
        r["redis_ceiling_tps"] = round(redis_ops / rpt, 1) if redis_ops and rpt else None
        for c in ("http", "redis"):
            cap = r["%s_ceiling_tps" % c]
            r["vs_%s_ceiling" % c] = round(r["completed_tps"] / cap, 3) if cap else None
        if n in DTM:
            r["vs_dtm"] = round(r["completed_tps"] / DTM[n], 2)
        res.append(r)
    return res


def half_delay(facts, conns):
    for r in workloads(facts):
        if r["workload"] == "saga" and r["completed_tps"] > 0:
            per_conn = r["completed_tps"] / 2 / conns  # requests/s per connection
            # minus ~1 ms: the latency of a request at half load
            return max(1, int(round(1000 / per_conn - 1)))
    return 10


def fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)


def report(facts, outdir):
    ws = workloads(facts)
    data = {
        "machine": {
            "nproc": int(facts.get("machine_nproc", 0)),
            "cpu": facts.get("machine_cpu", ""),
            "kernel": facts.get("machine_kernel", ""),
            "redis": facts.get("redis_version", ""),
            "wrk": facts.get("wrk_version", ""),
        },
        "wrk": {"duration": facts.get("duration"), "conns": int(facts.get("conns", 0)),
                "threads": int(facts.get("threads", 0))},
        "ceilings": {
            "http_stub_rps": float(facts.get("http_rps") or 0),
            "redis_evalsha_cas_update_ops": float(facts.get("redis_ops") or 0),
        },
        "dtmd": {
            "idle_rss_kb": int(facts.get("idle_rss_kb") or 0),
            "peak_rss_kb": int(facts.get("final_hwm_kb") or 0),
            "final_rss_kb": int(facts.get("final_rss_kb") or 0),
        },
        "background_cores": [float(facts.get("background_cores_before") or 0),
                             float(facts.get("background_cores_after") or 0)],
        "dtm_reference": DTM,
        "workloads": ws,
    }
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    m = data["machine"]
    lines = [
        "dtmd benchmark: %d cores (%s), %s, Redis %s, wrk %s -t%d -c%d -d%s"
        % (m["nproc"], m["cpu"], m["kernel"], m["redis"], m["wrk"], data["wrk"]["threads"],
           data["wrk"]["conns"], data["wrk"]["duration"]),
        "",
        "Ceilings in this run: stub over HTTP %s req/s; Redis EVALSHA cas_update %s ops/s."
        % (fmt(data["ceilings"]["http_stub_rps"]), fmt(data["ceilings"]["redis_evalsha_cas_update_ops"])),
        "Other processes on the machine kept %.2f cores busy before the run, %.2f after it."
        % tuple(data["background_cores"]),
        "",
        "| workload | completed tx/s | vs dtm | submits/s | p50 ms | p99 ms | CPU s / 1000 tx "
        "| Redis calls / tx | branch calls / tx | HTTP ceiling tx/s | Redis ceiling tx/s "
        "| of HTTP ceiling | of Redis ceiling | peak RSS MB | not succeed | cores dtmd/redis/stub/wrk/other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in ws:
        lines.append(
            "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |"
            % (r["workload"], fmt(r["completed_tps"]),
               fmt(r.get("vs_dtm"), "{:.1f}x"), fmt(r["submit_rps"]),
               fmt(r["p50_ms"], "{:.2f}"), fmt(r["p99_ms"], "{:.2f}"),
               fmt(r["dtmd_cpu_s_per_1000_tx"], "{:.3f}"), fmt(r["redis_round_trips_per_tx"], "{:.2f}"),
               fmt(r["branch_calls_per_tx"], "{:.2f}"), fmt(r["http_ceiling_tps"]),
               fmt(r["redis_ceiling_tps"]), fmt(r["vs_http_ceiling"], "{:.0%}"),
               fmt(r["vs_redis_ceiling"], "{:.0%}"), fmt(r["peak_rss_kb"] / 1024, "{:.1f}"),
               r["unfinished_or_failed"],
               "/".join("%.2f" % v for v in r["cores_used"].values())))
    lines += [
        "",
        "dtmd RSS: idle %.1f MB, after the runs %.1f MB, peak %.1f MB."
        % (data["dtmd"]["idle_rss_kb"] / 1024, data["dtmd"]["final_rss_kb"] / 1024,
           data["dtmd"]["peak_rss_kb"] / 1024),
        "completed tx/s = transactions stored as succeed / (first request .. last one finished, "
        "polled every 20 ms); CPU = dtmd utime+stime over that span; Redis calls = top-level "
        "commands dtmd sent (INFO commandstats), including the retry scanner's few; "
        "cores: average CPU over the span, 'other' = processes outside this benchmark.",
    ]
    for r in ws:
        if r["workload"] == "saga_half":
            lines.append("saga_half: each connection pauses %.0f ms between requests -> %s submits/s."
                         % (r["pause_ms"], fmt(r["submit_rps"])))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(text)
    print()
    print(text)
    if shutil.which("gnuplot"):
        with open(os.path.join(outdir, "results.dat"), "w") as f:
            for r in ws:
                f.write("%s %s\n" % (r["workload"], r["completed_tps"]))
        with open(os.path.join(outdir, "results.gp"), "w") as f:
            f.write('set terminal png size 800,400\nset output "%s"\n'
                    'set style data histograms\nset style fill solid\nset ylabel "completed tx/s"\n'
                    'plot "%s" using 2:xtic(1) title "dtmd, -c%d"\n'
                    % (os.path.join(outdir, "results.png"), os.path.join(outdir, "results.dat"),
                       data["wrk"]["conns"]))


if __name__ == "__main__":
    if sys.argv[1] == "half-delay":
        print(half_delay(load(sys.argv[2]), int(sys.argv[3])))
    else:
        report(load(sys.argv[2]), sys.argv[3])
