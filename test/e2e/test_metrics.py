"""GET /api/metrics: Prometheus text with dtm's metric names (PROTOCOL.md 1.2),
counting API requests, passes and branch calls; plus dtmd's own gauges."""

import re

from dtmtest import ERROR, S, http_request, parse_metrics, saga


def metrics(dtmd):
    st, body, headers = http_request("GET", dtmd.url("/api/metrics"))
    assert st == 200
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert ctype.startswith("text/plain"), ctype
    text = body.decode() if isinstance(body, bytes) else body
    return text, parse_metrics(text)


def test_metrics_count_requests_passes_and_branches(dtmd, stub, gid):
    stub.plan("TransIn", [ERROR])
    st, body = dtmd.api("POST", "/submit", saga(gid, [(stub.url("TransOut"), ""), (stub.url("TransIn"), "")]))
    assert st == 200, body
    dtmd.wait_status(gid, S, timeout=15)
    st, _ = dtmd.api("POST", "/submit", {"gid": gid})  # bad request: trans_type missing
    assert st == 400
    dtmd.api("GET", "/query?gid=" + gid)
    text, v = metrics(dtmd)
    assert v['dtm_server_process_total{type="http",api="submit",status="ok"}'] == 1
    assert v['dtm_server_process_total{type="http",api="submit",status="fail"}'] == 1
    assert v['dtm_server_process_total{type="http",api="query",status="ok"}'] >= 1
    assert v['dtm_server_response_duration_count{type="http",api="submit"}'] == 2
    assert v['dtm_server_response_duration_bucket{type="http",api="submit",le="+Inf"}'] == 2
    # one action failed once (500) and was retried by the scanner: two passes at least
    assert v['dtm_branch_process_total{model="saga",branchid="02",branchtype="action",status="fail"}'] == 1
    assert v['dtm_branch_process_total{model="saga",branchid="02",branchtype="action",status="ok"}'] == 1
    assert v['dtm_branch_process_total{model="saga",branchid="01",branchtype="action",status="ok"}'] == 1
    assert v['dtm_transaction_process_total{model="saga",status="ok"}'] >= 2
    assert v['dtm_transaction_handled_duration_count{model="saga"}'] >= 2
    assert v["dtmd_store_up"] == 1
    assert v["dtmd_active_passes"] == 0
    assert v["dtmd_parked_total"] == 0
    assert re.search(r'^dtm_server_info\{.*\} 1$', text, re.M)
    # the api label never carries a query string (bounded cardinality)
    assert "gid=" not in text


def test_metrics_only_get(dtmd):
    st, body = dtmd.api("POST", "/metrics", {})
    assert st == 404
