"""The micedb command as a user runs it: help, version, and refused starts."""
import os
import signal
import subprocess
import time

import pytest


def run(micedb_bin, *args, timeout=30):
    return subprocess.run([micedb_bin, *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands(micedb_bin):
    r = run(micedb_bin, "--help")
    assert r.returncode == 0
    for cmd in ("start", "start-local", "version"):
        assert cmd in r.stdout


def test_version(micedb_bin):
    r = run(micedb_bin, "version")
    assert r.returncode == 0
    assert r.stdout.startswith("micedb ")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["start", "--node-id", "0", "--data-dir", "{d}"], "--node-id"),
        (["start", "--node-id", "1", "--data-dir", "{d}", "--listen-redis", "x:99999"], "--listen-redis"),
        (["start", "--node-id", "1", "--data-dir", "{d}", "--no-such-flag"], "no-such-flag"),
        (["start", "--data-dir", "{d}"], "node-id"),
        (["frobnicate"], "frobnicate"),
        ([], "command is required"),
    ],
)
def test_bad_flags_one_line_exit_2(micedb_bin, tmp_path, args, needle):
    args = [a.replace("{d}", str(tmp_path / "d")) for a in args]
    r = run(micedb_bin, *args)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert not (tmp_path / "d").exists(), "a refused start must not create the data directory"


def test_uncreatable_data_dir(micedb_bin):
    r = run(micedb_bin, "start", "--node-id", "1", "--data-dir", "/proc/micedb/nope")
    assert r.returncode == 4  # the data directory cannot be used (docs/operations.md)
    assert "/proc/micedb/nope" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def snapshot_tree(path):
    out = {}
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            st = os.stat(p)
            with open(p, "rb") as fh:
                out[p] = (st.st_size, st.st_mtime_ns, fh.read())
    return out


def wait_for_line(proc, needle, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"never saw {needle!r}; exit={proc.poll()}")


def test_locked_data_dir_is_refused_and_untouched(micedb_bin, tmp_path):
    d = tmp_path / "node"
    from harness import free_ports
    ports = free_ports(4)
    first = subprocess.Popen(
        [micedb_bin, "start", "--node-id", "1", "--data-dir", str(d),
         "--listen-peer", f"127.0.0.1:{ports[0]}", "--listen-redis", f"127.0.0.1:{ports[1]}",
         "--listen-pg", f"127.0.0.1:{ports[2]}", "--listen-http", f"127.0.0.1:{ports[3]}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(first, "running")
        before = snapshot_tree(d)
        other = free_ports(4)
        r = run(micedb_bin, "start", "--node-id", "2", "--data-dir", str(d),
                "--listen-peer", f"127.0.0.1:{other[0]}", "--listen-redis", f"127.0.0.1:{other[1]}",
                "--listen-pg", f"127.0.0.1:{other[2]}", "--listen-http", f"127.0.0.1:{other[3]}")
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "in use by another process" in lines[0], r.stderr
        assert str(first.pid) in lines[0]
        assert snapshot_tree(d) == before
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 0


def free_offset(nodes):
    """A --port-offset whose every port (peer, redis, pg, http of each node) is free now, kept
    below the kernel's ephemeral range so outgoing connections do not take them meanwhile."""
    import random
    import socket as s
    rnd = random.Random()
    for _ in range(200):
        offset = rnd.randrange(1000, 12000)
        ports = [base + offset + i for base in (20160, 6379, 5432, 8079, 6389)
                 for i in range(1, nodes + 1)]
        try:
            for p in ports:
                sock = s.socket()
                try:
                    sock.bind(("127.0.0.1", p))
                finally:
                    sock.close()
            return offset
        except OSError:
            continue
    raise AssertionError("no free port offset")
