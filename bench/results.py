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
# polling uses EVAL and INFO, which are not counted. HMGET and HDEL are left
# out: the scripts run them inside (the stored status and type; the finishing
# write drops the hold), and dtmd sends them only for msg topics, which no
# workload here uses. WAIT is sent only with Store.WaitReplicas (the
# saga_replicated run).
DTMD_COMMANDS = ("evalsha", "hgetall", "zrangebylex", "zrange", "del", "wait")

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


def hist_load(path):
    """A wrk run's latency percentiles written by run.sh's done(): (n, [(p, us)])."""
    n, pts = 0, []
    with open(path) as f:
        for line in f:
            k, v = line.split()
            if k == "n":
                n = int(v)
            else:
                pts.append((float(k), float(v)))
    return n, sorted(pts)


def merged_percentiles(paths, ps=(50, 99)):
    """Percentiles (ms) of the union of several wrk runs' requests: each run's
    percentile points weighted by its request count and the share of requests
    each point stands for (accurate to the 0.5 % / 0.05 % spacing of the points)."""
    pts, total = [], 0
    for path in paths:
        n, q = hist_load(path)
        prev = 0.0
        for p, us in q:
            pts.append((us, n * (p - prev) / 100.0))
            prev = p
        total += n
    pts.sort()
    out = []
    for want in ps:
        acc, val = 0.0, pts[-1][0] if pts else None
        for us, w in pts:
            acc += w
            if acc >= total * want / 100.0 - 1e-9:
                val = us
                break
        out.append(None if val is None else round(val / 1000.0, 2))
    return out


def wrk_multi(paths, hists):
    """wrk_stats of one run, or of several in parallel (summed; latency merged)."""
    runs = [wrk_stats(p) for p in paths]
    if len(runs) == 1:
        out = dict(runs[0])
        out["per_wrk"] = None
        return out
    out = {"requests": sum(r["requests"] for r in runs), "rps": round(sum(r["rps"] for r in runs), 2),
           "non2xx": sum(r["non2xx"] for r in runs),
           "sock_err": "; ".join(r["sock_err"] for r in runs if r["sock_err"]),
           "per_wrk": [{k: r[k] for k in ("requests", "rps", "p50_ms", "p99_ms")} for r in runs]}
    if hists and all(os.path.exists(h) for h in hists):
        out["p50_ms"], out["p99_ms"] = merged_percentiles(hists)
        out["latency_merge"] = "merged distribution of all %d wrk runs" % len(runs)
    else:  # no percentile dumps: the worse of the runs
        out["p50_ms"] = max(r["p50_ms"] or 0 for r in runs)
        out["p99_ms"] = max(r["p99_ms"] or 0 for r in runs)
        out["latency_merge"] = "max over the wrk runs"
    return out


def redis_info(text):
    """run.sh's redis_info: (used_memory, used_memory_dataset, CPU seconds), or None."""
    it = text.split()
    return (int(it[0]), int(it[1]), float(it[2])) if len(it) == 3 else None


def redis_per_tx(before, after, n):
    """Redis bytes (used_memory, used_memory_dataset) and CPU ms per transaction."""
    a, b = redis_info(before), redis_info(after)
    if not a or not b or not n:
        return None, None, None
    return (round((b[0] - a[0]) / n), round((b[1] - a[1]) / n), round((b[2] - a[2]) * 1000 / n, 4))


def idle_calls_per_s(facts):
    """One idle dtmd's own Redis calls per second (liveness, scanner,
    trimmer), from run.sh's sample before the workloads; None without it."""
    span = float(facts.get("idle_span_s") or 0)
    if span <= 0 or "idle_cmd1" not in facts:
        return None
    c0, c1 = pairs(facts.get("idle_cmd0", "")), pairs(facts["idle_cmd1"])
    return sum(c1.get(c, 0) - c0.get(c, 0) for c in DTMD_COMMANDS) / span


