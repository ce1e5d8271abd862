#!/usr/bin/python3
"""The coordinator's speed targets (docs/coordinator.md, bench/README.md "Coordinator"):

1. TSO: timestamps per second into ONE gateway from 64 concurrent callers, and their p99 wait,
   on a 3-node cluster (3 coordinator voters). The callers run inside the gateway node
   (/debug/tso-bench), as a transaction layer's would, each asking again as soon as it is
   answered; the gateway folds them into one in-flight request to the coordinator's leader.
   Measured through a gateway that is NOT the leader (a network round trip per request) and
   through the leader itself. CPU per timestamp: every node's CPU time over the run.
2. Directory: a fourth node joins (it holds no region, so every request it serves is routed by
   its cache, filled from the coordinator); redis-benchmark runs against it; the share of
   requests served from the cache is 1 - directory lookups / requests.

Usage: bench/coordinator_bench.py [--bin build/release/src/cli/micedb] [--seconds 10]
       [--callers 64] [--port-offset 9000]
Prints a Markdown table; exits 1 if the cluster cannot be started.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def http(port, path, timeout=120):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def metric(port, name):
    for line in http(port, "/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def node_pids(data_dir):
    out = subprocess.run(["pgrep", "-f", "--", f"--data-dir {data_dir}/node"], capture_output=True,
                         text=True).stdout.split()
    return [int(p) for p in out]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/src/cli/micedb")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--callers", type=int, default=64)
    ap.add_argument("--port-offset", type=int, default=9000)
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="micedb-coord-bench-")
    data = os.path.join(work, "data")
    off = args.port_offset
    http_port = lambda i: 8079 + off + i  # noqa: E731
    sl = subprocess.Popen([binary, "start-local", "--nodes", "4", "--data-dir", data,
                           "--port-offset", str(off)],
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sl.log"), "w"))
    try:
        leader = None
        deadline = time.time() + 60
        while leader is None and time.time() < deadline:
            for i in (1, 2, 3):
                try:
                    if metric(http_port(i), "micedb_coordinator_serving") == 1:
                        leader = i
                except OSError:
                    pass
            time.sleep(0.2)
        if leader is None:
            print("the coordinator did not start", file=sys.stderr)
            return 1
        time.sleep(2)
        follower = next(i for i in (1, 2, 3) if i != leader)
        rows = []
        for name, gw in (("through a gateway that is not the leader", follower),
                         ("through the leader itself", leader)):
            pids = node_pids(data)
            cpu0 = cpu_seconds(pids)
            r = json.loads(http(http_port(gw), f"/debug/tso-bench?callers={args.callers}"
                                               f"&seconds={args.seconds}"))
            cpu = cpu_seconds(pids) - cpu0
            r["cpu_us_per_ts"] = cpu * 1e6 / max(1, r["timestamps"])
            rows.append((name, r))
        print(f"## TSO: {args.callers} callers into one gateway, {args.seconds} s, "
              f"3 coordinator voters")
        print()
        print("| gateway | timestamps/s | requests/s | avg batch | p50 us | p99 us | p99.9 us "
              "| errors | out of order | node CPU us/ts |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in rows:
            print(f"| {name} | {r['per_sec']:.0f} | {r['requests'] / r['seconds']:.0f} | "
                  f"{r['avg_batch']:.1f} | {r['p50_us']} | {r['p99_us']} | {r['p999_us']} | "
                  f"{r['errors']} | {r['out_of_order']} | {r['cpu_us_per_ts']:.2f} |")

        # Directory: node 4 joined and holds no region.
        redis_port = 6379 + off + 4
        looks0 = metric(http_port(4), "micedb_router_directory_lookups_total")
        n = 200000
        if shutil.which("redis-benchmark"):
            subprocess.run(["redis-benchmark", "-p", str(redis_port), "-t", "set,get", "-n",
                            str(n), "-c", "50", "-r", "100000", "-q"],
                           stdout=subprocess.DEVNULL, check=True)
            looks = metric(http_port(4), "micedb_router_directory_lookups_total") - looks0
            print()
            print("## Directory: redis-benchmark SET+GET on a node that joined (no regions)")
            print()
            print(f"requests: {2 * n}, directory lookups: {looks:.0f}, served from the router "
                  f"cache: {100 * (1 - looks / (2 * n)):.4f}%")
        return 0
    finally:
        sl.send_signal(signal.SIGINT)
        try:
            sl.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sl.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
