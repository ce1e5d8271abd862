"""The gRPC KV API (micedb.kv.v1.Kv) through `micedb kv` against a three-node cluster: any
node serves any request, the data is the same keyspace the Redis port serves, and errors are
one line with a meaningful exit code."""
import subprocess

from harness import free_ports, retry


def kv(cluster_or_bin, node, *args, timeout=60):
    binary = cluster_or_bin if isinstance(cluster_or_bin, str) else cluster_or_bin.binary
    addr = node if isinstance(node, str) else node.peer_addr
    return subprocess.run([binary, "kv", *args, "--addr", addr], capture_output=True,
                          timeout=timeout)


def ok(result):
    assert result.returncode == 0, result
    assert result.stderr == b"", result
    return result.stdout.decode()


def test_kv_commands_on_every_node(cluster):
    n1, n2, n3 = cluster.nodes.values()

    assert ok(kv(cluster, n1, "put", "greeting", "hello")) == "OK\n"
    for n in (n2, n3):
        assert ok(kv(cluster, n, "get", "greeting")) == "hello\n"

    # A missing key: (nil) and exit 1, nothing on stderr.
    r = kv(cluster, n2, "get", "missing")
    assert (r.returncode, r.stdout, r.stderr) == (1, b"(nil)\n", b"")

    # Scan across the keys written through different nodes, bounded by --end and --limit.
    for i, n in enumerate((n1, n2, n3, n1, n2)):
        ok(kv(cluster, n, "put", f"s{i}", f"v{i}"))
    assert ok(kv(cluster, n3, "scan", "--start", "s", "--end", "t")) == "".join(
        f"s{i}\tv{i}\n" for i in range(5))
    assert ok(kv(cluster, n1, "scan", "--start", "s1", "--limit", "2")) == "s1\tv1\ns2\tv2\n"
    assert ok(kv(cluster, n2, "scan", "--start", "s3", "--end", "s5", "--keys-only")) == "s3\ns4\n"

    # Compare and swap: a conflict reports the current value, then a matching swap wins.
    r = kv(cluster, n2, "cas", "greeting", "--expect", "hi", "--new", "bye")
    assert (r.returncode, r.stdout) == (1, b"CONFLICT\nhello\n"), r
    assert ok(kv(cluster, n3, "cas", "greeting", "--expect", "hello", "--new", "bye")) == "OK\n"
    assert ok(kv(cluster, n1, "get", "greeting")) == "bye\n"
    assert ok(kv(cluster, n1, "cas", "fresh", "--expect-absent", "--new", "1")) == "OK\n"
    r = kv(cluster, n1, "cas", "fresh", "--expect-absent", "--new", "2")
    assert (r.returncode, r.stdout) == (1, b"CONFLICT\n1\n"), r

    # Delete counts only the keys that existed.
    assert ok(kv(cluster, n3, "del", "s0", "s1", "nope")) == "2\n"
    assert kv(cluster, n1, "get", "s0").returncode == 1

    # Same keyspace as Redis, both ways.
    assert n2.redis().get("greeting") == b"bye"
    n3.redis().set("from-redis", "r")
    assert ok(kv(cluster, n1, "get", "from-redis")) == "r\n"
    # A follower's own replica catches up soon enough.
    assert retry(lambda: ok(kv(cluster, n2, "get", "from-redis", "--stale")),
                 exceptions=(AssertionError,)) == "r\n"

    # TTL: the key expires for both front ends.
    ok(kv(cluster, n1, "put", "brief", "x", "--ttl-ms", "100000"))
    ttl = n3.redis().pttl("brief")
    assert 0 < ttl <= 100000


def test_kv_survives_losing_the_leader(cluster):
    leader = cluster.wait_leader()
    cluster.nodes[leader].kill9()
    follower = cluster.live()[0]
    # The client and the node retry until a new leader takes the write.
    assert ok(kv(cluster, follower, "put", "after-failover", "yes")) == "OK\n"
    for n in cluster.live():
        assert ok(kv(cluster, n, "get", "after-failover")) == "yes\n"


def test_kv_errors_are_one_line(micedb_bin):
    nobody = f"127.0.0.1:{free_ports(1)[0]}"

    # Unreachable node: runtime failure, exit 1.
    r = kv(micedb_bin, nobody, "get", "k", "--timeout-ms", "1500")
    assert r.returncode == 1, r
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and nobody in lines[0] and "Unavailable" in lines[0], r.stderr

    # Bad usage, found by the command line or by the server: exit 2, one line.
    for args in (["cas", "k", "--new", "v"],
                 ["cas", "k", "--expect", "a", "--expect-absent", "--new", "v"],
                 ["put", "k", "v", "--ttl-ms", "-1"],
                 ["frob"]):
        r = kv(micedb_bin, nobody, *args)
        assert r.returncode == 2, (args, r)
        assert len(r.stderr.decode().strip().splitlines()) == 1, (args, r.stderr)


def test_kv_refuses_bad_input(cluster):
    n1 = cluster.nodes[1]
    r = kv(cluster, n1, "put", "", "v")
    assert r.returncode == 2, r
    assert b"key is empty" in r.stderr and len(r.stderr.splitlines()) == 1
    r = kv(cluster, n1, "get", "k" * (64 * 1024 + 1))
    assert r.returncode == 2 and b"longer than the limit" in r.stderr, r
