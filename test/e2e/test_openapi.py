"""docs/openapi.json: the description of dtmd's whole HTTP API.

* It is compiled into the binary and served at GET /api/openapi.json.
* Its routes are exactly the router's (src/http_api.c): a route added to one
  and not the other fails here.
* Its examples are sent to a real dtmd, in their x-order, and each answer
  must have the example's x-status, be a documented answer of that
  operation, and match the documented schema; every $ref resolves and every
  request example matches its request schema.
"""

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from dtmtest import REPO, http_request

DOC_PATH = REPO / "docs" / "openapi.json"
ROUTER = REPO / "src" / "http_api.c"
METHODS = {"M_GET": {"get"}, "M_POST": {"post"}}


def load_doc():
    return json.loads(DOC_PATH.read_text())


# --------------------------------------------------------------------------
# a small JSON Schema checker: the subset the description uses

def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
    return node


TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def type_ok(value, t):
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[t])


def check(doc, schema, value, where="$"):
    """A list of problems of value against schema (empty: it conforms)."""
    schema = resolve(doc, schema)
    problems = []
    if "oneOf" in schema:
        if sum(1 for s in schema["oneOf"] if not check(doc, s, value, where)) != 1:
            problems.append("%s: matches not exactly one of oneOf: %r" % (where, value))
        return problems
    t = schema.get("type")
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        if not any(type_ok(value, x) for x in ts):
            return ["%s: %r is not %s" % (where, value, t)]
    if "enum" in schema and value not in schema["enum"]:
        problems.append("%s: %r not in %r" % (where, value, schema["enum"]))
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                problems.append("%s: %s is required" % (where, k))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                problems += check(doc, props[k], v, where + "." + k)
            elif isinstance(extra, dict):
                problems += check(doc, extra, v, where + "." + k)
            elif extra is False:
                problems.append("%s: unexpected %s" % (where, k))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            problems += check(doc, schema["items"], v, "%s[%d]" % (where, i))
    if isinstance(value, str) and "minLength" in schema and len(value) < schema["minLength"]:
        problems.append("%s: shorter than %d" % (where, schema["minLength"]))
    return problems


# --------------------------------------------------------------------------
# the router's routes

def router_routes():
    """{(path, method)} the router serves, from src/http_api.c."""
    src = ROUTER.read_text()
    table = src[src.index("routes[] = {"):]
    table = table[:table.index("{NULL, 0, NULL}")]
    routes = set()
    for name, bits in re.findall(r'\{"([^"]+)",\s*([A-Z_ |]+),\s*\w+\}', table):
        methods = set()
        for b in bits.split("|"):
            methods |= METHODS[b.strip()]
        for m in methods:
            routes.add((name, m))
    # served outside the table
    assert '"/api/ping"' in src
    routes.add(("ping", "get"))
    assert '"topic/"' in src and "EVHTTP_REQ_DELETE" in src
    routes.add(("topic/{name}", "delete"))
    return routes


def doc_routes(doc):
    out = set()
    for path, ops in doc["paths"].items():
        name = path
        for prefix in ("/api/dtmsvr/", "/api/"):
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        for m in ops:
            out.add((name, m))
    return out


def test_routes_match_the_router():
    doc = load_doc()
    router, described = router_routes(), doc_routes(doc)
    assert router - described == set(), "routes not in docs/openapi.json"
    assert described - router == set(), "described routes the router does not serve"


def test_description_is_consistent():
    """Every $ref resolves, every operation documents its answers and every
    request example matches its request schema; documented answer examples
    match their schemas."""
    doc = load_doc()
    assert doc["openapi"].startswith("3.")
    text = DOC_PATH.read_text()
    for ref in set(re.findall(r'"\$ref": "([^"]+)"', text)):
        resolve(doc, {"$ref": ref})
    ids = set()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["operationId"] not in ids, op["operationId"]
            ids.add(op["operationId"])
            assert op.get("summary") and op.get("responses"), (path, method)
            for code, resp in op["responses"].items():
                resp = resolve(doc, resp)
                media = resp.get("content", {}).get("application/json")
                if media and "example" in media:
                    assert check(doc, media["schema"], media["example"]) == [], (path, code)
            body = op.get("requestBody")
            if body:
                media = body["content"]["application/json"]
                for name, ex in media.get("examples", {}).items():
                    if ex["x-status"] == 200:
                        assert check(doc, media["schema"], ex["value"]) == [], (path, name)


