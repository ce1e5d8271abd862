"""One-phase commits and GC of transactional versions against real clusters
(docs/transactions.md §3a, §8): single-region transactions commit in one raft round and are
read back like any other; with a short --gc-life-time the coordinator's safe point moves up,
old versions are collected on every replica alike, and a reader at an old timestamp either
gets exactly the data of its snapshot or a clear "snapshot too old" -- never something else."""
import subprocess
import threading
import time

from harness import retry
from test_txn import ok, txn


def total(cluster, name):
    return sum(n.metric(name) or 0 for n in cluster.live())


def committed_at(out):
    assert out.startswith("COMMIT "), out
    return int(out.split()[1])


def test_single_region_transactions_commit_in_one_phase(cluster):
    n1, n2, n3 = cluster.nodes.values()
    cluster.wait_leader()
    retry(lambda: ok(txn(cluster, n1, "put", "warm", "1")), timeout=30,
          exceptions=(AssertionError,))
    # A leader's first one-phase commits wait for its max_ts to be synced with the TSO.
    def one_pc():
        ok(txn(cluster, n2, "put", "a", "1", "put", "b", "2"))
        assert total(cluster, "micedb_txn_one_pc_committed_total") >= 1
    retry(one_pc, timeout=30, exceptions=(AssertionError,))
    assert total(cluster, "micedb_txn_leader_one_pc_admitted_total") >= 1
    # Seen whole from every node, and incremented from each node in turn.
    for n in (n1, n2, n3):
        assert ok(txn(cluster, n, "get", "a", "get", "b")) == "1\n2\n"
    for i in range(10):
        ok(txn(cluster, (n1, n2, n3)[i % 3], "incr", "a", "1"))
    assert ok(txn(cluster, n3, "get", "a")) == "11\n"


def test_gc_collects_old_versions_and_refuses_reads_below_the_safe_point(cluster_factory):
    c = cluster_factory(extra_args=["--gc-life-time", "2s", "--gc-run-interval", "1s"])
    n1, n2, n3 = c.nodes.values()
    c.wait_leader()
    t1 = committed_at(retry(lambda: ok(txn(c, n1, "put", "k", "v1", "put", "j", "x")),
                            timeout=30, exceptions=(AssertionError,)))
    t2 = committed_at(ok(txn(c, n2, "put", "k", "v2")))
    committed_at(ok(txn(c, n3, "put", "k", "v3", "del", "j")))
    assert ok(txn(c, n1, "--read-ts", str(t1), "get", "k", "get", "j")) == "v1\nx\n"

    # Readers at t2 beside GC: each gets v2, or is told its snapshot is too old.
    outcomes, stop = [], threading.Event()

    def reader(node):
        while not stop.is_set():
            r = txn(c, node, "--read-ts", str(t2), "get", "k")
            outcomes.append((r.returncode, r.stdout.decode(), r.stderr.decode()))
            time.sleep(0.05)

    threads = [threading.Thread(target=reader, args=(n,)) for n in (n1, n2, n3)]
    for t in threads:
        t.start()
    try:
        retry(lambda: assert_collected(c), timeout=60, exceptions=(AssertionError,))
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert outcomes
    too_old = 0
    for code, out, err in outcomes:
        if code == 0:
            assert out == "v2\n", (code, out, err)
        else:
            assert "snapshot too old" in err, (code, out, err)
            too_old += 1
    assert too_old > 0, "no reader ever saw the safe point pass it"

    # Below the safe point: refused with the reason; at the latest: the newest data.
    old = txn(c, n2, "--read-ts", str(t1), "get", "k")
    assert old.returncode != 0 and b"snapshot too old" in old.stderr, old
    assert ok(txn(c, n1, "get", "k", "get", "j")) == "v3\n(nil)\n"
    # Every replica collected the same (GC runs as raft entries).
    c.converged_hashes()


def assert_collected(c):
    assert total(c, "micedb_txn_gc_deleted_total") >= 2
    assert total(c, "micedb_txn_gc_runs_total") >= 1
    assert min(n.metric("micedb_txn_gc_safe_point") or 0 for n in c.live()) > 0
