"""Checker for "bank" transaction histories (standard library only).

The workload: a fixed set of accounts (keys), each starting with a known balance.  Clients
move money between accounts in transactions and read every balance in one transaction.
Money is never created or destroyed, so every committed snapshot must add up to the
starting total, and every balance must be explainable by the transfers that may have
committed.

History
-------
A history is a list of operations, most easily built with ``transfer`` and ``read``::

    transfer(id, status, src, dst, amount, process=None, invoke=None, complete=None,
             reason=None)
    read(id, balances, status='ok', read_ts=None, process=None, invoke=None, complete=None)

    transfer('T1', 'ok', 'a', 'b', 5)
    read('R1', {'a': 5, 'b': 15}, read_ts=42)

* transfer: reads both balances and writes ``src -= amount``, ``dst += amount`` in one
  transaction.  ``status``: ``'ok'`` committed, ``'fail'`` known not committed (e.g.
  ``reason='insufficient'`` when the workload declined it), ``'info'`` outcome unknown.
  Both accounts must be in ``initial`` and ``amount`` an int (else ValueError).
* read: ``balances`` maps account -> int, or None when the key was absent.  ``read_ts`` is
  the snapshot timestamp if the client knows it.  Only ``'ok'`` reads are checked; reads with
  any other status carried no answer and are counted in the stats only.
* ``process``/``invoke``/``complete`` are kept for reporting; the checks here do not need
  them.
* Plain dicts are accepted too: ``{'type': 'transfer', 'id', 'status', 'from', 'to',
  'amount', ...}`` and ``{'type': 'read', 'id', 'status', 'balances', 'read_ts', ...}``
  (without ``'type'``, a dict with ``'balances'`` is a read, otherwise a transfer).
  Ids must be unique across the history.

API
---
``check(history, initial, final=None, max_subset=20, max_values=100_000) -> Result``

* ``initial``: dict account -> starting balance (int).
* ``final``: optional read taken after every transfer finished (a ``Read``, a read dict, or a
  plain ``{account: balance}`` mapping, which gets the id ``'final'``).  It is checked like
  any read (unless the history already holds a read with the same id and balances), and also
  for ``lost-transfer``.
* ``max_subset``: the subset-sum checks are done per account only when at most this many
  candidate transfers touch it (None: no count limit).  ``max_values``: a subset-sum check is
  also given up once this many distinct balances are reachable.  Skipped checks are counted in
  ``Result.stats`` and never reported as anomalies.
* ``Result.valid``: True iff no anomaly was found.  ``Result.anomalies``: list of dicts with
  ``type``, ``ops`` (ids of the reads/transfers involved, the read first), an ``explanation``
  one-liner, ``violation`` (always True) and type-specific fields (``read``, ``account``,
  ``balance``, ...).  ``Result.counts``: anomalies per type.  ``Result.of_type(kind)``;
  ``Result.report()``: printable text.  ``Result.stats``: ``accounts``; ``reads`` (ok reads
  checked, final included), ``reads_ignored`` (non-ok reads); ``transfers`` ({status: count});
  ``read_ts_shared`` (timestamps read more than once); ``subset_checks`` /
  ``subset_skipped`` ((read, account) impossible-balance checks done / skipped) and
  ``subset_skipped_accounts``; ``final`` (bool), ``final_checks`` / ``final_skipped``
  (accounts of the final read checked / skipped for lost-transfer).

Example::

    res = check(history, initial={'a': 10, 'b': 10}, final=last_read)
    assert res.valid, res.report()

Anomalies
---------
* ``wrong-total``: a read's balances (absent = 0, unknown accounts included) do not sum to
  ``sum(initial)``.  A torn read (a transfer seen on one side only) shows up here.
* ``negative-balance``: a read shows a balance below zero.
* ``missing-account`` / ``unexpected-account``: a read lacks an account of ``initial`` (None or
  not listed) / lists an account not in ``initial``.
* ``impossible-balance``: an account's balance is not ``initial + sum of some subset of the
  signed amounts of the 'ok' and 'info' transfers touching it`` (incoming +, outgoing -).
  This is a necessary condition checked per account, so it is sound: any committed state
  passes it.  When a 'fail' transfer would explain the value, the anomaly says which
  (``aborted``: the read saw a write of a transaction reported as not committed).
* ``non-monotonic-snapshot``: two reads with the same ``read_ts`` return different balances
  (one snapshot must always read the same).  Reads with different timestamps are not compared:
  nothing per account follows from their order in general.
* ``lost-transfer``: in ``final``, an account's balance is not ``initial + all 'ok' amounts +
  some subset of the 'info' amounts`` touching it: a committed transfer is missing (or an
  extra effect is present).  Exact when at most ``max_subset`` 'info' transfers touch the
  account, otherwise skipped and counted.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Hashable, Mapping, Optional

__all__ = ["Transfer", "Read", "transfer", "read", "Result", "check"]

OK, FAIL, INFO = "ok", "fail", "info"
_STATUSES = (OK, FAIL, INFO)


@dataclasses.dataclass(frozen=True)
class Transfer:
    id: Hashable
    status: str                     # 'ok' | 'fail' | 'info'
    src: Hashable                   # 'from' in dict form
    dst: Hashable                   # 'to' in dict form
    amount: int
    process: Hashable = None
    invoke: Optional[float] = None
    complete: Optional[float] = None
    reason: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Read:
    id: Hashable
    status: str                     # only 'ok' reads are checked
    balances: Mapping               # account -> int, or None = key absent
    read_ts: Optional[int] = None
    process: Hashable = None
    invoke: Optional[float] = None
    complete: Optional[float] = None


def transfer(id, status, src, dst, amount, *, process=None, invoke=None, complete=None,
             reason=None) -> Transfer:
    """Shorthand: transfer('T1', 'ok', 'a', 'b', 5) moves 5 from a to b."""
    return Transfer(id, status, src, dst, amount, process, invoke, complete, reason)


def read(id, balances, status=OK, *, read_ts=None, process=None, invoke=None,
         complete=None) -> Read:
    """Shorthand: read('R1', {'a': 5, 'b': 15}, read_ts=42)."""
    return Read(id, status, dict(balances) if balances is not None else None, read_ts,
                process, invoke, complete)


@dataclasses.dataclass
class Result:
    valid: bool
    anomalies: list
    counts: dict
    stats: dict

    def of_type(self, kind: str) -> list:
        return [a for a in self.anomalies if a["type"] == kind]

    def report(self) -> str:
        lines = [f"bank: {'valid' if self.valid else 'INVALID'}; counts {self.counts}; "
                 f"stats {self.stats}"]
        lines += ["  VIOLATION " + a["explanation"] for a in self.anomalies]
        return "\n".join(lines)


def check(history, initial, final=None, max_subset: Optional[int] = 20,
          max_values: int = 100_000) -> Result:
    """Checks a bank history; see the module docstring."""
    initial = _check_initial(initial)
    transfers, reads, ignored = _normalize(history, initial)
    fin = _normalize_final(final) if final is not None else None
    return _Checker(initial, transfers, reads, ignored, fin, max_subset, max_values).run()


# --------------------------------------------------------------------------- input

def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_initial(initial) -> dict:
    if not isinstance(initial, Mapping) or not initial:
        raise ValueError("initial must be a non-empty mapping account -> balance")
    for acct, bal in initial.items():
        if not _is_int(bal) or bal < 0:
            raise ValueError(f"initial balance of {acct!r} must be an int >= 0, got {bal!r}")
    return dict(initial)


def _to_read(op) -> Read:
    if isinstance(op, Read):
        r = op
    else:
        r = Read(op.get("id"), op.get("status", OK), op.get("balances"), op.get("read_ts"),
                 op.get("process"), op.get("invoke"), op.get("complete"))
    if r.status not in _STATUSES:
        raise ValueError(f"read {r.id!r}: bad status {r.status!r}")
    if r.status == OK:
        if not isinstance(r.balances, Mapping):
            raise ValueError(f"read {r.id!r}: 'ok' read needs a balances mapping")
        for acct, bal in r.balances.items():
            if bal is not None and not _is_int(bal):
                raise ValueError(f"read {r.id!r}: balance of {acct!r} is {bal!r}, not an int")
        r = dataclasses.replace(r, balances=dict(r.balances))
    return r


def _to_transfer(op, initial) -> Transfer:
    if isinstance(op, Transfer):
        t = op
    else:
        t = Transfer(op.get("id"), op.get("status"), op.get("from"), op.get("to"),
                     op.get("amount"), op.get("process"), op.get("invoke"), op.get("complete"),
                     op.get("reason"))
    if t.status not in _STATUSES:
        raise ValueError(f"transfer {t.id!r}: bad status {t.status!r}")
    for acct in (t.src, t.dst):
        if acct not in initial:
            raise ValueError(f"transfer {t.id!r}: account {acct!r} is not in initial")
    if not _is_int(t.amount):
        raise ValueError(f"transfer {t.id!r}: amount {t.amount!r} is not an int")
    return t


def _normalize(history, initial):
    transfers, reads, ignored, seen = [], [], 0, set()
    for op in history:
        if isinstance(op, (Read, Transfer)):
            kind = "read" if isinstance(op, Read) else "transfer"
        elif isinstance(op, Mapping):
            kind = op.get("type") or ("read" if "balances" in op else "transfer")
        else:
            raise ValueError(f"history entry {op!r} is neither a record nor a dict")
        if kind == "read":
            op = _to_read(op)
        elif kind == "transfer":
            op = _to_transfer(op, initial)
        else:
            raise ValueError(f"history entry {op!r}: unknown type {kind!r}")
        if op.id in seen:
            raise ValueError(f"duplicate id {op.id!r}")
        seen.add(op.id)
        if kind == "transfer":
            transfers.append(op)
        elif op.status == OK:
            reads.append(op)
        else:
            ignored += 1
    return transfers, reads, ignored


def _normalize_final(final) -> Read:
    if isinstance(final, Read) or (isinstance(final, Mapping) and
                                   isinstance(final.get("balances"), Mapping)):
        r = _to_read(final)
        if r.id is None:
            r = dataclasses.replace(r, id="final")
    elif isinstance(final, Mapping):
        r = _to_read({"id": "final", "status": OK, "balances": final})
    else:
        raise ValueError(f"final must be a read or a balances mapping, got {final!r}")
    if r.status != OK:
        raise ValueError(f"final read {r.id!r} must have status 'ok', not {r.status!r}")
    return r


# --------------------------------------------------------------------------- subset sums

def _reachable(base: int, deltas: list, cap: int):
    """The set of values base + sum(S) over all subsets S of `deltas`, or None once it holds
    more than `cap` values."""
    reach = {base}
    for d in deltas:
        if d:
            reach |= {v + d for v in reach}
            if len(reach) > cap:
                return None
    return reach


def _cheapest(base: int, options: list, cap: int):
    """Like _reachable over `options` = [(delta, cost)], but maps each value to (total cost,
    bitmask over the positions in `options`) of a cheapest subset reaching it."""
    reach = {base: (0, 0)}
    for i, (d, cost) in enumerate(options):
        bit, new = 1 << i, dict(reach)
        for v, (c, mask) in reach.items():
            w, c2 = v + d, c + cost
            if w not in new or new[w][0] > c2:
                new[w] = (c2, mask | bit)
        reach = new
        if len(reach) > cap:
            return None
    return reach


def _describe(values) -> str:
    vals = sorted(values)
    if len(vals) <= 8:
        return "{" + ", ".join(map(str, vals)) + "}"
    return f"{len(vals)} values in [{vals[0]}, {vals[-1]}]"


def _signed(t: Transfer, acct) -> int:
    """The change `t` makes to `acct`'s balance if it commits."""
    return (t.amount if t.dst == acct else 0) - (t.amount if t.src == acct else 0)


