"""Redis multi-key writes and MULTI/EXEC whose keys span regions run atomically (a two-phase
commit on the raw keyspace: docs/kv-format.md "Intents", docs/sharding.md §4), checked with
real processes and redis-py: readers never see half of a write, a bank over two regions keeps
its total, and a gateway killed mid-write leaves every write whole."""
import random
import threading
import time

import redis

from harness import retry
from test_sharding import split, wait_regions


def two_regions(c):
    """Splits the keyspace at "m": keys a* and z* live in different regions."""
    out = split(c, "m")
    assert out.returncode == 0, out.stderr
    return wait_regions(list(c.nodes.values()), 2)


def test_readers_never_see_half_of_a_write_across_regions(cluster):
    c = cluster
    nodes = list(c.nodes.values())
    two_regions(c)
    w = nodes[0].redis()
    retry(lambda: w.mset({"a-seq": 0, "z-seq": 0}))
    stop = threading.Event()
    errors = []
    reads = [0]

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 2:
                    w.mset({"a-seq": i, "z-seq": i})
                else:
                    p = w.pipeline(transaction=True)
                    p.set("z-seq", i).set("a-seq", i)
                    p.execute()
            except redis.RedisError as e:
                errors.append(f"write {i}: {e!r}")

    def reader(node, first, second):
        r = node.redis()
        while not stop.is_set():
            try:
                x = int(r.get(first))
                y = int(r.get(second))  # read later: never older than the first
                reads[0] += 1
                if y < x:
                    errors.append(f"{first}={x} then {second}={y}: half of a write seen")
            except redis.RedisError as e:
                errors.append(f"read: {e!r}")

    threads = [threading.Thread(target=writer, daemon=True),
               threading.Thread(target=reader, args=(nodes[1], "a-seq", "z-seq"), daemon=True),
               threading.Thread(target=reader, args=(nodes[2], "z-seq", "a-seq"), daemon=True)]
    for t in threads:
        t.start()
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[:10]
    assert reads[0] > 50, reads
    a, z = (int(v) for v in nodes[1].redis().mget("a-seq", "z-seq"))
    assert a == z and a > 10, (a, z)
    assert int(nodes[0].metric("micedb_router_cross_region_txns_total") or 0) > 0


def test_a_bank_over_two_regions_keeps_its_total_under_multi_exec(cluster):
    c = cluster
    nodes = list(c.nodes.values())
    two_regions(c)
    accounts = [f"a{i}" for i in range(4)] + [f"z{i}" for i in range(4)]
    retry(lambda: nodes[0].redis().mset({k: 100 for k in accounts}))
    total = 100 * len(accounts)
    stop = threading.Event()
    errors, done, audits = [], [0], [0]

    def transfers(seed, node):
        rnd = random.Random(seed)
        r = node.redis()
        while not stop.is_set():
            src, dst = rnd.sample(accounts, 2)
            n = rnd.randint(1, 10)
            try:
                p = r.pipeline(transaction=True)
                p.decrby(src, n).incrby(dst, n)
                p.execute()
                done[0] += 1
            except redis.RedisError as e:
                errors.append(f"transfer: {e!r}")

    def auditor(node):
        r = node.redis()
        while not stop.is_set():
            try:
                p = r.pipeline(transaction=True)
                p.mget(accounts)
                (values,) = p.execute()
                s = sum(int(v) for v in values)
                audits[0] += 1
                if s != total:
                    errors.append(f"audit saw a total of {s}: {values}")
            except redis.RedisError as e:
                errors.append(f"audit: {e!r}")

    threads = [threading.Thread(target=transfers, args=(i, nodes[i % 3]), daemon=True)
               for i in range(3)]
    threads.append(threading.Thread(target=auditor, args=(nodes[1],), daemon=True))
    for t in threads:
        t.start()
    time.sleep(8)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[:10]
    assert done[0] > 30 and audits[0] > 10, (done, audits)
    values = nodes[2].redis().mget(accounts)
    assert sum(int(v) for v in values) == total, values


