"""dtm's JSON-RPC protocol, both sides (src/api_jsonrpc.c, src/jsonrpc.c).

Server: POST /api/json-rpc with {"jsonrpc":"2.0","id","method","params"}
for newGid, prepare, submit, abort, registerBranch, answered HTTP 200 with
{"error","id","jsonrpc","result"} (dtmsvr/api_json_rpc.go). The Go SDK with
protocol json-rpc sends {"id":"no-use","jsonrpc":"2.0","method":<op>,
"params":<the HTTP body>} and takes any "error" as a failure.

Branches: a transaction with "protocol":"json-rpc" has each branch URL that
contains "method" called with a JSON-RPC request: POST to the URL as it is,
{"id","jsonrpc":"2.0","method":<the URL's method>,"params":<payload object
+ gid, trans_type, branch_id, op>}; error code -32901 is FAILURE, -32902
ONGOING (dtmsvr/trans_status.go getJSONRPCResult).
"""

import json
import time

import pytest

from dtmtest import F, P, S

FAILURE, ONGOING_CODE, PARSE, INVALID, NO_METHOD, INTERNAL = \
    -32901, -32902, -32700, -32600, -32601, -32603


def rpc(dtmd, method, params, id_="no-use", raw=None):
    body = raw if raw is not None else json.dumps(
        {"jsonrpc": "2.0", "id": id_, "method": method, "params": params},
        separators=(",", ":"))
    st, resp = dtmd.api("POST", "/api/json-rpc", raw=body.encode())
    assert st == 200, (st, resp)
    assert isinstance(resp, dict) and set(resp) == {"error", "id", "jsonrpc", "result"}, resp
    assert resp["jsonrpc"] == "2.0", resp
    return resp


def rpc_ok(dtmd, method, params):
    resp = rpc(dtmd, method, params)
    assert resp["error"] is None and resp["id"] == "no-use", resp  # the Go SDK's check
    return resp


def rpc_error(resp, code, *needles):
    assert resp["error"] and resp["error"]["code"] == code, resp
    for n in needles:
        assert n in resp["error"]["message"], resp


def go_base(gid, trans_type, **extra):
    """The Go SDK's TransBase with WithProtocol json-rpc (encoding/json order)."""
    body = {"gid": gid, "trans_type": trans_type}
    body.update(extra)
    body.setdefault("concurrent", False)
    body["protocol"] = "json-rpc"
    return body


def rpc_saga(stub, gid, names=("TransOut", "TransIn"), payloads=None, **extra):
    steps = [{"action": stub.url("Rpc") + "?method=" + n,
              "compensate": stub.url("Rpc") + "?method=" + n + "Revert"} for n in names]
    return go_base(gid, "saga", steps=steps,
                   payloads=payloads or ['{"amount":30}'] * len(names), **extra)


def rpc_request(call):
    """The JSON-RPC request a branch got, checked for dtm's envelope."""
    assert call.method == "POST", call
    assert call.headers.get("content-type") == "application/json", call.headers
    req = json.loads(call.body)
    assert list(req) == ["id", "jsonrpc", "method", "params"], req  # Go map order
    assert req["jsonrpc"] == "2.0" and isinstance(req["id"], str) and len(req["id"]) == 22, req
    assert list(req["params"]) == sorted(req["params"]), req
    return req


# --------------------------------------------------------------------------
# server: the envelope

def test_envelope_errors(dtmd):
    """dtm's codes: -32700 unparsable, -32600 no id / not 2.0, -32601 unknown method."""
    r = rpc(dtmd, None, None, raw="{not json")
    rpc_error(r, PARSE, "Parse json error")
    assert r["id"] == "" and r["result"] is None
    r = rpc(dtmd, None, None, raw='{"jsonrpc":"2.0","id":7,"method":"newGid"}')
    rpc_error(r, PARSE)  # dtm's id is a string
    r = rpc(dtmd, "newGid", None, id_="")
    rpc_error(r, INVALID, "Bad json request")
    r = rpc(dtmd, None, None, raw='{"jsonrpc":"1.0","id":"a","method":"newGid"}')
    rpc_error(r, INVALID, "Bad json request")
    assert r["id"] == "a"
    r = rpc(dtmd, "query", {"gid": "x"}, id_="b")
    rpc_error(r, NO_METHOD, "Method not found: query")
    assert r["id"] == "b" and r["result"] is None


