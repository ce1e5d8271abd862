"""Transactions under the faults test_txn.py does not cover: the bank workload (bank.py: money
is never made or lost, every snapshot adds up) and the list-append workload (listappend.py:
histories are snapshot isolated) from test_txn, run beside nemeses (nemesis.py):

  - bank during a split storm (regions cut every 4 KiB written, dozens of them, while padding
    keeps being written between the accounts) with nodes killed -9 and restarted;
  - list-append while the node serving the coordinator (TSO, ids) is killed and nodes are
    replaced (a new node joins as a learner and is promoted, an old voter is removed);
  - bank during network partitions (network namespaces, five nodes; skipped, saying why, where
    they cannot be made);
  - list-append during a merge storm (`micedb region merge` of random neighbours every
    0.1-0.5 s) over small regions, with kills.

Each run's nemesis log, history and node logs are under the test's tmp_path; a failure prints
the checker's report, the seed and the nemesis log.
"""
import os
import random
import threading
import time

import pytest

import nemesis
import netlab
from harness import Cluster
from test_txn import COMMIT_MODES, Session, async_committed, bank_run, list_append_run


class Log:
    """The nemesis log of a test: a file under tmp_path, read back into failure messages."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "w")
        self._lock = threading.Lock()

    def __call__(self, text):
        with self._lock:
            self._f.write(text + "\n")
            self._f.flush()

    def text(self):
        with open(self.path) as f:
            return f.read()

    def close(self):
        self._f.close()


# Full snapshot reads a bank run must have completed for its checks to mean something. Fewer
# with async commit (measured: 13-28 against 11-102 in two phases): every key of an async
# transaction, the primary too, stays locked until its commits land after the answer, so a
# scan meets more locks, and each costs it a status check and a read of the commit point
# (docs/transactions.md §3b); a transaction cut off mid-prewrite is waited out (TTL) as in
# two phases.
MIN_READS = {"2pc": 10, "async": 5}


def save_history(path, history):
    with open(path, "w") as f:
        for op in history:
            f.write(repr(op) + "\n")


def status_counts(history):
    counts = {}
    for op in history:
        counts[op.status] = counts.get(op.status, 0) + 1
    return counts


def detail(res, log, tmp_path, seed, extra=""):
    return (f"{res.report()}\nstats: {res.stats}\n{extra}\nseed {seed}; artifacts (history, "
            f"nemesis.log, node logs): {tmp_path}\n--- nemesis log ---\n{log.text()}")


def schedule(c, nemeses, seed, log, box, interval=(1.0, 2.5), hold=(2.0, 4.0)):
    """A `during` for bank_run / list_append_run: a nemesis.Schedule from `seed` until the
    workload's stop time. The Schedule is left in box["schedule"] for the test to assert on
    (not asserted here: the workload's threads are still to be joined)."""
    def during(stop):
        sched = nemesis.Schedule(nemeses, random.Random(seed), max(1.0, stop - time.time()),
                                 log, interval=interval, hold=hold)
        box["schedule"] = sched
        sched.start()
        sched.join()
    return during


def put_all(c, node, pairs, per_txn=6, timeout=60):
    """Writes `pairs` transactionally, per_txn keys a transaction, retrying each until it
    commits (the regions split under it)."""
    s = Session(c, node)
    try:
        for i in range(0, len(pairs), per_txn):
            line = " ".join(f"put {k} {v}" for k, v in pairs[i:i + per_txn])
            deadline = time.time() + timeout
            while True:
                r = s.run(line)
                if r["ok"]:
                    break
                assert time.time() < deadline, f"padding never committed: {r}"
                time.sleep(0.2)
    finally:
        s.close()


def data_regions(c):
    """The most data regions a live node holds (the coordinator's region 2 left out; a node
    restarted a moment ago may not have caught up with the last splits yet)."""
    counts = []
    for n in c.live():
        try:
            counts.append(sum(1 for r in n.raft()["regions"] if r["id"] != 2 and r["voters"]))
        except (OSError, ValueError, KeyError):
            continue
    return max(counts, default=None)


def summary(box, text):
    """One line on what the run did (pytest shows it with -rP, and with a failure)."""
    sched = box.get("schedule")
    print(f"{sched.faults if sched else 'no'} faults; {text}")


def check_schedule(box, res, log, tmp_path, seed):
    sched = box.get("schedule")
    assert sched is not None, "the nemesis schedule never ran"
    assert sched.error is None, detail(res, log, tmp_path, seed, sched.error)
    assert sched.faults >= 2, detail(res, log, tmp_path, seed, f"{sched.faults} faults")
    return sched


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_bank_under_split_storm_and_kills(cluster_factory, tmp_path, mode):
    """Regions split every 4 KiB written while transfers run and nodes are killed -9 (one, the
    leader, or a majority) and restarted; padding keeps being written between the accounts, so
    the regions holding them split under the transfers (a transaction's keys regrouped by
    region mid-flight, its locks in regions that split). No money is made or lost, every
    snapshot adds up, and the run ends with dozens of regions."""
    seed = 2108  # kills: one node, the leader twice, a majority, one node
    c = cluster_factory(extra_args=("--region-split-size", "4KiB") + COMMIT_MODES[mode])
    c.wait_leader()
    nodes = list(c.nodes.values())
    accounts = [f"acct{i:02d}" for i in range(8)]
    # Padding between the accounts (in the bank's scan range, which keeps only accounts: a few
    # dozen keys, well under its limit of 1000) and after them (zpad...). A region is checked
    # for a split only when it is written to, so the padding keeps being rewritten at random
    # through the run (new versions: the regions grow) and every region keeps splitting.
    value = "x" * 700
    pads = [f"{a}-p{j}" for a in accounts for j in range(4)] + [f"zpad{j:03d}" for j in range(60)]
    put_all(c, nodes[0], [(k, value) for k in pads])
    padded = []

    def pad(until, node, rnd):
        s = Session(c, node)
        while time.time() < until:
            a, b = rnd.sample(pads, 2)
            if s.run(f"put {a} {value} put {b} {value}")["ok"]:
                padded.append((a, b))
        s.close()

    # The storm starts before the bank does (a few seconds: every written region splits at
    # each check, 200 ms apart), and goes on under the transfers.
    pad(time.time() + 6, nodes[1], random.Random(seed))
    log = Log(tmp_path / "nemesis.log")
    log(f"before the bank: {data_regions(c)} data regions, {len(padded)} padding transactions")
    box = {}
    faults = schedule(c, [nemesis.Kill(c, log)], seed, log, box)

    def during(stop):
        # From the last node: the transfers start on the first.
        t = threading.Thread(target=pad, args=(stop, nodes[-1], random.Random(seed + 1)),
                             daemon=True)
        t.start()
        faults(stop)
        t.join(timeout=60)

    res, history = bank_run(c, 25, accounts, during=during)
    regions = data_regions(c)
    log(f"data regions at the end: {regions}; padding transactions committed: {len(padded)}")
    log.close()
    save_history(tmp_path / "history.txt", history)
    summary(box, f"{mode}: {res.stats['transfers']} transfers, {res.stats['reads']} reads, "
            f"{regions} data regions, {len(padded)} padding transactions, "
            f"{async_committed(c)} async commits counted by the live nodes")
    assert res.valid, detail(res, log, tmp_path, seed)
    check_schedule(box, res, log, tmp_path, seed)
    assert res.stats["transfers"].get("ok", 0) >= 20 and res.stats["reads"] >= MIN_READS[mode], \
        detail(res, log, tmp_path, seed)
    assert regions is not None and regions >= 20, detail(
        res, log, tmp_path, seed, f"{regions} data regions, {len(padded)} padding "
        f"transactions: the storm did not happen")


class MembershipWithCoordinator(nemesis.Membership):
    """The membership nemesis the way docs/operations.md replaces a node: the new node joins
    region 1 and the coordinator's region 2 (learner, promoted), and the old voter leaves both.
    With region 1 alone, a second removal of an initial member would take the coordinator's
    quorum (region 2 lives on nodes 1-3) and the TSO with it, and no transaction could start
    any more: a dead cluster, not a finding."""
    name = "membership"

    def start(self, rng):
        text = super().start(rng)
        a = self.added
        self.cluster.admin("add", "--region", "2", "--id", str(a.id), "--peer-addr",
                           a.peer_addr, others_than=a.id)
        self.cluster.admin("promote", "--region", "2", "--id", str(a.id), others_than=a.id)
        return text + " (in region 1 and the coordinator's region 2)"

    def stop(self):
        if self.added is None:
            return "nothing to remove"
        victim = self.rng.choice(self.old)
        self.added = None
        leader = nemesis._leader_or_none(self.cluster)
        self.cluster.admin("remove", "--region", "2", "--id", str(victim), others_than=victim)
        self.cluster.remove_member(victim)
        return (f"remove voter {victim} from regions 2 and 1" +
                (" (region 1's leader)" if victim == leader else ""))


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_list_append_under_coordinator_kills_and_membership_changes(cluster_factory, tmp_path,
                                                                    mode):
    """List-append transactions while the node serving the coordinator (the TSO every
    transaction starts and commits with) is killed -9 and restarted, and nodes are replaced
    (a fresh node added and promoted, an old voter -- the leader, sometimes -- removed and
    stopped for good). Histories stay snapshot isolated. Clients whose gateway was removed
    fail from then on (Unavailable: known not committed); six clients keep enough going.
    Like test_faults.py's membership run, no check of the coordinator's directory here."""
    seed = 2102
    c = cluster_factory(extra_args=COMMIT_MODES[mode])
    c.wait_leader()
    keys = [f"la{i}" for i in range(6)]
    log = Log(tmp_path / "nemesis.log")
    box = {}
    during = schedule(c, [nemesis.KillCoordinator(c, log), MembershipWithCoordinator(c, log)],
                      seed, log, box, interval=(1.0, 2.0), hold=(2.0, 4.0))
    res, history = list_append_run(c, 25, keys, during=during, clients=6)
    log.close()
    save_history(tmp_path / "history.txt", history)
    summary(box, f"{status_counts(history)} transactions; members at the end "
            f"{sorted(c.nodes)}")
    assert res.valid, detail(res, log, tmp_path, seed)
    check_schedule(box, res, log, tmp_path, seed)
    text = log.text()
    oks = sum(1 for t in history if t.status == "ok")
    assert oks >= 40, detail(res, log, tmp_path, seed, f"{oks} transactions committed")
    assert "kill -9 the serving coordinator" in text, detail(res, log, tmp_path, seed)
    assert "remove voter" in text, detail(res, log, tmp_path, seed, "no membership change")


@pytest.fixture
def net_cluster_factory(micedb_bin, tmp_path):
    """Like cluster_factory, every node in its own network namespace (netlab.py), so that
    partitions cut real TCP traffic. Skips, saying why, where namespaces cannot be used (the
    rule test_faults.py follows)."""
    ok, why = netlab.available()
    if not ok:
        pytest.skip(f"network partitions cannot run on this machine: {why}")
    made = []

    def make(size=5, extra_args=()):
        net = netlab.NetLab()
        try:
            c = Cluster(micedb_bin, str(tmp_path / f"net{len(made)}"), size, extra_args,
                        net=net)
        except BaseException:
            net.close()
            raise
        made.append(c)
        os.makedirs(c.root, exist_ok=True)
        return c.start()

    yield make
    for c in made:
        c.close()


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_bank_under_network_partitions(net_cluster_factory, tmp_path, mode):
    """Five nodes, each in its own network namespace; accounts over several small regions.
    Transfers and snapshot reads through every side while the leader is isolated, the nodes
    are split majority/minority, a majorities ring is cut, or a node hears nobody (one-way):
    no money is made or lost and every snapshot adds up."""
    seed = 2113  # every kind: majority/minority, isolate the leader, one-way, ring
    c = net_cluster_factory(5, ("--region-split-size", "8KiB", "--region-split-keys", "16")
                            + COMMIT_MODES[mode])
    c.wait_leader()
    nodes = list(c.nodes.values())
    accounts = [f"acct{i:02d}" for i in range(10)]
    put_all(c, nodes[0], [(f"{a}-p{j}", "x" * 400) for a in accounts for j in range(4)])
    log = Log(tmp_path / "nemesis.log")
    box = {}
    during = schedule(c, [nemesis.Partition(c, log)], seed, log, box,
                      interval=(1.0, 2.0), hold=(3.0, 5.0))
    res, history = bank_run(c, 25, accounts, during=during)
    log.close()
    save_history(tmp_path / "history.txt", history)
    regions = data_regions(c)
    summary(box, f"{mode}: {res.stats['transfers']} transfers, {res.stats['reads']} reads, "
            f"{regions} data regions, {async_committed(c)} async commits counted")
    assert res.valid, detail(res, log, tmp_path, seed)
    check_schedule(box, res, log, tmp_path, seed)
    assert res.stats["transfers"].get("ok", 0) >= 20 and res.stats["reads"] >= MIN_READS[mode], \
        detail(res, log, tmp_path, seed)
    assert regions is not None and regions >= 3, f"{regions} regions: accounts not spread"


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_list_append_under_merge_storm_and_kills(cluster_factory, tmp_path, mode):
    """Small regions (4 KiB: the lists and their versions split them) merged back at random
    (`micedb region merge` every 0.1-0.5 s, nemesis.MergeStorm) while nodes are killed -9
    and restarted: transactions whose keys' regions freeze, merge or roll back stay snapshot
    isolated, merges happen, and none is left frozen once the faults are over."""
    seed = 2104
    c = cluster_factory(extra_args=("--region-split-size", "4KiB") + COMMIT_MODES[mode])
    c.wait_leader()
    nodes = list(c.nodes.values())
    keys = [f"la{i}" for i in range(8)]
    # Padding between the keys, so that there are regions to merge from the start.
    put_all(c, nodes[0], [(f"{k}-p{j}", "x" * 700) for k in keys for j in range(3)])
    log = Log(tmp_path / "nemesis.log")
    box = {}
    faults = schedule(c, [nemesis.Kill(c, log)], seed, log, box,
                      interval=(1.0, 3.0), hold=(2.0, 4.0))
    storm = nemesis.MergeStorm(c, random.Random(seed * 7919 + 1), log)

    def during(stop):
        storm.start()
        try:
            faults(stop)
        finally:
            storm.stop()
            log(f"merge storm: {storm.asked} merges asked, {storm.frozen} regions frozen")

    res, history = list_append_run(c, 25, keys, during=during)
    # Every merge ends, committed or rolled back, once the faults are over.
    deadline = time.monotonic() + 20
    frozen = None
    while time.monotonic() < deadline:
        try:
            frozen = [(n.id, r["id"], r["merging_into"]) for n in c.live()
                      for r in n.raft()["regions"] if "merging_into" in r]
        except (OSError, ValueError, KeyError):
            frozen = None
        if frozen == []:
            break
        time.sleep(0.5)
    log.close()
    save_history(tmp_path / "history.txt", history)
    summary(box, f"{mode}: {status_counts(history)} transactions; {storm.asked} merges asked, "
            f"{storm.frozen} done; {data_regions(c)} data regions at the end")
    assert res.valid, detail(res, log, tmp_path, seed)
    check_schedule(box, res, log, tmp_path, seed)
    oks = sum(1 for t in history if t.status == "ok")
    assert oks >= 50, detail(res, log, tmp_path, seed, f"{oks} transactions committed")
    assert storm.frozen >= 1, detail(res, log, tmp_path, seed,
                                     f"{storm.asked} merges asked, none done: no storm")
    assert frozen == [], detail(res, log, tmp_path, seed,
                                f"merges left frozen (node, region, into): {frozen}")


@pytest.mark.parametrize("mode", list(COMMIT_MODES))
def test_list_append_under_network_partitions(net_cluster_factory, tmp_path, mode):
    """Five nodes, each in its own network namespace, over small regions: list-append
    transactions through every side while the nodes are cut apart (the leader isolated,
    majority and minority, a ring, one-way): histories stay snapshot isolated."""
    seed = 2117
    c = net_cluster_factory(5, ("--region-split-size", "4KiB") + COMMIT_MODES[mode])
    c.wait_leader()
    nodes = list(c.nodes.values())
    keys = [f"la{i}" for i in range(8)]
    put_all(c, nodes[0], [(f"{k}-p{j}", "x" * 700) for k in keys for j in range(3)])
    log = Log(tmp_path / "nemesis.log")
    box = {}
    during = schedule(c, [nemesis.Partition(c, log)], seed, log, box,
                      interval=(1.0, 2.0), hold=(3.0, 5.0))
    res, history = list_append_run(c, 25, keys, during=during)
    log.close()
    save_history(tmp_path / "history.txt", history)
    regions = data_regions(c)
    summary(box, f"{mode}: {status_counts(history)} transactions, {regions} data regions, "
            f"{async_committed(c)} async commits counted")
    assert res.valid, detail(res, log, tmp_path, seed)
    check_schedule(box, res, log, tmp_path, seed)
    oks = sum(1 for t in history if t.status == "ok")
    assert oks >= 40, detail(res, log, tmp_path, seed, f"{oks} transactions committed")
    assert regions is not None and regions >= 3, f"{regions} regions: keys not spread"
