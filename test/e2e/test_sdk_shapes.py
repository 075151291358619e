"""Golden request shapes of dtm's SDKs, end to end.

docs/sdk-compatibility.md is the matrix these tests come from: for each SDK
(Go client/dtmcli + client/workflow, Python dtmcli-py, Node.js dtmcli-node,
Java dtmcli-java, C# client-csharp, PHP dtmcli-php) every request it sends
to the server, byte for byte as its JSON serialiser writes it (key order,
spacing, nulls, empty arrays, escapes, extra fields), and what it checks in
the answer. Each test sends exactly that, applies the SDK's own check to the
answer, and then checks that dtmd behaves as dtm does: which branch URLs it
calls, with which method, query and body, and the final status.

The first tests are the incompatibilities of issue 19, each of which failed
before it was fixed.
"""

import base64
import json
import time
import urllib.parse

import pytest

from dtmtest import F, P, S, wait_until

OK = '{"dtm_result":"SUCCESS"}'


# --------------------------------------------------------------------------
# serialisers: the bytes each SDK's JSON library writes

def go_json(obj):
    """Go encoding/json: compact; struct fields in declaration order, map keys sorted."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def go_map(d):
    """A Go map[string]string: keys sorted."""
    return {k: d[k] for k in sorted(d)}


def py_json(obj):
    """requests' json=: json.dumps with its default ", " and ": " separators."""
    return json.dumps(obj)