def test_new_gid(dtmd):
    r = rpc_ok(dtmd, "newGid", None)
    assert set(r["result"]) == {"gid"} and len(r["result"]["gid"]) == 22, r


def test_bad_params_are_internal_errors_and_store_nothing(dtmd, redis_server, gid):
    """dtm answers a request it cannot decode with -32603; dtmd's 400 message."""
    r = rpc(dtmd, "submit", {"trans_type": "saga"})
    rpc_error(r, INTERNAL, "gid")
    r = rpc(dtmd, "prepare", [1, 2])
    rpc_error(r, INTERNAL, "object")
    r = rpc(dtmd, "registerBranch", {"gid": gid, "trans_type": "tcc", "branch_id": 1})
    rpc_error(r, INTERNAL, "must be a string")
    assert r["result"] == {}
    assert redis_server.mentions(gid) == []


# --------------------------------------------------------------------------
# sagas over JSON-RPC, both ways

def test_saga_submit_calls_branches_with_json_rpc(dtmd, stub, gid):
    r = rpc_ok(dtmd, "submit", rpc_saga(stub, gid))
    assert r["result"] is None, r
    q = dtmd.wait_status(gid, S)
    calls = stub.calls("Rpc")
    assert [c.query["method"] for c in calls] == ["TransOut", "TransIn"], stub.summary()
    for i, c in enumerate(calls):
        assert c.raw_query == "method=" + ("TransOut", "TransIn")[i], c  # nothing appended
        req = rpc_request(c)
        assert req["method"] == ("TransOut", "TransIn")[i]
        assert req["params"] == {"amount": 30, "branch_id": "%02d" % (i + 1), "gid": gid,
                                 "op": "action", "trans_type": "saga"}, req
    assert [b["status"] for b in q["branches"]] == [P, S, P, S]
    assert q["transaction"]["protocol"] == "json-rpc"


def test_payload_fields_are_overridden_and_nested_keys_sorted(dtmd, stub, gid):
    payload = '{"z":{"b":1,"a":[{"d":2,"c":3}]},"gid":"spoofed","op":"x","amount":1}'
    rpc_ok(dtmd, "submit", rpc_saga(stub, gid, names=("One",), payloads=[payload]))
    dtmd.wait_status(gid, S)
    (c,) = stub.calls("Rpc")
    body = c.body.decode()
    params = rpc_request(c)["params"]
    assert params["gid"] == gid and params["op"] == "action", params
    assert '"z":{"a":[{"c":3,"d":2}],"b":1}' in body, body


@pytest.mark.parametrize("answer", [
    '{"jsonrpc":"2.0","id":"x","error":{"code":-32901,"message":"no money"},"result":null}',
    '{"jsonrpc":"2.0","id":"x","error":{"code":-32603,"message":"FAILURE"}}',
    ], ids=["code-32901", "text-FAILURE"])
def test_branch_failure_compensates(dtmd, stub, gid, answer):
    """A JSON-RPC FAILURE (by code, or by dtm's HTTP rule: the word in the
    body) fails the action: compensations, failed."""
    stub.plan("Rpc", [(200, '{"jsonrpc":"2.0","id":"x","result":{}}', 0), (200, answer, 0)])
    rpc_ok(dtmd, "submit", rpc_saga(stub, gid))
    dtmd.wait_status(gid, F)
    methods = [c.query["method"] for c in stub.calls("Rpc")]
    assert methods == ["TransOut", "TransIn", "TransInRevert", "TransOutRevert"], stub.summary()
    reqs = [rpc_request(c) for c in stub.calls("Rpc")]
    assert [r["params"]["op"] for r in reqs] == ["action", "action", "compensate", "compensate"]


@pytest.mark.parametrize("answer", [
    '{"jsonrpc":"2.0","id":"x","error":{"code":-32902,"message":"wait"}}',
    '{"jsonrpc":"2.0","id":"x","error":{"code":-32000,"message":"boom"}}',
    "not json",
    ], ids=["ongoing-32902", "other-error", "not-json"])
def test_branch_ongoing_or_error_is_retried(dtmd, stub, gid, answer):
    stub.plan("Rpc", [(200, answer, 0)])
    rpc_ok(dtmd, "submit", rpc_saga(stub, gid, names=("One",)))
    dtmd.wait_status(gid, S)
    assert [c.query["method"] for c in stub.calls("Rpc")] == ["One", "One"], stub.summary()


