"""Model-based randomized end-to-end testing of dtmd's transaction state machine.

Used by test_model.py. Three parts:

* a generator of seeded random sequences of API calls (valid and invalid:
  wrong trans_type, wrong state, repeated, two requests in flight at once),
  branch behaviours per branch URL (SUCCESS, FAILURE, ONGOING, HTTP 500, hang
  past REQUEST_TIMEOUT, connection closed without an answer) and process
  faults (dtmd SIGKILL + restart, a second dtmd on the same Redis);
* a reference model of every mode (saga sequential/concurrent, msg, tcc, xa,
  workflow) and of forceStop / resetNextCronTime: per gid the set of states
  the transaction may be in. Each answer dtmd gives must be possible in one of
  them (accepted or refused), and the set is narrowed by it;
* invariants checked after each sequence against the stub's call log and
  `query` (see check_sequence): I1 .. I7 below.

A sequence is a list of steps (plain dicts, JSON-printable), each
self-contained (it carries its branch behaviours), so that dropping steps
(shrinking) leaves a valid sequence.
"""

import json
import random
import threading
import time

from dtmtest import (CLOSE, DEFAULT_ENV, REQUEST_TIMEOUT, SUCCESS_BODY, TIMEOUT_TO_FAIL, Dtmd, b64,
                     free_port, parse_time, teardown_problems, wait_until)

RT = REQUEST_TIMEOUT
FINAL = ("succeed", "failed")
FORCED = "force stopped"

# Slack for comparing a call the stub saw with a time dtmd stored (I1): the
# stub records a call when its thread has read the request, which may be a
# while after dtmd sent it on a loaded machine; dtmd takes the time it stores
# just before its write reaches Redis.
I1_SLACK = 0.25
# Two calls of one branch overlap (I5) if the second arrives this much before
# the first one's end (its answer, or dtmd's request timeout, or a SIGKILL).
I5_SLACK = 0.2
# A call the stub closed without an answer and a next call of the same branch
# closer than this, with no request or fault in between, is one attempt sent
# twice (I7): dtmd's back-off is at least RETRY_INTERVAL (0.3 s).
I7_GAP = 0.15

# Branch behaviours: code -> stub reply (status, body, delay).
BEHAVIOURS = {
    "S": (200, SUCCESS_BODY, 0.0),                                      # SUCCESS
    "L": (200, SUCCESS_BODY, 0.6),                                      # slow SUCCESS
    "F": (409, '{"dtm_result":"FAILURE","message":"model says no"}', 0.0),
    "O": (425, '{"dtm_result":"ONGOING"}', 0.0),
    "E": (500, "model: internal error", 0.0),
    "H": (500, "model: hung", RT + 0.6),                                # hang
    "C": (CLOSE, "", 0.1),                                              # closed, no answer
}


# --------------------------------------------------------------------------
# configuration of a sequence

def dtmd_env(cfg):
    env = {"TIMEOUT_TO_FAIL": str(TIMEOUT_TO_FAIL)}
    if cfg.get("limits"):
        env["LIMITS_MAX_BRANCHES"] = str(cfg["max_branches"])
        env["LIMITS_MAX_INFLIGHT_CALLS"] = str(cfg["max_inflight"])
    return env


# --------------------------------------------------------------------------
# generator

def _plan(rng, forward_saga=False, n_max=2, slow=False):
    """A few behaviours for one branch URL; after them it answers SUCCESS."""
    codes = "SSLOEHC" + ("FF" if forward_saga else "F") + ("LLLH" if slow else "")
    n = rng.choice([0, 0, 1, 1, 2, n_max])
    return [rng.choice(codes) for _ in range(n)]