def node_json(obj):
    """JSON.stringify: compact; undefined members left out, undefined array items null."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def java_json(pairs):
    """Jackson: compact. pairs is a list of (key, value) because Jackson writes
    the @JsonTypeInfo id "subType" and the @JsonProperty "subType" both."""
    return "{" + ",".join(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":"))
                          for k, v in pairs) + "}"


def _cs_escape_str(s):
    out = ['"']
    for ch in s:
        if ch in '"&\'<>+`\\' or ord(ch) < 0x20 or ord(ch) > 0x7e:
            out.append("\\\\" if ch == "\\" else "\\u%04X" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def cs_json(obj, indent=2, level=0):
    """System.Text.Json with WriteIndented = true and the default encoder, which
    writes '"', '&', "'", '<', '>', '+' and non-ASCII as \\uXXXX."""
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [inner + _cs_escape_str(k) + ": " + cs_json(v, indent, level + 1)
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if not obj:
            return "[]"
        return "[\n" + ",\n".join(inner + cs_json(v, indent, level + 1) for v in obj) + \
            "\n" + pad + "]"
    if isinstance(obj, str):
        return _cs_escape_str(obj)
    return json.dumps(obj)


def cs_compact(obj):
    """JsonSerializer.Serialize without options (payloads, custom_data)."""
    if isinstance(obj, dict):
        return "{" + ",".join(_cs_escape_str(k) + ":" + cs_compact(v) for k, v in obj.items()) + "}"
    if isinstance(obj, list):
        return "[" + ",".join(cs_compact(v) for v in obj) + "]"
    if isinstance(obj, str):
        return _cs_escape_str(obj)
    return json.dumps(obj)


def php_json(obj):
    """PHP json_encode (Guzzle's 'json' option): compact, "/" written as "\\/"."""
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/")


# --------------------------------------------------------------------------
# the checks each SDK makes on dtm's answer

def sdk_accepts(sdk, op, st, body):
    """Would this SDK take (st, body) from the server as success for op?"""
    text = body if isinstance(body, str) else json.dumps(body)
    if sdk == "java" and op in ("prepare", "registerBranch", "newGid"):
        return st == 200 and isinstance(body, dict) and body.get("dtm_result") == "SUCCESS"
    if sdk in ("php", "java"):
        return st == 200  # Guzzle / Feign throw on >= 400
    if sdk == "node" and op in ("saga-submit", "tcc", "registerTccBranch"):
        return st == 200  # checkStatus(status)
    # Go TransCallDtmExt, Python check_result, Node transCallDtm, C# CheckStatus
    return st == 200 and "FAILURE" not in text


def send(dtmd, path, raw, sdk, op, headers=None):
    st, body = dtmd.api("POST", path, raw=raw.encode(), headers=headers)
    assert sdk_accepts(sdk, op, st, body), "%s %s: %s %r" % (sdk, path, st, body)
    return st, body


def stored(dtmd, gid):
    return dtmd.query(gid)


def calls_of(stub, *names):
    return [c for c in stub.calls() if c.name in names]


def assert_branch_call(c, method, gid, trans_type, branch_id, op, body):
    assert c.method == method, (c, method)
    assert c.query.get("gid") == gid and c.query.get("trans_type") == trans_type, c.query
    assert c.query.get("branch_id") == branch_id and c.query.get("op") == op, c.query
    assert c.body == body.encode(), (c.body, body)


# --------------------------------------------------------------------------
# issue 19: what failed on dtmd

def test_node_saga_step_without_data_sends_payload_null(dtmd, stub, gid):
    """Node Saga.add(action, compensate) without postData: JSON.stringify(undefined)
    in an array is null. dtm stores an empty payload and calls the action with GET."""
    raw = node_json({"gid": gid, "trans_type": "saga",
                     "steps": [{"action": stub.url("A"), "compensate": stub.url("AR")},
                               {"action": stub.url("B"), "compensate": stub.url("BR")}],
                     "payloads": [None, '{"n":1}']})
    send(dtmd, "/submit", raw, "node", "saga-submit")
    q = dtmd.wait_status(gid, S)
    a, b = stub.calls("A")[0], stub.calls("B")[0]
    assert_branch_call(a, "GET", gid, "saga", "01", "action", "")
    assert_branch_call(b, "POST", gid, "saga", "02", "action", '{"n":1}')
    assert [x["status"] for x in q["branches"]] == [P, S, P, S]
    assert q["transaction"]["payloads"] == ["", '{"n":1}']


def test_xa_prepare_with_empty_steps_and_payloads(dtmd, stub, gid):
    """An SDK serialising its whole TransBase (Node.js 0.0.12's XA) sends
    "steps":[],"payloads":[] with trans_type xa: dtm ignores them."""
    base = {"gid": gid, "trans_type": "xa", "steps": [], "payloads": []}
    send(dtmd, "/prepare", node_json(base), "node", "prepare")
    reg = {"gid": gid, "trans_type": "xa", "branch_id": "01", "url": stub.url("Xa")}
    send(dtmd, "/registerBranch", node_json(reg), "node", "registerBranch")
    send(dtmd, "/submit", node_json(base), "node", "submit")
    dtmd.wait_status(gid, S)
    (c,) = stub.calls("Xa")
    assert_branch_call(c, "POST", gid, "xa", "01", "commit", "")


def test_msg_delay_given_at_submit(dtmd, stub, gid):
    """Node's Msg (like Go's and C#'s) adds custom_data {"delay": n} only in
    submit(). dtm runs the submit's pass with the submit's request, so the
    branch is called n seconds after the submit, not at once."""
    base = {"gid": gid, "trans_type": "msg", "steps": [{"action": stub.url("M")}],
            "payloads": ['{"k":1}'], "query_prepared": stub.url("QP")}
    send(dtmd, "/prepare", node_json(base), "node", "prepare")
    time.sleep(0.3)
    t0 = time.monotonic()
    send(dtmd, "/submit", node_json(dict(base, custom_data='{"delay": 2}')), "node", "submit")
    time.sleep(1.0)
    assert stub.calls("M") == [], stub.summary()
    assert dtmd.status(gid) == "submitted"
    dtmd.wait_status(gid, S, timeout=10)
    (c,) = stub.calls("M")
    assert 1.9 <= c.start - t0 < 3.5, c.start - t0
    assert_branch_call(c, "POST", gid, "msg", "01", "action", '{"k":1}')
    assert stub.calls("QP") == []
    t = dtmd.trans(gid)
    assert t["custom_data"] == '{"delay": 2}', t


def test_msg_submit_options_replace_prepared_ones(dtmd, stub, gid):
    """The other options a submit carries drive the delivery too (dtm's pass
    runs with the submit's request): its branch_headers and request_timeout."""
    base = {"gid": gid, "trans_type": "msg", "steps": [{"action": stub.url("M")}],
            "payloads": ['{"k":1}'], "query_prepared": stub.url("QP")}
    send(dtmd, "/prepare", go_json(base), "go", "prepare")
    sub = dict(base, branch_headers={"X-Tenant": "t9"}, request_timeout=7)
    send(dtmd, "/submit", go_json(sub), "go", "submit")
    dtmd.wait_status(gid, S)
    (c,) = stub.calls("M")
    assert c.headers.get("x-tenant") == "t9", c.headers
    t = dtmd.trans(gid)
    assert t.get("request_timeout") == 7, t


def test_wait_result_saga_failure_message_ends_with_failure(dtmd, stub, gid):
    """dtm writes a failed wait_result saga's message as
    "url:<url> return failed: <answer> FAILURE", the suffix added once even
    when the answer itself holds the word FAILURE."""
    answer = '{"dtm_result":"FAILURE","message":"no money"}'
    stub.plan("A", [(200, answer, 0)])
    raw = go_json({"gid": gid, "trans_type": "saga", "wait_result": True, "concurrent": False,
                   "steps": [{"action": stub.url("A"), "compensate": stub.url("AR")}],
                   "payloads": ['{"n":1}'], "protocol": ""})
    st, body = dtmd.api("POST", "/submit", raw=raw.encode())
    want = "url:%s return failed: %s FAILURE" % (stub.url("A"), answer)
    assert st == 409 and body == {"dtm_result": "FAILURE", "message": want}, (st, body)
    t = dtmd.trans(gid)
    assert t["status"] == F and t["rollback_reason"] == want, t


def test_reset_next_cron_time_of_finished_rewrites_it(dtmd, stub, redis_server, gid):
    """dtm's resetNextCronTime sets next_cron_time and update_time to now
    whatever the status; a finished transaction stays out of the due index."""
    raw = go_json({"gid": gid, "trans_type": "saga", "concurrent": False,
                   "steps": [{"action": stub.url("A"), "compensate": stub.url("AR")}],
                   "payloads": ['{"n":1}'], "protocol": ""})
    send(dtmd, "/submit", raw, "go", "submit")
    before = dtmd.wait_status(gid, S)["transaction"]
    time.sleep(0.05)
    zsets_before = {k: redis_server.cmd("ZRANGE", k, 0, -1) for k in redis_server.keys("*")
                    if redis_server.cmd("TYPE", k) == "zset"}
    ttl_before = [redis_server.cmd("TTL", k) for k in redis_server.keys("*%s*" % gid)]
    st, body = dtmd.api("POST", "/resetNextCronTime", raw=go_json({"gid": gid}).encode())
    assert (st, body) == (200, {"dtm_result": "SUCCESS"})
    after = dtmd.trans(gid)
    assert after["status"] == S
    assert after["next_cron_time"] != before["next_cron_time"], (before, after)
    assert after["update_time"] == after["next_cron_time"], after
    assert after["update_time"] > before["update_time"], (before, after)
    zsets_after = {k: redis_server.cmd("ZRANGE", k, 0, -1) for k in redis_server.keys("*")
                   if redis_server.cmd("TYPE", k) == "zset"}
    assert zsets_after == zsets_before
    ttl_after = [redis_server.cmd("TTL", k) for k in redis_server.keys("*%s*" % gid)]
    assert all(b - 2 <= a <= b for a, b in zip(ttl_after, ttl_before)), (ttl_before, ttl_after)
    assert stub.count("A") == 1


# --------------------------------------------------------------------------
# newGid and query (every SDK)

@pytest.mark.parametrize("sdk", ["go", "python", "node", "java", "csharp", "php"])
def test_new_gid(dtmd, sdk):
    """GET <server>/newGid: Go, Python, Node, PHP read "gid"; Java also needs
    dtm_result SUCCESS; C# reads gid with CheckStatus (200, no FAILURE)."""
    st, body = dtmd.api("GET", "/newGid")
    assert sdk_accepts(sdk, "newGid", st, body), (st, body)
    assert isinstance(body["gid"], str) and len(body["gid"]) >= 20, body


def test_ping_as_java_calls_it(dtmd):
    """Java's IDtmServerStub.ping: GET /api/ping."""
    st, body = dtmd.api("GET", "/api/ping")
    assert st == 200 and body == {"msg": "pong"}


def test_query_as_csharp_reads_it(dtmd, stub, gid):
    """C# Query/QueryStatus: GET /api/dtmsvr/query?gid=, CheckStatus, then
    "transaction" (times as DateTimeOffset, next_cron_interval an int) and
    "branches" (bin_data a string)."""
    raw = go_json({"gid": gid, "trans_type": "saga", "concurrent": False,
                   "steps": [{"action": stub.url("A"), "compensate": stub.url("AR")}],
                   "payloads": ['{"n":1}'], "protocol": ""})
    send(dtmd, "/submit", raw, "go", "submit")
    dtmd.wait_status(gid, S)
    st, body = dtmd.api("GET", "/api/dtmsvr/query?gid=" + urllib.parse.quote(gid))
    assert sdk_accepts("csharp", "query", st, body)
    t = body["transaction"]
    for k in ("create_time", "update_time", "next_cron_time", "finish_time"):
        assert "T" in t[k] and (t[k].endswith("Z") or t[k][-6] in "+-"), (k, t[k])
    assert isinstance(t["next_cron_interval"], int)
    assert t["status"] == S and t["gid"] == gid and t["trans_type"] == "saga"
    for b in body["branches"]:
        assert isinstance(b["branch_id"], str) and isinstance(b["op"], str)
        assert isinstance(b.get("bin_data", ""), str)


# --------------------------------------------------------------------------
# saga submit: one shape per SDK

def saga_steps(stub):
    return [{"action": stub.url("A"), "compensate": stub.url("AR")},
            {"action": stub.url("B"), "compensate": stub.url("BR")}]


def saga_shape(sdk, gid, stub, concurrent=False):
    steps = saga_steps(stub)
    payloads = ['{"amount":30}', '{"amount":40}']
    if sdk == "go":
        body = {"gid": gid, "trans_type": "saga"}
        if concurrent:
            body["custom_data"] = go_json({"concurrent": True, "orders": {"1": [0]}})
        body.update({"concurrent": concurrent, "steps": [go_map(s) for s in steps],
                     "payloads": payloads, "protocol": ""})
        return go_json(body), payloads
    if sdk == "python":
        # set_concurrent() makes build_custom_options read attributes the SDK
        # never sets (AttributeError): a concurrent Python saga never reaches dtm.
        return py_json({"gid": gid, "trans_type": "saga", "custom_data": None, "steps": steps,
                        "payloads": payloads, "query_prepared": None, "protocol": None,
                        "wait_result": False, "timeout_to_fail": 0, "request_timeout": 8,
                        "retry_interval": 0, "passthrough_headers": [], "branch_headers": {},
                        "concurrent": False}), payloads
    if sdk == "node":
        body = {"gid": gid, "trans_type": "saga", "steps": steps, "payloads": payloads}
        if concurrent:
            body["custom_data"] = node_json({"concurrent": True, "orders": {"1": [0]}})
        return node_json(body), payloads
    if sdk == "java":
        custom = java_json([("orders", {"1": [0]}), ("concurrent", True)]) if concurrent else None
        return java_json([("subType", "saga"), ("gid", gid), ("trans_type", "saga"),
                          ("subType", "saga"), ("steps", steps), ("payloads", payloads),
                          ("custom_data", custom), ("wait_result", False),
                          ("timeout_to_fail", 0), ("retry_interval", 0),
                          ("passthrough_headers", []), ("branch_headers", {})]), payloads
    if sdk == "csharp":
        cs_payloads = [cs_compact({"amount": 30}), cs_compact({"amount": 40})]
        custom = cs_compact({"orders": {"1": [0]}, "concurrent": True}) if concurrent else None
        return cs_json({"gid": gid, "trans_type": "saga", "custom_data": custom,
                        "wait_result": False, "timeout_to_fail": 0, "request_timeout": 0,
                        "retry_interval": 0, "branch_headers": None, "retry_limit": 0,
                        "retry_count": 0, "steps": steps, "payloads": cs_payloads,
                        "query_prepared": None, "protocol": None,
                        "rollback_reason": None}), ['{"amount":30}', '{"amount":40}']
    raise AssertionError(sdk)


@pytest.mark.parametrize("sdk", ["go", "python", "node", "java", "csharp"])
def test_saga_submit(dtmd, stub, gid, sdk):
    raw, payloads = saga_shape(sdk, gid, stub)
    send(dtmd, "/api/dtmsvr/submit", raw, sdk, "saga-submit")
    q = dtmd.wait_status(gid, S)
    assert [c.name for c in stub.calls()] == ["A", "B"], stub.summary()
    assert_branch_call(stub.calls("A")[0], "POST", gid, "saga", "01", "action", payloads[0])
    assert_branch_call(stub.calls("B")[0], "POST", gid, "saga", "02", "action", payloads[1])
    assert stub.calls("A")[0].headers.get("content-type") == "application/json"
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]


