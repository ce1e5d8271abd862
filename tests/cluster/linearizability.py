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

* Every op has a *call* entry at ``invoke`` and a *return* entry at ``complete`` (+inf for
  info ops), ordered by time (calls before returns at equal times, so touching ops count as
  concurrent: never a false alarm).  The pending entries live in doubly linked lists.
* Walking the entries from the start, an op whose call is met before any return may be
  linearized next (nothing that has already returned is waiting for it).  If applying it to
  the model state is legal and the configuration (set of linearized ops, new state) has not
  been seen before, it is linearized: its entries are unlinked, it is pushed on a stack with
  the previous state, and the walk restarts from the start.  The set is an int bitmask; seen
  configurations are kept in a set (Lowe's cache), so none is explored twice.
* Meeting a *return* means that op has not been linearized before it returned: the branch
  is dead, so the last linearized op is popped, re-linked, and the walk resumes just after
  its call (the next candidate).  An empty stack then means the key is not linearizable;
  running out of ok entries means it is (info ops are optional).
* Candidates are tried in two passes: first the ok ops, then (only when a return stops the
  first pass) the info ops, from a list of their own.  Information about an info op usually
  arrives later (a read of its value), so trying it last finds the right place sooner.

Sound reductions keep the search small (each is checked against a brute-force search by
the unit tests):

* *Non-mutating ops are taken eagerly.*  If an ok read (or failed compare) is callable and
  legal in configuration C, then C can be completed iff C-plus-that-op can: the op changes
  nothing, and linearizing it where it is already callable breaks no real-time order.  So
  when such an op fails (popped, or found in the cache) C is dead too; keep backtracking.
* *Unobserved values are all alike.*  A value that no read returned and no cas expected
  behaves exactly like any other such value for every op, so those written by info ops all
  become one model value, UNOBSERVED.  Such a value can only ever matter to
  a failed compare (it makes current != expected true).  So: an info cas writing one is
  dropped unless some ok failed compare expects its `expected` value; an info write of one
  is dropped if the key has no failed compares, and is otherwise only ever linearized
  immediately before a failed compare that is illegal without it (any linearization can be
  rearranged that way).  This is the common "request timed out and never applied" case,
  which would otherwise double the search for every such op.
* *Identical info ops are interchangeable.*  Info ops with the same effect (same kind and
  arguments, after the above) are linearized in invoke order only, and a configuration is
  also skipped if one with the same ok ops and state but a subset of its info ops has
  already failed (the extra info ops could have been left out: they are optional and
  constrain nobody's real-time order).

The search has a time budget (and optionally a step budget).  When it runs out the key's
result is *unknown* (valid None), never valid.

When a key is not linearizable, the report gives the longest linearizable prefix found (how
many ops, its last few ops and the model state after it), the op whose return was reached
without it being linearizable there (the offending op), and the other not-yet-linearized ops
that were concurrent with it.  That is usually enough to see the anomaly by eye.

Also here: `check_set` (acknowledged adds present, no phantoms), `check_counter` (acked <=
final <= attempted), and `save_history`/`load_history` (JSON lines) so that soak runs can save
their histories and have them re-checked later.

Usage::

    result = check_register(history, budget_s=30)
    if result.valid is not True:            # False = anomaly, None = could not decide
        print(format_report(result))
    assert result.valid is True

Values are compared with ==, so decode what the client returns (bytes) to what was
written; to be saved, values must be JSON-serialisable.
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
    steps: int = 0                 # search statistics
    configs: int = 0
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

# Op kinds used by the search.  An ok cas is a swap (output True) or a failed compare
# (output False); an info cas can only matter if it swapped.
_READ, _WRITE, _CAS_SWAP, _CAS_NOSWAP = range(4)


class _Unobserved:
    """Stands for every value that only indeterminate ops wrote and no op ever observed."""

    def __repr__(self):
        return "<value of an indeterminate write that nothing observed>"


UNOBSERVED = _Unobserved()


def _indeterminate(op):
    """May or may not have taken effect.  An ok cas without a True/False output is treated
    the same way (weaker, but never a false alarm)."""
    return (op.status != "ok" or op.complete is None
            or (op.f == "cas" and not isinstance(op.output, bool)))


def _written(op):
    return _freeze(op.value if op.f == "write" else op.value[1])


class _Prepared:
    """One key's ops, reduced as described in the module docstring and turned into arrays.

    ops[i] sorted by invoke; kind[i]; arg[i] (read: output, write: value, cas: (exp, new),
    all frozen, unobserved written values replaced by UNOBSERVED); info[i]; gate[i] (the
    previous identical info op, which must be linearized first, or -1); lazy (indices of the
    unobserved info writes, in invoke order: used only to enable a failed compare)."""

    def __init__(self, ops: list):
        kept = []
        for op in ops:
            if op.f not in ("read", "write", "cas"):
                raise ValueError(f"unknown register op {op.f!r}: {op}")
            if op.complete is not None and op.complete < op.invoke:
                raise ValueError(f"op completes before it is invoked: {op}")
            if op.status == "fail":
                continue                      # definitely did not happen
            if op.f == "read" and _indeterminate(op):
                continue                      # an unanswered read observes nothing
            kept.append(op)

        # Values some op can tell apart from the rest: read results and cas expectations.
        observed = {_freeze(o.output if o.f == "read" else o.value[0])
                    for o in kept if o.f != "write"}
        # Values a failed compare needs to be *not* current: the only use of an unobserved
        # value.
        needed = {_freeze(o.value[0]) for o in kept
                  if o.f == "cas" and not _indeterminate(o) and o.output is False}

        def pointless(o):     # an unobserved info write/cas that can help no failed compare
            if o.f == "read" or not _indeterminate(o) or _written(o) in observed:
                return False
            return not needed if o.f == "write" else _freeze(o.value[0]) not in needed

        self.ops = sorted((o for o in kept if not pointless(o)), key=lambda o: o.invoke)
        n = len(self.ops)
        self.kind = [_READ] * n
        self.arg = [None] * n
        self.info = [False] * n
        self.gate = [-1] * n
        self.lazy = []
        last_of_group = {}
        for i, op in enumerate(self.ops):
            indeterminate = self.info[i] = _indeterminate(op)
            if op.f == "read":
                self.arg[i] = _freeze(op.output)
                continue
            written = _written(op)
            if indeterminate and written not in observed:
                written = UNOBSERVED
            if op.f == "write":
                self.kind[i], self.arg[i] = _WRITE, written
                if written is UNOBSERVED:
                    self.lazy.append(i)
                    continue
            else:
                self.arg[i] = (_freeze(op.value[0]), written)
                self.kind[i] = _CAS_SWAP if indeterminate or op.output else _CAS_NOSWAP
            if indeterminate:
                group = (self.kind[i], self.arg[i])
                self.gate[i] = last_of_group.get(group, -1)
                last_of_group[group] = i


def _unlink(nxt, prv, e):
    nxt[prv[e]] = nxt[e]
    prv[nxt[e]] = prv[e]


def _relink(nxt, prv, e):
    nxt[prv[e]] = e
    prv[nxt[e]] = e


_TAIL_KEEP = 8   # how many of the longest prefix's last ops to show


def _check_key(key, ops, deadline, max_steps, max_configs) -> KeyResult:
    t0 = time.monotonic()
    p = _Prepared(ops)
    n = len(p.ops)
    res = KeyResult(key=key, valid=None, ops_checked=n)
    if n == 0:
        res.valid, res.explanation = True, "no ops to check"
        return res
    if time.monotonic() >= deadline:
        res.explanation = "UNKNOWN: time budget used up before this key was checked"
        return res
    kind, arg, info, gate, lazy = p.kind, p.arg, p.info, p.gate, p.lazy

    # Op i has call node 2i+1 and return node 2i+2; all are ranked in time order (calls
    # first at equal times, info returns at +inf).  The event list (nxt/prv, node 0 is
    # head and tail) links the calls and returns of the ok ops; the info list (inxt/iprv)
    # links the calls of the info ops other than lazy writes.  Linearizing an op unlinks
    # it, so the lists hold exactly the pending ops.
    events = []
    for i, op in enumerate(p.ops):
        events.append((op.invoke, 0, 2 * i + 1))
        events.append((math.inf if info[i] else op.complete, 1, 2 * i + 2))
    events.sort()
    size = 2 * n + 1
    nxt, prv, rank = [0] * size, [0] * size, [0] * size
    inxt, iprv = [0] * size, [0] * size
    is_lazy = [False] * n
    for i in lazy:
        is_lazy[i] = True
    in_ilist = [info[i] and not is_lazy[i] for i in range(n)]
    last = ilast = 0
    for pos, (_, _, e) in enumerate(events, 1):
        rank[e] = pos
        i = (e - 1) >> 1
        if not info[i]:
            nxt[last], prv[e] = e, last
            last = e
        elif e & 1 and in_ilist[i]:
            inxt[ilast], iprv[e] = e, ilast
            ilast = e
    nxt[last], prv[0] = 0, last
    inxt[ilast], iprv[0] = 0, ilast

    def unlink(i):
        if not info[i]:
            _unlink(nxt, prv, 2 * i + 1)
            _unlink(nxt, prv, 2 * i + 2)
        elif in_ilist[i]:
            _unlink(inxt, iprv, 2 * i + 1)

    def relink(i):                    # exactly the reverse of unlink
        if not info[i]:
            _relink(nxt, prv, 2 * i + 2)
            _relink(nxt, prv, 2 * i + 1)
        elif in_ilist[i]:
            _relink(inxt, iprv, 2 * i + 1)

    bit = [1 << i for i in range(n)]
    gated = [g >= 0 for g in gate]
    n_lazy, lazy_used = len(lazy), 0      # lazy writes are used in invoke order
    info_bits = sum(bit[i] for i in range(n) if info[i])
    ok_bits = ((1 << n) - 1) ^ info_bits

    state = None
    mask = 0
    # (op, state before it, lazy write linearized just before it or -1, first_ret)
    stack = []
    seen = set()        # Lowe's cache of (mask, state) configurations
    dead = {}           # (ok-op mask, state) -> info-op masks of configurations that failed
    steps = 0
    best_depth = -1
    best = None         # (mask, state, stack tail) of the deepest configuration
    blocker = None      # op whose return ended the deepest branch

    step_limit = math.inf if max_steps is None else max_steps
    node = nxt[0]
    info_pass = False   # False: walking the event list, trying ok ops.  True: walking the
    first_ret = 0       # info-op calls that come before first_ret, the first pending return.
    verdict = None
    while True:
        if steps >= step_limit or not steps & 1023 and (
                time.monotonic() > deadline or len(seen) > max_configs):
            break
        steps += 1
        backtrack = False
        if info_pass:
            if node == 0 or rank[node] > rank[first_ret]:
                backtrack = True    # no candidate left before that return
            i = (node - 1) >> 1
        else:
            if node == 0:
                verdict = True      # every ok op linearized (info ops are optional)
                break
            i = (node - 1) >> 1
            if not node & 1:        # a return: op i must already have been linearized
                first_ret = node
                if inxt[0] and rank[inxt[0]] < rank[node]:
                    node, info_pass = inxt[0], True     # now try the indeterminate ops
                    continue
                backtrack = True
        if not backtrack:
            # Op i's call comes before every pending return: try to linearize it now.
            if gated[i] and not mask & bit[gate[i]]:
                node = inxt[node]   # an identical, earlier-invoked info op goes first
                continue
            k = kind[i]
            partner = -1
            if k == _READ:
                legal, new_state = arg[i] == state, state
            elif k == _WRITE:
                legal, new_state = True, arg[i]
            elif k == _CAS_SWAP:
                legal, new_state = arg[i][0] == state, arg[i][1]
            else:                   # _CAS_NOSWAP
                legal, new_state = arg[i][0] != state, state
                if not legal and lazy_used < n_lazy:
                    # Only an unobserved info write just before it could make it legal.
                    w = lazy[lazy_used]
                    wr = rank[2 * w + 1]
                    if wr > rank[node]:                 # callable: before the first return?
                        e = nxt[node]
                        while e & 1 and rank[e] < wr:
                            e = nxt[e]
                        legal = e == 0 or rank[e] > wr
                    else:
                        legal = True                    # before us, and only calls are
                    if legal:
                        new_state, partner = UNOBSERVED, w
            if legal:
                new_mask = mask | bit[i]
                if partner >= 0:
                    new_mask |= bit[partner]
                cfg = (new_mask, new_state)
                if cfg not in seen and info_bits:
                    # Dominated by a failed configuration that used a subset of the info ops?
                    for d in dead.get((new_mask & ok_bits, new_state), ()):
                        if not d & ~new_mask:
                            seen.add(cfg)
                            break
                if cfg not in seen:
                    seen.add(cfg)
                    stack.append((i, state, partner, first_ret))
                    mask, state = cfg
                    if partner >= 0:
                        unlink(partner)
                        lazy_used += 1
                    unlink(i)
                    if len(stack) > best_depth:
                        best_depth, blocker = len(stack), None
                        best = (mask, state, stack[-_TAIL_KEEP:])
                    node, info_pass = nxt[0], False
                    continue
                # Seen before (so it failed).  For an eagerly taken op that means this
                # configuration fails too; otherwise just try the next candidate.
                backtrack = partner < 0 and (k == _READ or k == _CAS_NOSWAP)
            if not backtrack:
                node = inxt[node] if info_pass else nxt[node]
                continue
        elif len(stack) >= best_depth and blocker is None:
            best_depth, blocker = len(stack), (first_ret - 1) >> 1
            best = (mask, state, stack[-_TAIL_KEEP:])

        # Backtrack: undo the last linearized op and try the next candidate after it.
        # An eagerly taken op (a read or failed compare) failing means its parent
        # configuration is dead too, so keep popping until a state-changing step.
        while stack:
            if info_bits:
                dead.setdefault((mask & ok_bits, state), []).append(mask & info_bits)
            j, state, partner, first_ret = stack.pop()
            mask &= ~bit[j]
            relink(j)
            if partner >= 0:
                mask &= ~bit[partner]
                relink(partner)
                lazy_used -= 1
            elif kind[j] == _READ or kind[j] == _CAS_NOSWAP:
                continue
            info_pass = info[j]
            node = inxt[2 * j + 1] if info_pass else nxt[2 * j + 1]
            break
        else:
            verdict = False
            break

    res.steps, res.configs = steps, len(seen)
    res.elapsed_s = time.monotonic() - t0
    if verdict is True:
        res.valid = True
        res.explanation = f"linearizable ({n} ops, {len(seen)} configurations explored)"
    elif verdict is None:
        res.valid = None
        res.explanation = (f"UNKNOWN: search budget used up after {steps} steps / "
                           f"{res.elapsed_s:.2f}s ({len(seen)} configurations); "
                           f"longest linearizable prefix so far: "
                           f"{bin(best[0]).count('1') if best else 0} of {n} ops")
    else:
        res.valid = False
        res.offending, res.explanation = _explain_invalid(p, best, blocker)
    return res


def _explain_invalid(p: _Prepared, best, blocker):
    n = len(p.ops)
    if best is None:                 # nothing could ever be linearized
        best = (0, None, [])
    bmask, bstate, stack_tail = best
    depth = bin(bmask).count("1")    # ops, not stack entries (a lazy write shares one)
    tail = []
    for i, _, partner, _ in stack_tail:
        tail += [partner, i] if partner >= 0 else [i]
    tail = tail[-_TAIL_KEEP:]
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


def check_register(history: list, budget_s: float = 30.0, max_steps: Optional[int] = None,
                   max_configs: int = 2_000_000) -> Result:
    """Check a read/write/cas register history, key by key.

    budget_s bounds the whole check in seconds (keys share it); max_steps, if given, bounds
    the search steps of each key; max_configs bounds the configurations a key's search may
    remember (memory: a few hundred bytes each for a few hundred ops per key).  A key that
    runs out is reported unknown (valid None); so is the whole result unless another key is
    invalid.  For scale: a 500-op, 10-client key takes well under a second."""
    t0 = time.monotonic()
    deadline = t0 + budget_s
    by_key: dict = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    per_key = {}
    for key in sorted(by_key, key=repr):
        per_key[key] = _check_key(key, by_key[key], deadline, max_steps, max_configs)
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
