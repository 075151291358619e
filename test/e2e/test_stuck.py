"""Why is a transaction stuck? `query` shows each transaction's last branch
error (`last_error`: branch, op, URL, outcome, HTTP status and a body
excerpt or the transport error, time) and its `retry_count`, both always
present; branch errors are logged at warn with the gid; `/api/dtmsvr/all`
filters the stuck ones (`stuckRetries`, `stuckAge`). docs/operations.md#why-is-a-transaction-stuck."""

import json
import time

from dtmtest import RFC3339, P, S, free_port, http_request, parse_time, saga, wait_until


def retried(dtmd, gid, n):
    return wait_until(lambda: (lambda t: t if t.get("retry_count", 0) >= n else None)(
        dtmd.trans(gid)), 15, msg="%s retried %d times" % (gid, n))


def test_query_always_has_last_error_and_retry_count(dtmd, gid):
    st, body = dtmd.submit(saga(gid, [("", "")], wait_result=True))
    assert st == 200, body
    t = dtmd.trans(gid)
    assert t["status"] == S
    assert t["retry_count"] == 0 and t["last_error"] is None, t


def test_last_error_http_status_and_body(dtmd, stub, gid):
    stub.set_default("Broken", 503, "down for maintenance " + "x" * 400)
    t0 = time.time()
    st, body = dtmd.submit(saga(gid, [(stub.url("Broken"), stub.url("BrokenRevert"))]))
    assert st == 200, body
    t = retried(dtmd, gid, 2)
    assert t["status"] == "submitted"
    e = t["last_error"]
    assert e["branch_id"] == "01" and e["op"] == "action" and e["url"] == stub.url("Broken"), e
    assert e["outcome"] == "ERROR" and e["http_status"] == 503, e
    assert e["body"].startswith("down for maintenance xxx") and len(e["body"]) == 200, e
    assert "transport_error" not in e
    assert RFC3339.match(e["time"]) and parse_time(e["time"]).timestamp() >= t0 - 1, e
    # the log has the error at warn, with the gid
    log = dtmd.log.read_text(errors="replace")
    assert any(" warn " in ln and gid in ln and "503" in ln for ln in log.splitlines()), log[-2000:]

    # it stays after the branch recovers: the last error, not a current one
    stub.set_default("Broken", 200)
    q = dtmd.wait_status(gid, S)
    t = q["transaction"]
    assert t["last_error"]["http_status"] == 503 and t["retry_count"] >= 2


def test_last_error_transport_error_and_ongoing(dtmd, stub, gid):
    dead = "http://127.0.0.1:%d/api/busi/Nobody" % free_port()
    st, body = dtmd.submit(saga(gid, [(dead, "")]))
    assert st == 200, body
    e = retried(dtmd, gid, 1)["last_error"]
    assert e["outcome"] == "ERROR" and e["url"] == dead, e
    assert "http_status" not in e and e["transport_error"], e

    # ONGOING is recorded too: "not yet" is the answer that keeps it open
    g2 = gid + "-ongoing"
    stub.set_default("Slow", 425, '{"dtm_result":"ONGOING"}')
    st, body = dtmd.submit(saga(g2, [(stub.url("Slow"), "")]))
    assert st == 200, body
    e = retried(dtmd, g2, 1)["last_error"]
    assert e["outcome"] == "ONGOING" and e["http_status"] == 425, e


def test_last_error_of_msg_check_back(start_dtmd, stub, gid):
    dtmd = start_dtmd(TIMEOUT_TO_FAIL=0.3)
    stub.set_default("QueryPrepared", 500, "db gone")
    st, body = dtmd.api("POST", "/prepare", body={
        "gid": gid, "trans_type": "msg", "query_prepared": stub.url("QueryPrepared"),
        "steps": [{"action": stub.url("TransIn")}], "payloads": ["{}"]})
    assert st == 200, body
    e = retried(dtmd, gid, 1)["last_error"]
    assert e["url"] == stub.url("QueryPrepared") and e["http_status"] == 500, e
    assert e["body"] == "db gone" and e["branch_id"] == "00", e


def test_last_error_survives_restart(dtmd, stub, gid):
    stub.set_default("Broken", 500, "nope")
    st, body = dtmd.submit(saga(gid, [(stub.url("Broken"), "")]))
    assert st == 200, body
    n = retried(dtmd, gid, 1)["retry_count"]
    dtmd.restart()
    t = dtmd.trans(gid)
    assert t["retry_count"] >= n and t["last_error"]["body"] == "nope", t


def test_all_stuck_filter(start_dtmd, stub, gid):
    dtmd = start_dtmd(TIMEOUT_TO_FAIL=300)  # the prepared TCC must stay prepared
    ok, bad, young = gid + "-ok", gid + "-bad", gid + "-young"
    stub.set_default("Broken", 500, "down")
    assert dtmd.submit(saga(ok, [("", "")]))[0] == 200
    assert dtmd.submit(saga(bad, [(stub.url("Broken"), "")]))[0] == 200
    st, body = dtmd.api("POST", "/prepare", body={"gid": young, "trans_type": "tcc"})
    assert st == 200, body
    retried(dtmd, bad, 2)

    def listed(**params):
        qs = "&".join("%s=%s" % kv for kv in params.items())
        st, body = dtmd.api("GET", "/all?limit=1000&" + qs)
        assert st == 200, body
        return {t["gid"]: t for t in body["transactions"] or []}

    everything = listed()
    assert {ok, bad, young} <= set(everything)
    assert "last_error" in everything[ok] and everything[bad]["last_error"]["body"] == "down"
    # retried at least twice: only the failing saga
    assert set(listed(stuckRetries=2)) == {bad}
    # older than a day: none; older than 0 s means every unfinished one
    assert listed(stuckAge=86400) == {}
    time.sleep(1.1)
    assert set(listed(stuckAge=1)) == {bad, young}
    # either criterion
    assert set(listed(stuckRetries=2, stuckAge=86400)) == {bad}
    for bad_param in ("stuckRetries=-1", "stuckAge=x", "stuckAge=1e30"):
        st, body = dtmd.api("GET", "/all?" + bad_param)
        assert st == 400 and "stuck" in body["message"], (bad_param, st, body)