@pytest.mark.parametrize("sdk", ["go", "node", "java", "csharp"])
def test_saga_submit_concurrent_orders(dtmd, stub, gid, sdk):
    """EnableConcurrent + AddBranchOrder(1, [0]): custom_data {"concurrent":true,
    "orders":{"1":[0]}} in each SDK's key order and escaping; step 2 waits for 1."""
    raw, _ = saga_shape(sdk, gid, stub, concurrent=True)
    stub.plan("A", [(200, OK, 0.3)])
    send(dtmd, "/api/dtmsvr/submit", raw, sdk, "saga-submit")
    dtmd.wait_status(gid, S)
    a, b = stub.calls("A")[0], stub.calls("B")[0]
    assert b.start >= a.end, stub.summary()


@pytest.mark.parametrize("sdk", ["go", "python", "node", "java", "csharp"])
def test_saga_failure_compensates(dtmd, stub, gid, sdk):
    """An action answering 409 FAILURE: compensations run in reverse, failed."""
    raw, payloads = saga_shape(sdk, gid, stub)
    stub.plan("B", [(409, '{"error":"no stock"}', 0)])
    send(dtmd, "/api/dtmsvr/submit", raw, sdk, "saga-submit")
    dtmd.wait_status(gid, F)
    assert [c.name for c in stub.calls()] == ["A", "B", "BR", "AR"], stub.summary()
    assert_branch_call(stub.calls("AR")[0], "POST", gid, "saga", "01", "compensate", payloads[0])


