"""Requests that once could take the cluster down (issue 13), run against real nodes.

Each test runs at two scales. In `make test` (the ASan build) values are 8 MiB and
--max-result-bytes 16 MiB: the same shapes, at a size the ASan build moves quickly. `make
test-big` runs the exact sequences from the issue (64 MiB values, the default 128 MiB reply
limit, a 120 MiB MSET) against the release build. One 64 MiB entry holds every replica's raft
loop for 1-3 s on the release build (more on the ASan build), longer than the election
timeout; the nodes allow for it (--raft-slow-write-mib-per-sec, raft.md §3), and every test
here checks that no leader changed."""
import pytest
import redis

from harness import retry

MIB = 1 << 20

SCALES = {
    # name: (value bytes, --max-result-bytes or None for the default 128 MiB, MSET chunk)
    # The CI MSET is 2 x 8 MiB (64 fragments), which holds ASan raft loop rounds for 1-1.4 s:
    # beyond the election timeout without the big-entry allowance.
    "ci": (8 * MIB, 16 * MIB, 8 * MIB),
    "big": (64 * MIB, None, 60 * MIB),
}



def data_term(node):
    """The raft term of region 1 (the data) on `node`: unchanged means no election there.
    (The store-wide leader-change counter also counts the coordinator's region.)"""
    return node.raft()["regions"][0]["term"]

def scaled(name):
    marks = [pytest.mark.big] if name == "big" else []
    return pytest.param(name, marks=marks, id=name)


def start(cluster_factory, scale):
    value, limit, _ = SCALES[scale]
    args = [] if limit is None else ["--max-result-bytes", str(limit)]
    return cluster_factory(extra_args=args), value, (limit or 128 * MIB)


def data_bytes(node):
    return node.raft(with_hash=True)["regions"][0]["data_bytes"]


@pytest.mark.parametrize("scale", [scaled("ci"), scaled("big")])
def test_a_pipeline_of_huge_reads_with_a_write_is_bounded_and_stores_nothing_big(
        cluster_factory, scale):
    """SET big <64 MiB>, then one pipelined run of 127 x GET big plus SET x 1: once, every
    replica built the whole 8 GiB result at apply and kept it as the dedup record, so the
    committed entry crashed them on every restart. Now the reply stops at --max-result-bytes,
    followers run no reads at all, and the dedup record keeps only the write's result."""
    cluster, size, limit = start(cluster_factory, scale)
    leader = cluster.nodes[cluster.wait_leader()]
    changes = {n.id: data_term(n) for n in cluster.nodes.values()}
    big = b"v" * size
    assert leader.redis(socket_timeout=120).set("big", big)
    cluster.converged_hashes()
    pids = {n.id: n.proc.pid for n in cluster.nodes.values()}
    before = {n.id: data_bytes(n) for n in cluster.nodes.values()}

    p = leader.redis(socket_timeout=120).pipeline(transaction=False)
    for _ in range(127):
        p.get("big")
    p.set("x", "1")
    out = p.execute(raise_on_error=False)
    assert len(out) == 128
    values = [v for v in out[:127] if isinstance(v, bytes)]
    errors = [v for v in out[:127] if isinstance(v, Exception)]
    fit = limit // size
    assert len(values) == fit and all(v == big for v in values)
    assert len(errors) == 127 - fit
    assert all("reply would exceed" in str(e) for e in errors), errors[0]
    assert out[127] is True

    # The same in MULTI/EXEC: the reads past the limit fail, the write applies.
    t = leader.redis(socket_timeout=120).pipeline(transaction=True)
    for _ in range(fit + 1):
        t.get("big")
    t.set("y", "2")
    out = t.execute(raise_on_error=False)
    assert [type(v) for v in out[:fit]] == [bytes] * fit
    assert isinstance(out[fit], redis.ResponseError) and "reply would exceed" in str(out[fit])
    assert out[fit + 1] is True

    for n in cluster.nodes.values():
        assert retry(lambda n=n: n.redis().get("x")) == b"1"
        assert retry(lambda n=n: n.redis().get("y")) == b"2"
    cluster.converged_hashes()
    for n in cluster.nodes.values():
        assert n.alive() and n.proc.pid == pids[n.id], f"node {n.id} restarted"
        assert data_term(n) == changes[n.id], n.id  # no election in the data region
        # Two small keys and two small dedup records: nowhere near the replies' size.
        grown = data_bytes(n) - before[n.id]
        assert grown < 64 * 1024, f"node {n.id}: the data grew by {grown} bytes"


def test_a_single_read_over_the_limit_is_refused_and_the_node_carries_on(cluster_factory):
    c = cluster_factory(size=1, extra_args=["--max-result-bytes", "2MiB"])
    r = c.nodes[1].redis()
    r.set("a", b"a" * (MIB + 1))
    r.set("b", b"b" * (MIB + 1))
    assert len(r.get("a")) == MIB + 1
    try:
        r.mget("a", "b")
        raise AssertionError("MGET over --max-result-bytes answered")
    except redis.ResponseError as e:
        assert "reply would exceed 2097152 bytes" in str(e)
    assert len(r.getrange("b", 0, -1)) == MIB + 1
    assert r.ping()