def _fmt_transfers(ts, acct) -> str:
    return ", ".join(f"{t.id} ({_signed(t, acct):+d}, {t.status})" for t in ts)


# --------------------------------------------------------------------------- the checker

_SKIP = object()        # cache marker: check skipped for this account


class _Checker:
    def __init__(self, initial, transfers, reads, ignored, final, max_subset, max_values):
        self.initial, self.transfers, self.reads = initial, transfers, reads
        self.ignored, self.final = ignored, final
        self.max_subset, self.max_values = max_subset, max_values
        self.total = sum(initial.values())
        self.anomalies = []
        # Per account: the transfers that change it, split by status (from/to the same account
        # changes nothing and is left out).
        self.touching = {a: {OK: [], INFO: [], FAIL: []} for a in initial}
        for t in transfers:
            if t.src != t.dst and t.amount != 0:
                self.touching[t.src][t.status].append(t)
                self.touching[t.dst][t.status].append(t)
        self.cache = {}
        self.stats = {
            "accounts": len(initial),
            "reads": 0,
            "reads_ignored": ignored,
            "transfers": {s: sum(1 for t in transfers if t.status == s) for s in _STATUSES},
            "read_ts_shared": 0,
            "subset_checks": 0,
            "subset_skipped": 0,
            "subset_skipped_accounts": 0,
            "final": final is not None,
            "final_checks": 0,
            "final_skipped": 0,
        }

    def run(self) -> Result:
        checked = list(self.reads)
        if self.final is not None and not any(r.id == self.final.id and
                                              r.balances == self.final.balances
                                              for r in self.reads):
            checked.append(self.final)
        for r in checked:
            self._check_read(r)
        self.stats["reads"] = len(checked)
        self.stats["subset_skipped_accounts"] = sum(
            1 for (kind, _), v in self.cache.items() if kind == "any" and v is _SKIP)
        self._check_same_ts(checked)
        if self.final is not None:
            self._check_final(self.final)
        counts = dict(collections.Counter(a["type"] for a in self.anomalies))
        return Result(not self.anomalies, self.anomalies, counts, self.stats)

    def _add(self, kind, ops, explanation, **extra):
        ids = list(dict.fromkeys(ops))
        self.anomalies.append({"type": kind, "ops": ids, **extra,
                               "explanation": f"{kind}: {explanation}", "violation": True})

    def _small(self, n) -> bool:
        return self.max_subset is None or n <= self.max_subset

    # ---- reachability, computed once per account and kind

    def _any_reach(self, acct):
        """Balances of `acct` reachable with any subset of its ok/info transfers, or _SKIP."""
        key = ("any", acct)
        if key not in self.cache:
            ts = self.touching[acct][OK] + self.touching[acct][INFO]
            reach = None
            if self._small(len(ts)):
                reach = _reachable(self.initial[acct], [_signed(t, acct) for t in ts],
                                   self.max_values)
            self.cache[key] = (ts, reach) if reach is not None else _SKIP
        return self.cache[key]

    def _aborted_reach(self, acct):
        """Like _any_reach but 'fail' transfers may count too, as few as possible (only to
        explain anomalies): value -> (number of fail transfers, bitmask over the list)."""
        key = ("aborted", acct)
        if key not in self.cache:
            tt = self.touching[acct]
            ts = tt[OK] + tt[INFO] + tt[FAIL]
            reach = None
            if tt[FAIL] and self._small(len(ts)):
                reach = _cheapest(self.initial[acct],
                                  [(_signed(t, acct), int(t.status == FAIL)) for t in ts],
                                  self.max_values)
            self.cache[key] = (ts, reach) if reach is not None else _SKIP
        return self.cache[key]

    def _lost_reach(self, acct):
        """Final balances reachable by un-applying as few ok transfers as possible and applying
        any info ones (only to explain lost-transfer): value -> (count, bitmask)."""
        key = ("lost", acct)
        if key not in self.cache:
            tt = self.touching[acct]
            ts = tt[OK] + tt[INFO]
            reach = None
            if self._small(len(ts)):
                base = self.initial[acct] + sum(_signed(t, acct) for t in tt[OK])
                reach = _cheapest(base, [(-_signed(t, acct), 1) for t in tt[OK]] +
                                  [(_signed(t, acct), 0) for t in tt[INFO]], self.max_values)
            self.cache[key] = (ts, reach) if reach is not None else _SKIP
        return self.cache[key]

    def _final_reach(self, acct):
        """Balances reachable with every ok transfer plus any subset of info ones, or _SKIP."""
        key = ("final", acct)
        if key not in self.cache:
            tt = self.touching[acct]
            base = self.initial[acct] + sum(_signed(t, acct) for t in tt[OK])
            reach = None
            if self._small(len(tt[INFO])):
                reach = _reachable(base, [_signed(t, acct) for t in tt[INFO]], self.max_values)
            self.cache[key] = (tt[INFO], reach) if reach is not None else _SKIP
        return self.cache[key]

    # ---- per-read checks

    def _check_read(self, r: Read):
        bal = r.balances
        missing = [a for a in self.initial if bal.get(a) is None]
        extra = [a for a in bal if a not in self.initial]
        if missing:
            self._add("missing-account", [r.id], f"read {r.id} has no balance for "
                      f"{', '.join(map(str, missing))} (expected {len(self.initial)} accounts)",
                      read=r.id, accounts=missing)
        if extra:
            self._add("unexpected-account", [r.id], f"read {r.id} lists account(s) "
                      f"{', '.join(f'{a}={bal[a]}' for a in extra)} that are not in initial",
                      read=r.id, accounts=extra)
        total = sum(v for v in bal.values() if v is not None)
        if total != self.total:
            note = " (absent accounts counted as 0)" if missing else ""
            self._add("wrong-total", [r.id], f"read {r.id} balances sum to {total}, expected "
                      f"{self.total}: {total - self.total:+d}{note}; balances {bal}",
                      read=r.id, total=total, expected=self.total)
        for a, v in bal.items():
            if v is not None and v < 0:
                self._add("negative-balance", [r.id], f"read {r.id} shows {a} = {v}",
                          read=r.id, account=a, balance=v)
        for a in self.initial:
            v = bal.get(a)
            if v is None:
                continue
            got = self._any_reach(a)
            if got is _SKIP:
                self.stats["subset_skipped"] += 1
                continue
            self.stats["subset_checks"] += 1
            ts, reach = got
            if v in reach:
                continue
            text = (f"read {r.id} shows {a} = {v}, but no subset of the {len(ts)} ok/info "
                    f"transfer(s) touching {a} gets there from its initial "
                    f"{self.initial[a]} (reachable: {_describe(reach)})")
            ops, aborted = [r.id], []
            got = self._aborted_reach(a)
            if got is not _SKIP and v in got[1]:
                chosen = got[1][v][1]
                chosen = [t for i, t in enumerate(got[0]) if chosen >> i & 1]
                aborted = [t.id for t in chosen if t.status == FAIL]
                text += (f"; it is explained by including not-committed ('fail') transfer(s) "
                         f"{', '.join(map(str, aborted))}: e.g. {_fmt_transfers(chosen, a)}")
                ops += [t.id for t in chosen]
            self._add("impossible-balance", ops, text, read=r.id, account=a, balance=v,
                      aborted=aborted)

    def _check_same_ts(self, reads):
        groups = collections.defaultdict(list)
        for r in reads:
            if r.read_ts is not None:
                groups[r.read_ts].append(r)
        for ts, rs in groups.items():
            if len(rs) < 2:
                continue
            self.stats["read_ts_shared"] += 1
            first = rs[0]
            for r in rs[1:]:
                accts = list(dict.fromkeys(list(first.balances) + list(r.balances)))
                diff = {a: (first.balances.get(a), r.balances.get(a)) for a in accts
                        if first.balances.get(a) != r.balances.get(a)}
                if diff:
                    shown = ", ".join(f"{a}: {x} vs {y}" for a, (x, y) in diff.items())
                    self._add("non-monotonic-snapshot", [first.id, r.id],
                              f"reads {first.id} and {r.id} share read_ts {ts} but differ "
                              f"({shown})", read_ts=ts, reads=[first.id, r.id], diff=diff)

    # ---- the final read

    def _check_final(self, r: Read):
        for a in self.initial:
            v = r.balances.get(a)
            if v is None:
                continue                        # missing-account says it already
            got = self._final_reach(a)
            if got is _SKIP:
                self.stats["final_skipped"] += 1
                continue
            self.stats["final_checks"] += 1
            infos, reach = got
            if v in reach:
                continue
            oks = self.touching[a][OK]
            text = (f"final read {r.id} shows {a} = {v}, but from initial {self.initial[a]} "
                    f"with all {len(oks)} ok transfer(s) touching {a} applied and any of its "
                    f"{len(infos)} info transfer(s), it must be one of {_describe(reach)}")
            ops, lost = [r.id], []
            got = self._lost_reach(a)
            if got is not _SKIP and v in got[1]:
                mask = got[1][v][1]
                lost_ts = [t for i, t in enumerate(got[0]) if mask >> i & 1 and t.status == OK]
                lost = [t.id for t in lost_ts]
                text += (f"; explained by losing as few as {len(lost)} ok transfer(s), e.g. "
                         f"{_fmt_transfers(lost_ts, a)}")
                ops += lost
            self._add("lost-transfer", ops, text, read=r.id, account=a, balance=v, lost=lost)
