"""Real micedb processes on loopback: start, stop, kill -9, pause, and look inside.

A Cluster owns its processes and temporary directories; `close()` (called by the fixtures
even when a test fails) kills everything it started.
"""
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request

import redis


_taken = set()


def free_ports(n):
    """n distinct TCP ports free a moment ago on 127.0.0.1, chosen below the kernel's
    ephemeral range (32768+) so that outgoing connections do not take them before a node
    (re)binds them, and never handed out twice in one test run."""
    rnd = random.Random()
    ports = []
    while len(ports) < n:
        p = rnd.randrange(10000, 32000)
        if p in _taken:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        _taken.add(p)
        ports.append(p)
    return ports


class Node:
    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.id = node_id
        self.net = cluster.net
        if self.net is None:
            self.host = "127.0.0.1"
            self.peer_port, self.redis_port, self.pg_port, self.http_port = free_ports(4)
        else:
            # Its own namespace and address: the usual ports, nothing shared with other nodes.
            self.net.add_host(node_id)
            self.host = self.net.ip(node_id)
            self.peer_port, self.redis_port, self.pg_port, self.http_port = 20160, 6379, 5432, 8080
        self.data_dir = os.path.join(cluster.root, f"node{node_id}")
        self.proc = None
        self.log_path = os.path.join(cluster.root, f"node{node_id}.log")
        self.initial_peers = None
        self.join = None  # peer addresses to --join through (a node added to a running cluster)
        self.paused = False

    @property
    def peer_addr(self):
        return f"{self.host}:{self.peer_port}"

    def start(self, initial_peers=None):
        if initial_peers is not None:
            self.initial_peers = initial_peers
        args = [self.cluster.binary, "start", "--node-id", str(self.id),
                "--data-dir", self.data_dir,
                "--listen-peer", self.peer_addr,
                "--listen-redis", f"{self.host}:{self.redis_port}",
                "--listen-pg", f"{self.host}:{self.pg_port}",
                "--listen-http", f"{self.host}:{self.http_port}"]
        if self.net is not None:
            # Addresses on the test's own namespaced network, not loopback: plain connections
            # there are a deliberate choice (docs/security.md).
            args = self.net.exec_prefix(self.id) + args + ["--insecure"]
        if self.initial_peers:
            args += ["--initial-peers", self.initial_peers]
        if self.join:
            args += ["--join", self.join]
        args += self.cluster.extra_args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def redis(self, **kw):
        kw.setdefault("socket_timeout", 15)
        kw.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host=self.host, port=self.redis_port, **kw)

    def http(self, path, timeout=5):
        with urllib.request.urlopen(f"http://{self.host}:{self.http_port}{path}",
                                    timeout=timeout) as r:
            return r.read().decode()

    def raft(self, with_hash=False):
        return json.loads(self.http("/debug/raft" + ("?hash=1" if with_hash else ""),
                                    timeout=30))

    def metric(self, name):
        for line in self.http("/metrics").splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None