def workloads(facts):
    names = []
    for k in facts:
        m = re.match(r"w\.(.+)\.t_wrk$", k)
        if m:
            names.append(m.group(1))
    res = []
    http_rps = float(facts.get("http_rps") or 0)
    redis_ops = float(facts.get("redis_ops") or 0)
    idle_rate = idle_calls_per_s(facts)
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
        w = wrk_multi(g("wrk").split(), g("hist").split())
        calls = int(g("branch_calls") or 0)
        cpu = float(g("cpu_s"))
        fl = lambda key: float(g(key) or 0)
        others = fl("busy_cpu_s") - cpu - fl("redis_cpu_s") - fl("stub_cpu_s") - fl("wrk_cpu_s")
        r = {
            "workload": n,
            "store": g("store") or "redis",
            "dtmd_processes": int(g("dtmd_procs") or 1),
            "duration": g("duration") or facts.get("duration"),
            "wrk": g("wrk_shape") or "-t%s -c%s" % (facts.get("threads"), facts.get("conns")),
            "trans_type": kind,
            "empty_urls": empty == "1",
            "wait_result": wait == "1",
            "pause_ms": float(delay),
            "submits": w["requests"],
            "submit_rps": w["rps"],
            "p50_ms": w["p50_ms"],
            "p99_ms": w["p99_ms"],
            "non_2xx": w["non2xx"],
            "per_wrk": w["per_wrk"],
            "socket_errors": w["sock_err"],
            "statuses": tally,
            "completed": ok,
            "unfinished_or_failed": sum(tally.values()) - ok,
            "unfinished_at_end": int(g("unfinished_end")) if g("unfinished_end").isdigit() else None,
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
            "peak_rss_kb_each": [int(v) for v in g("hwm_kb_each").split()] or None,
            "rss_kb": int(g("rss_kb") or 0),
            "pss_kb_at_end": int(g("pss_kb") or 0),
            "branch_calls": calls,
            "redis_keys_at_start": int(g("keys0") or 0),
            "branch_calls_per_tx": round(calls / ok, 3) if ok else None,
            "redis_round_trips": rt,
            "redis_commands": {c: c1.get(c, 0) - c0.get(c, 0) for c in DTMD_COMMANDS},
            "redis_round_trips_per_tx": round(rt / ok, 3) if ok else None,
            "parked": int(g("parked") or 0),
        }
        # without each dtmd's background calls over the run (a short run
        # with few transactions is otherwise dominated by them)
        if ok and idle_rate is not None:
            bg = idle_rate * r["dtmd_processes"] * span
            r["redis_round_trips_per_tx_net"] = round((rt - bg) / ok, 3)
        else:
            r["redis_round_trips_per_tx_net"] = None
        # Redis's INFO: memory added and CPU spent by the run, per completed
        # transaction (the transactions stay stored: FinishedDataExpire)
        mem, ds, rcpu = redis_per_tx(g("redis_info0"), g("redis_info1"), ok)
        r["redis_bytes_per_tx"], r["redis_dataset_bytes_per_tx"], r["redis_cpu_ms_per_tx"] = mem, ds, rcpu
        # Ceilings: HTTP requests per transaction = the submit + its branch
        # calls; Redis: cas_update-sized script calls per transaction.
        http_per_tx = 1 + (calls / ok if ok else 0)
        r["http_ceiling_tps"] = round(http_rps / http_per_tx, 1) if http_rps else None
        rpt = r["redis_round_trips_per_tx"]
        # (the Redis ceiling was measured on the single Redis, not the cluster)
        r["redis_ceiling_tps"] = (round(redis_ops / rpt, 1) if redis_ops and rpt
                                  and r["store"] == "redis" else None)
        for c in ("http", "redis"):
            cap = r["%s_ceiling_tps" % c]
            r["vs_%s_ceiling" % c] = round(r["completed_tps"] / cap, 3) if cap else None
        if "latency_merge" in w:
            r["latency"] = w["latency_merge"]
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


def inflight(facts):
    """dtmd's RSS with N transactions in flight (run.sh's second dtmd)."""
    if "inflight_n" not in facts:
        return None
    n = int(facts["inflight_n"])
    idle, rss = int(facts["inflight_idle_rss_kb"]), int(facts["inflight_rss_kb"])
    return {"n": n, "idle_rss_kb": idle, "rss_kb": rss, "active": int(float(facts["inflight_active"])),
            "calls_open": int(float(facts["inflight_calls"])),
            "rss_bytes_per_tx": round((rss - idle) * 1024 / n) if n else None}


