#!/usr/bin/python3
"""One fault-injection run: start a cluster of real micedb processes, run the register, set
and counter workloads against it while a seeded nemesis schedule breaks it, heal, check.

Used by tests/cluster/test_faults.py (the CI profile: short runs with fixed seeds) and by
`make soak` (long runs; this file as a program). Every run writes to its own folder:
  history.jsonl    every register operation (linearizability.save_history format)
  nemesis.log      the fault schedule as it happened
  verdict.txt      the checkers' report
  summary.json     figures: operations, faults, acknowledged/attempted, verdicts
  node*.log        the nodes' own logs
A failing run prints its seed and the command that reruns it.
"""
import argparse
import base64
import json
import os
import pathlib
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import linearizability  # noqa: E402
import netlab  # noqa: E402
import nemesis  # noqa: E402
import workloads  # noqa: E402
from harness import Cluster, retry  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


class RunResult:
    def __init__(self):
        self.valid = True
        self.problems = []
        self.report = ""
        self.summary = {}
        self.out_dir = None

    def fail(self, text):
        self.valid = False
        self.problems.append(text)


def rerun_command(seed, duration, nemeses, nodes, extra):
    cmd = f"make soak SEED={seed} DURATION={int(duration)} NEMESIS={nemeses} NODES={nodes}"
    if extra:
        cmd += f" EXTRA_ARGS='{' '.join(extra)}'"
    return cmd