def test_a_gateway_killed_mid_write_leaves_every_write_whole(cluster):
    c = cluster
    nodes = list(c.nodes.values())
    two_regions(c)
    pairs = [(f"a-kill{i}", f"z-kill{i}") for i in range(8)]
    retry(lambda: nodes[1].redis().mset({k: "init" for p in pairs for k in p}))
    # The writes' gateway; it may lead regions too (their elections are part of the test).
    victim = nodes[0]
    stop = threading.Event()

    def writer():
        r = victim.redis(socket_timeout=5)
        i = 0
        while not stop.is_set():
            a, z = pairs[i % len(pairs)]
            try:
                r.mset({z: f"v{i}", a: f"v{i}"})
            except (redis.RedisError, OSError):
                return
            i += 1

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    victim.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    # From another node: every pair reads equal (both sides of each write, or neither), once
    # the dead gateway's intents are resolved by the readers that meet them.
    r = nodes[1].redis(socket_timeout=30)
    for a, z in pairs:
        va = retry(lambda a=a: r.get(a), timeout=30)
        vz = retry(lambda z=z: r.get(z), timeout=30)
        assert va == vz, (a, va, z, vz)
    victim.start()
    r0 = retry(lambda: victim.redis(), timeout=30)
    for a, z in pairs:
        assert retry(lambda a=a: r0.get(a), timeout=30) == r.get(z)


def test_intents_nobody_meets_are_swept(cluster_factory):
    """A gateway frozen (SIGSTOP) with cross-region writes under way leaves their intents;
    nobody reads those keys, and the other nodes' intent sweep (every second here) resolves
    them once their locks expire: afterwards every pair reads whole and no read meets an
    intent."""
    c = cluster_factory(extra_args=("--intent-sweep-interval", "1s"))
    nodes = list(c.nodes.values())
    two_regions(c)
    pairs = [(f"a-sweep{i}", f"z-sweep{i}") for i in range(8)]
    retry(lambda: nodes[1].redis().mset({k: "init" for p in pairs for k in p}))
    victim, others = nodes[0], nodes[1:]

    def total(name):
        return sum(n.metric(name) or 0 for n in others)

    stop = threading.Event()

    def writer(i):
        r = victim.redis(socket_timeout=60)
        a, z = pairs[i]
        n = 0
        while not stop.is_set():
            try:
                r.mset({z: f"v{n}", a: f"v{n}"})
            except (redis.RedisError, OSError):
                return
            n += 1

    # Eight writers, one pair each, always with a write in flight: freezing the gateway
    # leaves intents (each write holds them for most of its time).
    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(2)
    victim.pause()
    try:
        # Locks expire 3 s after their prepare; the sweep runs every second.
        deadline = time.time() + 30
        while total("micedb_router_intents_swept_total") == 0 and time.time() < deadline:
            time.sleep(0.5)
        assert total("micedb_router_intents_swept_total") > 0, "nothing was swept"
        # The sweep takes an intent up again each round until it is resolved: once its count
        # holds still over three rounds, nothing expired is left.
        last, still = -1, 0
        while still < 3 and time.time() < deadline + 30:
            now = total("micedb_router_intents_swept_total")
            still = still + 1 if now == last else 0
            last = now
            time.sleep(1.1)
        assert still >= 3, "the sweep kept finding intents"
        resolved = total("micedb_router_locks_resolved_total")
        r = others[0].redis(socket_timeout=30)
        for a, z in pairs:
            va, vz = retry(lambda a=a: r.get(a), timeout=30), retry(lambda z=z: r.get(z))
            assert va == vz, (a, va, z, vz)
        assert total("micedb_router_locks_resolved_total") == resolved, \
            "reads met intents the sweep should have resolved"
    finally:
        stop.set()
        victim.resume()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
