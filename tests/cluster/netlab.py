"""Hosts in network namespaces, so that partitions cut real TCP traffic between nodes.

Layout (needs root, iproute2 and iptables): one Linux bridge in the root namespace holding
the address 10.A.B.254/24; every node gets its own namespace `mice<tag>n<i>` with a veth pair
whose inner end (eth0, address 10.A.B.<i>) sits in the namespace and whose outer end is
enslaved to the bridge. Test clients stay in the root namespace and reach every node through
the bridge; partitions are iptables DROP rules inside the nodes' namespaces, so they cut
node-to-node traffic only, the way a switch failure between servers would.

A NetLab owns everything it made and removes it in `close()`; `tag` is random per lab so two
runs (a soak beside `make test`) never collide.
"""
import os
import random
import shutil
import subprocess


def available():
    """(True, "") when namespaces and iptables can be used here, else (False, why)."""
    if os.geteuid() != 0:
        return False, "network partitions need root (network namespaces and iptables)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return False, f"{tool} is not installed (scripts/install-deps installs it)"
    return True, ""


def _run(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=30)


class NetLab:
    def __init__(self):
        rnd = random.Random()
        self.tag = "%04x" % rnd.randrange(1 << 16)
        self.prefix = f"10.{rnd.randrange(64, 250)}.{rnd.randrange(1, 250)}"
        self.bridge = f"mb{self.tag}"
        self.hosts = {}  # node id -> namespace name
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.prefix}.254/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def ip(self, node_id):
        return f"{self.prefix}.{node_id}"

    def ns(self, node_id):
        return self.hosts[node_id]

    def add_host(self, node_id):
        """Creates node_id's namespace (once) and returns its name."""
        if node_id in self.hosts:
            return self.hosts[node_id]
        assert 1 <= node_id <= 200
        ns = f"mice{self.tag}n{node_id}"
        outer = f"mv{self.tag}n{node_id}"
        _run("ip", "netns", "add", ns)
        self.hosts[node_id] = ns
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "link", "set", outer, "master", self.bridge)
        _run("ip", "link", "set", outer, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(node_id)}/24",
             "dev", "eth0")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        return ns

    def exec_prefix(self, node_id):
        return ["ip", "netns", "exec", self.add_host(node_id)]

    # ---- partitions -------------------------------------------------------------------------

    def drop(self, node_id, peer_id, direction="both"):
        """node_id stops receiving from (and, for "both", sending to) peer_id."""
        ns = self.ns(node_id)
        peer = self.ip(peer_id)
        _run("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-s", peer, "-j", "DROP")
        if direction == "both":
            _run("ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-d", peer, "-j", "DROP")

    def partition(self, groups):
        """Cuts every link between nodes of different groups (lists of node ids)."""
        where = {}
        for gi, g in enumerate(groups):
            for n in g:
                where[n] = gi
        for a in where:
            for b in where:
                if a != b and where[a] != where[b]:
                    self.drop(a, b, direction="in")

    def cut_links(self, pairs):
        """Cuts each (a, b) link in both directions."""
        for a, b in pairs:
            self.drop(a, b, direction="in")
            self.drop(b, a, direction="in")

    def rules(self, node_id):
        return _run("ip", "netns", "exec", self.ns(node_id), "iptables", "-S").stdout

    def heal(self):
        for ns in self.hosts.values():
            _run("ip", "netns", "exec", ns, "iptables", "-F", check=False)

    def close(self):
        for ns in list(self.hosts.values()):
            # Deleting the namespace removes its veth pair too.
            _run("ip", "netns", "del", ns, check=False)
        self.hosts.clear()
        _run("ip", "link", "del", self.bridge, check=False)
