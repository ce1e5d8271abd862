"""`micedb start-local` as a new user drives it: kill -9 a node and watch the rest serve, restart
it with the command start-local printed, Ctrl-C to stop everything."""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import redis

from harness import retry
from test_cli import free_offset


class LocalCluster:
    """A `micedb start-local` process whose stdout and stderr are read as they come: the nodes
    share its stderr, and a pipe nobody drains would stall them."""

    def __init__(self, micedb_bin, data_dir, nodes, offset, extra=()):
        self.data_dir = str(data_dir)
        self.nodes = nodes
        self.offset = offset
        self.proc = subprocess.Popen(
            [micedb_bin, "start-local", "--nodes", str(nodes), "--data-dir", self.data_dir,
             "--port-offset", str(offset), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = {"stdout": [], "stderr": []}
        self.cond = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(name, f), daemon=True)
                        for name, f in (("stdout", self.proc.stdout),
                                        ("stderr", self.proc.stderr))]
        for r in self.readers:
            r.start()

    def _read(self, name, f):
        for line in f:
            with self.cond:
                self.lines[name].append(line.rstrip("\n"))
                self.cond.notify_all()

    def text(self, stream):
        with self.cond:
            return "\n".join(self.lines[stream])

    def wait_for(self, stream, pattern, timeout=60):
        """The first match of `pattern` on a line of `stream`, waiting up to `timeout` s."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines[stream]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(
                        f"never saw {pattern!r} on {stream}; exit={self.proc.poll()}\n"
                        + "\n".join(self.lines[stream][-40:]))
                self.cond.wait(min(left, 0.5))

    def pids(self):
        """Node id -> pid, from the table start-local prints."""
        self.wait_for("stdout", "Ctrl-C stops every node")
        return {int(m.group(1)): int(m.group(2))
                for m in (re.match(r"^  node (\d+)  pid (\d+) ", line)
                          for line in self.lines["stdout"]) if m}

    def redis(self, node):
        return redis.Redis(port=6379 + self.offset + node, socket_timeout=10,
                           socket_connect_timeout=5)

    def leader(self, node):
        url = f"http://127.0.0.1:{8079 + self.offset + node}/debug/raft"
        with urllib.request.urlopen(url, timeout=10) as r:
            regions = json.loads(r.read())["regions"]
        return regions[0]["leader"] if regions else 0

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()  # its nodes follow (PR_SET_PDEATHSIG)
            self.proc.wait()
        for r in self.readers:
            r.join(timeout=10)


def node_processes(data_dir):
    """Pids of live (not zombie) processes whose command line names `data_dir`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if data_dir in cmdline and "start-local" not in cmdline and state != "Z":
            found.append(int(pid))
    return found


def wait_serving(c, node, key, value, timeout=60):
    retry(lambda: c.redis(node).set(key, value), timeout=timeout)
    assert retry(lambda: c.redis(node).get(key), timeout=timeout) == value.encode()


def stop(c, not_ours=()):
    """Ctrl-C: start-local exits 0 within 20 s, and of its nodes none is left."""
    c.proc.send_signal(signal.SIGINT)
    assert c.proc.wait(timeout=20) == 0, c.text("stderr")[-4000:]
    assert "micedb local cluster stopped" in c.text("stdout")
    assert sorted(node_processes(c.data_dir)) == sorted(not_ours)


def test_sigint_stops_every_node_and_exits_0(micedb_bin, tmp_path):
    c = LocalCluster(micedb_bin, tmp_path / "local", 2, free_offset(2))
    try:
        assert sorted(c.pids()) == [1, 2]
        wait_serving(c, 1, "local", "yes")
        assert retry(lambda: c.redis(2).get("local")) == b"yes"
        assert sorted(node_processes(c.data_dir)) == sorted(c.pids().values())
        stop(c)
        assert "still running" not in c.text("stderr"), "a node stopped by Ctrl-C is no news"
    finally:
        c.close()


def test_nodes_do_not_outlive_start_local_killed_with_9(micedb_bin, tmp_path):
    c = LocalCluster(micedb_bin, tmp_path / "local", 2, free_offset(2))
    try:
        for i in (1, 2):
            c.wait_for("stdout", rf"^micedb node {i} running")  # exec'd: its own command line
        assert sorted(node_processes(c.data_dir)) == sorted(c.pids().values())
        c.proc.kill()
        c.proc.wait()
        deadline = time.time() + 30
        while node_processes(c.data_dir) and time.time() < deadline:
            time.sleep(0.1)
        assert node_processes(c.data_dir) == []
    finally:
        c.close()


