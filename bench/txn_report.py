#!/usr/bin/python3
"""Writes results.md for a run of scripts/bench-txn from what it left in the directory given:
meta.txt, runs.csv (loadgen's rows), cpu.csv (the nodes' CPU seconds over each run),
raw/rb-set-r*.csv (redis-benchmark --csv) and raw/bank.txt (the bank's total check)."""
import csv
import glob
import os
import re
import sys

TARGET_RATIO = 0.8  # one-shot write transactions / raw SET, 32 clients
TARGET_P50_MS = 3.0  # multi4 at one client


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def ms(us):
    return f"{float(us) / 1000:.2f}"


def counter_deltas(d, label):
    """[(counter, increase)] over a run's window, from raw/LABEL.counters-{before,after}; the
    counters that did not move are left out."""
    def load(path):
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return {name: float(v) for name, v in (line.split() for line in f if line.strip())}
    before = load(os.path.join(d, "raw", f"{label}.counters-before"))
    after = load(os.path.join(d, "raw", f"{label}.counters-after"))
    out = []
    for name in sorted(after):
        delta = int(after[name] - before.get(name, 0))
        if delta:
            out.append((name.replace("micedb_txn_", "").replace("_total", ""), delta))
    return out


def main(d):
    runs = {r["label"]: r for r in read_csv(os.path.join(d, "runs.csv"))}
    cpu = {r["label"]: r for r in read_csv(os.path.join(d, "cpu.csv"))}
    rb = {}
    for path in sorted(glob.glob(os.path.join(d, "raw", "rb-set-r*.csv"))):
        label = os.path.basename(path)[:-4]
        for row in read_csv(path):
            if row.get("test") == "SET":
                rb[label] = row
    with open(os.path.join(d, "meta.txt")) as f:
        meta = f.read().strip()

    def cpu_us(label, ops):
        """Node CPU per operation in us: 'n1 / n2 / n3 = sum'."""
        c = cpu.get(label)
        if not c or not ops:
            return "?"
        per = [float(c[f"cpu_s_node{i}"]) * 1e6 / ops for i in (1, 2, 3)]
        return " / ".join(f"{p:.0f}" for p in per) + f" = **{sum(per):.0f}**"

    def client_us(label, ops):
        """The client program's CPU per operation in us: loadgen's own figure over its window,
        or redis-benchmark's over its whole run."""
        if label in runs and runs[label].get("loadgen_cpu_us_per_op"):
            return f"{float(runs[label]['loadgen_cpu_us_per_op']):.0f}"
        c = cpu.get(label)
        if not c or not ops or not c.get("cpu_s_client"):
            return "?"
        return f"{float(c['cpu_s_client']) * 1e6 / ops:.0f}"

    out = ["# Transactions: speed (issue 16)", "", "```", meta, "```", ""]
    out += ["## 1. One-key writes, 32 clients, all at the leader", "",
            "redis-benchmark `-t set -c 32 -r KEYS -d 100` (the raw Redis path), loadgen "
            "`--system txn --workload write` (a one-shot transaction of one PUT per operation, "
            "gRPC, one Commit call), loadgen `--system resp --workload write` (the raw path "
            "with the same client program) and loadgen `--system kv --workload write` (the raw "
            "path over gRPC, micedb.kv.v1 Put: the transactions' own protocol), alternating, on "
            "one cluster. CPU: utime + stime per "
            "operation of the three nodes and of the client program (loadgen: over the measured "
            "window; redis-benchmark: the whole run). Clients and nodes share the 2 cores.", "",
            "| run | ops/s | p50 ms | p99 ms | node CPU per op, us (n1 / n2 / n3 = all) | "
            "client CPU per op, us | errors |",
            "|---|---|---|---|---|---|---|"]
    rb_total = txn_total = resp_total = kv_total = 0.0
    # Node CPU per operation summed over the rounds' runs (seconds, operations) by kind.
    node_cpu = {}
    rounds = sorted({int(m.group(1)) for k in list(runs) + list(rb)
                     if (m := re.match(r".*-r(\d+)$", k))})
    for r in rounds:
        b = rb.get(f"rb-set-r{r}")
        if b:
            rps = float(b["rps"])
            rb_total += rps
            ops = int(cpu.get(f"rb-set-r{r}", {}).get("ops", 0) or 0)
            out.append(f"| redis-benchmark SET, round {r} | {rps:,.0f} | "
                       f"{float(b['p50_latency_ms']):.2f} | {float(b['p99_latency_ms']):.2f} | "
                       f"{cpu_us(f'rb-set-r{r}', ops)} | {client_us(f'rb-set-r{r}', ops)} | - |")
        for kind, name in (("txn-write", "txn write (one-shot)"), ("resp-write", "loadgen SET"),
                           ("kv-write", "gRPC raw Put")):
            row = runs.get(f"{kind}-r{r}")
            if not row:
                continue
            rate = float(row["ops_per_s"])
            if kind == "txn-write":
                txn_total += rate
            elif kind == "kv-write":
                kv_total += rate
            else:
                resp_total += rate
            c = cpu.get(row["label"])
            if c and int(row["ops"]):
                secs, n = node_cpu.get(kind, (0.0, 0))
                node_cpu[kind] = (secs + sum(float(c[f"cpu_s_node{i}"]) for i in (1, 2, 3)),
                                  n + int(row["ops"]))
            out.append(f"| {name}, round {r} | {rate:,.0f} | {ms(row['p50_us'])} | "
                       f"{ms(row['p99_us'])} | {cpu_us(row['label'], int(row['ops']))} | "
                       f"{client_us(row['label'], int(row['ops']))} | {row['errors']} |")
    ratio = txn_total / rb_total if rb_total else 0.0
    same_client = txn_total / resp_total if resp_total else 0.0
    same_protocol = txn_total / kv_total if kv_total else 0.0

    def per_op(kind):
        secs, n = node_cpu.get(kind, (0.0, 0))
        return secs * 1e6 / n if n else 0.0

    cpu_txn, cpu_kv, cpu_resp = per_op("txn-write"), per_op("kv-write"), per_op("resp-write")
    out += ["", f"Transactions over raw SET, all rounds: **{ratio:.2f}x** redis-benchmark "
            f"(target >= {TARGET_RATIO}x); {same_client:.2f}x loadgen's own SET; "
            f"**{same_protocol:.2f}x** the raw path over gRPC (the same protocol).", ""]
    if cpu_txn and cpu_kv and cpu_resp:
        out += [f"Node CPU per operation, all rounds (us, three nodes): transactions "
                f"{cpu_txn:.0f}, raw Put over gRPC {cpu_kv:.0f}, raw SET over RESP (loadgen) "
                f"{cpu_resp:.0f}: the transaction layer costs {cpu_kv / cpu_txn:.2f}x the raw "
                f"path's throughput per CPU over the same protocol, and gRPC against RESP "
                f"{cpu_resp / cpu_kv:.2f}x.", ""]

    m4 = runs.get("multi4")
    m4a = runs.get("multi4-async")
    m4_rows = (("two phases, both regions led at the gateway", m4),
               ("two phases, one region led elsewhere", runs.get("multi4-far")),
               ("async, both regions led at the gateway", m4a),
               ("async, one region led elsewhere", runs.get("multi4-async-far")))
    out += ["## 2. Four keys across two regions, one client", "",
            "loadgen `--system txn --workload multi4 --clients 1`: one-shot transactions of 4 "
            "PUTs, two keys on each side of a region boundary (cluster 2, small regions), "
            "committed in two phases, then with `--txn-async-commit` (multi4-async); each with "
            "both regions' leaders moved to the clients' node, then with one moved to another "
            "node (-far; meta.txt has the layouts before and after each run).", ""]
    if any(row for _, row in m4_rows):
        out += ["| commit | txn/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |",
                "|---|---|---|---|---|---|---|"]
        for name, row in m4_rows:
            if row:
                out.append(f"| {name} | {float(row['ops_per_s']):,.0f} | **{ms(row['p50_us'])}** | "
                           f"{ms(row['p99_us'])} | {ms(row['p999_us'])} | {ms(row['max_us'])} | "
                           f"{row['errors']} |")
        out.append("")
    else:
        out += ["(no multi4 run)", ""]

    bank = runs.get("bank")
    out += ["## 3. Bank, 16 clients", "",
            "loadgen `--system txn --workload bank --clients 16`: Begin, BatchGet of two random "
            "accounts, Put of both, Commit (5 calls). An aborted commit (a write conflict) is "
            "counted apart from errors; latency is the whole transaction's, committed ones.", ""]
    if bank:
        ops, aborts = int(bank["ops"]), int(bank.get("aborts") or 0)
        rate = 100.0 * aborts / (ops + aborts) if ops + aborts else 0.0
        out += ["| committed txn/s | aborts | abort rate | p50 ms | p99 ms | node CPU per txn, us | errors |",
                "|---|---|---|---|---|---|---|",
                f"| **{float(bank['ops_per_s']):,.0f}** | {aborts} | **{rate:.2f}%** | "
                f"{ms(bank['p50_us'])} | {ms(bank['p99_us'])} | {cpu_us('bank', ops)} | "
                f"{bank['errors']} |", ""]
        check = os.path.join(d, "raw", "bank.txt")
        if os.path.exists(check):
            with open(check) as f:
                out += [line.strip() for line in f if "bank check" in line] + [""]
    else:
        out += ["(no bank run)", ""]

    counter_lines = []
    for label in [k for k in runs if not k.startswith(("resp-", "kv-"))]:
        deltas = counter_deltas(d, label)
        ops = int(runs[label]["ops"])
        if deltas and ops:
            shown = ", ".join(f"{name} {v:,} ({v / ops:.2f})" for name, v in deltas)
            counter_lines.append(f"- {label}: {shown}")
    if counter_lines:
        out += ["## Transaction counters", "",
                "The nodes' `micedb_txn_*_total` counters over each measured window, summed over "
                "the three nodes (in brackets: per committed transaction of the run).", ""]
        out += counter_lines + [""]

    out += ["## Targets", "", "| target | measured | met? |", "|---|---|---|",
            f"| one-key write transactions >= {TARGET_RATIO}x raw SET (32 clients) | "
            f"{ratio:.2f}x | {'yes' if ratio >= TARGET_RATIO else 'no'} |",
            f"| the same over the raw path on the same protocol (gRPC Put) | "
            f"{same_protocol:.2f}x | {'yes' if same_protocol >= TARGET_RATIO else 'no'} |"]
    for name, row in (("two phases", m4), ("async commit", m4a)):
        if row:
            p50 = float(row["p50_us"]) / 1000
            out.append(f"| 4 keys over 2 regions led at the gateway, 1 client, {name}: "
                       f"p50 < {TARGET_P50_MS:g} ms | "
                       f"p50 {p50:.2f} ms, p99 {ms(row['p99_us'])} ms | "
                       f"{'yes' if p50 < TARGET_P50_MS else 'no'} |")
    if bank:
        out.append(f"| bank, 16 clients (reported) | {float(bank['ops_per_s']):,.0f} txn/s, "
                   f"abort rate {rate:.2f}% | - |")
    flagged = [f"- {label}: {row['errors']} errors (first: {row['first_error']})"
               for label, row in runs.items() if int(row["errors"]) > 0]
    if flagged:
        out += ["", "Flagged automatically:", ""] + flagged
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out[out.index("## Targets"):]))


if __name__ == "__main__":
    main(sys.argv[1])
