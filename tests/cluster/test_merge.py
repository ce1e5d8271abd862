"""Regions merge (docs/sharding.md §2) with real processes: `micedb region merge` under client
load gives no client an error and leaves every replica with the same regions, tiling the
keyspace, across a restart; with `--region-merge`, small idle regions merge on their own; a merge
that cannot be is refused with a clear error."""
import subprocess
import threading
import time

from harness import retry
from test_sharding import data_regions, split, wait_regions


def merge(c, source, target, node=None):
    node = node or next(iter(c.nodes.values()))
    return subprocess.run([c.binary, "region", "merge", str(source), str(target), "--via",
                           node.peer_addr], capture_output=True, text=True, timeout=60)


def test_a_merge_under_load_gives_no_client_an_error(cluster):
    c = cluster
    nodes = list(c.nodes.values())
    keys = [f"k{i:03d}" for i in range(200)]
    for k in keys:
        retry(lambda k=k: nodes[0].redis().set(k, "0"))
    out = split(c, "k100")
    assert out.returncode == 0, out.stderr
    left, right = wait_regions(nodes, 2)
    last = {k: "0" for k in keys}
    errors, lock, stop = [], threading.Lock(), threading.Event()

    def writer(w, node):
        mine = keys[w::3]  # each writer its own keys: the last value written is the one kept
        r = node.redis()
        n = 0
        while not stop.is_set():
            k = mine[(n * 7) % len(mine)]
            v = f"{w}-{n}"
            try:
                r.set(k, v)
                with lock:
                    last[k] = v
                if r.get(k) is None:
                    errors.append(f"{k}: read nothing after writing {v}")
            except Exception as e:  # noqa: BLE001 -- any client-visible error fails the test
                errors.append(f"{k}: {e!r}")
            n += 1

    threads = [threading.Thread(target=writer, args=(w, nodes[w % 3]), daemon=True)
               for w in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        out = merge(c, right[0], left[0])
        assert out.returncode == 0, out.stderr
        assert "frozen for a merge" in out.stdout, out.stdout
        merged = wait_regions(nodes, 1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:10]
    assert merged == [(left[0], "", "")], merged
    for n in nodes:
        r = n.redis()
        for k in keys[::13]:
            assert retry(lambda r=r, k=k: r.get(k)).decode() == last[k]
    # A multi-key write over both old halves is one region's now.
    r = nodes[0].redis()
    r.mset({"k001": "m1", "k199": "m2"})
    assert [v.decode() for v in r.mget("k001", "k199")] == ["m1", "m2"]
    # The merge holds across a restart; the source does not come back.
    victim = nodes[2]
    victim.stop()
    victim.start()
    assert wait_regions(nodes, 1, timeout=30) == merged
    assert retry(lambda: victim.redis().get("k199"), timeout=20).decode() == "m2"


def test_small_idle_regions_merge_on_their_own(cluster_factory):
    c = cluster_factory(3, extra_args=["--region-merge", "--region-merge-idle", "2s"])
    nodes = list(c.nodes.values())
    for k in ("a", "h", "p", "x"):
        retry(lambda k=k: nodes[0].redis().set(k, k))
    for key in ("h", "p", "x"):
        out = split(c, key)
        assert out.returncode == 0, out.stderr
    assert len(data_regions(nodes[0])) >= 2
    # Nothing written any more: they all merge back, a neighbour at a time.
    merged = wait_regions(nodes, 1, timeout=60)
    assert merged[0][1:] == ("", ""), merged
    assert sum(n.metric("micedb_region_merges_started_total") for n in nodes) >= 3
    for n in nodes:
        for k in ("a", "h", "p", "x"):
            assert retry(lambda n=n, k=k: n.redis().get(k)).decode() == k


def test_a_merge_that_cannot_be_is_refused(cluster):
    c = cluster
    nodes = list(c.nodes.values())
    for key in ("h", "p"):
        assert split(c, key).returncode == 0
    regions = wait_regions(nodes, 3)
    first, last = regions[0][0], regions[2][0]
    out = merge(c, last, first)
    assert out.returncode == 1, out.stdout
    assert "not neighbours" in out.stderr, out.stderr
    out = merge(c, 424242, first)
    assert out.returncode == 1
    assert "does not hold both regions" in out.stderr, out.stderr
    assert wait_regions(nodes, 3) == regions
