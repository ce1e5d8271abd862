"""Checkers for histories recorded by the cluster workloads (standard library only).

History
-------
A history is a list of `Op`, one per client request::

    Op(process, f, key, value, invoke, complete, status, output)

* ``f`` is ``'read'``, ``'write'`` or ``'cas'``.  ``value`` is the value written (write),
  ``(expected, new)`` (cas), or ignored (read).
* ``invoke``/``complete`` are monotonic seconds when the request was sent / answered;
  ``complete`` is None if no answer ever came.
* ``status``: ``'ok'`` the op took effect (or returned a value), ``'fail'`` it definitely did
  not take effect, ``'info'`` indeterminate (timeout, connection lost: it may or may not have
  taken effect, at any moment after it was sent).
* ``output``: for an ok read, the value returned (None = key absent); for an ok cas, True if
  it swapped, False if the compare failed.

Register semantics (per key)
----------------------------
Every key is an independent register whose initial value is None (absent).  ``write v`` sets
it to v; ``read`` returns it; an ok ``cas (e, n)`` with output True requires current == e and
sets it to n; an ok cas with output False requires current != e and changes nothing (that is
an observation too and is checked).  A ``'fail'`` op is dropped: it did not happen.  An
``'info'`` op is given completion time +infinity: it may be linearized anywhere after its
invoke, or not at all.  An info read constrains nothing and is dropped; an info write/cas may
or may not have taken effect (an info cas that takes effect must swap: a compare that fails
changes nothing, which is the same as not happening).

Linearizability check
---------------------
Because keys are independent registers, the history is partitioned by key and each key is
checked on its own (linearizability is compositional; Herlihy & Wing).  Each key uses the
algorithm of Wing & Gong (1993) with the memoisation of Lowe ("Testing for linearizability",
2017), written as a loop with an explicit stack rather than recursion:

* Every op contributes a *call* entry at ``invoke`` and a *return* entry at ``complete``
  (+inf for info ops).  All entries are put in one doubly linked list in time order (calls
  before returns at equal times, so touching ops count as concurrent: never a false alarm).
* Walking the list from its head, an op whose call is met before any return may be
  linearized next (nothing that has returned is still waiting for it).  If applying it to the
  model state is legal and the configuration (set of linearized ops, new state) has not been
  seen before, it is linearized: its call and return are unlinked, the previous state is
  pushed on a stack and the walk restarts from the head.  The set is an int bitmask; the
  seen configurations are kept in a set (Lowe's cache), so no configuration is explored twice.
* Meeting a *return* entry means that op was not linearized before it returned: this branch
  is dead, so the last linearized op is popped, re-linked, and the walk resumes just after its
  call (trying the next candidate).  An empty stack at that point means the history is not
  linearizable.  Meeting the return of an info op (time +inf) means every ok op has been
  linearized: success.

Two sound prunings keep it fast:

* *Non-mutating ops are taken eagerly.*  If an ok read (or cas that returned False) is
  callable and legal in configuration C, then C can be completed iff C-plus-that-op can: the
  op changes nothing, and moving it earlier to a point where it was already callable breaks
  no real-time order.  So when such an op fails (popped, or found in the cache) we do not try
  C's alternatives; C is dead too and we keep backtracking.
* *Unobserved info writes are dropped.*  An info write/cas whose written value is never
  observed by another op (no ok read returned it, no ok-swapped or info cas expected it) can
  be removed if the key has no ok cas that returned False: in any linearization where it
  took effect, no read or successful cas could happen while its value was current, so
  deleting it leaves a linearization of the rest.  This is the common "request timed out and
  never applied" case, which would otherwise double the search for every such op.

The search has a time budget (and optionally a step budget).  When it runs out the key's
result is *unknown* (valid None), never valid.

When a key is not linearizable, the report gives the longest linearizable prefix found (how
many ops, its last few ops and the model state after it), the op whose return was reached
without it being linearizable there (the offending op), and the other not-yet-linearized ops
that were concurrent with it.  That is usually enough to see the anomaly by eye.

Also here: `check_set` (acknowledged adds present, no phantoms), `check_counter` (acked <=
final <= attempted), and `save_history`/`load_history` (JSON lines) so that soak runs can save
their histories and have them re-checked later.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional

__all__ = [
    "Op", "KeyResult", "Result", "check_register", "check_set", "check_counter",
    "format_report", "save_history", "load_history",
]


@dataclass
class Op:
    process: int          # client id
    f: str                # 'read' | 'write' | 'cas' (| 'add' for set workloads)
    key: str
    value: object         # write: value written; cas: (expected, new); read: ignored
    invoke: float         # monotonic seconds when sent
    complete: Optional[float]  # when answered; None if never answered
    status: str           # 'ok' | 'fail' | 'info'
    output: object = None  # read: value returned; cas ok: True if swapped, False if not


@dataclass
class KeyResult:
    key: str
    valid: Optional[bool]          # True, False, or None = unknown (budget exhausted)
    ops_checked: int = 0
    explanation: str = ""
    offending: list = field(default_factory=list)   # list[Op]
    details: dict = field(default_factory=dict)     # checker-specific extras
    steps: int = 0
    elapsed_s: float = 0.0


@dataclass
class Result:
    valid: Optional[bool]          # False if any key is invalid, else None if any unknown
    per_key: dict = field(default_factory=dict)     # key -> KeyResult
    kind: str = "register"
    elapsed_s: float = 0.0

    @property
    def invalid_keys(self):
        return [k for k, r in self.per_key.items() if r.valid is False]

    @property
    def unknown_keys(self):
        return [k for k, r in self.per_key.items() if r.valid is None]


def _combine(per_key: dict) -> Optional[bool]:
    verdicts = [r.valid for r in per_key.values()]
    if any(v is False for v in verdicts):
        return False
    if any(v is None for v in verdicts):
        return None
    return True


def _freeze(v):
    """A hashable, comparable form of a value (JSON round trips turn tuples into lists)."""
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, set):
        return frozenset(_freeze(x) for x in v)
    return v


def _fmt_time(t):
    return "never" if t is None or t == math.inf else f"{t:.6f}"


def format_op(op: Op) -> str:
    if op.f == "read":
        what = f"read -> {op.output!r}"
    elif op.f == "cas":
        exp, new = op.value
        what = f"cas {exp!r}->{new!r}"
        if op.status == "ok":
            what += " swapped" if op.output is True else (
                " compare failed" if op.output is False else f" -> {op.output!r}")
    else:
        what = f"{op.f} {op.value!r}"
        if op.output is not None:
            what += f" -> {op.output!r}"
    return (f"p{op.process} {what} [{op.status}] key={op.key!r} "
            f"invoke={_fmt_time(op.invoke)} complete={_fmt_time(op.complete)}")


# --------------------------------------------------------------------------- register model

# Per-op kinds used by the search (precomputed so the inner loop stays cheap).
_READ, _WRITE, _CAS_TRUE, _CAS_FALSE, _CAS_ANY = range(5)


class _Prepared:
    """One key's ops after dropping what constrains nothing, in search-friendly arrays."""

    def __init__(self, ops: list):
        kept = []
        for op in ops:
            if op.status == "fail":
                continue                      # definitely did not happen
            if op.f == "read" and (op.status != "ok" or op.complete is None):
                continue                      # an unanswered read observes nothing
            if op.f not in ("read", "write", "cas"):
                raise ValueError(f"unknown register op {op.f!r}: {op}")
            if op.complete is not None and op.complete < op.invoke:
                raise ValueError(f"op completes before it is invoked: {op}")
            kept.append(op)
        observed = self._observed_values(kept)
        if not any(o.f == "cas" and o.status == "ok" and o.output is not True for o in kept):
            # Without failed compares, an info write nobody observed can simply be dropped.
            kept = [o for o in kept if not (_indeterminate(o) and o.f != "read"
                                            and _written(o) not in observed)]
        kept.sort(key=lambda o: o.invoke)
        self.ops = kept
        n = len(kept)
        self.kind = [0] * n
        self.arg = [None] * n    # read: output; write: value; cas: (expected, new)
        self.info = [False] * n
        self.gate = [-1] * n     # earlier interchangeable info op that must go first
        last_of_group = {}
        for i, op in enumerate(kept):
            indeterminate = self.info[i] = _indeterminate(op)
            if op.f == "read":
                self.kind[i], self.arg[i] = _READ, _freeze(op.output)
                continue
            written = _written(op)
            if indeterminate and written not in observed:
                written = UNOBSERVED
            if op.f == "write":
                self.kind[i], self.arg[i] = _WRITE, written
            else:
                self.arg[i] = (_freeze(op.value[0]), written)
                if indeterminate or op.output is True:
                    self.kind[i] = _CAS_TRUE          # an info cas only matters if it swaps
                elif op.output is False:
                    self.kind[i] = _CAS_FALSE
                else:
                    self.kind[i] = _CAS_ANY           # ok but outcome not recorded
            if indeterminate:
                group = (self.kind[i], self.arg[i])
                self.gate[i] = last_of_group.get(group, -1)
                last_of_group[group] = i

    @staticmethod
    def _observed_values(ops):
        """Values some op can tell apart from others: read results and cas expectations."""
        observed = set()
        for o in ops:
            if o.f == "read":
                observed.add(_freeze(o.output))
            elif o.f == "cas":
                observed.add(_freeze(o.value[0]))
        return observed


