"""Operations: `dtmd --check-config`, the Log.* keys (JSON lines, access log,
file outputs reopened on SIGHUP) and dtmd's own metrics (branch call and
Redis latency, retry-scanner and event-loop lag)."""

import json
import os
import re
import signal
import subprocess

from dtmtest import DTMD_BIN, DTMD_WRAPPER, ERROR, S, http_request, parse_metrics, saga, wait_until


def check_config(args=(), env=None, conf=None, tmp_path=None):
    cmd = [str(DTMD_BIN), "--check-config"] + list(args)
    if conf is not None:
        path = tmp_path / "conf.yml"
        path.write_text(conf)
        cmd += ["-c", str(path)]
    e = {k: v for k, v in os.environ.items() if not re.match(r"^(STORE|LOG|AUTH|HTTP)_", k)}
    e.update(env or {})
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=10)
    return p.returncode, p.stdout, p.stderr


def values(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z.]+): (.*?)\s+# env \w+$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


# ---- --check-config ------------------------------------------------------------

def test_check_config_prints_effective_values(tmp_path):
    rc, out, err = check_config(tmp_path=tmp_path, conf="""
Store:
  Host: redis.internal
  Password: hunter2
HttpPort: 8080
LogLevel: warn
Log:
  Format: json
  Outputs: stderr
  Access: true
  RotationEnable: 0
AlertWebHook: "http://ops:s3cret@alerts.internal/hook"
""", env={"STORE_PORT": "6380", "AUTH_TOKEN": "tok-123"})
    assert rc == 0, err
    v = values(out)
    assert v["Store.Host"] == '"redis.internal"'
    assert v["Store.Port"] == "6380"  # the environment wins
    assert v["HttpPort"] == "8080"
    assert v["LogLevel"] == "warn"
    assert v["Log.Format"] == "json" and v["Log.Access"] == "true"
    assert v["Log.Outputs"] == '"stderr"'
    # secrets masked
    assert "hunter2" not in out and "tok-123" not in out and "s3cret" not in out
    assert v["Store.Password"] == '"****"'
    assert v.get("Auth.Token", '"****"') == '"****"'
    assert v["AlertWebHook"] == '"http://ops:****@alerts.internal/hook"'
    assert "configuration OK" in out
    # dtm's rotation keys are accepted with a warning
    assert "Log.RotationEnable is not used" in err


def test_check_config_defaults_and_log_level_alias(tmp_path):
    rc, out, _ = check_config()
    assert rc == 0
    v = values(out)
    assert v["LogLevel"] == "info" and v["Log.Format"] == "text" and v["Log.Access"] == "false"
    rc, out, _ = check_config(tmp_path=tmp_path, conf="Log:\n  Level: debug\n")
    assert rc == 0 and values(out)["LogLevel"] == "debug"


def test_check_config_refuses_bad_values(tmp_path):
    rc, out, err = check_config(tmp_path=tmp_path, conf="Log:\n  Format: xml\n")
    assert rc == 1 and "Log.Format" in err and "xml" in err
    rc, out, err = check_config(env={"LOG_ACCESS": "maybe"})
    assert rc == 1 and "Log.Access" in err
    rc, out, err = check_config(env={"HTTP_PORT": "99999"})
    assert rc == 1 and "HttpPort" in err
    rc, out, err = check_config(env={"LOG_OUTPUTS": str(tmp_path / "no" / "such" / "dir.log")})
    assert rc == 1 and "Log.Outputs" in err and "cannot open" in err
    rc, out, err = check_config(["-c", str(tmp_path / "missing.yml")])
    assert rc == 1 and "cannot open config file" in err


# ---- logs ----------------------------------------------------------------------

def dtmd_lines(d):
    """The log lines dtmd wrote (the harness adds ===== start markers)."""
    return [ln for ln in d.log.read_text(errors="replace").splitlines()
            if ln and not ln.startswith("=====")]


def test_json_log_lines_carry_gid(start_dtmd, stub, gid):
    d = start_dtmd(LOG_FORMAT="json")
    stub.plan("TransIn", [ERROR])
    st, body = d.submit(saga(gid, [(stub.url("TransIn"), "")]))
    assert st == 200, body
    d.wait_status(gid, S)
    lines = dtmd_lines(d)
    recs = [json.loads(ln) for ln in lines]  # every line is JSON
    for r in recs:
        assert set(r) >= {"ts", "level", "msg"}, r
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["ts"]), r
        assert r["level"] in ("debug", "info", "warn", "error")
    about = [r for r in recs if gid in r["msg"]]
    assert about, lines[-20:]
    # every line about the transaction names it in "gid"
    assert all(r.get("gid") == gid for r in about if ("gid " + gid) in r["msg"]), about
    assert any("failed: HTTP 500" in r["msg"] and r.get("gid") == gid for r in recs)


