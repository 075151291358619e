"""Hostile clients (issue 20 "Hardening"): no request, connection or label
value can stall dtmd's loop, exhaust its memory or forge what operators read.

Each test drives one abuse and checks the bound that stops it: log lines
cannot be forged, numbers are range-checked, validation stays linear, odd
HTTP framing is refused, metric labels are bounded, the allow-list sees the
normalised URL, /all answers are bounded, fd exhaustion does not spin.
"""

import json
import re
import socket
import threading
import time
import urllib.parse

import pytest

from dtmtest import http_request, new_gid

FORGED = "2026-01-01 00:00:00.000 error FORGED-LINE by a client"


def forged_lines(d):
    text = d.log.read_text(errors="replace")
    return [ln for ln in text.splitlines() if ln.startswith(FORGED[:10]) or "FORGED" in ln[:40]]


# ---- (1) log forgery --------------------------------------------------------

def test_log_lines_cannot_be_forged(start_dtmd, stub, gid):
    d = start_dtmd(LOG_LEVEL="debug")
    # a branch answer body (logged when the branch fails) carrying a newline
    stub.set_default("Evil", 500, "oops\n" + FORGED + "\x1b[31m")
    st, body = d.submit({"gid": gid, "trans_type": "msg",
                         "steps": [{"action": stub.url("Evil")}], "payloads": ["{}"]})
    assert st == 200, body
    stub.wait_calls("Evil", 1, timeout=10)
    # a TCC branch id (logged when its confirm is called)
    g2 = new_gid("tcc")
    assert d.api("POST", "/prepare", body={"gid": g2, "trans_type": "tcc"})[0] == 200
    st, body = d.api("POST", "/registerBranch", body={
        "gid": g2, "trans_type": "tcc", "branch_id": "01\n" + FORGED, "data": "{}",
        "confirm": stub.url("Ok"), "cancel": stub.url("Ok")})
    assert st == 200, body
    assert d.api("POST", "/submit", body={"gid": g2, "trans_type": "tcc"})[0] == 200
    stub.wait_calls("Ok", 1, timeout=10)
    time.sleep(0.3)
    text = d.log.read_text(errors="replace")
    assert "FORGED-LINE" in text  # the values were logged ...
    assert forged_lines(d) == []  # ... but never as a line of their own
    assert "\x1b" not in text
    assert "\\n" + FORGED in text