def _indeterminate(op):
    return op.status != "ok" or op.complete is None


def _written(op):
    return _freeze(op.value if op.f == "write" else op.value[1])


class _Unobserved:
    """Stands for any value written by an info op and never read or compared against."""

    def __repr__(self):
        return "<value of an indeterminate write that nothing observed>"


UNOBSERVED = _Unobserved()


def _step(kind, arg, state):
    """(legal, new_state) for applying one op to the register state."""
    if kind == _READ:
        return arg == state, state
    if kind == _WRITE:
        return True, arg
    exp, new = arg
    if kind == _CAS_TRUE:
        return (True, new) if state == exp else (False, state)
    if kind == _CAS_FALSE:
        return state != exp, state
    return True, (new if state == exp else state)   # _CAS_ANY


_TAIL_KEEP = 8   # how many of the longest prefix's last ops to show


def _check_key(key, ops, deadline, max_steps) -> KeyResult:
    t0 = time.monotonic()
    p = _Prepared(ops)
    n = len(p.ops)
    res = KeyResult(key=key, valid=None, ops_checked=n)
    if n == 0:
        res.valid, res.explanation = True, "no ops to check"
        return res

    # Entries: node 0 is the list head (and tail sentinel); op i has call node 2i+1 and
    # return node 2i+2.  Linked in time order, calls before returns at equal times.
    events = []
    for i, op in enumerate(p.ops):
        ret = math.inf if p.info[i] else op.complete
        events.append((op.invoke, 0, 2 * i + 1))
        events.append((ret, 1, 2 * i + 2))
    events.sort()
    size = 2 * n + 1
    nxt = [0] * size
    prv = [0] * size
    prev_node = 0
    for _, _, node in events:
        nxt[prev_node] = node
        prv[node] = prev_node
        prev_node = node
    nxt[prev_node] = 0
    prv[0] = prev_node

    kind, arg, info, gate = p.kind, p.arg, p.info, p.gate
    mutating = [k in (_WRITE, _CAS_TRUE, _CAS_ANY) for k in kind]

    state = None
    mask = 0
    stack = []          # (op index, state before it)
    seen = set()
    steps = 0
    best_depth = -1
    best = None         # (mask, state, tail of stack ops)
    blocker = None      # op index whose return ended the deepest branch

    step_limit = math.inf if max_steps is None else max_steps
    node = nxt[0]
    verdict = None
    while True:
        steps += 1
        if steps > step_limit:
            break
        if not steps & 1023 and time.monotonic() > deadline:
            break
        if node == 0:
            verdict = True          # every entry unlinked: all ops linearized
            break
        i = (node - 1) >> 1
        dead = False
        if node & 1:                # a call: try to linearize op i now
            g = gate[i]
            if g >= 0 and not (mask >> g) & 1:
                node = nxt[node]    # an identical earlier info op goes first
                continue
            legal, new_state = _step(kind[i], arg[i], state)
            if legal:
                cfg = (mask | (1 << i), new_state)
                if cfg not in seen:
                    seen.add(cfg)
                    stack.append((i, state))
                    mask, state = cfg
                    c, r = node, node + 1           # unlink call and return entries
                    nxt[prv[c]] = nxt[c]
                    prv[nxt[c]] = prv[c]
                    nxt[prv[r]] = nxt[r]
                    prv[nxt[r]] = prv[r]
                    if len(stack) > best_depth:
                        best_depth, blocker = len(stack), None
                        best = (mask, state, [j for j, _ in stack[-_TAIL_KEEP:]])
                    node = nxt[0]
                    continue
                if not mutating[i]:
                    dead = True     # eager op already known to fail from here
            if not dead:
                node = nxt[node]
                continue
        else:                       # a return: op i must already have been linearized
            if info[i]:
                verdict = True      # only +inf returns left: every ok op is linearized
                break
            if len(stack) >= best_depth and blocker is None:
                best_depth, blocker = len(stack), i
                best = (mask, state, [j for j, _ in stack[-_TAIL_KEEP:]])
        # Backtrack: undo the last linearized op and try the next candidate after it.
        # An eagerly taken op (non-mutating) failing means its parent config is dead too.
        while True:
            if not stack:
                verdict = False
                break
            j, state = stack.pop()
            mask &= ~(1 << j)
            c, r = 2 * j + 1, 2 * j + 2             # relink, in reverse order of unlinking
            nxt[prv[r]] = r
            prv[nxt[r]] = r
            nxt[prv[c]] = c
            prv[nxt[c]] = c
            if mutating[j]:
                node = nxt[c]
                break
        if verdict is False:
            break

    res.steps = steps
    res.elapsed_s = time.monotonic() - t0
    if verdict is True:
        res.valid = True
        res.explanation = f"linearizable ({n} ops, {len(seen)} configurations explored)"
    elif verdict is None:
        res.valid = None
        res.explanation = (f"UNKNOWN: search budget exhausted after {steps} steps / "
                           f"{res.elapsed_s:.2f}s ({len(seen)} configurations); "
                           f"deepest linearizable prefix so far: {max(best_depth, 0)} of {n} ops")
    else:
        res.valid = False
        res.offending, res.explanation = _explain_invalid(p, best_depth, best, blocker)
    return res


