"""Nemeses for the fault tests: each breaks the cluster in one way on `start(rng)` and undoes
it on `stop()`; a Schedule, driven by a seed, runs them one at a time for a set duration and
then heals everything.

kill       kill -9 a random node, the leader, or a majority; restart them on stop
pause      SIGSTOP a random node or the leader; SIGCONT on stop
wipe       kill a node, remove it from the membership, delete its data, and let a fresh node
           (new id, empty directory) join as a learner; promoted on stop
membership add a learner and promote it; on stop remove a random old voter (the leader too)
replace    kill -9 a node for good and start a fresh, empty one (new id) with nothing done by
           hand: the coordinator's replica checker moves every replica of the dead store to it
           once the store counts as down (run with a short --store-down-time)
partition  (network namespaces only) isolate the leader, split majority/minority, a majorities
           ring (every node sees a majority, no two the same one), or one-way drops into a node
move       decommission a random store (the coordinator moves every replica off it), recommission
           it on stop (the balancer moves replicas back); a fourth store joins first
kill-coordinator
           kill -9 the node whose coordinator serves; restart it on stop
"""
import json
import shutil
import subprocess
import threading
import time

import netlab


def _leader_or_none(cluster):
    try:
        return cluster.wait_leader(timeout=3)
    except AssertionError:
        return None


def _members(cluster):
    return sorted(n.id for n in cluster.nodes.values() if n.alive())


class Nemesis:
    name = "?"
    needs_net = False
    in_all = True

    def __init__(self, cluster, log):
        self.cluster = cluster
        self.log = log

    def start(self, rng):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError


class Kill(Nemesis):
    name = "kill"

    def __init__(self, cluster, log, targets=("random", "leader", "majority")):
        super().__init__(cluster, log)
        self.targets = targets
        self.victims = []

    def start(self, rng):
        target = rng.choice(self.targets)
        ids = _members(self.cluster)
        if target == "leader":
            leader = _leader_or_none(self.cluster)
            self.victims = [leader] if leader in ids else [rng.choice(ids)]
        elif target == "majority":
            self.victims = rng.sample(ids, len(ids) // 2 + 1)
        else:
            self.victims = [rng.choice(ids)]
        for v in self.victims:
            self.cluster.nodes[v].kill9()
        return f"kill -9 {target}: {self.victims}"

    def stop(self):
        for v in self.victims:
            self.cluster.nodes[v].start()
        done, self.victims = self.victims, []
        return f"restart {done}"


class Pause(Nemesis):
    name = "pause"

    def __init__(self, cluster, log):
        super().__init__(cluster, log)
        self.victim = None

    def start(self, rng):
        ids = _members(self.cluster)
        leader = _leader_or_none(self.cluster) if rng.random() < 0.5 else None
        self.victim = leader if leader in ids else rng.choice(ids)
        self.cluster.nodes[self.victim].pause()
        return f"SIGSTOP {self.victim}" + (" (leader)" if self.victim == leader else "")

    def stop(self):
        v, self.victim = self.victim, None
        if v is not None and v in self.cluster.nodes:
            self.cluster.nodes[v].resume()
        return f"SIGCONT {v}"


class Wipe(Nemesis):
    name = "wipe"

    def __init__(self, cluster, log):
        super().__init__(cluster, log)
        self.joining = None

    def start(self, rng):
        ids = _members(self.cluster)
        victim = rng.choice(ids)
        node = self.cluster.nodes[victim]
        node.kill9()
        self.cluster.remove_member(victim)
        shutil.rmtree(node.data_dir, ignore_errors=True)
        self.joining = self.cluster.add_member()
        return (f"wipe {victim}: killed, removed, data deleted; rejoins as learner "
                f"{self.joining.id}")

    def stop(self):
        j, self.joining = self.joining, None
        if j is None:
            return "nothing to promote"
        self.cluster.admin("promote", "--id", str(j.id))
        return f"promote {j.id}"


class Replace(Nemesis):
    name = "replace"
    in_all = False  # needs a short --store-down-time; run it by name
    def __init__(self, cluster, log):
        super().__init__(cluster, log)

    def start(self, rng):
        # A second store lost before the first one's replicas are replaced could take a
        # majority of some region with it, which no cluster survives: wait for that first.
        gone = {n.id for n in self.cluster.retired}
        if gone and self._still_on(gone):
            return f"replace skipped: replicas still on {sorted(gone)}"
        ids = _members(self.cluster)
        victim = rng.choice(ids)
        self.cluster.retire(victim)
        fresh = self.cluster.add_node(self.cluster.next_id, join=True)
        return (f"replace {victim}: killed for good; node {fresh.id} starts empty, the "
                f"coordinator moves the replicas")

    def stop(self):
        return "nothing to undo"

    def _still_on(self, gone):
        for n in self.cluster.live():
            try:
                view = json.loads(n.http("/api/v1/cluster", timeout=5))
            except (OSError, ValueError):
                continue
            if "regions" not in view:
                continue
            for r in view["regions"]:
                cs = r["meta"]["region"].get("confState", {})
                if gone & {int(v) for v in cs.get("voters", []) + cs.get("learners", [])}:
                    return True
            return bool(gone & {int(m["nodeId"]) for m in view.get("coordinators", [])})
        return True


class Membership(Nemesis):
    name = "membership"

    def __init__(self, cluster, log):
        super().__init__(cluster, log)
        self.added = None
        self.rng = None

    def start(self, rng):
        self.rng = rng
        old = _members(self.cluster)
        self.added = self.cluster.add_member()
        self.cluster.admin("promote", "--id", str(self.added.id))
        self.old = old
        return f"add learner {self.added.id}, promote it"

    def stop(self):
        if self.added is None:
            return "nothing to remove"
        victim = self.rng.choice(self.old)
        self.added = None
        leader = _leader_or_none(self.cluster)
        self.cluster.remove_member(victim)
        return f"remove voter {victim}" + (" (the leader)" if victim == leader else "")


class Partition(Nemesis):
    name = "partition"
    needs_net = True

    def __init__(self, cluster, log, kinds=("isolate-leader", "majority-minority", "ring",
                                             "one-way")):
        super().__init__(cluster, log)
        self.kinds = kinds

    def start(self, rng):
        net = self.cluster.net
        kind = rng.choice(self.kinds)
        ids = sorted(self.cluster.nodes)
        if kind == "isolate-leader":
            leader = _leader_or_none(self.cluster)
            lone = leader if leader in ids else rng.choice(ids)
            groups = [[lone], [i for i in ids if i != lone]]
            net.partition(groups)
            return f"partition: isolate {lone}" + (" (leader)" if lone == leader else "")
        if kind == "majority-minority":
            shuffled = ids[:]
            rng.shuffle(shuffled)
            k = len(ids) // 2
            groups = [shuffled[:k], shuffled[k:]]
            net.partition(groups)
            return f"partition: {groups[0]} | {groups[1]}"
        if kind == "ring":
            # Everyone talks only to its two ring neighbours: with 5 nodes each sees a
            # majority (itself and two others), and no two nodes see the same one; with 3
            # nodes it is one cut link (a bridge).
            order = ids[:]
            rng.shuffle(order)
            n = len(order)
            keep = {frozenset((order[i], order[(i + 1) % n])) for i in range(n)}
            cut = [(a, b) for ai, a in enumerate(ids) for b in ids[ai + 1:]
                   if frozenset((a, b)) not in keep]
            if not cut:  # three nodes: every pair is adjacent; cut one link (a bridge)
                cut = [(order[0], order[1])]
            net.cut_links(cut)
            return f"partition: ring {order} (cut {cut})"
        # one-way: a node (the leader half of the time) hears nobody but is still heard.
        leader = _leader_or_none(self.cluster) if rng.random() < 0.5 else None
        deaf = leader if leader in ids else rng.choice(ids)
        for other in ids:
            if other != deaf:
                net.drop(deaf, other, direction="in")
        return f"partition: {deaf} drops everything it receives" + (
            " (leader)" if deaf == leader else "")

    def stop(self):
        self.cluster.net.heal()
        return "heal network"


class Move(Nemesis):
    """Region moves made by the coordinator's own schedulers: a random store is decommissioned
    (every replica on it moves to the others: a learner, its snapshot, the promotion, the
    removal; leaderships first) and recommissioned on stop (the balancer then moves replicas
    back). A fourth store joins at the start so that there is room. A store whose
    decommission finished within the hold is a tombstone: it is stopped for good and a fresh
    store joins in its place."""
    name = "move"
    in_all = False  # adds a store; run it by name

    def __init__(self, cluster, log):
        super().__init__(cluster, log)
        self.victim = None
        if len(cluster.live()) < 4:
            n = cluster.add_node(cluster.next_id, join=True)
            log(f"move: node {n.id} joins, so that replicas have somewhere to go")

    def _node_cmd(self, *args):
        last = None
        for v in self.cluster.live():
            if v.paused or v.id == self.victim:
                continue
            out = subprocess.run([self.cluster.binary, "node", *args, "--via", v.peer_addr,
                                  "--timeout", "10"], capture_output=True, text=True, timeout=60)
            if out.returncode == 0:
                return out
            last = out
        return last

    def start(self, rng):
        self.victim = rng.choice(_members(self.cluster))
        out = self._node_cmd("decommission", "--id", str(self.victim), "--wait", "0")
        if out is None or out.returncode != 0:
            v, self.victim = self.victim, None
            return f"decommission {v} refused: {(out.stderr if out else '').strip()}"
        return f"decommission {self.victim}: the coordinator moves its replicas off"

    def stop(self):
        v, self.victim = self.victim, None
        if v is None:
            return "nothing to undo"
        out = self._node_cmd("recommission", "--id", str(v))
        if out is not None and out.returncode == 0:
            return f"recommission {v}"
        # Done already: the store is a tombstone and serves nothing any more.
        self.cluster.retire(v)
        fresh = self.cluster.add_node(self.cluster.next_id, join=True)
        return (f"store {v} was decommissioned completely ({(out.stderr if out else '').strip()}); "
                f"node {fresh.id} joins in its place")


class KillCoordinator(Nemesis):
    """kill -9 the node whose coordinator serves (the meta region's leader: TSO, ids, the
    schedulers' operators); restart it on stop."""
    name = "kill-coordinator"

    def __init__(self, cluster, log):
        super().__init__(cluster, log)
        self.victim = None

    def start(self, rng):
        deadline = time.time() + 5
        while time.time() < deadline and self.victim is None:
            for n in self.cluster.live():
                try:
                    if not n.paused and n.metric("micedb_coordinator_serving") == 1:
                        self.victim = n.id
                        break
                except OSError:
                    pass
            else:
                time.sleep(0.1)
        if self.victim is None:
            self.victim = rng.choice(_members(self.cluster))
            what = "no coordinator serves; a random node"
        else:
            what = "the serving coordinator"
        self.cluster.nodes[self.victim].kill9()
        return f"kill -9 {what}: {self.victim}"

    def stop(self):
        v, self.victim = self.victim, None
        if v is not None and v in self.cluster.nodes:
            self.cluster.nodes[v].start()
        return f"restart {v}"


class MergeStorm:
    """Beside a schedule, not one of its nemeses: every 0.1-0.5 s, at a random live node, asks
    `micedb region merge` for a random data region it leads and a neighbour with the same
    voters (the merge protocol, docs/sharding.md §2), whatever the schedule is breaking."""

    def __init__(self, cluster, rng, log):
        self.cluster = cluster
        self.rng = rng
        self.log = log
        self.asked = 0
        self.frozen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="merge-storm")

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _pick(self):
        live = [n for n in self.cluster.nodes.values() if n.alive()]
        if not live:
            return None
        node = self.rng.choice(live)
        try:
            regions = [r for r in node.raft()["regions"]
                       if r["id"] != 2 and r["voters"] and "merging_into" not in r]
        except (OSError, ValueError, KeyError):
            return None
        pairs = [(s, t) for s in regions for t in regions
                 if s["id"] != t["id"] and s["role"] == "leader"
                 and sorted(s["voters"]) == sorted(t["voters"])
                 and not s["learners"] and (s["end_key"] == t["start_key"] != ""
                                            or t["end_key"] == s["start_key"] != "")]
        if not pairs:
            return None
        s, t = self.rng.choice(pairs)
        return node, s["id"], t["id"]

    def _run(self):
        while not self._stop.wait(self.rng.uniform(0.1, 0.5)):
            pick = self._pick()
            if pick is None:
                continue
            node, source, target = pick
            self.asked += 1
            try:
                out = subprocess.run(
                    [self.cluster.binary, "region", "merge", str(source), str(target), "--via",
                     node.peer_addr, "--timeout", "2"],
                    capture_output=True, text=True, timeout=20)
            except subprocess.TimeoutExpired:
                continue
            if out.returncode == 0:
                self.frozen += 1
            self.log(f"merge storm: region {source} into {target} via node {node.id}: "
                     f"{(out.stdout or out.stderr).strip()}")


