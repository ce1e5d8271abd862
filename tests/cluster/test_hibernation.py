"""Hibernation (docs/sharding.md §5, `--hibernate-regions`) with real processes: idle regions
stop ticking on every node, a write wakes its region, and when the store that leads sleeping
regions dies, the followers notice the silence (its pings stop) and elect new leaders for every
one of them, so every key stays readable and writable through the other nodes."""
import time

from harness import retry
from test_scheduling import split

REGIONS = 10


def data_regions(node):
    return [r for r in node.raft()["regions"] if r["id"] != 2 and r["voters"]]


def all_asleep(nodes):
    for n in nodes:
        regions = data_regions(n)
        assert len(regions) == REGIONS, len(regions)
        awake = [r["id"] for r in regions if not r["asleep"]]
        assert not awake, f"node {n.id}: regions {awake} awake"


def test_idle_regions_sleep_and_wake_when_their_leaders_store_dies(cluster_factory):
    c = cluster_factory(3)
    n1 = c.nodes[1]
    keys = [f"key{i:03d}" for i in range(200)]
    for k in keys:
        retry(lambda k=k: n1.redis().set(k, "v1"))
    for i in range(20, 200, 20):
        split(c, f"key{i:03d}", n1)
    nodes = list(c.nodes.values())
    retry(lambda: all_asleep(nodes), timeout=60, exceptions=(AssertionError, OSError, ValueError))
    for n in nodes:
        assert n.metric("micedb_regions_asleep") >= REGIONS
        assert n.metric("micedb_raft_hibernations_total") >= REGIONS

    # Asleep, a region sends nothing: the raft rounds with work stop on every node (awake,
    # each region's leader heartbeats five times a second).
    rounds = [n.metric("micedb_raft_loop_rounds_total") for n in nodes]
    time.sleep(2)
    busy = [n.metric("micedb_raft_loop_rounds_total") - r for n, r in zip(nodes, rounds)]
    # The coordinator's own region stays awake (its timestamp bound moves every few seconds).
    assert all(b < 40 for b in busy), busy

    # A write wakes its region; the value is there at once.
    n1.redis().set("key005", "v2")
    assert n1.redis().get("key005") == b"v2"
    assert sum(n.metric("micedb_raft_wakes_total") for n in nodes) >= 3
    retry(lambda: all_asleep(nodes), timeout=60, exceptions=(AssertionError, OSError, ValueError))

    # The store leading the most sleeping regions dies: nothing tells the others but the
    # silence. Every region must get a leader among the two left, and every key be writable.
    led = {n.id: sum(1 for r in data_regions(n) if r["role"] == "leader") for n in nodes}
    victim = max(led, key=led.get)
    assert led[victim] >= 1, led
    c.nodes[victim].kill9()
    survivors = [n for n in nodes if n.id != victim]
    started = time.time()
    for k in keys:
        retry(lambda k=k: survivors[0].redis().set(k, "v3"), timeout=30)
    took = time.time() - started
    for k in keys[::7]:
        assert survivors[1].redis().get(k) == b"v3"
    assert sum(n.metric("micedb_raft_silent_leader_wakes_total") for n in survivors) >= 1
    print(f"{led[victim]} sleeping regions led by the dead store; all {len(keys)} keys "
          f"written through the survivors within {took:.1f} s")