def preload(facts):
    """The transactions copied into Redis before saga_half (bench/preload.lua)."""
    if "preload_written" not in facts:
        return None
    n = int(facts["preload_written"])
    a, b = redis_info(facts["preload_info0"]), redis_info(facts["preload_info1"])
    return {"target": int(facts["preload_target"]), "stored_before": int(facts["preload_stored_before"]),
            "written": n, "seconds": float(facts["preload_seconds"]),
            "template": facts["preload_template"],
            "template_memory_usage": int(facts.get("preload_template_memory_usage") or 0),
            "template_encoding": facts.get("preload_template_encoding"),
            "redis_bytes_per_tx": round((b[0] - a[0]) / n) if n and a and b else None,
            "redis_dataset_bytes_per_tx": round((b[1] - a[1]) / n) if n and a and b else None,
            "redis_used_memory_after": b[0] if b else None}


def fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)


def cluster_table(ws, facts):
    """The saga on the single Redis beside the cluster runs, one column each."""
    cols = [r for r in ws if r["workload"] == "saga"] + [r for r in ws if r["store"] == "cluster"]
    if not any(r["store"] == "cluster" for r in cols):
        return []
    head = {"redis": "single Redis, 1 dtmd", "cluster": "3-master cluster, %d dtmd"}

    def title(r):
        return head[r["store"]] % r["dtmd_processes"] if r["store"] == "cluster" else head["redis"]

    def row(label, f):
        return "| %s | %s |" % (label, " | ".join(f(r) for r in cols))

    lines = [
        "Saga (2 steps, real branches, `wait_result: false`) on the single Redis and on a "
        "private 3-master Redis Cluster (%s):" % facts.get("cluster_nodes", "loopback"),
        "",
        "| | %s |" % " | ".join(title(r) for r in cols),
        "|---|" + "---:|" * len(cols),
        row("wrk", lambda r: "%s -d%s" % (r["wrk"], r["duration"])),
        row("completed tx/s", lambda r: fmt(r["completed_tps"])),
        row("submits/s", lambda r: fmt(r["submit_rps"])),
        row("submit p50 / p99 ms", lambda r: "%s / %s" % (fmt(r["p50_ms"], "{:.2f}"), fmt(r["p99_ms"], "{:.2f}"))),
        row("dtmd CPU s / 1000 tx (all dtmd)", lambda r: fmt(r["dtmd_cpu_s_per_1000_tx"], "{:.3f}")),
        row("Redis calls / tx", lambda r: fmt(r["redis_round_trips_per_tx"], "{:.2f}")),
        row("Redis bytes / tx (all masters)", lambda r: fmt(r["redis_bytes_per_tx"])),
        row("Redis CPU ms / tx (all masters)", lambda r: fmt(r["redis_cpu_ms_per_tx"], "{:.4f}")),
        row("peak RSS MB per dtmd", lambda r: " / ".join(
            "%.1f" % (v / 1024) for v in (r["peak_rss_kb_each"] or [r["peak_rss_kb"]]))),
        row("statuses", lambda r: " ".join("%s %s" % kv for kv in sorted(r["statuses"].items())) or "-"),
        row("not succeed / unfinished", lambda r: "%d / %s" % (r["unfinished_or_failed"], fmt(r["unfinished_at_end"]))),
        row("cores dtmd/redis/stub/wrk/other", lambda r: "/".join("%.2f" % v for v in r["cores_used"].values())),
        "",
    ]
    for r in cols:
        if r.get("per_wrk"):
            lines.append("%s: p50 / p99 are of all requests of the %d wrk runs together (their latency "
                         "percentiles merged, weighted by requests); each run alone: %s." % (
                             title(r), len(r["per_wrk"]), "; ".join(
                                 "%s req, %s / %s ms" % (fmt(x["requests"]), fmt(x["p50_ms"], "{:.2f}"),
                                                          fmt(x["p99_ms"], "{:.2f}")) for x in r["per_wrk"])))
    lines.append("Cluster runs: dtmd CPU is the sum over the dtmd processes, redis the sum over the "
                 "3 masters; the Redis ceiling above was measured on the single Redis only.")
    return lines


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
            "idle_redis_calls_per_s": (round(idle_calls_per_s(facts), 1)
                                       if idle_calls_per_s(facts) is not None else None),
            "peak_rss_kb": int(facts.get("final_hwm_kb") or 0),
            "final_rss_kb": int(facts.get("final_rss_kb") or 0),
        },
        "inflight": inflight(facts),
        "preload": preload(facts),
        "background_cores": [float(facts.get("background_cores_before") or 0),
                             float(facts.get("background_cores_after") or 0)],
        "dtm_reference": DTM,
        "cluster": {"masters": 3, "replicas": 0, "nodes": facts.get("cluster_nodes"),
                    "duration": facts.get("cluster_duration"),
                    "workloads": [r["workload"] for r in ws if r["store"] == "cluster"]}
        if "cluster_nodes" in facts else None,
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
        "| of HTTP ceiling | of Redis ceiling | peak RSS MB | not succeed | cores dtmd/redis/stub/wrk/other "
        "| Redis B / tx | Redis dataset B / tx | Redis CPU ms / tx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in ws:
        if r["store"] != "redis":
            continue
        lines.append(
            "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |"
            % (r["workload"], fmt(r["completed_tps"]),
               fmt(r.get("vs_dtm"), "{:.1f}x"), fmt(r["submit_rps"]),
               fmt(r["p50_ms"], "{:.2f}"), fmt(r["p99_ms"], "{:.2f}"),
               fmt(r["dtmd_cpu_s_per_1000_tx"], "{:.3f}"), fmt(r["redis_round_trips_per_tx"], "{:.2f}"),
               fmt(r["branch_calls_per_tx"], "{:.2f}"), fmt(r["http_ceiling_tps"]),
               fmt(r["redis_ceiling_tps"]), fmt(r["vs_http_ceiling"], "{:.0%}"),
               fmt(r["vs_redis_ceiling"], "{:.0%}"), fmt(r["peak_rss_kb"] / 1024, "{:.1f}"),
               r["unfinished_or_failed"],
               "/".join("%.2f" % v for v in r["cores_used"].values()),
               fmt(r["redis_bytes_per_tx"]), fmt(r["redis_dataset_bytes_per_tx"]),
               fmt(r["redis_cpu_ms_per_tx"], "{:.4f}")))
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
    lines.append("dtmd PSS at the end of each run (shared libraries' pages divided among the processes "
                 "mapping them; kB): %s." % ", ".join("%s %s" % (r["workload"], fmt(r["pss_kb_at_end"]))
                                                      for r in ws if r["store"] == "redis"))
    lines.append("Redis B / tx = INFO used_memory (and used_memory_dataset) after the run minus before, "
                 "per completed transaction (they stay stored); Redis CPU = INFO used_cpu_sys + "
                 "used_cpu_user, the same way (dtmd's own is the CPU s / 1000 tx column).")
    inf = data["inflight"]
    if inf:
        lines.append("In flight: a second dtmd (default limits) with %s sagas whose branches never answer "
                     "(%s driven, %s calls open): RSS %.1f MB against %.1f MB idle = %s bytes per "
                     "in-flight transaction." % (fmt(inf["n"]), fmt(inf["active"]), fmt(inf["calls_open"]),
                                                 inf["rss_kb"] / 1024, inf["idle_rss_kb"] / 1024,
                                                 fmt(inf["rss_bytes_per_tx"])))
    pre = data["preload"]
    if pre:
        lines.append("Preload before saga_half: %s copies of %s (a finished saga of the saga run, %s, "
                     "MEMORY USAGE %s B) in %.1f s, %s stored before: %s Redis bytes per stored "
                     "transaction (dataset %s); Redis used_memory %.0f MB after."
                     % (fmt(pre["written"]), pre["template"], pre["template_encoding"],
                        fmt(pre["template_memory_usage"]), pre["seconds"], fmt(pre["stored_before"]),
                        fmt(pre["redis_bytes_per_tx"]), fmt(pre["redis_dataset_bytes_per_tx"]),
                        (pre["redis_used_memory_after"] or 0) / 1e6))
    for r in ws:
        if r["workload"] in ("saga_half", "saga_half_fresh"):
            lines.append("%s: each connection pauses %.0f ms between requests -> %s submits/s; "
                         "%s keys in Redis at its start."
                         % (r["workload"], r["pause_ms"], fmt(r["submit_rps"]),
                            fmt(r["redis_keys_at_start"])))
        if r["workload"] == "saga_replicated":
            lines.append("saga_replicated: the saga with Store.WaitReplicas 1 against a replica "
                         "on :%s (a dtmd of its own, after the runs above); every write waits for "
                         "one WAIT per loop turn, counted in its Redis calls." % facts.get("replica_port", "?"))
    ct = cluster_table(ws, facts)
    if ct:
        lines += [""] + ct
    text = "\n".join(lines) + "\n"
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(text)
    print()
    print(text)
    if shutil.which("gnuplot"):
        with open(os.path.join(outdir, "results.dat"), "w") as f:
            for r in ws:
                f.write("%s %s\n" % (r["workload"], r["completed_tps"]))  # cluster runs included
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
