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


def test_a_merge_waiting_for_a_stopped_member_rolls_back_after_the_timeout(cluster_factory):
    c = cluster_factory(3, extra_args=["--region-merge-timeout", "2s"])
    nodes = list(c.nodes.values())
    for k in ("a", "x"):
        retry(lambda k=k: nodes[0].redis().set(k, k))
    assert split(c, "m").returncode == 0
    left, right = wait_regions(nodes, 2)
    # A member stopped for good: it cannot take the freeze, so the merge cannot commit.
    victim, live = nodes[2], nodes[:2]
    victim.stop()
    deadline = time.time() + 30
    while True:
        out = merge(c, right[0], left[0], node=live[0])
        if out.returncode == 0 or time.time() > deadline:
            break
        time.sleep(0.5)  # the source's leader may have been on the stopped node
    assert out.returncode == 0, out.stderr
    frozen_at = time.time()
    # Past the timeout the target refuses the merge, and the source serves again.
    assert retry(lambda: live[0].redis().set("y", "after"), timeout=30)
    thawed = time.time() - frozen_at
    for n in live:
        views = {r["id"]: r for r in data_regions(n)}
        assert set(views) == {left[0], right[0]}, views
        assert "merging_into" not in views[right[0]], views[right[0]]
    assert thawed < 20, thawed
    # The target moved its epoch on (the refusal) and the source thawed (the rollback): the
    # stopped member applies both from the logs once it is back.
    victim.start()
    assert wait_regions(nodes, 2, timeout=30) == [left, right]
    for n in nodes:
        assert retry(lambda n=n: n.redis().get("y"), timeout=20).decode() == "after"
        assert retry(lambda n=n: n.redis().get("a"), timeout=20).decode() == "a"
    # The stopped member applies the refusal and the rollback once it hears the commit index
    # (the next append or heartbeat): soon, not at once.
    def same_versions():
        versions = [{r["id"]: r["version"] for r in data_regions(n)} for n in nodes]
        assert all(v == versions[0] for v in versions), versions
        return True
    assert retry(same_versions, timeout=20, exceptions=(AssertionError, OSError, ValueError))


def test_scan_cursors_and_grpc_scans_carry_on_across_merges(cluster):
    """A SCAN walked page by page while the regions under it merge, and a gRPC Scan started
    together with a merge of the two regions it crosses (either may come first), each return
    every key exactly once."""
    c = cluster
    nodes = list(c.nodes.values())
    keys = [f"k{i:03d}" for i in range(120)]
    r = nodes[0].redis()
    for k in keys:
        retry(lambda k=k: r.set(k, k))
    for at in ("k030", "k060", "k090"):
        assert split(c, at).returncode == 0
    regions = wait_regions(nodes, 4)
    ids = [reg[0] for reg in regions]
    # Merges between pages: the second region into the first, the fourth into the third, then
    # the third (now to the end) into the first.
    merges = [(ids[1], ids[0], 3), (ids[3], ids[2], 2), (ids[2], ids[0], 1)]
    seen, cursor = [], 0
    while True:
        cursor, page = r.scan(cursor=cursor, match="k*", count=15)
        seen.extend(k.decode() for k in page)
        if merges:
            source, target, left = merges.pop(0)
            out = merge(c, source, target)
            assert out.returncode == 0, out.stderr
            wait_regions(nodes, left)
        if cursor == 0:
            break
    assert not merges, "the scan ended before every merge was made"
    assert sorted(seen) == keys and len(seen) == len(keys), seen

    # gRPC Scan (`micedb kv scan`) over two regions, racing their merge; then over the merged one.
    assert split(c, "k050").returncode == 0
    left_half, right_half = wait_regions(nodes, 2)
    scan = subprocess.Popen([c.binary, "kv", "scan", "--start", "k", "--end", "l", "--keys-only",
                             "--addr", nodes[1].peer_addr], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out = merge(c, right_half[0], left_half[0])
    assert out.returncode == 0, out.stderr
    stdout, stderr = scan.communicate(timeout=60)
    assert scan.returncode == 0, stderr
    assert stdout.decode().split() == keys
    wait_regions(nodes, 1)
    again = subprocess.run([c.binary, "kv", "scan", "--start", "k", "--end", "l", "--keys-only",
                            "--addr", nodes[2].peer_addr], capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().split() == keys