def test_cluster_survives_kill_9_of_its_leader_and_the_printed_command_restarts_it(
        micedb_bin, tmp_path):
    started = time.time()
    c = LocalCluster(micedb_bin, tmp_path / "local", 3, free_offset(3))
    restarted = None
    try:
        pids = c.pids()
        for i in (1, 2, 3):
            wait_serving(c, i, f"k{i}", f"v{i}")
        victim = retry(lambda: c.leader(1) or c.leader(2) or c.leader(3), timeout=30)
        assert victim in pids
        others = [i for i in (1, 2, 3) if i != victim]

        # start-local reports a node that dies within its first 2 s as one that failed to
        # start; a cluster up in less than that is killed only after it.
        time.sleep(max(0.0, started + 3.0 - time.time()))
        os.kill(pids[victim], signal.SIGKILL)
        c.wait_for("stderr", rf"^micedb: node {victim} \(pid {pids[victim]}\) died: signal "
                             rf"SIGKILL; 2 of 3 node\(s\) still running$", timeout=10)
        assert c.proc.poll() is None, "start-local must keep serving with two of three nodes"
        for i in others:
            assert c.redis(i).ping()
        # A new leader is elected among the two (a few election timeouts).
        for i in others:
            retry(lambda i=i: c.redis(i).set(f"while-down{i}", "yes"), timeout=30)
        for i in others:
            for j in others:
                assert retry(lambda i=i, j=j: c.redis(i).get(f"while-down{j}")) == b"yes"
        assert c.proc.poll() is None

        command = c.wait_for("stderr", r"^  restart: (.+)$").group(1)
        argv = shlex.split(command)
        assert os.path.isabs(argv[0]) and os.path.samefile(argv[0], micedb_bin)
        assert argv[1:4] == ["start", "--node-id", str(victim)]
        assert argv[argv.index("--data-dir") + 1] == os.path.join(c.data_dir, f"node{victim}")
        # From another directory, as from another terminal: the paths in it are absolute.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        with open(tmp_path / "restarted.log", "w") as log:
            restarted = subprocess.Popen(argv, cwd=elsewhere, stdout=log, stderr=log)
        # It rejoins with its data and catches up with what was written without it.
        assert retry(lambda: c.redis(victim).get(f"k{victim}"), timeout=60) == f"v{victim}".encode()
        for j in others:
            assert retry(lambda j=j: c.redis(victim).get(f"while-down{j}"), timeout=60) == b"yes"
        assert list(elsewhere.iterdir()) == []

        # Ctrl-C stops the nodes start-local started; the one restarted by hand is the user's.
        stop(c, not_ours=[restarted.pid])
        assert restarted.poll() is None
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0
        assert node_processes(c.data_dir) == []
    finally:
        if restarted is not None and restarted.poll() is None:
            restarted.kill()
            restarted.wait()
        c.close()


def test_a_node_that_cannot_start_is_reported_and_the_others_go_on(micedb_bin, tmp_path):
    offset = free_offset(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 6379 + offset + 2))  # node 2's Redis port
        taken.listen()
        c = LocalCluster(micedb_bin, tmp_path / "local", 2, offset)
        try:
            c.wait_for("stderr", r"^micedb: node 2 \(pid \d+\) failed to start: exit code 2 "
                                 r"\(its error is above\); 1 of 2 node\(s\) still running$")
            command = c.wait_for("stderr", r"^  restart: (.+)$").group(1)
            assert shlex.split(command)[1:4] == ["start", "--node-id", "2"]
            time.sleep(1)
            assert c.proc.poll() is None
            assert len(node_processes(c.data_dir)) == 1
            stop(c)
        finally:
            c.close()


def test_exits_1_when_every_node_has_ended(micedb_bin, tmp_path):
    offset = free_offset(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 6379 + offset + 1))
        taken.listen()
        c = LocalCluster(micedb_bin, tmp_path / "local", 1, offset)
        try:
            assert c.proc.wait(timeout=60) == 1
            c.close()
            err = c.text("stderr")
            assert "micedb: node 1 " in err and "failed to start: exit code 2" in err
            assert "\n  restart: " in err
            assert "every node has stopped" in err
        finally:
            c.close()


def test_sharding_flags_reach_every_node(micedb_bin, tmp_path):
    """start-local passes the split and merge settings to every node, and refuses bad ones."""
    flags = ["--region-split-size", "64KiB", "--region-merge-size", "16KiB",
             "--region-merge-idle", "5s", "--no-region-merge"]
    c = LocalCluster(micedb_bin, tmp_path / "local", 2, free_offset(2), extra=flags)
    try:
        wait_serving(c, 1, "flags", "yes")
        pids = node_processes(c.data_dir)
        assert len(pids) == 2, pids
        for pid in pids:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode().split("\0")
            for flag in flags:
                assert flag in args, (flag, args)
        stop(c)
    finally:
        c.close()
    bad = subprocess.run([micedb_bin, "start-local", "--data-dir", str(tmp_path / "bad"),
                          "--region-merge-idle", "soon"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "--region-merge-idle" in bad.stderr, bad