class Gen:
    """Seeded generator of one sequence: gen() -> (cfg, steps)."""

    def __init__(self, seed, n_steps=14, big=True):
        self.rng = random.Random(seed)
        self.n_steps = n_steps
        self.big = big
        self.idx = 0

    def step(self, **kw):
        kw["id"] = self.idx
        self.idx += 1
        return kw

    # one gid's life, in order
    def life(self, g, home, cfg):
        r = self.rng
        out = []
        to = {}
        if r.random() < 0.2:
            to = {"timeout_to_fail": r.choice([1, 2])}
        wait = lambda: r.random() < 0.3  # noqa: E731
        if home in ("saga", "csaga"):
            n = r.randint(1, 4)
            if cfg.get("limits") and r.random() < 0.15:
                n = cfg["max_branches"] + 1  # over Limits.MaxBranches: 400
            spec = {"n": n, "concurrent": home == "csaga",
                    "plans": {"%02d" % (i + 1): {"action": _plan(r, True, slow=home == "csaga"),
                                                 "compensate": _plan(r)} for i in range(n)}}
            if home == "csaga" and r.random() < 0.6:
                # a slow first call, so that the others wait for a free slot
                # at Limits.MaxInflightCalls (and a forceStop may come meanwhile)
                spec["plans"]["01"]["action"][:0] = [r.choice("HL")]
            if r.random() < 0.15:
                spec["retry_limit"] = r.randint(1, 2)
            if to and r.random() < 0.5:
                spec["timeout_to_fail"] = to["timeout_to_fail"]
            if r.random() < 0.15:
                out.append(self.step(op="prepare", g=g, type="saga", saga=spec))
            out.append(self.step(op="submit", g=g, type="saga", saga=spec, wait=wait()))
            self.stop_soon(g, out, 0.6 if home == "csaga" else 0.3)
            if r.random() < 0.3:
                out.append(self.step(op="submit", g=g, type="saga", saga=spec, wait=wait()))
        elif home == "msg":
            n = r.randint(1, 3)
            spec = {"n": n, "concurrent": r.random() < 0.4,
                    "plans": {"%02d" % (i + 1): {"action": _plan(r)} for i in range(n)},
                    "qp": _plan(r), "qp_default": r.choice(["S", "F"])}
            spec.update(to)
            out.append(self.step(op="prepare", g=g, type="msg", msg=spec))
            x = r.random()
            if x < 0.6:
                out.append(self.step(op="submit", g=g, type="msg", msg=spec, wait=wait()))
                self.stop_soon(g, out)
            elif x < 0.8:
                out.append(self.step(op="abort", g=g, type="msg", wait=False))
        elif home in ("tcc", "xa"):
            out.append(self.step(op="prepare", g=g, type=home, opts=to))
            nreg = r.randint(0, 3)
            if cfg.get("limits") and r.random() < 0.3:
                nreg = cfg["max_branches"] + 1
            for i in range(nreg):
                out.append(self.step(op="register", g=g, type=home, bid="%02d" % (i + 1),
                                     v=0, plans={"p2": _plan(r), "rb": _plan(r)}))
                if r.random() < 0.15:  # repeated, same or different content
                    out.append(self.step(op="register", g=g, type=home, bid="%02d" % (i + 1),
                                         v=r.choice([0, 1]), plans={}))
            x = r.random()
            if x < 0.55:
                out.append(self.step(op="submit", g=g, type=home, wait=wait()))
                self.stop_soon(g, out)
            elif x < 0.85:
                out.append(self.step(op="abort", g=g, type=home, wait=wait()))
                self.stop_soon(g, out)
        elif home == "workflow":
            out.append(self.step(op="prepareWorkflow", g=g, cb=_plan(r)))
            for i in range(r.randint(0, 2)):
                out.append(self.step(op="register", g=g, type="workflow", bid="%02d" % (i + 1),
                                     v=r.choice([0, 0, 1]), plans={}))
            if r.random() < 0.7:
                out.append(self.step(op="submit", g=g, type="workflow",
                                     status=r.choice(["succeed", "failed"]), wait=False))
        return out

    def stop_soon(self, g, out, p=0.3):
        """Sometimes forceStop a transaction while its branch calls run: the
        last step and the forceStop become one step, `secs` apart."""
        if self.rng.random() < p:
            first = out.pop()
            out.append(self.step(op="then", a=first, secs=round(self.rng.uniform(0.05, 0.3), 2),
                                 b=self.step(op="forceStop", g=g)))

    def wrong(self, g):
        """A request of the wrong type or in a state that should refuse it."""
        r = self.rng
        k = r.randrange(8)
        if k == 0:
            return self.step(op="submit", g=g, type="workflow", status="succeed", wait=False)
        if k == 1:
            t = r.choice(["tcc", "xa", "workflow"])
            return self.step(op="register", g=g, type=t, bid=r.choice(["01", "02", "09"]),
                             v=r.choice([0, 1]), plans={"p2": _plan(r), "rb": _plan(r)})
        if k == 2:
            return self.step(op="abort", g=g, type=r.choice(["saga", "msg", "tcc", "xa"]),
                             wait=r.random() < 0.3)
        if k == 3:
            return self.step(op="submit", g=g, type=r.choice(["tcc", "xa"]), wait=r.random() < 0.3)
        if k == 4:
            return self.step(op="prepare", g=g, type=r.choice(["tcc", "xa"]), opts={})
        if k == 5:
            return self.step(op="prepareWorkflow", g=g, cb=[])
        if k == 6:
            return self.step(op="forceStop", g=g)
        return self.step(op="resetNextCronTime", g=g)

    def gen(self):
        r = self.rng
        limits = r.random() < 0.4
        cfg = {"limits": limits}
        if limits:
            cfg.update(max_branches=6, max_inflight=r.choice([1, 2]))
        ngids = r.randint(2, max(2, min(6, self.n_steps // 4)))
        kinds = ["saga", "saga", "csaga", "msg", "tcc", "xa", "workflow"]
        if limits:  # concurrent sagas queue their calls at Limits.MaxInflightCalls
            kinds += ["csaga", "csaga"]
        homes = [r.choice(kinds) for _ in range(ngids)]
        lives = [self.life("g%d" % i, h, cfg) for i, h in enumerate(homes)]
        # interleave the lives, keeping each one's order
        steps = []
        while any(lives):
            i = r.choice([k for k, life in enumerate(lives) if life])
            steps.append(lives[i].pop(0))
            x = r.random()
            g = "g%d" % r.randrange(ngids)
            if x < 0.18:
                steps.append(self.wrong(g))
            elif x < 0.26:
                steps.append(self.step(op="forceStop", g=g))
            elif x < 0.32:
                steps.append(self.step(op="resetNextCronTime", g=g))
            elif x < 0.5:
                steps.append(self.step(op="sleep", secs=round(r.uniform(0.05, 0.8), 2)))
            elif x < 0.55:
                steps.append(self.step(op="kill_restart", which=r.randrange(2)))
            elif x < 0.57:
                steps.append(self.step(op="second_dtmd"))
        while len(steps) < self.n_steps:
            g = "g%d" % r.randrange(ngids)
            x = r.random()
            if x < 0.45:
                steps.insert(r.randrange(len(steps) + 1), self.wrong(g))
            elif x < 0.6:
                steps.insert(r.randrange(len(steps) + 1), self.step(op="forceStop", g=g))
            else:
                steps.insert(r.randrange(len(steps) + 1),
                             self.step(op="sleep", secs=round(r.uniform(0.05, 0.8), 2)))
        # some pairs of requests in flight at once
        out = []
        i = 0
        while i < len(steps):
            s = steps[i]
            if i + 1 < len(steps) and r.random() < 0.12 and _pairable(s) and _pairable(steps[i + 1]):
                out.append(self.step(op="pair", a=s, b=steps[i + 1]))
                i += 2
            else:
                out.append(s)
                i += 1
        if self.big and r.random() < 0.25:
            # many steps (one write of every branch) whose actions have empty
            # URLs but the last: one call, then a big final write
            n = r.randint(850, 999)
            out.insert(r.randrange(len(out) + 1),
                       self.step(op="submit", g="gbig", type="saga", wait=r.random() < 0.7,
                                 saga={"n": n, "concurrent": False, "big": True,
                                       "plans": {"%02d" % n: {"action": _plan(r),
                                                              "compensate": []}}}))
        for s in out:  # which dtmd serves it when there are two
            s["via"] = r.randrange(2)
        return cfg, out


def _pairable(s):
    return s["op"] not in ("sleep", "kill_restart", "second_dtmd", "pair", "then")


def describe(step):
    s = dict(step)
    s.pop("id", None)
    s.pop("via", None)
    if s["op"] == "pair":
        return "pair(%s || %s)" % (describe(s["a"]), describe(s["b"]))
    if s["op"] == "then":
        return "%s; after %.2f s: %s" % (describe(s["a"]), s["secs"], describe(s["b"]))
    op = s.pop("op")
    return "%s %s" % (op, json.dumps(s, sort_keys=True, separators=(",", ":")))


# --------------------------------------------------------------------------
# model

class St:
    """One possible state of a gid: type None = absent."""
    __slots__ = ("type", "status", "regs", "nsteps")

    def __init__(self, type=None, status=None, regs=(), nsteps=0):
        self.type, self.status, self.regs, self.nsteps = type, status, regs, nsteps

    def key(self):
        return (self.type, self.status, self.regs, self.nsteps)

    def with_(self, **kw):
        d = dict(type=self.type, status=self.status, regs=self.regs, nsteps=self.nsteps)
        d.update(kw)
        return St(**d)

    def __repr__(self):
        if self.type is None:
            return "absent"
        return "%s/%s%s" % (self.type, self.status,
                            "" if not self.regs else "/" + ",".join("%s:%s" % r[:2] for r in self.regs))


def _uniq(states):
    seen, out = set(), []
    for s in states:
        if s.key() not in seen:
            seen.add(s.key())
            out.append(s)
    return out


def reg_content(step):
    """The identity of one registration: (branch_id, kind, content)."""
    t = step["type"]
    return (step["bid"], t, "v%d" % step["v"])


class Model:
    """Possible states per gid, narrowed by every answer."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.states = {}     # alias -> [St]
        self.created = {}    # alias -> earliest wall time a create may have happened
        self.timeout = {}    # alias -> timeout_to_fail (s) of the stored transaction
        self.wild = set()    # aliases the model lost track of

    def get(self, g):
        return self.states.get(g) or [St()]

    # background transitions (passes, the scanner)
    def drift(self, g, states, now=None, forever=False):
        out = list(states)
        i = 0
        while i < len(out):
            s = out[i]
            i += 1
            nxt = []
            if s.type is None or s.status in FINAL:
                continue
            timed = forever or (g in self.created and now is not None and
                                now >= self.created[g] + self.timeout.get(g, TIMEOUT_TO_FAIL) - 0.05)
            if s.type == "saga":
                if s.status == "submitted":
                    nxt = ["aborting", "succeed", "failed"]
                elif s.status == "aborting":
                    nxt = ["failed"]
                elif s.status == "prepared" and timed and g in self.timeout:
                    nxt = ["aborting", "failed"]
            elif s.type == "msg":
                if s.status == "submitted":
                    nxt = ["succeed"]
                elif s.status == "prepared" and timed:
                    nxt = ["submitted", "failed", "succeed"]
            elif s.type in ("tcc", "xa"):
                if s.status == "submitted":
                    nxt = ["succeed"]
                elif s.status == "aborting":
                    nxt = ["failed"]
                elif s.status == "prepared" and timed:
                    nxt = ["aborting", "failed"]
            for st in nxt:
                out.append(s.with_(status=st))
            out = _uniq(out)
        return out

    def max_branches(self):
        return self.cfg["max_branches"] if self.cfg.get("limits") else 1000

    def apply(self, s, step):
        """[(verdict, new state)] for one request on state s; verdict 'ok' or 'no'."""
        op, R = step["op"], step.get("type")
        if op in ("prepare", "submit") and R == "saga" and "saga" in step:
            # Limits.MaxBranches counts steps or branch records (2 a step)
            n = step["saga"]["n"]
            if n > self.max_branches():
                return [("no", s)]  # 400 before the store is asked
            if 2 * n > self.max_branches():
                return [("no", s)] + self._apply(s, step)
        return self._apply(s, step)

    def _apply(self, s, step):
        op, R = step["op"], step.get("type")
        T, status = s.type, s.status
        if op == "prepare":
            if T is None:
                n = step["saga"]["n"] if R == "saga" else 0
                return [("ok", St(R, "prepared", (), n))]
            if status == "prepared":
                return [("ok", s)] if R == T else [("ok", s), ("no", s)]
            return [("no", s)]
        if op == "submit" and R == "workflow":
            if T == "workflow" and status == "prepared":
                return [("ok", s.with_(status=step["status"]))]
            return [("no", s)]
        if op == "submit":
            if T is None:
                n = step["saga"]["n"] if R == "saga" else 0
                return [("ok", St(R, "submitted", (), n))]
            if status in ("prepared", "submitted"):
                if R == T:
                    return [("ok", s.with_(status="submitted"))]
                if T == "workflow":
                    return [("no", s), ("ok", s.with_(type="wild"))]
                return [("no", s), ("ok", s.with_(status="submitted"))]
            return [("no", s)]
        if op == "abort":
            if T is None:
                return [("no", s)]
            if T in ("tcc", "xa") and status in ("prepared", "aborting"):
                new = s.with_(status="aborting")
                return [("ok", new)] if R == T else [("ok", new), ("no", s)]
            if T == "msg" and status == "prepared":
                new = s.with_(status="failed")
                return [("ok", new)] if R == T else [("ok", new), ("no", s)]
            return [("no", s)]
        if op == "register":
            if T is None or status != "prepared" or R != T:
                return [("no", s)]
            bid, kind, content = reg_content(step)
            for b, k, c in s.regs:
                if b == bid and k == kind:
                    return [("ok", s)] if c == content else [("no", s)]
            per = 1 if R == "workflow" else 2
            records = per * (len(s.regs) + 1)
            new = s.with_(regs=s.regs + ((bid, kind, content),))
            if records <= self.max_branches():
                return [("ok", new)]
            if len(s.regs) + 1 > self.max_branches():
                return [("no", s)]
            return [("ok", new), ("no", s)]
        if op == "prepareWorkflow":
            if T is None:
                return [("ok", St("workflow", "prepared"))]
            if T == "workflow":
                return [("ok", s)]
            return [("ok", s), ("no", s)]
        if op == "forceStop":
            if T is None or status in FINAL:
                return [("no", s)]
            return [("ok", s.with_(status="failed"))]
        if op == "resetNextCronTime":
            return [("no", s)] if T is None else [("ok", s)]
        raise AssertionError("unknown op %r" % op)

    def predict(self, g, now):
        """The verdicts possible for a request on g now (for the report)."""
        return self.drift(g, self.get(g), now)

    def observe(self, steps_obs, now):
        """steps_obs: [(step, allowed verdicts, forced final status or None)],
        one or two requests sent at once (same gid: both orders). Returns an
        error text when no state explains the answers."""
        g = steps_obs[0][0]["g"]
        if g in self.wild:
            return None
        states = self.drift(g, self.get(g), now)
        orders = [steps_obs] if len(steps_obs) == 1 else [steps_obs, steps_obs[::-1]]
        new = []
        for order in orders:
            cur = states
            for step, allowed, force in order:
                nxt = []
                for s in cur:
                    for verdict, ns in self.apply(s, step):
                        if verdict in allowed:
                            if force and verdict == "ok":
                                if ns.status not in FINAL and ns.status is not None:
                                    ns = ns.with_(status=force)
                                elif ns.status != force:
                                    continue
                            nxt.append(ns)
                cur = self.drift(g, _uniq(nxt), now)
            new.extend(cur)
        new = _uniq(new)
        if any(s.type == "wild" for s in new):
            self.wild.add(g)
            return None
        if not new:
            self.wild.add(g)
            return "no model state explains the answers; possible states were %s" % (states,)
        self.states[g] = new
        return None

    def note_created(self, g, t, step):
        """A request that may have created g: the earliest such time and the
        shortest timeout_to_fail are the conservative ones."""
        self.created[g] = min(t, self.created.get(g, t))
        to = (step.get("opts") or {}).get("timeout_to_fail") or \
            (step.get("saga") or {}).get("timeout_to_fail") or \
            (step.get("msg") or {}).get("timeout_to_fail")
        if to:
            self.timeout[g] = min(to, self.timeout.get(g, to))


def allowed_verdicts(step, status, body):
    """(allowed verdicts, forced final status, unexpected-answer text or None)."""
    wait = step.get("wait")
    op = step["op"]
    bad = None
    if status == 200:
        if op == "prepareWorkflow":
            if not (isinstance(body, dict) and "transaction" in body and "progresses" in body):
                bad = "prepareWorkflow 200 without transaction/progresses: %r" % (body,)
        elif body != {"dtm_result": "SUCCESS"}:
            bad = "200 with body %r" % (body,)
        force = None
        if wait and op == "submit":
            force = "succeed"
        elif wait and op == "abort":
            force = "failed"
        return {"ok"}, force, bad
    if status in (400, 404):
        if not (isinstance(body, dict) and isinstance(body.get("message"), str)):
            bad = "%d without a message: %r" % (status, body)
        return {"no"}, None, bad
    if status == 409:
        if not (isinstance(body, dict) and body.get("dtm_result") == "FAILURE"):
            bad = "409 without dtm_result FAILURE: %r" % (body,)
        return ({"ok", "no"} if wait else {"no"}), None, bad
    if status in (425, 500) and wait and op in ("submit", "abort"):
        if status == 425 and not (isinstance(body, dict) and body.get("dtm_result") == "ONGOING"):
            bad = "425 without dtm_result ONGOING: %r" % (body,)
        return {"ok"}, None, bad
    return {"ok", "no"}, None, "unexpected answer %s %r" % (status, body)


# --------------------------------------------------------------------------
# running a sequence

class Req:
    __slots__ = ("step", "gid", "t0", "t1", "status", "body")

    def __repr__(self):
        return "#%d %s -> %s %s" % (self.step["id"], describe(self.step), self.status,
                                    json.dumps(self.body)[:200])


class Runner:
    """Runs sequences against a real redis + stub + dtmd (started per sequence)."""

    def __init__(self, redis_server, stub, workdir, log=print):
        self.redis, self.stub, self.dir, self.log = redis_server, stub, workdir, log
        self.runs = 0
        self.ndtmd = 0
        self.final_wait = 60.0  # for everything to finish after a sequence

    def start_dtmd(self, **env_overrides):
        """A dtmd on the shared Redis (as conftest's start_dtmd; the runner
        checks it itself at the end of each sequence, see teardown_problems)."""
        env = dict(DEFAULT_ENV)
        env.update({"STORE_DRIVER": "redis", "STORE_HOST": "127.0.0.1",
                    "STORE_PORT": str(self.redis.port), "HTTP_HOST": "127.0.0.1",
                    "HTTP_PORT": str(free_port())})
        env.update({k: str(v) for k, v in env_overrides.items()})
        self.ndtmd += 1
        d = Dtmd(env, self.dir, name="model-dtmd%d" % self.ndtmd)
        self.started.append(d)
        return d.start()

    def name(self, gid, bid, op):
        return "%s.%s.%s" % (gid, bid, op)

    # -- building requests
    def body_for(self, step, gid, tag):
        stub = self.stub
        op, t = step["op"], step.get("type")
        if op in ("forceStop", "resetNextCronTime"):
            return {"gid": gid}
        if op == "prepareWorkflow":
            return {"gid": gid, "trans_type": "workflow",
                    "query_prepared": stub.url(self.name(gid, "00", "wf")),
                    "custom_data": json.dumps({"name": "wf", "data": b64('{"in":1}')})}
        if op == "register":
            data = '{"v":%d}' % step["v"]
            b = {"gid": gid, "trans_type": t, "branch_id": step["bid"], "data": data}
            if t == "tcc":
                b["confirm"] = stub.url(self.name(gid, step["bid"], "confirm"))
                b["cancel"] = stub.url(self.name(gid, step["bid"], "cancel"))
            elif t == "xa":
                b["url"] = stub.url(self.name(gid, step["bid"], "xa"))
            else:
                b["op"] = "action"
                b["status"] = "succeed" if step["v"] == 0 else "failed"
            return b
        b = {"gid": gid, "trans_type": t}
        if op == "submit" and t == "workflow":
            b["req_extra"] = {"status": step["status"], "rollback_reason": tag, "result": tag}
            return b
        if op == "abort":
            b["rollback_reason"] = tag
        if step.get("wait"):
            b["wait_result"] = True
        if t == "saga" and "saga" in step:
            sp = step["saga"]
            n = sp["n"]
            b["steps"] = [{"action": stub.url(self.name(gid, "%02d" % (i + 1), "action")),
                           "compensate": stub.url(self.name(gid, "%02d" % (i + 1), "compensate"))}
                          for i in range(n)]
            if sp.get("big"):
                for st in b["steps"][:-1]:
                    st["action"] = st["compensate"] = ""
            b["payloads"] = ['{"s":%d}' % i for i in range(n)]
            if sp.get("concurrent"):
                b["custom_data"] = json.dumps({"concurrent": True})
            for k in ("retry_limit", "timeout_to_fail"):
                if sp.get(k):
                    b[k] = sp[k]
        elif t == "msg" and "msg" in step:
            sp = step["msg"]
            b["steps"] = [{"action": stub.url(self.name(gid, "%02d" % (i + 1), "action"))}
                          for i in range(sp["n"])]
            b["payloads"] = ['{"m":%d}' % i for i in range(sp["n"])]
            b["query_prepared"] = stub.url(self.name(gid, "00", "qp"))
            if sp.get("concurrent"):
                b["concurrent"] = True
            if sp.get("timeout_to_fail"):
                b["timeout_to_fail"] = sp["timeout_to_fail"]
        elif op == "submit" and t == "saga":
            b["steps"], b["payloads"] = [], []
        elif op == "submit" and t == "msg":
            b["steps"], b["payloads"] = [], []
        for k, v in (step.get("opts") or {}).items():
            b[k] = v
        return b

    def install_plans(self, step, gid):
        stub = self.stub

        def plan(name, codes):
            if codes and name not in self.planned:
                self.planned.add(name)
                stub.plan(name, [BEHAVIOURS[c] for c in codes])
        op = step["op"]
        if op in ("prepare", "submit") and "saga" in step:
            for bid, p in step["saga"]["plans"].items():
                plan(self.name(gid, bid, "action"), p["action"])
                plan(self.name(gid, bid, "compensate"), p["compensate"])
        if op in ("prepare", "submit") and "msg" in step:
            sp = step["msg"]
            for bid, p in sp["plans"].items():
                plan(self.name(gid, bid, "action"), p["action"])
            plan(self.name(gid, "00", "qp"), sp["qp"])
            if op == "prepare":
                stub.set_default(self.name(gid, "00", "qp"), *BEHAVIOURS[sp["qp_default"]])
        if op == "register" and step["type"] == "tcc":
            plan(self.name(gid, step["bid"], "confirm"), step["plans"].get("p2"))
            plan(self.name(gid, step["bid"], "cancel"), step["plans"].get("rb"))
        if op == "register" and step["type"] == "xa":
            # one URL for commit and rollback: the stub tells them apart by op
            pass
        if op == "prepareWorkflow":
            plan(self.name(gid, "00", "wf"), step.get("cb"))

    def send(self, d, step, gid, tag):
        path = {"prepare": "/prepare", "submit": "/submit", "abort": "/abort",
                "register": "/registerBranch", "prepareWorkflow": "/prepareWorkflow",
                "forceStop": "/forceStop", "resetNextCronTime": "/resetNextCronTime"}[step["op"]]
        r = Req()
        r.step, r.gid = step, gid
        body = self.body_for(step, gid, tag)
        self.install_plans(step, gid)
        r.t0 = time.time()
        try:
            r.status, r.body = d.api("POST", path, body=body, timeout=30)
        except OSError as e:
            r.status, r.body = None, "transport error: %r" % (e,)
        r.t1 = time.time()
        return r

    # -- one sequence
    def run(self, cfg, steps, seed_tag):
        """Run steps; return (violations, info)."""
        self.runs += 1
        self.planned = set()
        suffix = "%s-%d" % (seed_tag, self.runs)
        gids = {}

        def gid_of(alias):
            if alias not in gids:
                gids[alias] = "m%s-%s" % (suffix, alias)
            return gids[alias]
        # xa: commit and rollback arrive at one URL; plan by op through a callable
        env = dtmd_env(cfg)
        self.started = []
        dtmds = self.started
        dtmds.append(self.start_dtmd(**env))
        kills = []       # wall times of SIGKILLs
        two_since = []   # when a second dtmd started
        events = []      # (start, end, gid or None) of requests and faults, for I7
        model = Model(cfg)
        reqs = []
        violations = []
        xa_plans = {}

        def setup_xa(step, gid):
            if step["op"] == "register" and step["type"] == "xa" and step.get("plans"):
                name = self.name(gid, step["bid"], "xa")
                for op_, codes in (("commit", step["plans"].get("p2")),
                                   ("rollback", step["plans"].get("rb"))):
                    xa_plans.setdefault((name, op_), []).extend(codes or [])
                if name not in xa_plans:
                    xa_plans[name] = True
                    lock = threading.Lock()

                    def reply(call, name=name, lock=lock):
                        with lock:
                            q = xa_plans.get((name, call.op)) or []
                            code = q.pop(0) if q else "S"
                        return BEHAVIOURS[code]
                    with self.stub._lock:  # a reply function as the default
                        self.stub._defaults[name] = reply

        def do_request(step, d):
            gid = gid_of(step["g"])
            setup_xa(step, gid)
            tag = "req-%d" % step["id"]
            t0 = time.time()
            r = self.send(d, step, gid, tag)
            events.append((t0, time.time(), gid))
            return r

        def live():
            return [d for d in dtmds if d.running]

        try:
            for step in steps:
                op = step["op"]
                if op == "sleep":
                    time.sleep(step["secs"])
                    continue
                if op == "kill_restart":
                    d = dtmds[step["which"] % len(dtmds)]
                    t0 = time.time()
                    d.kill()
                    kills.append(time.time())
                    d.start()
                    events.append((t0, time.time(), None))
                    continue
                if op == "second_dtmd":
                    if len(dtmds) < 2:
                        t0 = time.time()
                        two_since.append(t0)
                        self.start_dtmd(**env)
                        events.append((t0, time.time(), None))
                    continue
                ds = live()
                d = ds[step["via"] % len(ds)]
                if op == "then":
                    for k, sub in enumerate((step["a"], step["b"])):
                        if k:
                            time.sleep(step["secs"])
                        self._observe(model, [do_request(sub, d)], reqs, violations)
                    continue
                if op == "pair":
                    a, b = step["a"], step["b"]
                    da = ds[a.get("via", 0) % len(ds)]
                    db = ds[b.get("via", 1) % len(ds)]
                    out = [None, None]

                    def go(k, s, dd):
                        out[k] = do_request(s, dd)
                    ths = [threading.Thread(target=go, args=(0, a, da)),
                           threading.Thread(target=go, args=(1, b, db))]
                    for th in ths:
                        th.start()
                    for th in ths:
                        th.join()
                    self._observe(model, out, reqs, violations)
                else:
                    r = do_request(step, d)
                    self._observe(model, [r], reqs, violations)
            # every transaction final (or one that may stay prepared), then quiet
            self._wait_final(dtmds, gids, self.final_wait)
            self._wait_quiet(gids)
            q_by_alias = {}
            for alias, gid in gids.items():
                q_by_alias[alias] = live()[0].query(gid)
            violations.extend(check_sequence(self.stub, model, gids, q_by_alias, reqs, kills,
                                             events, two_since[0] if two_since else None))
            info = {"requests": len(reqs), "gids": gids, "reqs": reqs, "queries": q_by_alias,
                    "logs": [str(d.log) for d in dtmds]}
            return violations, info
        finally:
            # a crash, an exit status other than 0 on SIGTERM, a sanitizer or
            # valgrind report
            for problem in teardown_problems(dtmds):
                violations.append(("crash", problem))
            self.redis.cmd("FLUSHALL")

    def _observe(self, model, rs, reqs, violations):
        obs = []
        for r in rs:
            reqs.append(r)
            allowed, force, bad = allowed_verdicts(r.step, r.status, r.body)
            if bad:
                violations.append(("answer", "%r: %s" % (r, bad)))
            obs.append((r, allowed, force))
        groups = {}
        for r, allowed, force in obs:
            groups.setdefault(r.step["g"], []).append((r, allowed, force))
        for g, items in groups.items():
            for r, allowed, force in items:
                creates = r.step["op"] in ("prepare", "submit", "prepareWorkflow")
                if creates and (r.status == 200 or (r.step.get("wait") and r.status in (409, 425, 500))):
                    model.note_created(g, r.t0, r.step)
            before = model.predict(g, min(r.t0 for r, _, _ in items))
            err = model.observe([(r.step, allowed, force) for r, allowed, force in items],
                                max(r.t1 for r, _, _ in items))
            if err:
                violations.append(("model", "%s: %s (states before: %s)"
                                   % (" || ".join(repr(r) for r, _, _ in items), err, before)))

    def _wait_final(self, dtmds, gids, timeout):
        """Wait until every gid is final, absent, or prepared in a mode where
        nothing finishes it by itself; {alias: stored status} then."""
        last = {}

        def done():
            d = [x for x in dtmds if x.running][0]
            ok_all = True
            for alias, gid in gids.items():
                t = d.query(gid)["transaction"]
                st = t and t.get("status")
                last[alias] = st
                if st is None or st in FINAL:
                    continue
                if st == "prepared" and t.get("trans_type") in ("workflow", "saga"):
                    continue
                ok_all = False
            return ok_all
        try:
            wait_until(done, timeout, interval=0.1)
        except AssertionError:
            pass
        return dict(last)

    def _wait_quiet(self, gids, quiet=RT + 0.3, limit=6.0):
        """Until no call of these gids started or ended for `quiet` seconds."""
        mine = set(gids.values())
        t_end = time.time() + limit
        while time.time() < t_end:
            latest = 0.0
            for c in self.stub.calls():
                if c.query.get("gid") in mine:
                    latest = max(latest, c.wall_end or time.time(), c.wall)
            if time.time() - latest >= quiet:
                return
            time.sleep(0.1)


# --------------------------------------------------------------------------
# invariants

def _ts(s):
    return parse_time(s).timestamp() if s else None


def _answered_success(c):
    return c.status == 200 and c.wall_end is not None


FORWARD = {"saga": "action", "msg": "action", "tcc": "confirm", "xa": "commit"}
BACKWARD = {"saga": "compensate", "tcc": "cancel", "xa": "rollback"}


def check_sequence(stub, model, gids, queries, reqs, kills, events, two_since):
    """The invariants; [(name, text)]. two_since: when a second dtmd began
    sharing the store (None: one process); every invariant holds either way."""
    v = []
    by_gid = {}
    for c in stub.calls():
        g = c.query.get("gid")
        if g is not None:
            by_gid.setdefault(g, []).append(c)
    reqs_by_alias = {}
    for r in reqs:
        reqs_by_alias.setdefault(r.step["g"], []).append(r)

    def fmt(c):
        return "%s %s/%s %s at %.3f..%s" % (c.name, c.branch_id, c.op, c.status, c.wall,
                                           "%.3f" % c.wall_end if c.wall_end else "?")

    for alias, gid in gids.items():
        q = queries[alias]
        t = q["transaction"]
        calls = sorted(by_gid.get(gid, []), key=lambda c: c.wall)
        status = t and t.get("status")
        ttype = t and t.get("trans_type")
        branches = q["branches"] or []
        rs = reqs_by_alias.get(alias, [])
        forced = bool(t) and t.get("rollback_reason") == FORCED

        # model: the stored state is one the model allows (given any time)
        if alias not in model.wild:
            possible = model.drift(alias, model.get(alias), forever=True)
            stored = (ttype, status) if t else (None, None)
            ok = any((s.type, s.status) == stored for s in possible)
            if t and status not in FINAL:  # still running: any state it may pass
                ok = ok or any(s.type == ttype for s in possible)
            if not ok:
                v.append(("model-final", "%s (%s): stored %s, model allows %s"
                          % (alias, gid, stored, possible)))
            elif t and status not in FINAL and not (
                    status == "prepared" and ttype in ("workflow", "saga")):
                v.append(("not-final", "%s (%s) still %s after the wait" % (alias, gid, status)))

        # I1: no call after the final status was stored
        if status in FINAL:
            ft = _ts(t.get("finish_time") if status == "succeed" else t.get("rollback_time")) \
                or _ts(t.get("update_time"))
            # Also with two dtmd: a request that ends a transaction the other
            # process holds has that process cancel its calls and store the
            # end (docs/requests.md "No branch call after the end").
            limit = ft
            for c in calls:
                if ft is not None and c.wall > limit + I1_SLACK:
                    v.append(("I1", "%s (%s) %s at %s: called %.3f s after it was stored"
                              % (alias, gid, status, t.get("finish_time") or t.get("rollback_time"),
                                 c.wall - ft) + ": " + fmt(c)))

        # I2: a succeeded transaction's forward branches all got SUCCESS
        fwd = FORWARD.get(ttype)
        if status == "succeed" and fwd:
            for b in branches:
                if b.get("op") != fwd or not b.get("url"):
                    continue
                op_name = fwd if ttype != "xa" else "commit"
                got = [c for c in calls if c.branch_id == b["branch_id"] and c.op == op_name
                       and _answered_success(c)]
                if not got:
                    v.append(("I2", "%s (%s) %s succeed but branch %s %s never answered SUCCESS "
                              "(stored %s)" % (alias, gid, ttype, b["branch_id"], fwd, b["status"])))
                elif b.get("status") != "succeed":
                    v.append(("I2", "%s (%s) succeed with branch %s %s stored %s"
                              % (alias, gid, b["branch_id"], fwd, b["status"])))

        # I4: nothing undone in a transaction that succeeded
        back = BACKWARD.get(ttype)
        if status == "succeed" and back:
            bad = [c for c in calls if c.op == back]
            if bad:
                v.append(("I4", "%s (%s) %s succeed but called %s"
                          % (alias, gid, ttype, ", ".join(fmt(c) for c in bad))))

        # I3: a failed transaction undid exactly what was done
        if status == "failed" and not forced:
            if ttype == "saga":
                acts = {c.branch_id for c in calls if c.op == "action"}
                comps_ok = {c.branch_id for c in calls if c.op == "compensate" and
                            _answered_success(c)}
                comps = {c.branch_id for c in calls if c.op == "compensate"}
                missing = acts - comps_ok
                if missing:
                    v.append(("I3", "%s (%s) failed saga: actions %s called but not compensated"
                              % (alias, gid, sorted(missing))))
                concurrent = '"concurrent":true' in (t.get("custom_data") or "").replace(" ", "")
                if not concurrent:
                    ids = sorted(b["branch_id"] for b in branches if b["op"] == "action")
                    nxt = [i for i in ids if i not in acts][:1]
                    extra = comps - acts - set(nxt)
                    if extra:
                        v.append(("I3", "%s (%s) failed saga compensated %s whose actions "
                                  "were never called" % (alias, gid, sorted(extra))))
                    done = {}
                    for c in calls:
                        if c.op == "compensate" and _answered_success(c):
                            done.setdefault(c.branch_id, c)
                    firsts = {}
                    for c in calls:
                        if c.op == "compensate":
                            firsts.setdefault(c.branch_id, c)
                    for i, ci in firsts.items():
                        for j, cj in done.items():
                            if j > i and ci.wall < cj.wall:
                                v.append(("I3", "%s (%s) compensate %s started before "
                                          "compensate %s succeeded (not reverse order)"
                                          % (alias, gid, i, j)))
                # no action called after the first compensation started
            elif ttype in ("tcc", "xa"):
                back_op = BACKWARD[ttype]
                fwd_op = FORWARD[ttype]
                regs = [b["branch_id"] for b in branches if b["op"] == back_op and b.get("url")]
                got = {c.branch_id for c in calls if c.op == back_op and _answered_success(c)}
                called = {c.branch_id for c in calls if c.op == back_op}
                if set(regs) - got:
                    v.append(("I3", "%s (%s) failed %s: %s of %s never succeeded"
                              % (alias, gid, ttype, back_op, sorted(set(regs) - got))))
                if called - set(regs):
                    v.append(("I3", "%s (%s) failed %s: %s of unregistered %s"
                              % (alias, gid, ttype, back_op, sorted(called - set(regs)))))
                fw = [c for c in calls if c.op == fwd_op]
                if fw:
                    v.append(("I3", "%s (%s) failed %s (not force-stopped) had %s calls: %s"
                              % (alias, gid, ttype, fwd_op, ", ".join(fmt(c) for c in fw))))
                order = regs[::-1] if ttype == "tcc" else regs
                firsts, done = {}, {}
                for c in calls:
                    if c.op == back_op:
                        firsts.setdefault(c.branch_id, c)
                        if _answered_success(c):
                            done.setdefault(c.branch_id, c)
                for k, bi in enumerate(order):
                    for bj in order[:k]:
                        if bi in firsts and bj in done and firsts[bi].wall < done[bj].wall:
                            v.append(("I3", "%s (%s) %s %s started before %s %s succeeded"
                                      % (alias, gid, back_op, bi, back_op, bj)))
            elif ttype == "msg":
                acts = [c for c in calls if c.op == "action"]
                if acts:
                    v.append(("I3", "%s (%s) failed msg (not force-stopped) delivered: %s"
                              % (alias, gid, ", ".join(fmt(c) for c in acts))))

        # I5: two calls of one branch never overlap
        per = {}
        for c in calls:
            per.setdefault((c.branch_id, c.op, c.name), []).append(c)
        for key, cs in per.items():
            for a, b in zip(cs, cs[1:]):
                if b.wall < _eff_end(a, kills) - I5_SLACK:
                    v.append(("I5", "%s (%s) overlapping calls: %s and %s"
                              % (alias, gid, fmt(a), fmt(b))))

        # I7: one attempt is one request (a call closed without an answer is
        # not sent again at once)
        retry_limit = bool(t) and (t.get("retry_limit") or 0) > 0
        for key, cs in per.items():
            for a, b in zip(cs, cs[1:]):
                if a.status != CLOSE or a.wall_end is None or retry_limit:
                    continue
                # a request or fault while the call was being closed may
                # start a new attempt at once
                if b.wall - a.wall_end < I7_GAP and not any(
                        t0 <= b.wall and t1 >= a.wall_end - 0.02 and (eg is None or eg == gid)
                        for t0, t1, eg in events):
                    v.append(("I7", "%s (%s) a call closed without answer was sent again "
                              "%.0f ms later: %s then %s"
                              % (alias, gid, (b.wall - a.wall_end) * 1000, fmt(a), fmt(b))))

        # I6: the answers agree with what is stored
        stored_regs = {}
        for b in branches:
            stored_regs.setdefault(b["branch_id"], []).append(b)
        ok_regs = set()
        for r in rs:
            s = r.step
            ok200 = r.status == 200
            if s["op"] == "register" and ok200:
                ok_regs.add(reg_content(s))
        for r in rs:
            s = r.step
            op = s["op"]
            ok200 = r.status == 200
            # with wait_result a 409 may also be an accepted request whose pass failed
            refused = r.status in (400, 404) or (r.status == 409 and not s.get("wait"))
            tag = "req-%d" % s["id"]
            where = "%s (%s) %r" % (alias, gid, r)
            if ok200 and not t:
                v.append(("I6", "%s: accepted, but nothing is stored" % where))
                continue
            if op == "submit" and s.get("type") != "workflow" and ok200:
                if s.get("wait") and status != "succeed":
                    v.append(("I6", "%s: 200 to wait_result, stored %s" % (where, status)))
                elif status == "prepared":
                    v.append(("I6", "%s: 200, stored still prepared" % where))
            if op == "submit" and s.get("type") == "workflow":
                if ok200 and status != s["status"]:
                    v.append(("I6", "%s: 200, stored %s" % (where, status)))
                if refused and t and (t.get("rollback_reason") == tag or t.get("result") == tag):
                    v.append(("I6", "%s: refused, but its outcome is stored" % where))
            if op == "abort":
                if ok200 and status != "failed":
                    v.append(("I6", "%s: 200, stored %s" % (where, status)))
                if refused and t and t.get("rollback_reason") == tag:
                    v.append(("I6", "%s: refused, but its rollback_reason is stored" % where))
            if op == "forceStop" and ok200 and (status != "failed" or not forced):
                v.append(("I6", "%s: 200, stored %s %r" % (where, status, t.get("rollback_reason"))))
            if op == "register" and t:
                bid, kind, content = reg_content(s)
                mine = [b for b in stored_regs.get(bid, [])
                        if _reg_kind(b, ttype) == kind and _reg_data(b) == '{"v":%d}' % s["v"]]
                if ok200 and not mine:
                    v.append(("I6", "%s: 200, but the branch is not stored" % where))
                if refused and mine and (bid, kind, content) not in ok_regs:
                    v.append(("I6", "%s: refused, but the branch is stored" % where))
        if forced and not any(r.step["op"] == "forceStop" and r.status == 200 for r in rs):
            v.append(("I6", "%s (%s) stored 'force stopped' without an accepted forceStop"
                      % (alias, gid)))
    return v


def _eff_end(c, kills):
    """The latest time the caller may still have been waiting for call c:
    its answer, dtmd's request timeout (counted from before the stub saw the
    call) or a SIGKILL of the dtmd processes."""
    end = c.wall + RT
    if c.wall_end is not None:
        end = min(end, c.wall_end)
    for k in kills:
        if k >= c.wall:
            end = min(end, k)
    return end


def _reg_data(b):
    import base64
    d = b.get("bin_data")
    return base64.b64decode(d).decode("utf-8", "replace") if d else ""


def _reg_kind(b, ttype):
    """Which registration type made this stored branch."""
    op = b.get("op")
    if op in ("cancel", "confirm"):
        return "tcc"
    if op in ("rollback", "commit"):
        return "xa"
    if ttype == "workflow" or op == "action":
        return "workflow" if not b.get("url") else ttype
    return ttype


# --------------------------------------------------------------------------
# driving many sequences, shrinking

def signature(violations):
    return {name for name, _ in violations}


def shrink(runner, cfg, steps, sig, budget_s=120.0, max_runs=40, log=print):
    """Drop steps while the sequence still shows one of the invariants in sig
    (a set of names)."""
    t_end = time.monotonic() + budget_s
    best = list(steps)
    saved, runner.final_wait = runner.final_wait, 20.0  # a stuck one fails sooner
    try:
        return _shrink(runner, cfg, best, sig, t_end, max_runs, log)
    finally:
        runner.final_wait = saved


def _shrink(runner, cfg, best, sig, t_end, max_runs, log):
    runs = 0
    chunk = max(1, len(best) // 2)
    while chunk >= 1 and time.monotonic() < t_end and runs < max_runs:
        i = 0
        changed = False
        while i < len(best) and time.monotonic() < t_end and runs < max_runs:
            cand = best[:i] + best[i + chunk:]
            if not cand:
                i += chunk
                continue
            runs += 1
            viol, _ = runner.run(cfg, cand, "s%d" % runs)
            if signature(viol) & sig:
                best = cand
                changed = True
                log("  shrink: %d steps still fail (%s)" % (len(best), sorted(signature(viol) & sig)))
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return best