def _explain_invalid(p: _Prepared, depth, best, blocker):
    n = len(p.ops)
    if best is None:                 # nothing could ever be linearized
        best = (0, None, [])
        depth = 0
    bmask, bstate, tail = best
    lines = [f"NOT linearizable: longest linearizable prefix has {depth} of {n} ops; "
             f"model state after it: {bstate!r}"]
    offending = []
    if blocker is not None:
        bop = p.ops[blocker]
        offending.append(bop)
        lines.append("could not linearize (returned before any legal place for it):")
        lines.append("    " + format_op(bop))
        horizon = bop.complete
        others = [p.ops[i] for i in range(n)
                  if not (bmask >> i) & 1 and i != blocker and p.ops[i].invoke <= horizon]
        if others:
            lines.append(f"other not-yet-linearized ops invoked before it returned "
                         f"({len(others)}):")
            lines.extend("    " + format_op(o) for o in others[:_TAIL_KEEP])
            if len(others) > _TAIL_KEEP:
                lines.append(f"    ... {len(others) - _TAIL_KEEP} more")
    if tail:
        lines.append(f"last {len(tail)} ops of that prefix, in linearization order:")
        lines.extend("    " + format_op(p.ops[i]) for i in tail)
    return offending, "\n".join(lines)


def check_register(history: list, budget_s: float = 30.0, max_steps: Optional[int] = None
                   ) -> Result:
    """Check a read/write/cas register history, key by key.

    budget_s bounds the whole check (keys share it); max_steps, if given, bounds the search
    steps of each key.  A key that runs out is reported unknown (valid None)."""
    t0 = time.monotonic()
    deadline = t0 + budget_s
    by_key: dict = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    per_key = {}
    for key in sorted(by_key, key=repr):
        per_key[key] = _check_key(key, by_key[key], deadline, max_steps)
    return Result(valid=_combine(per_key), per_key=per_key, kind="register",
                  elapsed_s=time.monotonic() - t0)


