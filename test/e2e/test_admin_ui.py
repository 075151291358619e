"""The admin web UI at /admin/: static files served from memory (headers,
caching, 404s), and the UI itself driven in headless Chromium by
playwright-core (admin_ui.js): the list loads and shows submitted
transactions, the status filter works, the detail view shows every branch,
force-stop changes the status (checked through the API), and with
Auth.AdminToken set the UI asks for the token and sends it.

Set-up (what `make deps-ui` does, repeated here for a bare pytest run):
Debian's chromium and nodejs, playwright-core from npm into test/e2e/.node.
The browser tests are skipped, saying why, only when that cannot be done.
DTMD_UI_SCREENSHOTS=<dir> also writes admin.png / admin-detail.png there
(docs/ holds the copies docs/operations.md shows)."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from dtmtest import REPO, S, http_request, saga, wait_until

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / ".node"
PLAYWRIGHT = NODE_DIR / "node_modules" / "playwright-core" / "package.json"
CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if os.path.exists(p)), None)


def _browser_setup():
    """(chromium path, node path) or a pytest.skip naming what is missing."""
    global CHROMIUM
    if not (CHROMIUM and shutil.which("node") and PLAYWRIGHT.exists()):
        # the same steps as `make deps-ui` (apt-get for chromium/nodejs, npm)
        try:
            subprocess.run(["make", "-s", "-C", str(REPO), "deps-ui"], check=False,
                           timeout=900, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except (OSError, subprocess.TimeoutExpired):
            pass
        CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                         if os.path.exists(p)), None)
    missing = [what for what, ok in (("chromium (apt-get install chromium)", CHROMIUM),
                                     ("node (apt-get install nodejs)", shutil.which("node")),
                                     ("playwright-core (make deps-ui)", PLAYWRIGHT.exists()))
               if not ok]
    if missing:
        pytest.skip("admin UI browser test needs " + ", ".join(missing) +
                    "; `make deps-ui` installs them")
    return CHROMIUM, shutil.which("node")


def run_ui(dtmd, **cfg):
    chromium, node = _browser_setup()
    cfg.update({"base": dtmd.host, "chromium": chromium,
                "shots": os.environ.get("DTMD_UI_SCREENSHOTS", "")})
    if cfg["shots"]:
        Path(cfg["shots"]).mkdir(parents=True, exist_ok=True)
        cfg["shots"] = str(Path(cfg["shots"]).resolve())
    env = dict(os.environ, NODE_PATH=str(NODE_DIR / "node_modules"))
    p = subprocess.run([node, str(HERE / "admin_ui.js"), json.dumps(cfg)], env=env, timeout=60,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, "admin_ui.js printed nothing (rc %s); stderr:\n%s" % (p.returncode, p.stderr)
    res = json.loads(lines[-1])
    assert p.returncode == 0 and "error" not in res, "browser run failed: %s\n%s\nstderr:\n%s" % (
        res.pop("error", None), json.dumps(res)[:3000], p.stderr[-3000:])
    return res


def seed(dtmd, stub, gid, headers=None):
    """One finished saga, one stuck saga (action keeps failing), one prepared
    TCC with two branches. Returns their gids."""
    h = headers or {}
    done, running, stuck = gid + "-done", gid + "-running", gid + "-tcc"
    st, body, _ = http_request("POST", dtmd.url("/submit"), body=saga(done, [("", ""), ("", "")]),
                               headers=h)
    assert st == 200, body
    stub.set_default("Broken", 500, "down for maintenance")
    st, body, _ = http_request("POST", dtmd.url("/submit"),
                               body=saga(running, [(stub.url("Broken"), stub.url("BrokenRevert"))]),
                               headers=h)
    assert st == 200, body
    st, body, _ = http_request("POST", dtmd.url("/prepare"),
                               body={"gid": stuck, "trans_type": "tcc"}, headers=h)
    assert st == 200, body
    for bid in ("01", "02"):
        st, body, _ = http_request("POST", dtmd.url("/registerBranch"), body={
            "gid": stuck, "trans_type": "tcc", "branch_id": bid, "data": "{}",
            "confirm": stub.url("Confirm"), "cancel": stub.url("Cancel")}, headers=h)
        assert st == 200, body
    wait_until(lambda: http_request("GET", dtmd.url("/query?gid=" + done), headers=h)[1]
               ["transaction"]["status"] == S, msg="the finished saga")
    return done, running, stuck


# ---- static files (no browser) ------------------------------------------------

def test_admin_static_files(dtmd):
    st, body, h = http_request("GET", dtmd.host + "/admin/")
    assert st == 200
    assert h["content-type"] == "text/html; charset=utf-8"
    assert "<title>dtmd admin</title>" in body and 'src="app.js"' in body
    assert h["cache-control"] == "no-cache" and h["etag"].startswith('"')
    assert h["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    # nothing from another origin: works offline
    for name in ("index.html", "app.js", "style.css"):
        text = (REPO / "admin" / name).read_text()
        assert "http://" not in text and "https://" not in text, name
    st, body, h = http_request("GET", dtmd.host + "/admin/app.js")
    assert st == 200 and h["content-type"] == "text/javascript; charset=utf-8"
    assert body == (REPO / "admin" / "app.js").read_text()
    st, body, h2 = http_request("GET", dtmd.host + "/admin/style.css")
    assert st == 200 and h2["content-type"] == "text/css; charset=utf-8"
    st, body, _ = http_request("GET", dtmd.host + "/admin/style.css",
                               headers={"If-None-Match": h2["etag"]})
    assert st == 304
    st, body, _ = http_request("GET", dtmd.host + "/admin/index.html")
    assert st == 200
    st, _, h = http_request("GET", dtmd.host + "/admin")
    assert st == 301 and h["location"] == "/admin/"
    # a browser pointed at dtmd itself lands on the UI
    for method in ("GET", "HEAD"):
        st, _, h = http_request(method, dtmd.host + "/")
        assert st == 302 and h["location"] == "/admin/", (method, st)
    for path in ("/admin/nope.js", "/admin/../README.md", "/admin/app.js/x", "/adminx"):
        st, _, _ = http_request("GET", dtmd.host + path)
        assert st == 404, path
    st, _, h = http_request("POST", dtmd.host + "/admin/", body={})
    assert st == 405 and h["allow"] == "GET, HEAD"


# ---- the UI in a real browser -------------------------------------------------------

def shard_of(gid, nshards=16):
    """The shard dtmd keeps gid in (FNV-1a modulo Store.Shards, src/keys.c)."""
    h = 2166136261
    for b in gid.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h % nshards


def test_admin_ui_in_browser(start_dtmd, stub, gid):
    dtmd = start_dtmd(TIMEOUT_TO_FAIL=300)
    done, running, stuck = seed(dtmd, stub, gid)
    more = ["%s-p%02d" % (gid, i) for i in range(22)]  # more than one page of 20
    for g in more:
        st, body = dtmd.submit(saga(g, [("", "")]))
        assert st == 200, body
        time.sleep(0.003)  # distinct creation times (ms)
    assert len({shard_of(g) for g in more}) > 1
    # the failing saga has been retried at least once before the browser looks
    wait_until(lambda: dtmd.trans(running).get("retry_count", 0) >= 1, msg="a retry of " + running)
    res = run_ui(dtmd, stuck=stuck, running=running)
    listed = {r["gid"]: r["status"] for r in res["all"]}
    assert listed.get(done) == "succeed", res["all"]
    assert listed.get(running) == "submitted", res["all"]
    assert listed.get(stuck) == "prepared", res["all"]
    # the status filter: only prepared ones, ours among them
    assert res["prepared"] and all(r["status"] == "prepared" for r in res["prepared"])
    assert stuck in [r["gid"] for r in res["prepared"]]
    assert done not in [r["gid"] for r in res["prepared"]]
    # paging: 20 per page, every transaction exactly once, First goes back
    pages = [[r["gid"] for r in p] for p in res["pages"]]
    assert len(pages) >= 2 and all(len(p) <= 20 for p in pages), pages
    seen = [g for p in pages for g in p]
    assert len(seen) == len(set(seen)) and set(more + [done, running, stuck]) <= set(seen)
    assert [r["gid"] for r in res["first_again"]] == pages[0]
    # newest first across shards and pages: the first row is the newest
    assert pages[0][0] == more[-1], pages
    assert seen[:len(more)] == more[::-1], seen
    created = res["created_order"]
    assert created == sorted(created, reverse=True), created
    # the stuck filter: only the unfinished saga that keeps failing, with
    # its retry count and last error in the row
    assert [r["gid"] for r in res["stuck_rows"]] == [running], res["stuck_rows"]
    row = res["stuck_rows"][0]
    assert int(row["retries"]) >= 1 and "01 action: HTTP 500 down for maintenance" in row["err"], row
    # the "why" panel of the failing saga
    why = res["why"]
    assert int(why["retries"]) >= 1, why
    assert why["last error"] == "01 action \u2192 ERROR", why
    assert why["answer"] == "HTTP 500" and why["url"] == stub.url("Broken"), why
    assert why["at"] and why["next retry"], why
    assert res["why_body"] == "down for maintenance"
    # nothing failed for the prepared TCC: no panel
    assert res["stuck_why_hidden"]
    # detail: every branch, with op, status and URL
    assert res["detail_status"] == "prepared"
    got = sorted((b["branch_id"], b["op"], b["status"]) for b in res["branches"])
    assert got == [("01", "cancel", "prepared"), ("01", "confirm", "prepared"),
                   ("02", "cancel", "prepared"), ("02", "confirm", "prepared")], res["branches"]
    assert any(b["url"] == stub.url("Confirm") for b in res["branches"])
    # force stop, confirmed in a dialog, changed the stored status
    assert any(s.startswith("dialog: Force stop") for s in res["steps"]), res["steps"]
    assert res["after_stop"] == "failed" and res["stop_disabled"]
    assert dtmd.status(stuck) == "failed"
    assert dtmd.trans(stuck).get("rollback_reason") == "force stopped"
    assert res["errors"] == [], res["errors"]


def test_admin_ui_asks_for_token(start_dtmd, stub, gid):
    st, out, _ = 0, subprocess.run([str(REPO / "dtmd"), "--check-config"], stdout=subprocess.PIPE,
                                   text=True, env=dict(os.environ)).stdout, None
    if "Auth.AdminToken" not in out:
        pytest.skip("this dtmd has no Auth.AdminToken")
    dtmd = start_dtmd(TIMEOUT_TO_FAIL=300, AUTH_TOKEN="api-secret", AUTH_ADMIN_TOKEN="admin-secret")
    # the page itself carries no data and loads without a token; the API does not
    st, _, _ = http_request("GET", dtmd.host + "/admin/")
    assert st == 200
    st, _, h = http_request("GET", dtmd.host + "/")
    assert st == 302 and h["location"] == "/admin/"
    st, _, _ = http_request("GET", dtmd.url("/all"))
    assert st == 401
    done, running, stuck = seed(dtmd, stub, gid, headers={"Authorization": "Bearer admin-secret"})
    res = run_ui(dtmd, stuck=stuck, token="admin-secret")
    assert res["asked_token"]
    assert stuck in [r["gid"] for r in res["all"]]
    assert res["after_stop"] == "failed"
    st, body, _ = http_request("GET", dtmd.url("/query?gid=" + stuck),
                               headers={"Authorization": "Bearer api-secret"})
    assert st == 200 and body["transaction"]["status"] == "failed"
