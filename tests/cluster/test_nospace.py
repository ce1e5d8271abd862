"""A full disk under real nodes (issue 13 item 10; docs/operations.md "Disk full (NOSPACE)").

The three nodes keep their data on one small tmpfs that the test mounts itself (root is
needed; without it the test fails, it is not skipped). Filling the tmpfs fills every node's
disk at once. The nodes' own logs stay outside it."""
import errno
import os
import subprocess
import time

import pytest
import redis

from harness import Cluster, retry

MIB = 1 << 20
DISK_MB = 256


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"cannot mount a {DISK_MB} MiB tmpfs at {mnt} for the nodes' data (this test "
                    f"needs root): {out.stderr.strip() or out.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path):
    """Writes zeros into `path` until the disk refuses; returns the bytes written."""
    written = 0
    chunk = b"\0" * MIB
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                return written


def info_alarm(node):
    text = node.redis().execute_command("INFO", "replication")
    if isinstance(text, bytes):
        text = text.decode()
    if isinstance(text, dict):
        return str(text.get("disk_alarm"))
    for line in text.splitlines():
        if line.startswith("disk_alarm:"):
            return line.split(":", 1)[1].strip()
    return None


def wait_for(pred, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def cluster_on(micedb_bin, tmp_path, small_disk, args):
    """A 3-node cluster (not started) whose data directories are on the small disk."""
    c = Cluster(micedb_bin, str(tmp_path / "c"), 3, args)
    os.makedirs(c.root, exist_ok=True)
    for n in c.nodes.values():
        n.data_dir = str(small_disk / f"node{n.id}")
    return c


def write_keys(leader, count):
    """Writes k<i> = v<i> through the leader; returns what was acknowledged."""
    acked = {}
    for i in range(count):
        k, v = f"k{i}", f"v{i}"
        assert retry(lambda: leader.redis().set(k, v), timeout=20)
        acked[k] = v
    return acked


def test_full_disk_refuses_writes_serves_reads_and_recovers(micedb_bin, tmp_path, small_disk):
    c = cluster_on(micedb_bin, tmp_path, small_disk, ["--min-free-disk-mb", "32"])
    try:
        c.start()
        leader = c.nodes[c.wait_leader()]
        acked = write_keys(leader, 50)

        filler = small_disk / "filler"
        fill(filler)
        for n in c.nodes.values():
            wait_for(lambda: info_alarm(n) == "NOSPACE", f"node {n.id} raises NOSPACE")
            assert n.metric("micedb_nospace_alarm") == 1
            try:
                n.http("/readyz")
                raise AssertionError("/readyz answered 200 under the NOSPACE alarm")
            except OSError as e:  # urllib's HTTPError (503) is an OSError
                assert "503" in str(e)
        # Writes are refused with the NOSPACE error, through any node.
        for n in c.nodes.values():
            with pytest.raises(redis.ResponseError) as e:
                n.redis().set("refused", "x")
            assert str(e.value).startswith("NOSPACE database or storage space exhausted"), e.value
        # Reads go on, on every node.
        for n in c.nodes.values():
            r = n.redis()
            assert r.get("k0") == b"v0"
            assert r.mget(["k10", "k49"]) == [b"v10", b"v49"]
        assert all(n.alive() for n in c.nodes.values())

        filler.unlink()
        for n in c.nodes.values():
            wait_for(lambda: info_alarm(n) == "none", f"node {n.id} clears NOSPACE")
        leader = c.nodes[c.wait_leader()]
        assert retry(lambda: leader.redis().set("after", "1"), timeout=20)
        acked["after"] = "1"
        for n in c.nodes.values():
            r = n.redis()
            assert r.get("refused") is None  # nothing of a refused write was applied
            for k, v in acked.items():
                assert r.get(k) == (v if isinstance(v, bytes) else v.encode()), (n.id, k)
        c.converged_hashes()
        assert all(n.alive() for n in c.nodes.values())
    finally:
        c.close()


def test_a_write_that_hits_enospc_is_held_and_goes_in_once_space_returns(
        micedb_bin, tmp_path, small_disk):
    # No reserve: the disk fills under RocksDB itself, and its writes fail with ENOSPC.
    c = cluster_on(micedb_bin, tmp_path, small_disk,
                   ["--min-free-disk-mb", "0", "--request-timeout-ms", "3000"])
    try:
        c.start()
        leader = c.nodes[c.wait_leader()]
        acked = write_keys(leader, 20)

        filler = small_disk / "filler"
        fill(filler)
        # Writes go on into the space RocksDB set aside for its log beforehand, then one fails
        # there: no node aborts, the alarm goes up, and the client learns nothing was
        # acknowledged (an error or a timeout).
        big = b"x" * MIB
        failed = False
        for i in range(64):
            try:
                if leader.redis(socket_timeout=10).set(f"big{i}", big):
                    acked[f"big{i}"] = big
                    continue
            except redis.RedisError:
                pass
            failed = True
            break
        assert failed, "64 MiB went onto a full disk"
        wait_for(lambda: any(info_alarm(n) == "NOSPACE" for n in c.nodes.values()),
                 "a node raises NOSPACE after a failed write")
        assert sum(n.metric("micedb_store_write_failures_total") for n in c.nodes.values()) > 0
        assert all(n.alive() for n in c.nodes.values())

        filler.unlink()
        # RocksDB recovers by itself once enough is free (it polls every few seconds), then
        # the held writes go in.
        for n in c.nodes.values():
            wait_for(lambda: info_alarm(n) == "none", f"node {n.id} clears NOSPACE", timeout=45)
        leader = c.nodes[c.wait_leader()]
        assert retry(lambda: leader.redis().set("after", "1"), timeout=20)
        acked["after"] = "1"
        for n in c.nodes.values():
            r = n.redis()
            for k, v in acked.items():
                assert r.get(k) == (v if isinstance(v, bytes) else v.encode()), (n.id, k)
        c.converged_hashes()
        assert all(n.alive() for n in c.nodes.values())
    finally:
        c.close()


def test_a_node_that_cannot_open_its_data_directory_exits_with_code_4(micedb_bin, small_disk):
    fill(small_disk / "filler")
    from harness import free_ports
    peer, rds, pg, http = free_ports(4)
    out = subprocess.run(
        [micedb_bin, "start", "--node-id", "1", "--data-dir", str(small_disk / "node1"),
         "--listen-peer", f"127.0.0.1:{peer}", "--listen-redis", f"127.0.0.1:{rds}",
         "--listen-pg", f"127.0.0.1:{pg}", "--listen-http", f"127.0.0.1:{http}"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 4, (out.returncode, out.stderr[-2000:])
    assert "the data directory" in out.stderr and "cannot be used" in out.stderr, out.stderr