# --------------------------------------------------------------------------
# msg: prepare, submit (with the delay only at submit), abort

def msg_shape(sdk, gid, stub, delay=0, with_delay=False):
    steps = [{"action": stub.url("M")}]
    payloads = ['{"amount":30}']
    qp = stub.url("QP")
    if sdk == "go":
        body = {"gid": gid, "trans_type": "msg"}
        if with_delay:
            body["custom_data"] = go_json({"delay": delay})
        body.update({"concurrent": False, "steps": steps, "payloads": payloads,
                     "query_prepared": qp, "protocol": ""})
        return go_json(body)
    if sdk == "python":
        return py_json({"gid": gid, "trans_type": "msg", "custom_data": None, "steps": steps,
                        "payloads": payloads, "query_prepared": qp, "protocol": None,
                        "wait_result": False, "timeout_to_fail": 0, "request_timeout": 8,
                        "retry_interval": 0, "passthrough_headers": [], "branch_headers": {},
                        "concurrent": False})
    if sdk == "node":
        body = {"gid": gid, "trans_type": "msg"}
        if with_delay:
            body["custom_data"] = '{"delay": %d}' % delay
        body.update({"steps": steps, "payloads": payloads, "query_prepared": qp})
        return node_json(body)
    if sdk == "csharp":
        return cs_json({"gid": gid, "trans_type": "msg",
                        "custom_data": cs_compact({"delay": delay}) if with_delay else None,
                        "wait_result": False, "timeout_to_fail": 0, "request_timeout": 0,
                        "retry_interval": 0, "branch_headers": None, "retry_limit": 0,
                        "retry_count": 0, "steps": steps,
                        "payloads": [cs_compact({"amount": 30})], "query_prepared": qp,
                        "protocol": None, "rollback_reason": None})
    raise AssertionError(sdk)