class Cluster:
    def __init__(self, binary, root, size=3, extra_args=(), net=None):
        """net: a netlab.NetLab to run every node in its own network namespace, or None for
        plain loopback."""
        self.binary = binary
        self.root = root
        self.extra_args = list(extra_args)
        self.net = net
        self.nodes = {}      # current members (and joining learners), by id
        self.retired = []    # nodes removed from the membership, kept for their logs
        for i in range(1, size + 1):
            self.nodes[i] = Node(self, i)
        self.next_id = size + 1
        self.initial = ",".join(f"{n.id}={n.peer_addr}" for n in self.nodes.values())

    def start(self):
        for n in self.nodes.values():
            n.start(self.initial)
        self.wait_leader(meta=True)
        return self

    def add_node(self, node_id, join=False):
        """Starts a fresh node; with `join`, it joins through the live nodes (registering with
        the coordinator, so that the schedulers can place replicas on it)."""
        n = Node(self, node_id)
        if join:
            n.join = ",".join(m.peer_addr for m in self.live())
        self.nodes[node_id] = n
        self.next_id = max(self.next_id, node_id + 1)
        n.start(initial_peers="")
        return n

    def add_member(self):
        """Starts a fresh node with a new id and adds it to the membership as a learner."""
        n = self.add_node(self.next_id)
        self.admin("add", "--id", str(n.id), "--peer-addr", n.peer_addr,
                   via=None, others_than=n.id)
        return n

    def retire(self, node_id):
        """Kills node_id for good (no membership change: the coordinator notices)."""
        n = self.nodes.pop(node_id)
        if n.paused:
            n.resume()
        n.kill9()
        self.retired.append(n)

    def remove_member(self, node_id):
        """Removes node_id from the membership (through another node), then stops it."""
        self.admin("remove", "--id", str(node_id), others_than=node_id)
        n = self.nodes.pop(node_id)
        if n.paused:
            n.resume()
        n.kill9()
        self.retired.append(n)

    def close(self):
        for n in list(self.nodes.values()) + self.retired:
            if n.alive():
                n.resume()  # a stopped process would not die of SIGKILL until continued
            n.kill9()
        if self.net is not None:
            self.net.close()

    def admin(self, *args, via=None, others_than=None, timeout=60):
        """Runs `micedb node ...` through `via` (a Node; default: any live node that is not
        paused, nor `others_than`), trying the next one when it fails."""
        vias = [via] if via else [n for n in self.live()
                                  if not n.paused and n.id != others_than]
        last = None
        done_already = {"remove": "node is not a member", "promote": "node is already a voter",
                        "add": "node is already a learner"}.get(args[0])
        for v in vias:
            out = subprocess.run([self.binary, "node", *args, "--via", v.peer_addr],
                                 capture_output=True, text=True, timeout=timeout)
            if out.returncode == 0:
                return out.stdout
            if last is not None and done_already and done_already in out.stderr:
                return out.stderr  # the failed attempt through the previous node took effect
            last = out
        raise AssertionError(f"micedb node {' '.join(args)} failed: {last}")

    def live(self):
        return [n for n in self.nodes.values() if n.alive()]

    def wait_leader(self, timeout=30, among=None, meta=False):
        """The id of the first region's leader that every live node (or `among`) holding it
        agrees on (three at least, or all when fewer). With
        `meta`, the coordinator's region (2), where a node holds it, must have a leader too (at
        the start: its first election is over before a test counts leader changes)."""
        deadline = time.time() + timeout
        nodes = among or self.live()
        while time.time() < deadline:
            try:
                leaders, meta_leaders, holders = set(), set(), 0
                for n in nodes:
                    regions = n.raft()["regions"]
                    # The first data region (region 1 unless a merge took it over), where this
                    # node holds it: with more stores than replicas, not every node does.
                    first = [r for r in regions if r["id"] != 2 and r["voters"] and
                             r.get("start_key", "") == ""]
                    if first or not regions:
                        holders += 1
                        leaders.add(first[0]["leader"] if first else 0)
                    meta_leaders.update(r["leader"] for r in regions if r["id"] == 2)
                if (len(leaders) == 1 and 0 not in leaders and
                        holders >= min(len(nodes), 3) and not (meta and 0 in meta_leaders)):
                    return leaders.pop()
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.1)
        raise AssertionError("no agreed leader within %ss" % timeout)

    def converged_hashes(self, nodes=None, timeout=60):
        """Waits until, for every data region, the given nodes that hold it have applied the
        same index with equal data, and every node holds the first region (region 1 unless a
        merge took it over; three of them when there are more stores); returns one hash of them
        all (each region's id, start key and hash)."""
        deadline = time.time() + timeout
        nodes = nodes or self.live()
        last = None
        while time.time() < deadline:
            try:
                by_region = {}
                held_1 = 0
                for n in nodes:
                    for r in n.raft(with_hash=True)["regions"]:
                        if r["id"] == 2 or not r["voters"]:
                            continue  # the coordinator's region; an empty replica
                        held_1 += r.get("start_key", "") == ""
                        by_region.setdefault((r["id"], r.get("start_key", "")), set()).add(
                            (r["applied"], r["data_hash"]))
                last = by_region
                if (held_1 >= min(len(nodes), 3) and
                        all(len(s) == 1 for s in by_region.values())):
                    return ",".join(f"{rid}:{start}:{next(iter(s))[1]}"
                                    for (rid, start), s in sorted(by_region.items()))
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"replicas did not converge: {last}")


def retry(fn, timeout=10, interval=0.05, exceptions=(redis.RedisError, OSError)):
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except exceptions:
            if time.time() >= deadline:
                raise
            time.sleep(interval)