NEMESES = {
    "kill": Kill,
    "pause": Pause,
    "wipe": Wipe,
    "membership": Membership,
    "replace": Replace,
    "partition": Partition,
    "move": Move,
    "kill-coordinator": KillCoordinator,
}


def make(names, cluster, log):
    """Nemesis objects for a comma-separated list of names ("all" = every one this machine can
    run)."""
    if names == "all":
        names = ",".join(n for n, cls in NEMESES.items()
                         if cls.in_all and (not cls.needs_net or cluster.net is not None))
    out = []
    for name in names.split(","):
        if name == "none":
            continue
        cls = NEMESES[name]
        if cls.needs_net and cluster.net is None:
            raise RuntimeError(f"nemesis {name}: {netlab.available()[1] or 'no network lab'}")
        out.append(cls(cluster, log))
    return out


class Schedule:
    """Runs the nemeses in a background thread: wait `interval`, start a random one, hold it
    for `hold`, stop it; until `duration` has passed. Every step goes to `log` with the time
    since the start. All choices come from `rng`, so a seed replays the same fault sequence
    (the exact interleaving with client operations depends on timing)."""

    def __init__(self, nemeses, rng, duration, log, interval=(1.0, 3.0), hold=(4.0, 8.0)):
        self.nemeses = nemeses
        self.rng = rng
        self.duration = duration
        self.log = log
        self.interval = interval
        self.hold = hold
        self.error = None
        self.faults = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="nemesis")
        self.t0 = None

    def start(self):
        self.t0 = time.monotonic()
        self._say(f"schedule starts at monotonic {self.t0:.6f} (the history's clock)")
        self._thread.start()

    def _say(self, text):
        self.log(f"[{time.monotonic() - self.t0:7.2f}s] {text}")

    def _run(self):
        end = self.t0 + self.duration
        active = None
        if not self.nemeses:
            self._stop.wait(self.duration)  # no faults: the workloads just run
            return
        try:
            while not self._stop.is_set() and time.monotonic() < end:
                if self._stop.wait(self.rng.uniform(*self.interval)):
                    break
                if time.monotonic() >= end:
                    break
                active = self.rng.choice(self.nemeses)
                self._say(f"{active.name} start: {active.start(self.rng)}")
                self.faults += 1
                hold = self.rng.uniform(*self.hold)
                self._stop.wait(max(0.0, min(hold, end - time.monotonic())))
                self._say(f"{active.name} stop: {active.stop()}")
                active = None
        except Exception as e:  # noqa: BLE001 - reported by the run
            self.error = f"nemesis failed: {e!r}"
            self._say(self.error)
        finally:
            if active is not None:
                try:
                    self._say(f"{active.name} stop: {active.stop()}")
                except Exception as e:  # noqa: BLE001
                    self.error = self.error or f"nemesis stop failed: {e!r}"
                    self._say(self.error)

    def join(self):
        self._thread.join()

    def stop(self):
        self._stop.set()
        self._thread.join()