# --------------------------------------------------------------------------- set, counter

def check_set(adds: list, final_read: Iterable, key: str = "set") -> Result:
    """A grow-only set: `adds` are Ops whose `value` is the element added; `final_read` is
    the set read once everything has quiesced.

    Invalid if an acknowledged ('ok') add is missing (lost), if the final read has an element
    nobody tried to add (phantom), or an element whose every add 'fail'ed (a failure that
    took effect).  Info adds may or may not be present; how many were is reported."""
    final = {_freeze(v) for v in final_read}
    attempts: dict = {}
    for op in adds:
        attempts.setdefault(_freeze(op.value), []).append(op)
    ok_ops = {v: [o for o in ops if o.status == "ok"] for v, ops in attempts.items()}
    lost = sorted((v for v, ops in ok_ops.items() if ops and v not in final), key=repr)
    phantom = sorted((v for v in final if v not in attempts), key=repr)
    failed_present = sorted((v for v in final if v in attempts
                             and all(o.status == "fail" for o in attempts[v])), key=repr)
    info_values = {v for v, ops in attempts.items()
                   if not ok_ops[v] and any(o.status not in ("ok", "fail") for o in ops)}
    recovered = len(info_values & final)

    offending = [ok_ops[v][0] for v in lost] + [attempts[v][0] for v in failed_present]
    valid = not (lost or phantom or failed_present)
    acked = sum(1 for ops in ok_ops.values() if ops)
    lines = [f"{'OK' if valid else 'NOT OK'}: {acked} acknowledged elements, "
             f"{len(attempts)} attempted, {len(final)} in the final read; "
             f"{recovered} of {len(info_values)} indeterminate adds present"]

    def show(label, vals):
        if vals:
            shown = ", ".join(repr(v) for v in vals[:20])
            more = f", ... {len(vals) - 20} more" if len(vals) > 20 else ""
            lines.append(f"{label} ({len(vals)}): {shown}{more}")

    show("lost (acknowledged add missing from final read)", lost)
    show("phantom (in final read, never added)", phantom)
    show("present although every add of it failed", failed_present)
    kr = KeyResult(key=key, valid=valid, ops_checked=len(adds), explanation="\n".join(lines),
                   offending=offending,
                   details={"lost": lost, "phantom": phantom, "failed_present": failed_present,
                            "indeterminate_present": recovered})
    return Result(valid=valid, per_key={key: kr}, kind="set")


