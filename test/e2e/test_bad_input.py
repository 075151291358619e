"""Bad requests: 400 + {"message": ...} and nothing stored (docs/protocol.md#bad-input)."""

import json

import pytest

from dtmtest import new_gid

URL = "http://127.0.0.1:9/api/busi/TransOut"  # never called
STEPS = [{"action": URL, "compensate": URL + "Revert"}]


def good(gid, **over):
    body = {"gid": gid, "trans_type": "saga", "steps": list(STEPS), "payloads": ['{"amount":30}']}
    body.update(over)
    return body


def without(d, key):
    d = dict(d)
    d.pop(key)
    return d


# Each case: gid -> raw request body (str). The gid is embedded where possible
# so we can check that nothing containing it was stored.
CASES = {
    "malformed-json": lambda g: '{"gid":"%s","trans_type":"saga","steps":[' % g,
    "trailing-garbage": lambda g: json.dumps(good(g)) + " xyz",
    "not-an-object-array": lambda g: json.dumps([good(g)]),
    "not-an-object-string": lambda g: json.dumps(g),
    "not-an-object-number": lambda g: "42",
    "empty-body": lambda g: "",
    "missing-gid": lambda g: json.dumps(without(good(g), "gid")),
    "empty-gid": lambda g: json.dumps(good("")),
    "gid-not-string": lambda g: json.dumps(good(12345)),
    "gid-too-long": lambda g: json.dumps(good(g + "x" * 300)),
    "missing-trans-type": lambda g: json.dumps(without(good(g), "trans_type")),
    "unknown-trans-type": lambda g: json.dumps(good(g, trans_type="sagax")),
    "empty-steps": lambda g: json.dumps(good(g, steps=[], payloads=[])),
    "missing-steps": lambda g: json.dumps(without(good(g), "steps")),
    "fewer-payloads": lambda g: json.dumps(good(g, steps=STEPS * 2, payloads=['{"a":1}'])),
    "no-payloads": lambda g: json.dumps(without(good(g), "payloads")),
    "grpc-action-url": lambda g: json.dumps(good(g, steps=[{"action": "grpc://x/svc.Busi/TransOut",
                                                             "compensate": URL}])),
    "ftp-compensate-url": lambda g: json.dumps(good(g, steps=[{"action": URL,
                                                                "compensate": "ftp://x/revert"}])),
    "relative-url": lambda g: json.dumps(good(g, steps=[{"action": "/api/busi/TransOut",
                                                         "compensate": URL}])),
    "steps-not-list": lambda g: json.dumps(good(g, steps="x")),
    "step-not-object": lambda g: json.dumps(good(g, steps=["x"])),
    "step-url-not-string": lambda g: json.dumps(good(g, steps=[{"action": 1, "compensate": URL}])),
    "payloads-not-list": lambda g: json.dumps(good(g, payloads='{"amount":30}')),
    "payload-not-string": lambda g: json.dumps(good(g, payloads=[{"amount": 30}])),
    "retry-interval-string": lambda g: json.dumps(good(g, retry_interval="10")),
    "timeout-to-fail-string": lambda g: json.dumps(good(g, timeout_to_fail="x")),
    "wait-result-string": lambda g: json.dumps(good(g, wait_result="yes")),
    "custom-data-object": lambda g: json.dumps(good(g, custom_data={"concurrent": True})),
    "custom-data-not-json": lambda g: json.dumps(good(g, custom_data="{concurrent: yes")),
    "custom-data-orders-not-object": lambda g: json.dumps(good(g, custom_data='{"orders":[1]}')),
    "custom-data-orders-out-of-range": lambda g: json.dumps(
        good(g, custom_data='{"concurrent":true,"orders":{"1":[5]}}',
             steps=STEPS * 2, payloads=["{}", "{}"])),
    "custom-data-orders-key-out-of-range": lambda g: json.dumps(
        good(g, custom_data='{"concurrent":true,"orders":{"7":[0]}}')),
    "custom-data-orders-key-not-number": lambda g: json.dumps(
        good(g, custom_data='{"concurrent":true,"orders":{"x":[0]}}')),
    "custom-data-orders-value-not-list": lambda g: json.dumps(
        good(g, custom_data='{"concurrent":true,"orders":{"0":1}}',
             steps=STEPS * 2, payloads=["{}", "{}"])),
    "custom-data-concurrent-not-bool": lambda g: json.dumps(good(g, custom_data='{"concurrent":"yes"}')),
    "branch-headers-list": lambda g: json.dumps(good(g, branch_headers=["a"])),
    "custom-data-orders-cycle": lambda g: json.dumps(
        good(g, custom_data='{"concurrent":true,"orders":{"0":[2],"1":[0],"2":[1]}}',
             steps=STEPS * 3, payloads=["{}", "{}", "{}"])),
    "custom-data-orders-bad-json-in-orders": lambda g: json.dumps(
        good(g, custom_data='{"concurrent":true,"orders":{"0":["1"]}}',
             steps=STEPS * 2, payloads=["{}", "{}"])),
    "legacy-data-missing-on-one-step": lambda g: json.dumps(
        without(good(g, steps=[dict(STEPS[0], data="{}"), dict(STEPS[0])]), "payloads")),
}


