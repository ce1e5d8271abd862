"""Transaction-isolation checker for list-append histories (standard library only).

The idea follows the list-append analysis of Kingsbury & Alvaro, "Elle: Inferring Isolation
Anomalies from Experimental Observations" (VLDB 2020); the code and wording here are our own.

History
-------
A history is a list of transactions, most easily built with ``txn``::

    txn(id, status, *ops, process=None, invoke=None, complete=None)
    txn('T1', 'ok', ('append', 'x', 1), ('r', 'y', [3, 4]))

* ``status``: ``'ok'`` committed, ``'fail'`` known aborted, ``'info'`` outcome unknown.
* ``ops``: ``('append', key, value)`` or ``('r', key, values)``.  A read returns the whole list
  of the key in append order (``None`` = key absent = empty list).  Values appended to a key
  must be unique per key across the history (the workload guarantees it; a repeat raises
  ValueError).  Reads of 'fail' and 'info' transactions are ignored (no answer arrived).
* ``process``/``invoke``/``complete`` are optional and only used for real-time checking.
  Transactions of one process are taken to run in history order.
* Plain dicts with the same field names (e.g. loaded from JSON) are accepted too.

API
---
``check(history, model='snapshot-isolation', realtime=None) -> Result``

* ``model``: ``'snapshot-isolation'`` (G2 / write skew allowed), ``'serializable'`` or
  ``'strict-serializable'`` (everything below forbidden).
* ``realtime``: add real-time and process-order edges.  Default: on only for
  ``'strict-serializable'``; passing True with snapshot isolation checks "strong SI".
* ``Result.valid``: True iff no anomaly forbidden by the model was found.
  ``Result.anomalies``: list of dicts with ``type``, ``txns`` (ids involved), either ``cycle``
  (ids, first repeated at the end), ``edges`` (edge type of each step) and ``steps`` (each step
  with its key and reason) or ``ops`` (list of ``(txn_id, op)``), an ``explanation`` one-liner
  and ``violation`` (forbidden under the model?).  ``Result.counts``: anomalies per type.
  ``Result.stats``: sizes of the history and graph.  ``Result.report()``: printable text.

Example::

    res = check(history)                      # snapshot isolation
    assert res.valid, res.report()

How it works
------------
1. Per-read checks on committed reads: ``duplicate-elements`` (a value twice in one list),
   ``garbage-read`` (a value nobody appended), ``G1a`` (a value appended by a 'fail'
   transaction) and ``internal`` (a transaction's own reads disagree with its own earlier
   reads and appends, or see its own later appends).
2. Committed transactions are the 'ok' ones plus 'info' ones whose appends some read
   returned; an 'info' transaction never observed is ignored.
3. Version order per key: the longest read of the key (reads with duplicate elements are left
   out).  Every other read must be a prefix of it, else ``incompatible-order`` (such a read
   then gives no rw edge).  Values never read have no known place and give no edges.
   ``G1b``: a read whose last value is not the final append of its writer to that key.
4. Dependency graph between committed transactions.  A read is first stripped of the
   reader's own trailing appends, which leaves the snapshot it saw.
   ww: T1 appended v1 and T2 appended the next (committed) value after v1.
   wr: T2's read ends with a value appended by T1.
   rw: T1's read ends at v (or is empty) and T2 appended the next value after v.
   realtime/process (optional): T1 completed before T2 was invoked / came first on its
   process.  Only 'ok' transactions have a known completion, so only they have such edges out.
5. ``lost-update``: two committed transactions read the same version of a key and both
   appended to it.
6. Cycles: Tarjan's strongly connected components, then in each component the cycle with the
   fewest rw edges, searched in this order: ww only (``G0``), ww+wr (``G1c``), exactly one rw
   edge (``G-single``, read skew), anything else (``G2``, two or more rw edges: write skew).
   A cycle that needs a realtime/process edge gets the suffix ``-realtime``.  One cycle is
   reported per component (per sub-component for G0/G1c).
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Hashable, Optional

__all__ = ["Txn", "txn", "Result", "check", "MODELS"]

OK, FAIL, INFO = "ok", "fail", "info"

# For each model, the anomaly types it allows (everything else is a violation).
MODELS = {
    "snapshot-isolation": frozenset({"G2", "G2-realtime"}),
    "serializable": frozenset(),
    "strict-serializable": frozenset(),
}

# When two transactions are linked by several edge types, a cycle step is labelled with the
# first of these that the search allowed (so rw is only used when nothing else links them).
_PRIORITY = ("ww", "wr", "process", "realtime", "rw")
_RT = frozenset({"realtime", "process"})


@dataclasses.dataclass(frozen=True)
class Txn:
    id: Hashable
    status: str                     # 'ok' | 'fail' | 'info'
    ops: tuple                      # ('append', key, value) | ('r', key, list or None)
    process: Hashable = None
    invoke: Optional[float] = None
    complete: Optional[float] = None


def txn(id, status, *ops, process=None, invoke=None, complete=None) -> Txn:
    """Shorthand for building histories: txn('T1', 'ok', ('append', 'x', 1), ('r', 'x', [1]))."""
    return Txn(id, status, tuple(ops), process, invoke, complete)


@dataclasses.dataclass
class Result:
    model: str
    valid: bool
    anomalies: list
    counts: dict
    stats: dict

    @property
    def violations(self) -> list:
        return [a for a in self.anomalies if a["violation"]]

    def of_type(self, kind: str) -> list:
        return [a for a in self.anomalies if a["type"] == kind]

    def report(self) -> str:
        lines = [f"{self.model}: {'valid' if self.valid else 'INVALID'}; counts {self.counts}"]
        for a in self.anomalies:
            lines.append(("  VIOLATION " if a["violation"] else "  allowed   ") + a["explanation"])
        return "\n".join(lines)


def check(history, model: str = "snapshot-isolation", realtime: Optional[bool] = None) -> Result:
    """Checks a list-append history against `model`; see the module docstring."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODELS)}")
    if realtime is None:
        realtime = model == "strict-serializable"
    return _Checker(_normalize(history), model, bool(realtime)).run()


