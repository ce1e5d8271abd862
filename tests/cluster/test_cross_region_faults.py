"""Redis MULTI/EXEC over many regions under faults: a bank of accounts spread over small
regions that keep splitting (4 KiB, with padding rewritten between the accounts). Transfers
are MULTI DECRBY/INCRBY EXEC through redis-py at any live node; an auditor reads every
account in one MULTI/EXEC. Each transfer is all or nothing, so every audit adds up to the
same total whatever became of the transfers that failed (an error whose outcome is unknown
included), and so does the final read. Two runs: regions also merging back
(nemesis.MergeStorm) while nodes are killed -9 and restarted (nemesis.Kill); and five nodes
in network namespaces cut apart (nemesis.Partition) while the regions split under the
commits. The nemesis log is under the test's tmp_path."""
import random
import threading
import time

import redis

import nemesis
from harness import retry
from test_txn_faults import Log, data_regions, net_cluster_factory, schedule, summary  # noqa: F401

def client_for(c, rnd):
    """A redis client on a random live node (None when none is up)."""
    live = [n for n in c.nodes.values() if n.alive()]
    if not live:
        return None
    return rnd.choice(live).redis(socket_timeout=15)


def redis_bank(c, tmp_path, seed, make_nemeses, storm):
    """The bank under the schedule of make_nemeses(log) (and a MergeStorm if `storm`) for
    30 s; asserts every audit and the final balances add up. Returns (stats, data regions,
    merges done, the text to show on a failure)."""
    c.wait_leader()
    nodes = list(c.nodes.values())
    accounts = [f"acct{i:02d}" for i in range(10)]
    pads = [f"{a}-p{j}" for a in accounts for j in range(4)]
    value = "x" * 700
    r0 = nodes[0].redis()
    retry(lambda: r0.mset({a: 100 for a in accounts}))
    for k in pads:
        retry(lambda k=k: r0.set(k, value))
    total = 100 * len(accounts)
    log = Log(tmp_path / "nemesis.log")
    box = {}
    faults = schedule(c, make_nemeses(log), seed, log, box)
    storm = nemesis.MergeStorm(c, random.Random(seed * 31 + 7), log) if storm else None
    stop = threading.Event()
    errors, lock = [], threading.Lock()
    stats = {"ok": 0, "failed": 0, "audits": 0, "audit_failed": 0, "pads": 0}

    def count(what):
        with lock:
            stats[what] += 1

    def worker(rnd, step, failed):
        """Runs step(client, rnd) until the end, on a live node's client; an error counts
        `failed` (if set) and moves to another node."""
        r = None
        while not stop.is_set():
            r = r or client_for(c, rnd)
            if r is None:
                time.sleep(0.2)
                continue
            try:
                step(r, rnd)
            except (redis.RedisError, OSError):
                if failed:
                    count(failed)
                r = None

    def transfer(r, rnd):
        src, dst = rnd.sample(accounts, 2)
        n = rnd.randint(1, 5)
        p = r.pipeline(transaction=True)
        p.decrby(src, n).incrby(dst, n)
        p.execute()  # an error: applied or not, either way the total holds
        count("ok")

    def audit(r, rnd):
        p = r.pipeline(transaction=True)
        p.mget(accounts)
        (values,) = p.execute()
        count("audits")
        s = sum(int(v) for v in values)
        if s != total:
            with lock:
                errors.append(f"audit saw {s}, not {total}: {values}")

    def pad(r, rnd):
        # Keeps the regions between the accounts growing, so they keep splitting.
        r.set(rnd.choice(pads), value)
        count("pads")

    def thread(seed_, step, failed=None):
        return threading.Thread(target=worker, args=(random.Random(seed_), step, failed),
                                daemon=True)

    threads = [thread(seed + i, transfer, "failed") for i in range(3)]
    threads += [thread(seed - 1 - i, audit, "audit_failed") for i in range(2)]
    threads.append(thread(seed + 99, pad))
    for t in threads:
        t.start()
    if storm:
        storm.start()
    try:
        faults(time.time() + 30)
    finally:
        if storm:
            storm.stop()
        stop.set()
        for t in threads:
            t.join(timeout=60)
    # Once every node is back, the final balances add up too (reads resolve what a killed
    # gateway left behind).
    r = nodes[1].redis(socket_timeout=30)
    values = retry(lambda: r.mget(accounts), timeout=60)
    regions = data_regions(c)
    merges = storm.frozen if storm else 0
    if storm:
        log(f"{storm.asked} merges asked, {storm.frozen} done")
    log(f"stats {stats}; {regions} regions")
    log.close()
    text = (f"seed {seed}; stats {stats}; {regions} data regions; nemesis log:\n"
            f"{(tmp_path / 'nemesis.log').read_text()}")
    summary(box, f"{stats}; {merges} merges; {regions} data regions")
    assert not errors, f"{errors[:5]}\n{text}"
    assert sum(int(v) for v in values) == total, f"final balances {values}\n{text}"
    sched = box.get("schedule")
    assert sched is not None and sched.error is None and sched.faults >= 2, text
    return stats, regions, text


def test_redis_bank_over_splitting_and_merging_regions_with_kills(cluster_factory, tmp_path):
    c = cluster_factory(extra_args=("--region-split-size", "4KiB"))
    stats, regions, text = redis_bank(c, tmp_path, 1607, lambda log: [nemesis.Kill(c, log)],
                                      storm=True)
    # Progress, with a majority down for seconds at a time and a killed gateway's intents
    # waited out (their lock TTL) by whoever meets them: a few dozen transfers and some
    # audits (each takes every region's locks; runs here saw 2-3 per auditor). The audits'
    # volume is test_cross_region.py's bank test, without faults.
    assert stats["ok"] >= 20 and stats["audits"] >= 1, text
    assert regions is not None and regions >= 5, text


def test_redis_bank_under_network_partitions_while_regions_split(net_cluster_factory, tmp_path):
    """Five nodes, each in its own network namespace: the leader isolated, majority and
    minority, a ring, one-way cuts, while the padding keeps splitting the regions the
    transfers span."""
    c = net_cluster_factory(5, ("--region-split-size", "4KiB"))
    stats, regions, text = redis_bank(c, tmp_path, 2113,
                                      lambda log: [nemesis.Partition(c, log)], storm=False)
    # Progress with a side cut off at times (a transfer whose gateway or region is on the
    # minority side fails or waits out its locks' TTL).
    assert stats["ok"] >= 20 and stats["audits"] >= 1, text
    assert regions is not None and regions >= 5, text
