"""The coordinator's schedulers (docs/sharding.md §3) with real processes: a store killed for
good has every replica replaced elsewhere (the coordinator's own region too), and `micedb node
decommission` moves everything off a live store, showing progress, until it is a tombstone.
The data stays readable throughout."""
import json
import subprocess
import threading
import time

import redis

from harness import retry
from test_coordinator import cluster_view, serving_coordinator, start_joiner

DOWN = ("--store-down-time", "3s")


def split(c, key, node):
    out = subprocess.run([c.binary, "region", "split", key, "--via", node.peer_addr],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out


def placement(node):
    """{region id: (voters, learners)} from the coordinator, the meta region (2) included."""
    view = cluster_view(node)
    out = {}
    for r in view["regions"]:
        cs = r["meta"]["region"].get("confState", {})
        out[int(r["meta"]["region"]["id"])] = (sorted(int(v) for v in cs.get("voters", [])),
                                               sorted(int(v) for v in cs.get("learners", [])))
    out[2] = (sorted(int(m["nodeId"]) for m in view["coordinators"]), [])
    return out, view


def wait_placed(node, without, regions, timeout=90):
    """Waits until `regions` regions (plus the meta region) each have three voters, no learner
    and nothing on `without`; returns the placement."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            got, view = placement(node)
            last = (got, view.get("operators"))
            if len(got) == regions + 1 and all(
                    len(v) == 3 and not learners and without not in v
                    for v, learners in got.values()):
                return got
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"replicas not moved off store {without}: {last}")


def test_a_dead_store_is_replaced_and_a_live_one_decommissioned(cluster_factory, tmp_path):
    c = cluster_factory(3, extra_args=DOWN)
    n1 = c.nodes[1]
    serving_coordinator(list(c.nodes.values()))
    keys = [f"key{i:03d}" for i in range(300)]
    for k in keys:
        retry(lambda k=k: n1.redis().set(k, k.upper()))
    for at in ("key100", "key200"):
        split(c, at, n1)
    joiners = []
    try:
        for name in ("j4", "j5"):
            joiners.append(start_joiner(c, str(tmp_path / name), n1.peer_addr, extra=DOWN))

        def five_up():
            stores = cluster_view(n1, "stores")["stores"]
            assert len(stores) == 5 and all(s["status"] == "up" for s in stores), stores
            return sorted(int(s["meta"]["id"]) for s in stores)
        ids = retry(five_up, timeout=60, exceptions=(AssertionError, OSError, ValueError))
        new_ids = ids[3:]

        # Store 3 dies for good: after --store-down-time every region it held (the
        # coordinator's region among them) gets a new replica on 4 or 5 and loses the one on 3.
        c.nodes[3].kill9()
        got = wait_placed(n1, 3, regions=3)
        assert any(set(v) & set(new_ids) for v, _ in got.values()), got
        ops = cluster_view(n1, "operators")
        done = [o for o in ops.get("finishedOperators", [])
                if o["name"] == "replace-replica" and o["state"] == "done"]
        assert done and all(o["reason"] == "store 3 is down" for o in done), ops
        for k in keys:
            assert retry(lambda k=k: n1.redis().get(k), exceptions=(redis.RedisError,)) == \
                k.upper().encode()

        # A live store decommissioned: stores 1, 2 and the other new one are up, so there is
        # room for its replicas; the command waits, showing progress, until it is a tombstone.
        gone = new_ids[0]
        out = subprocess.run([c.binary, "node", "decommission", "--id", str(gone),
                              "--via", n1.peer_addr, "--wait", "120"],
                             capture_output=True, text=True, timeout=150)
        assert out.returncode == 0, out
        assert "is decommissioned" in out.stdout, out.stdout
        assert "replicas left" in out.stdout, out.stdout
        got = wait_placed(n1, gone, regions=3, timeout=10)
        stores = {int(s["meta"]["id"]): s["status"] for s in cluster_view(n1, "stores")["stores"]}
        assert stores[gone] == "tombstone", stores
        for k in keys:
            assert retry(lambda k=k: n1.redis().get(k), exceptions=(redis.RedisError,)) == \
                k.upper().encode()
        # A tombstone cannot be decommissioned again, and `micedb status` shows the operators.
        again = subprocess.run([c.binary, "node", "decommission", "--id", str(gone),
                                "--via", n1.peer_addr, "--timeout", "5"],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "tombstone" in again.stderr, again
        status = subprocess.run([c.binary, "status", "--via", n1.peer_addr],
                                capture_output=True, text=True, timeout=60)
        assert "operators:" in status.stdout and "replace-replica" in status.stdout, status.stdout
        metrics = n1.http("/metrics") + c.nodes[2].http("/metrics")
        assert "micedb_coordinator_operators_done_total" in metrics
    finally:
        for proc, *_ in joiners:
            proc.terminate()
            proc.wait(timeout=30)


def test_decommission_is_refused_without_room(cluster_factory):
    c = cluster_factory(3)
    n1 = c.nodes[1]
    serving_coordinator(list(c.nodes.values()))
    out = subprocess.run([c.binary, "node", "decommission", "--id", "3", "--via", n1.peer_addr,
                          "--timeout", "10"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "add a store first" in out.stderr, out
    stores = {int(s["meta"]["id"]): s["status"] for s in cluster_view(n1, "stores")["stores"]}
    assert stores[3] == "up", stores


def test_leaders_spread_after_splits(cluster_factory):
    """Regions split off a region are led where it was led; the leader balancer spreads them."""
    c = cluster_factory(3)
    n1 = c.nodes[1]
    serving_coordinator(list(c.nodes.values()))
    for at in ("b", "c", "d", "e", "f"):
        split(c, at, n1)

    def spread():
        regions = [r for r in cluster_view(n1, "regions")["regions"]]
        assert len(regions) == 6, regions
        leaders = {}
        for r in regions:
            leaders[int(r["meta"]["leader"])] = leaders.get(int(r["meta"]["leader"]), 0) + 1
        counts = [leaders.get(i, 0) for i in (1, 2, 3)]
        assert max(counts) - min(counts) <= 1, leaders
        return counts
    retry(spread, timeout=60, exceptions=(AssertionError, OSError, ValueError, KeyError))
    balance = [o for o in cluster_view(n1, "operators").get("finishedOperators", [])
               if o["name"] == "balance-leader"]
    assert any(o["state"] == "done" for o in balance), balance


def test_hot_regions_led_by_one_store_are_spread(cluster_factory):
    """Two regions read hard, both led by one node by hand (which counting leaders does not
    mind): the hot-region balancer moves one leadership away, and counting leaders leaves the
    hot regions alone."""
    c = cluster_factory(3, extra_args=["--region-heartbeat-interval", "1s",
                                       "--hot-region-bytes", "16KiB"])
    n1 = c.nodes[1]
    serving_coordinator(list(c.nodes.values()))
    value = "v" * 4096
    for k in ("a", "m"):
        retry(lambda k=k: n1.redis().set(k, value))
    split(c, "h", n1)
    stop = []

    def reader():
        r = n1.redis()
        while not stop:
            try:
                r.get("a")
                r.get("m")
            except redis.RedisError:
                time.sleep(0.05)
            time.sleep(0.01)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        def regions():
            return {r["meta"]["region"].get("startKey", ""): r
                    for r in cluster_view(n1, "regions")["regions"]}

        def both_hot():
            rs = regions()
            assert len(rs) == 2 and all(r.get("hot") for r in rs.values()), rs
            return rs
        rs = retry(both_hot, timeout=60, exceptions=(AssertionError, OSError, ValueError))
        ids = [int(r["meta"]["region"]["id"]) for r in rs.values()]
        leader = int(next(iter(rs.values()))["meta"]["leader"])

        def leads(rid):
            return any(r["id"] == rid and r["role"] == "leader"
                       for r in c.nodes[leader].raft()["regions"])
        def quiet():
            # An operator still under way (the leader-count balancer's) could move a
            # leadership back after the transfers below.
            deadline = time.time() + 30
            while cluster_view(n1, "operators").get("operators"):
                assert time.time() < deadline, cluster_view(n1, "operators")
                time.sleep(0.2)
        quiet()
        for rid in ids:
            # An accepted transfer may still not happen (the target not caught up): again
            # until the node leads it.
            deadline = time.time() + 30
            while not leads(rid):
                assert time.time() < deadline, f"node {leader} never took region {rid} over"
                out = subprocess.run([c.binary, "node", "transfer-leader", "--id", str(leader),
                                      "--region", str(rid), "--via", n1.peer_addr,
                                      "--timeout", "20"],
                                     capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, out
                for _ in range(20):
                    if leads(rid):
                        break
                    time.sleep(0.1)

        def spread():
            leaders = {int(r["meta"]["leader"]) for r in regions().values()}
            assert len(leaders) == 2, leaders
            hot = [o for o in cluster_view(n1, "operators").get("finishedOperators", [])
                   if o["name"] == "hot-leader" and o["state"] == "done"]
            assert hot, cluster_view(n1, "operators")
            return hot
        hot = retry(spread, timeout=60, exceptions=(AssertionError, OSError, ValueError))
        assert int(hot[-1]["regionId"]) in ids, hot
    finally:
        stop.append(True)
        t.join(timeout=10)