@pytest.mark.parametrize("sdk", ["go", "python", "node", "csharp"])
def test_msg_prepare_submit(dtmd, stub, gid, sdk):
    send(dtmd, "/api/dtmsvr/prepare", msg_shape(sdk, gid, stub), sdk, "prepare")
    assert dtmd.status(gid) == "prepared" and stub.calls() == []
    send(dtmd, "/api/dtmsvr/submit", msg_shape(sdk, gid, stub), sdk, "submit")
    dtmd.wait_status(gid, S)
    (c,) = stub.calls("M")
    assert_branch_call(c, "POST", gid, "msg", "01", "action", '{"amount":30}')


@pytest.mark.parametrize("sdk", ["go", "node", "csharp"])
def test_msg_delay_at_submit(dtmd, stub, gid, sdk):
    """SetDelay(1): prepare without custom_data, submit with it."""
    send(dtmd, "/api/dtmsvr/prepare", msg_shape(sdk, gid, stub), sdk, "prepare")
    t0 = time.monotonic()
    send(dtmd, "/api/dtmsvr/submit", msg_shape(sdk, gid, stub, 1, True), sdk, "submit")
    dtmd.wait_status(gid, S, timeout=10)
    (c,) = stub.calls("M")
    assert c.start - t0 >= 0.95, c.start - t0


