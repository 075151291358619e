"""AlertWebHook (docs/protocol.md#alerts): after a failed branch call doubled the
retry interval AlertRetryLimit times, dtmd logs a warning and POSTs
{"gid","status","branch","error","retry_count"} to the hook; the hook's own
answer does not matter and never delays the transaction."""

import json

from dtmtest import ERROR, S, saga


def test_alert_webhook_called_after_retry_limit(start_dtmd, stub, gid):
    d = start_dtmd(ALERT_WEB_HOOK=stub.url("Alert"), ALERT_RETRY_LIMIT=2)
    stub.set_default("Alert", status=500, body="hook down")  # ignored by dtmd
    stub.plan("TransIn", [ERROR] * 4)
    st, body = d.api("POST", "/submit", saga(gid, [(stub.url("TransIn"), stub.url("TransInRevert"))]))
    assert st == 200, body
    d.wait_status(gid, S, timeout=30)
    alerts = stub.calls("Alert")
    assert alerts, stub.summary()
    a = json.loads(alerts[0].body)
    assert a["gid"] == gid and a["status"] == "submitted"
    assert a["branch"] == stub.url("TransIn")
    assert "internal error from stub" in a["error"]
    assert a["retry_count"] >= 2
    assert alerts[0].method == "POST"
    # one alert per failed call from the limit on: calls 2..4 failed after >= 2 doublings
    assert 1 <= len(alerts) <= 3, len(alerts)
    assert "alert:" in d.log_tail(400)


def test_no_alert_below_limit(start_dtmd, stub, gid):
    d = start_dtmd(ALERT_WEB_HOOK=stub.url("Alert"), ALERT_RETRY_LIMIT=5)
    stub.plan("TransIn", [ERROR])
    st, body = d.api("POST", "/submit", saga(gid, [(stub.url("TransIn"), "")]))
    assert st == 200, body
    d.wait_status(gid, S, timeout=15)
    assert stub.count("Alert") == 0


def test_saga_failure_answer_is_not_alerted(start_dtmd, stub, gid):
    d = start_dtmd(ALERT_WEB_HOOK=stub.url("Alert"), ALERT_RETRY_LIMIT=0)
    stub.plan("TransIn", [(409, '{"dtm_result":"FAILURE"}', 0)])
    st, body = d.api("POST", "/submit", saga(gid, [(stub.url("TransIn"), stub.url("TransInRevert"))]))
    assert st == 200, body
    d.wait_status(gid, "failed", timeout=15)
    assert stub.count("Alert") == 0