def test_wait_result_failure_is_code_32901(dtmd, stub, gid):
    stub.plan("Rpc", [(200, '{"jsonrpc":"2.0","id":"x","error":{"code":-32901,"message":"no"}}',
                       0)])
    r = rpc(dtmd, "submit", rpc_saga(stub, gid, names=("One",), wait_result=True))
    rpc_error(r, FAILURE, "return failed")
    assert r["error"]["message"].endswith(" FAILURE"), r
    assert r["result"] == {}
    assert dtmd.status(gid) == F


def test_url_without_method_is_a_plain_http_call(dtmd, stub, gid):
    """dtm calls a json-rpc transaction's URL without "method" over plain HTTP."""
    body = go_base(gid, "saga", steps=[{"action": stub.url("Plain"),
                                        "compensate": stub.url("PlainRevert")}],
                   payloads=['{"amount":30}'])
    rpc_ok(dtmd, "submit", body)
    dtmd.wait_status(gid, S)
    (c,) = stub.calls("Plain")
    assert c.query["gid"] == gid and c.query["op"] == "action", c
    assert c.body == b'{"amount":30}'


def test_payload_not_an_object_is_never_sent(dtmd, stub, gid):
    """dtm cannot build params from a payload that is not a JSON object: the
    call errs and is retried, the branch never called."""
    rpc_ok(dtmd, "submit", rpc_saga(stub, gid, names=("One",), payloads=["[1]"]))
    time.sleep(1.0)
    assert stub.calls() == [], stub.summary()
    assert dtmd.status(gid) == "submitted"


# --------------------------------------------------------------------------
# TCC and msg over JSON-RPC

def test_tcc_over_json_rpc(dtmd, stub, gid):
    rpc_ok(dtmd, "prepare", go_base(gid, "tcc"))
    reg = {"branch_id": "01", "cancel": stub.url("Rpc") + "?method=Cancel",
           "confirm": stub.url("Rpc") + "?method=Confirm", "data": '{"amount":30}',
           "gid": gid, "trans_type": "tcc"}
    rpc_ok(dtmd, "registerBranch", reg)
    rpc_ok(dtmd, "submit", go_base(gid, "tcc"))
    dtmd.wait_status(gid, S)
    (c,) = stub.calls("Rpc")
    req = rpc_request(c)
    assert req["method"] == "Confirm" and req["params"]["op"] == "confirm", req
    # a prepare of the finished transaction: dtm's FAILURE, as -32901
    r = rpc(dtmd, "prepare", go_base(gid, "tcc"))
    rpc_error(r, FAILURE, "FAILURE")


def test_tcc_abort_over_json_rpc(dtmd, stub, gid):
    rpc_ok(dtmd, "prepare", go_base(gid, "tcc"))
    reg = {"branch_id": "01", "cancel": stub.url("Rpc") + "?method=Cancel",
           "confirm": stub.url("Rpc") + "?method=Confirm", "data": '{"amount":30}',
           "gid": gid, "trans_type": "tcc"}
    rpc_ok(dtmd, "registerBranch", reg)
    rpc_ok(dtmd, "abort", go_base(gid, "tcc", rollback_reason="try failed"))
    t = dtmd.wait_status(gid, F)["transaction"]
    assert t["rollback_reason"] == "try failed"
    (c,) = stub.calls("Rpc")
    assert rpc_request(c)["method"] == "Cancel"


def test_msg_over_json_rpc(dtmd, stub, gid):
    body = go_base(gid, "msg", steps=[{"action": stub.url("Rpc") + "?method=Deliver"}],
                   payloads=['{"amount":30}'], query_prepared=stub.url("QP"))
    rpc_ok(dtmd, "prepare", body)
    rpc_ok(dtmd, "submit", body)
    dtmd.wait_status(gid, S)
    (c,) = stub.calls("Rpc")
    req = rpc_request(c)
    assert req["method"] == "Deliver" and req["params"]["trans_type"] == "msg", req


def test_nul_in_params_is_refused_not_cut(dtmd, stub, redis_server, gid):
    """A payload holding \\u0000 cannot pass through the params tree whole:
    refused (-32603), nothing stored, rather than stored cut short."""
    body = rpc_saga(stub, gid, names=("One",), payloads=['{"a":"x\u0000y"}'])
    resp = rpc(dtmd, "submit", body)
    rpc_error(resp, INTERNAL, "NUL")
    assert redis_server.mentions(gid) == []