@pytest.mark.parametrize("sdk", ["go", "python", "node", "csharp"])
def test_msg_abort_after_prepare(dtmd, stub, gid, sdk):
    """DoAndSubmit whose local transaction failed: abort with the msg body."""
    send(dtmd, "/api/dtmsvr/prepare", msg_shape(sdk, gid, stub), sdk, "prepare")
    send(dtmd, "/api/dtmsvr/abort", msg_shape(sdk, gid, stub), sdk, "abort")
    assert dtmd.status(gid) == F
    time.sleep(0.3)
    assert stub.calls() == [], stub.summary()


# --------------------------------------------------------------------------
# TCC: prepare, registerBranch / registerTccBranch, submit, abort

def tcc_global(sdk, gid, reason=None):
    if sdk == "go":
        body = {"gid": gid, "trans_type": "tcc", "concurrent": False, "protocol": ""}
        if reason:
            body["rollback_reason"] = reason
        return go_json(body)
    if sdk in ("python", "node"):
        return node_json({"gid": gid, "trans_type": "tcc"}) if sdk == "node" else \
            py_json({"gid": gid, "trans_type": "tcc"})
    if sdk == "php":
        return php_json({"gid": gid, "trans_type": "tcc"})
    if sdk == "java":
        return java_json([("subType", "OperatorParam"), ("gid", gid), ("trans_type", "tcc"),
                          ("subType", None)])
    if sdk == "csharp":
        return cs_json({"gid": gid, "trans_type": "tcc", "custom_data": None,
                        "wait_result": False, "timeout_to_fail": 0, "request_timeout": 0,
                        "retry_interval": 0, "branch_headers": None, "retry_limit": 0,
                        "retry_count": 0, "steps": None, "payloads": None,
                        "query_prepared": None, "protocol": None, "rollback_reason": reason})
    raise AssertionError(sdk)


def tcc_register(sdk, gid, stub, bid):
    data = {"amount": 30}
    c, x, t = stub.url("Confirm"), stub.url("Cancel"), stub.url("Try")
    if sdk == "go":
        return "/registerBranch", go_json(go_map({"gid": gid, "trans_type": "tcc",
                                                  "data": go_json(data), "branch_id": bid,
                                                  "confirm": c, "cancel": x})), go_json(data)
    if sdk == "python":
        d = json.dumps(data)
        return "/registerBranch", py_json({"gid": gid, "branch_id": bid, "trans_type": "tcc",
                                           "status": "prepared", "data": d, "confirm": c,
                                           "cancel": x}), d
    if sdk == "node":
        d = node_json(data)
        return "/registerTccBranch", node_json({"gid": gid, "branch_id": bid,
                                                "trans_type": "tcc", "status": "prepared",
                                                "data": d, "try": t, "confirm": c,
                                                "cancel": x}), d
    if sdk == "php":
        d = json.dumps(data, separators=(",", ":"))
        return "/registerTccBranch", php_json({"gid": gid, "branch_id": bid,
                                               "trans_type": "tcc", "status": "prepared",
                                               "data": d, "try": t, "confirm": c,
                                               "cancel": x}), d
    if sdk == "java":
        d = json.dumps(data, separators=(",", ":"))
        return "/registerBranch", java_json([("subType", "tcc"), ("gid", gid),
                                             ("trans_type", "tcc"), ("subType", "tcc"),
                                             ("branch_id", bid), ("status", "prepared"),
                                             ("data", d), ("confirm", c), ("cancel", x)]), d
    if sdk == "csharp":
        d = cs_compact(data)
        return "/registerBranch", cs_json({"gid": gid, "trans_type": "tcc", "data": d,
                                           "branch_id": bid, "confirm": c, "cancel": x}), d
    raise AssertionError(sdk)