# --------------------------------------------------------------------------- input

def _normalize(history) -> list:
    """Turns the history into a list of Txn with validated ops (reads as tuples)."""
    out, seen = [], set()
    for t in history:
        if isinstance(t, dict):
            t = Txn(t["id"], t["status"], tuple(t.get("ops", ())), t.get("process"),
                    t.get("invoke"), t.get("complete"))
        if t.status not in (OK, FAIL, INFO):
            raise ValueError(f"txn {t.id!r}: bad status {t.status!r}")
        if t.id in seen:
            raise ValueError(f"duplicate txn id {t.id!r}")
        seen.add(t.id)
        ops = []
        for op in t.ops:
            if len(op) != 3 or op[0] not in ("append", "r", "read"):
                raise ValueError(f"txn {t.id!r}: bad op {op!r}")
            f, k, v = op
            ops.append(("append", k, v) if f == "append" else ("r", k, tuple(v or ())))
        out.append(dataclasses.replace(t, ops=tuple(ops)))
    return out


class _Read:
    """One read of a committed transaction, with what the analysis learns about it."""
    __slots__ = ("txn", "op", "key", "raw", "ext", "dup", "compatible")

    def __init__(self, txn, op, key, raw, ext, dup):
        self.txn, self.op, self.key, self.raw, self.ext, self.dup = txn, op, key, raw, ext, dup
        self.compatible = not dup   # a prefix of the key's version order (set later)


# --------------------------------------------------------------------------- graph helpers