def check_directory(cluster, timeout=30):
    """None once the coordinator's directory agrees with the stores: its data regions tile the
    keyspace (no gap, no overlap) and are, by id and version, the regions the stores' leaders
    lead; else what differed last."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            live = [n for n in cluster.live() if not n.paused]
            view = None
            for n in live:  # a node added by hand (not joined) has no coordinator to ask
                try:
                    view = json.loads(n.http("/api/v1/regions", timeout=5))
                    break
                except OSError as e:
                    last = repr(e)
            if view is None:
                time.sleep(0.5)
                continue
            spans, known = [], {}
            for r in view["regions"]:
                d = r["meta"]["region"]
                known[int(d["id"])] = int(d.get("epoch", {}).get("version", 0))
                spans.append((base64.b64decode(d.get("startKey", "")),
                              base64.b64decode(d.get("endKey", "")), int(d["id"])))
            spans.sort()
            tiled = (bool(spans) and spans[0][0] == b"" and spans[-1][1] == b"" and
                     all(a[1] == b[0] for a, b in zip(spans, spans[1:])))
            led = {}
            for n in live:
                for r in n.raft()["regions"]:
                    if r["id"] != 2 and r["voters"] and r["role"] == "leader":
                        led[r["id"]] = r["version"]
            last = {"tiled": tiled, "coordinator": known, "leaders": led}
            if tiled and known == led:
                return None
        except (OSError, ValueError, KeyError, IndexError) as e:
            last = repr(e)
        time.sleep(0.5)
    return f"the coordinator's directory disagrees with the stores: {last}"


def run(binary, out_dir, seed, duration, nemeses="kill", nodes=3, extra_args=(),
        workload_names=("register", "set", "counter"), interval=(1.0, 3.0), hold=(4.0, 8.0),
        check_budget_s=60.0, echo=False, merge_storm=False, directory=None):
    """Runs one schedule and returns a RunResult. Never leaves processes or namespaces.
    `directory`: check the coordinator's directory against the stores at the end (not for
    nemeses that change memberships by hand: they can leave the coordinator's own region
    without a quorum, and then nobody answers for the directory). None: unless the nemeses
    include wipe or membership (or are "all")."""
    if directory is None:
        directory = nemeses != "all" and not {"wipe", "membership"} & set(nemeses.split(","))
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = RunResult()
    result.out_dir = str(out)
    logf = open(out / "nemesis.log", "w")

    def log(text):
        logf.write(text + "\n")
        logf.flush()
        if echo:
            print(text, flush=True)

    rng = random.Random(seed)
    if nemeses == "all":
        need_net = netlab.available()[0]  # partitions join "all" where they can run
    else:
        need_net = any(nemesis.NEMESES[n].needs_net for n in nemeses.split(",")
                       if n in nemesis.NEMESES)
    net = netlab.NetLab() if need_net else None
    cluster = Cluster(binary, str(out / "cluster"), nodes, extra_args, net=net)
    os.makedirs(cluster.root, exist_ok=True)
    t_start = time.monotonic()
    loads = []
    try:
        log(f"seed {seed}, {nodes} nodes, nemesis {nemeses}, {duration}s, "
            f"{'network namespaces' if net else 'loopback'}")
        cluster.start()
        makers = {
            "register": lambda: workloads.RegisterWorkload(cluster, seed),
            "set": lambda: workloads.SetWorkload(cluster, seed),
            "counter": lambda: workloads.CounterWorkload(cluster, seed),
        }
        loads = [makers[w]() for w in workload_names]
        for w in loads:
            w.start()
        schedule = nemesis.Schedule(nemesis.make(nemeses, cluster, log), rng, duration, log,
                                    interval=interval, hold=hold)
        storm = None
        if merge_storm:
            storm = nemesis.MergeStorm(cluster, random.Random(seed * 7919 + 1), log)
            storm.start()
        schedule.start()
        schedule.join()
        if storm is not None:
            storm.stop()
            log(f"merge storm: {storm.asked} merges asked, {storm.frozen} regions frozen")
        if schedule.error:
            result.fail(schedule.error)

        # Healed: writes must succeed again within 10 s, through any node.
        healed = time.monotonic()
        log(f"[{healed - schedule.t0:7.2f}s] healed; waiting for a write to succeed")
        probe_nodes = [n for n in cluster.nodes.values() if n.alive()]
        try:
            retry(lambda: probe_nodes[0].redis(socket_timeout=2).set(f"probe:{seed}", "1"),
                  timeout=10)
            recovery = time.monotonic() - healed
            log(f"first write after healing took {recovery:.2f}s")
        except Exception as e:  # noqa: BLE001
            recovery = None
            result.fail(f"no write succeeded within 10 s of healing: {e!r}")
        time.sleep(1.0)  # let the clients see the healed cluster too
        for w in loads:
            w.stop()
            for err in w.errors:
                result.fail(f"{w.name} client crashed: {err}")

        # Convergence: every replica applies the same log to the same data.
        try:
            cluster.wait_leader(timeout=30)
            data_hash = cluster.converged_hashes(timeout=60)
            log(f"replicas converged: hash {data_hash}")
        except AssertionError as e:
            result.fail(f"convergence: {e}")
        problem = check_directory(cluster) if directory else None
        if problem:
            result.fail(problem)
        elif directory:
            log("the coordinator's regions tile the keyspace and match the leaders'")
        if merge_storm:
            # Every merge ends, committed or rolled back, once the faults are over.
            deadline = time.monotonic() + 20
            frozen = None
            while time.monotonic() < deadline:
                try:
                    frozen = [(n.id, r["id"], r["merging_into"])
                              for n in cluster.nodes.values() if n.alive()
                              for r in n.raft()["regions"] if "merging_into" in r]
                except (OSError, ValueError, KeyError):
                    frozen = None
                if frozen == []:
                    break
                time.sleep(0.5)
            if frozen != []:
                result.fail(f"merges left frozen (node, region, into): {frozen}")

        reader = next(n for n in cluster.nodes.values() if n.alive())
        reports = []
        summary = {"seed": seed, "nemesis": nemeses, "nodes": nodes, "duration_s": duration,
                   "faults": schedule.faults, "recovery_s": recovery,
                   "merges_frozen": storm.frozen if storm is not None else None}
        try:  # how many data regions the run ended with (splits: docs/sharding.md)
            summary["regions"] = sum(1 for r in reader.raft()["regions"]
                                     if r["id"] != 2 and r["voters"])
        except (OSError, ValueError, KeyError):
            summary["regions"] = None
        for w in loads:
            if isinstance(w, workloads.RegisterWorkload):
                w.final_reads(reader)
                linearizability.save_history(str(out / "history.jsonl"), w.history)
                t0 = time.monotonic()
                res = linearizability.check_register(w.history, budget_s=check_budget_s)
                summary["register"] = {
                    "ops": len(w.history),
                    "ok": sum(1 for o in w.history if o.status == "ok"),
                    "info": sum(1 for o in w.history if o.status == "info"),
                    "fail": sum(1 for o in w.history if o.status == "fail"),
                    "keys": len(w.key_ops), "valid": res.valid,
                    "check_s": round(time.monotonic() - t0, 2)}
                reports.append("register: " + linearizability.format_report(res))
                if res.valid is not True:
                    result.fail("register history is " +
                                ("NOT linearizable" if res.valid is False else
                                 "unknown (checker budget exceeded)"))
            elif isinstance(w, workloads.SetWorkload):
                final = w.final_read(reader)
                res = linearizability.check_set(w.adds, final)
                summary["set"] = {"attempted": len(w.adds),
                                  "acked": sum(1 for o in w.adds if o.status == "ok"),
                                  "final": len(final), "valid": res.valid}
                reports.append("set: " + linearizability.format_report(res))
                if not res.valid:
                    result.fail("set: acknowledged elements lost or phantom elements present")
            elif isinstance(w, workloads.CounterWorkload):
                final = w.final_read(reader)
                res = linearizability.check_counter(w.acked, w.attempted, final)
                summary["counter"] = {"acked": w.acked, "attempted": w.attempted,
                                      "final": final, "valid": res.valid}
                reports.append("counter: " + linearizability.format_report(res))
                if not res.valid:
                    result.fail("counter outside [acknowledged, attempted]")
        summary["valid"] = result.valid
        summary["problems"] = result.problems
        summary["elapsed_s"] = round(time.monotonic() - t_start, 1)
        result.summary = summary
        result.report = "\n".join(reports)
    except Exception as e:  # noqa: BLE001 - a harness or cluster failure fails the run
        result.fail(f"run aborted: {e!r}")
        raise
    finally:
        for w in loads:
            w.stop_flag.set()
        cluster.close()
        for n in list(cluster.nodes.values()) + cluster.retired:
            if os.path.exists(n.log_path):
                shutil.copy(n.log_path, out / os.path.basename(n.log_path))
        verdict = ("VALID" if result.valid else "INVALID") + "\n" + "\n".join(
            result.problems) + "\n\n" + result.report + "\n"
        if not result.valid:
            verdict += (f"\nseed {seed}; rerun with: "
                        f"{rerun_command(seed, duration, nemeses, nodes, extra_args)}\n")
        (out / "verdict.txt").write_text(verdict)
        (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        logf.close()
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(ROOT / "build" / "release" / "src" / "cli" / "micedb"))
    ap.add_argument("--seed", type=int, default=None, help="default: random, printed")
    ap.add_argument("--duration", type=float, default=300, help="seconds of faults per run")
    ap.add_argument("--total", type=float, default=0,
                    help="keep running new seeds until this many seconds have passed")
    ap.add_argument("--nemesis", default="all", help="comma list of " +
                    ",".join(nemesis.NEMESES) + ", or all, or none")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "soak-results"))
    ap.add_argument("--interval", default="2,6", help="seconds between faults, lo,hi")
    ap.add_argument("--hold", default="5,20", help="seconds a fault lasts, lo,hi")
    ap.add_argument("--extra-args", default="", help="more flags for every node")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no micedb binary at {args.binary} (make release builds it)")
    extra = args.extra_args.split()
    interval = tuple(float(x) for x in args.interval.split(","))
    hold = tuple(float(x) for x in args.hold.split(","))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    began = time.monotonic()
    runs = failed = 0
    while True:
        out = pathlib.Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}"
        print(f"run {runs + 1}: seed {seed}, nemesis {args.nemesis}, {args.duration:.0f}s "
              f"-> {out}", flush=True)
        res = run(args.binary, out, seed, args.duration, args.nemesis, args.nodes, extra,
                  interval=interval, hold=hold, echo=True)
        runs += 1
        print(json.dumps(res.summary), flush=True)
        if res.valid:
            print(f"run {runs}: VALID", flush=True)
        else:
            failed += 1
            print(f"run {runs}: INVALID: {'; '.join(res.problems)}\n{res.report}\n"
                  f"seed {seed}; rerun with: "
                  f"{rerun_command(seed, args.duration, args.nemesis, args.nodes, extra)}",
                  flush=True)
        if time.monotonic() - began >= args.total:
            break
        seed += 1
    print(f"{runs} run(s), {failed} invalid, {time.monotonic() - began:.0f}s in total")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