TCC_SDKS = ["go", "python", "node", "php", "java", "csharp"]


@pytest.mark.parametrize("sdk", TCC_SDKS)
def test_tcc_confirm(dtmd, stub, gid, sdk):
    send(dtmd, "/api/dtmsvr/prepare", tcc_global(sdk, gid), sdk, "prepare")
    for bid in ("01", "02"):
        path, raw, data = tcc_register(sdk, gid, stub, bid)
        send(dtmd, "/api/dtmsvr" + path, raw, sdk, "registerBranch")
    send(dtmd, "/api/dtmsvr/submit", tcc_global(sdk, gid), sdk, "submit")
    dtmd.wait_status(gid, S)
    confirms = stub.calls("Confirm")
    assert [c.branch_id for c in confirms] == ["02", "01"], stub.summary()
    for c in confirms:
        assert_branch_call(c, "POST", gid, "tcc", c.branch_id, "confirm", data)
    assert stub.calls("Cancel") == [] and stub.calls("Try") == []


@pytest.mark.parametrize("sdk", TCC_SDKS)
def test_tcc_abort(dtmd, stub, gid, sdk):
    """A try failed: abort (C# and Go send the error as rollback_reason)."""
    send(dtmd, "/api/dtmsvr/prepare", tcc_global(sdk, gid), sdk, "prepare")
    path, raw, data = tcc_register(sdk, gid, stub, "01")
    send(dtmd, "/api/dtmsvr" + path, raw, sdk, "registerBranch")
    reason = "try failed" if sdk in ("go", "csharp") else None
    send(dtmd, "/api/dtmsvr/abort", tcc_global(sdk, gid, reason), sdk, "abort")
    t = dtmd.wait_status(gid, F)["transaction"]
    (c,) = stub.calls("Cancel")
    assert_branch_call(c, "POST", gid, "tcc", "01", "cancel", data)
    if reason:
        assert t["rollback_reason"] == reason, t


# --------------------------------------------------------------------------
# XA: prepare, registerBranch (url + branch_id, no data), submit, abort

def xa_global(sdk, gid, reason=None):
    if sdk == "go":
        body = {"gid": gid, "trans_type": "xa", "concurrent": False, "protocol": ""}
        if reason:
            body["rollback_reason"] = reason
        return go_json(body)
    if sdk == "node":
        return node_json({"gid": gid, "trans_type": "xa", "steps": [], "payloads": []})
    if sdk == "csharp":
        return cs_json({"gid": gid, "trans_type": "xa", "custom_data": None,
                        "wait_result": False, "timeout_to_fail": 0, "request_timeout": 0,
                        "retry_interval": 0, "branch_headers": None, "retry_limit": 0,
                        "retry_count": 0, "steps": None, "payloads": None,
                        "query_prepared": None, "protocol": None, "rollback_reason": reason})
    raise AssertionError(sdk)


def xa_register(sdk, gid, stub, bid):
    if sdk in ("go", "node"):
        return go_json(go_map({"gid": gid, "trans_type": "xa", "url": stub.url("Xa"),
                               "branch_id": bid}))
    return cs_json({"gid": gid, "trans_type": "xa", "branch_id": bid, "url": stub.url("Xa")})


