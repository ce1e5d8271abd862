"""TLS and authentication (issue 13 item 2; docs/security.md), against real nodes.

Secure mode: every connection to the peer port must present a certificate from the cluster
CA; raft streams only a node's. Without credentials the KV API, admin and the raft stream are
refused; with them everything works, including redis-cli --tls. A node that would listen on a
non-loopback address without certificates refuses to start unless --insecure."""
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
import redis

from harness import free_ports, retry


def run(binary, *args, timeout=60, check=True):
    out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, f"micedb {' '.join(args)}: {out.stdout} {out.stderr}"
    return out


@pytest.fixture
def certs(micedb_bin, tmp_path):
    d = str(tmp_path / "certs")
    key = str(tmp_path / "safe" / "ca.key")
    run(micedb_bin, "cert", "create-ca", "--certs-dir", d, "--ca-key", key)
    run(micedb_bin, "cert", "create-node", "--certs-dir", d, "--ca-key", key,
        "127.0.0.1", "localhost")
    run(micedb_bin, "cert", "create-client", "--certs-dir", d, "--ca-key", key, "root")
    return d


@pytest.fixture
def other_ca(micedb_bin, tmp_path):
    """A second CA with its own node and client certificates: valid TLS, wrong cluster."""
    d = str(tmp_path / "other")
    key = str(tmp_path / "other.key")
    run(micedb_bin, "cert", "create-ca", "--certs-dir", d, "--ca-key", key)
    run(micedb_bin, "cert", "create-node", "--certs-dir", d, "--ca-key", key, "127.0.0.1")
    run(micedb_bin, "cert", "create-client", "--certs-dir", d, "--ca-key", key, "root")
    return d


def test_cert_commands_make_a_ca_node_and_client(micedb_bin, certs, tmp_path):
    listing = run(micedb_bin, "cert", "list", "--certs-dir", certs).stdout
    assert re.search(r"ca\.crt\s+CN=MiceDB CA\s+CA", listing), listing
    assert re.search(r"node\.crt\s+CN=node .*hosts=node,127\.0\.0\.1,localhost", listing), listing
    assert "client.root.crt" in listing and "CN=root" in listing, listing
    assert os.stat(os.path.join(certs, "node.key")).st_mode & 0o777 == 0o600
    # Existing files are kept unless --overwrite; a missing CA key is named.
    again = run(micedb_bin, "cert", "create-client", "--certs-dir", certs, "--ca-key",
                str(tmp_path / "safe" / "ca.key"), "root", check=False)
    assert again.returncode != 0 and "exists already" in again.stderr, again.stderr
    nokey = run(micedb_bin, "cert", "create-client", "--certs-dir", certs, "--ca-key",
                str(tmp_path / "nope.key"), "bob", check=False)
    assert nokey.returncode != 0 and "nope.key" in nokey.stderr, nokey.stderr


def tls_port(node, timeout=30):
    """The Redis TLS port a node printed (it was started with port 0)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(node.log_path) as f:
            m = re.search(r"redis over TLS: .* -p (\d+)", f.read())
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    raise AssertionError("the node did not print its Redis TLS port")


def raw_tls(port, certfile=None, keyfile=None, cafile=None, alpn=None):
    """Opens a TLS connection to 127.0.0.1:port with the given client certificate and ALPN;
    returns the socket, or raises (ssl.SSLError, OSError) when the handshake is refused."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    if alpn:
        ctx.set_alpn_protocols([alpn])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(s)


def refused_or_closed(fn):
    """True when `fn` (which connects and then reads) fails or reads only end-of-stream: the
    server never let the connection through."""
    try:
        s = fn()
        s.settimeout(10)
        try:
            s.sendall(b"MICERAFT" + b"\x00" * 64)
            return s.recv(1) == b""
        finally:
            s.close()
    except (ssl.SSLError, OSError):
        return True


