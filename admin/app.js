/* dtmd admin UI: plain JS, no dependencies. Talks only to /api/dtmsvr/*,
 * so the API's own checks (and its bearer token, when configured) apply. */
(function () {
  "use strict";
  var API = "/api/dtmsvr/";
  var TOKEN_KEY = "dtmd_token";
  var FINAL = { succeed: 1, failed: 1 };
  var $ = function (id) { return document.getElementById(id); };
  var state = { positions: [""], page: 0, next: "" };

  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }
  function setToken(t) {
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) {}
  }

  function showMsg(text, isError) {
    var m = $("msg");
    m.textContent = text;
    m.className = isError ? "error" : "";
    m.hidden = !text;
  }

  function askToken(why) {
    $("token-box").hidden = false;
    $("token-input").value = token();
    $("token-input").focus();
    if (why) showMsg(why, true);
  }

  /* fetch JSON from the API; rejects with an Error carrying .status */
  function api(method, name, params, body) {
    var url = API + name;
    if (params) {
      var q = Object.keys(params).filter(function (k) { return params[k] !== "" && params[k] != null; })
        .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
      if (q) url += "?" + q;
    }
    var headers = { "Accept": "application/json" };
    var t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    var opts = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { message: text }; }
        if (r.status === 401 || r.status === 403) {
          askToken(r.status === 401 ? "This dtmd requires an API token." : "The token was refused.");
        }
        if (!r.ok) {
          var err = new Error((data && (data.message || data.dtm_result)) || ("HTTP " + r.status));
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function ms(t) { if (!t) return 0; var v = Date.parse(t); return isNaN(v) || v <= 0 ? 0 : v; }
  function fmt(t) {
    var v = ms(t);
    if (!v) return "";
    var d = new Date(v), p = function (n, w) { return String(n).padStart(w || 2, "0"); };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" +
      p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3);
  }
  function badge(status) { return '<span class="badge s-' + esc(status) + '">' + esc(status) + "</span>"; }

  /* ---- list ---- */
  function filters() {
    var from = $("f-from").value, to = $("f-to").value, stuck = $("f-stuck").checked;
    var retries = parseInt($("f-stuck-retries").value, 10), age = parseFloat($("f-stuck-age").value);
    return {
      status: $("f-status").value,
      transType: $("f-type").value,
      createTimeStart: from ? String(new Date(from).getTime()) : "",
      createTimeEnd: to ? String(new Date(to).getTime()) : "",
      gid: $("f-gid").value.trim(),
      limit: $("f-limit").value,
      /* stuck: unfinished and (retried >= N times or created more than M minutes ago) */
      stuckRetries: stuck && retries > 0 ? String(retries) : "",
      stuckAge: stuck && age > 0 ? String(Math.round(age * 60)) : ""
    };
  }

  /* "01 action: HTTP 500 body..." or "01 action: connection refused" */
  function errText(e) {
    if (!e) return "";
    var what = e.http_status ? "HTTP " + e.http_status + (e.body ? " " + e.body : "") : (e.transport_error || e.outcome);
    return (e.branch_id || "") + " " + (e.op || "") + ": " + (e.outcome === "ERROR" ? "" : e.outcome + ", ") + what;
  }

  function loadList() {
    var p = filters();
    p.position = state.positions[state.page];
    $("trans-table").setAttribute("aria-busy", "true");
    return api("GET", "all", p).then(function (data) {
      /* in the API's order: newest first across every shard and page */
      var rows = (data && data.transactions) || [];
      var tb = $("trans-table").tBodies[0];
      tb.innerHTML = rows.map(function (t) {
        var retry = FINAL[t.status] ? "" : fmt(t.next_cron_time);
        return '<tr data-gid="' + esc(t.gid) + '" data-status="' + esc(t.status) + '">' +
          '<td class="gid"><a href="#/trans/' + encodeURIComponent(t.gid) + '">' + esc(t.gid) + "</a></td>" +
          "<td>" + esc(t.trans_type) + "</td><td>" + badge(t.status) + "</td>" +
          "<td>" + esc(fmt(t.create_time)) + "</td><td>" + esc(fmt(t.update_time)) + "</td>" +
          "<td>" + esc(retry) + '</td><td class="retries">' + esc(t.retry_count || 0) + "</td>" +
          '<td class="err" title="' + esc(errText(t.last_error)) + '">' + esc(FINAL[t.status] ? "" : errText(t.last_error)) + "</td></tr>";
      }).join("");
      $("list-empty").hidden = rows.length > 0;
      state.next = (data && data.next_position) || "";
      $("next-page").disabled = !state.next;
      $("first-page").disabled = state.page === 0;
      $("page-info").textContent = "page " + (state.page + 1) + " \u00b7 " + rows.length + " shown";
      $("trans-table").setAttribute("aria-busy", "false");
      showMsg("");
    }).catch(function (e) {
      $("trans-table").setAttribute("aria-busy", "false");
      showMsg("Cannot list transactions: " + e.message, true);
    });
  }

  /* ---- detail ---- */
  var current = null;

  function loadDetail(gid) {
    return api("GET", "query", { gid: gid }).then(function (data) {
      var t = data && data.transaction;
      current = t;
      $("d-gid").textContent = gid;
      if (!t) {
        $("d-status").textContent = "not found";
        $("d-status").className = "badge";
        $("d-fields").innerHTML = "";
        $("timeline").innerHTML = "";
        $("d-raw").textContent = JSON.stringify(data, null, 2);
        $("act-stop").disabled = $("act-retry").disabled = true;
        return;
      }
      $("d-status").textContent = t.status;
      $("d-status").className = "badge s-" + t.status;
      var fin = !!FINAL[t.status];
      $("act-stop").disabled = fin;
      $("act-retry").disabled = fin;
      var fields = ["trans_type", "status", "create_time", "update_time", "finish_time", "rollback_time",
        "next_cron_time", "next_cron_interval", "retry_count", "timeout_to_fail", "rollback_reason",
        "query_prepared", "custom_data", "result"];
      $("d-fields").innerHTML = fields.filter(function (k) { return t[k] !== undefined && t[k] !== "" && t[k] !== null; })
        .map(function (k) {
          var v = /_time$/.test(k) ? fmt(t[k]) : (typeof t[k] === "object" ? JSON.stringify(t[k]) : t[k]);
          return "<dt>" + esc(k) + "</dt><dd>" + esc(v) + "</dd>";
        }).join("");
      renderWhy(t, fin);
      renderTimeline(t, (data && data.branches) || []);
      $("d-raw").textContent = JSON.stringify(data, null, 2);
    }).catch(function (e) { showMsg("Cannot load " + gid + ": " + e.message, true); });
  }

  /* The last call that did not succeed, the retry count and the next try. */
  function renderWhy(t, fin) {
    var e = t.last_error, n = t.retry_count || 0;
    $("d-why").hidden = fin || (!e && !n);
    if ($("d-why").hidden) return;
    var rows = [["retries", String(n)], ["next retry", fmt(t.next_cron_time)]];
    if (e) {
      rows.push(["last error", (e.branch_id || "") + " " + (e.op || "") + " \u2192 " + (e.outcome || "")]);
      rows.push(["answer", e.http_status ? "HTTP " + e.http_status : "no HTTP answer: " + (e.transport_error || "")]);
      rows.push(["url", e.url || ""]);
      rows.push(["at", fmt(e.time)]);
    } else {
      rows.push(["last error", "none recorded"]);
    }
    $("d-why-fields").innerHTML = rows.map(function (r) {
      return '<dt>' + esc(r[0]) + '</dt><dd data-k="' + esc(r[0]) + '">' + esc(r[1]) + "</dd>";
    }).join("");
    $("d-why-body").hidden = !(e && e.http_status && e.body);
    $("d-why-body").textContent = e && e.body ? e.body : "";
  }

  function renderTimeline(t, branches) {
    var start = ms(t.create_time), end = Math.max(ms(t.finish_time), ms(t.update_time), Date.now() > start ? start : 0);
    branches.forEach(function (b) { end = Math.max(end, ms(b.finish_time), ms(b.update_time)); });
    var span = Math.max(end - start, 1);
    var items = branches.map(function (b, i) { return { b: b, i: i }; });
    items.sort(function (x, y) {
      var a = ms(x.b.finish_time) || ms(x.b.update_time) || Infinity, c = ms(y.b.finish_time) || ms(y.b.update_time) || Infinity;
      return a - c || x.i - y.i;
    });
    $("timeline").innerHTML = items.map(function (it) {
      var b = it.b, s = ms(b.create_time) || start, f = ms(b.finish_time) || ms(b.update_time) || s;
      var left = Math.min(100, Math.max(0, (s - start) * 100 / span)), width = Math.max(0, (f - s) * 100 / span);
      return '<li class="branch b-' + esc(b.status) + '" data-branch="' + esc(b.branch_id) + '" data-op="' + esc(b.op) + '">' +
        '<div class="b-head"><span>' + esc(b.branch_id) + "</span><span>" + esc(b.op) + "</span>" + badge(b.status) + "</div>" +
        '<div class="b-url">' + esc(b.url || "(no URL: succeeds without a call)") + "</div>" +
        '<div class="b-times">' + esc(times(b)) + "</div>" +
        '<div class="bar"><span data-left="' + left.toFixed(2) + '" data-width="' + width.toFixed(2) + '"></span></div></li>';
    }).join("") || '<li class="muted">no branches</li>';
    /* set through the CSSOM: the page's CSP allows no inline style attributes */
    Array.prototype.forEach.call($("timeline").querySelectorAll(".bar span"), function (el) {
      el.style.left = el.getAttribute("data-left") + "%";
      el.style.width = el.getAttribute("data-width") + "%";
    });
  }

  function times(b) {
    var parts = [["created", b.create_time], ["updated", b.update_time], ["finished", b.finish_time]]
      .filter(function (p) { return ms(p[1]); })
      .map(function (p) { return p[0] + " " + fmt(p[1]); });
    return parts.length ? parts.join(" \u00b7 ") : "not called yet";
  }

  function act(name, verb) {
    if (!current) return;
    var gid = current.gid;
    if (!window.confirm(verb + " transaction " + gid + "?")) return;
    api("POST", name, null, { gid: gid }).then(function () {
      showMsg(verb + ": done for " + gid);
      return loadDetail(gid);
    }).catch(function (e) { showMsg(verb + " failed: " + e.message, true); });
  }

  /* ---- routing ---- */
  function route() {
    var h = location.hash || "#/";
    var m = h.match(/^#\/trans\/(.+)$/);
    $("list-view").hidden = !!m;
    $("detail-view").hidden = !m;
    if (m) return loadDetail(decodeURIComponent(m[1]));
    return loadList();
  }

  $("filters").addEventListener("submit", function (e) {
    e.preventDefault();
    state.positions = [""]; state.page = 0;
    if (location.hash && location.hash !== "#/") location.hash = "#/"; else loadList();
  });
  $("next-page").addEventListener("click", function () {
    if (!state.next) return;
    state.positions[state.page + 1] = state.next;
    state.page++;
    loadList();
  });
  $("first-page").addEventListener("click", function () { state.positions = [""]; state.page = 0; loadList(); });
  $("act-stop").addEventListener("click", function () { act("forceStop", "Force stop"); });
  $("act-retry").addEventListener("click", function () { act("resetNextCronTime", "Retry now"); });
  $("act-reload").addEventListener("click", function () { if (current) loadDetail(current.gid); });
  $("token-btn").addEventListener("click", function () { askToken(""); });
  $("token-form").addEventListener("submit", function (e) {
    e.preventDefault();
    setToken($("token-input").value.trim());
    $("token-box").hidden = true;
    showMsg("");
    route();
  });
  $("token-clear").addEventListener("click", function () { setToken(""); $("token-input").value = ""; });
  window.addEventListener("hashchange", route);

  api("GET", "version").then(function (v) { $("version").textContent = (v && v.version) || ""; })
    .catch(function () {});
  route();
})();
