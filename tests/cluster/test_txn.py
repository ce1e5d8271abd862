"""Transactions through `micedb txn` (gRPC micedb.txn.v1) against real clusters: commits seen
whole from every node, snapshot reads at a past timestamp, conflicts named and exit 1, bad
input exit 2, and a bank workload over many regions whose total never changes (bank.py)."""
import json
import random
import subprocess
import threading
import time

import pytest

import bank
import listappend
import nemesis
from harness import retry

# The ways a transaction over several regions commits: async commit (the default;
# --txn-async-commit, docs/transactions.md §3b), or two phases. The checkers run with each.
COMMIT_MODES = {"2pc": ("--txn-async-commit", "false"), "async": ("--txn-async-commit", "true")}


def async_committed(cluster):
    return sum(n.metric("micedb_txn_async_committed_total") or 0 for n in cluster.live())


def txn(cluster, node, *args, timeout=60):
    return subprocess.run([cluster.binary, "txn", "--addr", node.peer_addr, *args],
                          capture_output=True, timeout=timeout)


def ok(result):
    assert result.returncode == 0, result
    assert result.stderr == b"", result
    return result.stdout.decode()


class Session:
    """One `micedb txn --stdin` process: a transaction per line, a JSON answer per line."""

    def __init__(self, cluster, node):
        self.p = subprocess.Popen([cluster.binary, "txn", "--stdin", "--addr", node.peer_addr,
                                   "--timeout-ms", "15000"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        assert out, "micedb txn --stdin ended"
        return json.loads(out)

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(timeout=30) == 0


def test_transactions_across_nodes_and_snapshots(cluster):
    n1, n2, n3 = cluster.nodes.values()
    cluster.wait_leader()
    first = retry(lambda: ok(txn(cluster, n1, "put", "a", "1", "put", "b", "2")), timeout=30,
                  exceptions=(AssertionError,))
    assert first.startswith("COMMIT ")
    t1 = int(first.split()[1])
    # Seen whole from every node.
    for n in (n1, n2, n3):
        assert ok(txn(cluster, n, "get", "a", "get", "b", "get", "c")) == "1\n2\n(nil)\n"
    ok(txn(cluster, n2, "put", "a", "10", "del", "b", "put", "c", "3"))
    assert ok(txn(cluster, n3, "scan", "-", "-", "10")) == "a\t10\nc\t3\n"
    # A read at the first commit's timestamp sees the state it made.
    assert ok(txn(cluster, n3, "--read-ts", str(t1), "get", "a", "get", "b",
                  "scan", "-", "-", "10")) == "1\n2\na\t1\nb\t2\n"
    # The transactional keyspace is apart from the raw one (Redis, micedb kv).
    r = n1.redis()
    assert r.get("a") is None
    r.set("a", "raw")
    assert ok(txn(cluster, n1, "get", "a")) == "10\n"

    # Bad input: exit 2 and one line.
    bad = txn(cluster, n1, "put", "only-a-key")
    assert bad.returncode == 2 and b"needs 2 argument" in bad.stderr, bad
    bad = txn(cluster, n1, "scan", "a", "b", "0")
    assert bad.returncode == 2, bad


def test_concurrent_increments_lose_no_update_and_name_the_conflict(cluster):
    n1, n2, _ = cluster.nodes.values()
    cluster.wait_leader()
    s1, s2 = Session(cluster, n1), Session(cluster, n2)
    try:
        assert retry(lambda: s1.run("put x 0"), timeout=30, exceptions=(AssertionError,))["ok"]
        outcomes = []

        def worker(s):
            for _ in range(25):
                outcomes.append(s.run("incr x 1"))

        th = [threading.Thread(target=worker, args=(s,)) for s in (s1, s2)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        assert all(o["ok"] or o["code"] == "Aborted" for o in outcomes), outcomes
        committed = sum(1 for o in outcomes if o["ok"])
        # Every committed increment is in the final value: no lost update.
        assert s1.run("get x")["reads"][0]["value"] == str(committed)
        for o in outcomes:
            if not o["ok"]:
                assert '"x"' in o["error"] and "retry" in o["error"], o
    finally:
        s1.close()
        s2.close()


def run_beside(jobs, during, stop):
    """Runs each (fn, *args) of `jobs` on a thread of its own and `during(stop)` (a nemesis,
    or None) on this one; then fails with whatever a job raised."""
    errors = []

    def guarded(fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - asserted on below
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=job) for job in jobs]
    for t in threads:
        t.start()
    if during:
        during(stop)
    for t in threads:
        t.join()
    assert not errors, errors


def bank_run(c, seconds, accounts, during=None):
    """Transfers between random pairs from every node, full snapshot reads beside them; the
    history judged by bank.check. `during(stop_time)` runs beside the workload (a nemesis).
    Returns (result, history)."""
    nodes = list(c.nodes.values())
    initial = {a: 1_000_000 for a in accounts}
    setup = Session(c, nodes[0])
    assert retry(lambda: setup.run(" ".join(f"put {a} 1000000" for a in accounts)), timeout=30,
                 exceptions=(AssertionError,))["ok"]
    setup.close()
    history, lock = [], threading.Lock()
    stop = time.time() + seconds

    def transfers(node, seed):
        rnd = random.Random(seed)
        s = Session(c, node)
        n = 0
        while time.time() < stop:
            a, b = rnd.sample(accounts, 2)
            amount = rnd.randint(1, 10)
            r = s.run(f"incr {a} {-amount} incr {b} {amount}")
            n += 1
            # Aborted and Unavailable did not commit; anything else (a commit timing out)
            # may have.
            status = "ok" if r["ok"] else (
                "fail" if r["code"] in ("Aborted", "Unavailable", "NotFound") else "info")
            with lock:
                history.append(bank.transfer(f"t{seed}-{n}", status, a, b, amount))
        s.close()

    def reads(node):
        s = Session(c, node)
        n = 0
        while time.time() < stop:
            r = s.run("scan acct acct~ 1000")
            if r["ok"]:
                n += 1
                balances = {k: int(v) for k, v in r["reads"][0]["pairs"] if k in initial}
                with lock:
                    history.append(bank.read(f"r{node.id}-{n}", balances,
                                             read_ts=r["start_ts"]))
        s.close()

    run_beside([(transfers, nodes[i % len(nodes)], i) for i in range(4)] +
               [(reads, n) for n in nodes[:2]], during, stop)
    final = retry(lambda: Session(c, nodes[-1]).run("scan acct acct~ 1000"), timeout=30)
    assert final["ok"], final
    balances = {k: int(v) for k, v in final["reads"][0]["pairs"] if k in initial}
    return bank.check(history, initial, final=balances), history


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_bank_over_many_regions_keeps_its_total(cluster_factory, mode):
    # Small regions: the accounts spread over several, so transfers are cross-region.
    c = cluster_factory(extra_args=("--region-split-size", "8KiB", "--region-split-keys", "16")
                        + COMMIT_MODES[mode])
    nodes = list(c.nodes.values())
    c.wait_leader()
    accounts = [f"acct{i:02d}" for i in range(12)]
    # Enough transactional data beside the accounts for the split checker to cut regions.
    pad = Session(c, nodes[0])
    for j in range(4):
        line = " ".join(f"put acct{i:02d}-pad{j} {'x' * 400}" for i in range(12))
        assert retry(lambda: pad.run(line), timeout=30, exceptions=(AssertionError,))["ok"]
    pad.close()

    def cuts_inside_accounts():
        # Region boundaries between the first account and the last: transfers cross them.
        starts = [r["start_key"] for r in nodes[0].raft()["regions"]]
        n = sum(1 for k in starts if "tacct00" < k < "tacct11")
        assert n >= 1, f"the accounts lie in one region: {sorted(starts)}"
        return n

    # The split checker runs every 200 ms on each leader: wait for it, so that the bank's
    # transfers are cross-region from the start.
    retry(cuts_inside_accounts, timeout=30, interval=0.2,
          exceptions=(OSError, ValueError, AssertionError))
    res, history = bank_run(c, 15, accounts)
    assert res.valid, res.report()
    assert res.stats["transfers"]["ok"] > 20 and res.stats["reads"] > 10, res.stats
    regions = nodes[0].raft()["regions"]
    assert len(regions) >= 3, f"the accounts should span regions: {len(regions)} regions"
    if mode == "async":
        # The transfers across regions did commit asynchronously (not all fell back).
        assert async_committed(c) >= 5, [
            (n.id, line) for n in c.live() for line in n.http("/metrics").splitlines()
            if "async" in line and not line.startswith("#")]
    else:
        assert async_committed(c) == 0


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_bank_under_kills_and_pauses(cluster_factory, tmp_path, mode):
    """The bank workload while nodes are killed -9 (one, the leader, or a majority) and
    restarted, or paused: transactions whose gateway dies leave locks that readers resolve, and
    still no money is made or lost, and every snapshot adds up."""
    c = cluster_factory(extra_args=("--region-split-size", "8KiB", "--region-split-keys", "16")
                        + COMMIT_MODES[mode])
    c.wait_leader()
    accounts = [f"acct{i:02d}" for i in range(8)]
    logf = open(tmp_path / "nemesis.log", "w")

    def log(text):
        logf.write(text + "\n")
        logf.flush()

    def faults(stop):
        sched = nemesis.Schedule([nemesis.Kill(c, log), nemesis.Pause(c, log)],
                                 random.Random(1601), max(1.0, stop - time.time()), log,
                                 interval=(1.0, 2.0), hold=(2.0, 4.0))
        sched.start()
        sched.join()
        assert sched.error is None, sched.error
        assert sched.faults >= 2, sched.faults

    res, history = bank_run(c, 25, accounts, during=faults)
    logf.close()
    assert res.valid, res.report() + "\n" + (tmp_path / "nemesis.log").read_text()
    assert res.stats["transfers"]["ok"] > 10, res.stats


def list_append_run(c, seconds, keys, during=None, clients=4):
    """Transactions of 1-4 random ops (append a unique value to a key, or read a key) from
    every node; the history judged by listappend.check under snapshot isolation."""
    nodes = list(c.nodes.values())
    history, lock = [], threading.Lock()
    stop = time.time() + seconds

    def client(node, seed):
        rnd = random.Random(seed)
        s = Session(c, node)
        n = 0
        while time.time() < stop:
            n += 1
            plan = []
            for _ in range(rnd.randint(1, 4)):
                k = rnd.choice(keys)
                if rnd.random() < 0.5:
                    plan.append(("append", k, seed * 1_000_000 + n * 10 + len(plan)))
                else:
                    plan.append(("r", k, None))
            line = " ".join(f"append {k} {v}" if op == "append" else f"get {k}"
                            for op, k, v in plan)
            r = s.run(line)
            if r["ok"]:
                reads = iter(r["reads"])
                ops = []
                for op, k, v in plan:
                    got = next(reads)
                    if op == "append":
                        ops.append(("append", k, v))
                    else:
                        val = got["value"]
                        ops.append(("r", k, None if val is None else
                                    [int(x) for x in val.split(",")]))
                status = "ok"
            else:
                ops = [(op, k, v) for op, k, v in plan]
                status = "fail" if r["code"] in ("Aborted", "Unavailable", "NotFound") else "info"
            with lock:
                history.append(listappend.txn(f"T{seed}-{n}", status, *ops, process=seed))
        s.close()

    run_beside([(client, nodes[i % len(nodes)], i + 1) for i in range(clients)], during, stop)
    return listappend.check(history), history


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_list_append_histories_are_snapshot_isolated(cluster_factory, mode):
    c = cluster_factory(extra_args=("--region-split-size", "8KiB", "--region-split-keys", "16")
                        + COMMIT_MODES[mode])
    c.wait_leader()
    keys = [f"la{i}" for i in range(6)]
    res, history = list_append_run(c, 15, keys)
    assert res.valid, res.report()
    oks = sum(1 for t in history if t.status == "ok")
    assert oks > 50, oks