def test_served_from_the_binary(dtmd):
    st, body = dtmd.api("GET", "/api/openapi.json")
    assert st == 200 and body == load_doc()


# --------------------------------------------------------------------------
# the examples against dtmd

def examples(doc):
    """(order, method, path, query, body, status, label) of every example."""
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody")
            if body:
                for name, ex in body["content"]["application/json"].get("examples", {}).items():
                    out.append((ex["x-order"], method, path, {}, ex["value"], ex["x-status"],
                                "%s %s [%s]" % (method.upper(), path, name)))
            elif "x-example-order" in op:
                query, real = {}, path
                for p in op.get("parameters", []):
                    if "example" not in p:
                        continue
                    if p["in"] == "path":
                        real = real.replace("{%s}" % p["name"], urllib.parse.quote(str(p["example"])))
                    else:
                        query[p["name"]] = p["example"]
                out.append((op["x-example-order"], method, real, query, None,
                            op["x-example-status"], "%s %s" % (method.upper(), path)))
    orders = [e[0] for e in out]
    assert len(orders) == len(set(orders)), "x-order values must be unique"
    return sorted(out), doc


def documented_answer(doc, path_template, method, status):
    op = doc["paths"][path_template][method]
    resp = op["responses"].get(str(status))
    return resolve(doc, resp) if resp else None


def test_examples_against_dtmd(dtmd):
    doc = load_doc()
    exs, _ = examples(doc)
    assert len(exs) >= 25
    templates = {}
    for path in doc["paths"]:
        templates[re.sub(r"\{[^}]+\}", "[^/]+", path)] = path
    failures = []
    for order, method, path, query, body, status, label in exs:
        url = dtmd.host + path + ("?" + urllib.parse.urlencode(query) if query else "")
        st, resp, headers = http_request(method.upper(), url, body=body)
        template = next(t for r, t in templates.items() if re.fullmatch(r, path))
        if st != status:
            failures.append("%s: %s %r, the example says %s" % (label, st, resp, status))
            continue
        answer = documented_answer(doc, template, method, st)
        if answer is None:
            failures.append("%s: answer %s is not documented" % (label, st))
            continue
        content = answer.get("content", {})
        if "application/json" in content and "schema" in content["application/json"]:
            problems = check(doc, content["application/json"]["schema"], resp)
            if problems:
                failures.append("%s: %s" % (label, problems))
        elif "text/plain" in content:
            assert headers.get("content-type", "").startswith("text/plain"), label
    assert failures == [], "\n".join(failures)


def test_json_rpc_example_answers(dtmd):
    """The JSON-RPC examples: newGid's result, an unknown method's -32601."""
    doc = load_doc()
    media = doc["paths"]["/api/json-rpc"]["post"]["requestBody"]["content"]["application/json"]
    st, r = dtmd.api("POST", "/api/json-rpc", body=media["examples"]["newGid"]["value"])
    assert st == 200 and r["error"] is None and len(r["result"]["gid"]) == 22, r
    st, r = dtmd.api("POST", "/api/json-rpc", body=media["examples"]["unknown"]["value"])
    assert st == 200 and r["error"]["code"] == -32601, r


@pytest.mark.parametrize("bad", ["extra-route", "missing-route"])
def test_route_check_catches_a_difference(bad):
    """The route comparison itself fails on a difference either way."""
    doc = load_doc()
    if bad == "extra-route":
        doc["paths"]["/api/dtmsvr/nonesuch"] = {"get": {}}
    else:
        del doc["paths"]["/api/dtmsvr/forceStop"]
    assert router_routes() != doc_routes(doc)