def check_counter(acked_incrs: int, attempted_incrs: int, final_value: int,
                  key: str = "counter") -> Result:
    """A counter only incremented by 1: the final value must count every acknowledged
    increment and no more than every attempted one (acked <= final <= attempted)."""
    problems = []
    if acked_incrs > attempted_incrs:
        problems.append(f"bad input: {acked_incrs} acknowledged > {attempted_incrs} attempted")
    if final_value < acked_incrs:
        problems.append(f"final value {final_value} < {acked_incrs} acknowledged increments: "
                        f"{acked_incrs - final_value} acknowledged increment(s) lost")
    if final_value > attempted_incrs:
        problems.append(f"final value {final_value} > {attempted_incrs} attempted increments: "
                        f"{final_value - attempted_incrs} increment(s) from nowhere "
                        f"(applied twice?)")
    valid = not problems
    expl = (f"OK: {acked_incrs} <= {final_value} <= {attempted_incrs}" if valid
            else "NOT OK: " + "; ".join(problems))
    kr = KeyResult(key=key, valid=valid, ops_checked=attempted_incrs, explanation=expl)
    return Result(valid=valid, per_key={key: kr}, kind="counter")


# --------------------------------------------------------------------------- reporting, I/O

def _verdict(v):
    return {True: "VALID", False: "INVALID", None: "UNKNOWN"}[v]


def format_report(result: Result) -> str:
    """A human-readable report: overall verdict, then one block per key (problems first)."""
    keys = sorted(result.per_key, key=lambda k: ({False: 0, None: 1, True: 2}[
        result.per_key[k].valid], repr(k)))
    lines = [f"{result.kind} check: {_verdict(result.valid)} "
             f"({len(keys)} key(s), {result.elapsed_s:.2f}s)"]
    bad = [k for k in keys if result.per_key[k].valid is not True]
    if bad:
        lines.append("problem keys: " + ", ".join(
            f"{k!r} ({_verdict(result.per_key[k].valid)})" for k in bad))
    for k in keys:
        r = result.per_key[k]
        lines.append(f"- key {k!r}: {_verdict(r.valid)}, {r.ops_checked} ops")
        lines.extend("    " + ln for ln in r.explanation.splitlines())
    return "\n".join(lines)


def _encode(v):
    if v == math.inf:
        return "inf"
    return v


def save_history(path, history: Iterable) -> None:
    """Write one JSON object per line.  Values must be JSON-serializable (tuples become
    lists; load_history turns a cas value back into a tuple)."""
    with open(path, "w", encoding="utf-8") as fh:
        for op in history:
            d = asdict(op)
            d["complete"] = _encode(d["complete"])
            fh.write(json.dumps(d, sort_keys=True) + "\n")


def load_history(path) -> list:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            if d.get("complete") == "inf":
                d["complete"] = None
            if d["f"] == "cas" and isinstance(d["value"], list):
                d["value"] = tuple(d["value"])
            out.append(Op(**d))
    return out