def test_access_log(start_dtmd, gid):
    d = start_dtmd(LOG_ACCESS="true")
    d.api("GET", "/query?gid=" + gid)
    d.api("POST", "/submit", {"gid": gid})  # 400
    http_request("GET", d.host + "/admin/app.js")
    lines = dtmd_lines(d)
    acc = [ln for ln in lines if " access " in ln]
    assert any(re.search(r" access GET /api/dtmsvr/query\?gid=%s 200 [\d.]+ms 127\.0\.0\.1$" % re.escape(gid), ln)
               for ln in acc), acc
    assert any(re.search(r" access POST /api/dtmsvr/submit 400 [\d.]+ms", ln) for ln in acc), acc
    assert any(" access GET /admin/app.js 200 " in ln for ln in acc), acc
    # off by default
    d2 = start_dtmd()
    d2.api("GET", "/query?gid=" + gid)
    assert not [ln for ln in dtmd_lines(d2) if " access " in ln]


def test_access_log_json(start_dtmd, gid):
    d = start_dtmd(LOG_ACCESS="1", LOG_FORMAT="json")
    d.api("GET", "/query?gid=" + gid)
    recs = [json.loads(ln) for ln in dtmd_lines(d)]
    acc = [r for r in recs if r["msg"] == "access"]
    assert any(r["method"] == "GET" and r["path"] == "/api/dtmsvr/query?gid=" + gid and
               r["status"] == 200 and isinstance(r["ms"], (int, float)) for r in acc), acc


def test_log_file_reopened_on_sighup(start_dtmd, tmp_path, gid):
    logfile = tmp_path / "out" / "dtmd.log"
    logfile.parent.mkdir()
    d = start_dtmd(LOG_OUTPUTS="%s,stderr" % logfile, LOG_ACCESS="true")
    d.api("GET", "/query?gid=%s-before" % gid)
    wait_until(lambda: "%s-before" % gid in logfile.read_text(), msg="line in the log file")
    assert "%s-before" % gid in d.log.read_text()  # stderr too
    rotated = tmp_path / "out" / "dtmd.log.1"
    os.rename(logfile, rotated)  # what logrotate does (without copytruncate)
    d.api("GET", "/query?gid=%s-moved" % gid)  # still goes to the renamed file
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: logfile.exists() and "log files reopened" in logfile.read_text(),
               msg="a new log file after SIGHUP")
    d.api("GET", "/query?gid=%s-after" % gid)
    wait_until(lambda: "%s-after" % gid in logfile.read_text(), msg="new lines in the new file")
    old = rotated.read_text()
    assert "%s-before" % gid in old and "%s-moved" % gid in old and "%s-after" % gid not in old
    assert "%s-before" % gid not in logfile.read_text()
    assert d.running


# ---- metrics ------------------------------------------------------------------

def metrics(d):
    st, text, _ = http_request("GET", d.url("/api/metrics"))
    assert st == 200
    return text, parse_metrics(text)


def test_ops_metrics(dtmd, stub, gid):
    stub.plan("TransIn", [ERROR])
    st, body = dtmd.submit(saga(gid, [(stub.url("TransOut"), ""), (stub.url("TransIn"), "")]))
    assert st == 200, body
    dtmd.wait_status(gid, S)
    wait_until(lambda: metrics(dtmd)[1].get("dtmd_event_loop_lag_seconds_count", 0) >= 2,
               msg="event-loop lag samples")
    text, v = metrics(dtmd)
    # branch call latency by op and outcome: TransOut ok, TransIn 500 then ok
    ok = 'dtmd_branch_call_duration_seconds_count{op="action",outcome="success"}'
    bad = 'dtmd_branch_call_duration_seconds_count{op="action",outcome="error"}'
    assert v[ok] == 2 and v[bad] == 1, text
    assert v['dtmd_branch_call_duration_seconds_bucket{op="action",outcome="success",le="+Inf"}'] == 2
    assert v['dtmd_branch_call_duration_seconds_sum{op="action",outcome="success"}'] > 0
    # Redis command latency: every state change is a script call
    assert v["dtmd_redis_command_duration_seconds_count"] >= 3
    assert v['dtmd_redis_command_duration_seconds_bucket{le="+Inf"}'] == \
        v["dtmd_redis_command_duration_seconds_count"]
    # the failed action was retried by the scanner: one lag sample at least
    assert v["dtmd_retry_scanner_lag_seconds_count"] >= 1
    assert 0 <= v["dtmd_retry_scanner_lag_seconds_sum"] < 10
    # event-loop lag: histogram plus the latest probe
    assert v["dtmd_event_loop_lag_seconds_count"] >= 2
    assert 0 <= v["dtmd_event_loop_lag_last_seconds"] < 1
    # in-flight gauges still there
    assert v["dtmd_active_passes"] == 0 and v["dtmd_branch_calls_in_flight"] == 0
    for fam in ("dtmd_branch_call_duration_seconds", "dtmd_redis_command_duration_seconds",
                "dtmd_retry_scanner_lag_seconds", "dtmd_event_loop_lag_seconds"):
        assert "# TYPE %s histogram" % fam in text
    # no empty label sets: a series without labels has no braces
    assert "{}" not in text and "{," not in text


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