def _tarjan(nodes, nbrs) -> list:
    """Strongly connected components (iterative Tarjan).  Components come out sinks first:
    every component is emitted after all components reachable from it."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(nbrs(root)))]
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:          # descend into w, come back to v later
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(nbrs(w))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:                           # v has no more successors: finish it
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(comp)
    return out


def _bfs(src, nbrs, target):
    """Shortest path src -> ... -> target (list of nodes, src first, target last, at least one
    step), or None.  With src == target this is the shortest cycle through src."""
    parent = {src: None}
    queue = collections.deque([src])
    while queue:
        v = queue.popleft()
        for w in nbrs(v):
            if w == target:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1] + [w]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return None


# --------------------------------------------------------------------------- the checker

class _Checker:
    def __init__(self, txns, model, realtime):
        self.txns, self.model, self.realtime = txns, model, realtime
        self.anomalies = []
        self.writer = {}                                   # (key, value) -> txn index
        self.appends = [collections.defaultdict(list) for _ in txns]  # per txn: key -> values
        self.reads = []                                    # list of _Read
        self.order = {}                                    # key -> tuple of values
        self.succ = [{} for _ in txns]                     # a -> {b: set of edge types}
        self.why = {}                                      # (a, b, type) -> (key, detail)

    def run(self) -> Result:
        self._index_appends()
        self._check_internal()
        self._check_reads()
        self._infer_orders()
        self._check_intermediate_reads()
        self._build_graph()
        self._check_lost_updates()
        self._find_cycles()
        counts = dict(collections.Counter(a["type"] for a in self.anomalies))
        edges = collections.Counter(t for s in self.succ for ts in s.values() for t in ts)
        stats = {
            "txns": len(self.txns),
            "committed": sum(self.member),
            "info_committed": sum(1 for i, t in enumerate(self.txns)
                                  if t.status == INFO and self.member[i]),
            "info_ignored": sum(1 for i, t in enumerate(self.txns)
                                if t.status == INFO and not self.member[i]),
            "keys": len(self.order),
            "edges": dict(edges),
        }
        valid = not any(a["violation"] for a in self.anomalies)
        return Result(self.model, valid, self.anomalies, counts, stats)

    # ---- reporting helpers

    def _id(self, i):
        return self.txns[i].id

    def _op(self, i, j):
        f, k, v = self.txns[i].ops[j]
        return (self._id(i), (f, k, list(v) if f == "r" else v))

    def _add(self, kind, txn_idxs, explanation, **extra):
        ids = list(dict.fromkeys(self._id(i) for i in txn_idxs))
        self.anomalies.append({"type": kind, "txns": ids, **extra, "explanation": explanation,
                               "violation": kind not in MODELS[self.model]})

    # ---- step 1: appends, internal consistency, per-read checks

    def _index_appends(self):
        for i, t in enumerate(self.txns):
            for f, k, v in t.ops:
                if f == "append":
                    if (k, v) in self.writer:
                        raise ValueError(f"value {v!r} appended to key {k!r} twice (txns "
                                         f"{self._id(self.writer[(k, v)])!r} and {t.id!r})")
                    self.writer[(k, v)] = i
                    self.appends[i][k].append(v)

    def _check_internal(self):
        """Within one committed transaction, each read of a key must equal its previous read of
        the key plus its own appends since then; without a previous read it must at least end
        with those appends.  No read may contain an append the transaction makes later."""
        for i, t in enumerate(self.txns):
            if t.status != OK:
                continue
            appended_at = {(k, v): j for j, (f, k, v) in enumerate(t.ops) if f == "append"}
            known = {}                                  # key -> full list expected now
            pending = collections.defaultdict(list)     # key -> own appends not read back yet
            for j, (f, k, v) in enumerate(t.ops):
                if f == "append":
                    (known[k] if k in known else pending[k]).append(v)
                    continue
                got, mine = list(v), pending[k]
                future = [x for x in got if appended_at.get((k, x), -1) > j]
                problem = None
                if future:
                    problem = f"sees {future}, which it only appends later"
                elif k in known and got != known[k]:
                    problem = f"expected {known[k]} from its earlier read and appends"
                elif k not in known and mine and got[-len(mine):] != mine:
                    problem = f"does not end with its own appends {mine}"
                if problem:
                    self._add("internal", [i], f"internal: txn {t.id} read {k}={got}: {problem}",
                              ops=[self._op(i, jj) for jj in range(j + 1)
                                   if t.ops[jj][1] == k])
                known[k], pending[k] = got, []

    def _check_reads(self):
        observed = set()        # txn indexes whose appends some committed read returned
        for i, t in enumerate(self.txns):
            if t.status != OK:
                continue
            for j, (f, k, got) in enumerate(t.ops):
                if f != "r":
                    continue
                dups = [x for x, c in collections.Counter(got).items() if c > 1]
                if dups:
                    self._add("duplicate-elements", [i], f"duplicate-elements: txn {t.id} read "
                              f"{k}={list(got)}, which repeats {dups}", ops=[self._op(i, j)])
                unknown = [x for x in got if (k, x) not in self.writer]
                if unknown:
                    self._add("garbage-read", [i], f"garbage-read: txn {t.id} read {k}="
                              f"{list(got)}; nobody appended {unknown}", ops=[self._op(i, j)])
                aborted = collections.defaultdict(list)
                for x in got:
                    w = self.writer.get((k, x))
                    if w is not None:
                        observed.add(w)
                        if self.txns[w].status == FAIL:
                            aborted[w].append(x)
                for w, xs in aborted.items():
                    self._add("G1a", [i, w], f"G1a: txn {t.id} read {k}={list(got)}, including "
                              f"{xs} appended by aborted txn {self._id(w)}",
                              ops=[self._op(i, j)] + [self._op(w, jj) for jj, op in
                                                      enumerate(self.txns[w].ops)
                                                      if op[0] == "append" and op[1] == k])
                # The snapshot the read saw: drop the reader's own appends from the end.
                ext = got
                while ext and self.writer.get((k, ext[-1])) == i:
                    ext = ext[:-1]
                self.reads.append(_Read(i, j, k, got, ext, bool(dups)))
        # Committed = ok, or info whose effects were seen.
        self.member = [t.status == OK or (t.status == INFO and i in observed)
                       for i, t in enumerate(self.txns)]

    # ---- step 2: version orders

    def _infer_orders(self):
        by_key = collections.defaultdict(list)
        for r in self.reads:
            if not r.dup:
                by_key[r.key].append(r)
        self.next_member = {}
        for k, reads in by_key.items():
            longest = max(reads, key=lambda r: len(r.raw))      # first of the longest
            order = self.order[k] = longest.raw
            for r in reads:
                if order[:len(r.raw)] != r.raw:
                    r.compatible = False
                    self._add("incompatible-order", [longest.txn, r.txn],
                              f"incompatible-order: on key {k}, txn {self._id(r.txn)} read "
                              f"{list(r.raw)}, not a prefix of txn {self._id(longest.txn)}'s "
                              f"{list(order)}", ops=[self._op(longest.txn, longest.op),
                                                     self._op(r.txn, r.op)])
            # next_member[k][p]: first position >= p holding a committed transaction's value.
            nxt, following = [None] * (len(order) + 1), None
            for p in range(len(order) - 1, -1, -1):
                w = self.writer.get((k, order[p]))
                if w is not None and self.member[w]:
                    following = p
                nxt[p] = following
            self.next_member[k] = nxt

    def _check_intermediate_reads(self):
        """G1b: the snapshot ends with a value its writer later followed with another append."""
        for r in self.reads:
            if not r.ext:
                continue
            w = self.writer.get((r.key, r.ext[-1]))
            if w is None or self.txns[w].status == FAIL:
                continue                    # garbage / G1a, reported already
            final = self.appends[w][r.key][-1]
            if final != r.ext[-1]:
                self._add("G1b", [r.txn, w], f"G1b: txn {self._id(r.txn)} read {r.key}="
                          f"{list(r.raw)}, ending at {r.ext[-1]!r}, an intermediate append "
                          f"of txn {self._id(w)} (its final one is {final!r})",
                          ops=[self._op(r.txn, r.op)] + [
                              self._op(w, jj) for jj, op in enumerate(self.txns[w].ops)
                              if op[0] == "append" and op[1] == r.key])

    # ---- step 3: the dependency graph

    def _edge(self, a, b, kind, key, detail):
        if a == b:
            return
        self.succ[a].setdefault(b, set()).add(kind)
        self.why.setdefault((a, b, kind), (key, detail))

    def _build_graph(self):
        for k, order in self.order.items():            # ww
            prev = None
            for v in order:
                w = self.writer.get((k, v))
                if w is None or not self.member[w]:
                    continue                          # garbage or aborted: bridge over it
                if prev is not None:
                    self._edge(prev[0], w, "ww", k, f"appended {prev[1]!r} then {v!r}")
                prev = (w, v)
        for r in self.reads:
            if r.ext:                                  # wr
                w = self.writer.get((r.key, r.ext[-1]))
                if w is not None and self.member[w]:
                    self._edge(w, r.txn, "wr", r.key, f"read ending at {r.ext[-1]!r}")
            if r.compatible:                           # rw
                p = self.next_member[r.key][len(r.ext)] if r.key in self.next_member else None
                if p is not None:
                    v = self.order[r.key][p]
                    self._edge(r.txn, self.writer[(r.key, v)], "rw", r.key,
                               f"read {'ending at ' + repr(r.ext[-1]) if r.ext else 'empty'}"
                               f", missing the next append {v!r}")
        if self.realtime:
            self._realtime_edges()

    def _realtime_edges(self):
        # Process order: an ok txn precedes the later txns of its process, up to the next ok one.
        by_proc = collections.defaultdict(list)
        for i, t in enumerate(self.txns):
            if t.process is not None:
                by_proc[t.process].append(i)
        for idxs in by_proc.values():
            for pos, a in enumerate(idxs):
                if self.txns[a].status != OK:
                    continue
                for b in idxs[pos + 1:]:
                    if self.member[b]:
                        self._edge(a, b, "process", None, "same process, later")
                        if self.txns[b].status == OK:
                            break
        # Real time: a sweep over invoke/complete events.  The frontier holds completed txns not
        # yet implied by a later-completed one; each invoke links from the whole frontier.  This
        # keeps the edge count small while every "completed before invoked" pair stays a path.
        events = []
        for i, t in enumerate(self.txns):
            if self.member[i] and t.invoke is not None:
                events.append((t.invoke, 0, i))
                if t.status == OK and t.complete is not None:
                    events.append((t.complete, 1, i))
        events.sort()   # invokes before completes at equal times: touching = concurrent
        frontier, preds = {}, {}
        for when, kind, i in events:
            if kind == 0:
                preds[i] = list(frontier)
                for p in preds[i]:
                    self._edge(p, i, "realtime", None,
                               f"completed at {self.txns[p].complete} before invoke at {when}")
            else:
                for p in preds.get(i, ()):
                    frontier.pop(p, None)
                frontier[i] = True

    # ---- step 4: lost updates

    def _check_lost_updates(self):
        first = {}                                    # (txn, key) -> its first read
        for r in self.reads:
            first.setdefault((r.txn, r.key), r)
        groups = collections.defaultdict(list)        # (key, version) -> reads
        for (i, k), r in first.items():
            if self.appends[i].get(k):
                groups[(k, r.ext[-1:])].append(r)
        for (k, version), rs in groups.items():
            if len(rs) < 2:
                continue
            seen = "the empty list" if not version else f"version ending at {version[0]!r}"
            ids = ", ".join(str(self._id(r.txn)) for r in rs)
            ops = []
            for r in rs:
                ops.append(self._op(r.txn, r.op))
                ops += [self._op(r.txn, jj) for jj, op in enumerate(self.txns[r.txn].ops)
                        if op[0] == "append" and op[1] == k]
            self._add("lost-update", [r.txn for r in rs], f"lost-update: txns {ids} each read "
                      f"{k} at {seen} and each appended to {k}", ops=ops)

    # ---- step 5: cycles

    def _nbrs(self, nodes, kinds):
        succ = self.succ
        return lambda v: [w for w, ts in succ[v].items() if w in nodes and not ts.isdisjoint(kinds)]

    def _find_cycles(self):
        members = [i for i, m in enumerate(self.member) if m]
        every = {"ww", "wr", "rw"} | (_RT if self.realtime else set())
        for comp in _tarjan(members, self._nbrs(set(members), every)):
            if len(comp) > 1:
                self._classify(set(comp), every)

    def _classify(self, comp, every):
        """Reports the cycles in one strongly connected component with the fewest rw edges."""
        rt = _RT if self.realtime else frozenset()
        no_rw = [{"ww"}, {"ww", "wr"}] + ([{"ww"} | rt, {"ww", "wr"} | rt] if rt else [])
        for kinds in no_rw:
            found = False
            for sub in _tarjan(sorted(comp), self._nbrs(comp, kinds)):
                if len(sub) > 1:
                    self._report_cycle(self._short_cycle(set(sub), kinds), kinds)
                    found = True
            if found:
                return
        for base in [{"ww", "wr"}] + ([{"ww", "wr"} | rt] if rt else []):
            cycle = self._one_rw_cycle(comp, base)
            if cycle:
                return self._report_cycle(cycle, base, first="rw")
        self._report_cycle(self._short_cycle(comp, every), every)

    def _short_cycle(self, nodes, kinds):
        """A short cycle in a strongly connected node set: the best of a few BFS starts."""
        nbrs, best = self._nbrs(nodes, kinds), None
        for s in sorted(nodes)[:8]:
            c = _bfs(s, nbrs, s)
            if c and (best is None or len(c) < len(best)):
                best = c
        return best

    def _one_rw_cycle(self, comp, base):
        """A cycle made of one rw edge a -> b plus a path b -> a over `base` edges, or None.
        Which rw edges close such a cycle is decided exactly with reachability bitsets over the
        components of the base graph; only a few of those are then searched for a short path."""
        nodes = sorted(comp)
        nbrs = self._nbrs(comp, base)
        comps = _tarjan(nodes, nbrs)                  # sinks first
        comp_of = {v: ci for ci, c in enumerate(comps) for v in c}
        reach = [0] * len(comps)                      # bit cj set: component cj reachable
        for ci, c in enumerate(comps):
            bits = 1 << ci
            for v in c:
                for w in nbrs(v):
                    if comp_of[w] != ci:
                        bits |= reach[comp_of[w]]
            reach[ci] = bits
        best, tried = None, 0
        for a in nodes:
            for b, ts in self.succ[a].items():
                if b in comp and "rw" in ts and reach[comp_of[b]] >> comp_of[a] & 1:
                    cycle = [a] + _bfs(b, nbrs, a)
                    if best is None or len(cycle) < len(best):
                        best = cycle
                    tried += 1
                    if tried >= 16 or len(best) == 3:
                        return best
        return best

    def _report_cycle(self, cycle, kinds, first=None):
        labels = []
        for n, (a, b) in enumerate(zip(cycle, cycle[1:])):
            ts = self.succ[a][b]
            labels.append(first if n == 0 and first else
                          next(t for t in _PRIORITY if t in ts and t in kinds))
        n_rw = labels.count("rw")
        core = {t for t in labels if t not in _RT}
        name = ("G0" if core <= {"ww"} else "G1c") if n_rw == 0 else \
            "G-single" if n_rw == 1 else "G2"
        if any(t in _RT for t in labels):
            name += "-realtime"
        steps, text = [], str(self._id(cycle[0]))
        for a, b, t in zip(cycle, cycle[1:], labels):
            key, detail = self.why[(a, b, t)]
            steps.append({"from": self._id(a), "to": self._id(b), "type": t, "key": key,
                          "detail": detail})
            text += f" -{t}{'' if key is None else f'[{key}]'}-> {self._id(b)}"
        note = {"G0": "write cycle", "G1c": "circular information flow",
                "G-single": "read skew", "G2": "write skew"}[name.split("-realtime")[0]]
        self._add(name, cycle[:-1], f"{name} ({note}): {text}",
                  cycle=[self._id(v) for v in cycle], edges=labels, steps=steps)