@pytest.mark.parametrize("sdk", ["go", "node", "csharp"])
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_xa(dtmd, stub, gid, sdk, outcome):
    send(dtmd, "/api/dtmsvr/prepare", xa_global(sdk, gid), sdk, "prepare")
    for bid in ("01", "02"):
        send(dtmd, "/api/dtmsvr/registerBranch", xa_register(sdk, gid, stub, bid), sdk,
             "registerBranch")
    if outcome == "commit":
        send(dtmd, "/api/dtmsvr/submit", xa_global(sdk, gid), sdk, "submit")
        dtmd.wait_status(gid, S)
    else:
        send(dtmd, "/api/dtmsvr/abort", xa_global(sdk, gid, "local xa failed"), sdk, "abort")
        dtmd.wait_status(gid, F)
    calls = stub.calls("Xa")
    assert [c.branch_id for c in calls] == ["01", "02"], stub.summary()
    for c in calls:  # XA is always POST, even with no data
        assert_branch_call(c, "POST", gid, "xa", c.branch_id, outcome, "")


# --------------------------------------------------------------------------
# workflow (Go client/workflow, C# Dtmworkflow), protocol http

def wf_base(sdk, gid, stub):
    """The workflow's TransBase: custom_data {name, data (base64 of the input)},
    query_prepared the SDK's HTTP callback, protocol http."""
    if sdk == "go":
        return go_json({"gid": gid, "trans_type": "workflow",
                        "custom_data": go_json({"data": "eyJhIjoxfQ==", "name": "wf"}),
                        "concurrent": False, "query_prepared": stub.url("WfCallback"),
                        "protocol": "http"})
    return cs_json({"gid": gid, "trans_type": "workflow",
                    "custom_data": cs_compact({"name": "wf", "data": "eyJhIjoxfQ+="}),
                    "wait_result": False, "timeout_to_fail": 0, "request_timeout": 0,
                    "retry_interval": 0, "branch_headers": None, "retry_limit": 0,
                    "retry_count": 0, "steps": None, "payloads": None,
                    "query_prepared": stub.url("WfCallback"), "protocol": "http",
                    "rollback_reason": None})


def wf_json(sdk, obj):
    return go_json(obj) if sdk == "go" else cs_json(obj)


@pytest.mark.parametrize("sdk", ["go", "csharp"])
@pytest.mark.parametrize("result", ["succeed", "failed"])
def test_workflow(dtmd, stub, gid, sdk, result):
    """prepareWorkflow answers {"transaction", "progresses"} (Go reads it with
    protojson DiscardUnknown, C# with System.Text.Json); registerBranch records
    each branch; submit carries the outcome in req_extra."""
    st, body = send(dtmd, "/api/dtmsvr/prepareWorkflow", wf_base(sdk, gid, stub), sdk, "prepare")
    assert body["transaction"]["gid"] == gid and body["progresses"] == [], body
    reg = {"gid": gid, "trans_type": "workflow", "data": '{"r":1}', "branch_id": "01",
           "op": "action", "status": "succeed"}
    send(dtmd, "/api/dtmsvr/registerBranch", wf_json(sdk, go_map(reg) if sdk == "go" else reg),
         sdk, "registerBranch")
    st, body = send(dtmd, "/api/dtmsvr/prepareWorkflow", wf_base(sdk, gid, stub), sdk, "prepare")
    assert [(p["branch_id"], p["op"], p["status"]) for p in body["progresses"]] == \
        [("01", "action", "succeed")], body
    # Go decodes it into dtmgpb.DtmProgressesReply with protojson: the fields
    # it knows must have its types (bin_data is bytes: base64).
    for k in ("gid", "status", "rollback_reason", "result"):
        assert isinstance(body["transaction"].get(k, ""), str), body
    for p in body["progresses"]:
        assert base64.b64decode(p["bin_data"], validate=True) == b'{"r":1}', p
    extra = {"status": result, "rollback_reason": "" if result == "succeed" else "boom",
             "result": ""}
    sub = {"gid": gid, "trans_type": "workflow",
           "req_extra": go_map(extra) if sdk == "go" else extra}
    send(dtmd, "/api/dtmsvr/submit", wf_json(sdk, sub), sdk, "submit")
    t = dtmd.trans(gid)
    assert t["status"] == result, t
    assert stub.calls() == [], stub.summary()
    if result == "failed":
        assert t["rollback_reason"] == "boom", t
