"""One-shot write transactions (a Commit with mutations and txn_id 0, micedb.txn.v1) through
`micedb txn --oneshot`: the writes are seen by later transactions from every node, and a mix
with reads is refused before anything is sent."""
import json
import subprocess

from harness import retry
from test_txn import ok, txn


def test_oneshot_writes_are_seen_by_later_transactions(cluster):
    n1, n2, n3 = cluster.nodes.values()
    cluster.wait_leader()
    retry(lambda: ok(txn(cluster, n1, "put", "gone", "x")), timeout=30,
          exceptions=(AssertionError,))
    first = ok(txn(cluster, n1, "--oneshot", "put", "a", "1", "put", "b", "2", "del", "gone"))
    assert first.startswith("COMMIT "), first
    t1 = int(first.split()[1])
    for n in (n1, n2, n3):
        assert ok(txn(cluster, n, "get", "a", "get", "b", "get", "gone")) == "1\n2\n(nil)\n"
    # A later mutation of the same key wins; the commit is newer than the first.
    second = ok(txn(cluster, n2, "--oneshot", "put", "a", "10", "put", "a", "11"))
    assert int(second.split()[1]) > t1
    assert ok(txn(cluster, n3, "get", "a")) == "11\n"
    assert ok(txn(cluster, n3, "--read-ts", str(t1), "get", "a")) == "1\n"

    # Through --stdin: one JSON answer per line, a commit_ts and no start_ts of its own.
    p = subprocess.run([cluster.binary, "txn", "--stdin", "--oneshot", "--addr", n1.peer_addr],
                       input="put c 3 put d 4\nget c\n", capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert lines[0]["ok"] and lines[0]["commit_ts"] > 0, lines
    assert not lines[1]["ok"] and lines[1]["code"] == "InvalidArgument", lines
    assert ok(txn(cluster, n1, "get", "c", "get", "d")) == "3\n4\n"


def test_oneshot_refuses_reads_with_a_clear_message(cluster):
    n1 = next(iter(cluster.nodes.values()))
    cluster.wait_leader()
    for ops in (("put", "a", "1", "get", "b"), ("incr", "a", "1"), ("scan", "-", "-", "10")):
        bad = txn(cluster, n1, "--oneshot", *ops)
        assert bad.returncode == 2, bad
        assert b"--oneshot takes only put and del" in bad.stderr, bad
        assert bad.stdout == b"", bad
    bad = txn(cluster, n1, "--oneshot", "--read-ts", "5", "put", "a", "1")
    assert bad.returncode == 2 and b"not both" in bad.stderr, bad
    # Nothing of the refused ones was written.
    assert retry(lambda: ok(txn(cluster, n1, "get", "a")), timeout=30,
                 exceptions=(AssertionError,)) == "(nil)\n"


def test_oneshot_over_the_transaction_size_is_refused_whole(cluster_factory):
    c = cluster_factory(extra_args=("--max-txn-bytes", "1MiB"))  # a unit, or plain bytes
    n1 = next(iter(c.nodes.values()))
    c.wait_leader()
    # Ten values of 120 KiB: each fits, together they pass --max-txn-bytes.
    line = " ".join(f"put big{i} {'v' * (120 << 10)}" for i in range(10))
    p = subprocess.run([c.binary, "txn", "--stdin", "--oneshot", "--addr", n1.peer_addr],
                       input=line + "\nput small 1\n", capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p
    big, small = [json.loads(out) for out in p.stdout.splitlines()]
    assert not big["ok"] and big["code"] == "InvalidArgument", big
    assert "one transaction may write at most 1048576" in big["error"], big
    assert small["ok"], small
    assert ok(txn(c, n1, "get", "big0", "get", "small")) == "(nil)\n1\n"