def test_secure_cluster_works_with_credentials_and_refuses_strangers(
        micedb_bin, cluster_factory, certs, other_ca):
    cluster = cluster_factory(extra_args=["--certs-dir", certs,
                                          "--listen-redis-tls", "127.0.0.1:0"])
    leader = cluster.nodes[cluster.wait_leader()]
    # Raft over mutual TLS: a write through a follower's plain loopback Redis port commits
    # and every replica applies it.
    follower = next(n for n in cluster.nodes.values() if n.id != leader.id)
    assert retry(lambda: follower.redis().set("k", "v1"), timeout=30)
    cluster.converged_hashes()

    peer = follower.peer_addr
    # The gRPC KV API and admin: with the client certificate they work...
    run(micedb_bin, "kv", "put", "--certs-dir", certs, "--addr", peer, "g", "grpc-value")
    got = run(micedb_bin, "kv", "get", "--certs-dir", certs, "--addr", peer, "g").stdout
    assert "grpc-value" in got
    status = run(micedb_bin, "status", "--certs-dir", certs, "--via", peer).stdout
    assert "leader" in status.lower()
    # ...without credentials, or with another CA's, they are refused.
    for creds in ([], ["--certs-dir", other_ca]):
        bad = run(micedb_bin, "kv", "get", *creds, "--addr", peer, "g", "--timeout-ms", "3000",
                  check=False)
        assert bad.returncode != 0 and "grpc-value" not in bad.stdout, bad
        bad = run(micedb_bin, "status", *creds, "--via", peer, check=False)
        assert bad.returncode != 0, bad
        bad = run(micedb_bin, "node", "transfer-leader", "--id", str(follower.id), *creds,
                  "--via", peer, "--timeout", "3", check=False)
        assert bad.returncode != 0, bad
    assert cluster.wait_leader() == leader.id  # the refused transfer did nothing

    # The raft stream: plain bytes, TLS without a certificate, another CA's node
    # certificate, and our CA's client (non-node) certificate are all turned away.
    port = follower.peer_port
    ca = os.path.join(certs, "ca.crt")

    def plain():
        return socket.create_connection(("127.0.0.1", port), timeout=10)

    assert refused_or_closed(plain)
    assert refused_or_closed(lambda: raw_tls(port, alpn="micedb-raft"))
    assert refused_or_closed(lambda: raw_tls(
        port, os.path.join(other_ca, "node.crt"), os.path.join(other_ca, "node.key"),
        alpn="micedb-raft"))
    assert refused_or_closed(lambda: raw_tls(
        port, os.path.join(certs, "client.root.crt"), os.path.join(certs, "client.root.key"),
        cafile=ca, alpn="micedb-raft"))
    # Our CA's node certificate does get a raft stream (the check above is not vacuous):
    # the handshake completes and the stream stays open.
    s = raw_tls(port, os.path.join(certs, "node.crt"), os.path.join(certs, "node.key"),
                cafile=ca, alpn="micedb-raft")
    assert s.selected_alpn_protocol() == "micedb-raft"
    s.close()

    # Redis over TLS, with redis-cli and redis-py; a client without a certificate is refused
    # (--redis-tls-auth-clients yes, the default).
    tport = tls_port(follower)
    cli = ["redis-cli", "--tls", "--cacert", ca, "-h", "127.0.0.1", "-p", str(tport)]
    client = ["--cert", os.path.join(certs, "client.root.crt"),
              "--key", os.path.join(certs, "client.root.key")]
    out = subprocess.run(cli + client + ["SET", "tls-key", "tls-value"], capture_output=True,
                         text=True, timeout=30)
    assert out.stdout.strip() == "OK", out
    out = subprocess.run(cli + client + ["GET", "tls-key"], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.strip() == "tls-value", out
    r = redis.Redis(host="127.0.0.1", port=tport, ssl=True, ssl_ca_certs=ca,
                    ssl_certfile=os.path.join(certs, "client.root.crt"),
                    ssl_keyfile=os.path.join(certs, "client.root.key"), socket_timeout=15)
    assert r.get("k") == b"v1"
    out = subprocess.run(cli + ["GET", "tls-key"], capture_output=True, text=True, timeout=30)
    assert "tls-value" not in out.stdout, out
    with pytest.raises((redis.RedisError, OSError)):
        redis.Redis(host="127.0.0.1", port=tport, ssl=True, ssl_ca_certs=ca,
                    socket_timeout=10).get("k")

    # Nothing above disturbed the cluster.
    assert follower.redis().get("tls-key") == b"tls-value"
    cluster.converged_hashes()
    assert all(n.alive() for n in cluster.nodes.values())


def start_alone(micedb_bin, tmp_path, *args):
    peer, redis_port, pg, http = free_ports(4)
    return subprocess.Popen(
        [micedb_bin, "start", "--node-id", "1", "--data-dir", str(tmp_path / "solo"),
         "--listen-peer", f"0.0.0.0:{peer}", "--listen-redis", f"127.0.0.1:{redis_port}",
         "--listen-pg", f"127.0.0.1:{pg}", "--listen-http", f"127.0.0.1:{http}", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_non_loopback_node_needs_certificates_or_insecure(micedb_bin, tmp_path, certs):
    p = start_alone(micedb_bin, tmp_path)
    out, _ = p.communicate(timeout=60)
    assert p.returncode != 0, out
    assert "--certs-dir" in out and "--insecure" in out, out

    for extra in (["--insecure"], ["--certs-dir", certs]):
        p = start_alone(micedb_bin, tmp_path, *extra)
        try:
            deadline = time.time() + 60
            seen = ""
            while time.time() < deadline and "security:" not in seen:
                line = p.stdout.readline()
                if not line:
                    break
                seen += line
            assert "running" in seen and "security:" in seen, seen
            security = seen.split("security:", 1)[1]
            assert ("insecure" in security) == (extra == ["--insecure"]), seen
        finally:
            p.terminate()
            p.wait(timeout=60)


def test_start_local_with_certificates_is_secure_and_serves_redis_over_tls(
        micedb_bin, tmp_path, certs):
    from test_cli import free_offset, wait_for_line
    offset = free_offset(1)
    proc = subprocess.Popen(
        [micedb_bin, "start-local", "--nodes", "1", "--data-dir", str(tmp_path / "local"),
         "--port-offset", str(offset), "--certs-dir", certs],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_line(proc, "Security: mutual TLS")
        ca = os.path.join(certs, "ca.crt")
        r = redis.Redis(host="127.0.0.1", port=6390 + offset, ssl=True, ssl_ca_certs=ca,
                        ssl_certfile=os.path.join(certs, "client.root.crt"),
                        ssl_keyfile=os.path.join(certs, "client.root.key"), socket_timeout=10)
        retry(lambda: r.set("secure", "yes"), timeout=60)
        assert r.get("secure") == b"yes"
        status = run(micedb_bin, "status", "--certs-dir", certs,
                     "--via", f"127.0.0.1:{20161 + offset}").stdout
        assert "leader" in status
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