def assert_400(st, body):
    assert st == 400, "expected 400, got %s %r" % (st, body)
    assert isinstance(body, dict), "expected a JSON object, got %r" % (body,)
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    assert "SUCCESS" not in json.dumps(body), body


def assert_nothing_stored(dtmd, redis_server, gid):
    st, q = dtmd.api("GET", "/query?gid=" + gid)
    assert (st, q) == (200, {"transaction": None, "branches": []}), (st, q)
    assert redis_server.mentions(gid) == [], redis_server.keys()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_submit(dtmd, redis_server, case):
    gid = new_gid("bad-" + case)
    st, body = dtmd.api("POST", "/submit", raw=CASES[case](gid))
    assert_400(st, body)
    assert_nothing_stored(dtmd, redis_server, gid)
    # the server is still fine afterwards
    assert dtmd.api("GET", "/api/ping") == (200, {"msg": "pong"})


def test_oversized_body(start_dtmd, redis_server):
    d = start_dtmd(LIMITS_MAX_BODY_BYTES=1000)
    gid = new_gid("big")
    body = json.dumps(good(gid, payloads=['{"pad":"%s"}' % ("x" * 2000)]))
    assert len(body) > 2000
    st, resp = d.api("POST", "/submit", raw=body)
    assert_400(st, resp)
    assert_nothing_stored(d, redis_server, gid)
    # a body under the limit is accepted (the 400 above was about the size)
    gid2 = new_gid("small")
    small = good(gid2, steps=[{"action": "", "compensate": ""}])
    assert len(json.dumps(small)) < 1000
    assert d.api("POST", "/submit", body=small) == (200, {"dtm_result": "SUCCESS"})
    d.wait_status(gid2, "succeed")


def test_valid_body_is_accepted(dtmd, redis_server):
    """Control for the cases above: the 'good' body itself is accepted and stored."""
    gid = new_gid("control")
    body = good(gid, steps=[{"action": "", "compensate": ""}])
    assert dtmd.api("POST", "/submit", body=body) == (200, {"dtm_result": "SUCCESS"})
    dtmd.wait_status(gid, "succeed")
    assert redis_server.mentions(gid)


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/dtmsvr/doesNotExist"),
    ("POST", "/api/dtmsvr/doesNotExist"),
    ("GET", "/nothing/here"),
    ("GET", "/api/dtmsvr/submit"),  # wrong method: 404 like gin
])
def test_unknown_route_404(dtmd, method, path):
    st, body = dtmd.api(method, path)
    assert st == 404, (st, body)
