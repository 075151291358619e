"""The layering of dtmd's C modules: no include cycle between modules, and
no source file longer than a reader can hold in mind, and only the store
layer builds Redis commands for transactions.

A module is src/<name>.c with its header src/<name>.h; it depends on every
module whose header its .c or .h includes. A cycle means two modules can
only be understood (and changed) together, so none may exist. Header-only
files (types shared by several modules, such as outcome.h) are not modules.
No server needed."""

import os
import re

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)\.h"', re.M)


def module_graph(src=SRC):
    names = {f[:-2] for f in os.listdir(src) if f.endswith(".c")}
    graph = {}
    for m in names:
        deps = set()
        for ext in (".c", ".h"):
            path = os.path.join(src, m + ext)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    deps.update(INCLUDE.findall(f.read()))
        graph[m] = sorted(d for d in deps if d in names and d != m)
    return graph


def find_cycle(graph):
    """One cycle as a list of modules [a, b, ..., a], or None."""
    state = {}  # 1 on the current path, 2 done
    path = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for d in graph[m]:
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None


def test_no_include_cycle_between_modules():
    graph = module_graph()
    assert "engine" in graph and "store" in graph, "src/ not found at %s" % SRC
    cycle = find_cycle(graph)
    assert cycle is None, "modules include each other: " + " -> ".join(cycle)


# A file over this many lines holds more than one concern: split it.
MAX_LINES = 600

# Files allowed over MAX_LINES (none: keep it so).
TEMPORARY_EXCEPTIONS = set()


def long_files(src=SRC, limit=MAX_LINES):
    """{file name: line count} of the src/*.c and src/*.h files over limit."""
    found = {}
    for f in sorted(os.listdir(src)):
        if f.endswith((".c", ".h")):
            with open(os.path.join(src, f), encoding="utf-8") as fh:
                n = sum(1 for _ in fh)
            if n > limit:
                found[f] = n
    return found


def test_long_files_counts_lines(tmp_path):
    (tmp_path / "a.c").write_text("x\n" * 3)
    (tmp_path / "b.h").write_text("x\n" * 2)
    (tmp_path / "c.py").write_text("x\n" * 9)
    assert long_files(str(tmp_path), limit=2) == {"a.c": 3}
    assert long_files(str(tmp_path), limit=3) == {}


def test_no_source_file_over_max_lines():
    assert os.path.isfile(os.path.join(SRC, "main.c")), "src/ not found at %s" % SRC
    found = long_files()
    over = {f: n for f, n in found.items() if f not in TEMPORARY_EXCEPTIONS}
    assert not over, "split these files (at most %d lines each): %s" % (MAX_LINES, over)


# The store layer (trans_store.h, trans_hash.h) is the only place that builds
# a Redis command for a transaction or names its keys; store.c and its
# connection modules are the generic client below it, api_kv.c keeps the KV
# records (topics), which are not transactions.
STORE_CALLERS = {"trans_store.c", "store.c", "store_nodes.c", "store_sentinel.c", "api_kv.c"}
STORE_CALL = re.compile(r"\bstore_(script|script_nowait|command)\s*\(")
KEY_CALL = re.compile(r"\bkey_(trans|due|index|expiry|live)\s*\(")


def source_files(src=SRC):
    for f in sorted(os.listdir(src)):
        if f.endswith(".c"):
            with open(os.path.join(src, f), encoding="utf-8") as fh:
                yield f, fh.read()


def test_only_the_store_layer_sends_commands():
    found = {f for f, text in source_files() if STORE_CALL.search(text)}
    assert "trans_store.c" in found, "the store layer was not recognised"
    assert found <= STORE_CALLERS, "store commands built outside the store layer: %s" % sorted(
        found - STORE_CALLERS)


def test_only_the_store_layer_names_transaction_keys():
    found = {f for f, text in source_files() if KEY_CALL.search(text)}
    assert found <= {"trans_store.c", "keys.c"}, \
        "transaction keys named outside the store layer: %s" % sorted(found - {"trans_store.c", "keys.c"})


def test_the_store_checks_see_a_violation(tmp_path):
    (tmp_path / "x.c").write_text('void f(void) { store_script("claim", 3, &a, cb, 0); }\n')
    (tmp_path / "y.c").write_text("void g(void) { key_due(&k, p, 0); }\n")
    assert [f for f, t in source_files(str(tmp_path)) if STORE_CALL.search(t)] == ["x.c"]
    assert [f for f, t in source_files(str(tmp_path)) if KEY_CALL.search(t)] == ["y.c"]
