"""The coordinator (docs/coordinator.md) with real processes: the timestamp oracle through leader
kills and pauses, nodes that join, a node of another cluster refused, a coordinator voter lost
and replaced."""
import json
import os
import subprocess
import threading
import time
import urllib.error

from harness import free_ports, retry
from tso_checker import Call, check


def serving_coordinator(nodes, timeout=15):
    """The node whose coordinator serves (micedb_coordinator_serving 1)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for n in nodes:
            try:
                if n.alive() and not n.paused and n.metric("micedb_coordinator_serving") == 1:
                    return n
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError("no coordinator leader serves")


def cluster_view(node, what="cluster"):
    return json.loads(node.http(f"/api/v1/{what}", timeout=10))


def test_tso_stays_unique_and_rising_through_leader_kills_and_pauses(cluster_factory):
    c = cluster_factory(3)
    nodes = list(c.nodes.values())
    serving_coordinator(nodes)
    calls, lock, stop = [], threading.Lock(), threading.Event()

    def caller(name, node):
        while not stop.is_set():
            start = time.monotonic()
            ts = None
            try:
                if node.alive() and not node.paused:
                    ts = json.loads(node.http("/debug/tso", timeout=5))["ts"]
            except (OSError, ValueError, KeyError, urllib.error.HTTPError):
                pass
            end = time.monotonic()
            with lock:
                calls.append(Call(name, start, end, ts))
            if ts is None:
                time.sleep(0.05)

    threads = [threading.Thread(target=caller, args=(f"n{n.id}c{k}", n), daemon=True)
               for n in nodes for k in range(3)]
    for t in threads:
        t.start()
    faults, gaps = [], []
    try:
        for round_ in range(20):
            leader = serving_coordinator(nodes)
            with lock:
                before = len(calls)
            t = time.monotonic()
            if round_ % 2 == 0:
                leader.kill9()
            else:
                leader.pause()
            faults.append(t)
            # Wait for the service to come back on the other nodes, then heal.
            deadline = time.monotonic() + 10
            back = None
            while back is None and time.monotonic() < deadline:
                with lock:
                    back = next((x.end for x in calls[before:]
                                 if x.ts is not None and x.start >= t), None)
                time.sleep(0.05)
            gaps.append(None if back is None else back - t)
            if leader.paused:
                time.sleep(max(0.0, 2.0 - (time.monotonic() - t)))
                leader.resume()
            else:
                leader.start()
            # The healed node answers again before the next fault (a quorum of three).
            retry(lambda: json.loads(leader.http("/debug/tso", timeout=5))["ts"], timeout=30,
                  exceptions=(OSError, ValueError, KeyError, urllib.error.HTTPError))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    got = [x for x in calls if x.ts is not None]
    problems = check(calls, faults=faults, max_gap=3.0)
    print(f"{len(got)} timestamps, {len(calls) - len(got)} failed calls, recovery after each "
          f"fault (s): {[round(g, 2) if g else g for g in gaps]}")
    assert problems == [], problems[:10]
    assert len(got) > 500


def start_joiner(c, data_dir, join_via, extra=()):
    peer, redis_port, pg, http = free_ports(4)
    args = [c.binary, "start", "--data-dir", data_dir, "--join", join_via,
            "--listen-peer", f"127.0.0.1:{peer}", "--listen-redis", f"127.0.0.1:{redis_port}",
            "--listen-pg", f"127.0.0.1:{pg}", "--listen-http", f"127.0.0.1:{http}", *extra]
    log = open(data_dir + ".log", "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, redis_port, http, f"127.0.0.1:{peer}"


def test_a_node_joins_gets_an_id_and_serves_and_another_clusters_node_is_refused(
        cluster_factory, tmp_path):
    import redis

    c = cluster_factory(3)
    n1 = c.nodes[1]
    serving_coordinator(list(c.nodes.values()))
    proc, redis_port, http, _ = start_joiner(c, str(tmp_path / "joiner"), c.nodes[2].peer_addr)
    try:
        r = redis.Redis(port=redis_port, socket_timeout=15)
        retry(lambda: r.set("via-joiner", "1"), timeout=60,
              exceptions=(redis.RedisError, OSError))
        assert n1.redis().get("via-joiner") == b"1"
        n1.redis().set("via-n1", "2")
        assert retry(lambda: r.get("via-n1")) == b"2"

        def four_up():
            stores = cluster_view(n1, "stores")["stores"]
            assert len(stores) == 4 and all(s["status"] == "up" for s in stores), stores
            return stores
        stores = retry(four_up, timeout=15, exceptions=(AssertionError, OSError))
        ids = sorted(int(s["meta"]["id"]) for s in stores)
        assert ids[:3] == [1, 2, 3] and ids[3] >= 1024  # handed out by the id allocator
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # A data directory of another cluster (a single node started on its own) is refused.
    other = cluster_factory(1)
    other_dir = other.nodes[1].data_dir
    other.close()
    out = subprocess.run([c.binary, "start", "--data-dir", other_dir, "--join",
                          n1.peer_addr, "--listen-peer", "127.0.0.1:%d" % free_ports(1)[0],
                          "--listen-redis", "127.0.0.1:0", "--listen-pg", "127.0.0.1:0",
                          "--listen-http", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode != 0
    assert "belongs to cluster" in out.stderr, out.stderr


def test_a_coordinator_voter_lost_and_replaced(cluster_factory, tmp_path):
    c = cluster_factory(3)
    nodes = list(c.nodes.values())
    serving_coordinator(nodes)
    lost = c.nodes[3]
    lost.kill9()
    # Two of three voters still serve.
    survivor = c.nodes[1]
    assert retry(lambda: json.loads(survivor.http("/debug/tso"))["ts"], timeout=15,
                 exceptions=(OSError, ValueError, KeyError, urllib.error.HTTPError)) > 0
    proc, _, http, peer = start_joiner(c, str(tmp_path / "replacement"), survivor.peer_addr)
    try:
        new_id = retry(lambda: next(int(s["meta"]["id"]) for s in
                                    cluster_view(survivor, "stores")["stores"]
                                    if s["meta"]["peerAddr"] == peer),
                       timeout=60, exceptions=(StopIteration, OSError, ValueError))
        c.admin("add", "--region", "2", "--id", str(new_id), "--peer-addr", peer)
        c.admin("promote", "--region", "2", "--id", str(new_id))
        c.admin("remove", "--region", "2", "--id", "3")

        def replaced():
            view = cluster_view(survivor)
            members = sorted(int(m["nodeId"]) for m in view["coordinators"])
            assert members == sorted([1, 2, new_id]), members
            return view
        retry(replaced, timeout=30, exceptions=(AssertionError, OSError, ValueError))

        def survivor_applied():
            # The survivor applies the removal itself (a follower learns the commit a moment
            # after the leader): else, with node 2 gone, it still counts node 3 among four.
            meta = [r for r in survivor.raft()["regions"] if r["id"] == 2]
            assert meta and sorted(meta[0]["voters"]) == sorted([1, 2, new_id]), meta
            return True
        retry(survivor_applied, timeout=30, exceptions=(AssertionError, OSError, ValueError))
        # The new voter takes part: with node 2 gone as well, 1 and the new one still serve.
        c.nodes[2].kill9()
        assert retry(lambda: json.loads(survivor.http("/debug/tso"))["ts"], timeout=20,
                     exceptions=(OSError, ValueError, KeyError, urllib.error.HTTPError)) > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_operator_runs_at_the_regions_leader(cluster_factory):
    """`micedb node transfer-leader --through-coordinator` schedules an operator; the region's
    leader gets it with its next heartbeat reply and runs it."""
    c = cluster_factory(3)
    serving_coordinator(list(c.nodes.values()))
    leader = c.wait_leader()
    target = next(i for i in c.nodes if i != leader)
    # The coordinator knows region 1 once its leader reported it.
    retry(lambda: [r for r in cluster_view(c.nodes[1], "regions")["regions"]
                   if r["meta"]["region"]["id"] == "1"][0], timeout=20,
          exceptions=(IndexError, OSError, ValueError))
    out = subprocess.run([c.binary, "node", "transfer-leader", "--id", str(target),
                          "--through-coordinator", "--via", c.nodes[leader].peer_addr],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    assert "scheduled" in out.stdout
    # Region heartbeats come every 10 s when nothing changes.
    deadline = time.time() + 30
    while time.time() < deadline and c.wait_leader() != target:
        time.sleep(0.5)
    assert c.wait_leader() == target
    # Done: the new leader's first report dropped it; it is not run again.
    time.sleep(3)
    assert c.wait_leader() == target