@pytest.mark.parametrize("scale", [scaled("ci"), scaled("big")])
def test_large_writes_through_a_follower_replicate_and_oversized_ones_fail_cleanly(
        cluster_factory, scale):
    """MSET of 5 x 60 MiB through a follower once made a 300 MiB forward frame that the
    leader's receiver dropped (over its 256 MiB limit), resetting the stream while leaders
    churned. Now a request is capped at 128 MiB (one raft entry always fits a frame) and the
    refusal is a clean protocol error; a 2-value MSET through a follower replicates in
    fragments without a stream reset (no message dropped) or a leader change."""
    cluster, _, _ = start(cluster_factory, scale)
    chunk = SCALES[scale][2]
    leader_id = cluster.wait_leader()
    follower = next(n for n in cluster.nodes.values() if n.id != leader_id)
    pids = {n.id: n.proc.pid for n in cluster.nodes.values()}
    changes = {n.id: data_term(n) for n in cluster.nodes.values()}
    # Messages dropped before now (a peer not yet listening at startup) are not this test's.
    dropped = {n.id: n.metric("micedb_transport_dropped_messages_total")
               for n in cluster.nodes.values()}
    r = follower.redis(socket_timeout=120)
    try:
        r.mset({f"k{i}": bytes([65 + i]) * (60 * MIB) for i in range(5)})
        raise AssertionError("a 300 MiB MSET was accepted")
    except (redis.ResponseError, redis.ConnectionError) as e:
        assert "request too large" in str(e) or isinstance(e, redis.ConnectionError), e
    assert follower.redis().ping()
    assert follower.redis(socket_timeout=180).mset({"a": b"a" * chunk, "b": b"b" * chunk})
    for n in cluster.nodes.values():
        got = retry(lambda n=n: n.redis(socket_timeout=60).strlen("b"), timeout=60)
        assert got == chunk
    cluster.converged_hashes()
    for n in cluster.nodes.values():
        assert n.alive() and n.proc.pid == pids[n.id], f"node {n.id} restarted"
        assert n.metric("micedb_transport_dropped_messages_total") == dropped[n.id], n.id
        assert data_term(n) == changes[n.id], n.id  # no election in the data region
    assert cluster.wait_leader() == leader_id


def test_a_node_whose_data_was_deleted_is_refused_and_no_acknowledged_write_is_lost(cluster):
    """Deleting one node's data directory and restarting it with the same id and the same
    --initial-peers once re-bootstrapped it as the same voter with no log and no vote: it could
    help elect a node that lacked acknowledged writes. Now its peers know the incarnation they
    met and refuse the new one; the node says why and exits (code 3)."""
    import shutil
    import time

    leader_id = cluster.wait_leader()
    r = cluster.nodes[leader_id].redis()
    for i in range(50):
        assert r.set(f"acked{i}", str(i))
    victim = next(n for n in cluster.nodes.values() if n.id != leader_id)
    victim.kill9()
    for i in range(50, 100):
        assert retry(lambda i=i: cluster.nodes[cluster.wait_leader()].redis().set(
            f"acked{i}", str(i)))
    shutil.rmtree(victim.data_dir)
    victim.start()
    deadline = time.time() + 60
    while victim.alive() and time.time() < deadline:
        time.sleep(0.2)
    assert not victim.alive(), "the wiped node kept running"
    assert victim.proc.returncode == 3
    log = open(victim.log_path).read()
    assert "has a new data directory" in log and "micedb node remove" in log, log[-2000:]
    # The others carry on, with every acknowledged write.
    others = [n for n in cluster.nodes.values() if n.id != victim.id]
    for n in others:
        assert n.alive()
    leader = cluster.nodes[cluster.wait_leader(among=others)]
    for i in range(100):
        assert retry(lambda i=i: leader.redis().get(f"acked{i}")) == str(i).encode()
    assert retry(lambda: leader.redis().set("after", "1"))


def test_a_node_with_other_raft_timing_is_refused_and_the_cluster_carries_on(cluster):
    """A voter ticking at half the length keeps its vote promise for half the time the leader's
    lease counts on (issue 13 item 3). Every raft stream carries --raft-tick-ms and
    --election-ticks; a node with other values is refused, both sides log both values, neither
    exits, and restarted with the cluster's values the node catches up."""
    import time

    leader_id = cluster.wait_leader()
    leader = cluster.nodes[leader_id]
    victim = next(n for n in cluster.nodes.values() if n.id != leader_id)
    victim.kill9()
    saved = list(cluster.extra_args)
    cluster.extra_args = saved + ["--raft-tick-ms", "50"]
    try:
        victim.start()
    finally:
        cluster.extra_args = saved
    want = "--raft-tick-ms=50 --election-ticks=10"

    def logged(node):
        with open(node.log_path, errors="replace") as f:
            return want in f.read()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (logged(victim) and logged(leader)):
        time.sleep(0.2)
    assert logged(leader), "the cluster did not refuse the node with other timing"
    assert logged(victim), "the node with other timing was not told why"
    assert victim.alive(), "a timing mismatch is not a reason to exit"
    others = [n for n in cluster.nodes.values() if n.id != victim.id]
    assert all(n.alive() for n in others)
    assert retry(lambda: cluster.nodes[cluster.wait_leader(among=others)].redis().set("k", "1"))
    victim.kill9()
    victim.start()
    cluster.converged_hashes()
