"""Regions split (docs/sharding.md) with real processes: `micedb region split` under client load
gives no client an error, every replica holds the same regions, tiling the keyspace, and the
halves survive a restart."""
import json
import subprocess
import threading
import time

import redis

from harness import retry


def data_regions(node):
    """The data regions a node holds (the coordinator's region 2 left out), by start key."""
    regions = [r for r in node.raft()["regions"] if r["id"] != 2 and r["voters"]]
    return sorted(regions, key=lambda r: r["start_key"])


def wait_regions(nodes, count, timeout=20):
    """Waits until every node holds `count` data regions with the same ranges; returns them."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            views = [[(r["id"], r["start_key"], r["end_key"]) for r in data_regions(n)]
                     for n in nodes]
        except (OSError, ValueError, KeyError):  # a node (re)starting
            time.sleep(0.1)
            continue
        last = views
        if len(views[0]) == count and all(v == views[0] for v in views):
            return views[0]
        time.sleep(0.1)
    raise AssertionError(f"regions did not settle: {last}")


def split(c, key, node=None):
    node = node or next(iter(c.nodes.values()))
    return subprocess.run([c.binary, "region", "split", key, "--via", node.peer_addr],
                          capture_output=True, text=True, timeout=60)


def test_splits_under_load_give_no_client_an_error_and_tile_the_keyspace(cluster):
    c = cluster
    nodes = list(c.nodes.values())
    keys = [f"k{i:03d}" for i in range(200)]
    for k in keys:
        retry(lambda k=k: nodes[0].redis().set(k, "0"))
    last = {k: "0" for k in keys}
    errors, lock, stop = [], threading.Lock(), threading.Event()

    def writer(w, node):
        # Each writer its own keys (every third), so the last value written is the one kept.
        mine = keys[w::3]
        r = node.redis()
        n = 0
        while not stop.is_set():
            k = mine[(n * 7) % len(mine)]
            v = f"{w}-{n}"
            try:
                r.set(k, v)
                with lock:
                    last[k] = v
                got = r.get(k)
                if got is None:
                    errors.append(f"{k}: read nothing after writing {v}")
            except Exception as e:  # any client-visible error fails the test
                errors.append(f"{k}: {e!r}")
            n += 1

    threads = [threading.Thread(target=writer, args=(w, nodes[w % 3]), daemon=True)
               for w in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        for key in ("k100", "k050", "k150"):
            out = split(c, key)
            assert out.returncode == 0, out.stderr
            assert "split" in out.stdout, out.stdout
            time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:10]

    regions = wait_regions(nodes, 4)
    assert [r[1] for r in regions] == ["", "rk050", "rk100", "rk150"], regions
    assert [r[2] for r in regions] == ["rk050", "rk100", "rk150", ""], regions
    assert len({r[0] for r in regions}) == 4
    # Every key reads its last value, wherever it now lives, through every node.
    for n in nodes:
        r = n.redis()
        for k in keys[::17]:
            assert retry(lambda: r.get(k)).decode() == last[k]
    # A multi-key write across regions runs atomically (a two-phase commit over the regions,
    # docs/sharding.md §4); a multi-key read is cut and joined; a pipelined run is cut by
    # region and answers in order.
    r = nodes[0].redis()
    assert r.mset({"k001": "x", "k199": "y"}) is True
    assert [v.decode() for v in r.mget("k001", "k199")] == ["x", "y"]
    assert r.msetnx({"k001x": "n", "k199": "n"}) is False  # k199 exists: nothing is set
    assert r.get("k001x") is None and r.get("k199").decode() == "y"
    assert r.msetnx({"k001x": "n", "k199x": "n"}) is True
    assert r.delete("k001x", "k199x", "k100nope") == 2
    assert r.get("k001x") is None and r.get("k199x") is None
    p = r.pipeline(transaction=False)
    p.set("k001", "p1").set("k199", "p2").set("k001", "p3").get("k001").get("k199")
    assert p.execute() == [True, True, True, b"p3", b"p2"]
    t = r.pipeline(transaction=True)
    t.set("k001", "t1").set("k199", "t2").get("k001").incr("k150n")
    assert t.execute() == [True, True, b"t1", 1]
    assert [v.decode() for v in r.mget("k001", "k199")] == ["t1", "t2"]
    last["k001"], last["k199"] = "t1", "t2"

    # Splitting at a boundary again changes nothing and is not an error.
    again = split(c, "k100")
    assert again.returncode == 0, again.stderr
    assert "already a region boundary" in again.stdout + again.stderr
    wait_regions(nodes, 4)

    # The coordinator's directory learns every region from the leaders' heartbeats.
    def directory():
        doc = json.loads(nodes[0].http("/api/v1/regions", timeout=10))
        return {int(r["meta"]["region"]["id"]) for r in doc.get("regions", [])}

    deadline = time.time() + 20
    ids = set()
    while time.time() < deadline:
        ids = directory()
        if {r[0] for r in regions} <= ids:
            break
        time.sleep(0.2)
    assert {r[0] for r in regions} <= ids, ids

    # Both halves of every split come back after a restart.
    victim = nodes[1]
    victim.stop()
    victim.start()
    wait_regions(nodes, 4, timeout=30)
    r = victim.redis()
    assert retry(lambda: r.get("k199"), timeout=20).decode() == last["k199"]
    r.set("k199", "after")
    for n in nodes:
        assert retry(lambda n=n: n.redis().get("k199")).decode() == "after"


def test_a_bad_split_is_refused_with_a_clear_error(cluster):
    c = cluster
    out = subprocess.run([c.binary, "region", "split", "", "--via",
                          next(iter(c.nodes.values())).peer_addr],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "needs a key" in out.stderr


def test_regions_split_on_their_own_past_the_split_size(cluster_factory):
    c = cluster_factory(3, extra_args=["--region-split-size", "64KiB"])
    nodes = list(c.nodes.values())
    r = nodes[0].redis()
    value = "v" * 400
    errors = []
    for i in range(2000):
        try:
            retry(lambda i=i: r.set(f"key:{i:05d}", value))
        except Exception as e:  # any client-visible error fails the test
            errors.append(repr(e))
    assert not errors, errors[:5]
    # About 900 KB written: many regions of at most ~64 KiB each, on every node, tiling.
    deadline = time.time() + 60
    regions = []
    while time.time() < deadline:
        regions = data_regions(nodes[0])
        if len(regions) >= 8:
            break
        time.sleep(0.5)
    assert len(regions) >= 8, [(x["id"], x["start_key"]) for x in regions]
    settled = None
    for _ in range(100):
        try:
            settled = wait_regions(nodes, len(data_regions(nodes[0])), timeout=5)
            break
        except AssertionError:
            pass
    assert settled, "the nodes never agreed on the regions"
    assert settled[0][1] == "" and settled[-1][2] == ""
    for a, b in zip(settled, settled[1:]):
        assert a[2] == b[1], (a, b)
    # Every key is still there, through every node.
    for n in nodes:
        rn = n.redis()
        got = rn.mget([f"key:{i:05d}" for i in range(0, 2000, 7)])
        assert all(v == value.encode() for v in got)
