"""Systematic malformed input: dtmd must answer every request sensibly and never die.

Each request gets 200, 400 or 409 (never 5xx, never a dropped connection) with a JSON
body, and dtmd still answers /api/ping afterwards. A crash is also caught by the
dtmd fixture at teardown.
"""

import json
import subprocess

import pytest

from dtmtest import new_gid

WEIRD = [None, True, False, 0, -1, 1.5, 2 ** 63, -(2 ** 63) - 1, 1e300, "", "x", "\u0000",
         "http://127.0.0.1:1/x", [], {}, [1], ["x"], [None], {"a": 1}, {"a": None}]

WEIRD_CUSTOM = [
    "", "null", "[]", '"s"', "1", "{", '{"orders":null}', '{"orders":{}}',
    '{"orders":{"0":[0]}}', '{"orders":{"1":[0,0,0]}}', '{"orders":{"-1":[0]}}',
    '{"orders":{"1":["0"]}}', '{"orders":{"1":[1.5]}}', '{"orders":{"1":[-1]}}',
    '{"orders":{"1":[99999999999999999999]}}', '{"orders":{"99999999999999999999":[0]}}',
    '{"orders":{"":[0]}}', '{"orders":{"1":null}}', '{"orders":{"1":{}}}',
    '{"orders":{"0":[1],"1":[0]}}', '{"concurrent":null}', '{"concurrent":1}',
    '{"concurrent":true,"orders":{"1":[0]},"extra":[1,{"b":2}]}',
]


def base(stub, gid):
    return {"gid": gid, "trans_type": "saga",
            "steps": [{"action": stub.url("F1"), "compensate": stub.url("F1R")},
                      {"action": stub.url("F2"), "compensate": stub.url("F2R")}],
            "payloads": ['{"a":1}', '{"a":2}']}


def variants(stub):
    keys = ["gid", "trans_type", "steps", "payloads", "custom_data", "wait_result",
            "retry_interval", "timeout_to_fail", "request_timeout", "retry_limit",
            "branch_headers", "concurrent", "protocol", "query_prepared", "passthrough_headers"]
    for k in keys:
        for v in WEIRD:
            yield "%s=%r" % (k, v), (k, v)
    for k in ("action", "compensate", "data"):
        for v in WEIRD:
            yield "steps[0].%s=%r" % (k, v), ("step", k, v)
    for v in WEIRD_CUSTOM:
        yield "custom_data=%r" % v, ("custom_data", v)


def build(stub, variant):
    gid = new_gid("fz")
    body = base(stub, gid)
    if variant[0] == "step":
        _, k, v = variant
        body["steps"][0][k] = v
    else:
        k, v = variant
        body[k] = v
    if body.get("wait_result") is True:
        body["wait_result"] = False  # keep the run short
    return body


def check_answer(st, resp, what):
    assert st in (200, 400, 409), "%s -> %s %r" % (what, st, resp)
    assert isinstance(resp, dict), "%s -> non-JSON %r" % (what, resp)
    if st == 400:
        assert isinstance(resp.get("message"), str) and resp["message"], (what, resp)


def test_submit_field_matrix(dtmd, stub):
    problems = []
    for what, variant in variants(stub):
        body = build(stub, variant)
        try:
            st, resp = dtmd.api("POST", "/submit", raw=json.dumps(body), timeout=10)
            check_answer(st, resp, what)
        except OSError as e:
            try:
                dtmd.proc.wait(2)  # did it die?
            except subprocess.TimeoutExpired:
                pass
            problems.append("%s: connection failed: %r; dtmd alive: %s" % (what, e, dtmd.running))
            if not dtmd.running:
                dtmd.start()  # keep going to list every bad case
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "%d bad answers:\n%s" % (len(problems), "\n".join(problems))
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})


RAW_BODIES = [
    b"", b" ", b"null", b"true", b"0", b"[]", b"{}", b"{", b"}", b"[", b'{"gid":}',
    b'{"gid":"x",}', b'{"gid":"x" "trans_type":"saga"}', b"\xff\xfe\x00", b"{\"gid\":\"\xff\"}",
    b'{"gid":"x","gid":"y","trans_type":"saga"}', b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000, b'{"gid":"' + b"\\u0000" * 10 + b'"}',
    b'{"gid":"x","trans_type":"saga","steps":[' + b'{"action":""},' * 5000 + b'{"action":""}]}',
]


@pytest.mark.parametrize("i", range(len(RAW_BODIES)))
def test_submit_raw_garbage(dtmd, i):
    raw = RAW_BODIES[i]
    st, resp = dtmd.api("POST", "/submit", raw=raw, timeout=10)
    check_answer(st, resp, raw[:60])
    assert st != 200 or raw.startswith(b'{"gid":"x","gid"'), (raw[:60], st, resp)
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})


QUERIES = [
    "/query?gid=%00", "/query?gid=" + "x" * 5000, "/query?gid=%ff%fe", "/query?gid=a&gid=b",
    "/query?gid", "/query?=x", "/query?gid=%", "/query?gid=%zz",
    "/all?limit=abc", "/all?limit=-1", "/all?limit=0", "/all?limit=99999999999999999999",
    "/all?position=garbage", "/all?position=%00", "/all?status=%ff", "/all?transType=",
    "/all?limit=1&position=" + "z" * 3000, "/all?createTimeStart=x", "/all?gid=",
    "/newGid?x=1", "/version?%%%",
]


@pytest.mark.parametrize("path", QUERIES)
def test_get_garbage(dtmd, path):
    st, resp = dtmd.api("GET", path, timeout=10)
    assert st in (200, 400, 404), (path, st, resp)
    if st == 400:
        assert isinstance(resp, dict) and resp.get("message"), (path, resp)
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})
