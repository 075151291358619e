"""GET /api/metrics: Prometheus text with dtm's metric names (docs/operations.md#metrics),
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


def test_grafana_dashboard_queries_existing_metrics(dtmd, stub, gid):
    """conf/grafana-dashboard.json: every metric (and every label it groups
    by) that its queries use is in GET /api/metrics once dtmd has run a
    transaction with a retried branch."""
    import json
    from dtmtest import REPO, wait_until
    dash = json.loads((REPO / "conf" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    assert len(exprs) >= 10
    stub.plan("TransIn", [ERROR])
    st, body = dtmd.api("POST", "/submit", saga(gid, [(stub.url("TransOut"), ""), (stub.url("TransIn"), "")]))
    assert st == 200, body
    dtmd.wait_status(gid, S, timeout=15)
    wait_until(lambda: "dtmd_retry_scanner_lag_seconds_count" in metrics(dtmd)[0]
               and "dtmd_event_loop_lag_seconds_count" in metrics(dtmd)[0], msg="lag samples")
    text, _ = metrics(dtmd)
    labels = {}  # sample name -> label names seen
    for ln in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? ", ln)
        if m:
            labels.setdefault(m.group(1), set()).update(re.findall(r'(\w+)="', m.group(3) or ""))
    used = set()
    for e in exprs:
        bare = re.sub(r"by \([^)]*\)", "", e)  # label names are not metrics
        for name in re.findall(r"\b(dtmd?_[a-z0-9_]+)\b", bare):
            used.add(name)
            assert name in labels, "%s (in %r) is not in /api/metrics" % (name, e)
        # every label a query groups by is on the metric it aggregates
        # (instance comes from Prometheus's scrape, le is a histogram's)
        for by, name in re.findall(r"by \(([^)]*)\) \((?:rate\()?(dtmd?_[a-z0-9_]+)", e):
            for label in (x.strip() for x in by.split(",")):
                if label not in ("le", "instance"):
                    assert label in labels[name], "%s has no label %s (%r)" % (name, label, e)
    # it covers every family dtmd exports
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in labels}
    covered = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert families <= covered, "not on the dashboard: %s" % sorted(families - covered)
